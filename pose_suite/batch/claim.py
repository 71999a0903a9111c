"""Before any model loads or Ray starts: every name the run will write
checked (:mod:`pose_suite.outputs.limits`), then every folder it writes in
locked (:mod:`pose_suite.outputs.lock`)."""
from functools import partial
from pathlib import Path
from typing import List, Optional

from pose_suite.batch.segments import segment_file
from pose_suite.config.specs import is_json_file
from pose_suite.media.inputs import Inputs
from pose_suite.outputs.limits import (check_output_not_folder,
                                       check_outputs, guessed_kind,
                                       run_lock_path)
from pose_suite.outputs.lock import OutputLock, lock_outputs

#: Segments at most, where a video's frame count is not known yet (a
#: batch opens its inputs in turn): one per frame of the longest video
#: whose frames the OpenPose names count (12 digits).
_MAX_SEGMENTS = 10 ** 12 - 1


def claim_outputs(config, inputs: Inputs, output_files: List[Path],
                  source=None) -> OutputLock:
    """Check the names of what the run writes and lock the folders it
    writes in; the caller releases the lock when the run ends.

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
    top = Path(config.output)
    if is_json_file(top):
        top = top.parent
    segments = partial(_longest_segment, frame_count=getattr(
        source, 'frame_count', None)) if ray and config.segment_s else None
    folders = check_outputs(inputs.sources, output_files, kinds,
                            config.output, config.export_formats,
                            config.visualize_output or None, segments,
                            top if inputs.batch else None)
    if inputs.batch:
        return lock_outputs([top, *folders], exclusive=True)
    result = Path(output_files[0])
    return lock_outputs([result.parent, *folders], exclusive=ray,
                        result=result, result_lock=run_lock_path(result))


def _longest_segment(output_file: Path,
                     frame_count: Optional[int] = None) -> Path:
    """The longest name of a segment file of ``output_file``: a video cut
    in as many segments as it has frames at most (``frame_count``, when
    known), else :data:`_MAX_SEGMENTS`."""
    count = max(999, frame_count or 0) if frame_count else _MAX_SEGMENTS
    return segment_file(output_file, count - 1, count)
