"""Second runs say what they did: exports and overlays of an earlier result
are removed when a new result replaces it and never linked; a setting
changed since is named; a resumed run counts only the frames it analysed;
"up to date" names the exports it wrote (issue 36, points 2, 5 and 10).

Commands run in this process (``main(argv)``), on the tiny test models."""
import json
import shutil
import signal
import warnings
from pathlib import Path

import pytest
from conftest import COCO_IMAGES, ROOT, data_file, fail_on_call

CLIP = ROOT / 'tests' / 'data' / 'two_people_24frames_270p.mp4'


def _main(capsys, *argv):
    """``main(argv)``; returns (exit code, stdout, stderr). The warning
    filters and signal handlers it sets are put back."""
    from pose_analysis_service import main
    handlers = {sig: signal.getsignal(sig)
                for sig in (signal.SIGINT, signal.SIGTERM)}
    capsys.readouterr()
    try:
        with warnings.catch_warnings():
            code = main([str(arg) for arg in argv])
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def photo(tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    return Path(shutil.copy(data_file(COCO_IMAGES[0]), folder / 'a.jpg'))


def _config(tmp_path, values, name='config.json'):
    path = tmp_path / name
    path.write_text(json.dumps(values))
    return path


def _manifest(result: Path) -> dict:
    made = result.with_name(f'.{result.name}.exports.json')
    return json.loads(made.read_text()) if made.exists() else {}


def _result_id(result: Path) -> str:
    from pose_suite.outputs.results import read_meta
    return read_meta(result)['run']['result_id']


def test_exports_of_an_earlier_result_are_removed_and_never_linked(
        tiny_models, photo, tmp_path, capsys):
    """Run 1 writes csv, angles and an overlay; run 2 (another kpt_thr, no
    formats, no overlay) replaces the result: the three are gone, the
    manifest names none, and the report links none (nor a file of the
    user's named like an export). Run 3 (--resume, csv) writes the csv
    from the current result, and the manifest and the report say so."""
    out = tmp_path / 'out'
    values = dict(tiny_models, input=str(photo), output=str(out),
                  angles=True)
    code, _, err = _main(capsys, '--config', _config(tmp_path, dict(
        values, visualize_output=str(out))), '--format', 'csv',
        '--format', 'angles')
    assert code == 0, err
    result = out / 'a.jpg.json'
    stale = [out / 'a.jpg.csv', out / 'a.jpg.angles.csv',
             out / 'a.jpg.overlay.jpg']
    assert all(path.is_file() for path in stale)
    first = _result_id(result)
    assert _manifest(result) == {'csv': first, 'angles': first, 'overlay': {
        'from': first, 'file': 'a.jpg.overlay.jpg'}}
    (out / 'a.jpg.coco.json').write_text('[]')  # the user's, not ours
    code, _, err = _main(capsys, '--config', _config(
        tmp_path, dict(values, kpt_thr=0.5)))
    assert code == 0, err
    second = _result_id(result)
    assert second != first
    assert [path for path in stale if path.exists()] == []
    assert _manifest(result) == {}
    assert (out / 'a.jpg.coco.json').read_text() == '[]'  # kept, unlinked
    code, _, err = _main(capsys, '--report', out)
    assert code == 0, err
    page = (out / 'report.html').read_text()
    for name in ('a.jpg.csv', 'a.jpg.angles.csv', 'a.jpg.overlay.jpg',
                 'a.jpg.coco.json'):
        assert f'./{name}"' not in page, name
    assert './a.jpg.json"' in page
    code, out_text, err = _main(capsys, '--config', _config(
        tmp_path, dict(values, kpt_thr=0.5)), '--resume', '--format', 'csv')
    assert code == 0, err
    assert out_text.startswith('up to date: ')
    assert _result_id(result) == second
    assert _manifest(result) == {'csv': second}
    code, _, err = _main(capsys, '--report', out)
    page = (out / 'report.html').read_text()
    assert './a.jpg.csv">csv</a>' in page
    assert './a.jpg.coco.json"' not in page


def test_only_the_overlay_written_is_removed_or_linked(
        tiny_models, photo, tmp_path, capsys):
    """Files named like an overlay that the run did not write (the user's
    ``a.jpg.overlay.before-fix.jpg`` and notes, the result of an input
    named ``a.jpg.overlay.png``) are never linked as a.jpg's overlay nor
    removed when a new result replaces a.jpg's: only the overlay file the
    manifest records is."""
    out = tmp_path / 'out'
    values = dict(tiny_models, input=str(photo), output=str(out))
    code, _, err = _main(capsys, '--config', _config(tmp_path, dict(
        values, visualize_output=str(out))))
    assert code == 0, err
    others = {'a.jpg.overlay.before-fix.jpg': b'user', 'a.jpg.overlay.notes.'
              'txt': b'notes', 'a.jpg.overlay.png.json': b'{}'}
    for name, data in others.items():
        (out / name).write_bytes(data)
    code, _, err = _main(capsys, '--report', out)
    assert code == 0, err
    page = (out / 'report.html').read_text()
    assert './a.jpg.overlay.jpg">overlay jpg</a>' in page
    for name in others:
        assert f'./{name}"' not in page, name
    code, _, err = _main(capsys, '--config', _config(
        tmp_path, dict(values, kpt_thr=0.5)))
    assert code == 0, err
    assert not (out / 'a.jpg.overlay.jpg').exists()
    assert {name: (out / name).read_bytes() for name in others} == others
    assert _manifest(out / 'a.jpg.json') == {}


def test_an_openpose_folder_is_its_last_writers_only(
        tiny_models, photo, tmp_path, capsys):
    """cam.jpg's and cam.png's results both make cam_json: while cam.jpg's
    result is there, cam.png's run with --format openpose is refused
    before any work. Once cam.png's run wrote the folder (cam.jpg's result
    was away), the report links it for cam.png only, and cam.jpg's next
    result does not remove it, though cam.jpg's manifest still names it."""
    import cv2
    out = tmp_path / 'out'
    jpg = photo.rename(photo.with_name('cam.jpg'))
    png = jpg.with_name('cam.png')
    cv2.imwrite(str(png), cv2.imread(str(jpg)))
    run = dict(tiny_models, output=str(out))
    code, _, err = _main(capsys, '--config', _config(tmp_path, dict(
        run, input=str(jpg))), '--format', 'openpose')
    assert code == 0, err
    folder, jpg_result = out / 'cam_json', out / 'cam.jpg.json'
    assert json.loads((folder / '.pose-suite-export').read_text()) == {
        'result': '../cam.jpg.json', 'result_id': _result_id(jpg_result)}
    png_config = _config(tmp_path, dict(run, input=str(png)), 'png.json')
    code, _, err = _main(capsys, '--config', png_config,
                         '--format', 'openpose')
    assert code == 1
    assert err == (f'error: {folder} holds the openpose export of '
                   f'{jpg_result}; writing {out / "cam.png.json"}\'s would '
                   'replace it: write the results elsewhere, or remove that '
                   'result first\n')
    assert not (out / 'cam.png.json').exists()
    jpg_result.rename(tmp_path / 'away.json')
    code, _, err = _main(capsys, '--config', png_config,
                         '--format', 'openpose')
    assert code == 0, err
    (tmp_path / 'away.json').rename(jpg_result)
    assert _manifest(jpg_result) == {'openpose': _result_id(jpg_result)}
    code, _, err = _main(capsys, '--report', out)
    assert code == 0, err
    page = (out / 'report.html').read_text()
    assert page.count('./cam_json"') == 1
    at = page.index('./cam_json"')
    row = page[page.rindex('<tr', 0, at):at]  # the row linking it
    assert './cam.png.json"' in row and './cam.jpg.json"' not in row
    code, _, err = _main(capsys, '--config', _config(tmp_path, dict(
        run, input=str(jpg), kpt_thr=0.5)))
    assert code == 0, err
    assert json.loads((folder / '.pose-suite-export').read_text()) == {
        'result': '../cam.png.json', 'result_id': _result_id(
            out / 'cam.png.json')}
    assert _manifest(jpg_result) == {}


def test_a_changed_setting_is_named(tiny_models, photo, tmp_path, capsys):
    """bbox_thr and angles changed since the result: the warning names
    both, with their values, and no "nothing to resume" follows it (angles
    and kpt_thr alone are made again without the models:
    test_movement_runs)."""
    out = tmp_path / 'out'
    values = dict(tiny_models, input=str(photo), output=str(out))
    code, _, err = _main(capsys, '--config', _config(tmp_path, values))
    assert code == 0, err
    code, _, err = _main(capsys, '--config', _config(
        tmp_path, dict(values, angles=True, bbox_thr=0.5)), '--resume')
    assert code == 0, err
    lines = err.splitlines()
    assert f'warning: re-analysing {photo}: a.jpg.json was made with other '\
        'settings: bbox_thr 1.0 -> 0.5, angles false -> true' in lines, err
    assert 'nothing to resume' not in err


def test_changed_models_are_named_by_file():
    """A checkpoint of another name, a config edited in place, a
    threshold: each named; a meta without a setting names nothing."""
    from pose_suite.service.resume import ModelFile, changed_settings
    meta = {'detector': {'checkpoint': 'rtmdet.pth',
                         'checkpoint_sha256': 'a' * 64,
                         'config': '/models/rtmdet.py',
                         'config_sha256': 'b' * 64},
            'thresholds': {'bbox_thr': 0.3}, 'tracking': True}
    now = {'detector checkpoint': ModelFile('c' * 64, 'other.pth'),
           'detector config': ModelFile('d' * 64, 'rtmdet.py'),
           'bbox_thr': 0.3, 'tracking': False, 'nms_thr': 0.5}
    assert changed_settings(meta, now) == [
        'detector checkpoint rtmdet.pth -> other.pth',
        'detector config rtmdet.py (its content changed)',
        'tracking true -> false']


def test_formats_asked_for_since_are_named(tiny_models, photo, tmp_path,
                                           capsys):
    """--resume with formats only added: nothing analysed again, the
    exports written and named on the "up to date" line; once there, none
    is written or named."""
    out = tmp_path / 'out'
    config = _config(tmp_path, dict(tiny_models, input=str(photo),
                                    output=str(out), angles=True))
    assert _main(capsys, '--config', config)[0] == 0
    result = out / 'a.jpg.json'
    stamp = result.stat().st_mtime_ns
    code, out_text, err = _main(capsys, '--config', config, '--resume',
                                '--format', 'csv', '--format', 'angles')
    assert code == 0, err
    assert out_text.rstrip('\n').endswith(
        '; exports written now: csv, angles'), out_text
    assert result.stat().st_mtime_ns == stamp
    assert (out / 'a.jpg.angles.csv').read_text().startswith('frame_index,')
    code, out_text, err = _main(capsys, '--config', config, '--resume',
                                '--format', 'csv')
    assert code == 0, err
    assert out_text.startswith('up to date: ')
    assert 'exports written now' not in out_text


def test_a_resumed_run_counts_only_the_frames_it_analysed(
        tiny_models, tmp_path, monkeypatch, capsys):
    """Interrupted after 10 of 24 frames, then resumed: 14 frames
    analysed now, 10 kept, in the result, the line, and a batch's
    totals."""
    from pose_analysis_service import PoseAnalysisService
    from pose_suite.batch.local import BatchResult
    service = PoseAnalysisService(tiny_models)
    output = tmp_path / 'clip.json'
    fail_on_call(monkeypatch, service.detector, 'detect', 11,
                 KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        service.analyse_input(CLIP, output)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        done = service.analyse_input(CLIP, output, resume=True)
    assert (done.frames, done.frames_kept) == (14, 10)
    frames = json.loads(output.read_text())['frames']
    assert len(frames) == 24  # the result holds them all
    batch = BatchResult(seconds=7.0)
    batch.add(CLIP, done)
    assert batch.summary() == (
        '1 input(s) done: 14 frame(s), 0 person(s) in 7.0 s (2.00 '
        'frames/s); 10 frame(s) kept from interrupted runs')
    # The command line, resuming a run cut at frame 5.
    output.unlink()
    fail_on_call(monkeypatch, service.detector, 'detect', 6,
                 KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        service.analyse_input(CLIP, output)
    monkeypatch.undo()
    code, out_text, err = _main(capsys, '--config', _config(
        tmp_path, dict(tiny_models, input=str(CLIP), output=str(output))),
        '--resume')
    assert code == 0, err
    assert out_text.startswith('19 frame(s), 0 person(s) in '), out_text
    assert '(and 5 frame(s) kept from the interrupted run) -> ' in out_text
