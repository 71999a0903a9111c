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


def test_hampel_leaves_a_window_with_a_missing_point():
    """Pose2Sim's np.median of a window with NaN is NaN: the point stays,
    however far out it is."""
    values = walk(40, seed=10)
    values[20] += 500.0
    values[18] = np.nan
    ours = steps.hampel(values[:, None], 7, 2)[:, 0]
    assert ours[20] == values[20]
    np.testing.assert_array_equal(ours, hampel_filter(values.copy(), 7, 2))


def test_minimum_lengths_are_pose2sims():
    """Butterworth (order 4) needs more than 9 points (filtfilt's
    padding), LOESS more than nb_values: a stretch of exactly that many is
    left as it is and counted."""
    butter = {'type': 'butterworth', 'cutoff_hz': 6, 'order': 4}
    loess = {'type': 'loess', 'nb_values': 5}
    assert filters.min_length(butter) == 10
    assert filters.min_length(loess) == 6
    for spec, length in ((butter, 9), (loess, 5)):
        values = walk(length, seed=11)[:, None]
        done = filters.zero_phase(values, RATE, spec)
        assert done.short == 1
        np.testing.assert_array_equal(done.values, values)


def test_twenty_percent_jitter_is_uneven():
    times = np.arange(60) / 30 + np.where(np.arange(60) % 2, 0.2 / 30, 0)
    assert not grid.is_even(times)
    track = Track(1, np.arange(60), times, walk(120, seed=12).reshape(
        60, 1, 2), np.ones((60, 1)))
    clean = clean_track(track, MovementSettings(filter={
        'type': 'butterworth', 'cutoff_hz': 4, 'order': 4}))
    assert clean.resampled


def test_a_score_equal_to_kpt_thr_counts_and_counts_are_points():
    points = walk(40, seed=13).reshape(20, 1, 2)
    scores = np.full((20, 1), 0.5)
    scores[5:7] = 0.2  # two frames of one point: 2 points filled
    track = Track(1, np.arange(20), np.arange(20) / RATE, points, scores)
    clean = clean_track(track, MovementSettings(kpt_thr=0.5,
                                                interp_max_gap=3))
    assert clean.filled == 2
    assert np.isfinite(clean.points).all()
    np.testing.assert_array_equal(clean.points[:5], points[:5])


def test_settings_say_what_is_on():
    from pose_suite.movement.derive import wanted
    assert MovementSettings(fill_large_gaps='last_value').cleans
    assert not MovementSettings().wanted
    assert wanted(MovementSettings(), ['trc'])


def test_the_measured_points_are_read_when_smoothed(tmp_path):
    """A result written with smoothing holds keypoints_raw: the movement
    chain starts from what the models measured."""
    import json

    from pose_suite.movement.series import read_trajectories
    from pose_suite.outputs.results import record_line, write_result
    person = {'track_id': 3, 'bbox': [0, 0, 1, 1], 'bbox_score': 0.9,
              'keypoints': [[1.0, 2.0]], 'keypoint_scores': [0.9],
              'keypoints_raw': [[5.0, 6.0]]}
    path = tmp_path / 'r.json'
    with open(path, 'w', encoding='utf-8') as handle:
        write_result(handle, {'kind': 'video'}, [record_line(
            {'frame_index': 0, 'timestamp_s': 0.0, 'persons': [person]})])
    found = read_trajectories(path, 1)
    assert found.tracks[0].points.tolist() == [[[5.0, 6.0]]]
    assert json.loads(path.read_text())['frames'][0]['persons'][0]


def test_metres_come_from_the_longest_track():
    from pose_suite.movement.chain import CleanTrack
    from pose_suite.movement.scale import scale_from
    from pose_suite.outputs.report_pictures import wholebody_meta
    names = [wholebody_meta()['keypoint_id2name'][i] for i in range(133)]
    rng = np.random.default_rng(14)

    def person(track_id, frames):
        points = rng.uniform(100, 500, (frames, 133, 2))
        track = Track(track_id, np.arange(frames), np.arange(frames) / 30,
                      points, np.ones((frames, 133)))
        return CleanTrack(track, points, rate_hz=30.0)
    scale = scale_from([person(1, 20), person(2, 70), person(3, 40)], names,
                       MovementSettings(person_height_m=1.75),
                       {'width': 640, 'height': 480})
    assert scale.track_id == 2


@pytest.mark.parametrize('key,value', [
    ('filter', {'type': 'butterworth', 'order': 3}),
    ('floor_angle', 90), ('floor_angle', -90),
    ('filter', {'type': 'median', 'kernel_frames': 4}),
])
def test_values_refused(key, value):
    from pose_suite.config.keys import validate_value
    from pose_suite.errors import ConfigError
    with pytest.raises(ConfigError, match=key):
        validate_value(key, value)


def test_derived_only_keeps_kpt_thr_where_it_decides_tracks():
    import dataclasses

    from pose_suite.config import build_config
    from pose_suite.service.resume import derived_only
    cfg = build_config({})
    assert derived_only(cfg, 'video') == ('angles',)
    assert derived_only(cfg, 'image') == ('angles', 'kpt_thr')
    untracked = dataclasses.replace(cfg, tracking=False)
    assert derived_only(untracked, 'video') == ('angles', 'kpt_thr')
    assert derived_only(dataclasses.replace(untracked, det_interval=2),
                        'video') == ('angles',)


def test_missing_angles_are_null_in_strict_json():
    import json

    from pose_suite.outputs.movement_files import json_array

    def refuse(text):
        raise ValueError(text)
    text = ''.join(json_array(np.array([1.5, np.nan]), 6))
    assert json.loads(text, parse_constant=refuse) == [1.5, None]
