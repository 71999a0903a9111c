"""Before any model loads: the output locked against a second run (a lock
a killed run left is taken), every name the run writes checked against the
filesystem's limit, and a folder standing where a result goes refused
(issue 36, points 3, 6, 7)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (COCO_IMAGES, ROOT, assert_one_line_error, data_file,
                      run_cli)

from pose_suite.cli import run_command
from pose_suite.outputs.lock import FOLDER_LOCK

#: 244 characters, the issue's: ``.<name>.json.partial`` has 258 bytes.
LONG = 'p' * 240 + '.jpg'


class ModelsLoaded(Exception):
    """Raised where the run would load its models: the checks passed."""


class NoModels:
    def __init__(self, config):
        raise ModelsLoaded


def _refused(capsys, argv, *words):
    """``run_command`` refuses with one ``error:`` line naming ``words``,
    before any model loads."""
    assert run_command([str(a) for a in argv], NoModels) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(lines) == 1 and len(err.splitlines()) == 1, err
    for word in words:
        assert str(word) in lines[0], lines[0]
    return lines[0]


def _passes(argv):
    """The checks pass: the run gets as far as loading its models."""
    with pytest.raises(ModelsLoaded):
        run_command([str(a) for a in argv], NoModels)


@pytest.fixture
def photo_folder(tmp_path):
    """Two small real photos."""
    import cv2
    folder = tmp_path / 'photos'
    folder.mkdir()
    image = cv2.imread(str(data_file(COCO_IMAGES[3])))
    for number in range(2):
        cv2.imwrite(str(folder / f'photo{number}.jpg'),
                    image[:64, number * 64:number * 64 + 96])
    return folder


@pytest.fixture
def config(tiny_models, write_config, tmp_path):
    return write_config({**tiny_models, 'output': str(tmp_path / 'out')})


def _start_cli(config, *args):
    return subprocess.Popen(
        [sys.executable, str(ROOT / 'pose_analysis_service.py'), '--config',
         str(config), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def _wait_for_pid_in(lock, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if lock.exists() and f'{process.pid} ' in lock.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f'{lock} never named pid {process.pid}')


def _hold(folder, exclusive, result=None):
    """A process holding the lock as a run does; it prints ``held``."""
    code = ('import sys, time; from pathlib import Path; '
            'from pose_suite.outputs.lock import lock_output; '
            'from pose_suite.outputs.limits import run_lock_path; '
            f'r = {repr(str(result)) if result else None}; '
            f'held = lock_output(Path({str(folder)!r}), {exclusive}, '
            'r and Path(r), r and run_lock_path(Path(r))); '
            'print("held", flush=True); time.sleep(120)')
    process = subprocess.Popen([sys.executable, '-c', code], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == 'held\n'
    return process


def _kill(process):
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()


# Point 3: two runs on one output.

def test_second_folder_run_refused_at_once_and_killed_runs_lock_taken(
        config, photo_folder, tmp_path):
    out = tmp_path / 'out'
    first = _start_cli(config, '--input', photo_folder)
    _wait_for_pid_in(out / FOLDER_LOCK, first)
    began = time.monotonic()
    second = run_cli('pose_analysis_service.py', '--config', config,
                     '--input', photo_folder)
    refused_in = time.monotonic() - began
    assert_one_line_error(second, 'another run', f'pid {first.pid}',
                          str(out))
    assert first.poll() is None, 'the first run ended before the second'
    _kill(first)
    # The killed run's lock file stays, naming it: no lock for the next.
    assert f'{first.pid} ' in (out / FOLDER_LOCK).read_text()
    began = time.monotonic()
    third = run_cli('pose_analysis_service.py', '--config', config,
                    '--input', photo_folder)
    whole_run = time.monotonic() - began
    assert third.returncode == 0, third.stderr
    # Refused before loading the models, which most of a run of two tiny
    # photos is.
    assert refused_in < whole_run / 3, (refused_in, whole_run)
    rows = json.loads((out / 'summary.json').read_text())['inputs']
    assert sorted(Path(row['input']).name for row in rows) == [
        'photo0.jpg', 'photo1.jpg']
    assert not (out / FOLDER_LOCK).exists()  # its last holder removed it
    print(f'second run refused in {refused_in:.1f} s; a whole run took '
          f'{whole_run:.1f} s')


def test_second_run_of_one_result_refused_at_once(config, tmp_path):
    result = tmp_path / 'out' / 'r.json'
    photo = data_file(COCO_IMAGES[0])
    first = _start_cli(config, '--input', photo, '--output', result)
    try:
        _wait_for_pid_in(result.with_name('.r.json.run.lock'), first)
        began = time.monotonic()
        second = run_cli('pose_analysis_service.py', '--config', config,
                         '--input', photo, '--output', result)
        took = time.monotonic() - began
        assert_one_line_error(second, 'another run', f'pid {first.pid}',
                              'r.json')
        assert first.poll() is None
    finally:
        _kill(first)
    print(f'second run refused in {took:.1f} s')


def test_lock_held_by_a_batch_refuses_a_single_and_a_ray_run(
        config, tmp_path, capsys, monkeypatch):
    from pose_suite.batch import ray_executor

    def no_ray(*args):
        raise AssertionError('Ray started')

    monkeypatch.setattr(ray_executor, 'run_on_ray', no_ray)
    out = tmp_path / 'out'
    photo = data_file(COCO_IMAGES[0])
    holder = _hold(out, True)
    try:
        _refused(capsys, ['--config', config, '--input', photo],
                 'another run', f'pid {holder.pid}')
        _refused(capsys, ['--config', config, '--input', photo,
                          '--executor', 'ray'], f'pid {holder.pid}')
    finally:
        _kill(holder)
    # Its lock, left behind, is no lock.
    _passes(['--config', config, '--input', photo])


def test_single_runs_of_other_results_in_one_folder_go_on(
        config, tmp_path, capsys):
    out = tmp_path / 'out'
    photo = data_file(COCO_IMAGES[0])
    holder = _hold(out, False, out / 'other.json')
    try:
        _passes(['--config', config, '--input', photo])
        _refused(capsys, ['--config', config, '--input', photo,
                          '--output', out / 'other.json'],
                 f'pid {holder.pid}', 'other.json')
        _refused(capsys, ['--config', config, '--input', photo.parent],
                 f'pid {holder.pid}')  # a batch into the folder
    finally:
        _kill(holder)
    assert (out / FOLDER_LOCK).exists()  # left by the killed holder


def test_run_failing_at_its_models_leaves_no_output_folder(
        config, tmp_path, capsys):
    """The lock made the output folder; a run that wrote nothing (its
    checkpoint refused) removes it again, lock and all."""
    from pose_suite.errors import CheckpointError

    class BadCheckpoint:
        def __init__(self, config):
            assert (tmp_path / 'out' / 'a' / 'b' / FOLDER_LOCK).exists()
            raise CheckpointError('not a checkpoint')

    (tmp_path / 'out').mkdir()
    assert run_command(['--config', str(config), '--input', str(data_file(
        COCO_IMAGES[0])), '--output', str(tmp_path / 'out' / 'a' / 'b' /
                                          'r.json')], BadCheckpoint) == 1
    assert 'not a checkpoint' in capsys.readouterr().err
    assert list((tmp_path / 'out').iterdir()) == []


def test_lock_file_is_no_input_nor_result(config, photo_folder, tmp_path):
    """Pose2Sim's layout: the output folder is the searched one; a lock
    left by a killed run is neither an input nor a row."""
    from pose_suite.media.inputs import expand_inputs
    from pose_suite.outputs.summary import rows_from_folder
    _kill(_hold(photo_folder, True))
    assert (photo_folder / FOLDER_LOCK).exists()
    inputs = expand_inputs(photo_folder)
    assert [Path(s).name for s in inputs.sources] == ['photo0.jpg',
                                                      'photo1.jpg']
    assert inputs.skipped == []
    assert rows_from_folder(photo_folder) == []


# Point 6: names too long for the filesystem.

def test_long_name_refused_before_any_work(config, tmp_path, capsys):
    photo = tmp_path / LONG
    shutil.copy(data_file(COCO_IMAGES[0]), photo)
    line = _refused(capsys, ['--config', config, '--input', photo],
                    'too long', str(photo), 'shorten it by')
    # .<244>.json.partial: 258 bytes; the result's temporary file
    # .<244>.json.<8 hex>.tmp: 263.
    assert 'shorten it by 8 bytes' in line, line
    assert not (tmp_path / 'out').exists()


def test_long_name_with_openpose_export_refused(config, tmp_path, capsys):
    photo = tmp_path / ('q' * 234 + '.mp4')  # 238 characters
    shutil.copy(ROOT / 'tests' / 'data' / 'two_people_24frames_270p.mp4',
                photo)
    _refused(capsys, ['--config', config, '--input', photo, '--format',
                      'openpose', '--format', 'csv'],
             'too long', str(photo), 'openpose folder')
    assert not (tmp_path / 'out').exists()


def test_long_name_in_a_folder_refuses_the_batch(config, photo_folder,
                                                 tmp_path, capsys):
    shutil.copy(data_file(COCO_IMAGES[0]), photo_folder / LONG)
    _refused(capsys, ['--config', config, '--input', photo_folder],
             'too long', LONG)
    assert not (tmp_path / 'out').exists()


def test_multibyte_name_counted_in_bytes(config, tmp_path, capsys):
    photo = tmp_path / ('é' * 118 + '.jpg')  # 122 characters, 240 bytes
    shutil.copy(data_file(COCO_IMAGES[0]), photo)
    _refused(capsys, ['--config', config, '--input', photo], 'too long')


def test_longest_name_allowed_is_written(config, tmp_path, capsys):
    """At the limit every file is written, a second run (which moves the
    previous OpenPose folders aside as ``...partial.old``) too; one byte
    more is refused."""
    formats = ['--format', 'mmpose', '--format', 'coco', '--format', 'csv',
               '--format', 'openpose', '--format', 'pose2sim', '--format',
               'angles', '--angles']
    limit = os.pathconf(tmp_path, 'PC_NAME_MAX')
    # .<name>.jpg.json.pose2sim.<8 hex>.partial.old: 40 bytes more.
    photo = tmp_path / ('n' * (limit - 40) + '.jpg')
    shutil.copy(data_file(COCO_IMAGES[0]), photo)
    too_long = tmp_path / ('m' * (limit - 39) + '.jpg')
    shutil.copy(photo, too_long)
    _refused(capsys, ['--config', config, '--input', too_long, *formats],
             'folder (previous)', 'shorten it by 1 byte or more')
    from pose_analysis_service import main
    for run in range(2):
        assert main(['--config', str(config), '--input', str(photo),
                     *formats]) == 0, capsys.readouterr().err
    out = tmp_path / 'out'
    stem = photo.name
    assert sorted(p.name for p in out.iterdir()) == sorted([
        stem + '.json', stem + '.mmpose.json', stem + '.coco.json',
        stem + '.csv', stem + '.angles.csv', photo.stem + '_json', 'pose',
        f'.{stem}.json.exports.json'])


# Point 7: a folder named like a result.

def test_output_file_that_is_a_folder_refused(config, tmp_path, capsys):
    folder = tmp_path / 'out' / 'clip.jpg.json'
    folder.mkdir(parents=True)
    _refused(capsys, ['--config', config, '--input',
                      data_file(COCO_IMAGES[0]), '--output', folder],
             str(folder), 'folder named like a result')
    assert list(folder.iterdir()) == []


def test_folder_where_a_result_goes_refused(config, photo_folder,
                                            tmp_path, capsys):
    folder = tmp_path / 'out' / 'photo1.jpg.json'
    folder.mkdir(parents=True)
    _refused(capsys, ['--config', config, '--input', photo_folder],
             str(folder), 'photo1.jpg', 'is a folder')
    assert list(folder.iterdir()) == []
    assert sorted(p.name for p in folder.parent.iterdir()) == [
        'photo1.jpg.json']


# Edges (issue 36, points 3, 6, 7, as an attacker found them).

def test_batch_locks_every_folder_it_writes_in(config, photo_folder,
                                               tmp_path, capsys):
    """A recursive batch into out writes in out/sub: a run of one input
    into out/sub, or a batch into out/sub, excludes it."""
    out = tmp_path / 'out'
    (photo_folder / 'sub').mkdir()
    shutil.copy(photo_folder / 'photo0.jpg', photo_folder / 'sub' / 'c.jpg')
    batch = ['--config', config, '--input', photo_folder, '--recursive']
    for exclusive, result in ((False, out / 'sub' / 'r.json'), (True, None)):
        holder = _hold(out / 'sub', exclusive, result)
        try:
            _refused(capsys, batch, 'another run', f'pid {holder.pid}',
                     out / 'sub')
        finally:
            _kill(holder)
        shutil.rmtree(out)
    _passes(batch)
    # The folders made for the locks were removed again, empty.
    assert not out.exists()


def test_overlay_folder_locked_as_the_output(config, photo_folder,
                                             tiny_models, write_config,
                                             tmp_path, capsys):
    overlays = tmp_path / 'overlays'
    with_overlays = write_config({**tiny_models,
                                  'output': str(tmp_path / 'out2'),
                                  'visualize_output': str(overlays)},
                                 name='overlays.json')
    holder = _hold(overlays, True)
    try:
        _refused(capsys, ['--config', with_overlays, '--input',
                          photo_folder], 'another run', f'pid {holder.pid}',
                 overlays)
        _refused(capsys, ['--config', with_overlays, '--input',
                          photo_folder / 'photo0.jpg'], 'another run',
                 f'pid {holder.pid}', overlays)  # a run of one input
    finally:
        _kill(holder)


def test_lock_through_a_symlink_refused(config, tmp_path, capsys):
    from pose_suite.errors import OutputError
    from pose_suite.outputs.lock import lock_output
    victim = tmp_path / 'victim.txt'
    victim.write_text('keep me\n')
    out = tmp_path / 'out'
    out.mkdir()
    photo = data_file(COCO_IMAGES[0])
    for name, args in ((FOLDER_LOCK, []),
                       ('.r.json.run.lock', ['--output', out / 'r.json'])):
        (out / name).symlink_to(victim)
        _refused(capsys, ['--config', config, '--input', photo, *args],
                 out / name)
        (out / name).unlink()
    # The lock itself never follows one (checked first by the CLI).
    (out / FOLDER_LOCK).symlink_to(victim)
    for exclusive in (True, False):
        with pytest.raises(OutputError, match='not a regular file'):
            lock_output(out, exclusive)
    assert victim.read_text() == 'keep me\n'
    (out / FOLDER_LOCK).unlink()
    os.mkfifo(out / FOLDER_LOCK)  # nor anything but a regular file
    with pytest.raises(OutputError, match='not a regular file'):
        lock_output(out, True)


@pytest.mark.parametrize('name, args', [
    ('.a.jpg.json.partial', []), ('.a.jpg.json.lock', []),
    ('.a.jpg.json.run.lock', []), (FOLDER_LOCK, []),
    ('.a.jpg.json.exports.json', ['--format', 'csv']),
    ('a.jpg.csv', ['--format', 'csv']), ('a.jpg.json', 'link')])
def test_folder_where_a_hidden_file_goes_refused(config, tmp_path, capsys,
                                                 name, args):
    photo = tmp_path / 'a.jpg'
    shutil.copy(data_file(COCO_IMAGES[0]), photo)
    out = tmp_path / 'out'
    out.mkdir()
    if args == 'link':  # a link to a folder
        (tmp_path / 'elsewhere').mkdir()
        (out / name).symlink_to(tmp_path / 'elsewhere')
        args = []
    else:
        (out / name).mkdir()
    _refused(capsys, ['--config', config, '--input', photo, *args],
             f'{out / name} is ', 'a.jpg')
    assert sorted(p.name for p in out.iterdir()) == [name]


@pytest.mark.parametrize('name', ['summary.csv', 'summary.json',
                                  'report.html'])
def test_folder_where_a_batch_file_goes_refused(config, photo_folder,
                                                tmp_path, capsys, name):
    (tmp_path / 'out' / name).mkdir(parents=True)
    _refused(capsys, ['--config', config, '--input', photo_folder],
             f'{tmp_path / "out" / name} is a folder', 'the batch')


def test_path_over_path_max_refused_before_any_work(config, tmp_path,
                                                    capsys):
    """An output folder whose absolute path has 4062 bytes: the result of
    a photo of 22 characters fits (4090 bytes), its partial and temporary
    files would pass PATH_MAX (4096 with the NUL)."""
    path_max = os.pathconf(tmp_path, 'PC_PATH_MAX')
    deep = tmp_path
    while len(os.fsencode(str(deep))) < path_max - 34 - 200:
        deep = deep / ('d' * 200)
    deep = deep / ('e' * (path_max - 34 - len(str(deep)) - 1))
    assert len(os.fsencode(str(deep))) == path_max - 34
    deep.mkdir(parents=True)
    photo = tmp_path / ('b' * 18 + '.jpg')
    shutil.copy(data_file(COCO_IMAGES[0]), photo)
    assert len(os.fsencode(str(deep / (photo.name + '.json')))) == \
        path_max - 6
    _refused(capsys, ['--config', config, '--input', photo, '--output',
                      deep], 'path', str(photo), f'allows {path_max - 1}')
    assert list(deep.iterdir()) == []


def test_lock_left_by_another_user_is_taken(tmp_path):
    """As a user who is not root (``unshare --user``): a lock file another
    user left (mode 0644) in a folder all may write is locked read-only;
    while held, another run is refused."""
    from pose_suite.errors import OutputError
    from pose_suite.outputs.lock import lock_output
    out = tmp_path / 'out'
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    (out / FOLDER_LOCK).write_text('')
    os.chown(out / FOLDER_LOCK, 65534, 65534)
    (out / FOLDER_LOCK).chmod(0o644)
    code = ('import time; from pathlib import Path; '
            'from pose_suite.outputs.lock import lock_output; '
            f'held = lock_output(Path({str(out)!r}), True); '
            'print("held", flush=True); time.sleep(120)')
    try:
        process = subprocess.Popen(
            ['unshare', '--user', sys.executable, '-c', code], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        pytest.skip(f'needs unshare --user: {exc}')
    line = process.stdout.readline()
    if line != 'held\n':
        err = process.communicate()[1]
        if 'unshare' in err and 'Operation not permitted' in err:
            pytest.skip(f'needs unshare --user: {err.strip()}')
        raise AssertionError(err)
    try:
        with pytest.raises(OutputError, match='another run'):
            lock_output(out, True)
    finally:
        _kill(process)
    assert (out / FOLDER_LOCK).read_text() == ''  # not written


def test_segment_names_checked_with_their_real_digits():
    """A 20-minute clip cut every second has 1200 segments: the name
    checked is at least as long as the longest one written."""
    from pose_suite.batch.claim import _longest_segment
    from pose_suite.batch.segments import plan_segments, segment_file
    result = Path('out') / 'clip.mp4.json'
    segments = plan_segments(20 * 60 * 30, 30.0, 1.0)
    assert len(segments) == 1200
    longest = max(len(segment_file(result, number, len(segments)).name)
                  for number in range(len(segments)))
    assert longest == len('.clip.mp4.json.segment-1200-of-1200.json')
    assert len(_longest_segment(result, 20 * 60 * 30).name) >= longest
    assert len(_longest_segment(result).name) >= longest
