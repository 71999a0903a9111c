"""A machine without internet: ``make wheelhouse`` on this (connected)
machine, then ``make install WHEELHOUSE=DIR`` into a new virtual
environment inside a network namespace with only ``lo`` up, where no
package index can be reached; ``make weights WEIGHTS_FROM=DIR`` copies
the checkpoints from a folder with their hashes checked.

The wheelhouse holds mmcv's wheel as ``make install`` built it here (from
this kind of build's pip cache, no rebuild). About 2 minutes: the wheels
are 480 MB, torch's among them.
"""
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, assert_one_line_error, run_cli
from ray_cluster import network_namespace

from pose_suite.models.weights import WEIGHT_URLS

pytestmark = [pytest.mark.install, pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which('ip'),
    reason='the offline install runs in a loopback-only network namespace '
           '(`ip netns`), which needs root')]

#: The imports `make install` checks, and what evaluation needs.
IMPORTS = ('import mmcv.ops, mmdet, mmpose, mmengine, xtcocotools.mask, '
           'torch, cv2, openvino, onnxruntime, onnx, detection_service, '
           'pose_extraction_service')


#: pip without this machine's own configuration (its local wheel folders
#: and indexes), giving up at once on what it cannot reach.
OFFLINE_PIP = {**os.environ, 'PIP_CONFIG_FILE': os.devnull,
               'PIP_DEFAULT_TIMEOUT': '5', 'PIP_RETRIES': '0'}


def _make(*args, **kwargs):
    return subprocess.run(['make', '-C', str(ROOT), *args],
                          capture_output=True, text=True, **kwargs)


@pytest.fixture(scope='module')
def wheelhouse(tmp_path_factory):
    """`make wheelhouse` into a temporary folder (needs the package index,
    as on the connected machine a user runs it on)."""
    folder = tmp_path_factory.mktemp('wheelhouse')
    made = _make('wheelhouse', f'WHEELHOUSE={folder}', timeout=900)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    return folder


def test_make_install_from_a_wheelhouse_needs_no_index(wheelhouse, tmp_path):
    names = [path.name for path in wheelhouse.iterdir()]
    assert any(name.startswith('mmcv-2.1.0-') for name in names), names
    assert any(name.startswith('torch-2.13.0') for name in names), names
    for runtime in ('openvino-', 'onnxruntime-', 'onnx-'):  # fast mode's
        assert any(name.startswith(runtime) for name in names), names
    assert all(name.endswith('.whl') for name in names), names
    venv = tmp_path / 'venv'
    with network_namespace('pose-suite-offline') as ns:
        # No index is reachable from here: not even a name resolves.
        probe = subprocess.run(
            ['ip', 'netns', 'exec', ns, sys.executable, '-c',
             'import socket; socket.create_connection(("pypi.org", 443), 3)'],
            capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0
        installed = subprocess.run(
            ['ip', 'netns', 'exec', ns, 'make', '-C', str(ROOT), 'install',
             f'VENV={venv}', f'WHEELHOUSE={wheelhouse}'],
            capture_output=True, text=True, timeout=900, env=OFFLINE_PIP)
        assert installed.returncode == 0, \
            installed.stdout[-3000:] + installed.stderr[-3000:]
        imported = subprocess.run(
            ['ip', 'netns', 'exec', ns, str(venv / 'bin' / 'python'), '-c',
             IMPORTS], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert imported.returncode == 0, imported.stderr[-2000:]
    assert (venv / '.installed').is_file()


def test_a_wheelhouse_without_a_package_fails_offline(wheelhouse, tmp_path):
    """The install takes nothing from elsewhere: a wheelhouse that lacks
    one wheel (ninja, in the first pip line) fails at once, naming it."""
    partial = tmp_path / 'partial'
    shutil.copytree(wheelhouse, partial)
    for path in partial.glob('ninja-*.whl'):
        path.unlink()
    with network_namespace('pose-suite-offline') as ns:
        installed = subprocess.run(
            ['ip', 'netns', 'exec', ns, 'make', '-C', str(ROOT), 'install',
             f'VENV={tmp_path / "venv"}', f'WHEELHOUSE={partial}'],
            capture_output=True, text=True, timeout=900, env=OFFLINE_PIP)
    assert installed.returncode != 0
    assert 'ninja' in installed.stderr


def test_weights_from_a_folder_are_verified(tmp_path):
    """`make weights WEIGHTS_FROM=DIR`: a file whose content does not match
    the hash in its name is refused and not placed; a missing folder is
    one line."""
    source = tmp_path / 'from'
    source.mkdir()
    for url in WEIGHT_URLS:
        (source / url.rsplit('/', 1)[1]).write_bytes(b'not the weights')
    dest = tmp_path / 'dest'
    result = run_cli('pose_suite.models.weights', '--dest', dest,
                     '--from', source)
    assert_one_line_error(result, '235e8209', 'refusing')
    assert not dest.exists() or list(dest.iterdir()) == []
    result = run_cli('pose_suite.models.weights', '--dest', dest,
                     '--from', tmp_path / 'absent')
    assert_one_line_error(result, 'no such folder')


def test_weights_from_a_folder_are_copied(tmp_path, monkeypatch, capsys):
    """Both files copied when their hashes match their names."""
    import hashlib

    import pose_suite.models.weights as weights
    source = tmp_path / 'from'
    source.mkdir()
    names = []
    for stem, content in (('rtmdet_m', b'detector'), ('hrnet_w48', b'pose')):
        names.append(f'{stem}-{hashlib.sha256(content).hexdigest()[:8]}.pth')
        (source / names[-1]).write_bytes(content)
    monkeypatch.setattr(weights, 'WEIGHT_URLS', tuple(
        f'https://example.invalid/{name}' for name in names))
    dest = tmp_path / 'dest'
    assert weights.main(['--dest', str(dest), '--from', str(source)]) == 0
    assert (dest / names[0]).read_bytes() == b'detector'
    assert (dest / names[1]).read_bytes() == b'pose'
