"""``--postprocess OUTPUT``: the movement data (and the exports that need
no model) of finished results, made again with the config's settings,
without loading a model.

``OUTPUT`` is a result JSON, or a folder searched with its sub-folders for
the suite's results. Each result is checked whole first (a result cut
short is refused, never post-processed); results are never changed. An
image's result has no movement data (nothing is made, no failure); a
video's without tracks is a failure, its exports still written.
"""
import dataclasses
import time
import warnings
from pathlib import Path
from typing import List, Tuple

from pose_suite.errors import (MovementError, OutputError, SuiteWarning,
                               one_line)
from pose_suite.movement.chain import MovementSettings
from pose_suite.movement.derive import FORMATS, derive, wanted
from pose_suite.outputs.exports import export, is_current
from pose_suite.outputs.results import is_result, read_meta, why_incomplete

#: Exports that need the pose model's own meta, which --postprocess does
#: not load.
NEEDS_MODEL = ('mmpose',)


@dataclasses.dataclass
class Postprocessed:
    """What :func:`postprocess` did: the folders written, the results that
    failed with why, and the seconds it took."""

    written: List[Path] = dataclasses.field(default_factory=list)
    failures: List[Tuple[Path, str]] = dataclasses.field(
        default_factory=list)
    seconds: float = 0.0


def find_results(target: Path) -> List[Path]:
    """The suite's results at ``target``: the file itself, or every one in
    the folder and its sub-folders (hidden ones left out), sorted.

    Raises:
        OutputError: ``target`` is not there, or is a file that is not a
            result of the suite.
    """
    target = Path(target)
    if target.is_file():
        if not is_result(target):
            raise OutputError(f'{target} is not a result of this suite')
        return [target]
    if not target.is_dir():
        raise OutputError(f'not found: {target}')
    return sorted(path for path in target.rglob('*.json')
                  if not any(part.startswith('.') for part in
                             path.relative_to(target).parts)
                  and path.is_file() and is_result(path))


def postprocess(target: Path, cfg) -> Postprocessed:
    """Make the movement folder and the exports of ``cfg`` of every result
    at ``target`` (see the module).

    Raises:
        OutputError: no result there, or ``cfg`` asks for nothing.
    """
    started = time.perf_counter()
    settings = MovementSettings.from_config(cfg)
    if not wanted(settings, cfg.export_formats) and not cfg.export_formats:
        raise OutputError(
            'nothing to post-process: set a movement key (interp_max_gap, '
            'hampel, filter, person_height_m) or an export format')
    results = find_results(target)
    if not results:
        raise OutputError(f'no results of this suite in {target}')
    skipped = [f for f in cfg.export_formats if f in NEEDS_MODEL]
    if skipped:
        warnings.warn(f'--postprocess does not write the {skipped[0]} '
                      'export (it holds the pose model\'s own meta): run '
                      'the analysis with it', SuiteWarning)
    done = Postprocessed()
    for path in results:
        try:
            done.written.extend(_one(path, cfg, settings))
        except (MovementError, OutputError) as exc:
            done.failures.append((path, str(exc)))
        except Exception as exc:  # noqa: BLE001 - one result, not the run
            done.failures.append((path, one_line(exc)))
    done.seconds = time.perf_counter() - started
    return done


def _one(path: Path, cfg, settings: MovementSettings) -> List[Path]:
    meta = read_meta(path)
    if meta is None:
        raise MovementError(f'{path}: its meta cannot be read')
    written = []
    for fmt in cfg.export_formats:  # first: a movement refusal stops none
        if fmt in FORMATS or fmt in NEEDS_MODEL or \
                is_current(path, fmt, meta) or why_incomplete(path, meta):
            continue
        written.append(export(path, fmt, meta, {}))
    if wanted(settings, cfg.export_formats, meta):
        made = derive(path, meta, settings, cfg.export_formats)
        for line in made.warnings:
            warnings.warn(line, SuiteWarning)
        written.append(made.folder)
    return written
