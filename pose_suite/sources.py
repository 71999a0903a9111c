"""The one place that decides what an input is and turns it into frames.

An input spec is a file, a folder, a glob pattern, a list file (``.txt``,
one path a line), a camera index (``0``) or a stream URL (``rtsp://``,
``http://``...): :func:`expand_inputs` turns it into the files to analyse.
A file's kind (image or video) comes from its content: OpenCV's image
decoders are asked first by signature (``cv2.haveImageReader``), then its
video backend. Everything downstream sees ``(frame_index, timestamp_s,
frame_bgr)``.
"""
import dataclasses
import glob
import os
import warnings
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

# FFmpeg's own log lines (read when the first capture opens) would bury
# our one-line errors; the failures they describe are reported as InputError.
os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pose_suite.errors import InputError, SuiteWarning

Frame = Tuple[int, float, Optional[np.ndarray]]
#: Undecodable frames in a row after which a video is taken to have ended.
MAX_CONSECUTIVE_FAILURES = 16
STREAM_SCHEMES = ('rtsp://', 'rtmp://', 'http://', 'https://', 'udp://',
                  'tcp://')


def is_stream(spec: str) -> bool:
    """A camera index (``0``) or a stream URL."""
    return str(spec).isdigit() or str(spec).startswith(STREAM_SCHEMES)


def has_glob(spec: str) -> bool:
    return any(character in str(spec) for character in '*?[')


def expand_inputs(spec: Union[str, Path]) -> List[Union[Path, str]]:
    """The inputs named by ``spec``, in order: the files of a folder (not
    hidden ones), the matches of a glob pattern, the lines of a ``.txt``
    list file (relative to its folder), or ``spec`` itself (a file, camera
    or stream).

    Raises:
        InputError: a folder, pattern or list that names no file.
    """
    text = str(spec)
    if is_stream(text):
        return [text]
    if has_glob(text):
        found = [Path(p) for p in sorted(glob.glob(text))
                 if Path(p).is_file()]
        if not found:
            raise InputError(f'no file matches {text}')
        return found
    path = Path(spec)
    if path.is_dir():
        found = sorted(p for p in path.iterdir()
                       if p.is_file() and not p.name.startswith('.'))
        if not found:
            raise InputError(f'folder has no file to analyse: {path}')
        return found
    if path.suffix.lower() == '.txt' and path.is_file():
        lines = [line.strip() for line in path.read_text(
            encoding='utf-8').splitlines()]
        found = [p if Path(p).is_absolute() or is_stream(p) else
                 path.parent / p for p in lines if p and not p.startswith('#')]
        if not found:
            raise InputError(f'list file names no input: {path}')
        return [p if is_stream(p) else Path(p) for p in found]
    return [path]


@dataclasses.dataclass(frozen=True)
class FrameSource:
    """An opened input.

    ``frame_count`` is what the container reports (videos can lie; the
    writer records how many frames were really read) and ``fps`` is 0.0 for
    an image.
    """

    path: Union[Path, str]  # str: a camera index or stream URL
    kind: str  # 'image', 'video' or 'stream'
    width: int
    height: int
    fps: float
    frame_count: int

    def frames(self, start: int = 0) -> Iterator[Frame]:
        """Yield ``(frame_index, timestamp_s, frame)`` in order.

        frame is (H, W, 3) uint8 BGR, or None for a frame that could not be
        decoded while later ones could (a warning is issued; the caller
        records it). frame_index counts from 0 over the whole video;
        timestamp_s = frame_index / fps (0.0 for an image).

        Args:
            start: first frame index to yield; earlier frames are decoded
                and dropped (seeking is not frame-exact in every codec).
        """
        if self.kind == 'image':
            if start == 0:
                yield 0, 0.0, _read_image(self.path)
            return
        capture = _capture(self.path)
        try:
            frame_index, pending_failures = 0, []
            while len(pending_failures) < MAX_CONSECUTIVE_FAILURES:
                ok, frame = capture.read()
                if not ok or frame is None:
                    # A bad frame, or the end: only a later good frame tells.
                    pending_failures.append(frame_index)
                    frame_index += 1
                    continue
                for index in pending_failures:
                    if index >= start:
                        warnings.warn(f'frame {index} of {self.path} could '
                                      'not be decoded; skipped', SuiteWarning)
                        yield index, self._timestamp(index), None
                pending_failures = []
                if frame_index >= start:
                    yield frame_index, self._timestamp(frame_index), frame
                frame_index += 1
        finally:
            capture.release()

    def _timestamp(self, frame_index: int) -> float:
        return frame_index / self.fps if self.fps > 0 else 0.0


def _capture(path: Union[Path, str]) -> cv2.VideoCapture:
    text = str(path)
    return cv2.VideoCapture(int(text) if text.isdigit() else text)


def open_source(path: Union[Path, str]) -> FrameSource:
    """Check that ``path`` is a readable image, video or stream and
    describe it.

    Raises:
        InputError: missing, a folder, unreadable, empty, neither image nor
        video, a video with no decodable frame, or a stream that sends none.
    """
    if is_stream(path):
        return _open_capture(str(path), 'stream')
    path = Path(path)
    if not path.exists():
        raise InputError(f'input not found: {path}')
    if path.is_dir():
        raise InputError(f'input is a folder, not an image or video: {path}')
    if not os.access(path, os.R_OK):
        raise InputError(f'input is not readable (permission denied): {path}')
    if path.stat().st_size == 0:
        raise InputError(f'input is an empty file: {path}')
    if cv2.haveImageReader(str(path)):
        image = _read_image(path)
        height, width = image.shape[:2]
        return FrameSource(path, 'image', width, height, 0.0, 1)
    return _open_capture(path, 'video')


def _open_capture(path: Union[Path, str], kind: str) -> FrameSource:
    capture = _capture(path)
    try:
        ok, frame = capture.read() if capture.isOpened() else (False, None)
        if not ok or frame is None:
            if kind == 'stream':
                raise InputError(f'camera or stream sends no frame: {path}')
            raise InputError(
                'input is not an image, and no video frame can be decoded '
                f'from it (not a video, or a corrupt, truncated or empty '
                f'one): {path}')
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = float(fps) if np.isfinite(fps) and 0 < fps < 1000 else 0.0
        reported = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        reported = int(reported) if np.isfinite(reported) and reported > 0 \
            else 0
        height, width = frame.shape[:2]
        return FrameSource(path, kind, width, height, fps, reported)
    finally:
        capture.release()


def _read_image(path: Path) -> np.ndarray:
    # IMREAD_COLOR makes every image 8-bit, 3-channel BGR: grayscale is
    # replicated, alpha dropped, 16-bit scaled down.
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f'image cannot be decoded (corrupt or truncated): '
                         f'{path}')
    return image
