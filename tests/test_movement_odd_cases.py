"""What a hostile first user tried on the movement data, each now held:
a user's files in the movement folder, a result of one frame, a track too
slow for the cut-off, a person whose height cannot be measured, a photo
in the folder, an out-of-date folder, hand-edited results, odd names,
extreme values, Ctrl-C."""
import json
import os
import time

import numpy as np
import pytest
from conftest import (assert_one_line_error, fail_on_call, real_frames,
                      run_cli, with_models, write_avi)
from test_movement_runs import read_movement, sha256

from pose_suite.movement.chain import MovementSettings, clean_track
from pose_suite.movement.series import Track
from pose_suite.outputs.movement_files import (STALE_AFTER_S, movement_folder,
                                               publish_folder)
from pose_suite.outputs.naming import is_own_output
from pose_suite.outputs.results import record_line, write_result

FLAGS = ['--interp-max-gap', '3', '--filter', 'butterworth,cutoff_hz=4',
         '--person-height-m', '1.75']


@pytest.fixture(scope='module')
def made(model_files, tmp_path_factory):
    """A config (tiny models, kpt_thr 0.02) and a result of 12 frames of
    the two-person video with its movement folder."""
    folder = tmp_path_factory.mktemp('odd')
    clip = write_avi(folder / 'clip.avi', real_frames(12), fps=30.0)
    config = folder / 'config.json'
    config.write_text(json.dumps(with_models(
        {'device': 'cpu', 'bbox_thr': 0.0, 'kpt_thr': 0.02}, model_files)))
    done = run_cli('pose_analysis_service.py', '--config', config, '--input',
                   clip, '--output', folder / 'out', '--angles', '--format',
                   'trc', '--quiet', *FLAGS)
    assert done.returncode == 0, done.stderr
    return config, clip, folder / 'out' / 'clip.avi.json'


def edited(result, target, change):
    """A copy of ``result`` at ``target`` with ``change(meta, frames)``
    applied, written as the suite writes results."""
    data = json.loads(result.read_text())
    change(data['meta'], data['frames'])
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, 'w', encoding='utf-8') as handle:
        write_result(handle, data['meta'], (record_line(f)
                                            for f in data['frames']))
    return target


def postprocess(config, target, *flags):
    return run_cli('pose_analysis_service.py', '--config', config,
                   '--postprocess', target, *flags)


def test_a_users_files_in_the_folder_are_never_removed(made, tmp_path):
    config, clip, result = made
    copy = tmp_path / 'clip.avi.json'
    copy.write_bytes(result.read_bytes())
    assert postprocess(config, copy, *FLAGS).returncode == 0
    mine = movement_folder(copy) / 'track0_ik.mot'
    mine.write_text('an OpenSim result of the user\n')
    done = postprocess(config, copy, '--filter', 'gaussian')
    assert done.returncode == 1 and 'did not write' in done.stderr
    assert mine.read_text() == 'an OpenSim result of the user\n'
    # A run is refused before any work, naming the file.
    done = run_cli('pose_analysis_service.py', '--config', config,
                   '--input', clip, '--output', tmp_path, *FLAGS)
    assert_one_line_error(done, 'track0_ik.mot', 'nothing was analysed')
    assert mine.is_file() and sha256(copy) == sha256(result)


def test_a_left_behind_folder_is_swept_once_old(tmp_path):
    folder = tmp_path / 'r.mp4.movement'
    young, old = (tmp_path / '.r.mp4.movement.0123abcd',
                  tmp_path / '.r.mp4.movement.old.89abcdef')
    for path in (young, old):
        path.mkdir()
    long_ago = time.time() - STALE_AFTER_S - 60
    os.utime(old, (long_ago, long_ago))

    def write(into):
        (into / 'movement.json').write_text('{"movement": {}}\n')
    publish_folder(folder, write)
    assert young.is_dir() and not old.exists()  # young: maybe a live run


def test_a_result_of_one_frame(made, tmp_path):
    config, clip, _ = made
    done = run_cli('pose_analysis_service.py', '--config', config, '--input',
                   clip, '--output', tmp_path, '--frame-range', '0-0',
                   '--angles', '--format', 'trc', '--format', 'mot', *FLAGS)
    assert done.returncode == 0, done.stderr
    assert 'Traceback' not in done.stderr
    movement, tracks = read_movement(tmp_path / 'clip.avi.movement')
    assert tracks and all(len(t['frame_index']) == 1 for t in tracks)
    trc = (tmp_path / 'clip.avi.movement' / 'track0_px.trc').read_text()
    assert trc.split('\n')[2].split('\t')[0] == '30'  # the video's rate


def test_a_track_too_slow_for_the_cutoff_is_left_unfiltered():
    """30 fps, then 5 fps: a track seen only in the 5 fps part cannot take
    a 4 Hz Butterworth; it is left as it is and says why."""
    times = 2 + np.arange(20) / 5.0
    rng = np.random.default_rng(1)
    points = rng.uniform(100, 200, (20, 133, 2))
    track = Track(7, np.arange(20), times, points, np.ones((20, 133)))
    spec = {'type': 'butterworth', 'cutoff_hz': 4.0, 'order': 4}
    clean = clean_track(track, MovementSettings(filter=spec), 30.0)
    assert 'half the frame rate (2.5 Hz)' in clean.unfiltered
    np.testing.assert_array_equal(clean.points, points)


def test_metres_from_the_next_track_when_one_cannot_be_measured(made,
                                                                tmp_path):
    """The longest track never shows its nose (filmed from behind): the
    scale comes from the next one; with none measurable, the pixels are
    still written, one warning saying why."""
    from pose_suite.movement.chain import CleanTrack
    from pose_suite.movement.scale import scale_from
    from pose_suite.outputs.report_pictures import wholebody_meta
    names = [wholebody_meta()['keypoint_id2name'][i] for i in range(133)]
    rng = np.random.default_rng(3)

    def person(track_id, frames, nose=True):
        points = rng.uniform(100, 500, (frames, 133, 2))
        if not nose:
            points[:, 0] = np.nan
        track = Track(track_id, np.arange(frames), np.arange(frames) / 30,
                      points, np.ones((frames, 133)))
        return CleanTrack(track, points, rate_hz=30.0)
    settings = MovementSettings(person_height_m=1.75)
    meta = {'width': 640, 'height': 480}
    scale = scale_from([person(1, 80, nose=False), person(2, 60)], names,
                       settings, meta)
    assert scale.track_id == 2
    config, _, result = made

    def no_nose(meta, frames):
        for frame in frames:
            for one in frame['persons']:
                one['keypoint_scores'][0] = 0.0
    target = edited(result, tmp_path / 'clip.avi.json', no_nose)
    done = postprocess(config, target, *FLAGS)
    assert done.returncode == 0 and 'no metres' in done.stderr
    movement, tracks = read_movement(movement_folder(target))
    assert movement['metres'] is None and tracks[0]['keypoints']


def test_a_photo_in_the_folder_is_no_failure(made, tmp_path):
    config, _, result = made

    def photo(meta, frames):
        meta['kind'], meta['tracking'] = 'image', False
        meta['frame_count'] = 1
        del frames[1:]
        for person in frames[0]['persons']:
            person.pop('track_id')
    edited(result, tmp_path / 'p.jpg.json', photo)
    (tmp_path / 'v.avi.json').write_bytes(result.read_bytes())
    done = postprocess(config, tmp_path, *FLAGS, '--format', 'csv')
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'p.jpg.csv').is_file()
    assert not movement_folder(tmp_path / 'p.jpg.json').exists()
    assert movement_folder(tmp_path / 'v.avi.json').is_dir()


def test_an_out_of_date_folder_goes_with_its_result(made, tmp_path):
    config, clip, _ = made
    args = ['pose_analysis_service.py', '--config', config, '--input', clip,
            '--output', tmp_path, '--quiet']
    assert run_cli(*args, *FLAGS).returncode == 0
    assert (tmp_path / 'clip.avi.movement').is_dir()
    assert run_cli(*args).returncode == 0  # analysed again, no movement
    assert not (tmp_path / 'clip.avi.movement').exists()


def test_counts_are_what_happened(made, tmp_path):
    config, _, result = made
    copy = tmp_path / 'clip.avi.json'
    copy.write_bytes(result.read_bytes())
    assert postprocess(config, copy, '--hampel',
                       '{"n_sigma": 1e9}').returncode == 0
    movement, _ = read_movement(movement_folder(copy))
    assert all(t['outliers_replaced'] == 0 for t in movement['tracks'])


@pytest.mark.parametrize('change,words', [
    (lambda m, f: f.reverse(), 'do not increase'),
    (lambda m, f: f[0]['persons'][0].pop('keypoint_scores'),
     'cannot be read as tracks'),
    (lambda m, f: f[0]['persons'][0].update(track_id='bob'),
     'cannot be read as tracks'),
])
def test_a_hand_edited_result_is_one_line(made, tmp_path, change, words):
    config, _, result = made
    target = edited(result, tmp_path / 'clip.avi.json', change)
    done = postprocess(config, target, *FLAGS)
    assert done.returncode == 1 and words in done.stderr, done.stderr
    assert 'Traceback' not in done.stderr


def test_names_that_are_not_json_or_utf8(made, tmp_path):
    config, _, result = made
    assert movement_folder(tmp_path / 'r.bak') == tmp_path / 'r.bak.movement'
    odd = tmp_path / os.fsdecode(b'caf\xe9.avi.json')
    odd.write_bytes(result.read_bytes())
    done = postprocess(config, odd, *FLAGS, '--format', 'trc')
    assert done.returncode == 0, done.stderr
    first = (movement_folder(odd) / 'track0_px.trc').read_text().split('\n')[0]
    assert first.endswith('caf\\xe9.avi.movement/track0_px.trc')
    assert is_own_output(movement_folder(odd) / 'movement.json')


@pytest.mark.parametrize('flags,words', [
    (['--filter', 'butterworth,order=40'], 'order'),
    (['--floor-origin', '1e308,-1e308'], 'floor_origin'),
    (['--person-height-m', '0.001'], 'person_height_m'),
    (['--filter', 'median,kernel_frames=1000001'], 'kernel_frames'),
    (['--format', 'mot', '--no-angles'], 'needs angles'),
])
def test_extreme_values_are_refused(made, flags, words):
    config, _, result = made
    assert_one_line_error(postprocess(config, result, *flags), words)


def test_ctrl_c_during_postprocess_is_one_line(made, tmp_path, monkeypatch):
    from pose_suite.movement import finished
    config, _, result = made
    copy = tmp_path / 'clip.avi.json'
    copy.write_bytes(result.read_bytes())
    fail_on_call(monkeypatch, finished, 'derive', 1, KeyboardInterrupt())
    done = postprocess(config, copy, *FLAGS)
    assert done.returncode == 130
    assert_one_line_error(done, 'interrupted', 'untouched')
    assert sha256(copy) == sha256(result)


def test_only_a_movement_key_or_format_changed_runs_no_model(
        made, tmp_path, monkeypatch):
    """Without --resume: another filter rewrites movement.json, an added
    trc format writes its files, no frame is analysed; a second
    --postprocess rewrites no export that is current."""
    from pose_suite.service.analyser import PoseAnalyser
    config, clip, _ = made
    args = ['pose_analysis_service.py', '--config', config, '--input', clip,
            '--output', tmp_path, '--quiet']
    assert run_cli(*args, *FLAGS).returncode == 0
    before = sha256(tmp_path / 'clip.avi.json')
    calls = fail_on_call(monkeypatch, PoseAnalyser, 'analyse_frame', 1,
                         AssertionError('a model ran'))
    assert run_cli(*args, *FLAGS[:-2], '--filter',
                   'gaussian').returncode == 0
    movement, _ = read_movement(tmp_path / 'clip.avi.movement')
    assert movement['settings']['filter']['type'] == 'gaussian'
    assert run_cli(*args, *FLAGS[:-2], '--filter', 'gaussian', '--format',
                   'trc').returncode == 0
    assert (tmp_path / 'clip.avi.movement' / 'track0_px.trc').is_file()
    assert not calls and sha256(tmp_path / 'clip.avi.json') == before
    assert postprocess(config, tmp_path, '--format', 'csv').returncode == 0
    csv = tmp_path / 'clip.avi.csv'
    written = csv.stat().st_mtime_ns
    time.sleep(0.01)
    done = postprocess(config, tmp_path, '--format', 'csv')
    assert done.returncode == 0 and csv.stat().st_mtime_ns == written


def test_a_folder_of_the_users_in_the_way_is_kept(made, tmp_path):
    config, _, result = made
    copy = tmp_path / 'clip.avi.json'
    copy.write_bytes(result.read_bytes())
    theirs = movement_folder(copy)
    theirs.mkdir()
    (theirs / 'notes.txt').write_text('mine\n')
    done = postprocess(config, copy, *FLAGS)
    assert done.returncode == 1 and 'in the way' in done.stderr
    assert (theirs / 'notes.txt').read_text() == 'mine\n'
    assert sorted(p.name for p in theirs.iterdir()) == ['notes.txt']


def test_the_report_takes_angles_only_from_this_results_folder(made,
                                                               tmp_path):
    from pose_suite.outputs.movement_files import movement_angles
    from pose_suite.outputs.results import read_meta
    config, _, result = made
    meta = read_meta(result)
    assert movement_angles(result, meta) is not None
    other = dict(meta, run=dict(meta['run'], result_id='another'))
    assert movement_angles(result, other) is None


def test_kpt_thr_on_a_photo_is_made_again_without_models(
        model_files, tmp_path, monkeypatch):
    from conftest import COCO_IMAGES, data_file

    from pose_suite.service.analyser import PoseAnalyser
    config = tmp_path / 'config.json'
    config.write_text(json.dumps(with_models(
        {'device': 'cpu', 'bbox_thr': 0.0}, model_files)))
    args = ['pose_analysis_service.py', '--config', config, '--input',
            data_file(COCO_IMAGES[0]), '--output', tmp_path / 'out',
            '--angles', '--quiet']
    assert run_cli(*args).returncode == 0
    calls = fail_on_call(monkeypatch, PoseAnalyser, 'analyse_frame', 1,
                         AssertionError('a model ran'))
    creating = run_cli('creating_config.py', '--config', config,
                       '--kpt-thr', '0.6')
    assert creating.returncode == 0
    assert run_cli(*args, '--resume').returncode == 0
    result = next((tmp_path / 'out').glob('*.json'))
    meta = json.loads(result.read_text())['meta']
    assert not calls and meta['thresholds']['kpt_thr'] == 0.6
    assert meta['run']['rederived_without_models'] is True


def test_a_cut_result_is_analysed_again_not_rederived(made, tmp_path):
    """A result cut short with only angles changed: analysed again (its
    frames all back), never re-derived as it is."""
    config, clip, _ = made
    args = ['pose_analysis_service.py', '--config', config, '--input', clip,
            '--output', tmp_path, '--quiet']
    assert run_cli(*args, '--angles').returncode == 0
    result = tmp_path / 'clip.avi.json'
    data = result.read_bytes()
    result.write_bytes(data[:len(data) // 2])
    for resume in (['--resume'], []):
        assert run_cli(*args, '--no-angles', *resume).returncode == 0
        meta = json.loads(result.read_text())['meta']
        assert 'rederived_without_models' not in meta['run']
        assert meta['frame_count'] == 12
        result.write_bytes(data[:len(data) // 2])
