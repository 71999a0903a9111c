"""Where a video stream's frames are, from its container's packets.

:class:`PacketTable` lists the presentation times of the frames a stream
shows, sorted: an MP4/MOV's index lists every frame it shows (edit lists
respected; a file cut short still lists what it lost); for other
containers OpenCV's raw mode (``CAP_PROP_FORMAT = -1``) demuxes without
decoding, about 1 ms for 100 packets, and gives every packet's time.
A packet the raw mode cannot hand out (a damaged H.264 NAL length: the
bitstream filter refuses it) is skipped, and its time, which OpenCV does
not give, is put back where a constant frame rate leaves a hole for it
(else the table would end there or lack it, and every later frame would
take the index before its own).
"""
import bisect
import dataclasses
import statistics
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import cv2

from pose_suite.errors import opencv_name

#: Packet times closer than this repeat (a container without times).
REPEAT_S = 1e-5
#: A packet time before this (seconds) is FFmpeg's "no time"
#: (``AV_NOPTS_VALUE``, INT64_MIN, as OpenCV's raw mode scales it: an
#: all-intra H.264 MKV, a raw ``.h264``), not a time: None.
NO_TIME_S = -1e6
#: Reads that may fail at the start while the B-frame delay is measured.
MAX_FIRST_READS = 32
#: Failed raw reads in a row taken for the end of the file.
RAW_FAILURES_AT_END = 4096  # about 1 ms at the end
#: How close (seconds) a decoded frame's time must be to a packet's.
TIME_MATCH_S = 0.001
#: Most frames a decoder hands frames out late by (B-frames in AVI).
MAX_DELAY = 8
#: Frames missing at a constant frame rate that are reported as a gap.
GAP_FRAMES = 3


@dataclasses.dataclass(frozen=True)
class PacketTable:
    """The frames a video stream shows, from its packets.

    ``times``: their presentation times (seconds from the stream's start,
    as ``CAP_PROP_POS_MSEC`` gives them), sorted: frame i is at
    ``times[i + delay]``... for i < len - delay. ``delay``: how many
    packets later the time a decoded frame carries is (AVI with B-frames),
    else 0. ``keys``: the places in ``times`` of the key frames' packets
    (from packets read; none from an index), where a decoder that lost its
    references or seeked finds them again. ``indexed``: from the container's index, which lists the frames
    of a file cut short too (MP4/MOV); else from the packets read.
    """

    times: List[float]
    delay: int = 0
    indexed: bool = False
    keys: Tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.times)

    def place(self, time_s: float) -> Optional[int]:
        """The index of the frame decoded with time ``time_s``, or None
        when no packet has that time (see :func:`_nearest`)."""
        at = nearest_place(self.times, time_s)
        return None if at is None or at < self.delay else at - self.delay

    def time_of(self, index: int) -> Optional[float]:
        """The time frame ``index`` is decoded with, when the table has
        it."""
        at = index + self.delay
        return self.times[at] if 0 <= at < len(self.times) else None

    def gaps(self, from_s: float = 0.0) -> List[Tuple[float, float, int]]:
        """Stretches from ``from_s`` on without a frame where a constant
        frame rate puts :data:`GAP_FRAMES` or more: ``(last time before,
        first time after, frames missing)``. A container that lost data
        (a Matroska block overwritten) resumes at its next readable
        packet, as ffprobe does, and only the times show the loss; none
        for a variable frame rate, whose intervals say nothing."""
        intervals = [b - a for a, b in zip(self.times, self.times[1:])]
        if len(intervals) < 8:
            return []
        usual = statistics.median(intervals)
        tolerance = 0.0015 + 0.02 * usual
        if sum(abs(i - usual) <= tolerance for i in intervals) < \
                0.9 * len(intervals):
            return []
        return [(a, b, round((b - a) / usual) - 1)
                for a, b in zip(self.times, self.times[1:])
                if b >= from_s and round((b - a) / usual) - 1 >= GAP_FRAMES]

    def key_after(self, packet: int) -> int:
        """The first frame a decoder that lost packet ``packet`` (a place
        in ``times``) shows right again: that of the first key packet
        after it, which in decoding order is preceded by all the frames
        shown before it (len: none)."""
        at = bisect.bisect_right(self.keys, packet)
        return self.keys[at] if at < len(self.keys) else len(self.times)


def packet_table(path: Union[Path, str]) -> Optional[PacketTable]:
    """The :class:`PacketTable` of a video file, or None when its packets
    do not say where its frames are (no times, or times that repeat)."""
    from pose_suite.media.sniff import mp4_frame_times
    try:
        indexed = mp4_frame_times(Path(path))
    except OSError:
        indexed = None
    if indexed is not None:
        times, delay, from_index, keys = indexed[0], 0, True, ()
    else:
        packets = packet_times(path, keys=True)
        read = [time for time, _ in packets]
        lost = read.count(None)
        near = [(min(around), max(around)) for around in (
            [t for t in read[max(0, at - MAX_DELAY):at + MAX_DELAY + 1]
             if t is not None] for at, time in enumerate(read)
            if time is None) if around]
        packets = [(time, key) for time, key in packets if time is not None]
        order = [time for time, _ in packets]
        # Times before the stream's start read as 0 (packets a decoder
        # drops): one frame at most is at 0.
        times = sorted(set(t for t in order if t <= 0)) + \
            sorted(t for t in order if t > 0)
        if lost:
            times = _with_lost(times, lost, near)
            if times is None:
                return None
        # Decoding times in order, and frames that refer to others: the
        # decoder may hand frames out late.
        delay = _decoding_delay(path, times) if order == sorted(order) \
            and not all(key for _, key in packets) else 0
        from_index = False
        keys = tuple(sorted({nearest_place(times, time)
                             for time, key in packets if key} - {None}))
    if not times or any(b - a < REPEAT_S
                        for a, b in zip(times, times[1:])):
        return None
    return PacketTable(times, delay, from_index, keys)


def packet_times(path: Union[Path, str], keys: bool = False) -> List:
    """Times (seconds from the stream's start, as ``CAP_PROP_POS_MSEC``
    gives them: presentation times, or decoding times where the container
    has no others) of every video packet of ``path``, in the file's order
    (``keys``: ``(time, is a key frame)`` pairs); None (``(None, False)``)
    for a packet the raw mode could not hand out, followed by one it
    could, and as the time of a packet that has none (:data:`NO_TIME_S`).
    Demuxes only."""
    capture = cv2.VideoCapture(opencv_name(path), cv2.CAP_FFMPEG)
    times, failed = [], 0
    try:
        if capture.isOpened() and capture.set(cv2.CAP_PROP_FORMAT, -1):
            # The end of the file fails every grab; a damaged packet one.
            while failed < RAW_FAILURES_AT_END:
                if not capture.grab():
                    failed += 1
                    continue
                times += [(None, False) if keys else None] * failed
                failed = 0
                time = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if time < NO_TIME_S:
                    time = None
                times.append((time, bool(capture.get(
                    cv2.CAP_PROP_LRF_HAS_KEY_FRAME))) if keys else time)
    finally:
        capture.release()
    return times


def _with_lost(times: List[float], lost: int,
               near: Sequence[Tuple[float, float]] = ()
               ) -> Optional[List[float]]:
    """Sorted ``times`` with those of ``lost`` packets that had none put
    where a constant frame rate leaves a hole (before the first, from the
    stream's start, too). ``near``: for each lost packet, the earliest and
    latest times of the packets around it in decoding order (its own is
    among them: B-frames reorder only so far). The holes there when they
    are as many as the packets lost (a recording's own gap elsewhere is
    not taken); else the one-frame holes when there are as many, else
    every hole when they hold as many frames; None when the holes do not
    say where the lost packets were (a variable frame rate)."""
    intervals = [b - a for a, b in zip(times, times[1:])]
    if len(intervals) < 4:
        return None
    usual = statistics.median(intervals)
    tolerance = 0.0015 + 0.02 * usual
    if any(abs(gap - round(gap / usual) * usual) > tolerance
           for gap in intervals + [times[0]]):
        return None  # not one rate
    holes = [(a, round((b - a) / usual) - 1)
             for a, b in zip([times[0] - usual * (round(times[0] / usual)
                                                  + 1)] + times, times)]
    holes = [(a, slots) for a, slots in holes if slots >= 1]
    slots = {a: [max(a + usual * (n + 1), 0.0) for n in range(count)]
             for a, count in holes}
    nearby = sorted({time for times_of_hole in slots.values()
                     for time in times_of_hole
                     if any(low - usual / 2 <= time <= high + usual / 2
                            for low, high in near)})
    if near and len(nearby) == lost:
        return sorted(times + nearby)
    singles = [a for a, count in holes if count == 1]
    if len(singles) == lost:
        added = [slots[a][0] for a in singles]
    elif sum(count for _, count in holes) == lost:
        added = [time for a, _ in holes for time in slots[a]]
    else:
        return None
    return sorted(times + added)


def _decoding_delay(path: Union[Path, str], times: List[float]) -> int:
    """For packets in time order (decoding times, or a stream without
    reordering): how many packets later than its place in decoding order
    the first decoded frame's time is (the B-frame delay of an AVI),
    counting the reads that failed before it (a damaged first group of
    pictures: each failed read stands for a frame); 0 when none of the
    first reads decodes or the delay is more than :data:`MAX_DELAY`
    (frames lost at the start, not a decoder's delay)."""
    capture = cv2.VideoCapture(opencv_name(path), cv2.CAP_FFMPEG)
    at = None
    try:
        for failed in range(MAX_FIRST_READS):
            if capture.grab():
                at = nearest_place(times, capture.get(
                    cv2.CAP_PROP_POS_MSEC) / 1000.0)
                at = None if at is None else at - failed
                break
    finally:
        capture.release()
    return at if at is not None and 0 <= at <= MAX_DELAY else 0


def nearest_place(times: List[float], time_s: float) -> Optional[int]:
    """The place in sorted ``times`` of the one ``time_s`` is, within
    :data:`TIME_MATCH_S` or half the interval to its neighbours (frame
    rates of 1000 fps and more)."""
    at = bisect.bisect_left(times, time_s)
    best = min((i for i in (at - 1, at) if 0 <= i < len(times)),
               key=lambda i: abs(times[i] - time_s), default=None)
    if best is None:
        return None
    gaps = [abs(times[i] - times[best]) for i in (best - 1, best + 1)
            if 0 <= i < len(times)]
    if abs(times[best] - time_s) > min([TIME_MATCH_S] +
                                       [gap / 2 for gap in gaps]):
        return None
    return best
