"""Before any model loads or Ray starts: every name the run will write
checked (:mod:`pose_suite.outputs.limits`), then the output locked
(:mod:`pose_suite.outputs.lock`)."""
from pathlib import Path
from typing import List

from pose_suite.batch.segments import segment_file
from pose_suite.config.specs import is_json_file
from pose_suite.media.inputs import Inputs
from pose_suite.outputs.limits import (check_output_not_folder,
                                       check_outputs, guessed_kind,
                                       run_lock_path)
from pose_suite.outputs.lock import OutputLock, lock_output


def claim_outputs(config, inputs: Inputs, output_files: List[Path],
                  source=None) -> OutputLock:
    """Check the names of what the run writes and lock its output; the
    caller releases the lock when the run ends.

    Args:
        config: the run's ``AnalysisConfig``.
        output_files: each input's result file, in order (planned by
            :func:`pose_suite.outputs.naming.output_files`).
        source: the one input's opened source (its ``kind``), when not a
            batch.
    Raises:
        OutputError: a name too long, a folder where a result goes, or
        another run holding the output (one line each).
    """
    check_output_not_folder(config.output, inputs.batch)
    kinds = [source.kind] if source is not None else \
        [guessed_kind(item) for item in inputs.sources]
    ray = config.executor == 'ray'
    check_outputs(inputs.sources, output_files, kinds, config.output,
                  config.export_formats, config.visualize_output or None,
                  _longest_segment if ray and config.segment_s else None)
    if inputs.batch:
        folder = Path(config.output)
        if is_json_file(folder):
            folder = folder.parent
        return lock_output(folder, exclusive=True)
    result = Path(output_files[0])
    return lock_output(result.parent, exclusive=ray, result=result,
                       result_lock=run_lock_path(result))


def _longest_segment(output_file: Path) -> Path:
    """The name of a segment file of ``output_file`` with the most digits
    this check assumes (999 segments)."""
    return segment_file(output_file, 998, 999)
