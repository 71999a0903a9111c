"""``executor: ray`` on a real two-node Ray cluster on this machine.

Every Ray process of these tests (head, second node, drivers, probes) runs
inside a network namespace made here with only ``lo`` up, and is killed with
it afterwards: Ray's servers listen on every interface whatever
``--node-ip-address`` says, so the namespace is what keeps them on loopback.
The cluster uses token authentication (``RAY_AUTH_MODE=token``).

Workers get one thread each; the local runs they are compared with do too
(torch's results depend on the thread count at the level of float
rounding). The pose model runs without flip test here, to keep the tests
short; both sides use the same config.
"""
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import COCO_IMAGES, ROOT, assert_one_line_error, data_file
from ray_cluster import (NO_NAMESPACE, TESTS, alive, network_namespace,
                         start_cluster)

pytestmark = pytest.mark.skipif(NO_NAMESPACE is not None,
                                reason=NO_NAMESPACE or '')


@pytest.fixture(scope='module')
def cluster():
    yield from start_cluster()


@pytest.fixture(scope='module')
def light_models(real_model_files, tmp_path_factory):
    """The real-size test checkpoints, the pose model without flip test:
    about a second a frame, so that a probe (tests/ray_probe.py, polling)
    finds a run in its middle to kill or interrupt (the tiny models finish
    a clip before it looks)."""
    model_files = real_model_files
    folder = tmp_path_factory.mktemp('light')
    pose_config = folder / 'pose_no_flip.py'
    pose_config.write_text(f"_base_ = '{model_files['pose_config']}'\n"
                           'model = dict(test_cfg=dict(flip_test=False))\n')
    return {'det_config': str(model_files['det_config']),
            'det_checkpoint': str(model_files['det_checkpoint']),
            'pose_config': str(pose_config),
            'pose_checkpoint': str(model_files['pose_checkpoint']),
            'device': 'cpu', 'bbox_thr': 0.0}


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """A folder as users have them: a photo, two videos, and a README."""
    folder = tmp_path_factory.mktemp('clips')
    shutil.copy(data_file(COCO_IMAGES[0]), folder)
    for name in ('street_5frames.mp4', 'football_5frames_720p.mp4'):
        shutil.copy(data_file(f'videos/{name}'), folder)
    (folder / 'README.md').write_text('# Clips of the lab\n')
    return folder


def _config(tmp_path, models, **values) -> Path:
    path = tmp_path / f'config-{secrets.token_hex(3)}.json'
    path.write_text(json.dumps({**models, **values}))
    return path


def _cli(*args):
    return [sys.executable, str(ROOT / 'pose_analysis_service.py'),
            *map(str, args)]


@pytest.fixture(scope='module')
def local_results(light_models, inputs, tmp_path_factory):
    """``executor: local`` results of the folder, one thread."""
    out = tmp_path_factory.mktemp('local')
    config = _config(tmp_path_factory.mktemp('local_config'), light_models,
                     input=str(inputs), output=str(out))
    result = subprocess.run(_cli('--config', config, '--quiet'),
                            env=dict(os.environ, OMP_NUM_THREADS='1'),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return out


def _results(folder: Path) -> list:
    """The result JSONs of a batch's output folder (not its summary)."""
    return sorted(path for path in folder.glob('*.json')
                  if path.name != 'summary.json')


def _same_as_local(path: Path, local_results: Path) -> dict:
    """Assert the result equals the local one but for ``meta.run``;
    return that."""
    ray_result = json.loads(path.read_text())
    local = json.loads((local_results / path.name).read_text())
    run = ray_result['meta'].pop('run')
    assert local['meta'].pop('run')['executor'] == 'local'
    assert ray_result == local
    return run


def test_folder_on_two_workers_equals_local(cluster, light_models, inputs,
                                            local_results, tmp_path):
    out = tmp_path / 'out'
    config = _config(tmp_path, light_models, input=str(inputs),
                     output=str(out), executor='ray',
                     ray_address=cluster.address, workers=2)
    result = cluster.run(*_cli('--config', config))
    assert result.returncode == 0, result.stderr
    assert 'skipped 1 non-media file(s): README.md' in result.stderr
    assert '3 input(s) done: 11 frame(s)' in result.stdout
    written = [path.name for path in _results(out)]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in local_results.iterdir()) == sorted(
        written + ['summary.csv', 'summary.json', 'report.html'])
    runs = [_same_as_local(out / name, local_results) for name in written]
    # The same summary but for the seconds each input took.
    summaries = [json.loads((folder / 'summary.json').read_text())['inputs']
                 for folder in (out, local_results)]
    for summary in summaries:
        for row in summary:
            row.pop('seconds')
    assert summaries[0] == summaries[1]
    assert [row['status'] for row in summaries[0]] == [
        'not media', 'done', 'done', 'done']
    assert {run['executor'] for run in runs} == {'ray'}
    assert {run['worker'] for run in runs} == {0, 1}
    assert {run['attempts'] for run in runs} == {1}
    assert len({run['node_id'] for run in runs}) == 2  # both nodes


def _one_video_on_one_worker(cluster, light_models, inputs, tmp_path):
    """(output folder, config file) for street_5frames.mp4 on 1 worker."""
    out = tmp_path / 'out'
    return out, _config(tmp_path, light_models,
                        input=str(inputs / 'street_5frames.mp4'),
                        output=str(out), executor='ray',
                        ray_address=cluster.address, workers=1)


def _probe(cluster, *flags):
    """tests/ray_probe.py beside a batch: prints (JSON) where a unit runs
    once it has written 2 frames."""
    return cluster.popen(sys.executable, str(TESTS / 'ray_probe.py'),
                         '--address', cluster.address, '--frames', '2',
                         *flags, stdout=subprocess.PIPE)


def test_killed_worker_is_retried_and_resumes(cluster, light_models, inputs,
                                              local_results, tmp_path):
    out, config = _one_video_on_one_worker(cluster, light_models, inputs,
                                           tmp_path)
    probe = _probe(cluster, '--kill')
    result = cluster.run(*_cli('--config', config))
    killed = json.loads(probe.communicate(timeout=60)[0])
    assert result.returncode == 0, result.stderr
    run = _same_as_local(out / 'street_5frames.mp4.json', local_results)
    assert run['attempts'] == 2
    assert run['pid'] != killed['pid']
    # The frames written before the kill were not analysed again.
    assert run['resumed_from_frame'] >= killed['frames'] >= 2
    assert 'attempt 2' in result.stdout
    # Ray's own report of the dead worker (pages, in colour) is not shown.
    assert 'worker died' not in result.stdout + result.stderr
    assert '\x1b[' not in result.stdout + result.stderr


def test_corrupt_input_reported_once_the_others_written(
        cluster, light_models, tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    shutil.copy(data_file(COCO_IMAGES[1]), folder)
    (folder / 'broken.mp4').write_bytes(
        data_file('videos/street_5frames.mp4').read_bytes()[-3000:])
    out = tmp_path / 'out'
    config = _config(tmp_path, light_models, input=str(folder),
                     output=str(out), executor='ray',
                     ray_address=cluster.address, workers=2)
    result = cluster.run(*_cli('--config', config))
    assert result.returncode == 1
    failed = [line for line in result.stderr.splitlines()
              if 'broken.mp4' in line]
    assert len(failed) == 1 and 'failed' in failed[0], result.stderr
    assert 'died' not in result.stderr
    assert [p.name for p in _results(out)] == [
        Path(COCO_IMAGES[1]).name + '.json']
    rows = json.loads((out / 'summary.json').read_text())['inputs']
    assert [(Path(row['input']).name, row['status']) for row in rows] == [
        ('broken.mp4', 'failed'), (Path(COCO_IMAGES[1]).name, 'done')]
    assert rows[0]['reason'] in failed[0]


SEGMENTED = TESTS / 'data' / 'two_people_24frames_4fps_gop5.mp4'


@pytest.fixture(scope='module')
def whole_segmented_run(light_models, tmp_path_factory):
    """(config values, result, its folder) of the 24-frame 4 fps clip
    analysed whole, locally, with video mode, smoothing and the OpenPose
    export."""
    folder = tmp_path_factory.mktemp('whole')
    values = dict(light_models, input=str(SEGMENTED), det_interval=2,
                  smoothing=True, export_formats=['openpose'])
    whole = folder / 'whole.json'
    local = subprocess.run(
        _cli('--config', _config(folder, values, output=str(whole)),
             '--quiet'), env=dict(os.environ, OMP_NUM_THREADS='1'),
        capture_output=True, text=True, timeout=900)
    assert local.returncode == 0, local.stderr
    return values, json.loads(whole.read_text()), folder


def _left_of_stitching(folder) -> list:
    """Hidden files of the stitched result's but what its exports were
    made from: segment, temporary and partial files."""
    return [path for path in folder.glob('.stitched.json.*')
            if path.name != '.stitched.json.exports.json']


def _same_as_whole(stitched: dict, whole: dict) -> list:
    """Assert a stitched result equals the whole run but for
    ``meta.run``; return its segments."""
    assert [f['frame_index'] for f in stitched['frames']] == list(range(24))
    # The random test detector finds other boxes on detection frames than
    # video mode follows: people come and go, and ids must follow them.
    assert len({p['track_id'] for f in whole['frames']
                for p in f['persons']}) > 2
    assert stitched['frames'] == whole['frames']
    whole_meta, stitched_meta = dict(whole['meta']), dict(stitched['meta'])
    whole_meta.pop('run')
    segments = stitched_meta.pop('run')['segments']
    assert stitched_meta == whole_meta
    return segments


def _openpose_frames(folder: Path, name: str) -> list:
    """The OpenPose files of a result, in frame order."""
    files = sorted(folder.glob(f'{name}_*_keypoints.json'))
    assert len(files) == 24
    return [json.loads(file.read_text()) for file in files]


def test_segments_equal_a_whole_run(cluster, whole_segmented_run, tmp_path):
    """Three segments on two workers, stitched: the same frames, keypoints,
    track ids and smoothed keypoints as one whole local run (video mode
    too: cuts fall on detection frames), and the same OpenPose files. Each
    segment starts decoding near its first frame."""
    values, whole, whole_folder = whole_segmented_run
    stitched = tmp_path / 'stitched.json'
    config = _config(tmp_path, values, output=str(stitched),
                     executor='ray', ray_address=cluster.address,
                     workers=2, segment_s=2.0)  # 8 frames at 4 fps
    result = cluster.run(*_cli('--config', config))
    assert result.returncode == 0, result.stderr
    segments = _same_as_whole(json.loads(stitched.read_text()), whole)
    assert [s['frames'] for s in segments] == [[0, 8], [8, 16], [16, None]]
    assert len({s['worker'] for s in segments}) == 2
    assert not _left_of_stitching(tmp_path)  # segments removed
    assert _openpose_frames(tmp_path / 'stitched_json', 'stitched') == \
        _openpose_frames(whole_folder / 'whole_json', 'whole')


def test_segments_of_a_range_and_step_equal_a_whole_run(
        cluster, whole_segmented_run, tmp_path):
    """Frames 3..21, every 2nd, det_interval 2: three segments (1.5 s)
    from the range's first frame to its stop, each starting on a detection
    frame of a whole run (3, 11, 19: none a key frame, so each seeks),
    stitched: the records and meta of one whole local run with the same
    settings, and the same movement data."""
    values, _, _ = whole_segmented_run
    # With the movement chain: made from the stitched result, the same.
    values = dict(values, frame_range=[3, 21], frame_step=2,
                  export_formats=['trc'], interp_max_gap=2, hampel=True,
                  filter={'type': 'butterworth', 'cutoff_hz': 0.5},
                  person_height_m=1.7)
    whole = tmp_path / 'whole.json'
    local = subprocess.run(
        _cli('--config', _config(tmp_path, values, output=str(whole)),
             '--quiet'), env=dict(os.environ, OMP_NUM_THREADS='1'),
        capture_output=True, text=True, timeout=900)
    assert local.returncode == 0, local.stderr
    whole = json.loads(whole.read_text())
    stitched = tmp_path / 'stitched.json'
    config = _config(tmp_path, values, output=str(stitched),
                     executor='ray', ray_address=cluster.address,
                     workers=2, segment_s=1.5)  # 6 frames at 4 fps
    result = cluster.run(*_cli('--config', config))
    assert result.returncode == 0, result.stderr
    stitched = json.loads(stitched.read_text())
    assert [f['frame_index'] for f in stitched['frames']] == \
        list(range(3, 22, 2))
    assert any(f['persons'] for f in whole['frames'])
    assert stitched['frames'] == whole['frames']
    movement = [json.loads((tmp_path / f'{name}.movement' /
                            'movement.json').read_text())
                for name in ('whole', 'stitched')]
    assert movement[0]['tracks'] and \
        movement[0]['tracks'] == movement[1]['tracks']
    assert movement[0]['movement']['metres'] == \
        movement[1]['movement']['metres']
    whole['meta'].pop('run')
    segments = stitched['meta'].pop('run')['segments']
    assert stitched['meta'] == whole['meta']
    assert [s['frames'] for s in segments] == [[3, 11], [11, 19], [19, 22]]
    assert not _left_of_stitching(tmp_path)


def test_interrupted_segmented_run_resumes(cluster, whole_segmented_run,
                                           tmp_path):
    """One worker, interrupted once the first segment is finished (its
    file kept): --resume keeps it, analyses the rest and stitches a result
    equal to a whole run; --resume again finds the result up to date."""
    values, whole, _ = whole_segmented_run
    stitched = tmp_path / 'stitched.json'
    config = _config(tmp_path, values, output=str(stitched),
                     executor='ray', ray_address=cluster.address,
                     workers=1, segment_s=2.0)
    batch = cluster.popen(*_cli('--config', config), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    first = tmp_path / '.stitched.json.segment-001-of-003.json'
    deadline = time.monotonic() + 600
    while not first.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.exists(), 'the first segment was never finished'
    batch.send_signal(signal.SIGINT)
    _, stderr = batch.communicate(timeout=120)
    assert batch.returncode == 130, stderr
    assert not stitched.exists()
    kept_at = json.loads(first.read_text())['meta']['run']['finished_at']
    kept = len(list(tmp_path.glob('.stitched.json.segment-*-of-003.json')))
    result = cluster.run(*_cli('--config', config, '--resume'))
    assert result.returncode == 0, result.stderr
    # Frames of the kept segments were not analysed by this run.
    assert f'1 input(s) done: {24 - 8 * kept} frame(s)' in result.stdout, \
        result.stdout
    segments = _same_as_whole(json.loads(stitched.read_text()), whole)
    assert len(segments) == 3
    assert kept_at <= json.loads(stitched.read_text())['meta']['run'][
        'finished_at']
    again = cluster.run(*_cli('--config', config, '--resume'))
    assert again.returncode == 0, again.stderr
    assert '0 input(s) done, 1 up to date' in again.stdout
    assert not _left_of_stitching(tmp_path)


def test_resume_writes_formats_asked_for_since_a_stitched_result(
        cluster, whole_segmented_run, tmp_path):
    """A stitched result kept up to date by --resume gets the export
    formats asked for since, as a local run's result does."""
    values, whole, whole_folder = whole_segmented_run
    stitched = tmp_path / 'stitched.json'
    settings = dict(output=str(stitched), executor='ray',
                    ray_address=cluster.address, workers=2, segment_s=2.0)
    first = cluster.run(*_cli('--config', _config(
        tmp_path, dict(values, export_formats=[]), **settings)))
    assert first.returncode == 0, first.stderr
    assert not (tmp_path / 'stitched_json').exists()
    again = cluster.run(*_cli('--config', _config(tmp_path, values,
                                                  **settings), '--resume'))
    assert again.returncode == 0, again.stderr
    assert '0 input(s) done, 1 up to date' in again.stdout
    assert _openpose_frames(tmp_path / 'stitched_json', 'stitched') == \
        _openpose_frames(whole_folder / 'whole_json', 'whole')
    assert not _left_of_stitching(tmp_path)


@pytest.mark.parametrize('removed', [
    None, '.stitched.json.segment-001-of-003.json'])
def test_worker_killed_while_stitching_is_done_on_retry(
        cluster, whole_segmented_run, tmp_path, removed):
    """kill -9 of the stitching worker once the stitched result is
    published (its export under way), or once the first segment file is
    removed too: the retry stitches again from the segment files, or finds
    the result published; the input is done with its export, and nothing
    of the killed attempt is left (no segment, .partial or temporary file);
    no line of Ray's about the dead worker."""
    values, whole, whole_folder = whole_segmented_run
    # The OpenPose folder last, after four other exports: a window of
    # tens of ms between the result and its folder (one filesystem sync a
    # folder makes a folder quick to write).
    values = dict(values, export_formats=[
        'mmpose', 'coco', 'csv', 'pose2sim', 'openpose'])
    stitched = tmp_path / 'stitched.json'
    config = _config(tmp_path, values, output=str(stitched),
                     executor='ray', ray_address=cluster.address,
                     workers=1, segment_s=2.0)
    probe = cluster.popen(
        sys.executable, str(TESTS / 'ray_probe.py'), '--address',
        cluster.address, '--frames', '1', '--kill-when-exists', str(stitched),
        *(['--remove-first', str(tmp_path / removed)] if removed else []),
        stdout=subprocess.PIPE)
    result = cluster.run(*_cli('--config', config))
    killed = json.loads(probe.communicate(timeout=60)[0])
    assert 'stitched.json' in killed['beside'], killed
    assert 'stitched_json' not in killed['beside'], killed  # else: no test
    if removed:
        assert removed in killed['beside'], killed
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'attempt 2' in result.stdout
    assert 'worker died' not in result.stdout + result.stderr
    assert '\x1b[' not in result.stdout + result.stderr
    stitched_result = json.loads(stitched.read_text())
    _same_as_whole(stitched_result, whole)
    if not removed:  # stitched again by the next attempt
        assert stitched_result['meta']['run']['pid'] != killed['pid']
    assert _openpose_frames(tmp_path / 'stitched_json', 'stitched') == \
        _openpose_frames(whole_folder / 'whole_json', 'whole')
    # Hidden: only what each export was made from.
    assert sorted(path.name for path in tmp_path.iterdir()
                  if path.name.startswith('.')) == [
        '.stitched.json.exports.json'], list(tmp_path.iterdir())


@pytest.mark.parametrize('signal_number', [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_the_workers_and_keeps_the_partial(
        cluster, light_models, inputs, local_results, tmp_path,
        signal_number):
    """Ctrl-C, or SIGTERM (as Slurm and systemd stop jobs), whose handler
    ray.init replaces: the one line, exit 128 + the signal, no line of
    Ray's, the worker gone, the partial file resumable."""
    out, config = _one_video_on_one_worker(cluster, light_models, inputs,
                                           tmp_path)
    probe = _probe(cluster)
    batch = cluster.popen(*_cli('--config', config), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    worker = json.loads(probe.communicate(timeout=600)[0])
    batch.send_signal(signal_number)
    _, stderr = batch.communicate(timeout=120)
    assert batch.returncode == 128 + signal_number, stderr
    assert all(line.startswith(('error:', 'warning:'))
               for line in stderr.splitlines()), stderr
    assert 'interrupted; the Ray workers were stopped' in stderr
    assert '--resume' in stderr
    deadline = time.monotonic() + 30
    while alive(worker['pid']) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(worker['pid']), 'the Ray worker outlived Ctrl-C'
    partial = out / '.street_5frames.mp4.json.partial'
    assert partial.exists() and not (out / 'street_5frames.mp4.json').exists()
    result = cluster.run(*_cli('--config', config, '--resume'))
    assert result.returncode == 0, result.stderr
    run = _same_as_local(out / 'street_5frames.mp4.json', local_results)
    assert run['resumed_from_frame'] >= 2


@pytest.mark.parametrize('values, words', [
    ({'ray_address': '127.0.0.1:6999'}, ['cannot reach', '127.0.0.1:6999']),
    ({'workers': 0}, ['workers', 'got 0']),
    ({'gpus_per_worker': 1}, ['gpus_per_worker', 'no GPU']),
    ({'device': 'cuda'}, ['device is cuda', 'no GPU']),
    # 2 CPUs on the head and 1 on the other node: one 2-thread worker fits.
    ({'workers': 2, 'threads_per_worker': 2},
     ['2 workers of 2 CPU(s) each do not fit', 'holds 1']),
    ({'threads_per_worker': 3}, ['no Ray node can hold a worker of 3']),
])
def test_bad_cluster_settings_one_line_nothing_written(
        cluster, light_models, inputs, tmp_path, values, words):
    out = tmp_path / 'out'
    config = _config(tmp_path, light_models, **{
        'input': str(inputs), 'output': str(out), 'executor': 'ray',
        'ray_address': cluster.address, **values})
    started = time.monotonic()
    result = cluster.run(*_cli('--config', config), timeout=300)
    assert_one_line_error(result, *words)
    assert time.monotonic() - started < 120
    assert not out.exists() or not list(out.iterdir())


def _listener(cluster, port: int, *args):
    """A TCP server in the cluster's namespace: ``http.server``, or with
    ``'silent'`` one that accepts and never answers; returns it once it
    listens (its stdout: a line per connection accepted)."""
    script = TESTS / 'silent_listener.py'
    command = [sys.executable, str(script), str(port)] if args == (
        'silent',) else [sys.executable, '-m', 'http.server', '--bind',
                         '127.0.0.1', str(port)]
    server = cluster.popen(*command, stdout=subprocess.PIPE, text=True)
    check = ('import socket, time\n'
             'for _ in range(100):\n'
             '    try:\n'
             f'        socket.create_connection(("127.0.0.1", {port})).close()'
             '\n        break\n'
             '    except OSError:\n'
             '        time.sleep(0.1)\n')
    if args != ('silent',):
        assert cluster.run(sys.executable, '-c', check).returncode == 0
    return server


def test_address_of_another_server_is_one_line_within_seconds(
        cluster, light_models, inputs, tmp_path):
    """ray_address where an HTTP server listens: one line naming the
    address within seconds, not Ray's minutes of retries."""
    server = _listener(cluster, 8765)
    try:
        config = _config(tmp_path, light_models, input=str(inputs),
                         output=str(tmp_path / 'out'), executor='ray',
                         ray_address='127.0.0.1:8765')
        started = time.monotonic()
        result = cluster.run(*_cli('--config', config), timeout=60)
        assert_one_line_error(result, '127.0.0.1:8765', 'not a Ray')
        assert time.monotonic() - started < 30
    finally:
        server.kill()
        server.wait()
    assert not (tmp_path / 'out').exists()


def test_interrupt_while_joining_says_no_worker_had_started(
        cluster, light_models, inputs, tmp_path):
    """Ctrl-C while the run is still joining the cluster (here an address
    that accepts and never answers): the line does not say that workers
    were stopped, since none had started."""
    server = _listener(cluster, 8766, 'silent')
    try:
        assert server.stdout.readline().strip() == 'listening'
        config = _config(tmp_path, light_models, input=str(inputs),
                         output=str(tmp_path / 'out'), executor='ray',
                         ray_address='127.0.0.1:8766')
        batch = cluster.popen(*_cli('--config', config),
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == 'accepted'
        batch.send_signal(signal.SIGINT)
        _, stderr = batch.communicate(timeout=60)
    finally:
        server.kill()
        server.wait()
    assert batch.returncode == 130, stderr
    assert stderr.splitlines() == [
        'error: interrupted before any Ray worker started; no output '
        'written'], stderr


def test_dead_node_its_input_resumes_on_the_other(
        cluster, light_models, inputs, local_results, tmp_path):
    """Last in this file: the second node stays dead."""
    out = tmp_path / 'out'
    config = _config(tmp_path, light_models, input=str(inputs),
                     output=str(out), executor='ray',
                     ray_address=cluster.address, workers=2)
    probe = _probe(cluster, '--on-node-with', 'second_node')
    batch = cluster.popen(*_cli('--config', config), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    on_node2 = json.loads(probe.communicate(timeout=600)[0])
    cluster.kill_node2()
    stdout, stderr = batch.communicate(timeout=600)
    assert batch.returncode == 0, stderr
    runs = {path.name: _same_as_local(path, local_results)
            for path in _results(out)}
    assert len(runs) == 3
    moved = [run for run in runs.values() if run['attempts'] == 2]
    assert len(moved) == 1, runs
    assert moved[0]['node_id'] != on_node2['node_id']
    assert moved[0]['resumed_from_frame'] >= on_node2['frames'] >= 2


def test_interrupted_folder_resumes_only_what_was_left(
        cluster, tiny_models, tiny_photos, tmp_path):
    """200 photos on 2 workers, interrupted once at least 100 results are
    written: --resume keeps those (untouched) and analyses the rest;
    --resume of the finished batch analyses nothing."""
    out = tmp_path / 'out'
    config = _config(tmp_path, tiny_models, input=str(tiny_photos),
                     output=str(out), executor='ray',
                     ray_address=cluster.address, workers=2)
    batch = cluster.popen(*_cli('--config', config), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while len(_results(out)) < 100 and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    batch.send_signal(signal.SIGINT)
    _, stderr = batch.communicate(timeout=120)
    assert batch.returncode == 130, stderr
    kept = {p.name: p.stat().st_mtime_ns for p in _results(out)}
    assert 100 <= len(kept) < 200, len(kept)
    result = cluster.run(*_cli('--config', config, '--resume'))
    assert result.returncode == 0, result.stderr
    assert f'{200 - len(kept)} input(s) done, {len(kept)} up to date' \
        in result.stdout, result.stdout
    assert {name: (out / name).stat().st_mtime_ns for name in kept} == kept
    assert len(_results(out)) == 200
    started = time.monotonic()
    again = cluster.run(*_cli('--config', config, '--resume', '--quiet'))
    print(f'--resume of 200 finished inputs on Ray: '
          f'{time.monotonic() - started:.1f} s')
    assert again.returncode == 0, again.stderr
    assert len(_results(out)) == 200


@pytest.mark.ray
def test_private_ray_of_its_own(light_models, inputs, local_results,
                                tmp_path):
    """ray_address "" (the default): a Ray of the run's own, with a token,
    joined by no one, gone afterwards; the result equals the local one."""
    from ray_cluster import namespace_pids
    out = tmp_path / 'out'
    photo = inputs / Path(COCO_IMAGES[0]).name
    config = _config(tmp_path, light_models, input=str(photo),
                     output=str(out), executor='ray', workers=1)
    with network_namespace('pose-suite-private') as ns:
        result = subprocess.run(
            ['ip', 'netns', 'exec', ns, *_cli('--config', config)],
            capture_output=True, text=True, timeout=600,
            env={k: v for k, v in os.environ.items()
                 if not k.startswith('RAY_')})
        left = namespace_pids(ns)
    assert result.returncode == 0, result.stderr
    assert not left, f'processes left in the namespace: {left}'
    assert result.stderr == '', result.stderr  # no line of Ray's
    # One input: no summary files, as in a local run.
    assert [p.name for p in out.iterdir()] == [photo.name + '.json']
    run = _same_as_local(out / (photo.name + '.json'), local_results)
    assert run['executor'] == 'ray' and run['attempts'] == 1


def test_worker_whose_models_cannot_be_built_is_one_line(
        cluster, light_models, inputs, tmp_path):
    bad = tmp_path / 'no_such_model.py'
    bad.write_text(f"_base_ = '{light_models['pose_config']}'\n"
                   "model = dict(type='NoSuchPoseModel')\n")
    out = tmp_path / 'out'
    config = _config(tmp_path, light_models, pose_config=str(bad),
                     input=str(inputs), output=str(out), executor='ray',
                     ray_address=cluster.address, workers=1)
    result = cluster.run(*_cli('--config', config), timeout=300)
    assert_one_line_error(result, 'cannot build the model',
                          'no_such_model.py')
    assert not out.exists() or not list(out.iterdir())


def test_wrong_token_is_one_line_naming_it(cluster, light_models, inputs,
                                           tmp_path):
    config = _config(tmp_path, light_models, input=str(inputs),
                     output=str(tmp_path / 'out'), executor='ray',
                     ray_address=cluster.address)
    started = time.monotonic()
    result = subprocess.run(
        ['ip', 'netns', 'exec', cluster.ns, *_cli('--config', config)],
        env=dict(cluster.env, RAY_AUTH_TOKEN='0' * 64), capture_output=True,
        text=True, timeout=300)
    assert_one_line_error(result, 'token', cluster.address)
    assert time.monotonic() - started < 60


def test_without_root_these_tests_skip_with_their_reason():
    """As a user who is not root (``unshare --user``): every test of this
    file is skipped, the reason shown, and pytest succeeds."""
    result = subprocess.run(
        ['unshare', '--user', sys.executable, '-m', 'pytest', '-q', '-rs',
         '-p', 'no:cacheprovider', str(Path(__file__))],
        capture_output=True, text=True, timeout=300, cwd='/tmp')
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Ray tests need root' in result.stdout, result.stdout
    assert ' passed' not in result.stdout and ' failed' not in result.stdout
