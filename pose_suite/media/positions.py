"""Where each decoded video frame stands in its stream, and how to get to a
frame without decoding all the frames before it.

A frame's index is its place among the frames the stream shows, in
presentation order, gaps and all (ffprobe's view: a frame that does not
decode keeps its index). The container's packets say where each frame is
(:class:`PacketTable`): an MP4/MOV's index lists every frame it shows with
its presentation time (edit lists respected: the packets a ``-ss ... -c
copy`` trim keeps before its cut are not frames; a file cut short still
lists what it lost); for other containers OpenCV's raw mode
(``CAP_PROP_FORMAT = -1``) demuxes without decoding, about 1 ms for 100
packets, and gives every packet's time. A decoded frame's index is the
place of its time among them (:class:`FrameIndexer`), whatever failed,
paused or was reordered before it, and whether the read started at the
first frame or after a seek (:func:`seek`): a read from frame N gives the
indices and times of a read from the first.

A decoder that lost a key frame's references (a damaged packet) may hand
a picture out after a later one was shown; its place was passed (and
counted failed), so it is dropped, as a player drops it.

Some containers have no presentation times, only decoding times (AVI):
there a decoder with B-frames hands each frame out with the time of a
packet ``delay`` places later, and the last ``delay`` frames with none.
The delay is measured once by decoding the first frame (the reads that
failed before it, a damaged first group of pictures, count); the frames
without a time are counted on from the last one that has one, and their
times go on from its time by the frame interval. After a failed read the
time a picture carries no longer says which it is, until the decoder has
found the next key frame: the pictures before it are dropped (counted
failed), and a read after a seek must start with a key frame's picture. Where there are no
packet times at all (a camera, a stream, a container whose times repeat),
frames are counted, and after a failed read placed by the time since the
last good frame in units of the interval measured before.
"""
import statistics
import warnings
from collections import deque
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from pose_suite.errors import SuiteWarning
from pose_suite.media.packets import PacketTable, nearest_place

#: Frame intervals remembered to measure a clip's frame rate before damage
#: (sources without packet times).
INTERVALS_KEPT = 16
#: Seconds a seek backs off before the frame it wants, in turn, when
#: OpenCV's seek lands after it (its seek is by estimated frame number).
SEEK_BACK_OFFS_S = (0.0, 1.0, 4.0, 16.0, 64.0)
class FrameIndexer:
    """Gives each decoded frame its index and time (see the module's
    docstring).

    Args:
        fps: the container's average frame rate (0: unknown).
        table: the stream's :class:`PacketTable`, if it has one.
    """

    def __init__(self, fps: float, table: Optional[PacketTable] = None):
        self.fps = fps
        self.table = table
        self.last_index = -1
        self.last_time: Optional[float] = None
        #: (index, time) of the last frame whose time was the container's.
        self.last_real: Optional[tuple] = None
        self.timed = False  # no table, a read failed: positions from times
        self.placed = True  # the last frame's time was found in the table
        #: The packet whose time the last frame carried (``delay``).
        self.last_packet: Optional[int] = None
        #: After a failed read with ``delay``: the first frame shown right
        #: again; the frames decoded before it are not placed.
        self.resume_at: Optional[int] = None
        self._intervals: deque = deque(maxlen=INTERVALS_KEPT)

    def next_position(self, failures: int) -> int:
        """Where the next read stands, counting ``failures`` reads that
        failed since the last good frame."""
        return self.last_index + 1 + failures

    def place(self, time_s: Optional[float], failures: int,
              behind: bool = False) -> Optional[tuple]:
        """``(index, time)`` of a frame decoded with ``time_s`` (None: the
        container gave it no time; ``behind``: the time it gave is before
        the last frame's) after ``failures`` failed reads; None for a frame
        that has no place (see :meth:`_misplaced`)."""
        if self._misplaced(time_s, failures, behind):
            return None
        index = None
        if self.table is not None:
            index = self.table.place(time_s) if time_s is not None \
                else None
            if index is not None and index <= self.last_index:
                index = None  # a time seen before: not this frame's
            self.placed = index is not None
        elif failures:
            self.timed = True
        interval = self._interval()
        if index is None and self.table is None and self.timed and \
                time_s is not None and interval and \
                self.last_time is not None:
            index = self.last_index + max(1, round(
                (time_s - self.last_time) / interval))
        if index is None:
            index = self.last_index + 1 + failures
        if time_s is None or (self.table is not None and not self.placed):
            time_s = self._time_without(index)
        else:
            self.last_real = (index, time_s)
        if self.table is None and not self.timed and not failures and \
                self.last_time is not None and time_s > self.last_time:
            self._intervals.append(time_s - self.last_time)
        self.last_index, self.last_time = index, time_s
        return index, time_s

    def from_key(self, index: int) -> bool:
        """Whether a read after a seek may start with frame ``index``: only
        a key frame's picture comes out first from a seek that landed on
        one (another means it landed inside a group of pictures, as in an
        MPEG-TS, and the decoder shows what it cannot rebuild, or it
        swallowed a damaged key frame); any where the packets do not say
        which are key frames (an MP4's index: its seeks land on them)."""
        table = self.table
        return table is None or not table.keys or index in table.keys

    def _misplaced(self, time_s: Optional[float], failures: int,
                   behind: bool) -> bool:
        """Whether a decoded frame is not shown: where packets have
        presentation times, one that comes out after a later frame was
        shown (a decoder that lost references hands it out late: its
        place, passed, was counted failed); where they have decoding times
        only (``delay``), after a failed read, those that come out before
        the decoder has found a key frame again (the time they carry no
        longer says which frame they are)."""
        table = self.table
        if table is None:
            return False
        if not table.delay:
            return behind
        if time_s is None:
            return self.resume_at is not None
        packet = nearest_place(table.times, time_s)
        if packet is None:
            return False
        if failures and self.resume_at is None:
            lost = (self.last_packet if self.last_packet is not None
                    else -1) + 1
            self.resume_at = table.key_after(lost)
        if self.resume_at is not None:
            if packet - table.delay < self.resume_at:
                return True
            self.resume_at = None
        self.last_packet = packet
        return False

    def _time_without(self, index: int) -> float:
        """The time of a frame the container gave none (or a wrong one):
        the table's, else on from the last real time by the interval."""
        if self.table is not None and self.table.time_of(index) is not None \
                and (self.last_time is None
                     or self.table.time_of(index) > self.last_time):
            return self.table.time_of(index)
        interval = self._interval() or 0.0
        if self.last_real is not None:
            real_index, real_time = self.last_real
            return real_time + (index - real_index) * interval
        return index * interval

    def _interval(self) -> Optional[float]:
        if self._intervals:
            return statistics.median(self._intervals)
        return 1.0 / self.fps if self.fps > 0 else None


class PresentationClock:
    """Each decoded frame's presentation time, from OpenCV's
    ``CAP_PROP_POS_MSEC`` (FFmpeg's presentation time, else the decoding
    time, from the stream's start), or None where the container gives none
    (0, or a time not after the last one: the last frames of an AVI with
    B-frames). A live source (camera, stream) counts from an arbitrary
    origin: its first frame's time is subtracted."""

    def __init__(self, path: Union[Path, str], live: bool):
        self.path = path
        self.origin_ms = None if live else 0.0
        self.last_ms = None
        self.warned = False
        #: The last frame's time was before the one before it.
        self.behind = False

    def time_of(self, position: int, position_ms: float,
                warn: bool) -> Optional[float]:
        """The time of the frame read at ``position`` for which OpenCV said
        ``position_ms`` (``CAP_PROP_POS_MSEC``). ``warn``: say once that
        the source gives no times (where no packet times stand in for
        them)."""
        if self.origin_ms is None:
            self.origin_ms = position_ms
        self.behind = bool(np.isfinite(position_ms) and self.last_ms
                           is not None and position_ms < self.last_ms)
        if np.isfinite(position_ms) and (
                self.last_ms is None or position_ms > self.last_ms):
            self.last_ms = position_ms
            return max(position_ms - self.origin_ms, 0.0) / 1000.0
        if warn and not self.warned:
            self.warned = True
            warnings.warn(f'{self.path} gives no presentation time from '
                          f'frame {position} on; timestamp_s goes on from '
                          'the last time it gave, by 1 / fps', SuiteWarning)
        return None


def seek(capture: cv2.VideoCapture, table: PacketTable, start: int,
         attempt: int) -> bool:
    """Seek ``capture`` to before frame ``start`` (the ``attempt``-th try
    backs off further, :data:`SEEK_BACK_OFFS_S`); False when no try is
    left (then decode from the first frame)."""
    if attempt >= len(SEEK_BACK_OFFS_S):
        return False
    at = table.time_of(start)
    if at is None:
        at = table.times[-1]
    at = max(0.0, at - SEEK_BACK_OFFS_S[attempt])
    return bool(capture.set(cv2.CAP_PROP_POS_MSEC, at * 1000.0))
