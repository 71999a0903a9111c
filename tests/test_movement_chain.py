"""Each step of the movement chain against Pose2Sim 0.10.49's own function
(run unchanged) on the same trajectories: gap filling
(``interpolate_zeros_nans``), Hampel (``hampel_filter``) and every filter
(``filter1d``: Butterworth, Gaussian, LOESS, median, Kalman, One-Euro),
within 1e-6 px; and the resampling of a variable frame rate, against
Pose2Sim's Butterworth run on the grid that numpy's ``interp`` gives.

Trajectories: keypoint-like x in pixels (a 0.7 Hz swing on a drift, seeded
3 px noise, a 150 px outlier), with gaps; never 0, which Pose2Sim takes
for a missing value.
"""
import logging

import numpy as np
import pandas as pd
import pytest

from pose_suite.movement import filters, grid, steps
from pose_suite.movement.chain import MovementSettings, clean_track
from pose_suite.movement.series import Track

_level = logging.getLogger().level
logging.getLogger().setLevel(logging.ERROR)  # Pose2Sim's "GUI" warning
try:
    from Pose2Sim.common import interpolate_zeros_nans
    from Pose2Sim.filtering import filter1d, hampel_filter
finally:
    logging.getLogger().setLevel(_level)

TOLERANCE_PX = 1e-6
RATE = 30.0


def walk(length, seed=0, rate=RATE):
    t = np.arange(length) / rate
    noise = np.random.default_rng(seed).normal(0.0, 3.0, length)
    values = 320.0 + 80.0 * np.sin(2 * np.pi * 0.7 * t) + 40.0 * t + noise
    values[length // 3] += 150.0
    return values


def with_gaps(values, gaps):
    values = values.copy()
    for start, length in gaps:
        values[start:start + length] = np.nan
    return values


#: Gaps of 1, 3, 5 and 12 frames, and missing first and last frames.
GAPPY = with_gaps(walk(200, seed=1), [(0, 2), (20, 1), (50, 3), (90, 5),
                                      (130, 12), (197, 3)])


@pytest.mark.parametrize('kind', ['linear', 'slinear', 'quadratic', 'cubic'])
@pytest.mark.parametrize('max_gap', [0, 1, 3, 5, 12, 50])
def test_gaps_as_pose2sim(kind, max_gap):
    times = np.arange(len(GAPPY)) / RATE
    ours = steps.fill_gaps(GAPPY[:, None], times, max_gap, kind)[:, 0]
    theirs = interpolate_zeros_nans(pd.Series(GAPPY), max_gap, kind)
    np.testing.assert_allclose(ours, theirs.to_numpy(), atol=TOLERANCE_PX,
                               rtol=0)
    assert np.isnan(ours[:2]).all()  # nothing before the first point


def test_gaps_on_true_timestamps():
    """At a variable frame rate the gap is filled on the frames' times:
    Pose2Sim's own function with the times as the series' index."""
    times = np.cumsum(np.r_[0, np.where(np.arange(199) < 100, 1 / 30, 1 / 5)])
    values = with_gaps(walk(200, seed=2), [(98, 4), (150, 2)])
    ours = steps.fill_gaps(values[:, None], times, 10, 'cubic')[:, 0]
    theirs = interpolate_zeros_nans(pd.Series(values, index=times), 'cubic')
    np.testing.assert_allclose(ours, theirs.to_numpy(), atol=TOLERANCE_PX,
                               rtol=0)
    index_based = interpolate_zeros_nans(pd.Series(values), 'cubic')
    assert np.nanmax(np.abs(ours - index_based.to_numpy())) > 1.0


def test_too_few_points_are_left_as_pose2sim_leaves_them():
    values = with_gaps(walk(30), [(0, 12), (14, 14)])  # 4 points left
    ours = steps.fill_gaps(values[:, None], np.arange(30) / RATE, 50)[:, 0]
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(values))


def test_large_gaps_take_the_last_value():
    values = with_gaps(walk(40), [(0, 3), (10, 6), (37, 3)])
    ours = steps.fill_large_gaps(values[:, None])[:, 0]
    theirs = pd.Series(values).ffill().bfill().to_numpy()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize('window,n_sigma', [(7, 2), (5, 3), (8, 1), (15, 2)])
@pytest.mark.parametrize('gappy', [False, True])
def test_hampel_as_pose2sim(window, n_sigma, gappy):
    values = GAPPY if gappy else walk(200, seed=3)
    ours = steps.hampel(values[:, None], window, n_sigma)[:, 0]
    theirs = hampel_filter(values.copy(), window, n_sigma)
    np.testing.assert_array_equal(ours, theirs)
    assert (ours != values).sum() >= 1  # the outlier at least


#: Our filter key -> Pose2Sim's config of the same filter. Pose2Sim reads
#: its cut-off, order and sigma as whole numbers.
FILTERS = [
    ({'type': 'butterworth', 'cutoff_hz': 6, 'order': 4},
     {'butterworth': {'cut_off_frequency': 6, 'order': 4}}),
    ({'type': 'butterworth', 'cutoff_hz': 3, 'order': 2},
     {'butterworth': {'cut_off_frequency': 3, 'order': 2}}),
    ({'type': 'gaussian', 'sigma_frames': 2},
     {'gaussian': {'sigma_kernel': 2}}),
    ({'type': 'loess', 'nb_values': 9}, {'loess': {'nb_values_used': 9}}),
    ({'type': 'median', 'kernel_frames': 5}, {'median': {'kernel_size': 5}}),
    ({'type': 'kalman', 'trust_ratio': 100, 'smooth': True},
     {'kalman': {'trust_ratio': 100, 'smooth': True}}),
    ({'type': 'one_euro', 'cutoff_hz': 2.5, 'beta': 0.9, 'd_cutoff_hz': 1.0},
     {'one_euro': {'cut_off_frequency': 2.5, 'beta': 0.9,
                   'd_cut_off_frequency': 1.0}}),
]


def pose2sim(values, config, kind, rate=RATE):
    out = filter1d(pd.Series(values.copy()), {'filtering': config}, kind,
                   rate)
    return np.asarray(out, np.float64)


@pytest.mark.parametrize('ours,theirs', FILTERS,
                         ids=[f[0]['type'] + str(i)
                              for i, f in enumerate(FILTERS)])
def test_filter_as_pose2sim(ours, theirs):
    values = walk(200, seed=4)
    done = filters.zero_phase(values[:, None], RATE, ours)
    np.testing.assert_allclose(done.values[:, 0],
                               pose2sim(values, theirs, ours['type']),
                               atol=TOLERANCE_PX, rtol=0)
    assert np.abs(done.values[:, 0] - values).max() > 1.0
    assert done.short == 0


@pytest.mark.parametrize('ours,theirs', FILTERS,
                         ids=[f[0]['type'] + str(i)
                              for i, f in enumerate(FILTERS)])
def test_filter_with_gaps_runs_on_each_stretch(ours, theirs):
    """Pose2Sim's Butterworth, LOESS, Kalman and One-Euro filter each
    stretch between gaps, and leave those too short as they are; its
    Gaussian and median run over the NaN (which spreads): ours run on each
    stretch, which is Pose2Sim's function on each stretch alone."""
    done = filters.zero_phase(GAPPY[:, None], RATE, ours)
    if ours['type'] in ('gaussian', 'median'):
        expected = np.full_like(GAPPY, np.nan)
        for start, stop in steps.runs(np.isfinite(GAPPY)):
            expected[start:stop] = pose2sim(GAPPY[start:stop], theirs,
                                            ours['type'])
            if ours['type'] == 'median':  # Pose2Sim's zero-padded ends
                edge = ours['kernel_frames'] // 2
                expected[start:start + edge] = done.values[start:start +
                                                           edge, 0]
                expected[stop - edge:stop] = done.values[stop - edge:stop, 0]
    else:
        expected = pose2sim(GAPPY, theirs, ours['type'])
    np.testing.assert_allclose(done.values[:, 0], expected,
                               atol=TOLERANCE_PX, rtol=0)
    lengths = np.diff(steps.runs(np.isfinite(GAPPY)), axis=1)[:, 0]
    assert done.short == int((lengths < filters.min_length(ours)).sum())


def test_median_repeats_the_ends_where_pose2sim_pads_zeros():
    """scipy's medfilt (Pose2Sim's median) pads with zeros: a point alone
    between gaps becomes 0 px, and the ends lean towards 0. Ours repeats
    the end values: the lone point stays, the ends stay near the data."""
    values = with_gaps(walk(40, seed=9), [(10, 3), (14, 5)])  # 13 alone
    spec = {'type': 'median', 'kernel_frames': 5}
    ours = filters.zero_phase(values[:, None], RATE, spec).values[:, 0]
    assert ours[13] == values[13]
    assert pose2sim(values[13:14], {'median': {'kernel_size': 5}},
                    'median')[0] == 0.0
    assert np.nanmin(ours) > 200


def test_a_variable_frame_rate_is_filtered_on_an_even_grid():
    """30 fps then 5 fps: resampled at the median interval with numpy's
    linear interp, Pose2Sim's Butterworth there, read back at the frames'
    times."""
    steps_s = np.where(np.arange(149) < 100, 1 / 30, 1 / 5)
    times = np.r_[0, np.cumsum(steps_s)]
    values = walk(150, seed=5)
    assert not grid.is_even(times)
    spec = {'type': 'butterworth', 'cutoff_hz': 4, 'order': 4}
    ours = grid.on_even_grid(values[:, None], times, lambda v: filters.
                             zero_phase(v, 30.0, spec).values)[:, 0]
    even = grid.even_grid(times)
    assert abs(1 / (even[1] - even[0]) - 30.0) < 0.05
    on_grid = np.interp(even, times, values)
    done = pose2sim(on_grid, {'butterworth': {'cut_off_frequency': 4,
                                              'order': 4}}, 'butterworth',
                    1 / (even[1] - even[0]))
    np.testing.assert_allclose(ours, np.interp(times, even, done),
                               atol=TOLERANCE_PX, rtol=0)


def test_a_gap_stays_a_gap_on_the_grid():
    times = np.r_[0, np.cumsum(np.where(np.arange(59) < 30, 1 / 30, 1 / 10))]
    values = with_gaps(walk(60, seed=6), [(40, 3)])
    done = grid.on_even_grid(values[:, None], times, lambda v: v)[:, 0]
    np.testing.assert_array_equal(np.isnan(done), np.isnan(values))
    np.testing.assert_allclose(done, values, atol=1e-9, equal_nan=True)


def test_chain_order_and_threshold_as_sports2d():
    """One track through the whole chain: points below kpt_thr dropped,
    gaps filled, Hampel (Sports2D's window: round(7 × rate / 30)), then
    Butterworth; each step Pose2Sim's own, in Sports2D's order."""
    length, count = 120, 3
    rng = np.random.default_rng(7)
    points = np.stack([walk(length, seed=s) for s in range(count * 2)],
                      1).reshape(length, count, 2)
    scores = rng.uniform(0.5, 1.0, (length, count))
    scores[10:13, 0] = 0.1  # dropped, then filled
    scores[60:80, 1] = 0.2  # too long: stays missing
    points[5, 2] = np.nan  # not found in that frame
    times = np.arange(length) / RATE
    track = Track(1, np.arange(length), times, points, scores)
    settings = MovementSettings(
        kpt_thr=0.3, interp_max_gap=5, hampel={'window_frames': 'auto',
                                               'n_sigma': 2.0},
        filter={'type': 'butterworth', 'cutoff_hz': 6, 'order': 4})
    ours = clean_track(track, settings).points.reshape(length, count * 2)
    masked = np.where((scores >= 0.3)[..., None], points, np.nan)
    for column in range(count * 2):
        series = pd.Series(masked.reshape(length, -1)[:, column])
        series = interpolate_zeros_nans(series, 5, 'linear')
        series = pd.Series(hampel_filter(series.to_numpy(), 7, 2))
        expected = pose2sim(series.to_numpy(), {'butterworth': {
            'cut_off_frequency': 6, 'order': 4}}, 'butterworth')
        np.testing.assert_allclose(ours[:, column], expected,
                                   atol=TOLERANCE_PX, rtol=0)
    assert np.isnan(ours[60:80, 2:4]).all()
    assert np.isfinite(ours[10:13, 0:2]).all()


def test_hampel_window_as_sports2d():
    assert steps.hampel_window('auto', 30.0) == 7
    assert steps.hampel_window('auto', 60.0) == 14
    assert steps.hampel_window('auto', 10.0) == 3
    assert steps.hampel_window(9, 30.0) == 9


def test_rate_of_even_and_uneven_frames():
    times = np.round(np.arange(24) / 30, 6)  # the JSON's microseconds
    assert grid.rate_of(times) == pytest.approx(30.0, abs=1e-4)
    assert grid.is_even(times)
    assert not grid.is_even(np.r_[times, times[-1] + 0.2])


@pytest.mark.parametrize('cutoff,ok', [(14.9, True), (15, False), (20, False)])
def test_a_cutoff_at_half_the_rate_is_refused(cutoff, ok):
    spec = {'type': 'butterworth', 'cutoff_hz': cutoff, 'order': 4}
    assert (filters.check_rate(spec, 30.0) == '') is ok


@pytest.mark.parametrize('rows_at_once', [1, 7, 4096])
def test_movement_text_is_jsons_and_reprs(monkeypatch, rows_at_once):
    """The fast writers give json.dumps's and repr's very text, NaN as
    null (JSON) or NaN (OpenSim), whatever the chunking."""
    import json

    from pose_suite.outputs import number_text as text
    from pose_suite.outputs.movement_files import json_array
    monkeypatch.setattr(text, 'ROWS_AT_ONCE', rows_at_once)
    values = np.round(np.random.default_rng(8).normal(0, 500, (23, 133, 2)),
                      3)
    values[3, 5], values[0, 0, 0], values[22, 132, 1] = np.nan, -0.0, 1e-3
    assert ''.join(json_array(values, 3)) == \
        json.dumps(values.tolist()).replace('NaN', 'null')
    table = values.reshape(23, -1)
    assert ''.join(text.table_text(table, '\t'.join(['%r'] * 266) + '\n',
                                   'NaN')) == ''.join(
        '\t'.join('NaN' if v != v else repr(v) for v in row) + '\n'
        for row in table.tolist())
