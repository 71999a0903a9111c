"""The bookkeeping of a batch spread over workers, with no Ray in it.

:class:`Scheduler` holds the queue of units (whole inputs, segments of long
videos, the stitching of an input's segments), what is running, what each
answer means, when an input's segments are all in and its stitching is due,
and how many attempts each unit has had. :mod:`pose_suite.batch.ray_executor`
only connects, submits what the scheduler hands out and tells it what came
back, translated from Ray's exceptions into the calls below.

Attempts are counted per unit, not per worker: a worker process that dies
is restarted and keeps serving, and an input fails only when its own
analysis was cut off ``max_attempts`` times. An attempt is charged only
when the worker had started it (a call that never reached a living worker
is sent again for free).
"""
import dataclasses
from collections import deque
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from pose_suite.batch.local import BatchResult
from pose_suite.batch.segments import Segment

#: Attempts of a unit whose worker died while it ran (the first included).
MAX_ATTEMPTS = 3


@dataclasses.dataclass
class Unit:
    """One call to a worker.

    ``kind``: ``'input'`` (a whole input), ``'segment'`` (frames
    ``segment`` of a video) or ``'stitch'`` (joining ``stitch_of``, a list
    of ``(Segment, segment file)``, into ``result``, then its exports; with
    ``kept``, a result found up to date: only the exports it lacks).
    """

    unit_id: str
    kind: str
    number: int            # the input's position in the batch, from 1
    source: str
    output: Path           # the file this unit writes
    result: Path           # the input's result (a segment's: once stitched)
    frames: int            # frames expected, for ordering and progress
    segment: Optional[Segment] = None
    stitch_of: Optional[list] = None
    attempts: int = 0      # attempts handed out and charged
    resume_partial: bool = False  # a cut-off attempt left a partial file
    unavailable: int = 0   # answers "worker unreachable, try again"
    kept: bool = False     # a stitch of a result found up to date
    settings: Optional[dict] = None  # config keys that differ for the input

    def message(self) -> dict:
        """What the worker receives (plain values, for pickling)."""
        return dict(dataclasses.asdict(self), output=str(self.output),
                    result=str(self.result))


class Scheduler:
    """What to send next, and what each answer means for the batch.

    Args:
        units: every unit of the batch but stitching (which the scheduler
            adds when an input's segments are in); sent longest first.
        result: filled in as inputs end.
        max_attempts: see :data:`MAX_ATTEMPTS`.
    """

    def __init__(self, units: Iterable[Unit], result: BatchResult,
                 max_attempts: int = MAX_ATTEMPTS):
        self.queue = deque(sorted(units, key=lambda unit: -unit.frames))
        self.result = result
        self.max_attempts = max_attempts
        self.running: Dict[str, Unit] = {}
        self._segments_left: Dict[int, List[Unit]] = {}
        self._segments_done: Dict[int, List[Unit]] = {}
        for unit in self.queue:
            if unit.kind == 'segment':
                self._segments_left.setdefault(unit.number, []).append(unit)

    @property
    def finished(self) -> bool:
        return not self.queue and not self.running

    def has_waiting(self) -> bool:
        return bool(self.queue)

    def take(self) -> Unit:
        """The next unit to send (an attempt is charged now; see
        :meth:`not_started`)."""
        unit = self.queue.popleft()
        unit.attempts += 1
        self.running[unit.unit_id] = unit
        return unit

    def answered(self, unit: Unit, answer: dict) -> Optional[str]:
        """A worker's answer (``status``: done, up to date, input up to
        date, failed, skipped). Returns ``'written'`` or ``'kept'`` when
        the unit ended its input with a result, else None."""
        if not self._release(unit):
            return None  # the input already failed or was found up to date
        status = answer['status']
        if status == 'skipped':
            self._end_input(unit.number)
            self.result.skipped.append((unit.source, answer['reason']))
            return None
        if status == 'failed':
            self._fail(unit, answer['reason'])
            return None
        if status == 'input up to date':  # a segment found the whole result
            self._stitch_kept(unit)
            return None
        if unit.kind == 'segment':
            if status == 'done':  # a kept segment was not analysed now
                self._count(answer)
            self._segment_in(unit)
            return None
        if status == 'up to date' or unit.kept:
            self.result.up_to_date.append(unit.result)
            return 'kept'
        self.result.outputs.append(unit.result)
        if unit.kind == 'input':  # a stitch's frames: its segments'
            self._count(answer)
        return 'written'

    def _count(self, answer: dict) -> None:
        """Frames and persons analysed by this run."""
        self.result.frames += answer['frames']
        self.result.persons += answer['persons']
        self.result.frames_kept += answer.get('frames_kept', 0)

    def not_started(self, unit: Unit) -> None:
        """The call never reached a living worker: send it again, free."""
        if self._release(unit):
            unit.attempts -= 1
            self.queue.appendleft(unit)

    def worker_died(self, unit: Unit, detail: str) -> None:
        """The worker died while it ran ``unit``: again, resuming its
        partial file, unless that was its last attempt."""
        if not self._release(unit):
            return
        if unit.attempts >= self.max_attempts:
            self._fail(unit, f'its Ray worker died {unit.attempts} times '
                             f'while analysing it ({detail})')
            return
        unit.resume_partial = True
        self.queue.appendleft(unit)

    def unreachable(self, unit: Unit, limit: int) -> bool:
        """The worker could not be reached (its node stopped answering, and
        Ray has not yet declared it dead): again, up to ``limit`` times in
        all for this unit. Returns False when the unit failed instead."""
        if not self._release(unit):
            return False
        unit.unavailable += 1
        if unit.unavailable > limit:
            self._fail(unit, 'its Ray worker was unreachable, and stayed so')
            return False
        unit.attempts -= 1
        unit.resume_partial = True
        self.queue.appendleft(unit)
        return True

    def fail_all(self, reason: str) -> None:
        """No worker is left: every input not ended fails with ``reason``."""
        ended = set()
        for unit in list(self.running.values()) + list(self.queue):
            if unit.number not in ended:
                ended.add(unit.number)
                self._fail(unit, reason)

    def _release(self, unit: Unit) -> bool:
        """Take ``unit`` off the running ones; False when it was no longer
        among them (its input ended through another unit)."""
        return self.running.pop(unit.unit_id, None) is not None

    def _segment_in(self, unit: Unit) -> None:
        """When the last segment of an input is in, its stitching comes
        next, before any other input."""
        left = self._segments_left[unit.number]
        left.remove(unit)
        self._segments_done.setdefault(unit.number, []).append(unit)
        if left:
            return
        done = sorted(self._segments_done.pop(unit.number),
                      key=lambda u: u.segment.start)
        del self._segments_left[unit.number]
        self.queue.appendleft(Unit(
            f'{unit.number}.stitch', 'stitch', unit.number, unit.source,
            unit.result, unit.result, 0, settings=unit.settings,
            stitch_of=[(dataclasses.asdict(u.segment), str(u.output))
                       for u in done]))

    def _stitch_kept(self, unit: Unit) -> None:
        """A segment found its input's result up to date: the input's
        other segments are dropped, and one stitch unit (never two at once)
        writes the exports it lacks and removes what an earlier run left."""
        number = unit.number
        planned = self._segments_left.get(number, []) + \
            self._segments_done.get(number, [])
        self._end_input(number)
        planned.sort(key=lambda u: u.segment.start)
        self.queue.appendleft(Unit(
            f'{number}.stitch', 'stitch', number, unit.source, unit.result,
            unit.result, 0, kept=True, settings=unit.settings,
            stitch_of=[(dataclasses.asdict(u.segment), str(u.output))
                       for u in planned]))

    def _end_input(self, number: int) -> None:
        """Drop whatever else of input ``number`` waits; answers of its
        units still running are then ignored."""
        self._segments_left.pop(number, None)
        self._segments_done.pop(number, None)
        self.queue = deque(u for u in self.queue if u.number != number)
        for unit_id in [i for i, u in self.running.items()
                        if u.number == number]:
            self.running.pop(unit_id)

    def _fail(self, unit: Unit, reason: str) -> None:
        self._end_input(unit.number)
        self.result.failures.append((unit.source, reason))
