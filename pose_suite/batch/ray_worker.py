"""The Ray actors of ``executor: ray`` (:mod:`pose_suite.batch.ray_executor` is
the driver): ``Progress``, the run's bookkeeping, and ``Worker``, one model
replica.

Imported by the driver only when ``executor: ray`` is used; the worker
processes import it again by name when Ray creates the actors there.
"""
import dataclasses
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Dict

from pose_suite.batch.local import problem_of
from pose_suite.batch.segments import Segment, remove_segments, stitch
from pose_suite.config import apply_overrides
from pose_suite.errors import (ClusterError, OutputError, SuiteError,
                               SuiteWarning, one_line)
from pose_suite.outputs.results import iter_frame_records

#: Seconds between a worker's progress reports.
PROGRESS_INTERVAL_S = 0.5


class Progress:
    """Frames done per unit, and the attempt of each that a worker began
    (the scheduler numbers them). Named ``progress`` in the run's
    namespace."""

    def __init__(self):
        self.frames: Dict[str, int] = {}
        self.attempts: Dict[str, int] = {}
        self.where: Dict[str, dict] = {}

    def started(self, unit_id: str, attempt: int, where: dict) -> None:
        self.attempts[unit_id] = attempt
        self.where[unit_id] = where

    def update(self, unit_id: str, frames: int) -> None:
        self.frames[unit_id] = frames

    def status(self) -> dict:
        """Per unit begun: frames done, its attempt, and the node, worker
        and process analysing it."""
        return {unit_id: dict(where, frames=self.frames.get(unit_id, 0),
                              attempts=self.attempts[unit_id])
                for unit_id, where in self.where.items()}


class Worker:
    """One model replica (a Ray actor): ``PoseAnalyser`` loaded once,
    run on one unit at a time. Every answer is a dict, never an exception:
    a user error is that unit's, and a worker whose models could not be
    loaded says so (``'worker broken'``)."""

    def __init__(self, config, index: int, threads: int):
        import ray
        import torch
        torch.set_num_threads(threads)  # Ray reuses processes: set it here
        context = ray.get_runtime_context()
        self.index = index
        # By name: a handle among the arguments would live in the object
        # store, which a restarted actor cannot count on.
        self.progress = ray.get_actor('progress')
        self.node_id = context.get_node_id()
        self.node = socket.gethostname()
        if not ray.get_gpu_ids() and config.device == 'auto':
            # "auto" means a GPU if this worker was given one; "cuda"
            # without one is refused below, as in a local run.
            config = dataclasses.replace(config, device='cpu')
        self.error, self.service = None, None
        try:
            from pose_suite.service.analyser import PoseAnalyser
            self.service = PoseAnalyser(
                dataclasses.replace(config, quiet=True))
            self.service.in_batch = True
        except SuiteError as exc:  # sent back: the driver says it once
            self.error = exc
        except Exception as exc:  # noqa: BLE001  (a traceback helps no one)
            self.error = ClusterError(f'cannot load the models: '
                                      f'{one_line(exc)}')

    def ready(self, probe: str) -> dict:
        return dict(error=self.error, node=self.node,
                    sees_output=os.path.exists(probe))

    def _where(self) -> dict:
        return dict(node=self.node, node_id=self.node_id[:12],
                    worker=self.index, pid=os.getpid())

    def _begin(self, unit: dict) -> dict:
        where = self._where()
        import ray
        ray.get(self.progress.started.remote(unit['unit_id'],
                                             unit['attempts'], where))
        return where

    def analyse(self, unit: dict) -> dict:
        """Run one input or segment."""
        if self.service is None:
            return dict(status='worker broken', reason=str(self.error),
                        **self._where())
        where = self._begin(unit)
        user_resume = self.service.config.resume
        start = unit['segment']['start'] if unit['segment'] else 0
        last_sent = [0.0]

        def on_frame(frame_index: int) -> None:
            if time.monotonic() - last_sent[0] > PROGRESS_INTERVAL_S:
                self.progress.update.remote(unit['unit_id'],
                                            max(0, frame_index + 1 - start))
                last_sent[0] = time.monotonic()

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('ignore')
            warnings.simplefilter('always', SuiteWarning)
            try:
                answer = self._analyse(unit, user_resume, where, on_frame)
            except Exception as exc:  # noqa: BLE001  (see problem_of)
                status, reason = problem_of(exc)
                answer = dict(status=status, reason=reason)
        if answer['status'] != 'failed':
            self.progress.update.remote(unit['unit_id'], unit['frames'])
        messages = [str(w.message) for w in caught
                    if issubclass(w.category, SuiteWarning)]
        return dict(answer, warnings=messages, attempts=unit['attempts'],
                    **where)

    def _analyse(self, unit: dict, user_resume: bool, where: dict,
                 on_frame) -> dict:
        segment = unit['segment']
        if segment and user_resume and \
                self.service.up_to_date(unit['source'], Path(unit['result']),
                                        self._config_of(unit))[0]:
            # The whole input was finished and stitched before.
            return dict(status='input up to date')
        done = self.service.analyse_input(
            unit['source'], unit['output'],
            # A cut-off attempt's partial file is resumed whatever the
            # user said; a complete result is kept only if they asked.
            resume=user_resume or unit['resume_partial'],
            keep_up_to_date=user_resume,
            frame_range=(segment['start'], segment['stop'])
            if segment else None,
            run_info=dict(executor='ray', **where,
                          attempts=unit['attempts']),
            on_frame=on_frame, settings=unit.get('settings'))
        return dict(status=done.status, output=str(done.output),
                    frames=done.frames, persons=done.persons,
                    frames_kept=done.frames_kept, exports=list(done.exports))

    def _config_of(self, unit: dict):
        """The service's config with the unit's input's own settings (a
        list file's range)."""
        settings = unit.get('settings')
        return apply_overrides(self.service.config, settings) if settings \
            else self.service.config

    def stitch(self, unit: dict) -> dict:
        """Join an input's segment files into its result, and export; or,
        for a result published before (``kept``, or by an attempt cut off
        once it had published it), write the exports it lacks. Safe to
        repeat: the segment files go last."""
        if self.service is None:
            return dict(status='worker broken', reason=str(self.error),
                        **self._where())
        where = self._begin(unit)
        result = Path(unit['output'])
        segments = [(Segment(**segment), Path(path))
                    for segment, path in unit['stitch_of']]
        files = [path for _, path in segments]
        try:
            if unit['kept'] or not all(path.exists() for path in files):
                answer = self._published(unit, result, files)
            else:
                meta, persons = stitch(
                    [s for s, _ in segments], files, result,
                    self.service.config,
                    run_info=dict(executor='ray', **where))
                answer = dict(status='done', frames=meta['frame_count'],
                              persons=persons,
                              attempts=meta['run']['attempts'],
                              exports=self.service.export(result, meta))
            remove_segments(result, files)
        except Exception as exc:  # noqa: BLE001  (see problem_of)
            return dict(status='failed', reason=problem_of(exc)[1], **where)
        return dict(answer, output=unit['output'],
                    attempts=max(unit['attempts'], answer['attempts']),
                    **where)

    def _published(self, unit: dict, result: Path, files: list) -> dict:
        """The answer for a stitched result already published, once the
        exports it lacks are written."""
        meta, why = self.service.up_to_date(unit['source'], result,
                                            self._config_of(unit))
        if meta is None:
            gone = next((path for path in files if not path.exists()), None)
            raise OutputError(f'cannot stitch {result}: its segment file '
                              f'{gone} is gone' + (f' ({why})' if why
                                                   else ''))
        exports = self.service.export(result, meta, only_stale=True)
        persons = 0 if unit['kept'] else sum(  # kept: not shown
            len(record['persons']) for record in iter_frame_records(result))
        return dict(status='up to date' if unit['kept'] else 'done',
                    frames=meta['frame_count'], persons=persons,
                    attempts=meta['run'].get('attempts', 1), exports=exports)
