"""Writing the results JSON: streamed, resumable, visible only when complete.

While a run goes on, each frame's record is appended as one JSON line to a
partial file beside the output (``.<name>.partial``), flushed at once, so
memory does not grow with video length and a crash, Ctrl-C or kill loses at
most the frame in progress. The partial file starts with a header naming
what it is a result of (input file, models, thresholds); ``resume`` picks it
up only when that matches, up to its last whole, readable line.

:meth:`ResultWriter.commit` writes the result
(:func:`pose_suite.outputs.results.write_result`) with
``pose_suite.outputs.publish.atomic_write`` (a temporary file, fsynced and
renamed over the output path, with the user's usual permissions): a failed
or interrupted run never leaves a half-written file there and never
replaces an earlier good result. A lock file (``.<name>.lock``) keeps two
runs from writing the same output at once.
"""
import fcntl
import json
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from pose_suite.errors import OutputError, ResumeError, SuiteWarning
from pose_suite.outputs.publish import atomic_write
from pose_suite.outputs.results import frame_record, record_line, write_result

#: Seconds between fsyncs of the partial file (flushes happen every frame).
FSYNC_INTERVAL_S = 5.0


class ResultWriter:
    """Stream frame records to a partial file, then publish atomically.

    Use as a context manager. Leaving it without :meth:`commit` keeps the
    partial file when it holds at least one frame (so the run can be
    resumed) and otherwise removes it; the output path is never touched.

    Args:
        output_path: the JSON file to produce.
        resume_key: identifies the input and settings; a partial file is
            resumed only when its key is the same.
        resume: continue a partial file instead of starting over.
        replay: called with each frame record already in a resumed partial
            file, in order, so that state carried from frame to frame
            (tracks, filters) is rebuilt.
        next_after: the frame index whose record comes after frame
            ``index``'s (a range and step skip frames:
            :meth:`~pose_suite.media.selection.FramePlan.next_after`; None:
            any later one); default ``index + 1``. A resumed record that
            is not that one is damage.

    Raises:
        OutputError: the folder cannot be created or written, or another
            run is writing the same output.
        ResumeError: ``resume`` and the partial file is of another run.
    """

    def __init__(self, output_path: Path, resume_key: str,
                 resume: bool = False,
                 replay: Optional[Callable[[dict], None]] = None,
                 angles=None,
                 next_after: Optional[Callable[[int], Optional[int]]] = None):
        self.output_path = Path(output_path)
        #: An AngleComputer when each person's angles are written.
        self.angles = angles
        folder = self.output_path.parent
        self.partial_path = partial_path(self.output_path)
        self.frame_count = 0       # frames written, this session and before
        self.person_count = 0
        #: Frames (and their persons) kept from a resumed partial file.
        self.kept_frames = self.kept_persons = 0
        self.frames_failed: List[int] = []
        self.next_frame_index = 0  # where decoding must continue
        self._next_after = next_after or (lambda index: index + 1)
        self._last_index: Optional[int] = None  # of the last record read
        self.resumed_from = None
        #: A damaged partial file was dropped (and said so).
        self.restarted = False
        self._committed = False
        self._last_fsync = time.monotonic()
        if self.output_path.is_dir():
            raise OutputError(f'output path is a folder: {self.output_path}')
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f'cannot write to output folder {folder}: '
                              f'{exc.strerror or exc}') from None
        self._lock_path = lock_path(self.output_path)
        self._lock = _acquire_lock(self._lock_path, self.output_path)
        try:
            self._partial = None
            if resume and self.partial_path.exists():
                self._partial = self._reopen(resume_key, replay)
            if self._partial is None:
                # Nothing to resume: resumed_from stays None (the caller
                # may say so).
                self._partial = open(self.partial_path, 'w', encoding='utf-8')
                self._write_line({'resume_key': resume_key})
        except BaseException:
            self._release_lock()
            raise

    def _reopen(self, resume_key: str, replay):
        """Read back a partial file and open it for appending, up to its
        last whole, readable record (a line cut by a kill, or damaged, and
        all after it are dropped with a warning); None when it holds
        nothing to resume (empty, or its header unreadable)."""
        with open(self.partial_path, 'rb') as handle:
            data = handle.read()
        lines = data[:data.rfind(b'\n') + 1].split(b'\n')[:-1]
        header = _json_line(lines[0]) if lines else None
        if not isinstance(header, dict) or 'resume_key' not in header:
            if data:
                warnings.warn(f'the partial result of {self.output_path} is '
                              'damaged at its start; starting from the '
                              'first frame', SuiteWarning)
                self.restarted = True
            return None
        if header['resume_key'] != resume_key:
            raise ResumeError(
                f'cannot resume {self.output_path}: its partial result was '
                'made from another input or with other settings; run without '
                '--resume to start over')
        kept = len(lines[0]) + 1
        for number, line in enumerate(lines[1:], 2):
            record = _json_line(line)
            if not self._follows(record):
                warnings.warn(
                    f'the partial result of {self.output_path} is damaged at '
                    f'line {number}; resuming from frame '
                    f'{self.next_frame_index}', SuiteWarning)
                break
            if 'failed_frame' in record:
                self.frames_failed.append(record['failed_frame'])
            else:
                self.frame_count += 1
                self.person_count += len(record['persons'])
                if replay is not None:
                    replay(record)
            self._last_index = record.get('failed_frame',
                                          record.get('frame_index'))
            self.next_frame_index = self._last_index + 1
            kept += len(line) + 1
        self.resumed_from = self.next_frame_index
        self.kept_frames, self.kept_persons = \
            self.frame_count, self.person_count
        partial = open(self.partial_path, 'r+', encoding='utf-8')
        partial.truncate(kept)
        partial.seek(kept)
        return partial

    def _follows(self, record) -> bool:
        """Whether ``record`` is a frame record (or failed frame) that can
        come next in this file."""
        if not isinstance(record, dict):
            return False
        index = record.get('failed_frame', record.get('frame_index'))
        # Every frame analysed from the first on has a record (failed or
        # not): the next one is the one analysed after the last (any
        # later one where not known in advance), or, first, any.
        if not isinstance(index, int) or isinstance(index, bool) or \
                index < 0:
            return False
        if self._last_index is not None:
            expected = self._next_after(self._last_index)
            if index <= self._last_index or (expected is not None
                                             and index != expected):
                return False
        return 'failed_frame' in record or (
            isinstance(record.get('persons'), list)
            and isinstance(record.get('timestamp_s'), (int, float)))

    def _write_line(self, record: dict) -> None:
        self._partial.write(record_line(record) + '\n')
        # Flushed to the OS at once: a killed process loses nothing written.
        self._partial.flush()
        if time.monotonic() - self._last_fsync > FSYNC_INTERVAL_S:
            os.fsync(self._partial.fileno())
            self._last_fsync = time.monotonic()

    def write_frame(self, frame_index: int, timestamp_s: float,
                    persons: List[Dict[str, np.ndarray]]) -> None:
        """Append one frame's record (frames must come in order)."""
        self._write_line(frame_record(frame_index, timestamp_s, persons,
                                      self.angles))
        self.frame_count += 1
        self.person_count += len(persons)
        self.next_frame_index = frame_index + 1

    def write_failed(self, frame_index: int) -> None:
        """Record a frame that could not be decoded."""
        self._write_line({'failed_frame': int(frame_index)})
        self.frames_failed.append(int(frame_index))

    def commit(self, meta: dict) -> Path:
        """Write ``{"meta": meta, "frames": [...]}`` and rename it into
        place. Returns the output path."""
        self._partial.close()
        try:
            with atomic_write(self.output_path, encoding='utf-8') as final, \
                    open(self.partial_path, encoding='utf-8') as partial:
                next(partial)  # the header
                write_result(final, meta, (
                    line.rstrip('\n') for line in partial
                    if not line.startswith('{"failed_frame"')))
        except OSError as exc:
            raise OutputError(f'cannot write {self.output_path}: '
                              f'{exc.strerror or exc}') from None
        self._committed = True
        self.partial_path.unlink()
        return self.output_path

    def _release_lock(self) -> None:
        # Unlinked while still held, so a run that opened the same file
        # sees it replaced (see _acquire_lock) and never shares a lock.
        self._lock_path.unlink(missing_ok=True)
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()

    def __enter__(self) -> 'ResultWriter':
        return self

    def __exit__(self, *exc_info) -> None:
        if not self._committed:
            self._partial.close()
            if self.frame_count == 0 and self.partial_path.exists():
                self.partial_path.unlink()
        self._release_lock()


def partial_path(output_path: Path) -> Path:
    """Where the frames of ``output_path`` are streamed: beside it,
    ``.<name>.partial``."""
    return Path(output_path).with_name(f'.{Path(output_path).name}.partial')


def lock_path(output_path: Path) -> Path:
    """The lock a writer of ``output_path`` holds: ``.<name>.lock``."""
    return Path(output_path).with_name(f'.{Path(output_path).name}.lock')


def _json_line(line: bytes):
    """A partial file's line as JSON (None where it is not)."""
    try:
        return json.loads(line.decode('utf-8'))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError too
        return None


def _acquire_lock(lock_path: Path, output_path: Path):
    """Hold an exclusive lock on ``lock_path``; fail at once if taken."""
    while True:
        try:
            handle = open(lock_path, 'a')
        except OSError as exc:
            raise OutputError(f'cannot write to output folder '
                              f'{lock_path.parent}: {exc.strerror or exc}') \
                from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise OutputError(f'another run is writing {output_path}; wait '
                              'for it or choose another output') from None
        try:
            if os.fstat(handle.fileno()).st_ino == os.stat(lock_path).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()  # the holder removed it as we opened it: try again

