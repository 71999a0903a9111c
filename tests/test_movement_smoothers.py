"""pose_suite.movement.smoothers against Pose2Sim 0.10.49's own filters.

Pose2Sim's ``loess_filter_1d`` and ``kalman_filter_1d`` run unchanged (with
the statsmodels and filterpy that ``tests/requirements.txt`` pins) on the
same series as ours: keypoint-like trajectories in pixels (a smooth motion
plus seeded noise, one with a jump and an outlier), from the shortest
length each filter changes to 301 frames. Ours must agree within 1e-6 px.
"""
import logging

import numpy as np
import pandas as pd
import pytest

from pose_suite.movement.smoothers import kalman, loess

# Pose2Sim.filtering warns "GUI not available" on the root logger as it is
# imported: quiet it for the import only (other tests read the root logger).
_level = logging.getLogger().level
logging.getLogger().setLevel(logging.ERROR)
try:
    from Pose2Sim.filtering import kalman_filter_1d, loess_filter_1d
finally:
    logging.getLogger().setLevel(_level)

TOLERANCE_PX = 1e-6


def walk(length, frame_rate=30.0, seed=0):
    """(length,) x of a keypoint in px: a 0.7 Hz swing on a slow drift,
    plus 3 px of seeded noise; never 0 (Pose2Sim's missing value)."""
    t = np.arange(length) / frame_rate
    noise = np.random.default_rng(seed).normal(0.0, 3.0, length)
    return 320.0 + 80.0 * np.sin(2 * np.pi * 0.7 * t) + 40.0 * t + noise


def jump(length=60):
    """(length,) px: a walk that jumps 60 px halfway (a swapped person) and
    has one 150 px outlier (a misdetection) a quarter in."""
    values = walk(length, seed=1)
    values[length // 2:] += 60.0
    values[length // 4] += 150.0
    return values


SERIES = {
    'walk7': walk(7, seed=2),
    'walk30': walk(30, seed=3),
    'walk301': walk(301, seed=4),
    'jump60': jump(),
    'short3': walk(3, seed=5),
    'short6': walk(6, seed=6),
}


def pose2sim_loess(values, nb_values):
    config = {'filtering': {'loess': {'nb_values_used': nb_values}}}
    return loess_filter_1d(config, 30, pd.Series(values)).to_numpy()


def pose2sim_kalman(values, frame_rate, trust_ratio, smooth):
    config = {'filtering': {'kalman': {'trust_ratio': trust_ratio,
                                       'smooth': smooth}}}
    return kalman_filter_1d(config, frame_rate, pd.Series(values)).to_numpy()


@pytest.mark.parametrize('name', SERIES)
@pytest.mark.parametrize('nb_values', [1, 2, 3, 4, 5, 8, 15])
def test_loess_equals_pose2sim(name, nb_values):
    """Every window size, odd or even, down to statsmodels' floor of 2
    frames; a series no longer than the window is left unchanged by both."""
    values = SERIES[name]
    np.testing.assert_allclose(loess(values, nb_values),
                               pose2sim_loess(values, nb_values),
                               atol=TOLERANCE_PX, rtol=0)


def test_loess_smooths_the_noise():
    """Not the identity: on the 301-frame walk, a 9-frame LOESS moves the
    values (so the comparison above compares a filter)."""
    values = SERIES['walk301']
    assert np.abs(loess(values, 9) - values).mean() > 1.0


@pytest.mark.parametrize('name', SERIES)
@pytest.mark.parametrize('frame_rate', [30, 25, 59.94])
@pytest.mark.parametrize('trust_ratio', [1, 10.7, 500, 5000])
@pytest.mark.parametrize('smooth', [True, False])
def test_kalman_equals_pose2sim(name, frame_rate, trust_ratio, smooth):
    """Filter and smoother, at three frame rates, from trusting the model
    (1) to trusting the measures (5000); 10.7 is cut to 10 by both."""
    values = SERIES[name]
    np.testing.assert_allclose(
        kalman(values, frame_rate, trust_ratio, smooth),
        pose2sim_kalman(values, frame_rate, trust_ratio, smooth),
        atol=TOLERANCE_PX, rtol=0)


def test_kalman_leaves_too_short_series():
    """One frame: unchanged, as Pose2Sim leaves it. Two frames: unchanged
    too (Pose2Sim 0.10.49 raises IndexError there: its initial acceleration
    is a second difference)."""
    one = np.array([312.5])
    np.testing.assert_array_equal(kalman(one, 30), pose2sim_kalman(one, 30, 500, True))
    two = np.array([312.5, 318.0])
    np.testing.assert_array_equal(kalman(two, 30), two)
    with pytest.raises(IndexError):
        pose2sim_kalman(two, 30, 500, True)
