"""Many inputs: one after another in this process (``executor: local``,
:func:`run_local`) or spread over Ray workers (``executor: ray``,
:func:`pose_suite.batch.ray_executor.run_on_ray`).

Both give a :class:`BatchResult`; a failing input never stops the others,
and a file that turns out not to be media is skipped, not failed.
"""
import dataclasses
import sys
import time
from pathlib import Path
from typing import List, Tuple, Union

from pose_suite.config.specs import check_overlay_name
from pose_suite.errors import NotMediaError, SuiteError, one_line, visible
from pose_suite.media.inputs import Inputs
from pose_suite.outputs.naming import output_files as plan_output_files


@dataclasses.dataclass
class BatchResult:
    """What a batch wrote and what it could not."""

    outputs: List[Path] = dataclasses.field(default_factory=list)
    up_to_date: List[Path] = dataclasses.field(
        default_factory=list)  # results kept by resume (not in outputs)
    failures: List[Tuple[str, str]] = dataclasses.field(
        default_factory=list)  # (input, one-line reason)
    skipped: List[Tuple[str, str]] = dataclasses.field(
        default_factory=list)  # (input, why it is not media)
    frames: int = 0   # analysed by this run
    persons: int = 0
    frames_kept: int = 0  # kept from interrupted runs' partial results
    seconds: float = 0.0  # wall time of the whole batch

    def add_problem(self, source, exc: BaseException) -> None:
        """Record an input's exception as a skip or a failure
        (:func:`problem_of`)."""
        kind, reason = problem_of(exc)
        (self.skipped if kind == 'skipped' else self.failures).append(
            (str(source), reason))

    def add(self, source, done) -> None:
        """Record an input's :class:`~pose_suite.service.analyser.InputResult`."""
        if done.status == 'up to date':
            self.up_to_date.append(done.output)
            return
        self.outputs.append(done.output)
        self.frames += done.frames
        self.persons += done.persons
        self.frames_kept += done.frames_kept

    def summary(self) -> str:
        """One line: inputs, frames, persons, failures, time, frames/s
        (frames and persons: those analysed by this run; the frames that
        resumed inputs kept, after)."""
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        kept = f', {len(self.up_to_date)} up to date' \
            if self.up_to_date else ''
        failed = f', {len(self.failures)} failed' if self.failures else ''
        resumed = f'; {self.frames_kept} frame(s) kept from interrupted ' \
            'runs' if self.frames_kept else ''
        return (f'{len(self.outputs)} input(s) done{kept}{failed}: '
                f'{self.frames} frame(s), {self.persons} person(s) in '
                f'{self.seconds:.1f} s ({rate:.2f} frames/s){resumed}')


def problem_of(exc: BaseException) -> Tuple[str, str]:
    """How an input's exception counts in a batch: ``('skipped', why)``
    for a file that is not media, else ``('failed', one line)``. Any
    exception is that input's failure (an OpenCV error, say): one odd file
    must not stop a batch of thousands."""
    if isinstance(exc, NotMediaError):
        return 'skipped', str(exc)
    if isinstance(exc, SuiteError):
        return 'failed', str(exc)
    return 'failed', one_line(exc)


def finished_line(number: int, total: int, source, done,
                  where: str = '') -> str:
    """The line printed as each input of a batch is written or kept
    (``done``: an :class:`~pose_suite.service.analyser.InputResult`);
    names shown :func:`~pose_suite.errors.visible`, so none breaks it."""
    what = f'up to date{exports_note(done)}' \
        if done.status == 'up to date' else \
        f'{done.frames} frame(s), {done.persons} person(s){kept_note(done)}'
    return visible(f'[{number}/{total}] {Path(str(source)).name}: {what} '
                   f'-> {done.output}{where}')


def kept_note(done) -> str:
    """What a resumed input kept from its partial result ("" if none)."""
    return f' (and {done.frames_kept} frame(s) kept from the interrupted ' \
        'run)' if done.frames_kept else ''


def exports_note(done) -> str:
    """The exports an input kept up to date got now ("" if none)."""
    return f'; exports written now: {", ".join(done.exports)}' \
        if done.exports else ''


def publish_summary(config, result: BatchResult) -> None:
    """Write ``summary.csv``/``.json`` (and, with ``config.report``,
    ``report.html``) in the batch's output folder. Never raises: what
    cannot be written is one warning, the results stay."""
    from pose_suite.outputs.report import publish
    from pose_suite.outputs.summary import batch_rows
    folder = Path(config.output)
    if folder.suffix.lower() == '.json' and not folder.is_dir():
        folder = folder.parent
    publish(folder, lambda: batch_rows(result, folder), config.report)


def run_local(service, inputs: Union[Inputs, list]) -> BatchResult:
    """``service.run`` on each input in turn (see
    ``PoseAnalysisService.run_many``), with the settings that differ for
    it (a list line's range: ``Inputs.settings``)."""
    if not isinstance(inputs, Inputs):
        inputs = Inputs(list(inputs))
    output_files = plan_output_files(inputs, service.config.output,
                                     service.config.export_formats,
                                     service.config.visualize_output)
    if service.config.visualize_output:
        check_overlay_name(service.config.visualize_output,
                           len(inputs.sources))
    from tqdm import tqdm
    started = time.perf_counter()
    result = BatchResult(skipped=[(str(path), reason)
                                  for path, reason in inputs.skipped])
    # The counter counts media inputs: a file that turns out not to be
    # media (an empty Thumbs.db) leaves the total and the numbering.
    total, number = len(inputs.sources), 0
    files_bar = tqdm(total=total, unit='file', desc='inputs',
                     dynamic_ncols=True,
                     disable=service.quiet or not sys.stderr.isatty())
    service.in_batch = True  # each video's own bar is then cleared
    try:
        for path, output_file in zip(inputs.sources, output_files):
            try:
                done = service.analyse_input(
                    path, output_file, settings=inputs.settings_for(path))
            except Exception as exc:  # noqa: BLE001  (see problem_of)
                result.add_problem(path, exc)
                if isinstance(exc, NotMediaError):
                    total -= 1
                    files_bar.total = total
                    files_bar.refresh()
                else:
                    number += 1
                    files_bar.update(1)
                continue
            number += 1
            files_bar.update(1)
            result.add(path, done)
            if not service.quiet:
                files_bar.write(finished_line(number, total, path, done),
                                file=sys.stdout)
    finally:
        service.in_batch = False
        files_bar.close()
    result.seconds = time.perf_counter() - started
    return result
