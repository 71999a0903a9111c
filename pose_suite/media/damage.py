"""Which frames FFmpeg decoded with errors it concealed ("damaged"): the
picture is there, but partly guessed.

OpenCV hands a concealed picture out as any other and says nothing, and
its decoder runs frame threads, which in FFmpeg 5.1 do not even pass the
frame's corrupt flag on. So the verdict comes from FFmpeg's own command
line, run beside the read (:class:`DamageScan`, started when a video's
frames are first read, waited for at their end): ``ffmpeg -threads 1
-debug_ts -copyts -i VIDEO -map 0:v:0 -f null -``, one thread so that every
message the decoder logs falls between the line of the packet it decodes
and the next packet's, and each decoded frame's line follows its corrupt
flag. A frame is damaged when

* the decoder flags it corrupt (``corrupt decoded frame``: concealed
  errors, a missing reference), placed by its time (a decoded frame's
  time, as the packet table places OpenCV's); or
* the decoder logs an error, or the errors it conceals, while decoding
  its packet (placed by the packet's presentation time; not in a
  container that has decoding times only and frames reordered, AVI with
  B-frames, where the packet's time does not say which frame it is).

A frame that does not decode at all is not damaged but failed
(``frames_failed``). Errors of a packet that is never shown (one before
the cut of a trimmed file) count for the first frame shown. FFmpeg flags
only the frame decoded with errors: the frames after it up to the next
key frame refer to it and may be smeared too (the warning says so).

``frames_damaged`` is null (not checked) and one warning line ``damage
not checked for NAME: WHY`` says so where: ``ffmpeg`` is not on the PATH
(a Debian package, not a dependency of the suite; said once); the packets
do not say where the frames are (no packet table: MPEG-PS, ...); ffmpeg
fails (its exit status and last error line: an ffmpeg before 5.1 has no
``-fps_mode``); it does not finish within :func:`wait_s` after the
suite's own read ended (then it is killed); or a verdict has no time to
place it by (a raw ``.h264`` stream). Every way out of the read (an
exception, Ctrl-C, SIGTERM) kills the scan and reaps it. Checked with
FFmpeg 5.1 (Debian 12).
"""
import os
import re
import shutil
import signal
import subprocess
import threading
import warnings
from collections import deque
from pathlib import Path
from typing import Iterable, List, Optional, Set, Tuple, Union

from pose_suite.errors import SuiteWarning, visible
from pose_suite.media.packets import PacketTable, nearest_place

#: Seconds the scan reads past the last frame asked for (B-frames come
#: before their reference's output; a Ray segment stops early).
PAST_STOP_S = 2.0
#: Seconds a segment's scan starts before its first frame (FFmpeg seeks
#: from the file's start, which may be before the video's).
BEFORE_START_S = 2.0
#: The scan is waited for at most WAIT_FLOOR_S, or WAIT_PER_FRAME_S a
#: frame checked if longer, after the suite's own read ended (it ran
#: beside the read, on one thread: about 5 ms a 1080p frame).
WAIT_FLOOR_S = 30.0
WAIT_PER_FRAME_S = 0.1
_said_missing = []

_TIME = r'{}:(-?[0-9.]+)'
_CONTEXT = re.compile(r'^\[([^\]@]+) @ 0x[0-9a-f]+\] \[(\w+)\] (.*)')
#: FFmpeg 5.1's line (the file's name first), or later versions'.
_CORRUPT = re.compile(r'\[warning\] (.*: )?corrupt decoded frame'
                      r'( in stream \d+)?$')


def ffmpeg_path() -> Optional[str]:
    return shutil.which('ffmpeg')


def _field(line: str, name: str) -> Optional[float]:
    found = re.search(_TIME.format(name), line)
    return float(found.group(1)) if found else None


class Verdicts:
    """FFmpeg's per-frame verdicts, from its log lines in order
    (:meth:`feed`): ``corrupt``, the times of frames it flagged corrupt;
    ``errors``, those of packets whose decoding logged errors
    (``(pts, dts)``, either None where the container has none); ``last_dts``,
    the decoding time of the last packet read."""

    def __init__(self):
        self.decoder: Optional[str] = None
        self.corrupt: List[float] = []
        self.errors: List[Tuple[Optional[float], Optional[float]]] = []
        self.last_dts: Optional[float] = None
        #: ffmpeg's last line at level error or fatal (else its last line).
        self.last_error: Optional[str] = None
        self._packet: Optional[Tuple] = None
        self._flagged = False

    def feed(self, line: str) -> None:
        line = line.rstrip('\n')
        if '[error] ' in line or '[fatal] ' in line or (
                line.strip() and not line.startswith('[')):
            self.last_error = line.strip()
        if self.decoder is None and ' -> #0:0 (' in line:
            self.decoder = line.split(' -> #0:0 (', 1)[1].split(' ', 1)[0]
        elif _CORRUPT.search(line):
            self._flagged = True
        elif '] decoder -> ' in line:
            time = _field(line, 'best_effort_ts_time')
            if time is None:
                time = _field(line, 'pts_time')
            if self._flagged and time is not None:
                self.corrupt.append(time)
            self._flagged = False
        elif ' demuxer' in line and ' -> ' in line and \
                'type:video' in line:  # a packet read (5.1: twice)
            self._packet = (_field(line, 'pkt_pts_time'),
                            _field(line, 'pkt_dts_time'))
            if self._packet[1] is not None:
                self.last_dts = self._packet[1]
        else:
            context = _CONTEXT.match(line)
            if context and self._packet and context.group(1) == \
                    self.decoder and (context.group(2) in ('error', 'fatal')
                                      or 'concealing' in context.group(3)):
                if not self.errors or self.errors[-1] != self._packet:
                    self.errors.append(self._packet)

    def indices(self, table: PacketTable, start_s: float
                ) -> Optional[Set[int]]:
        """The frame indices of the damaged frames (times ``start_s``, the
        stream's start on the container's clock, subtracted); None when a
        verdict has no time the packet table places (a raw stream)."""
        found = set()
        for time in self.corrupt:
            index = _hidden_before(table, time - start_s)
            if index is None:
                index = table.place(time - start_s)
            if index is None:
                return None
            found.add(index)
        if table.delay:
            # Decoding times only (AVI), frames reordered: a packet's time
            # does not say which frame it is; the flag tells.
            return found
        for pts, dts in self.errors:
            time = pts if pts is not None else dts
            if time is None:
                return None
            index = _hidden_before(table, time - start_s)
            if index is None:
                index = nearest_place(table.times, time - start_s)
            if index is None:
                return None
            found.add(index)
        return found


def _hidden_before(table: PacketTable, time_s: float) -> Optional[int]:
    """0, the first frame shown, for a time before it (a packet never
    shown: before the cut of a trimmed file); else None."""
    first = table.time_of(0)
    if first is not None and time_s < first - 1e-3 and \
            nearest_place(table.times, time_s) is None:
        return 0
    return None


class DamageScan:
    """FFmpeg decoding a video beside the suite's read, for its verdicts
    (see the module's docstring); :meth:`damaged` waits for it.

    Args:
        path: the video file.
        table: its packet table (where its frames are).
        stream_start_s: the video stream's start on the container's clock.
        first: the first frame asked for (a segment's: the scan seeks
            there); ``stop``: the frame after the last (None: the end).
    """

    def __init__(self, path: Union[Path, str], table: PacketTable,
                 stream_start_s: Optional[float], first: int = 0,
                 stop: Optional[int] = None):
        self.name = Path(path).name
        self.table, self.start_s = table, stream_start_s or 0.0
        self.verdicts = Verdicts()
        stop_time = table.time_of(stop) if stop is not None else None
        self._until = None if stop_time is None else \
            stop_time + self.start_s + PAST_STOP_S
        seek = []
        first_time = table.time_of(first) if first else None
        if first_time is not None and first_time > BEFORE_START_S:
            seek = ['-ss', f'{first_time - BEFORE_START_S:.6f}']
        self._process = subprocess.Popen(
            [ffmpeg_path(), '-hide_banner', '-nostdin', '-nostats',
             '-loglevel', 'level+info', '-threads', '1', '-copyts',
             '-debug_ts', *seek, '-i', _file_url(path), '-map', '0:v:0',
             '-an', '-sn', '-dn', '-fps_mode', 'passthrough', '-f', 'null',
             '-'], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, errors='replace',
            start_new_session=True)  # its own group: killed as a whole
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._process.stderr:
            self.verdicts.feed(line)
            if self._until is not None and self.verdicts.last_dts is not \
                    None and self.verdicts.last_dts > self._until:
                self._kill()  # past the segment: enough
                break
        self._process.stderr.close()

    def damaged(self, decoded: Iterable[int]) -> Optional[List[int]]:
        """The frames among ``decoded`` (indices) that FFmpeg decoded
        with errors, once it is done; None when it could not tell (said
        in one warning line, see the module's docstring). The scan is
        killed and reaped on every way out."""
        decoded = set(decoded)
        try:
            wait = wait_s(len(decoded))
            self._reader.join(wait)
            if self._reader.is_alive():
                return self._not_checked(
                    f'ffmpeg did not finish within {wait:.0f} s after the '
                    'read (killed)')
            code = self._process.wait()
            if code != 0 and self._until is None:
                return self._not_checked(
                    f'ffmpeg failed (exit status {code}): '
                    f'{visible(self.verdicts.last_error or "no message")}')
            found = self.verdicts.indices(self.table, self.start_s)
            if found is None:
                return self._not_checked(
                    "FFmpeg's verdicts have no times to place them by "
                    '(packets without times)')
            return sorted(found.intersection(decoded))
        finally:
            self.close()

    def _not_checked(self, why: str) -> None:
        not_checked(self.name, why)
        return None

    def close(self) -> None:
        """Stop the scan (a read cut off, or done) and reap it."""
        if self._process.poll() is None:
            self._kill()
        self._process.wait()

    def _kill(self) -> None:
        """Kill ffmpeg and whatever it started (its process group)."""
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except (OSError, AttributeError):
            self._process.kill()


def wait_s(frames: int) -> float:
    """Seconds the scan of ``frames`` frames is waited for after the
    suite's own read ended."""
    return max(WAIT_FLOOR_S, WAIT_PER_FRAME_S * frames)


def not_checked(name: str, why: str) -> None:
    """The one warning line saying a video's damage was not checked."""
    warnings.warn(f'damage not checked for {visible(name)}: {why} '
                  '(meta.frames_damaged is null)', SuiteWarning)


def _file_url(path: Union[Path, str]) -> str:
    """``path`` as FFmpeg's ``file:`` URL: a name such as ``concat:a.mp4``
    or ``pipe:1`` is then the file of that name, not a protocol."""
    return 'file:' + str(Path(path).absolute())


def start_scan(path: Union[Path, str], table: Optional[PacketTable],
               stream_start_s: Optional[float], first: int = 0,
               stop: Optional[int] = None) -> Optional[DamageScan]:
    """A :class:`DamageScan` of a video file, or None where there can be
    none: no ffmpeg (said once) or no packet table (nowhere to place the
    verdicts; said)."""
    if ffmpeg_path() is None:
        if not _said_missing:
            _said_missing.append(True)
            warnings.warn('ffmpeg is not installed: frames decoded with '
                          'errors FFmpeg concealed are not detected '
                          '(meta.frames_damaged is null; `apt-get install '
                          'ffmpeg` to check them)', SuiteWarning)
        return None
    if table is None:
        not_checked(Path(path).name, 'its packets do not say where its '
                    'frames are (no times, or times that repeat: MPEG-PS '
                    '.mpg, ...)')
        return None
    return DamageScan(path, table, stream_start_s, first, stop)
