"""Weight download (pose_suite.models.weights) against a local HTTP server."""
import hashlib
import os
import socket
import subprocess
import sys

import pytest
from conftest import ROOT, assert_one_line_error, run_cli, serve_folder

from pose_suite.errors import DownloadError
from pose_suite.models.checkpoints import expected_sha256_prefix
from pose_suite.models.weights import WEIGHT_URLS, download


@pytest.fixture
def http_folder(tmp_path):
    """Serve ``tmp_path/served`` on 127.0.0.1; yields (folder, base URL)."""
    served = tmp_path / 'served'
    served.mkdir()
    with serve_folder(served) as base:
        yield served, base


def _published(folder, content: bytes, stem='model', date=''):
    """Write ``content`` as <stem>-<sha256[:8]><date>.pth; return the name."""
    prefix = hashlib.sha256(content).hexdigest()[:8]
    name = f'{stem}-{prefix}{date}.pth'
    (folder / name).write_bytes(content)
    return name


def test_known_urls_carry_their_hash_prefix():
    assert [expected_sha256_prefix(u.rsplit('/', 1)[1])
            for u in WEIGHT_URLS] == ['235e8209', 'f5726563']


def test_download_verifies_and_places_file(http_folder, tmp_path):
    served, base = http_folder
    content = b'weights' * 300_000  # 2.1 MB, several chunks
    name = _published(served, content, date='_20200918')
    path = download(f'{base}/{name}', tmp_path / 'dest', chunk_size=65536)
    assert path == tmp_path / 'dest' / name
    assert path.read_bytes() == content
    assert not list((tmp_path / 'dest').glob('*.part'))


def test_existing_verified_file_is_not_downloaded_again(http_folder,
                                                        tmp_path):
    served, base = http_folder
    name = _published(served, b'abc' * 1000)
    dest = tmp_path / 'dest'
    download(f'{base}/{name}', dest)
    (served / name).unlink()  # a second download would now fail
    assert download(f'{base}/{name}', dest).read_bytes() == b'abc' * 1000


def test_checksum_mismatch_is_refused(http_folder, tmp_path):
    served, base = http_folder
    (served / 'model-00000000.pth').write_bytes(b'not the real weights')
    dest = tmp_path / 'dest'
    with pytest.raises(DownloadError, match='SHA-256 starts with'):
        download(f'{base}/model-00000000.pth', dest)
    assert list(dest.iterdir()) == []


def test_missing_file_on_server(http_folder, tmp_path):
    _, base = http_folder
    dest = tmp_path / 'dest'
    with pytest.raises(DownloadError, match='404'):
        download(f'{base}/absent-12345678.pth', dest)
    assert list(dest.iterdir()) == []


def _closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_offline_cli_gives_one_clear_line(tmp_path):
    base = f'http://127.0.0.1:{_closed_port()}'
    result = run_cli('pose_suite.models.weights', '--dest', tmp_path,
                     '--base-url', base, '--timeout', '5')
    first = WEIGHT_URLS[0].rsplit('/', 1)[1]
    assert_one_line_error(result, f'{base}/{first}', 'by hand',
                          str(tmp_path / first))
    assert list(tmp_path.iterdir()) == []


def test_cli_downloads_both_files_from_a_mirror(http_folder, tmp_path):
    """The real names cannot be matched by made-up content, so the mirror's
    files are refused by their checksum: proves the names are verified."""
    served, base = http_folder
    for url in WEIGHT_URLS:
        (served / url.rsplit('/', 1)[1]).write_bytes(b'fake')
    dest = tmp_path / 'dest'
    result = run_cli('pose_suite.models.weights', '--dest', dest, '--base-url', base)
    assert_one_line_error(result, '235e8209', 'refusing')
    assert list(dest.iterdir()) == []


def test_cli_completes_a_two_file_download(http_folder, tmp_path,
                                           monkeypatch, capsys):
    """The command's loop over both files, to the end: two published-style
    names whose prefixes match their content, both verified and placed."""
    import pose_suite.models.weights as weights
    served, base = http_folder
    names = [_published(served, b'detector weights', 'rtmdet_m'),
             _published(served, b'pose weights', 'hrnet_w48', '_20200918')]
    monkeypatch.setattr(weights, 'WEIGHT_URLS', tuple(
        f'https://example.invalid/{name}' for name in names))
    dest = tmp_path / 'dest'
    assert weights.main(['--dest', str(dest), '--base-url', base]) == 0
    assert sorted(p.name for p in dest.iterdir()) == sorted(names)
    assert (dest / names[1]).read_bytes() == b'pose weights'
    assert capsys.readouterr().out.splitlines() == [
        f'ok: {dest / name}' for name in names]


def test_default_folder_is_the_projects_config_files(monkeypatch, capsys):
    """Without --dest the weights land in the project's config_files/, where
    config.json's default paths look (`make weights` passes --dest; a user
    running the module by hand does not)."""
    import pose_suite.models.weights as weights
    from conftest import ROOT
    placed = []
    monkeypatch.setattr(weights, 'download',
                        lambda url, dest, **kw: placed.append(dest) or dest)
    assert weights.main([]) == 0
    assert placed == [ROOT / 'config_files'] * len(WEIGHT_URLS)
    assert (ROOT / 'config_files' / 'rtmdet_m_640-8xb32_coco-person.py').is_file()


def test_default_folder_does_not_depend_on_the_current_one(tmp_path):
    """Run by hand from another folder (the project importable, as after
    ``pip install -e .``), offline and without --dest: the one-line error
    names the project's config_files/ as where the file goes, not the
    current folder's, and nothing is written there."""
    base = f'http://127.0.0.1:{_closed_port()}'
    result = subprocess.run(
        [sys.executable, '-m', 'pose_suite.models.weights', '--base-url',
         base, '--timeout', '5'], cwd=tmp_path, capture_output=True,
        text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    first = WEIGHT_URLS[0].rsplit('/', 1)[1]
    assert_one_line_error(result, f'{base}/{first}',
                          str(ROOT / 'config_files' / first))
    assert list(tmp_path.iterdir()) == []
