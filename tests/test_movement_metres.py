"""Pixels to metres equal to Sports2D's and Pose2Sim's own functions.

Sports2D's ``compute_floor_line``, ``get_floor_params``,
``convert_px_to_meters`` and ``CORRECTION_2D_TO_3D`` are taken unchanged
from the installed ``Sports2D/process.py`` (it cannot be imported: its
video, GUI and model stack) and run in the namespace its imports give
them (Pose2Sim's common functions, ``indices_of_first_last_non_nan_chunks``,
``marker_Z_positions``); Pose2Sim's ``compute_height`` is imported. They
get the DataFrames Sports2D builds (``trc_data``: 'time', then X, Y, Z
columns named after each point; ``score_data``) of made-up trajectories:
a person walking on a tilted floor, one standing still, one squatting, a
short clip, one whose toes are never seen... Heights must agree within
1e-6 px, floor angles within 1e-9 rad, origins within 1e-6 px, metres
within 1e-6 m.
"""
import ast
import importlib.util
import logging
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import pandas as pd
import pytest
import Pose2Sim.common as pose2sim_common
from Pose2Sim.triangulation import indices_of_first_last_non_nan_chunks

from pose_suite.movement import metres
from pose_suite.movement.metres import Floor, floor, height_px, to_metres

FPS = 30
HEIGHT_M = 1.75
IMAGE = (1920, 1080)
SCORE_THRESHOLD = 0.5  # Sports2D's average_likelihood_threshold default
NAMES = list(metres.POINTS) + ['RWrist', 'LWrist']  # more than needed


def _sports2d() -> dict:
    """Sports2D's own floor and metres code, in the namespace of its
    ``process.py``'s imports."""
    package = Path(importlib.util.find_spec('Sports2D')
                   .submodule_search_locations[0])
    namespace = {name: getattr(pose2sim_common, name)
                 for name in dir(pose2sim_common) if not name.startswith('_')}
    namespace.update(np=np, pd=pd, logging=logging,
                     indices_of_first_last_non_nan_chunks=
                     indices_of_first_last_non_nan_chunks)
    wanted = {'compute_floor_line', 'get_floor_params', 'convert_px_to_meters',
              'CORRECTION_2D_TO_3D', 'marker_Z_positions'}
    for source in (package / 'Utilities' / 'common.py',
                   package / 'process.py'):
        tree = ast.parse(source.read_text(encoding='utf-8'))
        body = [node for node in tree.body
                if isinstance(node, ast.FunctionDef) and node.name in wanted
                or isinstance(node, ast.Assign)
                and {getattr(t, 'id', None) for t in node.targets} & wanted]
        exec(compile(ast.Module(body=body, type_ignores=[]), str(source),
                     'exec'), namespace)
    missing = wanted - set(namespace)
    assert not missing, f'not found in Sports2D: {missing}'
    return namespace


SPORTS2D = _sports2d()


# ----------------------------------------------------------------- people

def _image(x, y, tilt_deg, scale, origin=(250.0, 900.0)):
    """World metres (x forwards, y up from the floor) -> pixels of a camera
    rolled so that the floor rises by tilt_deg to the image's right."""
    t = np.radians(tilt_deg)
    u = origin[0] + scale * (x * np.cos(t) - y * np.sin(t))
    v = origin[1] - scale * (x * np.sin(t) + y * np.cos(t))
    return np.stack([u, v], axis=-1)


def _leg(hip, ankle, thigh=0.43, shank=0.43):
    """Knee (T, 2) of a leg from hip to ankle, bent forwards (+x)."""
    d = ankle - hip
    reach = np.minimum(np.linalg.norm(d, axis=1), thigh + shank - 1e-9)
    along = (thigh ** 2 - shank ** 2 + reach ** 2) / (2 * reach)
    out = np.sqrt(np.maximum(thigh ** 2 - along ** 2, 0))
    unit = d / np.linalg.norm(d, axis=1, keepdims=True)
    normal = np.stack([-unit[:, 1], unit[:, 0]], axis=1)
    normal *= np.sign(normal[:, :1] + 1e-12)  # knees point forwards
    return hip + along[:, None] * unit + out[:, None] * normal


def _body(hip, ankles, lean=0.05):
    """World points of a side view from the pelvis (T, 2), the ankles
    {'R', 'L'} (T, 2) and the feet flat under them."""
    world = {}
    lean = np.broadcast_to(lean, hip[:, 0].shape)
    for side, ankle in ankles.items():
        offset = np.array([0.015 if side == 'R' else -0.015, 0.0])
        side_hip = hip + offset
        world[side + 'Hip'] = side_hip
        world[side + 'Ankle'] = ankle
        world[side + 'Knee'] = _leg(side_hip, ankle)
        world[side + 'Heel'] = ankle + [-0.05, -0.06]
        world[side + 'BigToe'] = ankle + [0.16, -0.075]
        world[side + 'Shoulder'] = side_hip + np.stack(
            [lean + offset[0], np.full_like(lean, 0.52)], axis=1)
        world[side + 'Wrist'] = side_hip + [0.05, 0.05]
    middle = (world['RShoulder'] + world['LShoulder']) / 2
    world['Nose'] = middle + [0.08, 0.2]
    return world


def walking(frames=120, tilt_deg=3.0, speed=1.0, direction=1):
    """A person walking across the image at ``speed`` m/s: each foot stays
    on the floor for 60 % of a 1 s stride, then swings forwards."""
    t = np.arange(frames) / FPS
    period, stance = 1.0, 0.6
    stride = speed * period
    hip_x = speed * t + 0.1
    ankles = {}
    for side, phase0 in (('R', 0.0), ('L', 0.5)):
        phase = (t / period + phase0) % 1
        swing = np.clip((phase - stance) / (1 - stance), 0, 1)
        smooth = swing * swing * (3 - 2 * swing)
        ahead = np.where(phase < stance, 0.3 * stride - stride * phase,
                         0.3 * stride - stride * stance * (1 - smooth))
        ankles[side] = np.stack([direction * (hip_x + ahead),
                                 0.075 + 0.08 * np.sin(np.pi * swing)], axis=1)
    hip = np.stack([direction * hip_x,
                    0.86 + 0.015 * np.cos(4 * np.pi * t / period)], axis=1)
    return _body(hip, ankles, lean=0.05 * direction), tilt_deg


def standing(frames=120, tilt_deg=-2.0):
    """A person standing still, swaying a little."""
    t = np.arange(frames) / FPS
    hip = np.stack([0.8 + 0.01 * np.sin(t), np.full(frames, 0.89)], axis=1)
    ankles = {side: np.tile([0.8 + dx, 0.075], (frames, 1))
              for side, dx in (('R', 0.06), ('L', -0.06))}
    return _body(hip, ankles), tilt_deg


def squatting(frames=120, tilt_deg=1.0):
    """A person squatting deeply most of the time: few frames upright."""
    t = np.arange(frames) / FPS
    depth = 0.5 * (1 - np.cos(2 * np.pi * t / 2.0))  # 0 up, 1 down
    depth = np.clip(1.6 * depth, 0, 1)
    hip = np.stack([np.full(frames, 1.0) - 0.25 * depth,
                    0.93 - 0.55 * depth], axis=1)
    ankles = {side: np.tile([1.05 + dx, 0.075], (frames, 1))
              for side, dx in (('R', 0.03), ('L', -0.03))}
    return _body(hip, ankles, lean=0.05 + 0.3 * depth), tilt_deg


def observed(world, tilt_deg, seed, scale=230.0, noise=1.0,
             missing: Optional[Dict[str, slice]] = None, absent=(),
             low_scores: Optional[Dict[str, slice]] = None):
    """Pixels and scores as a tracker gives them: noise, a few points
    missing (NaN, score NaN), some frames where nobody is seen, some
    scores below the threshold."""
    rng = np.random.default_rng(seed)
    points, scores = {}, {}
    for name, xy in world.items():
        px = _image(xy[:, 0], xy[:, 1], tilt_deg, scale)
        px = px + rng.normal(0, noise, px.shape)
        score = rng.uniform(0.6, 0.95, len(px))
        for gone in (missing or {}).get(name, []):
            px[gone] = np.nan
        for low in (low_scores or {}).get(name, []):
            score[low] = rng.uniform(0.2, 0.45, len(score[low]))
        for frame in absent:
            px[frame] = np.nan
        score[np.isnan(px).any(axis=1)] = np.nan
        points[name], scores[name] = px, score
    return points, scores


def sports2d_frames(points, scores):
    """Sports2D's trc_data and score_data for one person: X, Y, Z per
    point (Hip and Neck added as Sports2D adds them); Z 0, NaN where the
    point is missing (as its default fill_large_gaps_with='last_value'
    leaves it)."""
    points = dict(points)
    scores = dict(scores)
    if 'RHip' in points:
        points['Hip'] = (np.abs(points['LHip']) + np.abs(points['RHip'])) / 2
        points['Neck'] = (np.abs(points['LShoulder'])
                          + np.abs(points['RShoulder'])) / 2
        scores['Hip'] = (scores['LHip'] + scores['RHip']) / 2
        scores['Neck'] = (scores['LShoulder'] + scores['RShoulder']) / 2
    frames = len(next(iter(points.values())))
    columns = [pd.Series(np.arange(frames) / FPS, name='time')]
    for name, xy in points.items():
        z = np.where(np.isnan(xy).any(axis=1), np.nan, 0.0)
        columns += [pd.Series(xy[:, 0], name=name),
                    pd.Series(xy[:, 1], name=name), pd.Series(z, name=name)]
    trc = pd.concat(columns, axis=1)
    score_data = pd.DataFrame({name: s for name, s in scores.items()})
    return trc, score_data


def sports2d_height(trc):
    return SPORTS2D['CORRECTION_2D_TO_3D'] * pose2sim_common.compute_height(
        trc.iloc[:, 1:], large_hip_knee_angles=90, trimmed_extrema_percent=50)


def sports2d_floor(trc, score_data, height, **numeric):
    return SPORTS2D['get_floor_params'](
        floor_angle=numeric.get('floor_angle', 'auto'),
        xy_origin=numeric.get('xy_origin', ['auto']), calib_file=None,
        height_px=height, height_m=HEIGHT_M, fps=FPS, trc_data=trc,
        score_data=score_data, toe_speed_below=1,
        score_threshold=SCORE_THRESHOLD, cam_width=IMAGE[0],
        cam_height=IMAGE[1])


def sports2d_metres(trc, name, height, floor_angle, origin):
    """Sports2D's call (process_fun): the floor angle's opposite."""
    out = SPORTS2D['convert_px_to_meters'](
        trc[name], HEIGHT_M, height, 10.0, IMAGE[0], IMAGE[1], origin[0],
        origin[1], -floor_angle, visible_side='none')
    return out.iloc[:, 0].to_numpy(), out.iloc[:, 1].to_numpy()


def people():
    """name -> (points, scores) of the people compared."""
    walk, tilt = walking()
    out = {'walking': observed(
        walk, tilt, seed=1,
        missing={'LAnkle': [slice(40, 43)], 'Nose': [slice(90, 92)],
                 'RBigToe': [slice(60, 62)]},
        absent=[0, 1, 2, 70],
        low_scores={'LBigToe': [slice(20, 26)]})}
    walk, tilt = walking(direction=-1, tilt_deg=-4.0)
    out['walking left'] = observed(walk, tilt, seed=2, absent=[119])
    out['standing'] = observed(*standing(), seed=3, noise=0.7)
    out['squatting'] = observed(*squatting(), seed=4,
                                missing={'RKnee': [slice(10, 14)]})
    walk, tilt = walking(frames=45, tilt_deg=5.0)
    out['short clip'] = observed(
        walk, tilt, seed=5, missing={'LKnee': [slice(20, 24)],
                                     'RShoulder': [slice(30, 31)]},
        absent=[5, 6, 40])
    walk, tilt = walking(tilt_deg=2.0)
    out['toes never seen'] = observed(
        walk, tilt, seed=6, missing={'LBigToe': [slice(None)],
                                     'RBigToe': [slice(None)]})
    blips = [slice(start, start + 6) for start in range(0, 120, 12)]
    out['toes seen in blips'] = observed(
        walk, tilt, seed=7, missing={'LBigToe': blips})
    out['toes never still'] = observed(
        walk, tilt, seed=8, low_scores={'RBigToe': [slice(None)]})
    return out


PEOPLE = people()
FALLBACKS = ('toes never seen', 'toes seen in blips', 'toes never still',
             'no toe points')


def _case(name):
    if name == 'no toe points':
        points, scores = PEOPLE['walking']
        drop = ('LBigToe', 'RBigToe')
        return ({k: v for k, v in points.items() if k not in drop},
                {k: v for k, v in scores.items() if k not in drop})
    return PEOPLE[name]


CASES = list(PEOPLE) + ['no toe points']


# ------------------------------------------------------------------ tests

def test_the_people_are_what_they_claim():
    """The made-up people do what the tests need: the walking person's
    toes stand still at times, the squatting person is upright in fewer
    than 50 frames, the short clip has fewer than 50."""
    points, _ = PEOPLE['walking']
    speed = np.linalg.norm(np.diff(points['LBigToe'], axis=0), axis=1)
    assert 20 < np.sum(speed < 230 / FPS) < 100
    trc, _ = sports2d_frames(*PEOPLE['squatting'])
    angles = pose2sim_common.mean_angles(trc.iloc[:, 1:])
    assert 10 < np.sum(angles < 90) < 50
    assert len(PEOPLE['short clip'][0]['Nose']) < 50


@pytest.mark.parametrize('name', CASES)
def test_height_is_sports2d_s(name):
    points, scores = _case(name)
    trc, _ = sports2d_frames(points, scores)
    expected = sports2d_height(trc)
    assert abs(height_px(points) - expected) < 1e-6
    assert 300 < expected < 500  # 1.75 m at 230 px/m, give or take


def test_height_takes_hip_and_neck_when_given():
    """Sports2D tracks Hip and Neck as points; given, they are used."""
    points, scores = PEOPLE['squatting']
    trc, _ = sports2d_frames(points, scores)
    points = dict(points, Hip=trc['Hip'].iloc[:, :2].to_numpy() + 3,
                  Neck=trc['Neck'].iloc[:, :2].to_numpy())
    trc['Hip'] = trc['Hip'] + [3, 3, 0]
    assert abs(height_px(points) - sports2d_height(trc)) < 1e-6


def test_height_of_a_person_whose_nose_is_never_seen_is_an_error():
    """Sports2D carries on with an infinite height; we stop."""
    points, scores = PEOPLE['walking']
    points = dict(points, Nose=np.full_like(points['Nose'], np.nan))
    trc, _ = sports2d_frames(points, scores)
    assert not np.isfinite(sports2d_height(trc))
    with pytest.raises(ValueError, match='never seen'):
        height_px(points)
    with pytest.raises(ValueError, match='needs the points'):
        height_px({k: v for k, v in points.items() if k != 'LHeel'})


@pytest.mark.parametrize('name', CASES)
def test_floor_is_sports2d_s(name):
    points, scores = _case(name)
    trc, score_data = sports2d_frames(points, scores)
    height = sports2d_height(trc)
    angle, origin, direction = sports2d_floor(trc, score_data, height)
    ours = floor(points, scores, FPS, height_px(points), HEIGHT_M,
                 SCORE_THRESHOLD, IMAGE)
    assert isinstance(ours, Floor)
    assert abs(ours.angle_rad - angle) < 1e-9
    assert np.allclose(ours.origin, origin, rtol=0, atol=1e-6)
    assert abs(ours.gait_direction - direction) < 1e-9
    if name in FALLBACKS:
        assert ours.fallback and '\n' not in ours.fallback
        assert (ours.angle_rad, ours.origin, ours.gait_direction) == (
            0.0, (IMAGE[0] / 2, IMAGE[1] / 2), 1.0)
    else:
        assert ours.fallback is None
        tilt = {'walking': 3, 'walking left': -4, 'standing': -2,
                'squatting': 1, 'short clip': 5}[name]
        assert abs(np.degrees(angle) - tilt) < 1.5


def test_gait_direction_says_which_way_the_person_walks():
    for name, sign in (('walking', 1), ('walking left', -1)):
        points, scores = PEOPLE[name]
        found = floor(points, scores, FPS, height_px(points), HEIGHT_M,
                      SCORE_THRESHOLD, IMAGE)
        assert found.gait_direction * sign > 0.3


@pytest.mark.parametrize('name', ['walking', 'toes never seen'])
@pytest.mark.parametrize('angle_deg, origin', [
    (2.5, None), (None, (100.0, 905.5)), (-1.25, (0, 880))])
def test_given_floor_angle_and_origin_are_sports2d_s(name, angle_deg, origin):
    points, scores = PEOPLE[name]
    trc, score_data = sports2d_frames(points, scores)
    height = sports2d_height(trc)
    numeric = {}
    if angle_deg is not None:
        numeric['floor_angle'] = angle_deg
    if origin is not None:
        numeric['xy_origin'] = list(origin)
    angle, xy, direction = sports2d_floor(trc, score_data, height, **numeric)
    ours = floor(points, scores, FPS, height, HEIGHT_M, SCORE_THRESHOLD,
                 IMAGE, floor_angle_deg=angle_deg, origin_px=origin)
    assert abs(ours.angle_rad - angle) < 1e-9
    assert np.allclose(ours.origin, xy, rtol=0, atol=1e-6)
    assert abs(ours.gait_direction - direction) < 1e-9


@pytest.mark.parametrize('name', CASES)
def test_metres_are_sports2d_s(name):
    """The whole chain, ours against Sports2D's: height, floor, metres of
    every point (Z 0: visible_side='none')."""
    points, scores = _case(name)
    trc, score_data = sports2d_frames(points, scores)
    height = sports2d_height(trc)
    angle, origin, _ = sports2d_floor(trc, score_data, height)
    our_height = height_px(points)
    ours = floor(points, scores, FPS, our_height, HEIGHT_M, SCORE_THRESHOLD,
                 IMAGE)
    for point, xy in points.items():
        x, y = to_metres(xy[:, 0], xy[:, 1], HEIGHT_M, our_height,
                         ours.origin, ours.angle_rad)
        ex, ey = sports2d_metres(trc, point, height, angle, origin)
        np.testing.assert_allclose(x, ex, rtol=0, atol=1e-6, err_msg=point)
        np.testing.assert_allclose(y, ey, rtol=0, atol=1e-6, err_msg=point)
    if name not in FALLBACKS:
        # The floor is at Y = 0 under the toes, the nose ~1.6 m above it.
        toes = to_metres(*points['RBigToe'].T, HEIGHT_M, our_height,
                         ours.origin, ours.angle_rad)[1]
        assert abs(np.nanmedian(toes)) < 0.05
        nose = to_metres(*points['Nose'].T, HEIGHT_M, our_height,
                         ours.origin, ours.angle_rad)[1]
        assert 1.3 < np.nanpercentile(nose, 95) < 1.9


def test_metres_turn_by_the_floor_angle_s_opposite():
    """A point on a floor line rising 10 degrees to the right lands on
    Y = 0, at its distance along that line from the origin."""
    angle = np.radians(10)
    u = np.array([100.0, 300.0])
    v = 800 - np.tan(angle) * u
    x, y = to_metres(u, v, 1.7, 170.0, (0.0, 800.0), angle)
    np.testing.assert_allclose(y, 0, atol=1e-12)
    np.testing.assert_allclose(x, u / np.cos(angle) / 100, atol=1e-12)
    with pytest.raises(ValueError):
        to_metres(u, v, 1.7, np.nan, (0.0, 800.0), angle)


@pytest.mark.parametrize('axis', [0, 1])
def test_a_toe_still_at_pixel_0_is_a_fallback(axis):
    """Sports2D reads a 0 pixel as missing (NaN): its fit then fails (x)
    or gives a NaN floor (y); we fall back in both cases."""
    points, scores = PEOPLE['standing']
    points = dict(points, LBigToe=points['LBigToe'].copy())
    points['LBigToe'][30:40, axis] = 0.0
    trc, score_data = sports2d_frames(points, scores)
    height = sports2d_height(trc)
    angle, origin, _ = sports2d_floor(trc, score_data, height)
    ours = floor(points, scores, FPS, height_px(points), HEIGHT_M,
                 SCORE_THRESHOLD, IMAGE)
    assert 'pixel 0' in ours.fallback
    assert (ours.angle_rad, ours.origin) == (0.0, (960.0, 540.0))
    if axis == 0:
        assert (angle, tuple(origin)) == (0, (960.0, 540.0))
    else:
        assert np.isnan(angle) and np.isnan(origin[1])
