"""Writing the results JSON: streamed, resumable, visible only when complete.

While a run goes on, each frame's record is appended as one JSON line to a
partial file beside the output (``.<name>.partial``), flushed at once, so
memory does not grow with video length and a crash, Ctrl-C or kill loses at
most the frame in progress. The partial file starts with a header naming
what it is a result of (input file, models, thresholds); ``resume`` picks it
up only when that matches.

:meth:`ResultWriter.commit` writes ``{"meta": ..., "frames": [...]}`` with
``pose_suite.outputs.publish.atomic_write`` (a temporary file, fsynced and renamed
over the output path, with the user's usual permissions): a failed or
interrupted run never leaves a half-written file there and never replaces an
earlier good result. A lock file (``.<name>.lock``) keeps two runs from
writing the same output at once.
"""
import fcntl
import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional

import numpy as np

from pose_suite.errors import OutputError, ResumeError
from pose_suite.outputs.publish import atomic_write

#: Decimals kept in the JSON: 0.001 px for positions, 1e-5 for scores.
PIXEL_DECIMALS = 3
SCORE_DECIMALS = 5
#: Seconds between fsyncs of the partial file (flushes happen every frame).
FSYNC_INTERVAL_S = 5.0


def _number(value, decimals: int) -> Optional[float]:
    value = float(value)
    return round(value, decimals) if math.isfinite(value) else None


def _points(keypoints) -> list:
    return [[_number(x, PIXEL_DECIMALS), _number(y, PIXEL_DECIMALS)]
            for x, y in np.asarray(keypoints)]


def person_record(person: Dict[str, np.ndarray]) -> dict:
    """JSON-ready record of one person from ``PoseExtractionService``, with
    ``track_id`` and ``keypoints_raw`` when tracking and smoothing set
    them."""
    record = {}
    if 'track_id' in person:
        record['track_id'] = int(person['track_id'])
    record.update({
        'bbox': [_number(v, PIXEL_DECIMALS) for v in person['bbox'][:4]],
        'bbox_score': _number(person['bbox_score'], SCORE_DECIMALS),
        'keypoints': _points(person['keypoints']),
        'keypoint_scores': [_number(s, SCORE_DECIMALS)
                            for s in np.asarray(person['keypoint_scores'])],
    })
    if 'keypoints_raw' in person:
        record['keypoints_raw'] = _points(person['keypoints_raw'])
    return record


def persons_from_record(record: dict) -> List[Dict[str, np.ndarray]]:
    """A frame record's persons as numpy arrays, as the services give them
    (measured keypoints: ``keypoints_raw`` when the file has them)."""
    persons = []
    for person in record['persons']:
        raw = person.get('keypoints_raw', person['keypoints'])
        persons.append({
            'bbox': np.asarray(person['bbox'], np.float32),
            'bbox_score': person['bbox_score'],
            'keypoints': np.asarray(raw, np.float32),
            'keypoint_scores': np.asarray(person['keypoint_scores'],
                                          np.float32),
            **({'track_id': person['track_id']} if 'track_id' in person
               else {})})
    return persons


def frame_record(frame_index: int, timestamp_s: float,
                 persons: List[Dict[str, np.ndarray]]) -> dict:
    """JSON-ready record of one frame (``persons`` may be empty)."""
    return {
        'frame_index': int(frame_index),
        'timestamp_s': round(float(timestamp_s), 6),
        'persons': [person_record(p) for p in persons],
    }


def record_line(record: dict) -> str:
    """A frame record as the one line it takes in a result file."""
    return json.dumps(record, separators=(',', ':'), allow_nan=False)


def read_meta(path: Path) -> Optional[dict]:
    """The ``meta`` block of a result file written by :func:`write_result`,
    read without its frames (a long video's result can be hundreds of MB);
    None when the file is missing or not such a result."""
    lines = []
    try:
        with open(path, encoding='utf-8') as handle:
            for line in handle:
                if line.startswith('"frames": ['):
                    break
                lines.append(line)
            else:
                return None
    except (OSError, UnicodeDecodeError):
        return None
    text = ''.join(lines).rstrip().rstrip(',')
    try:
        meta = json.loads(text + '\n}')['meta']
    except (ValueError, KeyError, TypeError):
        return None
    return meta if isinstance(meta, dict) else None


def triplets(person: dict) -> np.ndarray:
    """(K, 3) x, y, score of a person record (null values as NaN)."""
    return np.concatenate(
        [np.array(person['keypoints'], np.float64),
         np.array(person['keypoint_scores'], np.float64)[:, None]], axis=1)


def iter_frame_records(path: Path) -> Iterator[dict]:
    """The frame records of a result file, one at a time (one a line
    after the meta block, as every version of the suite wrote them), so
    that a long video's result is never loaded whole."""
    with open(path, encoding='utf-8') as handle:
        for line in handle:
            if line.startswith('{"frame_index"'):
                yield json.loads(line.rstrip().rstrip(','))


def write_result(handle, meta: dict, frame_lines: Iterable[str]) -> None:
    """Write a result JSON, ``{"meta": ..., "frames": [...]}``, with one
    frame record a line (``record_line``), to an open text file."""
    handle.write('{\n"meta": ')
    handle.write(json.dumps(meta, indent=2, ensure_ascii=False,
                            allow_nan=False))
    handle.write(',\n"frames": [')
    separator = '\n'
    for line in frame_lines:
        handle.write(separator + line)
        separator = ',\n'
    handle.write('\n]\n}\n')


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

    Raises:
        OutputError: the folder cannot be created or written, or another
            run is writing the same output.
        ResumeError: ``resume`` and the partial file is of another run.
    """

    def __init__(self, output_path: Path, resume_key: str,
                 resume: bool = False,
                 replay: Optional[Callable[[dict], None]] = None):
        self.output_path = Path(output_path)
        folder = self.output_path.parent
        name = self.output_path.name
        self.partial_path = folder / f'.{name}.partial'
        self.frame_count = 0       # frames written, this session and before
        self.person_count = 0
        self.frames_failed: List[int] = []
        self.next_frame_index = 0  # where decoding must continue
        self.resumed_from = None
        self._committed = False
        self._last_fsync = time.monotonic()
        if self.output_path.is_dir():
            raise OutputError(f'output path is a folder: {self.output_path}')
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f'cannot write to output folder {folder}: '
                              f'{exc.strerror or exc}') from None
        self._lock_path = folder / f'.{name}.lock'
        self._lock = _acquire_lock(self._lock_path, self.output_path)
        try:
            if resume and self.partial_path.exists():
                self._partial = self._reopen(resume_key, replay)
            else:  # resumed_from stays None: the caller may say so
                self._partial = open(self.partial_path, 'w', encoding='utf-8')
                self._write_line({'resume_key': resume_key})
        except BaseException:
            self._release_lock()
            raise

    def _reopen(self, resume_key: str, replay):
        """Read back a partial file and open it for appending."""
        with open(self.partial_path, 'rb') as handle:
            data = handle.read()
        complete = data[:data.rfind(b'\n') + 1]  # drop a half-written line
        lines = complete.decode('utf-8').splitlines()
        header = json.loads(lines[0]) if lines else {}
        if header.get('resume_key') != resume_key:
            raise ResumeError(
                f'cannot resume {self.output_path}: its partial result was '
                'made from another input or with other settings; run without '
                '--resume to start over')
        for line in lines[1:]:
            record = json.loads(line)
            if 'failed_frame' in record:
                self.frames_failed.append(record['failed_frame'])
                self.next_frame_index = record['failed_frame'] + 1
            else:
                self.frame_count += 1
                self.person_count += len(record['persons'])
                self.next_frame_index = record['frame_index'] + 1
                if replay is not None:
                    replay(record)
        self.resumed_from = self.next_frame_index
        partial = open(self.partial_path, 'r+', encoding='utf-8')
        partial.truncate(len(complete))
        partial.seek(len(complete))
        return partial

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
        self._write_line(frame_record(frame_index, timestamp_s, persons))
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

