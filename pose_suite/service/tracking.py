"""Person identities across video frames, and temporal smoothing.

:class:`PoseTracker` gives each person a stable ``track_id``: greedy
matching on a similarity that averages box IoU and keypoint similarity
(OKS-style) against the tracks of earlier frames, with a short memory so that
someone hidden for a few frames gets their id back.

:class:`OneEuroSmoother` filters each track's keypoints with the One-Euro
filter (Casiez et al., CHI 2012): little smoothing when a keypoint moves
fast (no lag), more when it is nearly still (no jitter).
"""
import dataclasses
import math
from typing import Dict, List, Optional

import numpy as np

from pose_suite.outputs.results import persons_from_record


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two x1, y1, x2, y2 boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) \
        - inter
    return float(inter / union) if union > 0 else 0.0


def keypoint_similarity(a: Dict, b: Dict, kpt_thr: float,
                        kappa: float = 0.1) -> float:
    """OKS-style similarity of two poses: mean of exp(-d² / (2 s² κ²)) over
    the keypoints visible in both, s² the area of ``b``'s box; 0 when none
    are."""
    visible = (a['keypoint_scores'] > kpt_thr) & \
        (b['keypoint_scores'] > kpt_thr)
    if not visible.any():
        return 0.0
    x1, y1, x2, y2 = b['bbox'][:4]
    area = max((x2 - x1) * (y2 - y1), 1.0)
    squared = ((a['keypoints'][visible] - b['keypoints'][visible]) ** 2
               ).sum(axis=1)
    return float(np.exp(-squared / (2 * area * kappa ** 2)).mean())


class PoseTracker:
    """Greedy person tracking.

    Args:
        kpt_thr: keypoints above this score count for similarity.
        min_similarity: a person joins a track only above this
            (0.5 × IoU + 0.5 × keypoint similarity, in [0, 1]).
        max_missed: a track not matched in this many frames in a row is
            forgotten (someone hidden for fewer frames keeps their id).
    """

    def __init__(self, kpt_thr: float = 0.3, min_similarity: float = 0.3,
                 max_missed: int = 15):
        self.kpt_thr = kpt_thr
        self.min_similarity = min_similarity
        self.max_missed = max_missed
        self.tracks: Dict[int, Dict] = {}  # id -> last person, 'missed'
        self.next_id = 0

    def update(self, persons: List[Dict]) -> None:
        """Set ``person['track_id']`` for every person of the next frame."""
        pairs = []
        for index, person in enumerate(persons):
            for track_id, track in self.tracks.items():
                similarity = 0.5 * box_iou(person['bbox'], track['bbox']) + \
                    0.5 * keypoint_similarity(person, track, self.kpt_thr)
                if similarity >= self.min_similarity:
                    pairs.append((similarity, -track_id, index))
        taken_people, taken_tracks = set(), set()
        for similarity, negative_id, index in sorted(pairs, reverse=True):
            track_id = -negative_id
            if index in taken_people or track_id in taken_tracks:
                continue
            persons[index]['track_id'] = track_id
            taken_people.add(index)
            taken_tracks.add(track_id)
        for index, person in enumerate(persons):
            if index not in taken_people:
                person['track_id'] = self.next_id
                self.next_id += 1
        self.remember(persons)

    def remember(self, persons: List[Dict]) -> None:
        """Age the tracks and store this frame's persons, which carry their
        ``track_id``, as the tracks' ends (``update`` does this; a resumed
        run calls it to replay the frames already written)."""
        for track_id in list(self.tracks):
            self.tracks[track_id]['missed'] += 1
            if self.tracks[track_id]['missed'] >= self.max_missed:
                del self.tracks[track_id]
        for person in persons:
            before = self.tracks.get(person['track_id'], {})
            self.tracks[person['track_id']] = {
                # Frames the track was seen in (person_order longest).
                'seen': before.get('seen', 0) + 1,
                'bbox': np.asarray(person['bbox'], np.float64),
                'keypoints': np.asarray(person['keypoints'], np.float64),
                'keypoint_scores': np.asarray(person['keypoint_scores']),
                'missed': 0}
            self.next_id = max(self.next_id, person['track_id'] + 1)


class OneEuroSmoother:
    """One-Euro filtering of each track's keypoints.

    Args:
        min_cutoff: cutoff frequency (Hz) when still: lower, smoother.
        beta: how fast the cutoff rises with speed (per px/s): higher, less
            lag on fast moves.
        d_cutoff: cutoff frequency (Hz) of the speed estimate.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05,
                 d_cutoff: float = 1.0, max_missed: int = 15):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.max_missed = max_missed
        self.frame = 0
        self.state: Dict[int, Dict] = {}  # track id -> x, dx, t, frame

    @staticmethod
    def _alpha(cutoff: np.ndarray, dt: float) -> np.ndarray:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def smooth(self, persons: List[Dict], timestamp_s: float) -> List[Dict]:
        """The tracked persons of the next frame with filtered
        ``keypoints``; the measured ones are kept as ``keypoints_raw``.
        The input dicts are not changed."""
        self.frame += 1
        smoothed = []
        for person in persons:
            raw = np.asarray(person['keypoints'], np.float64)
            state = self.state.get(person['track_id'])
            if state is None or timestamp_s <= state['t']:
                state = {'x': raw, 'dx': np.zeros_like(raw)}
                x_hat = raw
            else:
                dt = timestamp_s - state['t']
                a_d = self._alpha(np.full_like(raw, self.d_cutoff), dt)
                dx_hat = a_d * (raw - state['x']) / dt + \
                    (1 - a_d) * state['dx']
                a = self._alpha(self.min_cutoff + self.beta * np.abs(dx_hat),
                                dt)
                x_hat = a * raw + (1 - a) * state['x']
                state = {'x': x_hat, 'dx': dx_hat}
            state.update(t=timestamp_s, frame=self.frame)
            self.state[person['track_id']] = state
            smoothed.append(dict(person, keypoints=x_hat.astype(np.float32),
                                 keypoints_raw=person['keypoints']))
        for track_id in [t for t, s in self.state.items()
                         if self.frame - s['frame'] >= self.max_missed]:
            del self.state[track_id]
        return smoothed


def boxes_from_keypoints(persons: List[Dict], kpt_thr: float, width: int,
                         height: int, expansion: float = 1.25,
                         min_visible: int = 3) -> np.ndarray:
    """Person boxes for the next frame from this frame's keypoints, as
    RTMPose's real-time pipeline does between detections.

    Each box is the extent of the keypoints scoring above ``kpt_thr``,
    enlarged ``expansion`` times about its centre and clipped to the image;
    it keeps the person's ``bbox_score``. A person with fewer than
    ``min_visible`` such keypoints is dropped (lost until the next
    detection).

    Returns:
        float32 (N, 5): x1, y1, x2, y2 in pixels, score.
    """
    boxes = []
    for person in persons:
        visible = person['keypoints'][person['keypoint_scores'] > kpt_thr]
        if len(visible) < min_visible:
            continue
        low, high = visible.min(axis=0), visible.max(axis=0)
        centre, half = (low + high) / 2, (high - low) * expansion / 2
        x1, y1 = np.maximum(centre - half, 0)
        x2, y2 = np.minimum(centre + half, (width, height))
        if x2 > x1 and y2 > y1:
            boxes.append((x1, y1, x2, y2, person['bbox_score']))
    return np.asarray(boxes, np.float32).reshape(-1, 5)


@dataclasses.dataclass
class CarriedState:
    """What one frame hands to the next: tracks, filters, and the persons
    that video mode follows."""

    tracker: Optional[PoseTracker]
    smoother: Optional[OneEuroSmoother]
    persons: List[Dict] = dataclasses.field(default_factory=list)

    @classmethod
    def for_source(cls, cfg, kind: str) -> 'CarriedState':
        """The state the config asks for, for a source of ``kind``
        (``image``, ``video``, ...): images are not tracked."""
        tracker = PoseTracker(cfg.kpt_thr) \
            if cfg.tracking and kind != 'image' else None
        return cls(tracker, OneEuroSmoother()
                   if tracker and cfg.smoothing else None)

    def follow(self, persons: List[Dict], timestamp_s: float) -> List[Dict]:
        """Track (and smooth) a new frame's persons; returns what to write.
        ``persons`` keep the measured keypoints (video mode uses them)."""
        if self.tracker:
            self.tracker.update(persons)
        return self.smoother.smooth(persons, timestamp_s) \
            if self.smoother else persons

    def replay(self, record: dict) -> None:
        """Rebuild the state from a frame a resumed file already holds."""
        self.persons = persons_from_record(record)
        if self.tracker:
            self.tracker.remember(self.persons)
        if self.smoother:
            self.smoother.smooth(self.persons, record['timestamp_s'])
