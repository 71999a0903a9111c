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
import tempfile
import time
from pathlib import Path

import pytest

from conftest import COCO_IMAGES, ROOT, assert_one_line_error, data_file

PORT = 6379  # the namespace's own port space
TESTS = Path(__file__).resolve().parent


def why_no_network_namespace():
    """Why a loopback-only network namespace cannot be made here (None when
    it can): Ray must never reach past loopback, so without one these tests
    do not run."""
    if os.geteuid() != 0:
        return 'Ray tests need root, for a loopback-only network namespace'
    if shutil.which('ip') is None:
        return 'Ray tests need `ip` (iproute2) for a network namespace'
    name = f'pose-suite-check-{os.getpid()}'
    made = subprocess.run(['ip', 'netns', 'add', name], capture_output=True,
                          text=True)
    if made.returncode != 0:
        return ('Ray tests need a network namespace, and `ip netns add` '
                f'failed: {made.stderr.strip()[:200]}')
    subprocess.run(['ip', 'netns', 'delete', name], capture_output=True)
    return None


_NO_NAMESPACE = why_no_network_namespace()
pytestmark = pytest.mark.skipif(_NO_NAMESPACE is not None,
                                reason=_NO_NAMESPACE or '')


def _sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check)


def _processes():
    """(pid, parent pid, command line) of every process (from /proc)."""
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
            cmdline = (entry / 'cmdline').read_bytes().replace(b'\0', b' ')
        except OSError:
            continue  # ended meanwhile
        parent = int(stat.rsplit(')', 1)[1].split()[1])
        yield int(entry.name), parent, cmdline.decode(errors='replace')


def _command_lines() -> dict:
    return {pid: cmdline for pid, _, cmdline in _processes()}


def _descendants(pid: int) -> list:
    children = {}
    for child, parent, _ in _processes():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Cluster:
    """A Ray head (2 CPUs) and a second node (1 CPU, resource
    ``second_node``) in the network namespace ``ns``."""

    def __init__(self, ns: str, env: dict, temp_dir: str):
        self.ns, self.env, self.temp_dir = ns, env, temp_dir
        self.address = f'127.0.0.1:{PORT}'
        ray = str(Path(sys.executable).parent / 'ray')
        common = ['--node-ip-address=127.0.0.1', '--disable-usage-stats',
                  '--block']
        self.head = self.popen(
            ray, 'start', '--head', f'--port={PORT}', '--num-cpus=2',
            '--include-dashboard=false', f'--temp-dir={temp_dir}', *common)
        self.wait_for_cpus(2)
        self.node2 = self.popen(
            ray, 'start', f'--address={self.address}', '--num-cpus=1',
            '--resources={"second_node": 1}', *common)
        self.wait_for_cpus(3)

    def popen(self, *args, **kwargs):
        kwargs.setdefault('stdout', subprocess.DEVNULL)
        kwargs.setdefault('stderr', subprocess.DEVNULL)
        return subprocess.Popen(['ip', 'netns', 'exec', self.ns, *args],
                                env=self.env, start_new_session=True,
                                **kwargs)

    def run(self, *args, timeout=900):
        return subprocess.run(['ip', 'netns', 'exec', self.ns, *args],
                              env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def wait_for_cpus(self, cpus: int) -> None:
        script = ('import ray; ray.init(address="%s", logging_level="ERROR");'
                  'print(ray.cluster_resources().get("CPU", 0))'
                  % self.address)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            result = self.run(sys.executable, '-c', script, timeout=120)
            if result.returncode == 0 and \
                    float(result.stdout.split()[-1]) >= cpus:
                return
            time.sleep(1)
        raise RuntimeError(f'the test cluster did not reach {cpus} CPUs')

    def kill_node2(self) -> None:
        """The second node dies at once: its ``ray start``, raylet and
        worker processes get SIGKILL."""
        for pid in [self.node2.pid, *_descendants(self.node2.pid)]:
            os.kill(pid, signal.SIGKILL)
        self.node2.wait()


@pytest.fixture(scope='module')
def cluster():
    ns = f'pose-suite-test-{os.getpid()}'
    _sh('ip', 'netns', 'add', ns)
    temp_dir = tempfile.mkdtemp(prefix='rt', dir='/tmp')  # short: sockets
    env = dict(os.environ, RAY_AUTH_MODE='token',
               RAY_AUTH_TOKEN=secrets.token_hex(32), OMP_NUM_THREADS='1')
    started = None
    try:
        _sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up')
        started = Cluster(ns, env, temp_dir)
        yield started
    finally:
        for process in (started.node2, started.head) if started else ():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # a clean `ray stop`
        for process in (started.node2, started.head) if started else ():
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left in the namespace was started by these tests.
        left = _sh('ip', 'netns', 'pids', ns, check=False).stdout.split()
        for pid in left:
            _sh('kill', '-9', pid, check=False)
        time.sleep(1)
        _sh('ip', 'netns', 'delete', ns, check=False)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not any(temp_dir in cmdline for cmdline in
                       _command_lines().values()), \
            'a Ray process of the tests outlived them'


@pytest.fixture(scope='module')
def light_models(model_files, tmp_path_factory):
    """The test checkpoints, the pose model without flip test."""
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
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.name for p in local_results.glob('*.json'))
    runs = [_same_as_local(out / name, local_results) for name in written]
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
    assert [p.name for p in out.iterdir()] == [
        Path(COCO_IMAGES[1]).name + '.json']


def test_segments_equal_a_whole_run(cluster, light_models, tmp_path):
    """Three segments on two workers, stitched: the same frames, keypoints,
    track ids and smoothed keypoints as one whole local run (video mode
    too: cuts fall on detection frames)."""
    video = TESTS / 'data' / 'two_people_24frames_270p.mp4'
    values = dict(light_models, input=str(video), det_interval=2,
                  smoothing=True)
    whole = tmp_path / 'whole.json'
    local = subprocess.run(
        _cli('--config', _config(tmp_path, values, output=str(whole)),
             '--quiet'), env=dict(os.environ, OMP_NUM_THREADS='1'),
        capture_output=True, text=True, timeout=900)
    assert local.returncode == 0, local.stderr
    stitched = tmp_path / 'stitched.json'
    config = _config(tmp_path, values, output=str(stitched),
                     executor='ray', ray_address=cluster.address,
                     workers=2, segment_s=0.25)  # 8 frames at 30 fps
    result = cluster.run(*_cli('--config', config))
    assert result.returncode == 0, result.stderr
    whole, stitched = (json.loads(p.read_text()) for p in (whole, stitched))
    segments = stitched['meta']['run']['segments']
    assert [s['frames'] for s in segments] == [[0, 8], [8, 16], [16, None]]
    assert len({s['worker'] for s in segments}) == 2
    assert [f['frame_index'] for f in stitched['frames']] == list(range(24))
    # The random test detector finds other boxes on detection frames than
    # video mode follows: people come and go, and ids must follow them.
    assert len({p['track_id'] for f in whole['frames']
                for p in f['persons']}) > 2
    assert stitched['frames'] == whole['frames']
    stitched['meta'].pop('run'), whole['meta'].pop('run')
    assert stitched['meta'] == whole['meta']
    assert not list(tmp_path.glob('.stitched.json.*'))  # segments removed


def _alive(pid: int) -> bool:
    try:
        state = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return False
    return state.rsplit(')', 1)[1].split()[0] != 'Z'


def test_ctrl_c_stops_the_workers_and_keeps_the_partial(
        cluster, light_models, inputs, local_results, tmp_path):
    out, config = _one_video_on_one_worker(cluster, light_models, inputs,
                                           tmp_path)
    probe = _probe(cluster)
    batch = cluster.popen(*_cli('--config', config), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    worker = json.loads(probe.communicate(timeout=600)[0])
    batch.send_signal(signal.SIGINT)
    _, stderr = batch.communicate(timeout=120)
    assert batch.returncode == 130, stderr
    assert 'interrupted; the Ray workers were stopped' in stderr
    assert '--resume' in stderr
    deadline = time.monotonic() + 30
    while _alive(worker['pid']) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(worker['pid']), 'the Ray worker outlived Ctrl-C'
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
])
def test_bad_cluster_settings_one_line_nothing_written(
        cluster, light_models, inputs, tmp_path, values, words):
    out = tmp_path / 'out'
    config = _config(tmp_path, light_models, **{
        'input': str(inputs), 'output': str(out), 'executor': 'ray',
        'ray_address': cluster.address, **values})
    result = cluster.run(*_cli('--config', config), timeout=300)
    # Ray's core logs this line where the machine has no route out, as in
    # the tests' namespace; it is not the suite's to print or to hide.
    result.stderr = '\n'.join(line for line in result.stderr.splitlines()
                              if 'network_util.cc' not in line)
    assert_one_line_error(result, *words)
    assert not out.exists() or not list(out.iterdir())


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
            for path in out.glob('*.json')}
    assert len(runs) == 3
    moved = [run for run in runs.values() if run['attempts'] == 2]
    assert len(moved) == 1, runs
    assert moved[0]['node_id'] != on_node2['node_id']
    assert moved[0]['resumed_from_frame'] >= on_node2['frames'] >= 2
