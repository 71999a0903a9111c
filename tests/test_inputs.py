"""More inputs: folders, globs, list files, streams (pose_suite.media.sources and
the CLI)."""
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (BATCH_FILES, COCO_IMAGES, ROOT, assert_one_line_error,
                      data_file, real_frames, run_cli, serve_folder, write_avi)

from pose_suite.config.specs import is_stream, output_name
from pose_suite.errors import InputError, OutputError
from pose_suite.media.inputs import Inputs, expand_inputs
from pose_suite.media.sources import open_source


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / 'photos'
    folder.mkdir()
    for name in COCO_IMAGES[:2]:
        shutil.copy(data_file(name), folder)
    return folder


def test_expand_folder_glob_and_list(photos, tmp_path):
    names = sorted(p.name for p in photos.iterdir())
    assert [p.name for p in expand_inputs(photos).sources] == names
    (photos / '.hidden.jpg').write_text('x')
    assert [p.name for p in expand_inputs(photos).sources] == names
    assert [p.name for p in expand_inputs(
        str(photos / '*40083.jpg')).sources] == ['000000040083.jpg']
    listing = tmp_path / 'list.txt'
    listing.write_text(f'# my clips\nphotos/{names[1]}\n\n{photos / names[0]}'
                       '\nrtsp://camera.local/stream\n')
    assert expand_inputs(listing).sources == [
        photos / names[1], photos / names[0], 'rtsp://camera.local/stream']
    assert expand_inputs('0').sources == ['0'] and is_stream('0')
    with pytest.raises(InputError, match='no file matches'):
        expand_inputs(str(tmp_path / '*.mov'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(InputError, match='no file to analyse'):
        expand_inputs(empty)


def test_folder_cli_writes_one_json_each_and_lists_failures(
        photos, config_values, write_config, tmp_path):
    jpeg = data_file(COCO_IMAGES[0]).read_bytes()
    (photos / 'broken.jpg').write_bytes(jpeg[:600])  # a JPEG cut short
    (photos / 'notes.jpg').write_text('not a picture')  # text: skipped
    out = tmp_path / 'results'
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--input', photos,
                     '--output', out)
    assert result.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == sorted([
        '000000000785.jpg.json', '000000040083.jpg.json', *BATCH_FILES])
    lines = result.stderr.splitlines()
    assert lines[0] == 'warning: skipped 1 non-media file(s): notes.jpg'
    assert lines[1].startswith('warning: ') and 'broken.jpg' in lines[1]
    assert lines[-1].startswith(
        'error: 1 of 3 input(s) failed (listed above); the others were '
        'written (2 input(s) done, 1 failed: 2 frame(s), ')
    assert '[1/3] 000000000785.jpg' in result.stdout
    for path in out.glob('*.jpg.json'):
        assert json.loads(path.read_text())['meta']['kind'] == 'image'


def test_glob_cli(photos, config_values, write_config, tmp_path):
    out = tmp_path / 'results'
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--input',
                     str(photos / '*.jpg'), '--output', out, '--quiet')
    assert result.returncode == 0, result.stderr
    assert result.stdout == ''
    assert len(list(out.glob('*.jpg.json'))) == 2


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
    port = served_clip.split(':')[2].split('/')[0]
    assert output == tmp_path / f'stream-127.0.0.1_{port}_clip.avi.json'
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
    name = output_name(served_clip).name
    partial = tmp_path / 'live' / f'.{name}.partial'
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
    result = json.loads((tmp_path / 'live' / name).read_text())
    assert 2 <= len(result['frames']) < 6
    assert name in stdout


# --- real folders: nested, with non-media files, colliding names ------------

@pytest.fixture
def dataset(tmp_path):
    """A dataset as labs keep them: subject/session folders, two photos
    that share a name but not a format, notes, a subtitle file, an earlier
    result, Thumbs.db and .DS_Store, and a damaged clip."""
    import cv2
    root = tmp_path / 'dataset'
    session = root / 'subject1' / 'session1'
    session.mkdir(parents=True)
    shutil.copy(data_file(COCO_IMAGES[0]), session / 'clip.jpg')
    cv2.imwrite(str(session / 'clip.png'), cv2.imread(str(session /
                                                          'clip.jpg')))
    other = root / 'subject2' / 'session1'
    other.mkdir(parents=True)
    shutil.copy(data_file(COCO_IMAGES[1]), other / 'clip.jpg')
    shutil.copy(ROOT / 'tests' / 'data' / 'subtitles.srt',
                root / 'subject1' / 'notes.srt')
    (root / 'README.md').write_text('# Squat study\n\nTwo subjects.\n')
    (root / 'old_results.json').write_text('{"meta": {}, "frames": []}\n')
    (root / 'Thumbs.db').write_bytes(
        b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1' + bytes(500))
    (root / '.DS_Store').write_bytes(b'\x00\x00\x00\x01Bud1' + bytes(100))
    (root / '.git').mkdir()
    shutil.copy(data_file(COCO_IMAGES[2]), root / '.git' / 'x.jpg')
    (root / 'broken.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42'
                                      + bytes(range(256)) * 8)
    return root


def test_recursive_search_keeps_layout_and_skips_non_media(dataset):
    inputs = expand_inputs(dataset, recursive=True)
    assert [p.relative_to(dataset).as_posix() for p in inputs.sources] == [
        'broken.mp4', 'subject1/session1/clip.jpg',
        'subject1/session1/clip.png', 'subject2/session1/clip.jpg']
    assert sorted(p.name for p, _ in inputs.skipped) == [
        'README.md', 'Thumbs.db', 'notes.srt', 'old_results.json']
    out = Path('/results')
    assert [f.relative_to(out).as_posix() for f in
            inputs.output_files(out)] == [
        'broken.mp4.json', 'subject1/session1/clip.jpg.json',
        'subject1/session1/clip.png.json', 'subject2/session1/clip.jpg.json']
    flat = expand_inputs(dataset)
    assert [p.name for p in flat.sources] == ['broken.mp4']
    assert len(flat.skipped) == 3
    pattern = expand_inputs(str(dataset / '**' / 'clip.*'))
    assert pattern.base == dataset and len(pattern.sources) == 3
    assert pattern.output_files(out) == inputs.output_files(out)[1:]
    with pytest.raises(InputError, match='--recursive'):
        expand_inputs(dataset / 'subject1')


def test_nested_dataset_cli(dataset, config_values, write_config, tmp_path):
    out = tmp_path / 'results'
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--input', dataset,
                     '--recursive', '--output', out)
    assert result.returncode == 1, result.stderr
    written = sorted(p.relative_to(out).as_posix()
                     for p in out.rglob('*')
                     if p.is_file() and p.name not in BATCH_FILES)
    assert written == ['subject1/session1/clip.jpg.json',
                       'subject1/session1/clip.png.json',
                       'subject2/session1/clip.jpg.json']
    sources = {json.loads((out / name).read_text())['meta']['source']
               for name in written}
    assert len(sources) == 3  # clip.jpg and clip.png: both kept
    lines = result.stderr.splitlines()
    assert lines[0] == ('warning: skipped 4 non-media file(s): README.md, '
                        'Thumbs.db, old_results.json, notes.srt')
    assert 'broken.mp4' in lines[1] and 'corrupt' in lines[1]
    assert lines[2].startswith('error: 1 of 4 input(s) failed')


def test_list_with_same_names_in_two_folders(dataset, tmp_path):
    listing = dataset / 'clips.txt'
    listing.write_text('subject1/session1/clip.jpg\n'
                       'subject2/session1/clip.jpg\n'
                       'subject2/session1/../session1/clip.jpg\n')
    with pytest.warns(UserWarning, match='more than once'):
        inputs = expand_inputs(listing)
    assert len(inputs.sources) == 2
    assert [f.relative_to(tmp_path).as_posix() for f in
            inputs.output_files(tmp_path)] == [
        'subject1/session1/clip.jpg.json', 'subject2/session1/clip.jpg.json']
    urls = Inputs(['rtsp://10.0.0.5/live', 'rtsp://10.0.0.6/live', '0'])
    assert [f.name for f in urls.output_files(tmp_path)] == [
        'stream-10.0.0.5_live.json', 'stream-10.0.0.6_live.json',
        'camera0.json']


def test_names_that_meet_are_refused_before_any_work(
        dataset, config_values, write_config, tmp_path):
    session = dataset / 'subject1' / 'session1'
    shutil.copy(session / 'clip.jpg', session / 'CLIP.jpg')
    with pytest.raises(OutputError, match='CLIP.jpg'):
        expand_inputs(session).output_files(tmp_path)
    out = tmp_path / 'results'
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--input', session,
                     '--output', out)
    assert_one_line_error(result, 'CLIP.jpg', 'clip.jpg', 'rename one')
    assert not out.exists()


def test_iter_frames_on_a_stream_url(served_clip, analysis_service):
    """iter_frames takes the same inputs as run (it once made http:// into
    http:/)."""
    frames = list(analysis_service.iter_frames(served_clip))
    assert [f['frame_index'] for f in frames] == list(range(6))
    assert all(len(f['persons']) > 0 for f in frames)


def test_unexpected_failure_of_one_input_does_not_stop_a_batch(
        photos, analysis_service, monkeypatch, tmp_path):
    """An exception that is no SuiteError (an OpenCV error on an odd file)
    is that input's failure, in one line; a failing export is reported and
    leaves its JSON in place; the other inputs are written."""
    import dataclasses

    import cv2

    import pose_suite.outputs.exports as exports
    import pose_suite.service.analyser as service_module
    names = sorted(p.name for p in photos.iterdir())
    real_open = service_module.open_source

    def open_source_failing_on_first(path):
        if str(path).endswith(names[0]):
            raise cv2.error('OpenCV(4.11.0) imgcodecs: something odd\nmore')
        return real_open(path)

    def csv_failing(*args):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(service_module, 'open_source',
                        open_source_failing_on_first)
    monkeypatch.setattr(exports, '_write_csv', csv_failing)
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, output=tmp_path / 'out',
        export_formats=('coco', 'csv')))
    photos_list = [photos / name for name in names]
    outputs, failures, skipped = analysis_service.run_many(photos_list)
    assert outputs == [] and skipped == []
    assert failures[0] == (str(photos_list[0]), 'cv2.error: OpenCV(4.11.0) '
                           'imgcodecs: something odd')
    path, reason = failures[1]
    assert path == str(photos_list[1])
    assert reason.startswith(f'{tmp_path / "out" / names[1]}.json was '
                             'written, but its csv export failed: OSError')
    written = sorted(p.name for p in (tmp_path / 'out').iterdir()
                     if p.name not in BATCH_FILES
                     and not p.name.startswith('.'))  # what made exports
    assert written == [f'{names[1]}.coco.json', f'{names[1]}.json']


@pytest.mark.parametrize('recursive', [False, True])
def test_a_fifo_in_a_folder_is_skipped_never_opened(photos, recursive):
    """A FIFO would block the search that reads each file's first bytes
    (a FIFO waits for a writer): it is skipped for what it is, from its
    stat alone."""
    import os
    import threading
    fifo = photos / 'camera_pipe.mp4'
    os.mkfifo(fifo)
    found = []
    search = threading.Thread(target=lambda: found.append(
        expand_inputs(photos, recursive=recursive)), daemon=True)
    search.start()
    search.join(20)
    if search.is_alive():  # let the blocked open go on, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        search.join(5)
    assert found, 'the folder search blocked on the FIFO'
    assert found[0].skipped == [(fifo, 'not a regular file (a FIFO)')]
    assert [p.name for p in found[0].sources] == sorted(
        name.split('/')[-1] for name in COCO_IMAGES[:2])


def test_two_inputs_planning_one_export_are_refused(tmp_path):
    """``p.jpg``'s angles export and ``p.jpg.angles``'s (a JPEG) csv are
    both ``p.jpg.angles.csv``: refused before any work, naming both; each
    format alone is fine."""
    from pose_suite.outputs.naming import output_files
    folder = tmp_path / 'in'
    folder.mkdir()
    shutil.copy(data_file(COCO_IMAGES[2]), folder / 'p.jpg')
    shutil.copy(data_file(COCO_IMAGES[2]), folder / 'p.jpg.angles')
    inputs = expand_inputs(folder)
    assert [p.name for p in inputs.sources] == ['p.jpg', 'p.jpg.angles']
    out = tmp_path / 'out'
    for formats in (['csv'], ['angles'], ['csv', 'coco', 'mmpose']):
        assert len(output_files(inputs, out, formats)) == 2
    with pytest.raises(OutputError) as refused:
        output_files(inputs, out, ['csv', 'angles'])
    assert str(refused.value) == (
        f'inputs {folder / "p.jpg"} and {folder / "p.jpg.angles"} would both '
        f'write {out / "p.jpg.angles.csv"} (as the angles export of one and '
        'the csv export of the other): rename one')


def test_empty_files_in_a_folder_are_not_counted(tmp_path):
    """An empty Thumbs.db or empty.txt in a folder is skipped when the
    folder is searched (not in the [n/N] total); an empty clip.mp4 stays an
    input (a failed one: an empty file); given alone, an empty file is
    still refused."""
    shutil.copy(data_file(COCO_IMAGES[2]), tmp_path / 'a.jpg')
    for name in ('Thumbs.db', 'empty.txt', 'clip.mp4'):
        (tmp_path / name).write_bytes(b'')
    inputs = expand_inputs(tmp_path)
    assert [p.name for p in inputs.sources] == ['a.jpg', 'clip.mp4']
    assert sorted((p.name, why) for p, why in inputs.skipped) == [
        ('Thumbs.db', 'an empty file'), ('empty.txt', 'an empty file')]
    with pytest.raises(InputError, match='empty file'):
        open_source(tmp_path / 'empty.txt')
    with pytest.raises(InputError, match='input is an empty file'):
        open_source(tmp_path / 'clip.mp4')


def test_list_lines_carry_their_own_range(tmp_path):
    """``PATH RANGE``: START-END seconds (either side open) or
    frames:FIRST-LAST; a line that as a whole names a file is that file;
    streams and cameras take a range too; no range: the config's."""
    for name in ('a.mp4', 'b.mp4', 'c.mp4', 'd.mp4', 'take 1-2', 'e.mp4'):
        (tmp_path / name).write_bytes(b'')
    listing = tmp_path / 'list.txt'
    listing.write_text('# clips, each cut its own way\n'
                       'a.mp4  12.5-30\n'
                       '\n'
                       'b.mp4\t90-\n'
                       'c.mp4 -30\n'
                       'd.mp4 FRAMES:300-899\n'
                       'take 1-2\n'             # a file with a space
                       'e.mp4\n'
                       'rtsp://camera.local/stream 5-10.5\n'
                       '0 frames:25-\n')
    inputs = expand_inputs(listing)
    assert inputs.sources == [tmp_path / name for name in (
        'a.mp4', 'b.mp4', 'c.mp4', 'd.mp4', 'take 1-2', 'e.mp4')] + [
        'rtsp://camera.local/stream', '0']

    def ranges(source):
        got = inputs.settings_for(source)
        return got and (got['time_range'], got['frame_range'])
    assert [ranges(source) for source in inputs.sources] == [
        ((12.5, 30.0), None), ((90.0, None), None), ((None, 30.0), None),
        (None, (300, 899)), {}, {}, ((5.0, 10.5), None), (None, (25, None))]
    # As a Ray unit names it, and a copy the caller may change.
    assert inputs.settings_for(str(tmp_path / 'a.mp4'))['time_range'] == \
        (12.5, 30.0)
    inputs.settings_for(tmp_path / 'a.mp4').clear()
    assert inputs.settings_for(tmp_path / 'a.mp4')


@pytest.mark.parametrize('line, words', [
    ('a.mp4 12.5-x', ["'12.5-x' is not a range", 'START-END in seconds',
                      'frames:FIRST-LAST']),
    ('a.mp4 30-12.5', ['time_range ends before it starts']),
    ('a.mp4 1e400-', ['time_range must be null or [start, end] in seconds']),
    ('a.mp4 frames:1.5-9', ['frame_range must be', 'whole']),
    ('a.mp4 frames:9-3', ['frame_range ends before it starts']),
    ('a.mp4 frames:x', ["'frames:x' is not a range"]),
    ('a.mp4 frames:', ["'frames:' is not a range"]),
    ('a.mp4 ,5x', ["',5x' is not a range"]),
    ('rtsp://camera.local/s 12-x', ["'12-x' is not a range"]),
])
def test_a_malformed_list_range_names_the_file_and_line(tmp_path, line,
                                                        words):
    (tmp_path / 'a.mp4').write_bytes(b'')
    listing = tmp_path / 'list.txt'
    listing.write_text(f'# clips\na.mp4\n\n{line}\n')
    with pytest.raises(InputError) as caught:
        expand_inputs(listing)
    message = str(caught.value)
    assert message.startswith(f'{listing} line 4: '), message
    assert '\n' not in message
    for word in words:
        assert word in message, message


def test_a_file_listed_twice_needs_the_same_range(tmp_path):
    (tmp_path / 'a.mp4').write_bytes(b'')
    listing = tmp_path / 'list.txt'
    listing.write_text('a.mp4 1-2\n./a.mp4 1.0-2\n')
    with pytest.warns(UserWarning, match='more than once'):
        inputs = expand_inputs(listing)
    assert inputs.sources == [tmp_path / 'a.mp4']
    assert inputs.settings_for(tmp_path / 'a.mp4')['time_range'] == (1, 2)
    for second in ('./a.mp4 1-3', './a.mp4', 'a.mp4 frames:1-2'):
        listing.write_text(f'a.mp4 1-2\n# again\n{second}\n')
        with pytest.raises(InputError, match=r'list.txt lines 1 and 3 name '
                           'the same input with different ranges'):
            expand_inputs(listing)


def test_a_malformed_list_range_is_one_line_before_the_models(
        tiny_models, tmp_path, write_config):
    """Exit 1, one ``error:`` line naming the list file and line, nothing
    written; before any model loads (the pose config names no model: were
    the models built first, that would be the error)."""
    bad_model = tmp_path / 'no_such_model.py'
    bad_model.write_text(f"_base_ = '{tiny_models['pose_config']}'\n"
                         "model = dict(type='NoSuchPoseModel')\n")
    video = data_file('videos/street_5frames.mp4')
    listing = tmp_path / 'list.txt'
    listing.write_text(f'{video} 0-0.5\n\n{video.parent}/football_5frames_'
                       f'720p.mp4 0.5-0.2\n')
    out = tmp_path / 'out'
    result = run_cli('pose_analysis_service.py', '--config', write_config(
        dict(tiny_models, pose_config=str(bad_model), input=str(listing),
             output=str(out))))
    assert result.returncode == 1
    assert_one_line_error(result, f'{listing} line 3:', "'0.5-0.2'",
                          'ends before it starts')
    assert not out.exists()
    assert not result.stdout
