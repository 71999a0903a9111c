"""The Ray actors of ``executor: ray`` (:mod:`pose_suite.ray_executor` is
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

from pose_suite.batch import problem_of
from pose_suite.errors import SuiteError, SuiteWarning
from pose_suite.segments import Segment, stitch

#: Seconds between a worker's progress reports.
PROGRESS_INTERVAL_S = 0.5


class Progress:
    """Frames done per unit, and each unit's attempts (a retried call
    starts again). Named ``progress`` in the run's namespace."""

    def __init__(self):
        self.frames: Dict[str, int] = {}
        self.attempts: Dict[str, int] = {}
        self.where: Dict[str, dict] = {}

    def started(self, unit_id: str, where: dict) -> int:
        self.attempts[unit_id] = self.attempts.get(unit_id, 0) + 1
        self.where[unit_id] = where
        return self.attempts[unit_id]

    def update(self, unit_id: str, frames: int) -> None:
        self.frames[unit_id] = frames

    def frames_done(self) -> int:
        return sum(self.frames.values())

    def status(self) -> dict:
        """Per unit: frames done, attempts, and the node, worker and
        process analysing it."""
        return {unit_id: dict(where, frames=self.frames.get(unit_id, 0),
                              attempts=self.attempts[unit_id])
                for unit_id, where in self.where.items()}


class Worker:
    """One model replica (a Ray actor): ``PoseAnalysisService`` loaded once,
    run on one unit at a time."""

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
        if not ray.get_gpu_ids() and config.device in ('auto', 'cuda'):
            config = dataclasses.replace(config, device='cpu')
        self.error = None
        try:
            from pose_analysis_service import PoseAnalysisService
            self.service = PoseAnalysisService(
                dataclasses.replace(config, quiet=True))
        except SuiteError as exc:  # sent back: the driver says it once
            self.error = exc

    def ready(self, probe: str) -> dict:
        return dict(error=self.error, node=self.node,
                    sees_output=os.path.exists(probe))

    def _where(self) -> dict:
        return dict(node=self.node, node_id=self.node_id[:12],
                    worker=self.index, pid=os.getpid())

    def analyse(self, unit: dict) -> dict:
        """Run one input or segment; a user error is an answer."""
        import ray
        where = self._where()
        attempt = ray.get(self.progress.started.remote(unit['unit_id'],
                                                       where))
        # A retried call resumes the partial file its dead attempt left.
        resume = self.service.config.resume or attempt > 1
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
                output = self.service.run(
                    unit['source'], unit['output'], resume=resume,
                    frame_range=(unit['segment']['start'],
                                 unit['segment']['stop'])
                    if unit['segment'] else None,
                    run_info=dict(executor='ray', **where, attempts=attempt),
                    on_frame=on_frame)
                answer = dict(status='done', output=str(output),
                              **self.service.last_summary)
            except Exception as exc:  # noqa: BLE001  (see problem_of)
                status, reason = problem_of(exc)
                answer = dict(status=status, reason=reason)
        if answer['status'] == 'done':
            self.progress.update.remote(unit['unit_id'], unit['frames'])
        messages = [str(w.message) for w in caught
                    if issubclass(w.category, SuiteWarning)]
        if attempt > 1:  # the resumed partial is expected
            messages = [m for m in messages if 'nothing to resume' not in m]
        return dict(answer, warnings=messages, attempts=attempt, **where)

    def stitch(self, unit: dict) -> dict:
        """Join an input's segment files into its result, and export."""
        where = self._where()
        try:
            segments = [(Segment(**segment), Path(path))
                        for segment, path in unit['stitch_of']]
            meta, persons = stitch(
                [s for s, _ in segments], [p for _, p in segments],
                Path(unit['output']), self.service.config,
                run_info=dict(executor='ray', **where))
            self.service.export(Path(unit['output']), meta)
        except Exception as exc:  # noqa: BLE001  (see problem_of)
            return dict(status='failed', reason=problem_of(exc)[1])
        return dict(status='done', output=unit['output'],
                    frames=meta['frame_count'], persons=persons,
                    attempts=meta['run']['attempts'], **where)
