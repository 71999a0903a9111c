"""A finished result as trajectories: one array per tracked person.

The result's records are read once, a line at a time
(:func:`~pose_suite.outputs.results.iter_frame_records`), into the frame
grid (every analysed frame's ``frame_index`` and ``timestamp_s``) and, per
``track_id``, the measured points (``keypoints_raw`` where the run smoothed
them causally, else ``keypoints``) and their scores. A track spans the
frames from the first to the last in which it was seen; the frames in
between where it was not are NaN.
"""
import dataclasses
import gc
from pathlib import Path
from typing import Dict, List

import numpy as np

from pose_suite.outputs.results import iter_frame_records


@dataclasses.dataclass
class Track:
    """One tracked person's trajectories over the frames of its span.

    Attributes:
        track_id: the result's ``track_id``.
        frame_index: (T,) source frame indices of the analysed frames.
        timestamp_s: (T,) their times in seconds (the result's clock).
        points: (T, K, 2) x, y in image pixels; NaN where the person was
            not found in that frame.
        scores: (T, K) keypoint scores; NaN where not found.
    """

    track_id: int
    frame_index: np.ndarray
    timestamp_s: np.ndarray
    points: np.ndarray
    scores: np.ndarray


@dataclasses.dataclass
class Trajectories:
    """Every track of a result, and its frame grid (``frame_index``,
    ``timestamp_s``: (F,) over all analysed frames)."""

    frame_index: np.ndarray
    timestamp_s: np.ndarray
    tracks: List[Track]
    untracked_persons: int = 0


def read_trajectories(path: Path, keypoint_count: int) -> Trajectories:
    """The tracks of the result ``path`` (of a model with
    ``keypoint_count`` points). Persons without a ``track_id`` (an
    untracked result) are counted in ``untracked_persons``, not
    returned."""
    frames, times = [], []
    seen: Dict[int, List[tuple]] = {}
    untracked = 0
    # Millions of small lists: the cyclic garbage collector, which would
    # walk them again and again, is paused while they are read (nothing
    # read here holds a cycle); each person's lists become arrays at once.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for row, record in enumerate(iter_frame_records(path)):
            frames.append(record['frame_index'])
            times.append(record['timestamp_s'])
            for person in record['persons']:
                if 'track_id' not in person:
                    untracked += 1
                    continue
                points = person.get('keypoints_raw', person['keypoints'])
                # null (a point the JSON could not hold) becomes NaN.
                seen.setdefault(int(person['track_id']), []).append(
                    (row, np.array(points, np.float64),
                     np.array(person['keypoint_scores'], np.float64)))
    finally:
        if collecting:
            gc.enable()
    frame_index = np.asarray(frames, np.int64)
    timestamp_s = np.asarray(times, np.float64)
    tracks = [_track(track_id, rows, frame_index, timestamp_s,
                     keypoint_count)
              for track_id, rows in sorted(seen.items())]
    return Trajectories(frame_index, timestamp_s, tracks, untracked)


def _track(track_id: int, rows: List[tuple], frame_index: np.ndarray,
           timestamp_s: np.ndarray, keypoint_count: int) -> Track:
    first, last = rows[0][0], rows[-1][0]
    span = last - first + 1
    points = np.full((span, keypoint_count, 2), np.nan)
    scores = np.full((span, keypoint_count), np.nan)
    for row, xy, score in rows:
        points[row - first] = xy
        scores[row - first] = score
    return Track(track_id, frame_index[first:last + 1],
                 timestamp_s[first:last + 1], points, scores)
