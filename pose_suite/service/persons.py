"""Which detected persons the pose model runs on: at most ``max_persons``
a frame, in the ``person_order`` asked, chosen from the detector's boxes
before any pose is estimated, so that the pose model's work shrinks with
the limit.

Orders: ``largest`` (box area, then score), ``score`` (the detector's box
score, then area) and ``longest`` (the track each box continues, by box
overlap with the tracks' last boxes, seen in most frames so far; then the
largest). The boxes kept stay in the detector's order, so a person's
record reads as in a run without a limit.
"""
from typing import Optional

import numpy as np

from pose_suite.service.tracking import PoseTracker, box_iou

#: A box continues a track when it overlaps the track's last box this much.
MIN_TRACK_IOU = 0.3


def choose_boxes(boxes: np.ndarray, max_persons: int, order: str,
                 tracker: Optional[PoseTracker] = None) -> np.ndarray:
    """The boxes of the persons to estimate.

    Args:
        boxes: (N, 5) ``x1, y1, x2, y2, score`` in image pixels, as the
            detector gives them.
        max_persons: at most this many are kept (0: all).
        order: ``largest``, ``score`` or ``longest`` (with ``tracker``, the
            tracks of the frames before; without, as ``largest``).
    Returns:
        (M, 5), M <= max_persons, in the order of ``boxes``.
    """
    boxes = np.asarray(boxes).reshape(-1, 5)
    if not max_persons or len(boxes) <= max_persons:
        return boxes
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * \
        np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    score = boxes[:, 4]
    if order == 'score':
        keys = (area, score)  # np.lexsort: the last key is the first
    elif order == 'longest' and tracker is not None:
        keys = (score, area, _frames_seen(boxes, tracker))
    else:
        keys = (score, area)
    ranked = np.lexsort(tuple(-np.asarray(k, np.float64) for k in keys))
    return boxes[np.sort(ranked[:max_persons])]


def _frames_seen(boxes: np.ndarray, tracker: PoseTracker) -> np.ndarray:
    """For each box, the frames seen of the track whose last box it
    overlaps most (IoU >= :data:`MIN_TRACK_IOU`), else 0."""
    seen = np.zeros(len(boxes))
    for number, box in enumerate(boxes):
        best = MIN_TRACK_IOU
        for track in tracker.tracks.values():
            overlap = box_iou(box[:4], track['bbox'][:4])
            if overlap >= best:
                best, seen[number] = overlap, track.get('seen', 1)
    return seen
