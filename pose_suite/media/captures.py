"""OpenCV captures of videos, cameras and streams: opened to show frames
as displayed, and read with each frame's time, one read ahead where
asked; what a capture that gives no frame means, in one error."""
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from pose_suite.errors import InputError, NotMediaError, opencv_name
from pose_suite.media.packets import PacketTable, packet_table
from pose_suite.media.sniff import audio_only_reason, looks_like_media


class Reads:
    """A capture's reads, each with OpenCV's time of the frame
    (``CAP_PROP_POS_MSEC``), and one read ahead where asked."""

    def __init__(self, capture: cv2.VideoCapture):
        self.capture = capture
        self.ahead: Optional[tuple] = None
        #: The picture of a frame read ahead, for :meth:`retrieve`.
        self._picture = None

    def grab(self) -> tuple:
        """``(ok, position_ms)`` of the next frame, decoded but not yet
        turned into a BGR picture (:meth:`retrieve` does that, when the
        frame is wanted)."""
        if self.ahead is not None:
            (ok, frame, position_ms), self.ahead = self.ahead, None
            self._picture = frame
            return ok and frame is not None, position_ms
        self._picture = None
        ok = self.capture.grab()
        return ok, self.capture.get(cv2.CAP_PROP_POS_MSEC)

    def retrieve(self):
        """The BGR picture of the frame :meth:`grab` got, or None."""
        if self._picture is not None:
            return self._picture
        ok, frame = self.capture.retrieve()
        return frame if ok else None

    def read(self) -> tuple:
        """``(ok, frame, position_ms)``."""
        if self.ahead is not None:
            read, self.ahead = self.ahead, None
            return read
        ok, frame = self.capture.read()
        return ok, frame, self.capture.get(cv2.CAP_PROP_POS_MSEC)

    def peek(self) -> tuple:
        if self.ahead is None:
            self.ahead = self.read()
        return self.ahead

    def set(self, *args) -> bool:
        self.ahead = None  # a seek: what was read ahead is not next
        return self.capture.set(*args)

    def release(self):
        self.capture.release()


def first_time(reads: Reads, table: PacketTable,
                position_ms: float) -> float:
    """OpenCV's time of a read's first frame, put right: a frame whose
    presentation time is exactly 0 gets the decoding time of the packet
    that made the decoder hand it out instead (``pkt_dts``), later than
    0 where damage held it back: then the next frame has the same time,
    and this one is the frame before it."""
    ok, frame, next_ms = reads.peek()
    if not ok or frame is None or next_ms != position_ms:
        return position_ms
    at = table.place(position_ms / 1000.0)
    before = table.time_of(at - 1) if at else None
    return position_ms if before is None else before * 1000.0


def open_capture(path: Union[Path, str]) -> cv2.VideoCapture:
    text = opencv_name(path)
    capture = cv2.VideoCapture(int(text) if text.isdigit() else text)
    # Phones store portrait video sideways and say in the container's
    # display matrix how to turn it; OpenCV's FFmpeg backend turns the
    # frames only when asked (its default here is off).
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return capture


def rate_from_packets(path: Union[Path, str]) -> float:
    """Frames per second from the median interval of a video's packet
    times; 0.0 when they do not tell."""
    table = packet_table(path)
    if table is None or len(table) < 2:
        return 0.0
    interval = float(np.median(np.diff(table.times)))
    return round(1.0 / interval, 3) if interval > 0 else 0.0


def no_frame_error(path: Union[Path, str], kind: str,
                    unsized: bool = False) -> InputError:
    """``unsized``: FFmpeg found a video stream but not its picture size
    in the seconds it probes."""
    if kind == 'stream':
        return InputError(f'camera or stream sends no frame: {path}')
    if unsized and looks_like_media(Path(path)):
        # OpenCV's FFmpeg probes about 7 s of an MPEG-TS and takes no
        # options for more (OPENCV_FFMPEG_CAPTURE_OPTIONS is not applied
        # by the opencv-python wheel), so a picture that starts later than
        # its sound is not found.
        return InputError(
            'the video stream gives no picture in the first seconds '
            'FFmpeg reads through OpenCV (its picture starts long after its '
            'sound, or its headers come late); `ffmpeg -analyzeduration '
            '60M -i IN -map 0 -c copy OUT.mp4` makes a copy that opens, '
            f'sound and offsets kept: {path}')
    audio = audio_only_reason(Path(path))
    if audio:
        return NotMediaError(f'input is not an image or video ({audio}): '
                             f'{path}')
    if not looks_like_media(Path(path)):
        return NotMediaError(f'input is not an image or video (no decoder '
                             f'reads it): {path}')
    return InputError(
        'input is not an image, and no video frame can be decoded from it '
        f'(not a video, or a corrupt, truncated or empty one): {path}')
