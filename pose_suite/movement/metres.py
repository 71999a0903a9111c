"""One person's pixel trajectories in metres, as Sports2D 0.8.34 does it.

A single camera measures one plane: the one through the person, parallel to
the image. The person's height (given in metres, measured in pixels) sets
the one scale, and the big toes at rest set the floor (horizontal, Y = 0).
Perspective scales points off that plane wrongly (the far leg looks smaller,
a step towards the camera bigger) and motion along the camera's axis is not
seen. Sports2D adds a normative depth per marker for the side it sees and
corrects perspective with it; we do not (its visible_side='none'): Z is 0.
"""
from typing import Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from pose_suite.outputs.angles import POINTS as ANGLE_POINTS

#: Sports2D's factor from the height measured in the image to the height:
#: segments seldom lie in the image plane, so they look shorter.
CORRECTION_2D_TO_3D = 1.063
#: Pose2Sim: mid-shoulders -> top of the head is 1.5 mid-shoulders -> nose.
NOSE_TO_HEAD = 1.5
#: Pose2Sim measures on at least this many frames (the least flexed ones)
#: when fewer are upright enough.
FEWEST_FRAMES = 50
#: Pose2Sim's shortest run of scored frames (``min_chunk_size``) that counts
#: when the big toes' scored span is found.
SHORTEST_RUN = 10
#: Sports2D: a big toe slower than this (m/s) stands on the floor.
TOE_SPEED_BELOW = 1.0

#: The points :func:`height_px` needs.
HEIGHT_POINTS = ('RAnkle', 'RKnee', 'RHip', 'RShoulder', 'LAnkle', 'LKnee',
                 'LHip', 'LShoulder', 'RHeel', 'LHeel', 'Nose')
#: Sports2D's names of the points used here -> COCO-WholeBody's (mmpose):
#: the angles' map (:data:`pose_suite.outputs.angles.POINTS`) and the nose.
POINTS = {name: ANGLE_POINTS.get(name, 'nose')
          for name in HEIGHT_POINTS + ('RBigToe', 'LBigToe')}


def _xy(points: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    xy = np.asarray(points[name], dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f'{name}: expected (T, 2) pixels, got {xy.shape}')
    return xy


def _unsigned_angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Degrees in [0, 180] between the (T, 2) vectors u and v, as Pose2Sim's
    ``points_to_angles`` gives it for points with a third coordinate (0)."""
    cross = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    dot = u[:, 0] * v[:, 0] + u[:, 1] * v[:, 1]
    return np.degrees(np.arctan2(np.abs(cross), dot))


def _flexion(angle: np.ndarray, offset: float, scale: float) -> np.ndarray:
    """Pose2Sim's ``fixed_angles`` (offset, scale, wrap to [-180, 180)) and
    the absolute value ``mean_angles`` takes."""
    with np.errstate(invalid='ignore'):
        fixed = (angle + offset) * scale
        return np.abs((fixed + 180) % 360 - 180)


def _hip_knee_flexion(xy: Mapping[str, np.ndarray], hip: np.ndarray,
                      neck: np.ndarray) -> np.ndarray:
    """(T,) mean of both knees' and both hips' flexions in degrees (Pose2Sim
    ``mean_angles``); NaN where a point is missing."""
    flexions = []
    for side in 'RL':
        ankle, knee = xy[side + 'Ankle'], xy[side + 'Knee']
        flexions.append(_flexion(
            _unsigned_angle(ankle - knee, xy[side + 'Hip'] - knee), -180, 1))
    for side in 'RL':
        flexions.append(_flexion(
            _unsigned_angle(xy[side + 'Hip'] - xy[side + 'Knee'], neck - hip),
            0, -1))
    return np.mean(flexions, axis=0)


def _length(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T,) pixel distances between two (T, 2) trajectories (NaN missing)."""
    d = b - a
    return np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2)


def _trimmed_mean(values: np.ndarray, trimmed_extrema_percent: float) -> float:
    """Pose2Sim's ``trimmed_mean``: NaN sort last and count in the length;
    the mean of the middle ``100 - trimmed_extrema_percent`` %."""
    ordered = np.sort(values)
    half = trimmed_extrema_percent / 100 / 2
    middle = ordered[int(len(ordered) * half):int(len(ordered) * (1 - half))]
    if len(middle) == 0:
        middle = values
    if np.isnan(middle).all():
        return np.nan
    return float(np.nanmean(middle))


def height_px(points: Mapping[str, np.ndarray],
              large_hip_knee_angles: float = 90,
              trimmed_extrema_percent: float = 50) -> float:
    """The person's height in pixels, as Sports2D computes it:
    ``CORRECTION_2D_TO_3D * Pose2Sim.common.compute_height(...)``.

    Args:
        points: Sports2D point name (:data:`POINTS`) -> (T, 2) pixels, NaN
            where missing; needs :data:`HEIGHT_POINTS`. Other points may be
            given: like Pose2Sim, which drops the frames where every
            coordinate of every point is NaN, a frame counts when any given
            point is there. ``Hip`` and ``Neck`` are taken if given (Sports2D
            tracks them), else the middles of the hips and of the shoulders.
        large_hip_knee_angles: degrees; frames whose mean knee and hip
            flexion is below it are measured. When fewer than 50 frames are,
            the 50 least flexed frames are, filled up with frames where a
            flexion is NaN (they count as NaN heights, as in Pose2Sim).
        trimmed_extrema_percent: the percentage of the frame heights left
            out of their mean, half of it the lowest, half the highest; NaN
            heights sort last and count in the length.

    Each frame's height: mean heel -> ankle + mean ankle -> knee + mean
    knee -> hip + mean hip -> shoulder + 1.5 mid-shoulders -> nose
    (COCO-WholeBody has no top of the head: Pose2Sim's nose branch).

    Raises:
        ValueError: a needed point is missing, no frame shows the person,
            or the height is not finite (a segment never seen in the frames
            measured; Sports2D would carry on with inf or NaN).
    """
    missing = [name for name in HEIGHT_POINTS if name not in points]
    if missing:
        raise ValueError(f'height_px needs the points {missing}')
    xy = {name: _xy(points, name) for name in points}
    if len({len(a) for a in xy.values()}) != 1:
        raise ValueError('the points have different numbers of frames')
    hip = xy['Hip'] if 'Hip' in xy else (xy['LHip'] + xy['RHip']) / 2
    neck = (xy['Neck'] if 'Neck' in xy
            else (xy['LShoulder'] + xy['RShoulder']) / 2)

    seen = ~np.all([np.isnan(a).all(axis=1) for a in xy.values()], axis=0)
    frames = np.flatnonzero(seen)
    flexion = _hip_knee_flexion(xy, hip, neck)[frames]
    with np.errstate(invalid='ignore'):
        measured = frames[flexion < large_hip_knee_angles]
    if len(measured) < FEWEST_FRAMES:
        # Pose2Sim's nsmallest: the least flexed first (ties in time order),
        # then the NaN ones in time order.
        measured = frames[np.argsort(flexion, kind='stable')[:FEWEST_FRAMES]]
    if len(measured) == 0:
        raise ValueError('no frame shows the person')

    p = {name: a[measured] for name, a in xy.items()}
    mid_shoulder = (p['RShoulder'] + p['LShoulder']) / 2

    def both(distal: str, proximal: str) -> np.ndarray:
        return (_length(p['R' + distal], p['R' + proximal])
                + _length(p['L' + distal], p['L' + proximal])) / 2

    heights = (both('Heel', 'Ankle') + both('Ankle', 'Knee')
               + both('Knee', 'Hip') + both('Hip', 'Shoulder')
               + NOSE_TO_HEAD * _length(mid_shoulder, p['Nose']))
    height = CORRECTION_2D_TO_3D * _trimmed_mean(heights,
                                                 trimmed_extrema_percent)
    if not np.isfinite(height) or height <= 0:
        raise ValueError(f'no height: a segment is never seen in the '
                         f'{len(measured)} frames measured')
    return height


class Floor(NamedTuple):
    """The floor line and the walking direction (:func:`floor`)."""
    #: Radians, the floor line's angle in the image as Sports2D estimates
    #: it (``-arctan(slope)`` with y down: positive when the floor rises to
    #: the right). :func:`to_metres` takes it as is.
    angle_rad: float
    #: (cx, cy) pixels: the origin of the metres, on the floor line.
    origin: Tuple[float, float]
    #: Sports2D's gait direction, about [-1, 1]: right when > 0.3, left
    #: when < -0.3, else front (NaN when a toe was still in one frame only).
    gait_direction: float
    #: None when the toes gave the floor, else why not, in one line: then
    #: the fallback (angle 0, origin the image centre, gait direction 1)
    #: holds for what was not given.
    fallback: Optional[str]


def _scored_span(scores: np.ndarray) -> Tuple[int, int]:
    """Pose2Sim's ``indices_of_first_last_non_nan_chunks`` (10 frames,
    'all'): from the first run of at least 10 non-NaN scores to the end of
    the last one, (0, 0) when there is none."""
    scored = np.concatenate(([0], ~np.isnan(scores), [0])).astype(np.int8)
    edges = np.diff(scored)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long = ends - starts >= SHORTEST_RUN
    if not long.any():
        return 0, 0
    return int(starts[long][0]), int(ends[long][-1])


class _NoFloor(Exception):
    pass


def _floor_from_toes(points: Mapping[str, np.ndarray],
                     scores: Mapping[str, np.ndarray], speed_below: float,
                     score_threshold: float
                     ) -> Tuple[float, Tuple[float, float], float]:
    """Sports2D's ``compute_floor_line`` on the big toes; raises _NoFloor
    where Sports2D's fails or would give NaN."""
    still_x, still_y, directions = [], [], []
    for name in ('LBigToe', 'RBigToe'):
        if name not in points or name not in scores:
            # Sports2D then tries the ankles, whose branch fails (a
            # NameError in 0.8.34) into the same fallback.
            raise _NoFloor('no big toes')
        xy = _xy(points, name)
        score = np.asarray(scores[name], dtype=np.float64)
        start, end = _scored_span(score)
        if start == end:
            raise _NoFloor(f'{name} never scored in {SHORTEST_RUN} frames '
                           'in a row')
        xy, score = xy[start:end], score[start:end]
        speed = np.full(len(xy), np.nan)
        speed[1:] = np.linalg.norm(np.diff(xy, axis=0), axis=1)
        with np.errstate(invalid='ignore'):
            still = xy[(score > score_threshold) & (speed < speed_below)]
        if len(still) == 0:
            raise _NoFloor(f'{name} is never still with a score above '
                           f'{score_threshold}')
        if (still == 0).any():
            # Sports2D makes a 0 pixel NaN, and its line fit fails or is NaN.
            raise _NoFloor(f'{name} still at pixel 0')
        x = still[:, 0]
        trend = np.polyfit(np.arange(len(x)), x, 1)[0]
        with np.errstate(divide='ignore', invalid='ignore'):
            directions.append(trend * len(x) / (np.max(x) - np.min(x)))
        still_x.extend(x)
        still_y.extend(still[:, 1])
    slope, intercept = np.polyfit(still_x, still_y, 1)
    return (float(-np.arctan(slope)), (0.0, float(intercept)),
            float(np.mean(directions)))


def floor(points: Mapping[str, np.ndarray], scores: Mapping[str, np.ndarray],
          fps: float, height_px: float, height_m: float,
          score_threshold: float, image_size: Tuple[int, int],
          floor_angle_deg: Optional[float] = None,
          origin_px: Optional[Sequence[float]] = None,
          toe_speed_below: float = TOE_SPEED_BELOW) -> Floor:
    """The floor line from the big toes when they stand still, as Sports2D's
    ``get_floor_params(floor_angle='auto', xy_origin=['auto'])``.

    A toe is still in a frame when it moved less than ``toe_speed_below``
    m/s since the last one (``toe_speed_below * height_px / height_m / fps``
    px/frame) and its score is above ``score_threshold``, within its scored
    span (from the first to the last run of 10 frames with scores). A line
    is fitted to both toes' still positions: ``angle_rad = -arctan(slope)``,
    origin ``(0, intercept)``, where the line meets the image's left edge.

    Fallback, as Sports2D's: when the big toes are absent, one of them is
    never still with a good score (e.g. never visible), or still at pixel 0
    (Sports2D's fit fails or gives NaN then), the angle is 0, the origin
    the image centre and the gait direction 1, and ``fallback`` says why:
    the caller warns once. Sports2D only logs it.

    Args:
        points: Sports2D name -> (T, 2) pixels (``LBigToe``, ``RBigToe``).
        scores: name -> (T,) scores, NaN where the point was not kept (as
            Sports2D's, which are NaN below its keypoint threshold).
        fps: frames per second; height_px: :func:`height_px`; height_m: the
            person's height in metres.
        score_threshold: Sports2D passes its ``average_likelihood_threshold``.
        image_size: (width, height) pixels, for the fallback's origin.
        floor_angle_deg, origin_px: given instead of estimated (Sports2D's
            numeric ``floor_angle`` and ``xy_origin``); the toes still give
            the gait direction.
    """
    speed_below = toe_speed_below * (height_px / height_m) / fps
    try:
        angle, origin, direction = _floor_from_toes(
            points, scores, speed_below, score_threshold)
        fallback = None
    except _NoFloor as error:
        width, height = image_size
        angle, origin, direction = 0.0, (width / 2, height / 2), 1.0
        fallback = f'floor not found from the big toes ({error})'
    if floor_angle_deg is not None:
        angle = float(np.radians(float(floor_angle_deg)))
    if origin_px is not None:
        cx, cy = origin_px
        origin = (float(cx), float(cy))
    return Floor(angle, origin, direction, fallback)


def to_metres(u: np.ndarray, v: np.ndarray, height_m: float,
              height_px: float, origin: Tuple[float, float],
              floor_angle_rad: float) -> Tuple[np.ndarray, np.ndarray]:
    """Pixels -> metres in the person's plane, as Sports2D's
    ``convert_px_to_meters`` with ``visible_side='none'`` (Z = 0).

    Args:
        u, v: pixels (x right, y down), any equal shapes, NaN kept.
        height_m, height_px: the person's height in metres and in pixels
            (:func:`height_px`): metres per pixel ``height_m / height_px``.
        origin: (cx, cy) pixels that become (0, 0) m (:attr:`Floor.origin`).
        floor_angle_rad: the floor's angle as estimated
            (:attr:`Floor.angle_rad`). Sports2D's call passes its opposite
            to ``convert_px_to_meters``; so do we: the points turn by
            ``-floor_angle_rad``, which lays the floor line on ``Y = 0``.

    Returns:
        (X, Y) metres, u's shape: X forwards along the floor (to the
        image's right), Y up from it.
    """
    if not np.isfinite(height_px) or height_px <= 0:
        raise ValueError(f'height_px must be positive, got {height_px}')
    scale = height_m / height_px
    cx, cy = origin
    across = scale * (np.asarray(u, dtype=np.float64) - cx)
    up = -scale * (np.asarray(v, dtype=np.float64) - cy)
    turn = -floor_angle_rad
    return (across * np.cos(turn) - up * np.sin(turn),
            across * np.sin(turn) + up * np.cos(turn))
