"""Which frames of a video a run analyses: a range and a step.

:class:`FrameSelection` holds the settings: a range in seconds of the
result's own clock (``time_range``, ``timestamp_s``) or in source frame
indices (``frame_range``, the last one included), and a step: every Nth
frame of the range (``frame_step``) or the frame nearest each ``1 /
target_fps`` tick of the true timestamps, from the range's first frame
(``target_fps``).

:meth:`FrameSelection.plan` applies them to an opened source as a
:class:`FramePlan`: where the read starts (``first``: the source seeks
there, skipping what is before), where it stops (``stop``: nothing from
there on is read), and which frames read are analysed
(:meth:`FramePlan.wants`), decided from the index and time a frame has
before it is decoded into pixels. Where the container's packets give every
frame's time (:class:`~pose_suite.media.packets.PacketTable`) the frames
are chosen in advance, so a resumed run or a segment of a long video
chooses the same frames as a whole run; elsewhere (a camera, a stream, a
file without packet times) they are chosen as they come, the next frame's
time taken one frame interval on.

An image is always analysed whole: a range or step is a video's.
"""
import bisect
import dataclasses
import math
import warnings
from typing import List, Optional, Tuple

from pose_suite.errors import InputError, SuiteWarning, visible
from pose_suite.media.packets import PacketTable

#: Times closer than this are the same (results are written to 1 µs).
SAME_TIME_S = 5e-7


class RangeError(InputError):
    """A range or step that selects no frame of an input (past its end), or
    a rate above the input's own."""


@dataclasses.dataclass(frozen=True)
class FrameSelection:
    """The part of a video to analyse (see the module's docstring).

    ``time_range``: ``(start_s, end_s)``, either None (open);
    ``frame_range``: ``(first, last)`` source indices, last included,
    either None; never both. ``frame_step``: every Nth frame (1: all);
    ``target_fps``: about this many frames a second (0: off); never both.
    """

    time_range: Optional[Tuple[Optional[float], Optional[float]]] = None
    frame_range: Optional[Tuple[Optional[int], Optional[int]]] = None
    frame_step: int = 1
    target_fps: float = 0.0

    @classmethod
    def from_config(cls, cfg) -> 'FrameSelection':
        """The selection of an :class:`~pose_suite.config.AnalysisConfig`."""
        return cls(cfg.time_range, cfg.frame_range, cfg.frame_step,
                   cfg.target_fps)

    @property
    def whole(self) -> bool:
        """Every frame of the whole video."""
        return self == FrameSelection()

    def as_meta(self) -> dict:
        """As ``meta.selection`` and the resume key record it."""
        return {'time_range': _listed(self.time_range),
                'frame_range': _listed(self.frame_range),
                'frame_step': self.frame_step,
                'target_fps': self.target_fps}

    def describe(self) -> str:
        """In words, for a summary or report: ``12.5-30 s, every 4th
        frame``; "" for the whole video."""
        parts = []
        if self.time_range is not None:
            parts.append(_ends(self.time_range, ' s'))
        if self.frame_range is not None:
            parts.append('frames ' + _ends(self.frame_range, ''))
        if self.frame_step > 1:
            parts.append(f'every {self.frame_step} frames')
        if self.target_fps:
            parts.append(f'{self.target_fps:g} fps')
        return ', '.join(parts)

    def plan(self, source, table: Optional[PacketTable] = None
             ) -> 'FramePlan':
        """The frames of ``source`` (a
        :class:`~pose_suite.media.sources.FrameSource`) to read and
        analyse; ``table``: its packet table, when the caller has it.

        Raises:
            RangeError: the range selects no frame (it starts after the
                video's end), or ``target_fps`` is above the video's own
                rate.
        """
        if source.kind == 'image' or self.whole:
            return FramePlan(self, first=0, stop=None)
        name = visible(source.path)
        if source.kind == 'video' and table is None:
            from pose_suite.media.packets import packet_table
            table = packet_table(source.path)
        if table is None or len(table) == 0:
            self._check_rate(source.fps, name)
            return FramePlan(self, first=(self.frame_range or (0,))[0] or 0,
                             stop=None, fps=source.fps)
        times = frame_times(table, source.fps)
        # The rate its frames come at (a variable rate's average is lower
        # where it pauses).
        interval = _interval(times)
        rate = 1.0 / interval if interval > 0 else source.fps
        self._check_rate(rate, name)
        from pose_suite.media.sniff import cut_short
        first, last = self._ends_in(times, interval, name, warn=not (
            table.indexed and cut_short(source.path)))
        indices = self._chosen(times, first, last)
        return FramePlan(self, first=indices[0], stop=indices[-1] + 1,
                         indices=indices, fps=rate, table=table,
                         end_s=times[last] + 1.0 / rate if rate else None)

    def _check_rate(self, rate: float, name: str) -> None:
        """Refuse a ``target_fps`` above the rate (frames a second) of the
        video's frames."""
        if self.target_fps and rate and \
                self.target_fps > rate * (1 + 1e-3):
            raise RangeError(
                f'target_fps {self.target_fps:g} is above the frame rate of '
                f'{name} ({rate:.6g} fps): every frame would be '
                'analysed; set a lower target_fps, or 0 for every frame')

    def _ends_in(self, times: List[float], interval: float, name: str,
                 warn: bool = True) -> Tuple[int, int]:
        """``(first, last)`` frame indices of the range in a video whose
        frames are at ``times``, ``interval`` apart (the median); a range
        past the end is cut there, said in
        one warning (``warn``; not for a file cut short, whose index lists
        frames it lost: the read says where it really ends)."""
        count = len(times)
        end_note = (f'{name} ends at frame {count - 1} '
                    f'({times[-1]:.3f} s)')
        if self.frame_range is not None:
            first, last = self.frame_range
            first = first or 0
            if first >= count:
                raise RangeError(f'frame_range {_ends(self.frame_range, "")}'
                                 f' starts after the end: {end_note}')
            if last is not None and last >= count and warn:
                _past_end('frame_range', _ends(self.frame_range, ''),
                          end_note)
            last = count - 1 if last is None else min(last, count - 1)
            return first, last
        start_s, end_s = self.time_range or (None, None)
        first = 0 if start_s is None else \
            bisect.bisect_left(times, start_s - SAME_TIME_S)
        last = count - 1 if end_s is None else \
            bisect.bisect_right(times, end_s + SAME_TIME_S) - 1
        shown = _ends(self.time_range, ' s') if self.time_range else ''
        if first >= count:
            raise RangeError(f'time_range {shown} starts after the end: '
                             f'{end_note}')
        if last < first:
            raise RangeError(f'time_range {shown} holds no frame of {name} '
                             f'(its first frame is at {times[0]:.3f} s)')
        if warn and end_s is not None and \
                end_s > times[-1] + SAME_TIME_S + interval:
            _past_end('time_range', shown, end_note)
        return first, last

    def _chosen(self, times: List[float], first: int, last: int
                ) -> List[int]:
        """The frames analysed among ``first..last`` (included)."""
        if not self.target_fps:
            return list(range(first, last + 1, self.frame_step))
        tick, origin = 1.0 / self.target_fps, times[first]
        # Ticks up to half way to the frame after the last (its cell).
        end_s = times[last] + 0.5 * (times[last] - times[last - 1]) \
            if last > first else times[last]
        chosen, at = [], first
        for number in range(int(math.floor((end_s - origin) / tick
                                           + 1e-9)) + 1):
            at = _nearest(times, origin + number * tick, at, last)
            if not chosen or chosen[-1] != at:
                chosen.append(at)
        return chosen


@dataclasses.dataclass
class FramePlan:
    """A :class:`FrameSelection` applied to one source.

    ``first``: the first frame read (those before are skipped by a seek);
    ``stop``: the frame at which reading stops (None: at the end);
    ``indices``: the frames analysed, when known in advance (sorted; None:
    chosen as they come, or every frame). ``fps``: the rate the frames come
    at (from their median interval where the packets tell; else the
    container's), for the interval to the next frame where it is not known.
    ``end_s``: one frame interval after the range's last frame, where
    known (an overlay shows the last analysed frame until then).
    """

    selection: FrameSelection
    first: int
    stop: Optional[int]
    indices: Optional[List[int]] = None
    fps: float = 0.0
    #: The source's packet table, when read to plan (not read again).
    table: Optional[PacketTable] = None
    end_s: Optional[float] = None
    # Chosen as they come: the time of the range's first frame, and the
    # next tick of target_fps not yet taken.
    _origin: Optional[float] = None
    _next_tick: Optional[float] = None
    _first_index: int = 0

    @property
    def everything(self) -> bool:
        """Every frame is analysed: no choice to make."""
        return self.selection.whole

    def wants(self, index: int, time_s: Optional[float]) -> bool:
        """Whether frame ``index`` (at ``time_s``, None when unknown) is
        analysed. Frames must be asked about in order, each once."""
        if self.everything:
            return True
        if self.indices is not None:
            at = bisect.bisect_left(self.indices, index)
            return at < len(self.indices) and self.indices[at] == index
        return self._wanted_as_it_comes(index, time_s)

    def past_end(self, index: int, time_s: Optional[float]) -> bool:
        """Whether reading can stop before frame ``index`` (at
        ``time_s``): it is past the range."""
        if self.stop is not None and index >= self.stop:
            return True
        selection = self.selection
        if self.indices is None and selection.frame_range is not None and \
                selection.frame_range[1] is not None:
            return index > selection.frame_range[1]
        if self.indices is None and selection.time_range is not None and \
                selection.time_range[1] is not None and time_s is not None:
            return time_s > selection.time_range[1] + SAME_TIME_S
        return False

    def count_before(self, index: int) -> Optional[int]:
        """How many frames analysed come before frame ``index`` (where the
        ``det_interval`` count stands there); None where not known in
        advance."""
        if self.indices is not None:
            return bisect.bisect_left(self.indices, index)
        if self.everything:
            return index
        return None

    def next_after(self, index: int) -> Optional[int]:
        """The source index of the analysed frame that comes after frame
        ``index``: ``index + 1`` where every frame is analysed, the next of
        ``indices`` where they are known in advance (-1 past the last: none
        comes); None where chosen as they come (any later frame may)."""
        if self.everything:
            return index + 1
        if self.indices is None:
            return None
        at = bisect.bisect_right(self.indices, index)
        return self.indices[at] if at < len(self.indices) else -1

    def _wanted_as_it_comes(self, index: int, time_s: Optional[float]
                            ) -> bool:
        selection = self.selection
        if index < self.first or time_s is None or \
                self.past_end(index, time_s):
            return False
        if selection.time_range is not None and \
                selection.time_range[0] is not None and \
                time_s < selection.time_range[0] - SAME_TIME_S:
            return False
        if self._origin is None:
            self._origin = time_s
            self._next_tick = time_s
            self._first_index = index
        if selection.frame_step > 1:
            return (index - self._first_index) % selection.frame_step == 0
        if not selection.target_fps:
            return True
        # The frames' cells end half way to the next frame, one interval
        # on; a frame is taken for the ticks in its cell.
        cell_end = time_s + 0.5 / self.fps if self.fps else time_s
        taken = False
        while self._next_tick <= cell_end + SAME_TIME_S:
            taken = True
            self._next_tick += 1.0 / selection.target_fps
        return taken


def frame_times(table: PacketTable, fps: float) -> List[float]:
    """The time of every frame of a packet table as a read gives it: the
    table's, and for the last frames of a decoder that hands them out late
    (``delay``), on from the last by one frame interval."""
    times = [table.time_of(index) for index in range(len(table))]
    interval = 1.0 / fps if fps > 0 else _interval(
        [t for t in times if t is not None])
    for index, time_s in enumerate(times):
        if time_s is None:
            times[index] = (times[index - 1] + interval) if index else 0.0
    return times


def _nearest(times: List[float], tick: float, low: int, high: int) -> int:
    """The index in ``low..high`` of the time nearest ``tick`` (the
    earlier on a tie), searching from ``low`` (ticks come in order)."""
    at = bisect.bisect_left(times, tick, low, high + 1)
    if at > high:
        return high
    if at > low and tick - times[at - 1] <= times[at] - tick + SAME_TIME_S:
        return at - 1
    return at


def _interval(times: List[float]) -> float:
    """The median frame interval of ``times`` (0 for fewer than two)."""
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    return gaps[len(gaps) // 2] if gaps else 0.0


def _past_end(key: str, shown: str, end_note: str) -> None:
    warnings.warn(f'{key} {shown} runs past the end of the video: '
                  f'{end_note}; analysed up to there', SuiteWarning)


def _ends(pair, unit: str) -> str:
    start, end = pair
    return (f'{"" if start is None else f"{start:g}"}-'
            f'{"" if end is None else f"{end:g}"}{unit}')


def _listed(pair) -> Optional[list]:
    return None if pair is None else list(pair)
