"""Batches on the local executor (:mod:`pose_suite.batch.local`): ``--resume``
analyses only what an interrupted batch had not finished, keeps what is up
to date, and re-analyses (saying why) what changed."""
import json
import os
import time

import pytest
from conftest import BATCH_FILES, assert_one_line_error, fail_on_call, run_cli


@pytest.fixture
def tiny_service(tiny_models):
    from pose_analysis_service import PoseAnalysisService
    return PoseAnalysisService(tiny_models)


def _results(folder):
    return sorted(path for path in folder.glob('*.json')
                  if path.name not in BATCH_FILES)


def _mtimes(folder) -> dict:
    return {path.name: path.stat().st_mtime_ns for path in _results(folder)}


def test_interrupted_batch_resumes_only_what_was_left(
        tiny_service, tiny_photos, tmp_path, monkeypatch, write_config,
        tiny_models):
    """200 photos, interrupted at the 101st: --resume analyses the 100
    left, keeps the 100 written, and a clean run gives the same results."""
    import dataclasses
    out = tmp_path / 'out'
    tiny_service.config = dataclasses.replace(tiny_service.config,
                                              output=out)
    detector = tiny_service.detector
    fail_on_call(monkeypatch, detector, 'detect', 101, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        tiny_service.run_many(sorted(tiny_photos.glob('*.jpg')))
    assert len(_results(out)) == 100
    written = _mtimes(out)
    monkeypatch.undo()
    calls = fail_on_call(monkeypatch, detector, 'detect', 0, None)  # counts
    tiny_service.config = dataclasses.replace(tiny_service.config,
                                              resume=True)
    with _no_suite_warning():
        outputs, failures, _ = tiny_service.run_many(
            sorted(tiny_photos.glob('*.jpg')))
    assert len(calls) == 100  # only the photos not done were analysed
    assert len(outputs) == 200 and not failures
    now = _mtimes(out)
    assert {name: now[name] for name in written} == written  # kept as is
    # The same results as one clean run, but for when and how long.
    clean = tmp_path / 'clean'
    result = run_cli('pose_analysis_service.py', '--config', write_config(
        dict(tiny_models, input=str(tiny_photos), output=str(clean))),
        '--quiet')
    assert result.returncode == 0, result.stderr
    for path in _results(clean):
        got = json.loads((out / path.name).read_text())
        want = json.loads(path.read_text())
        got['meta'].pop('run'), want['meta'].pop('run')
        assert got == want, path.name


class _no_suite_warning:
    """No SuiteWarning in the block ("nothing to resume" for each input
    not started would be 100 lines of noise)."""

    def __enter__(self):
        import warnings
        self._catch = warnings.catch_warnings(record=True)
        self.caught = self._catch.__enter__()
        warnings.simplefilter('always')

    def __exit__(self, *exc):
        from pose_suite.errors import SuiteWarning
        self._catch.__exit__(*exc)
        said = [str(w.message) for w in self.caught
                if issubclass(w.category, SuiteWarning)]
        assert not said, said


def test_resume_of_a_finished_batch_takes_seconds(tiny_models, tiny_photos,
                                                  tmp_path, write_config):
    out = tmp_path / 'out'
    config = write_config(dict(tiny_models, input=str(tiny_photos),
                               output=str(out)))
    first = run_cli('pose_analysis_service.py', '--config', config,
                    '--quiet')
    assert first.returncode == 0, first.stderr
    before = _mtimes(out)
    started = time.monotonic()
    again = run_cli('pose_analysis_service.py', '--config', config,
                    '--resume')
    seconds = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert '0 input(s) done, 200 up to date: 0 frame(s)' in again.stdout
    assert again.stdout.count('up to date ->') == 200
    assert _mtimes(out) == before
    print(f'--resume of 200 finished inputs: {seconds:.1f} s')
    assert seconds < 30  # model loading included (about 5 s here)


def test_resume_reanalyses_what_changed_and_says_why(
        tiny_models, tiny_photos, tmp_path, write_config):
    out = tmp_path / 'out'
    folder = tmp_path / 'in'
    folder.mkdir()
    for name in ('photo_000.jpg', 'photo_001.jpg', 'photo_002.jpg'):
        (folder / name).write_bytes((tiny_photos / name).read_bytes())
    values = dict(tiny_models, input=str(folder), output=str(out))
    first = run_cli('pose_analysis_service.py', '--config',
                    write_config(values), '--quiet')
    assert first.returncode == 0, first.stderr
    # One input edited (its size and time change), one result of an
    # earlier version (no resume key).
    edited = folder / 'photo_001.jpg'
    edited.write_bytes((tiny_photos / 'photo_050.jpg').read_bytes())
    os.utime(edited, ns=(time.time_ns(), time.time_ns() + 10 ** 9))
    from pose_suite.outputs.results import record_line, write_result
    old = out / 'photo_002.jpg.json'
    result = json.loads(old.read_text())
    del result['meta']['resume_key']
    with open(old, 'w', encoding='utf-8') as handle:  # as it wrote them
        write_result(handle, result['meta'],
                     (record_line(frame) for frame in result['frames']))
    again = run_cli('pose_analysis_service.py', '--config',
                    write_config(values), '--resume')
    assert again.returncode == 0, again.stderr
    assert '2 input(s) done, 1 up to date' in again.stdout
    lines = again.stderr.splitlines()
    assert any('re-analysing' in line and 'photo_001.jpg' in line and
               'the input changed' in line for line in lines), lines
    assert any('re-analysing' in line and 'photo_002.jpg' in line and
               'earlier version' in line for line in lines), lines
    # Other settings: every input again, said for each.
    changed = run_cli('pose_analysis_service.py', '--config', write_config(
        dict(values, nms_thr=0.5)), '--resume')
    assert changed.returncode == 0, changed.stderr
    assert '3 input(s) done:' in changed.stdout
    assert changed.stderr.count(
        'made with other settings: nms_thr 0.3 -> 0.5') == 3


def test_an_up_to_date_input_gets_the_formats_asked_for_since(
        tiny_models, tmp_path, write_config):
    from conftest import COCO_IMAGES, data_file
    out = tmp_path / 'r.json'
    values = dict(tiny_models, input=str(data_file(COCO_IMAGES[0])),
                  output=str(out))
    assert run_cli('pose_analysis_service.py', '--config',
                   write_config(values)).returncode == 0
    stamp = out.stat().st_mtime_ns
    again = run_cli('pose_analysis_service.py', '--config',
                    write_config(values), '--resume', '--format', 'csv')
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith('up to date: ')
    assert out.stat().st_mtime_ns == stamp
    assert (tmp_path / 'r.csv').read_text().startswith('frame_index,')


def test_a_model_that_cannot_be_built_is_one_line(tiny_models, tmp_path,
                                                  write_config):
    """A config that parses but names no registered model: mmengine's
    KeyError becomes one line naming the config."""
    bad = tmp_path / 'no_such_model.py'
    bad.write_text(f"_base_ = '{tiny_models['pose_config']}'\n"
                   "model = dict(type='NoSuchPoseModel')\n")
    from conftest import COCO_IMAGES, data_file
    result = run_cli('pose_analysis_service.py', '--config', write_config(
        dict(tiny_models, pose_config=str(bad),
             input=str(data_file(COCO_IMAGES[0])),
             output=str(tmp_path / 'out'))))
    assert_one_line_error(result, 'cannot build the model',
                          'no_such_model.py')
    assert not (tmp_path / 'out').exists()


def test_frames_counted_in_the_summary_are_those_analysed(tiny_service,
                                                          tiny_photos,
                                                          tmp_path):
    import dataclasses

    from pose_suite.batch.local import run_local
    tiny_service.config = dataclasses.replace(
        tiny_service.config, output=tmp_path, resume=True)
    photos = sorted(tiny_photos.glob('*.jpg'))[:3]
    first = run_local(tiny_service, photos[:2])
    second = run_local(tiny_service, photos)
    assert (first.frames, len(first.outputs)) == (2, 2)
    assert (second.frames, len(second.outputs), len(second.up_to_date)) \
        == (1, 1, 2)


def _frames(result) -> dict:
    """``{frame_index: timestamp_s}`` of a result JSON."""
    return {frame['frame_index']: frame['timestamp_s']
            for frame in json.loads(result.read_text())['frames']}


def test_a_list_file_cuts_each_video_its_own_way(tiny_models, tmp_path,
                                                 write_config):
    """Each list line's range replaces the config's for that input (a line
    without one keeps the config's); the config's frame_step applies to
    all. Each result holds the frames whose timestamp_s, in an uncut run,
    lies in its range (every 2nd of them); the summary and report say
    what was analysed."""
    import csv
    import shutil

    from conftest import data_file
    clips = tmp_path / 'clips'
    clips.mkdir()
    videos = [clips / name for name in ('street.mp4', 'football.mp4',
                                        'street_again.mp4')]
    for video, name in zip(videos, ('street_5frames.mp4',
                                    'football_5frames_720p.mp4',
                                    'street_5frames.mp4')):
        shutil.copy(data_file(f'videos/{name}'), video)
    whole, cut = tmp_path / 'whole', tmp_path / 'cut'
    listing = tmp_path / 'list.txt'
    listing.write_text('\n'.join(str(video) for video in videos))
    uncut = run_cli('pose_analysis_service.py', '--config', write_config(
        dict(tiny_models, input=str(listing), output=str(whole))), '--quiet')
    assert uncut.returncode == 0, uncut.stderr
    listing.write_text(f'{videos[0]}  0.3-0.9\n'
                       f'# frame indices, the last included\n'
                       f'{videos[1]} frames:1-4\n'
                       f'{videos[2]}\n')
    result = run_cli('pose_analysis_service.py', '--config', write_config(
        dict(tiny_models, input=str(listing), output=str(cut),
             time_range=[0, 0.5], frame_step=2)), '--quiet')
    assert result.returncode == 0, result.stderr
    in_range = [lambda index, time: 0.3 <= time <= 0.9,
                lambda index, time: 1 <= index <= 4,
                lambda index, time: 0 <= time <= 0.5]
    for video, wanted in zip(videos, in_range):
        name = f'{video.name}.json'
        everything = _frames(whole / name)
        expected = sorted(index for index, time in everything.items()
                          if wanted(index, time))[::2]
        got = _frames(cut / name)
        assert len(expected) >= 2 and sorted(got) == expected, name
        assert all(got[index] == everything[index] for index in got), name
    with open(cut / 'summary.csv', newline='', encoding='utf-8') as handle:
        analysed = {row['input']: row['analysed']
                    for row in csv.DictReader(handle)}
    assert analysed == {
        str(videos[0]): '0.3-0.9 s, every 2 frames',
        str(videos[1]): 'frames 1-4, every 2 frames',
        str(videos[2]): '0-0.5 s, every 2 frames'}
    page = (cut / 'report.html').read_text(encoding='utf-8')
    assert '<div class="analysed">frames 1-4, every 2 frames</div>' in page
    with open(whole / 'summary.csv', newline='', encoding='utf-8') as handle:
        assert {row['analysed'] for row in csv.DictReader(handle)} == {''}
