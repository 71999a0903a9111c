"""A result read back whole (:func:`pose_suite.outputs.reading.read_result`)
as numpy arrays, and as pandas tables when asked (pandas is imported
only then)."""
import dataclasses
from pathlib import Path
from typing import List, Optional

import numpy as np

from pose_suite.errors import ResultError

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


def _pandas():
    """pandas, imported now (the suite itself does not need it)."""
    try:
        import pandas
    except ImportError:
        raise ImportError('the tables of read_result need pandas, which is '
                          'not installed: pip install pandas') from None
    return pandas
