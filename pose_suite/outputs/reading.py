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
"""
import dataclasses
import gc
import json
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from pose_suite.errors import ResultError, SuiteWarning
from pose_suite.outputs.results import (RESULT_HEAD, read_meta, starts_with,
                                        triplets, why_incomplete)

#: The first bytes of the partial file a run streams its records to.
PARTIAL_HEAD = b'{"resume_key":'
#: The long table's columns (:meth:`Result.to_dataframe`).
LONG_COLUMNS = ('frame_index', 'timestamp_s', 'track_id', 'keypoint', 'x',
                'y', 'score')
#: The columns that come before the angles' in
#: :meth:`Result.angles_dataframe`.
ANGLE_ID_COLUMNS = ('frame_index', 'timestamp_s', 'track_id')


@dataclasses.dataclass
class Result:
    """A result JSON as arrays. F: frame records in the file; T: columns
    (persons); K: keypoints (133 for COCO-WholeBody); A: angle names.

    Attributes:
        path: the file read.
        meta: the result's ``meta`` dict as written ({} for a run's
            partial file, which has none).
        frame_index: (F,) int64 source frame index of each frame record, in
            the file's order (frames that failed to decode have none).
        timestamp_s: (F,) float64 their times in seconds from the start of
            the video stream (0.0 for an image).
        tracked: whether columns are persons followed over time (the
            result was run with ``tracking``).
        track_ids: (T,) int64 label of each column: the ``track_id``
            (sorted) of a tracked result; of an untracked one the person
            slot 0, 1, ... (a person's place in its frame's ``persons``,
            by decreasing ``bbox_score``): slot 0 of two frames need not be
            the same person.
        present: (F, T) bool, whether the frame record holds that person.
        keypoints: (F, T, K, 3) float64 x, y in image pixels and the
            keypoint score (0 to about 1); all NaN where the person is not
            in the frame, NaN where the JSON holds null. The smoothed
            points when the run smoothed.
        keypoints_raw: (F, T, K, 3) as ``keypoints``, the measured points
            of a smoothed result (its ``keypoints_raw``, with the same
            scores); None when the result has none.
        bboxes: (F, T, 5) float64 x1, y1, x2, y2 in pixels and
            ``bbox_score``; NaN where the person is not in the frame.
        keypoint_names: the K names of ``meta.keypoint_names`` (None for a
            partial file: the model's names are in the meta it lacks).
        angle_names: the A names of ``meta.angles`` (run with ``angles``;
            a partial file: those its persons hold), else None.
        angles: (F, T, A) float64 degrees, NaN where the JSON holds null
            or the person is not in the frame; None without angles.
        complete: whether the file was written to its end.
        incomplete: why not, in words (None when complete).
    """

    path: Path
    meta: dict
    frame_index: np.ndarray
    timestamp_s: np.ndarray
    tracked: bool
    track_ids: np.ndarray
    present: np.ndarray
    keypoints: np.ndarray
    keypoints_raw: Optional[np.ndarray]
    bboxes: np.ndarray
    keypoint_names: Optional[List[str]]
    angle_names: Optional[List[str]]
    angles: Optional[np.ndarray]
    complete: bool
    incomplete: Optional[str]

    def __repr__(self) -> str:
        frames, tracks = self.present.shape
        what = 'tracks' if self.tracked else 'person slots'
        cut = '' if self.complete else ', cut short'
        return (f'<Result {self.path.name}: {frames} frames, {tracks} '
                f'{what}, {self.keypoints.shape[2]} keypoints{cut}>')

    def to_dataframe(self):
        """The keypoints as a long pandas DataFrame: one row per keypoint
        of each person present in a frame (K rows a person; a frame or a
        column without the person gives no rows), in frame, column and
        keypoint order. Columns :data:`LONG_COLUMNS`: ``frame_index``
        (int64), ``timestamp_s`` (float64, s), ``track_id`` (int64: the
        column's label, :attr:`track_ids`), ``keypoint`` (the point's name;
        its index where the names are unknown), ``x``, ``y`` (float64,
        pixels; NaN where the JSON holds null), ``score`` (float64)."""
        import pandas as pd
        frames, columns = np.nonzero(self.present)
        count = self.keypoints.shape[2]
        points = self.keypoints[frames, columns].reshape(-1, 3)
        names = np.asarray(self.keypoint_names if self.keypoint_names
                           is not None else np.arange(count), dtype=object)
        return pd.DataFrame({
            'frame_index': np.repeat(self.frame_index[frames], count),
            'timestamp_s': np.repeat(self.timestamp_s[frames], count),
            'track_id': np.repeat(self.track_ids[columns], count),
            'keypoint': np.tile(names, len(frames)),
            'x': points[:, 0], 'y': points[:, 1], 'score': points[:, 2]},
            columns=list(LONG_COLUMNS))

    def angles_dataframe(self):
        """The angles as a wide pandas DataFrame: one row per person
        present in a frame, in frame and column order; columns
        ``frame_index``, ``timestamp_s``, ``track_id`` (as in
        :meth:`to_dataframe`) then one float64 column of degrees per angle
        name in ``meta.angles``' order (NaN where the JSON holds null).

        Raises:
            ResultError: the result was run without ``angles``.
        """
        if self.angles is None:
            raise ResultError(f'{self.path} holds no angles: analyse the '
                              'video with "angles": true (or --angles)')
        import pandas as pd
        frames, columns = np.nonzero(self.present)
        table = {'frame_index': self.frame_index[frames],
                 'timestamp_s': self.timestamp_s[frames],
                 'track_id': self.track_ids[columns]}
        values = self.angles[frames, columns]
        for number, name in enumerate(self.angle_names):
            table[name] = values[:, number]
        return pd.DataFrame(table,
                            columns=list(ANGLE_ID_COLUMNS) + self.angle_names)


def read_result(path) -> Result:
    """Read the result JSON ``path`` (or the partial file of a run that
    was stopped) whole into a :class:`Result`.

    A file cut short (no ``end`` record) gives the frame records that are
    whole, a half-written last line dropped, and warns once
    (:class:`~pose_suite.errors.SuiteWarning`); ``Result.complete`` is then
    False. Memory: F x T x K x 3 x 8 bytes for ``keypoints`` (twice that
    with ``keypoints_raw``): 1 GB for 5 persons over 100,000 frames.

    Raises:
        ResultError: ``path`` is missing, unreadable, not a result of this
            suite, or damaged before its last line (a line that is no frame
            record, a record out of order, a track id twice in a frame,
            fewer records than its complete ``end`` counts).
    """
    path = Path(path)
    if not path.is_file():
        raise ResultError(f'no result file at {path}')
    partial = starts_with(path, PARTIAL_HEAD)
    if partial:
        meta, why = {}, (f'{path.name} is the partial file of a run that '
                         'was stopped (finish it with --resume)')
    else:
        meta = read_meta(path)
        if meta is None:
            raise ResultError(
                f'{path} is cut short or damaged in its meta' if
                starts_with(path, RESULT_HEAD) else
                f'{path} is not a result of this suite')
        why = why_incomplete(path, meta)
    records, dropped = _records(path, partial)
    if why is None and len(records) != meta.get('frame_count'):
        raise ResultError(f'{path} is damaged: {len(records)} frame records '
                          f'where its meta counts {meta.get("frame_count")}')
    if why is not None:
        warnings.warn(f'{why}: read {len(records)} whole frame record(s)'
                      + (f', its half-written last line {dropped} dropped'
                         if dropped else ''), SuiteWarning)
    return _arrays(path, meta, records, why)


def _records(path: Path, partial: bool):
    """The frame records of ``path`` (dicts), and the number of a last line
    that could not be read and was dropped (None: none)."""
    records: List[dict] = []
    pending = None  # (line number, why) of a line that did not read
    in_frames = partial
    # Millions of small lists: the cyclic collector is paused while they
    # are read (as pose_suite.movement.series does).
    collecting = gc.isenabled()
    gc.disable()
    try:
        with open(path, 'rb') as handle:
            for number, line in enumerate(handle, 1):
                if not in_frames:
                    in_frames = line.startswith(b'"frames": [')
                    continue
                if partial and number == 1:
                    continue
                if pending is not None:
                    raise ResultError(f'{path} is damaged at line '
                                      f'{pending[0]}: {pending[1]}')
                if line.startswith(b']') and not partial:
                    break
                if line.startswith(b'{"failed_frame"') and partial:
                    continue
                try:
                    record = json.loads(line.rstrip().rstrip(b','))
                except ValueError:  # JSONDecodeError, UnicodeDecodeError
                    pending = (number, 'not a frame record')
                    continue
                problem = _problem(record, records[-1] if records else None)
                if problem:
                    raise ResultError(f'{path} is damaged at line {number}:'
                                      f' {problem}')
                records.append(record)
    except OSError as exc:
        raise ResultError(f'{path} cannot be read: '
                          f'{exc.strerror or exc}') from None
    finally:
        if collecting:
            gc.enable()
    return records, pending[0] if pending else None


def _problem(record, last: Optional[dict]) -> Optional[str]:
    """Why ``record`` cannot be the frame record after ``last``, or None."""
    if not isinstance(record, dict) or \
            not isinstance(record.get('persons'), list) or \
            not isinstance(record.get('timestamp_s'), (int, float)):
        return 'not a frame record'
    index = record.get('frame_index')
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        return 'not a frame record'
    if last is not None and index <= last['frame_index']:
        return f'frame {index} comes after frame {last["frame_index"]}'
    return None


def _arrays(path: Path, meta: dict, records: List[dict],
            why: Optional[str]) -> Result:
    """The :class:`Result` of ``records`` (read by :func:`_records`)."""
    persons = [person for record in records for person in record['persons']]
    tracked = meta['tracking'] if 'tracking' in meta else bool(persons) \
        and all('track_id' in person for person in persons)
    names = meta.get('keypoint_names')
    names = list(names) if isinstance(names, list) else None
    count = len(persons[0]['keypoints']) if persons else \
        len(names) if names is not None else 0
    angle_names = meta.get('angles')
    if not isinstance(angle_names, list):  # a partial file: its persons'
        angle_names = next((list(person['angles']) for person in persons
                            if isinstance(person.get('angles'), dict)), None)
    if tracked:
        labels = _track_ids(path, records)
    else:
        labels = np.arange(max((len(r['persons']) for r in records),
                               default=0), dtype=np.int64)
    column = {int(label): number for number, label in enumerate(labels)}
    shape = (len(records), len(labels))
    present = np.zeros(shape, bool)
    keypoints = np.full(shape + (count, 3), np.nan)
    raw = np.full(shape + (count, 3), np.nan) \
        if any('keypoints_raw' in person for person in persons) else None
    bboxes = np.full(shape + (5,), np.nan)
    angles = None if angle_names is None else \
        np.full(shape + (len(angle_names),), np.nan)
    for row, record in enumerate(records):
        for slot, person in enumerate(record['persons']):
            where = (row, column[person['track_id'] if tracked else slot])
            present[where] = True
            try:
                _put(keypoints, where, triplets(person))
                _put(bboxes, where, _nan(list(person['bbox'])
                                         + [person['bbox_score']]))
                if raw is not None and 'keypoints_raw' in person:
                    _put(raw, where, triplets(
                        {'keypoints': person['keypoints_raw'],
                         'keypoint_scores': person['keypoint_scores']}))
                if angles is not None:  # a stitched segment's may lack them
                    held = person.get('angles') or {}
                    _put(angles, where, _nan([held.get(name)
                                              for name in angle_names]))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ResultError(
                    f'{path} is damaged: frame {record["frame_index"]}, '
                    f'person {slot}: {type(exc).__name__} {exc}') from None
    return Result(path, meta, np.array([r['frame_index'] for r in records],
                                       np.int64),
                  np.array([r['timestamp_s'] for r in records], np.float64),
                  bool(tracked), labels, present, keypoints, raw, bboxes,
                  names,
                  list(angle_names) if angle_names is not None else None,
                  angles, why is None, why)


def _track_ids(path: Path, records: List[dict]) -> np.ndarray:
    """The sorted track ids of a tracked result's ``records``."""
    seen: Dict[int, None] = {}
    for record in records:
        ids = [person.get('track_id') for person in record['persons']]
        if not all(isinstance(i, int) and not isinstance(i, bool)
                   for i in ids) or len(set(ids)) != len(ids):
            raise ResultError(
                f'{path} is damaged: frame {record["frame_index"]} of a '
                f'tracked result has track ids {ids}')
        seen.update(dict.fromkeys(ids))
    return np.array(sorted(seen), np.int64)


def _put(array: np.ndarray, where: tuple, values: np.ndarray) -> None:
    """``array[where] = values``, of the same shape (never broadcast)."""
    if values.shape != array.shape[2:]:
        raise ValueError(f'shape {values.shape} where {array.shape[2:]} '
                         'is expected')
    array[where] = values


def _nan(values: list) -> np.ndarray:
    """``values`` as float64, None as NaN."""
    return np.array([np.nan if value is None else value
                     for value in values], np.float64)
