"""Joint and segment angles in the image plane, as Sports2D computes them.

Sports2D (``Sports2D.process.compute_angles_for_person``, with Pose2Sim's
``angle_dict``, ``points_to_angles`` and ``fixed_angles``) defines each
angle by 2, 3 or 4 named points, an offset and a scale:

* 2 points ``a, b``: the segment ``b -> a`` against the image's horizontal,
  ``atan2(dy, dx)``;
* 3 points ``a, b, c``: from ``b -> a`` to ``b -> c``;
* 4 points ``a, b, c, d``: from ``a -> b`` to ``c -> d``;

with 3 and 4 points ``-atan2(u × v, u · v)``; then ``(angle + offset) ×
scale``, wrapped to [-180, 180) degrees ([-90, 90) for pelvis and
shoulders, lines without a direction). Before that, as Sports2D does:
points scored below ``kpt_thr`` are NaN; ``Hip`` and ``Neck`` are the
middles of the hips and of the shoulders (x from their absolute values, as
Pose2Sim's ``add_shoulder_neck_hip_coords``); the side the person faces is
"auto": the x extent heel -> big toe of both feet summed, right when >= 0,
else left (also when a foot point is missing: a NaN sum is not >= 0), and a
person facing left has every x negated, so that flexion has one sign
whichever way the person walks. An angle with a missing point is NaN
(``null`` in the JSON), never a guess.

Sports2D's names map to mmpose's COCO-WholeBody names (:data:`POINTS`).
Its ``head`` segment needs a top-of-head point that COCO-WholeBody has not
(Sports2D leaves it out for this skeleton too): it is not computed.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

#: Sports2D's point names -> COCO-WholeBody's (mmpose's dataset meta).
#: ``Hip`` and ``Neck`` are computed (middle of the hips, of the shoulders).
POINTS = {
    'RShoulder': 'right_shoulder', 'LShoulder': 'left_shoulder',
    'RElbow': 'right_elbow', 'LElbow': 'left_elbow',
    'RWrist': 'right_wrist', 'LWrist': 'left_wrist',
    'RHip': 'right_hip', 'LHip': 'left_hip',
    'RKnee': 'right_knee', 'LKnee': 'left_knee',
    'RAnkle': 'right_ankle', 'LAnkle': 'left_ankle',
    'RBigToe': 'right_big_toe', 'LBigToe': 'left_big_toe',
    'RHeel': 'right_heel', 'LHeel': 'left_heel',
    # Sports2D's "Index" of the whole-body skeleton: the index finger's
    # first joint (hand point 5).
    'RIndex': 'right_forefinger1', 'LIndex': 'left_forefinger1',
}
#: The middles Sports2D adds: name -> (left point, right point).
MIDDLES = {'Hip': ('LHip', 'RHip'), 'Neck': ('LShoulder', 'RShoulder')}

#: Sports2D's definitions (Pose2Sim ``angle_dict``), in its order: name ->
#: (points, offset in degrees, scale). Its ``head`` (Head, Neck) is left
#: out: COCO-WholeBody has no top of the head.
DEFINITIONS = {
    'right ankle': (('RKnee', 'RAnkle', 'RBigToe', 'RHeel'), 90, 1),
    'left ankle': (('LKnee', 'LAnkle', 'LBigToe', 'LHeel'), 90, 1),
    'right knee': (('RAnkle', 'RKnee', 'RHip'), -180, 1),
    'left knee': (('LAnkle', 'LKnee', 'LHip'), -180, 1),
    'right hip': (('RKnee', 'RHip', 'Hip', 'Neck'), 0, -1),
    'left hip': (('LKnee', 'LHip', 'Hip', 'Neck'), 0, -1),
    'right shoulder': (('RElbow', 'RShoulder', 'Hip', 'Neck'), 0, -1),
    'left shoulder': (('LElbow', 'LShoulder', 'Hip', 'Neck'), 0, -1),
    'right elbow': (('RWrist', 'RElbow', 'RShoulder'), 180, -1),
    'left elbow': (('LWrist', 'LElbow', 'LShoulder'), 180, -1),
    # Sports2D's order of points, not symmetric between the two wrists.
    'right wrist': (('RElbow', 'RWrist', 'RIndex'), -180, 1),
    'left wrist': (('LElbow', 'LIndex', 'LWrist'), -180, 1),
    'right foot': (('RBigToe', 'RHeel'), 0, -1),
    'left foot': (('LBigToe', 'LHeel'), 0, -1),
    'right shank': (('RAnkle', 'RKnee'), 0, -1),
    'left shank': (('LAnkle', 'LKnee'), 0, -1),
    'right thigh': (('RKnee', 'RHip'), 0, -1),
    'left thigh': (('LKnee', 'LHip'), 0, -1),
    'pelvis': (('LHip', 'RHip'), 0, -1),
    'trunk': (('Neck', 'Hip'), 0, -1),
    'shoulders': (('LShoulder', 'RShoulder'), 0, -1),
    'right arm': (('RElbow', 'RShoulder'), 0, -1),
    'left arm': (('LElbow', 'LShoulder'), 0, -1),
    'right forearm': (('RWrist', 'RElbow'), 0, -1),
    'left forearm': (('LWrist', 'LElbow'), 0, -1),
    'right hand': (('RIndex', 'RWrist'), 0, -1),
    'left hand': (('LIndex', 'LWrist'), 0, -1),
}
#: Lines without a direction: wrapped to [-90, 90).
HALF_TURN = ('pelvis', 'shoulders')
#: Plotted in report.html by default.
PLOTTED = ('right knee', 'left knee', 'right hip', 'left hip', 'trunk')
FACING = ('auto', 'right', 'left', 'front', 'back', 'none')


def available(keypoint_names: Sequence[str]) -> List[str]:
    """The angles (of :data:`DEFINITIONS`, in order) whose points a model
    with ``keypoint_names`` has."""
    have = {point for point in POINTS if POINTS[point] in keypoint_names}
    have |= {middle for middle, pair in MIDDLES.items() if set(pair) <= have}
    return [name for name, (points, _, _) in DEFINITIONS.items()
            if set(points) <= have]


class AngleComputer:
    """The angles of persons of one model's keypoints.

    Args:
        keypoint_names: the model's point names (mmpose's dataset meta).
        kpt_thr: points scored below this are missing (as Sports2D's
            ``keypoint_likelihood_threshold``: a score equal to it counts).
        facing: Sports2D's ``visible_side``: ``auto`` or a fixed side.
    """

    def __init__(self, keypoint_names: Sequence[str], kpt_thr: float,
                 facing: str = 'auto'):
        if facing not in FACING:
            raise ValueError(f'facing must be one of {FACING}, got {facing!r}')
        self.kpt_thr, self.facing = float(kpt_thr), facing
        self.names = available(keypoint_names)
        index = {name: i for i, name in enumerate(keypoint_names)}
        used = [point for point in POINTS if POINTS[point] in index]
        #: Column of each Sports2D point in the (N, C) arrays used here.
        self._column = {point: c for c, point in enumerate(used)}
        self._source = np.array([index[POINTS[p]] for p in used], np.intp)
        self._has_feet = all(p in self._column for p in (
            'RBigToe', 'RHeel', 'LBigToe', 'LHeel'))
        self._has_middles = all(p in self._column
                                for pair in MIDDLES.values() for p in pair)
        if self._has_middles:
            for middle in MIDDLES:
                self._column[middle] = len(self._column)
        # The angles grouped by their number of points, computed a group at
        # a time: (columns (A, n), offsets (A,), scales (A,), half turn (A,)).
        self._groups = []
        for count in (2, 3, 4):
            group = [n for n in self.names if len(DEFINITIONS[n][0]) == count]
            if group:
                self._groups.append((
                    [self.names.index(n) for n in group],
                    np.array([[self._column[p] for p in DEFINITIONS[n][0]]
                              for n in group], np.intp),
                    np.array([DEFINITIONS[n][1] for n in group], np.float64),
                    np.array([DEFINITIONS[n][2] for n in group], np.float64),
                    np.array([n in HALF_TURN for n in group])))
        self._negated_front = np.array(
            [point.startswith('R') for point in self._column])
        self._negated_back = np.array(
            [point.startswith('L') for point in self._column])

    def compute(self, keypoints: np.ndarray, scores: np.ndarray
                ) -> np.ndarray:
        """Angles of N persons in degrees, NaN where a point is missing.

        Args:
            keypoints: (N, K, 2) x, y in px (NaN allowed).
            scores: (N, K) keypoint scores.

        Returns:
            (N, len(self.names)) float64, columns in ``self.names`` order.
        """
        keypoints = np.asarray(keypoints, np.float64)
        scores = np.asarray(scores, np.float64)
        if keypoints.ndim != 3 or keypoints.shape[:2] != scores.shape:
            raise ValueError('keypoints must be (N, K, 2) and scores (N, K)')
        return self._compute(keypoints[:, self._source],
                             scores[:, self._source])

    def of_record(self, keypoints: list, scores: list
                  ) -> Dict[str, Optional[float]]:
        """The angles of one person of a result record (its
        ``keypoints``, ``[x, y]`` lists with null, and
        ``keypoint_scores``): ``name -> degrees or None``."""
        points = np.array([keypoints[i] for i in self._source], np.float64)
        values = self._compute(points[None], np.array(
            [scores[i] for i in self._source], np.float64)[None])[0]
        return {name: (float(v) if np.isfinite(v) else None)
                for name, v in zip(self.names, values)}

    def _compute(self, points: np.ndarray, scores: np.ndarray
                 ) -> np.ndarray:
        """:meth:`compute` on the used points only: (N, U, 2), (N, U)."""
        points = points.copy()
        points[~(scores >= self.kpt_thr)] = np.nan
        x, y = points[..., 0], points[..., 1]
        if self._has_middles:
            extra_x, extra_y = [], []
            for left, right in MIDDLES.values():
                a, b = self._column[left], self._column[right]
                extra_x.append((np.abs(x[:, a]) + np.abs(x[:, b])) / 2)
                extra_y.append((y[:, a] + y[:, b]) / 2)
            x = np.concatenate([x, np.stack(extra_x, 1)], 1)
            y = np.concatenate([y, np.stack(extra_y, 1)], 1)
        x = self._flipped(x)
        out = np.empty((len(x), len(self.names)))
        for order, columns, offsets, scales, half_turn in self._groups:
            out[:, order] = self._angles(x[:, columns], y[:, columns],
                                         offsets, scales, half_turn)
        return out

    def as_dicts(self, keypoints: np.ndarray, scores: np.ndarray
                 ) -> List[Dict[str, Optional[float]]]:
        """:meth:`compute` as one ``name -> degrees or None`` a person."""
        return [{name: (float(v) if np.isfinite(v) else None)
                 for name, v in zip(self.names, row)}
                for row in self.compute(keypoints, scores)]

    def _flipped(self, x: np.ndarray) -> np.ndarray:
        """x with each person seen from its right (Sports2D's flip)."""
        facing = self.facing
        if facing == 'auto':
            if not self._has_feet:
                return x
            c = self._column
            orientation = (x[:, c['RBigToe']] - x[:, c['RHeel']]) + \
                (x[:, c['LBigToe']] - x[:, c['LHeel']])
            # NaN >= 0 is False: Sports2D then takes the person as facing
            # left.
            return np.where((orientation >= 0)[:, None], x, -x)
        if facing == 'left':
            return -x
        if facing in ('front', 'back'):
            negated = self._negated_front if facing == 'front' \
                else self._negated_back
            return np.where(negated[None, :], -x, x)
        return x

    @staticmethod
    def _angles(x: np.ndarray, y: np.ndarray, offsets: np.ndarray,
                scales: np.ndarray, half_turn: np.ndarray) -> np.ndarray:
        """Angles of one group: x, y (N, A, n) for n = 2, 3 or 4 points,
        as Pose2Sim's ``points_to_angles`` then ``fixed_angles``."""
        count = x.shape[2]
        if count == 2:
            angle = np.degrees(np.arctan2(y[..., 0] - y[..., 1],
                                          x[..., 0] - x[..., 1]))
        else:
            if count == 3:
                u = (x[..., 0] - x[..., 1], y[..., 0] - y[..., 1])
                v = (x[..., 2] - x[..., 1], y[..., 2] - y[..., 1])
            else:
                u = (x[..., 1] - x[..., 0], y[..., 1] - y[..., 0])
                v = (x[..., 3] - x[..., 2], y[..., 3] - y[..., 2])
            cross = u[0] * v[1] - u[1] * v[0]
            dot = u[0] * v[0] + u[1] * v[1]
            angle = np.degrees(-np.arctan2(cross, dot))
        angle = (angle + offsets) * scales
        return np.where(half_turn, (angle + 90) % 180 - 90,
                        (angle + 180) % 360 - 180)
