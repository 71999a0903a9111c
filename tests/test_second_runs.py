"""Second runs stay right: a result is kept only when it is whole, an
export only when it was made from the result beside it, a damaged partial
file resumes from its last good frame, and a batch's own files are neither
overwritten by an input nor taken for one (the local executor; Ray's side
is in test_ray_executor.py)."""
import csv
import json
import shutil
import warnings

import pytest
from conftest import (COCO_IMAGES, ROOT, assert_one_line_error, data_file,
                      run_cli)

CLIP = ROOT / 'tests' / 'data' / 'two_people_24frames_270p.mp4'


def _run(write_config, values, *flags):
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(values), *flags)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def two_photos(tmp_path):
    """Two real photos of different sizes in a folder."""
    import cv2
    folder = tmp_path / 'photos'
    folder.mkdir()
    image = cv2.imread(str(data_file(COCO_IMAGES[3])))
    cv2.imwrite(str(folder / 'a.jpg'), image[:96, :128])
    cv2.imwrite(str(folder / 'b.jpg'), image[100:180, 50:110])
    return folder


def test_a_result_cut_short_is_not_kept(tiny_models, two_photos, tmp_path,
                                        write_config):
    """A finished result cut short afterwards (a copy that stopped, a full
    disk) is analysed again with a line saying why, and the formats asked
    for since come from the new, whole result."""
    out = tmp_path / 'out'
    values = dict(tiny_models, input=str(two_photos), output=str(out))
    _run(write_config, values, '--quiet')
    result = out / 'a.jpg.json'
    whole = result.read_bytes()
    result.write_bytes(whole[:-40])
    again = _run(write_config, values, '--resume', '--format', 'csv')
    assert 're-analysing' in again.stderr and 'cut short' in again.stderr
    assert '1 input(s) done, 1 up to date' in again.stdout, again.stdout
    json.loads(result.read_text())  # whole again
    from pose_suite.outputs.results import read_meta, why_incomplete
    assert why_incomplete(result, read_meta(result)) is None


def test_whole_results_are_told_from_cut_ones(tmp_path):
    """The closing record is read from the file's end: every cut of a
    result is caught, a whole one passes, and results of the first version
    (no closing record) pass when they end as JSON."""
    from pose_suite.outputs.results import (read_meta, record_line,
                                            why_incomplete, write_result)
    path = tmp_path / 'r.json'
    with open(path, 'w') as handle:
        write_result(handle, {'frame_count': 3}, [record_line(
            {'frame_index': i, 'timestamp_s': i / 10, 'persons': []})
            for i in range(3)])
    data = path.read_bytes()
    assert json.loads(data)['end'] == {'frame_count': 3}
    assert why_incomplete(path, {'frame_count': 3}) is None
    assert 'counts 3 frame(s)' in why_incomplete(path, {'frame_count': 4})
    path.write_bytes(data[:-1] + b'  \n')  # white space after: still whole
    assert why_incomplete(path, {'frame_count': 3}) is None
    for cut in range(2, 120):
        path.write_bytes(data[:-cut])
        assert why_incomplete(path, {'frame_count': 3}), cut
    old = ROOT / 'tests' / 'data' / 'results_c8e1fd9'
    for result in old.glob('*.json'):
        assert why_incomplete(result, read_meta(result)) is None
        cut = tmp_path / result.name
        cut.write_bytes(result.read_bytes()[:-3])
        assert why_incomplete(cut, read_meta(result))


def test_an_export_of_an_earlier_result_is_made_again(
        model_files, two_photos, tmp_path, write_config):
    """Run 1 writes a CSV; the input changes and run 2 re-analyses it
    without asking for CSV; run 3 asks for CSV again and must not keep the
    CSV of the first result."""
    photo = two_photos / 'a.jpg'
    out = tmp_path / 'out'
    values = {**{key: str(value) for key, value in model_files.items()},
              'device': 'cpu', 'bbox_thr': 0.0, 'input': str(photo),
              'output': str(out)}
    _run(write_config, values, '--quiet', '--format', 'csv')
    shutil.copy(two_photos / 'b.jpg', photo)  # another size, other boxes
    _run(write_config, values, '--quiet', '--resume')
    third = _run(write_config, values, '--resume', '--format', 'csv')
    assert 'up to date' in third.stdout + third.stderr
    result = json.loads((out / 'a.jpg.json').read_text())
    with open(out / 'a.jpg.csv', newline='') as handle:
        rows = list(csv.DictReader(handle))
    persons = result['frames'][0]['persons']
    assert len(rows) == len(persons) > 0
    for row, person in zip(rows, persons):
        assert [float(row[f'bbox_{name}']) for name in
                ('x1', 'y1', 'x2', 'y2')] == person['bbox']


def _partial_of_an_interrupted_run(service, output, monkeypatch, frames):
    from conftest import fail_on_call
    fail_on_call(monkeypatch, service.detector, 'detect', frames + 1,
                 KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        service.analyse_input(CLIP, output)
    monkeypatch.undo()
    return output.with_name(f'.{output.name}.partial')


def _indices(output):
    return [frame['frame_index']
            for frame in json.loads(output.read_text())['frames']]


def test_resume_after_a_damaged_line_in_the_partial(tiny_models, tmp_path,
                                                    monkeypatch):
    """A partial result with a damaged line resumes from the frame before
    it, saying so; an empty one starts over as having nothing to resume
    (not "made from another input")."""
    from pose_analysis_service import PoseAnalysisService
    service = PoseAnalysisService(tiny_models)
    output = tmp_path / 'clip.json'
    partial = _partial_of_an_interrupted_run(service, output, monkeypatch,
                                             10)
    lines = partial.read_text().splitlines(keepends=True)
    assert len(lines) == 11  # the header and 10 frames
    lines[6] = lines[6][:20] + '\x00garbage\n'
    partial.write_text(''.join(lines))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        done = service.analyse_input(CLIP, output, resume=True)
    said = [str(w.message) for w in caught]
    assert any('damaged at line 7; resuming from frame 5' in s
               for s in said), said
    assert _indices(output) == list(range(24)) and done.status == 'done'
    assert json.loads(output.read_text())['meta']['run'][
        'resumed_from_frame'] == 5
    output.unlink()
    partial = _partial_of_an_interrupted_run(service, output, monkeypatch, 3)
    partial.write_text('')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        service.analyse_input(CLIP, output, resume=True)
    said = [str(w.message) for w in caught]
    assert any('nothing to resume' in s for s in said), said
    assert not any('another input' in s for s in said), said
    assert _indices(output) == list(range(24))


def test_photos_are_kept_when_only_video_settings_change(
        tiny_models, two_photos, tmp_path, write_config):
    out = tmp_path / 'out'
    values = dict(tiny_models, input=str(two_photos), output=str(out))
    _run(write_config, values, '--quiet')
    before = {path.name: path.read_bytes() for path in out.glob('*.jpg.json')}
    again = _run(write_config, dict(values, tracking=False, det_interval=5),
                 '--resume')
    assert '0 input(s) done, 2 up to date' in again.stdout, again.stdout
    assert {path.name: path.read_bytes()
            for path in out.glob('*.jpg.json')} == before
    # A video setting still counts for a video.
    video = dict(values, input=str(CLIP))
    _run(write_config, video, '--quiet')
    changed = _run(write_config, dict(video, det_interval=5), '--resume')
    assert 'other settings' in changed.stderr


def test_an_input_named_like_the_batch_summary_is_refused(
        tiny_models, two_photos, tmp_path, write_config):
    """A photo named ``summary`` (no suffix) would write summary.json, the
    batch's own file: refused before any work, naming it."""
    shutil.copy(two_photos / 'a.jpg', two_photos / 'summary')
    out = tmp_path / 'out'
    result = run_cli('pose_analysis_service.py', '--config', write_config(
        dict(tiny_models, input=str(two_photos), output=str(out))))
    assert_one_line_error(result, 'summary.json', 'rename')
    assert not out.exists()


def test_a_batch_whose_every_input_fails_has_a_summary(
        tiny_models, tmp_path, write_config):
    folder = tmp_path / 'in'
    folder.mkdir()
    for name in ('a.jpg', 'b.mp4'):
        (folder / name).write_bytes(b'\xff\xd8\xff' + bytes(300))
    out = tmp_path / 'out'
    result = run_cli('pose_analysis_service.py', '--config', write_config(
        dict(tiny_models, input=str(folder), output=str(out))), '--quiet')
    assert result.returncode != 0
    assert 'no summary' not in result.stderr, result.stderr
    assert 'error: 2 of 2 input(s) failed (listed above) (' in result.stderr
    rows = json.loads((out / 'summary.json').read_text())['inputs']
    assert sorted((row['input'], row['status']) for row in rows) == [
        (str(folder / 'a.jpg'), 'failed'), (str(folder / 'b.mp4'), 'failed')]
    assert (out / 'summary.csv').is_file() and (out / 'report.html').is_file()


def test_the_suites_own_files_are_never_inputs(tiny_models, two_photos,
                                               tmp_path, write_config):
    """Output folder = input folder (Pose2Sim's layout): the next run finds
    results, exports, OpenPose files, summaries, reports and overlays
    there, and takes none of them for an input or a file that is not
    media; the user's own notes are still listed."""
    (two_photos / 'notes.txt').write_text('session notes\n')
    values = dict(tiny_models, input=str(two_photos),
                  output=str(two_photos), visualize_output=str(two_photos),
                  export_formats=['csv', 'coco', 'mmpose', 'openpose'])
    first = _run(write_config, values, '--quiet')
    assert (two_photos / 'a.jpg.overlay.jpg').is_file()
    assert (two_photos / 'a_json').is_dir()
    second = _run(write_config, values, '--resume')
    assert '0 input(s) done, 2 up to date' in second.stdout, second.stdout
    rows = json.loads((two_photos / 'summary.json').read_text())['inputs']
    assert sorted((row['input'], row['status']) for row in rows) == [
        (str(two_photos / 'a.jpg'), 'up to date'),
        (str(two_photos / 'b.jpg'), 'up to date'),
        (str(two_photos / 'notes.txt'), 'not media')]
    for run in (first, second):
        assert 'skipped 1 non-media file(s): notes.txt\n' in run.stderr, \
            run.stderr


def test_report_reads_results_in_a_users_folder_named_json(tmp_path):
    old = ROOT / 'tests' / 'data' / 'results_c8e1fd9'
    folder = tmp_path / 'results' / 'P01_json'
    folder.mkdir(parents=True)
    for result in old.glob('*.json'):
        shutil.copy(result, folder / result.name)
    result = run_cli('pose_analysis_service.py', '--report',
                     tmp_path / 'results')
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / 'results' / 'summary.json').read_text())
    assert sorted(row['result'] for row in rows['inputs']) == sorted(
        f'P01_json/{path.name}' for path in old.glob('*.json'))


def test_a_users_folder_named_like_an_export_is_never_replaced(
        tiny_models, two_photos, tmp_path, write_config):
    """A user's own folder ``a_json/`` beside ``a.jpg`` (the OpenPose
    export's name): refused before any work, its files kept."""
    notes = two_photos / 'a_json'
    notes.mkdir()
    (notes / 'important.txt').write_text('my notes\n')
    result = run_cli('pose_analysis_service.py', '--config', write_config(
        dict(tiny_models, input=str(two_photos), output=str(two_photos))),
        '--format', 'openpose')
    assert_one_line_error(result, 'a_json', 'important.txt')
    assert [path.name for path in notes.iterdir()] == ['important.txt']
    assert not list(two_photos.glob('*.json'))


@pytest.mark.parametrize('name', ['summary.csv', 'report.html',
                                  'a.jpg.overlay.jpg'])
def test_an_input_the_run_would_write_over_is_refused(
        tiny_models, two_photos, write_config, name):
    """Output and overlay folder = input folder: a photo of the user's
    named like the batch's summary or report, or like another input's
    overlay, would be overwritten: refused before any work, naming it."""
    shutil.copy(two_photos / 'b.jpg', two_photos / name)
    before = (two_photos / name).read_bytes()
    result = run_cli('pose_analysis_service.py', '--config', write_config(
        dict(tiny_models, input=str(two_photos), output=str(two_photos),
             visualize_output=str(two_photos))))
    assert_one_line_error(result, name, 'write over it')
    assert (two_photos / name).read_bytes() == before
    assert not list(two_photos.glob('*.json'))


def test_resume_of_a_partial_with_frames_out_of_order(tiny_models, tmp_path,
                                                      monkeypatch):
    """Frame lines 0, 2, 1, ...: resumed from frame 1, the first frame
    without its record, so no frame goes missing."""
    from pose_analysis_service import PoseAnalysisService
    service = PoseAnalysisService(tiny_models)
    output = tmp_path / 'clip.json'
    partial = _partial_of_an_interrupted_run(service, output, monkeypatch, 5)
    lines = partial.read_text().splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]
    partial.write_text(''.join(lines))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        service.analyse_input(CLIP, output, resume=True)
    assert any('damaged at line 3; resuming from frame 1' in str(w.message)
               for w in caught), [str(w.message) for w in caught]
    assert _indices(output) == list(range(24))


def test_results_of_this_version_need_their_closing_record(tmp_path):
    """A result of this version (it has ``meta.run.result_id``) whose
    closing record was removed is not taken for an earlier version's."""
    from pose_suite.outputs.results import (read_meta, record_line,
                                            why_incomplete, write_result)
    path = tmp_path / 'r.json'
    meta = {'frame_count': 1, 'run': {'result_id': 'abc'}}
    with open(path, 'w') as handle:
        write_result(handle, meta, [record_line(
            {'frame_index': 0, 'timestamp_s': 0.0, 'persons': []})])
    text = path.read_text()
    path.write_text(text[:text.index(',\n"end"')] + '\n}\n')
    json.loads(path.read_text())
    assert 'cut short' in why_incomplete(path, read_meta(path))


def test_report_lists_results_cut_short_as_failed(tmp_path):
    """``--report``: a result cut before its frames (no meta block to
    read) or inside them is a failed row saying so, not left out or
    counted as done."""
    old = ROOT / 'tests' / 'data' / 'results_c8e1fd9'
    folder = tmp_path / 'results'
    folder.mkdir()
    text = (old / 'vfr_30_then_5fps.mp4.json').read_bytes()
    (folder / 'early.mp4.json').write_bytes(text[:300])
    (folder / 'late.mp4.json').write_bytes(text[:text.index(b'"frames"')
                                                + 14])
    result = run_cli('pose_analysis_service.py', '--report', folder)
    assert result.returncode == 0, result.stderr
    rows = json.loads((folder / 'summary.json').read_text())['inputs']
    assert sorted((row['result'], row['status']) for row in rows) == [
        ('early.mp4.json', 'failed'), ('late.mp4.json', 'failed')]
    assert all('cut short' in row['reason'] for row in rows), rows
