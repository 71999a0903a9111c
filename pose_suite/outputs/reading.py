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
from typing import List, Optional

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
        column's label, :attr:`track_ids`), ``keypoint`` (the point's name,
        a pandas Categorical whose categories are the K names in model
        order: 8 bytes a row fewer than strings, and a pivot keeps that
        order; its index where the names are unknown), ``x``, ``y`` (float64,
        pixels; NaN where the JSON holds null), ``score`` (float64)."""
        pd = _pandas()
        frames, columns = np.nonzero(self.present)
        count = self.keypoints.shape[2]
        points = self.keypoints[frames, columns].reshape(-1, 3)
        names = self.keypoint_names if self.keypoint_names is not None \
            else list(range(count))
        return pd.DataFrame({
            'frame_index': np.repeat(self.frame_index[frames], count),
            'timestamp_s': np.repeat(self.timestamp_s[frames], count),
            'track_id': np.repeat(self.track_ids[columns], count),
            'keypoint': pd.Categorical.from_codes(
                np.tile(np.arange(count), len(frames)), names),
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
        pd = _pandas()
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
    with ``keypoints_raw``): 1.6 GB for 5 tracks over 100,000 frames.

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
    frames = _Frames(path, meta)
    dropped = _read_lines(path, partial, frames)
    read = len(frames.frame_index)
    if why is None and read != meta.get('frame_count'):
        raise ResultError(f'{path} is damaged: {read} frame records where '
                          f'its meta counts {meta.get("frame_count")}')
    if why is not None:
        warnings.warn(f'{why}: read {read} whole frame record(s)'
                      + (f', its half-written last line {dropped} dropped'
                         if dropped else ''), SuiteWarning)
    return frames.result(why)


def _read_lines(path: Path, partial: bool, frames: '_Frames'):
    """Give each frame record of ``path`` to ``frames``, in order; the
    number of a last line that could not be read and was dropped (None:
    none)."""
    pending = None  # the number of a line that did not read
    in_frames = partial
    # Millions of small lists: the cyclic collector is paused while they
    # are read (as pose_suite.movement.series does); each person's become
    # arrays at once.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with open(path, 'rb') as handle:
            for number, line in enumerate(handle, 1):
                if not in_frames:
                    in_frames = line.startswith(b'"frames": [')
                    continue
                if partial and number == 1:
                    continue  # the partial file's header
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
    except OSError as exc:
        raise ResultError(f'{path} cannot be read: '
                          f'{exc.strerror or exc}') from None
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
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
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
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
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


def _pandas():
    """pandas, imported now (the suite itself does not need it)."""
    try:
        import pandas
    except ImportError:
        raise ImportError('the tables of read_result need pandas, which is '
                          'not installed: pip install pandas') from None
    return pandas


def _nan(values: list) -> np.ndarray:
    """``values`` as float64, None as NaN."""
    return np.array([np.nan if value is None else value
                     for value in values], np.float64)
