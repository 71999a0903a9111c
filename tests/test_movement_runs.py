"""The movement data of real runs (the tiny models on the two-person test
video): the chain equals Pose2Sim's own steps on the tracks as the result
JSON holds them, the angles Sports2D's on the cleaned points; changing a
setting that only derived data depends on runs no model; ``--postprocess``
loads none; a resumed run gives the same movement data as a whole one; and
bad values or results are one line each, the result never changed.
"""
import hashlib
import json
import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import (ROOT, assert_one_line_error, fail_on_call, real_frames,
                      run_cli, with_models, write_avi)
from sports2d_reference import sports2d_angles

from pose_suite.outputs.movement_files import HEAD

_level = logging.getLogger().level
logging.getLogger().setLevel(logging.ERROR)  # Pose2Sim's "GUI" warning
try:
    from Pose2Sim.common import interpolate_zeros_nans, read_trc
    from Pose2Sim.filtering import filter1d, hampel_filter
finally:
    logging.getLogger().setLevel(_level)

#: kpt_thr 0.02: the tiny models score points low; some are dropped.
SETTINGS = {'kpt_thr': 0.02, 'angles': True, 'interp_max_gap': 3,
            'hampel': True,
            'filter': {'type': 'butterworth', 'cutoff_hz': 4, 'order': 4},
            'person_height_m': 1.75, 'export_formats': ['trc', 'mot']}


def read_movement(folder):
    text = (folder / 'movement.json').read_text(encoding='utf-8')
    assert text.startswith(HEAD)
    data = json.loads(text)
    return data['movement'], data['tracks']


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp('movement')
    return write_avi(folder / 'clip.avi', real_frames(24), fps=30.0)


@pytest.fixture(scope='module')
def config_file(model_files, tmp_path_factory):
    path = tmp_path_factory.mktemp('movement_config') / 'config.json'
    path.write_text(json.dumps(with_models(
        {'device': 'cpu', 'bbox_thr': 0.0, **SETTINGS}, model_files)))
    return path


@pytest.fixture(scope='module')
def run(clip, config_file, tmp_path_factory):
    out = tmp_path_factory.mktemp('movement_out')
    done = run_cli('pose_analysis_service.py', '--config', config_file,
                   '--input', clip, '--output', out, '--quiet')
    assert done.returncode == 0, done.stderr
    return out


def test_chain_is_pose2sims_on_the_result(run):
    """Each track's cleaned points are Pose2Sim's own interpolation,
    Hampel and Butterworth of the points the result holds (below kpt_thr
    dropped), column by column, in Sports2D's order."""
    result = json.loads((run / 'clip.avi.json').read_text())
    movement, tracks = read_movement(run / 'clip.avi.movement')
    assert movement['made_from']['result_id'] == \
        result['meta']['run']['result_id']
    assert len(tracks) >= 2
    frames = [f['frame_index'] for f in result['frames']]
    checked = 0
    for track in tracks:
        rows = [(frames.index(f['frame_index']), p)
                for f in result['frames'] for p in f['persons']
                if p['track_id'] == track['track_id']]
        first, last = rows[0][0], rows[-1][0]
        assert track['frame_index'] == frames[first:last + 1]
        raw = np.full((last - first + 1, 133, 2), np.nan)
        for row, person in rows:
            points = np.array(person['keypoints'], np.float64)
            scores = np.array(person['keypoint_scores'], np.float64)
            raw[row - first] = np.where((scores >= 0.02)[:, None], points,
                                        np.nan)
        ours = np.array(track['keypoints'], np.float64)
        if len(raw) < 10:
            continue
        window = round(7 * 30 / 30)
        for column in range(0, 266, 7):
            series = interpolate_zeros_nans(
                pd.Series(raw.reshape(len(raw), -1)[:, column]), 3, 'linear')
            series = hampel_filter(series.to_numpy(), window, 2)
            expected = np.asarray(filter1d(pd.Series(series), {
                'filtering': {'butterworth': {'cut_off_frequency': 4,
                                              'order': 4}}},
                'butterworth', 30.0), np.float64)
            np.testing.assert_allclose(
                ours.reshape(len(ours), -1)[:, column], expected, atol=2e-3,
                rtol=0)  # the JSON keeps 0.001 px
            checked += 1
    assert checked >= 38


def test_angles_are_sports2ds_of_the_cleaned_points(run):
    movement, tracks = read_movement(run / 'clip.avi.movement')
    keypoint_names = movement['keypoint_names']
    for track in tracks:
        points = np.array(track['keypoints'], np.float64)
        scores = np.where(np.isfinite(points[..., 0]), 1.0, 0.0)
        theirs = sports2d_angles(points, scores, keypoint_names, 0.5)
        for name in movement['angles']:
            ours = np.array(track['angles'][name], np.float64)
            expected = np.array([row[name] for row in theirs])
            np.testing.assert_allclose(ours, expected, atol=2e-6,
                                       equal_nan=True, err_msg=name)


def test_trc_and_mot_read_by_pose2sim(run):
    movement, tracks = read_movement(run / 'clip.avi.movement')
    track = tracks[0]
    data, _, times, markers, _ = read_trc(str(
        run / 'clip.avi.movement' / f'track{track["track_id"]}_px.trc'))
    points = np.array(track['keypoints'], np.float64)
    assert len(data) == len(points)
    np.testing.assert_allclose(times, track['timestamp_s'], atol=1e-6)
    # The first marker is Sports2D's RHip, our right_hip (index 12).
    assert markers[0] == 'RHip'
    np.testing.assert_allclose(data.iloc[:, 0], points[:, 12, 0],
                               atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(data.iloc[:, 1], points[:, 12, 1],
                               atol=1e-9, equal_nan=True)
    assert movement['metres']['person_height_m'] == 1.75
    assert (run / 'clip.avi.movement' /
            f'track{track["track_id"]}_angles.mot').is_file()


def test_a_derived_setting_runs_no_model(run, clip, config_file,
                                         monkeypatch):
    """Another filter, no angles: the result's keypoints stay as the
    models gave them, no frame is analysed, the movement data follows."""
    from pose_suite.service.analyser import PoseAnalyser
    calls = fail_on_call(monkeypatch, PoseAnalyser, 'analyse_frame', 1,
                         AssertionError('a model ran'))
    before = json.loads((run / 'clip.avi.json').read_text())
    done = run_cli('pose_analysis_service.py', '--config', config_file,
                   '--input', clip, '--output', run, '--no-angles',
                   '--format', 'trc', '--filter', 'kalman,trust_ratio=50',
                   '--quiet')
    assert done.returncode == 0, done.stderr
    assert not calls
    after = json.loads((run / 'clip.avi.json').read_text())
    assert after['meta']['run']['rederived_without_models'] is True
    assert 'angles' not in after['meta']
    for old, new in zip(before['frames'], after['frames']):
        for p, q in zip(old['persons'], new['persons']):
            assert 'angles' in p and 'angles' not in q
            assert {k: v for k, v in p.items() if k != 'angles'} == q
    movement, _ = read_movement(run / 'clip.avi.movement')
    assert movement['settings']['filter']['type'] == 'kalman'
    assert movement['made_from']['result_id'] == \
        after['meta']['run']['result_id']
    # Back to the first settings: angles again, still no model.
    done = run_cli('pose_analysis_service.py', '--config', config_file,
                   '--input', clip, '--output', run, '--quiet')
    assert done.returncode == 0 and not calls
    again = json.loads((run / 'clip.avi.json').read_text())
    assert again['frames'] == before['frames']


def test_postprocess_loads_no_model(run, tmp_path):
    """--postprocess in a new process: torch and mmpose never imported;
    the result's bytes unchanged."""
    before = sha256(run / 'clip.avi.json')
    code = ('import sys; sys.path.insert(0, %r); '
            'import pose_analysis_service as p; '
            'rc = p.main(["--config", %r, "--postprocess", %r, "--filter", '
            '"median,kernel_frames=5", "--angles"]); '
            'print(rc, "torch" in sys.modules, "mmpose" in sys.modules, '
            '"mmdet" in sys.modules)') % (str(ROOT), str(tmp_path / 'none'),
                                          str(run))
    (tmp_path / 'none').write_text('{}')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert done.stdout.split()[-4:] == ['0', 'False', 'False', 'False'], \
        done.stdout + done.stderr
    assert sha256(run / 'clip.avi.json') == before
    movement, _ = read_movement(run / 'clip.avi.movement')
    assert movement['settings']['filter'] == {'type': 'median',
                                              'kernel_frames': 5}


def test_resumed_run_gives_the_same_movement(analysis_service, clip,
                                             tmp_path, monkeypatch):
    settings = dict(SETTINGS, export_formats=['trc'])
    analysis_service.run(clip, tmp_path / 'whole.json', settings=settings)
    fail_on_call(monkeypatch, analysis_service, 'analyse_frame', 9,
                 KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        analysis_service.run(clip, tmp_path / 'cut.json', settings=settings)
    monkeypatch.undo()
    analysis_service.run(clip, tmp_path / 'cut.json', resume=True,
                         settings=settings)
    whole = read_movement(tmp_path / 'whole.movement')
    resumed = read_movement(tmp_path / 'cut.movement')
    assert whole[1] == resumed[1]
    assert whole[0]['metres'] == resumed[0]['metres']
    for name in ('track0_px.trc', 'track0_m.trc'):
        assert (tmp_path / 'whole.movement' / name).read_text().split(
            '\n')[1:] == (tmp_path / 'cut.movement' / name).read_text(
        ).split('\n')[1:]


@pytest.mark.parametrize('flags,words', [
    (['--filter', 'butterworth,cutoff_hz=15'], ['at or above half']),
    (['--filter', 'butterworth,order=0'], ['order']),
    (['--filter', 'butter'], ['filter type']),
    (['--person-height-m', '-1.7'], ['person_height_m']),
    (['--interp-max-gap', '-2'], ['interp_max_gap']),
    (['--hampel', '{"n_sigma": 0}'], ['n_sigma']),
])
def test_bad_values_are_one_line(run, config_file, flags, words):
    before = sha256(run / 'clip.avi.json')
    done = run_cli('pose_analysis_service.py', '--config', config_file,
                   '--postprocess', run, *flags)
    if 'at or above half' in words:  # the result's own rate: per result
        assert done.returncode == 1
        assert 'at or above half the frame rate (15 Hz)' in done.stderr
        assert 'Traceback' not in done.stderr
    else:
        assert_one_line_error(done, *words)
    assert sha256(run / 'clip.avi.json') == before


def test_postprocess_refuses_what_it_cannot_use(run, config_file, tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'notes.json').write_text('{"a": 1}')
    assert_one_line_error(run_cli('pose_analysis_service.py', '--config',
                                  config_file, '--postprocess', empty),
                          'no results')
    cut = tmp_path / 'cut' / 'clip.avi.json'
    cut.parent.mkdir()
    data = (run / 'clip.avi.json').read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    done = run_cli('pose_analysis_service.py', '--config', config_file,
                   '--postprocess', cut.parent)
    assert done.returncode == 1 and 'Traceback' not in done.stderr
    assert 'cut short' in done.stderr or 'incomplete' in done.stderr or \
        'analyse it again' in done.stderr, done.stderr
    assert cut.read_bytes() == data[:len(data) // 2]
    assert not (cut.parent / 'clip.avi.movement').exists()


def test_a_track_too_short_to_filter_is_left_and_said(run, config_file,
                                                      tmp_path):
    """Order 8 needs more than 15 points a stretch: the shorter ones stay
    as they were (Pose2Sim's rule), and one warning says how many."""
    done = run_cli('pose_analysis_service.py', '--config', config_file,
                   '--postprocess', run, '--filter',
                   'butterworth,cutoff_hz=4,order=8', '--interp-max-gap', '0')
    assert done.returncode == 0, done.stderr
    assert 'too short for the butterworth filter' in done.stderr
    movement, tracks = read_movement(run / 'clip.avi.movement')
    assert sum(t['stretches_too_short_to_filter']
               for t in movement['tracks']) > 0


def test_report_plots_the_cleaned_angles(run, tmp_path):
    """The report's angle plots take the movement folder's angles when it
    was made from this very result (titled "cleaned"), else the result's."""
    from pose_suite.outputs.angle_plots import angle_plots_html, angle_tracks
    movement, tracks = read_movement(run / 'clip.avi.movement')
    plotted = angle_tracks(run / 'clip.avi.json')
    for track in tracks:
        series = plotted[track['track_id']]['right knee']
        assert [v for _, v in series] == pytest.approx(
            [np.nan if v is None else v for v in track['angles']
             ['right knee']], nan_ok=True)
    assert 'cleaned angles of person' in angle_plots_html(run /
                                                          'clip.avi.json')
    copy = tmp_path / 'clip.avi.json'  # no movement folder beside it
    copy.write_bytes((run / 'clip.avi.json').read_bytes())
    raw = angle_tracks(copy)
    assert raw and raw != plotted
    assert 'cleaned' not in angle_plots_html(copy)


def test_a_new_export_format_runs_no_model(run, clip, config_file,
                                           monkeypatch):
    """A run without --resume that only asks for another export: written
    from the result, no frame analysed; the same run again (nothing
    derived changed) analyses the video again, as a run without --resume
    does."""
    from pose_suite.service.analyser import PoseAnalyser
    calls = fail_on_call(monkeypatch, PoseAnalyser, 'analyse_frame', 1,
                         AssertionError('a model ran'))
    before = sha256(run / 'clip.avi.json')
    done = run_cli('pose_analysis_service.py', '--config', config_file,
                   '--input', clip, '--output', run, '--format', 'csv',
                   '--format', 'trc', '--format', 'mot', '--quiet')
    assert done.returncode == 0, done.stderr
    assert not calls and sha256(run / 'clip.avi.json') == before
    assert (run / 'clip.avi.csv').is_file()
    monkeypatch.undo()
    first = json.loads((run / 'clip.avi.json').read_text())['meta']['run']
    done = run_cli('pose_analysis_service.py', '--config', config_file,
                   '--input', clip, '--output', run, '--format', 'csv',
                   '--format', 'trc', '--format', 'mot', '--quiet')
    assert done.returncode == 0, done.stderr
    again = json.loads((run / 'clip.avi.json').read_text())['meta']['run']
    assert again['result_id'] != first['result_id']
    assert 'rederived_without_models' not in again
