"""The one place that decides what an input is and turns it into frames.

A file's kind comes from its content, not its name: OpenCV's image decoders
are asked first by signature (``cv2.haveImageReader``); files that are
certainly not media (text, subtitles, documents, audio only: see
:mod:`pose_suite.media.sniff`) are refused before FFmpeg can render them as a
pseudo-video; the rest go to OpenCV's video backend. A camera index or
stream URL is read through the same backend.

Frames come out as they are displayed: a video's rotation (the display
matrix phones write) and an image's EXIF orientation are applied, and the
source records which. Every frame carries its presentation time from the
container, so variable-frame-rate video gets true times. Everything
downstream sees ``(frame_index, timestamp_s, frame_bgr)``.
"""
import dataclasses
import os
import warnings
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

# FFmpeg's own log lines (read when the first capture opens) would bury
# our one-line errors; the failures they describe are reported as InputError.
os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pose_suite.config.specs import is_stream
from pose_suite.errors import (InputError, NotMediaError, SuiteWarning,
                               opencv_name)
from pose_suite.media.captures import (Reads, first_time, no_frame_error,
                                      open_capture, rate_from_packets)
from pose_suite.media.clocks import stream_start_seconds
from pose_suite.media.damage import DamageScan, start_scan
from pose_suite.media.images import read_image
from pose_suite.media.packets import PacketTable, packet_table
from pose_suite.media.positions import FrameIndexer, PresentationClock, seek
from pose_suite.media.selection import FramePlan
from pose_suite.media.sniff import (cut_short,
                                    looks_like_media, not_media_reason,
                                    special_file_kind)

Frame = Tuple[int, Optional[float], Optional[np.ndarray]]
#: Failed reads in a row after which a video is taken to have ended, when
#: the container reports no more frames than that...
MAX_CONSECUTIVE_FAILURES = 16
#: ... and at most, however many more it reports (a header can lie).
MAX_FAILURES_IN_REPORTED = 10_000
@dataclasses.dataclass
class DecodeReport:
    """What reading a video found at its end: ``frames_unread_at_end``
    frames that the container reports after the last decoded one, none of
    which could be read (damaged, cut off, or a container that counts
    wrong); 0 when the video ended as reported."""

    frames_unread_at_end: int = 0
    #: Frames decoded, those before a segment's first included.
    frames_decoded: int = 0
    #: FFmpeg decoding the video beside the read, for the frames it
    #: decodes with errors (:mod:`pose_suite.media.damage`); None: not
    #: checked (no ffmpeg, not a video file).
    damage: Optional[DamageScan] = None
    #: ``(first, stop)``: the frames whose damage is checked (a resumed
    #: run's result starts before its read), set by a caller that waits
    #: for ``damage``; None: not checked.
    damage_range: Optional[Tuple[int, Optional[int]]] = None
    #: The frames written that FFmpeg decoded with errors it concealed
    #: (``meta.frames_damaged``); None: not checked.
    frames_damaged: Optional[List[int]] = None


@dataclasses.dataclass(frozen=True)
class FrameSource:
    """An opened input.

    ``width`` and ``height`` are those of the frames as displayed (after
    ``rotation``); ``frame_count`` is what the container reports (videos
    can lie; the writer records how many frames were really read); ``fps``
    is the container's average frame rate, 0.0 for an image.
    ``rotation`` (clockwise degrees: 0, 90, 180, 270) and ``mirrored`` say
    how the stored pixels were turned to show them as displayed: from the
    video's display matrix, or the image's EXIF orientation.
    """

    path: Union[Path, str]  # str: a camera index or stream URL
    kind: str  # 'image', 'video' or 'stream'
    width: int
    height: int
    fps: float
    frame_count: int
    rotation: int = 0
    mirrored: bool = False
    #: When the video stream starts on its container's clock, in seconds
    #: (ffprobe's stream ``start_time``): ``timestamp_s + stream_start_s``
    #: is a frame's presentation time in the file, as its sound's is. None
    #: for an image, a camera or a stream.
    stream_start_s: Optional[float] = None

    def frames(self, start: int = 0,
               report: Optional[DecodeReport] = None,
               plan: Optional[FramePlan] = None) -> Iterator[Frame]:
        """Yield ``(frame_index, timestamp_s, frame)`` in order.

        frame is (H, W, 3) uint8 BGR as displayed, or None (and
        timestamp_s None) for a frame that could not be decoded while later
        ones could (a warning is issued; the caller records it).
        frame_index counts from 0 over the whole video. timestamp_s is the
        frame's presentation time from the container, in seconds from the
        start of the video stream (from the first frame for a camera or
        stream); 0.0 for an image.

        Reading goes on past a run of undecodable frames as long as the
        container reports more frames, so good frames after a damaged
        stretch are not lost. Frames the container reports after the last
        decodable one are warned about once and counted in ``report``.

        Args:
            start: first frame index to yield. Decoding starts at the key
                frame before it (see :mod:`pose_suite.media.positions`), with the
                indices and times of a read from the first frame; where
                the packets do not allow that, earlier frames are decoded
                and dropped.
            report: filled in when the video has been read to its end;
                with its ``damage_range`` set, its ``damage`` scan starts
                with the read (the caller waits for it, or closes it).
            plan: the frames to give out (a range and step,
                :mod:`pose_suite.media.selection`): the read starts at its
                first (a seek), ends past its last, and the frames between
                are decoded but never turned into pictures.
        """
        if self.kind == 'image':
            if start == 0:
                yield 0, 0.0, read_image(self.path)[0]
            return
        if plan is not None and plan.everything:
            plan = None
        if plan is not None:
            start = max(start, plan.first)
        capture = Reads(open_capture(self.path))
        table = None if self.kind != 'video' else plan.table \
            if plan is not None and plan.table is not None \
            else packet_table(self.path)
        clock = PresentationClock(self.path, self.kind == 'stream')
        indexer = FrameIndexer(self.fps, table)
        if report is not None and report.damage_range is not None and \
                self.kind == 'video':
            report.damage = start_scan(self.path, table, self.stream_start_s,
                                       *report.damage_range)
        # seeks: the try of the seek being read from; -1: from the first
        # frame, which is never backed off from.
        seeks = -1
        if table is not None and 0 < start < len(table):
            if seek(capture, table, start, 0):
                seeks = 0
            else:  # OpenCV could not seek: from the first frame
                capture.release()
                capture = Reads(open_capture(self.path))
        # yielded: the last index given out (a read that starts again at
        # the first frame gives nothing out twice).
        last_index, decoded, yielded = -1, 0, -1
        ended_at = None  # where the plan's range ended the read
        try:
            failures = 0  # failed reads since the last good frame
            while True:
                position = indexer.next_position(failures)
                if failures >= MAX_CONSECUTIVE_FAILURES and not (
                        position < max(self.frame_count, len(table or ()))
                        and failures < MAX_FAILURES_IN_REPORTED):
                    if decoded or seeks < 0:
                        break
                    # The seek landed past the end: back off further.
                    capture, seeks, indexer, clock = self._back_off(
                        capture, table, start, seeks)
                    failures = 0
                    continue
                ok, position_ms = capture.grab()
                frame = None
                if ok and decoded == 0 and table is not None and \
                        not table.delay:
                    frame = capture.retrieve()  # before reading ahead
                    ok = frame is not None
                if not ok:
                    # A bad frame, or the end: only a later good frame tells.
                    failures += 1
                    continue
                if frame is not None:
                    position_ms = first_time(capture, table, position_ms)
                placed = indexer.place(
                    clock.time_of(position, position_ms, table is None),
                    failures, clock.behind)
                if placed is None:
                    continue  # decoded out of its place (damage): not shown
                decoded += 1
                frame_index, timestamp_s = placed
                if seeks >= 0 and decoded == 1 and (
                        not indexer.placed or frame_index > start
                        or not indexer.from_key(frame_index)
                        or frame_index == 0):
                    # After a seek, a first frame the packets do not place,
                    # one after the frame wanted (OpenCV seeks by
                    # estimated frame number), or not a key frame's (a
                    # damaged one): back off further; one that landed on
                    # the first frame: read from the first (OpenCV's seek
                    # decodes a damaged start otherwise than a read does).
                    capture, seeks, indexer, clock = self._back_off(
                        capture, table, start, seeks,
                        to_first=not indexer.placed or frame_index == 0)
                    decoded, failures = 0, 0
                    continue
                if seeks >= 0 and frame_index > max(last_index + 1, start):
                    # Frames to give out as failed after a seek: a decoder
                    # that started at a key frame may lose frames that a
                    # read from the first decodes (HEVC in MPEG-TS), or
                    # they are damaged: a read from the first tells.
                    capture, seeks, indexer, clock = self._back_off(
                        capture, table, start, seeks, to_first=True)
                    failures = 0
                    continue
                for index in range(max(last_index + 1, yielded + 1, start),
                                   frame_index):
                    if plan is not None and (plan.past_end(index, None) or
                                             not plan.wants(index, None)):
                        continue
                    warnings.warn(f'frame {index} of {self.path} could '
                                  'not be decoded; skipped', SuiteWarning)
                    yield index, None, None
                failures = 0
                last_index = frame_index
                if plan is not None and plan.past_end(frame_index,
                                                      timestamp_s):
                    ended_at = frame_index  # the range's end, not the file's
                    break
                # Asked of every frame placed, those before start too: a
                # plan that chooses as they come counts its step and ticks
                # from the range's first frame, wherever a read resumes.
                wanted = plan is None or plan.wants(frame_index, timestamp_s)
                if frame_index >= start and frame_index > yielded and wanted:
                    if frame is None:
                        frame = capture.retrieve()
                    if frame is None:
                        warnings.warn(f'frame {frame_index} of {self.path} '
                                      'could not be decoded; skipped',
                                      SuiteWarning)
                    yield frame_index, timestamp_s if frame is not None \
                        else None, frame
                    yielded = frame_index
        finally:
            capture.release()
        gaps = table.gaps(table.time_of(start) or 0.0) if table else []
        if ended_at is not None:
            until = table.time_of(ended_at) if table else None
            gaps = [gap for gap in gaps if until is None or gap[0] < until]
        if gaps:
            before, after, missing = gaps[0]
            warnings.warn(
                f'{self.path}: {sum(g[2] for g in gaps)} frame(s) missing '
                f'at its frame rate, in {len(gaps)} stretch(es) without a '
                f'frame, the first from {before:.3f} s to {after:.3f} s '
                f'({missing} frames: lost from a damaged file, dropped '
                'when it was recorded, or cut out); frame_index counts the '
                'frames there are, timestamp_s shows the gap', SuiteWarning)
        unread, reported = self._unread_at_end(last_index, table) \
            if ended_at is None else (0, 0)
        if unread:
            warnings.warn(
                f'{self.path}: the container reports {reported} '
                f'frames, but none after frame {last_index} could be decoded '
                f'({unread} frame(s) damaged or cut off); the result ends '
                'there', SuiteWarning)
        if report is not None:
            report.frames_unread_at_end = unread
            report.frames_decoded = decoded

    def _back_off(self, capture: 'Reads', table: PacketTable,
                  start: int, seeks: int, to_first: bool = False) -> Tuple:
        """Seek further back before frame ``start`` than the ``seeks``-th
        try did; with no back-off left (or ``to_first``), a capture
        reopened at the first frame and -1 (from which there is no
        further back-off).

        Returns:
            ``(capture, seeks, indexer, clock)``: the indexer and clock
            start again with the new position.
        """
        if not to_first and seek(capture, table, start, seeks + 1):
            seeks += 1
        else:
            capture.release()
            capture, seeks = Reads(open_capture(self.path)), -1
        return (capture, seeks, FrameIndexer(self.fps, table),
                PresentationClock(self.path, False))

    def _unread_at_end(self, last_index: int,
                       table: Optional[PacketTable]) -> Tuple[int, int]:
        """Frames the stream shows after the last decoded one that could
        not be read (damaged, or lost from a file cut short), and how many
        frames it has in all: those of the packet table (an MP4's index;
        the packets read, whatever a header or duration estimate counted:
        Matroska counts the sound's lead, an AVI header can say anything);
        for a file cut short without an index, the frames its header
        reports."""
        if self.kind != 'video':
            return 0, self.frame_count
        if table is not None and (table.indexed or not cut_short(self.path)):
            return max(0, len(table) - (last_index + 1)), len(table)
        reported = max(self.frame_count, len(table or ()))
        missing = reported - (last_index + 1)
        if missing > 0 and (table is not None or cut_short(self.path)):
            return missing, reported
        return 0, reported


def open_source(path: Union[Path, str]) -> FrameSource:
    """Check that ``path`` is a readable image, video or stream and
    describe it.

    Raises:
        NotMediaError: by its content not an image or video at all (text,
            subtitles, a document, audio only, an empty non-media file).
        InputError: a name that is not UTF-8 (OpenCV would crash on it:
            never handed over), missing, a folder, a FIFO, socket or
            device (never opened), unreadable, an empty or damaged image
            or video, or a stream that sends no frame.
    """
    opencv_name(path)  # a name OpenCV would crash on: refused, before all
    if is_stream(path):
        return _open_capture(str(path), 'stream')
    path = Path(path)
    if not path.exists():
        raise InputError(f'input not found: {path}')
    if path.is_dir():
        raise InputError(f'input is a folder, not an image or video: {path}')
    special = special_file_kind(path)
    if special:  # before any open: opening a FIFO waits for a writer
        raise InputError(f'input is not a regular file ({special}): {path}')
    if not os.access(path, os.R_OK):
        raise InputError(f'input is not readable (permission denied): {path}')
    if path.stat().st_size == 0:
        if looks_like_media(path):
            raise InputError(f'input is an empty file: {path}')
        raise NotMediaError(f'input is not an image or video (an empty '
                            f'file): {path}')
    if cv2.haveImageReader(str(path)):
        image, rotation, mirrored = read_image(path)
        height, width = image.shape[:2]
        return FrameSource(path, 'image', width, height, 0.0, 1, rotation,
                           mirrored)
    reason = not_media_reason(path)
    if reason:
        raise NotMediaError(f'input is not an image or video ({reason}): '
                            f'{path}')
    return _open_capture(path, 'video')


def _open_capture(path: Union[Path, str], kind: str) -> FrameSource:
    capture = open_capture(path)
    try:
        ok, frame = False, None
        # A file whose first frames are damaged is read on to a good one.
        for _ in range(MAX_CONSECUTIVE_FAILURES if kind == 'video' else 1):
            ok, frame = capture.read() if capture.isOpened() \
                else (False, None)
            if ok and frame is not None:
                break
        if not ok or frame is None:
            raise no_frame_error(path, kind, capture.isOpened() and
                                  capture.get(cv2.CAP_PROP_FRAME_WIDTH) == 0)
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = float(fps) if np.isfinite(fps) and 0 < fps < 1000 else 0.0
        if not fps and kind == 'video':
            # 1000 fps and more is what a millisecond time base (Matroska)
            # reports of a rate it does not know: the packets tell.
            fps = rate_from_packets(path)
        reported = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        reported = int(reported) if np.isfinite(reported) and reported > 0 \
            else 0
        rotation = 0
        if capture.get(cv2.CAP_PROP_ORIENTATION_AUTO) == 1:
            rotation = int(capture.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
        height, width = frame.shape[:2]
        start = None
        if kind == 'video':
            start = stream_start_seconds(Path(path))
            if start is None:  # to the frame: OpenCV's time in frames
                start = max(0.0, capture.get(cv2.CAP_PROP_PTS) / fps -
                            capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0) \
                    if fps else 0.0
        return FrameSource(path, kind, width, height, fps, reported,
                           rotation, stream_start_s=None if start is None
                           else round(start, 6))
    finally:
        capture.release()
