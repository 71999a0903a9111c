"""More inputs: folders, globs, list files, streams (pose_suite.sources and
the CLI)."""
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import (COCO_IMAGES, ROOT, data_file, real_frames, run_cli,
                      serve_folder, write_avi)
from pose_suite.errors import InputError
from pose_suite.sources import expand_inputs, is_stream, open_source


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / 'photos'
    folder.mkdir()
    for name in COCO_IMAGES[:2]:
        shutil.copy(data_file(name), folder)
    return folder


def test_expand_folder_glob_and_list(photos, tmp_path):
    names = sorted(p.name for p in photos.iterdir())
    assert [p.name for p in expand_inputs(photos)] == names
    (photos / '.hidden.jpg').write_text('x')
    assert [p.name for p in expand_inputs(photos)] == names
    assert [p.name for p in expand_inputs(str(photos / '*40083.jpg'))] == \
        ['000000040083.jpg']
    listing = tmp_path / 'list.txt'
    listing.write_text(f'# my clips\nphotos/{names[1]}\n\n{photos / names[0]}'
                       '\nrtsp://camera.local/stream\n')
    assert expand_inputs(listing) == [photos / names[1], photos / names[0],
                                      'rtsp://camera.local/stream']
    assert expand_inputs('0') == ['0'] and is_stream('0')
    with pytest.raises(InputError, match='no file matches'):
        expand_inputs(str(tmp_path / '*.mov'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(InputError, match='no file to analyse'):
        expand_inputs(empty)


def test_folder_cli_writes_one_json_each_and_lists_failures(
        photos, config_values, write_config, tmp_path):
    (photos / 'notes.jpg').write_text('not a picture')
    out = tmp_path / 'results'
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--input', photos,
                     '--output', out)
    assert result.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ['000000000785.json',
                                                     '000000040083.json']
    lines = result.stderr.splitlines()
    assert lines[0].startswith('warning: ') and 'notes.jpg' in lines[0]
    assert lines[-1] == ('error: 1 of 3 input(s) failed (listed above); the '
                         'others were written')
    assert '[1/3] 000000000785.jpg' in result.stdout
    for path in out.iterdir():
        assert json.loads(path.read_text())['meta']['kind'] == 'image'


def test_glob_cli(photos, config_values, write_config, tmp_path):
    out = tmp_path / 'results'
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--input',
                     str(photos / '*.jpg'), '--output', out, '--quiet')
    assert result.returncode == 0, result.stderr
    assert result.stdout == ''
    assert len(list(out.iterdir())) == 2


@pytest.fixture
def served_clip(tmp_path):
    """A real 6-frame MJPEG clip served on 127.0.0.1; yields its URL."""
    folder = tmp_path / 'served'
    folder.mkdir()
    write_avi(folder / 'clip.avi', real_frames(6))
    with serve_folder(folder) as base:
        yield f'{base}/clip.avi'


def test_stream_url(served_clip, analysis_service, tmp_path):
    source = open_source(served_clip)
    assert source.kind == 'stream' and (source.width, source.height) == \
        (480, 270)
    output = analysis_service.run(served_clip, tmp_path)
    assert output == tmp_path / 'stream.json'
    result = json.loads(output.read_text())
    assert result['meta']['kind'] == 'stream'
    assert result['meta']['source'] == served_clip
    assert [f['frame_index'] for f in result['frames']] == list(range(6))


def test_ctrl_c_ends_a_stream_with_valid_json(served_clip, config_values,
                                              write_config, tmp_path):
    config = write_config({**config_values, 'input': served_clip,
                           'output': str(tmp_path / 'live')})
    process = subprocess.Popen(
        [sys.executable, str(ROOT / 'pose_analysis_service.py'), '--config',
         str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT)
    partial = tmp_path / 'live' / '.stream.json.partial'
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if partial.exists() and partial.read_text().count(
                '"frame_index"') >= 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    result = json.loads((tmp_path / 'live' / 'stream.json').read_text())
    assert 2 <= len(result['frames']) < 6
    assert 'stream.json' in stdout
