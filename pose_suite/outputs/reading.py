"""A result JSON read back whole, as numpy arrays and pandas tables.

``read_result(path)`` gives a :class:`Result`: the result's ``meta``, one
row per frame record in the file (``frame_index``, ``timestamp_s``) and one
column per person (a ``track_id`` of a tracked result; a person slot of an
untracked one, see :class:`Result`), with ``keypoints`` (frames, columns,
K, 3), ``bboxes`` and ``angles`` in arrays where a missing person or value
is NaN. ``to_dataframe`` and ``angles_dataframe`` give the same as pandas
tables (pandas is imported only then).

Reading is strict about the file's middle and lenient about its end: a
result cut short (a copy or a disk that stopped, no ``end`` record) gives
its whole records, a half-written last line dropped, with one
:class:`~pose_suite.errors.SuiteWarning`; a line that cannot be read with
others after it is damage and raises
:class:`~pose_suite.errors.ResultError`. The partial file a stopped run
leaves (``.<name>.partial``) reads the same way, without a ``meta``.
The arrays and tables are in :mod:`pose_suite.outputs.result_arrays`.
"""
import gc
import itertools
import json
import warnings
from pathlib import Path
from typing import List, Optional

import numpy as np

from pose_suite.errors import ResultError, SuiteWarning
from pose_suite.outputs.result_arrays import (  # noqa: F401 - its names
    ANGLE_ID_COLUMNS, LONG_COLUMNS, Result)
from pose_suite.outputs.results import (RESULT_HEAD, meta_block, triplets,
                                        why_incomplete)

#: The first bytes of the partial file a run streams its records to.
PARTIAL_HEAD = b'{"resume_key":'
#: The UTF-8 byte order mark some Windows editors put first.
BOM = b'\xef\xbb\xbf'


def read_result(path) -> Result:
    """Read the result JSON ``path`` (or the partial file of a run that
    was stopped) whole into a :class:`Result`.

    A file cut short (no ``end`` record) gives the frame records that are
    whole, a half-written last line dropped, and warns once
    (:class:`~pose_suite.errors.SuiteWarning`); ``Result.complete`` is then
    False. Memory: F x T x K x 3 x 8 bytes for ``keypoints`` (twice that
    with ``keypoints_raw``): 1.6 GB for 5 tracks over 100,000 frames.

    CRLF line ends and a UTF-8 byte order mark read as the suite wrote
    them. A result re-saved by other tools (``json.dump`` indented, on one
    line, keys in another order) is parsed whole (its text takes about
    five times its size in memory while read) and read record by record
    with the same checks; it is complete when its ``end`` counts the
    frames its meta says and it holds that many records, else (no ``end``,
    records removed) it warns as a cut one does.

    Raises:
        ResultError: ``path`` is missing, unreadable, not a result of this
            suite, or damaged before its last line (a line that is no frame
            record, a record out of order, a track id twice in a frame,
            fewer records than its complete ``end`` counts).
    """
    path = Path(path)
    if not path.is_file():
        raise ResultError(f'no result file at {path}')
    try:
        with open(path, 'rb') as handle:
            return _read(path, handle)
    except OSError as exc:
        raise ResultError(f'{path} cannot be read: '
                          f'{exc.strerror or exc}') from None


def _read(path: Path, handle) -> Result:
    """:func:`read_result` of ``path``, open as ``handle`` (binary)."""
    start = len(BOM) if handle.read(len(BOM)) == BOM else 0
    handle.seek(start)
    head = handle.readline()
    partial = head.startswith(PARTIAL_HEAD)
    if partial:
        meta, why = {}, (f'{path.name} is the partial file of a run that '
                         'was stopped (finish it with --resume)')
        number = 1
    else:
        meta, number = meta_block(itertools.chain([head], handle))
        at = handle.tell()
        if meta is None or handle.readline().rstrip() == b'{':
            return _read_whole(path, handle, start)  # json.dump(indent=0)
        handle.seek(at)
        why = why_incomplete(path, meta)
    frames = _Frames(path, meta)
    dropped = _read_lines(path, handle, number, partial, frames)
    read = len(frames.frame_index)
    if why is None and read != meta.get('frame_count'):
        raise ResultError(f'{path} is damaged: {read} frame records where '
                          f'its meta counts {meta.get("frame_count")}')
    return _finish(frames, why, dropped)


def _finish(frames: '_Frames', why: Optional[str], dropped=None) -> Result:
    """``frames`` as a :class:`Result`, warning ``why`` it is incomplete."""
    if why is not None:
        warnings.warn(f'{why}: read {len(frames.frame_index)} whole frame '
                      'record(s)' + (f', its half-written last line '
                                     f'{dropped} dropped' if dropped else ''),
                      SuiteWarning)
    return frames.result(why)


def _read_whole(path: Path, handle, start: int) -> Result:
    """A file from byte ``start`` on not in the suite's layout, parsed
    whole: a result re-saved by other tools, else ResultError."""
    handle.seek(start)
    first, whole = handle.read(16), None
    if first.lstrip().startswith(b'{'):  # not a video read into memory
        try:
            whole = json.loads(first + handle.read())
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            pass
    if not isinstance(whole, dict) or not isinstance(
            whole.get('meta'), dict) or not isinstance(
            whole.get('frames'), list):
        raise ResultError(
            f'{path} is cut short or damaged in its meta' if first.replace(
                b'\r\n', b'\n').startswith(RESULT_HEAD) else
            f'{path} is not a result of this suite')
    meta, records = whole['meta'], whole['frames']
    frames = _Frames(path, meta)
    for number, record in enumerate(records):
        problem = _problem(record, frames.frame_index[-1:])
        if problem:
            raise ResultError(f'{path} is damaged at frame record {number}:'
                              f' {problem}')
        frames.add(record)
    end, why = whole.get('end'), None
    count = end.get('frame_count') if isinstance(end, dict) else None
    if count is None:
        why = f'{path.name} has no end record'
    elif count != meta.get('frame_count'):
        why = (f'the closing record of {path.name} counts {count} '
               f'frame(s) where its meta says {meta.get("frame_count")}')
    elif len(records) != count:
        why = (f'{path.name} holds {len(records)} frame records where its '
               f'end counts {count} (some removed after it was written?)')
    return _finish(frames, why)


def _read_lines(path: Path, handle, number: int, partial: bool,
                frames: '_Frames'):
    """Give each frame record of ``handle`` (``path`` read up to its line
    ``number``: the frames' opening line, or a partial file's header) to
    ``frames``, in order; the number of a last line that could not be
    read and was dropped (None: none)."""
    pending = None  # the number of a line that did not read
    # Millions of small lists: the cyclic collector is paused while they
    # are read (as pose_suite.movement.series does); each person's become
    # arrays at once.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for number, line in enumerate(handle, number + 1):
            if pending is not None:
                raise ResultError(f'{path} is damaged at line {pending}: '
                                  'not a frame record')
            if line.startswith(b']') and not partial:
                break
            if line.startswith(b'{"failed_frame"') and partial:
                continue
            try:
                record = json.loads(line.rstrip().rstrip(b','))
            except ValueError:  # JSONDecodeError, UnicodeDecodeError
                pending = number
                continue
            problem = _problem(record, frames.frame_index[-1:])
            if problem:
                raise ResultError(f'{path} is damaged at line {number}:'
                                  f' {problem}')
            frames.add(record)
    finally:
        if collecting:
            gc.enable()
    return pending


def _problem(record, last: List[int]) -> Optional[str]:
    """Why ``record`` cannot be the frame record after frame ``last[0]``
    (``[]``: the first), or None."""
    if not isinstance(record, dict) or \
            not isinstance(record.get('persons'), list) or \
            not isinstance(record.get('timestamp_s'), (int, float)):
        return 'not a frame record'
    index = record.get('frame_index')
    if not isinstance(index, int) or isinstance(index, bool) or \
            not 0 <= index < 2 ** 63:
        return 'not a frame record'
    if last and index <= last[0]:
        return f'frame {index} comes after frame {last[0]}'
    return None


class _Frames:
    """Frame records turned into small arrays as they are read (a
    person's lists of floats take ten times their array's memory), then
    into a :class:`Result`."""

    def __init__(self, path: Path, meta: dict):
        self.path, self.meta = path, meta
        #: None: decided by the first person (a partial file has no meta).
        self.tracked = bool(meta['tracking']) if 'tracking' in meta else None
        names = meta.get('keypoint_names')
        self.names = list(names) if isinstance(names, list) else None
        self.count = None  # K, from the first person
        angles = meta.get('angles')
        self.angle_names = list(angles) if isinstance(angles, list) else None
        self.angles_from_persons = self.angle_names is None
        self.frame_index: List[int] = []
        self.timestamp_s: List[float] = []
        #: (row, label, points (K, 3), box (5,), raw or None, angles or None)
        self.persons: List[tuple] = []

    def add(self, record: dict) -> None:
        row, labels = len(self.frame_index), set()
        for slot, person in enumerate(record['persons']):
            try:
                entry = self._person(row, slot, person)
            except (KeyError, TypeError, ValueError, AttributeError,
                    OverflowError) as exc:  # 1e999 ints in a list
                raise ResultError(
                    f'{self.path} is damaged: frame {record["frame_index"]}, '
                    f'person {slot}: {type(exc).__name__} {exc}') from None
            if entry[1] in labels:
                raise ResultError(
                    f'{self.path} is damaged: frame {record["frame_index"]} '
                    f'holds track id {entry[1]} twice')
            labels.add(entry[1])
            self.persons.append(entry)
        self.frame_index.append(record['frame_index'])
        self.timestamp_s.append(record['timestamp_s'])

    def _person(self, row: int, slot: int, person: dict) -> tuple:
        if self.tracked is None:
            self.tracked = 'track_id' in person
        label = person['track_id'] if self.tracked else slot
        if not isinstance(label, int) or isinstance(label, bool):
            raise TypeError(f'track id {label!r}')
        if not -2 ** 63 <= label < 2 ** 63:
            raise OverflowError(f'track id {label} beyond int64')
        points = triplets(person)
        if self.count is None:
            self.count = len(self.names) if self.names else len(points)
        raw = triplets({'keypoints': person['keypoints_raw'],
                        'keypoint_scores': person['keypoint_scores']}) \
            if 'keypoints_raw' in person else None
        box = _nan(list(person['bbox']) + [person['bbox_score']])
        if self.angles_from_persons and self.angle_names is None and \
                isinstance(person.get('angles'), dict):
            self.angle_names = list(person['angles'])
        angles = None
        if self.angle_names is not None:  # a stitched segment's may lack them
            held = person.get('angles') or {}
            angles = _nan([held.get(name) for name in self.angle_names])
        for values, shape in ((points, (self.count, 3)), (box, (5,)),
                              (raw, (self.count, 3))):
            if values is not None and values.shape != shape:
                raise ValueError(f'shape {values.shape} where {shape} is '
                                 'expected')
        return row, label, points, box, raw, angles

    def result(self, why: Optional[str]) -> Result:
        if self.tracked:
            labels = np.array(sorted({entry[1] for entry in self.persons}),
                              np.int64)
        else:
            labels = np.arange(max((entry[1] + 1 for entry in self.persons),
                                   default=0), dtype=np.int64)
        column = {int(label): number for number, label in enumerate(labels)}
        count = self.count if self.count is not None else \
            len(self.names or ())
        shape = (len(self.frame_index), len(labels))
        present = np.zeros(shape, bool)
        keypoints = np.full(shape + (count, 3), np.nan)
        bboxes = np.full(shape + (5,), np.nan)
        raw = np.full(shape + (count, 3), np.nan) if any(
            entry[4] is not None for entry in self.persons) else None
        angles = None if self.angle_names is None else \
            np.full(shape + (len(self.angle_names),), np.nan)
        for row, label, points, box, measured, angle in self.persons:
            where = (row, column[label])
            present[where] = True
            keypoints[where], bboxes[where] = points, box
            if measured is not None:
                raw[where] = measured
            if angle is not None:
                angles[where] = angle
        self.persons = []
        return Result(self.path, self.meta,
                      np.array(self.frame_index, np.int64),
                      np.array(self.timestamp_s, np.float64),
                      bool(self.tracked), labels, present, keypoints, raw,
                      bboxes, self.names, self.angle_names, angles,
                      why is None, why)


def _nan(values: list) -> np.ndarray:
    """``values`` as float64, None as NaN."""
    return np.array([np.nan if value is None else value
                     for value in values], np.float64)
