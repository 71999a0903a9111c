"""Where each decoded video frame stands in its stream, and how to get to a
frame without decoding all the frames before it.

A frame's index is its position in the stream, gaps and all. While every
read succeeds, frames are counted one by one. After a read has failed (a
damaged or cut-off stretch, after which a decoder may drop or delay frames)
a count no longer says where a frame is, so positions come from the
presentation times instead: the time since the last good frame in units of
the frame interval measured before the damage (ffprobe's view of a cut-off
file: the frame at 0.30 s of a 50 fps clip is frame 15, whatever was lost
before it).

The container's packets are the other source of truth. OpenCV's raw mode
(``CAP_PROP_FORMAT = -1``) demuxes without decoding, about 1 ms for 100
packets here, and gives every packet's presentation time
(:func:`packet_times`). Sorted, they name the time of frame N, which is
what seeking needs (:func:`seek`) and what decides whether frames a
container reports are really missing at the end.
"""
import bisect
import statistics
from collections import deque
from pathlib import Path
from typing import List, Optional, Union

import cv2

#: Frame intervals remembered to measure a clip's frame rate before damage.
INTERVALS_KEPT = 16
#: Seconds a seek backs off before the frame it wants, in turn, when
#: OpenCV's seek lands after it (its seek is by estimated frame number).
SEEK_BACK_OFFS_S = (0.0, 1.0, 4.0, 16.0, 64.0)


def packet_times(path: Union[Path, str]) -> List[float]:
    """Presentation times (seconds from the stream's start, as
    ``CAP_PROP_POS_MSEC`` gives them) of every video packet of ``path``
    that can be read, in presentation order. Demuxes only."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    times = []
    try:
        if capture.isOpened() and capture.set(cv2.CAP_PROP_FORMAT, -1):
            while capture.grab():
                times.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
    finally:
        capture.release()
    return sorted(times)


class FrameIndexer:
    """Gives each decoded frame its index (see the module's docstring).

    Args:
        fps: the container's average frame rate (0: unknown).
        table: sorted packet times (:func:`packet_times`); when given, a
            frame's index is its time's place in it (after a seek).
    """

    def __init__(self, fps: float, table: Optional[List[float]] = None):
        self.fps = fps
        self.table = table
        self.last_index = -1
        self.last_time: Optional[float] = None
        self.timed = False  # a read failed: positions from times
        self.placed = True  # with a table: the last time was found in it
        self._intervals: deque = deque(maxlen=INTERVALS_KEPT)

    def next_position(self, failures: int) -> int:
        """Where the next read stands, counting ``failures`` reads that
        failed since the last good frame."""
        return self.last_index + 1 + failures

    def index(self, time_s: float, failures: int, timed_ok: bool) -> int:
        """The index of a frame decoded at ``time_s`` after ``failures``
        failed reads; ``timed_ok``: the time is the container's, not an
        estimate."""
        index = None
        if self.table is not None:
            index = _place(self.table, time_s) if timed_ok else None
            self.placed = index is not None
        if index is None:
            if failures:
                self.timed = True
            interval = self._interval()
            if self.timed and timed_ok and interval and \
                    self.last_time is not None:
                index = self.last_index + max(1, round(
                    (time_s - self.last_time) / interval))
            else:
                index = self.last_index + 1 + failures
        if not self.timed and not failures and self.last_time is not None \
                and time_s > self.last_time:
            self._intervals.append(time_s - self.last_time)
        self.last_index, self.last_time = index, time_s
        return index

    def _interval(self) -> Optional[float]:
        if self._intervals:
            return statistics.median(self._intervals)
        return 1.0 / self.fps if self.fps > 0 else None


def _place(table: List[float], time_s: float) -> Optional[int]:
    """The index of the packet time nearest ``time_s`` (within 1 ms)."""
    at = bisect.bisect_left(table, time_s)
    best = min((i for i in (at - 1, at) if 0 <= i < len(table)),
               key=lambda i: abs(table[i] - time_s), default=None)
    if best is None or abs(table[best] - time_s) > 0.001:
        return None
    return best


def seek_table(path: Union[Path, str], frame_count: int,
               start: int) -> Optional[List[float]]:
    """The packet times of ``path`` when seeking to frame ``start`` gives
    the same frames as decoding from the first (one packet per reported
    frame, no two at the same time); None when it would not."""
    if start <= 0:
        return None
    table = packet_times(path)
    if len(table) != frame_count or start >= len(table) or \
            len(set(table)) != len(table):
        return None
    return table


def seek(capture: cv2.VideoCapture, table: List[float], start: int,
         attempt: int) -> bool:
    """Seek ``capture`` to before frame ``start`` (the ``attempt``-th try
    backs off further, :data:`SEEK_BACK_OFFS_S`); False when no try is
    left (then decode from the first frame)."""
    if attempt >= len(SEEK_BACK_OFFS_S):
        return False
    at = max(0.0, table[start] - SEEK_BACK_OFFS_S[attempt])
    return bool(capture.set(cv2.CAP_PROP_POS_MSEC, at * 1000.0))


def stream_holds_more(path: Union[Path, str], last_index: int) -> bool:
    """Whether ``path`` has video packets to show after frame
    ``last_index`` (the last one decoded): frames that are there but could
    not be decoded, rather than frames a container's header or duration
    estimate counts but the stream never held (Matroska counts the audio's
    lead, an AVI header can say anything) or that an MP4's edit list marks
    to be skipped."""
    from pose_suite.media.sniff import presented_seconds
    times = packet_times(path)
    shown = presented_seconds(Path(path))
    if shown is not None:
        times = [time for time in times if time < shown - 1e-6]
    return len(times) > last_index + 1
