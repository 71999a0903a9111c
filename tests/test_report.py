"""summary.csv, summary.json and report.html after a batch: numbers checked
against values computed here from the result JSONs, and the page opened in
headless Chromium (Debian's, driven by Playwright) as a person sees it."""
import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import (COCO_IMAGES, ROOT, assert_one_line_error, data_file,
                      real_frames, run_cli, write_avi)

CHROMIUM = Path('/usr/bin/chromium')
TESTS_DATA = ROOT / 'tests' / 'data'
OLD_RESULTS = TESTS_DATA / 'results_c8e1fd9'


@pytest.fixture(scope='module')
def batch(analysis_service, tmp_path_factory):
    """A folder as users have them, through ``run_many``: a tracked 3-frame
    clip, a photo in a sub-folder, a README and a video cut to 2 KB."""
    folder = tmp_path_factory.mktemp('batch')
    write_avi(folder / 'clip.avi', real_frames(3))
    (folder / 'sub').mkdir()
    shutil.copy(data_file(COCO_IMAGES[1]), folder / 'sub')
    (folder / 'README.md').write_text('# what these are\n')
    (folder / 'broken.mp4').write_bytes(
        (TESTS_DATA / 'two_people_24frames_270p.mp4').read_bytes()[:2000])
    out = tmp_path_factory.mktemp('out')
    from pose_suite.media.inputs import expand_inputs
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(analysis_service, 'config', dataclasses.replace(
            analysis_service.config, output=out, recursive=True))
        analysis_service.run_many(expand_inputs(folder, recursive=True,
                                                exclude=out))
    return folder, out


def _csv_rows(folder: Path) -> list:
    with open(folder / 'summary.csv', newline='', encoding='utf-8') as handle:
        return list(csv.DictReader(handle))


def _expected(result_path: Path) -> dict:
    """A row's numbers from the whole JSON, parts told apart by name."""
    result = json.loads(result_path.read_text())
    names = result['meta']['keypoint_names']
    part_of = ['face' if name.startswith('face-') else 'hands' if any(
        word in name for word in ('hand', 'thumb', 'finger')) else 'body'
        for name in names]
    counts = [len(frame['persons']) for frame in result['frames']]
    scores = {'body': [], 'face': [], 'hands': []}
    for frame in result['frames']:
        for person in frame['persons']:
            for part, score in zip(part_of, person['keypoint_scores']):
                scores[part].append(score)
    times = [frame['timestamp_s'] for frame in result['frames']]
    fps = result['meta']['fps']
    tracks = {p['track_id'] for f in result['frames'] for p in f['persons']
              if 'track_id' in p}
    return {
        'kind': result['meta']['kind'], 'frames': len(counts),
        'persons': sum(counts), 'persons_per_frame_max': max(counts),
        'persons_per_frame_mean': np.mean(counts),
        'frames_with_nobody': counts.count(0),
        **{f'{part}_score_mean': np.mean(values) if values else None
           for part, values in scores.items()},
        'tracks': len(tracks) if result['meta'].get('tracking') else None,
        'duration_s': (times[-1] - times[0] + 1 / fps) if fps else None,
        'seconds': result['meta']['run']['seconds']}


def _assert_row_matches(row: dict, result_path: Path) -> None:
    for key, value in _expected(result_path).items():
        if value is None:
            assert row[key] == '', key
        elif isinstance(value, str):
            assert row[key] == value, key
        else:
            assert float(row[key]) == pytest.approx(value, abs=1e-3), key


def test_summary_has_a_row_per_input_with_its_numbers(batch):
    folder, out = batch
    rows = _csv_rows(out)
    assert [(Path(r['input']).name, r['status']) for r in rows] == [
        ('broken.mp4', 'failed'), ('README.md', 'not media'),
        ('clip.avi', 'done'), (Path(COCO_IMAGES[1]).name, 'done')]
    assert 'no video frame can be decoded' in rows[0]['reason']
    assert rows[1]['reason'] == 'a text file'
    assert rows[3]['result'] == f'sub/{Path(COCO_IMAGES[1]).name}.json'
    for row in rows[2:]:
        _assert_row_matches(row, out / row['result'])
    assert rows[2]['tracks'] != '' and rows[3]['tracks'] == ''
    document = json.loads((out / 'summary.json').read_text())
    assert [{k: str(v) for k, v in row.items()}
            for row in document['inputs']] == rows
    assert document['totals'] == {
        'inputs': 4, 'failed': 1, 'not media': 1, 'done': 2,
        'up to date': 0, 'frames': 4, 'persons': 8,
        'seconds': pytest.approx(sum(float(r['seconds'] or 0)
                                     for r in rows), abs=1e-3)}


def test_resume_updates_the_summary(analysis_service, batch, monkeypatch):
    """--resume: the results kept are 'up to date' with their numbers, the
    broken file fails again, and the files are written anew."""
    folder, out = batch
    before = json.loads((out / 'summary.json').read_text())
    from pose_suite.media.inputs import expand_inputs
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, output=out, recursive=True, resume=True))
    analysis_service.run_many(expand_inputs(folder, recursive=True,
                                            exclude=out))
    after = json.loads((out / 'summary.json').read_text())
    assert [r['status'] for r in after['inputs']] == [
        'failed', 'not media', 'up to date', 'up to date']
    for old, new in zip(before['inputs'], after['inputs']):
        assert {**old, 'status': ''} == {**new, 'status': ''}


def test_report_rebuilt_from_results_of_the_first_version(tmp_path):
    """``--report`` on results written by the suite's first version
    (commit c8e1fd9; tests/data/README.md says how they were made), beside
    an earlier summary's failure and a damaged result: rows and numbers
    from the JSONs, the failure kept, the damage said, nothing analysed
    (no config is read)."""
    folder = tmp_path / 'old'
    shutil.copytree(OLD_RESULTS, folder)
    (folder / 'summary.json').write_text(json.dumps({'inputs': [
        {'input': '/clips/lost.mp4', 'status': 'failed',
         'reason': 'input not found: /clips/lost.mp4'}]}))
    # A result damaged after its meta block: a row that says so.
    text = (OLD_RESULTS / 'vfr_30_then_5fps.mp4.json').read_text()
    (folder / 'damaged.mp4.json').write_text(text[:text.index(
        '{"frame_index"') + 40])
    result = run_cli('pose_analysis_service.py', '--report', folder,
                     '--config', tmp_path / 'no_such_config.json')
    assert result.returncode == 0, result.stderr
    assert '4 input(s)' in result.stdout
    rows = _csv_rows(folder)
    assert [r['status'] for r in rows] == ['failed', 'failed', 'done', 'done']
    assert rows[0]['reason'] == 'input not found: /clips/lost.mp4'
    assert rows[1]['reason'].startswith('its result cannot be read: ')
    assert 'damaged.mp4.json is cut short' in rows[1]['reason']
    rows = rows[1:]
    for row in rows[1:]:
        _assert_row_matches(row, folder / row['result'])
        # No frames lost or damaged recorded then: empty, not 0.
        assert (row['reason'], row['frames_failed'],
                row['frames_unread_at_end'], row['frames_damaged']) == \
            ('', '', '', '')
    nobody = next(r for r in rows if r['persons'] == '0')
    assert nobody['frames_with_nobody'] == nobody['frames'] == '24'
    assert (folder / 'report.html').is_file()


def test_report_that_fails_is_one_warning(config_values, write_config,
                                          tmp_path):
    """A folder named report.html where a batch writes its report refuses
    the batch before any work (issue 36, point 7); a report that cannot be
    made when rebuilt (``--report``: the same folder there) is one warning
    line, and the results and summary stay."""
    clips = tmp_path / 'clips'
    clips.mkdir()
    write_avi(clips / 'a.avi', real_frames(1))
    out = tmp_path / 'out'
    (out / 'report.html').mkdir(parents=True)
    config = write_config(dict(config_values, input=str(clips),
                               output=str(out)))
    refused = run_cli('pose_analysis_service.py', '--config', config)
    assert_one_line_error(refused, 'report.html', 'nothing was analysed')
    assert not (out / 'a.avi.json').exists()
    (out / 'report.html').rmdir()
    assert run_cli('pose_analysis_service.py', '--config',
                   config).returncode == 0
    (out / 'report.html').unlink()
    (out / 'report.html').mkdir()
    result = run_cli('pose_analysis_service.py', '--report', out)
    warnings = [line for line in result.stderr.splitlines()
                if 'report' in line]
    assert len(warnings) == 1 and warnings[0].startswith(
        'warning: no report written in'), result.stderr
    assert (out / 'a.avi.json').is_file()
    assert len(_csv_rows(out)) == 1


def test_report_key_off(config_values, write_config, tmp_path):
    clips = tmp_path / 'clips'
    clips.mkdir()
    write_avi(clips / 'a.avi', real_frames(1))
    config = write_config(dict(config_values, input=str(clips),
                               output=str(tmp_path / 'out'), report=False))
    result = run_cli('pose_analysis_service.py', '--config', config)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'out' / 'summary.csv').is_file()
    assert not (tmp_path / 'out' / 'report.html').exists()


@pytest.fixture(scope='module')
def browser():
    if not CHROMIUM.exists():
        pytest.skip('Debian\'s chromium is not installed (make test installs '
                    'it where it runs as root)')
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=['--no-sandbox', '--disable-gpu',
                  '--disable-background-networking', '--disable-sync',
                  '--disable-component-update', '--no-first-run'])
        yield chromium
        chromium.close()


def wait_for(page, condition: str, seconds: float = 60) -> None:
    """Poll the JavaScript expression ``condition`` from here until it is
    true (``page.wait_for_function`` evaluates a string in the page, which
    the report's Content-Security-Policy forbids: it failed now and then)."""
    import time
    deadline = time.monotonic() + seconds
    while not page.evaluate(f'() => {condition}'):
        assert time.monotonic() < deadline, condition
        # The page decodes a picture when it comes into view: bring the
        # first one still without its picture there.
        page.evaluate('() => { const i = Array.from(document.querySelector'
                      'All("td img")).find(i => !(i.complete && i.src)); '
                      'if (i) i.scrollIntoView(); }')
        time.sleep(0.05)


def test_report_in_a_browser(batch, browser):
    """What a person sees: one row per input, the failure first with its
    reason, thumbnails and plots decoded from the page itself, columns
    that sort, and no request but the file."""
    _, out = batch
    page = browser.new_page(viewport={'width': 1300, 'height': 500})
    requests = []
    page.on('request', lambda request: requests.append(request.url))
    page.goto((out / 'report.html').as_uri())
    rows = page.locator('#results tbody tr')
    assert rows.count() == 4
    first = rows.nth(0).inner_text()
    assert 'broken.mp4' in first and 'failed' in first
    assert 'no video frame can be decoded' in first
    page.mouse.wheel(0, 5000)  # the pictures are decoded when in view
    wait_for(page, 'Array.from(document.querySelectorAll("td img"))'
             '.every(i => i.complete && i.src)')
    assert requests == [(out / 'report.html').as_uri()]
    pictures = page.evaluate(
        'Array.from(document.querySelectorAll("td img")).map(i => '
        '[i.className, i.naturalWidth, i.src.slice(0, 22)])')
    assert sorted(pictures) == sorted(
        [['thumbnail', 240, 'data:image/webp;base64'],
         ['plot', 340, 'data:image/webp;base64'],
         ['thumbnail', pictures[-1][1], 'data:image/webp;base64']])
    assert pictures[-1][1] > 0
    page.locator('th', has_text='frames with nobody').click()
    page.locator('th', has_text='frames').first.click()  # ascending
    frames = [rows.nth(i).locator('td').nth(4).inner_text()
              for i in range(4)]
    assert frames == ['', '', '1', '3']
    assert len(requests) == 1
    page.close()


def test_odd_numbers_and_formula_names_in_the_summary(tmp_path):
    """A result whose meta numbers are not numbers (NaN, text) is one
    failed row, and the summary and page are still written; a cell that
    would start a spreadsheet formula (an input named
    ``=HYPERLINK(...)``) is written as text (a leading ')."""
    folder = tmp_path / 'odd'
    shutil.copytree(OLD_RESULTS, folder)
    text = (OLD_RESULTS / 'vfr_30_then_5fps.mp4.json').read_text()
    (folder / 'nan_seconds.mp4.json').write_text(
        text.replace('"seconds": 17.491', '"seconds": NaN', 1))
    (folder / 'text_fps.mp4.json').write_text(
        text.replace('"fps": 18.0', '"fps": "abc"', 1))
    shutil.copy(OLD_RESULTS / 'vfr_30_then_5fps.mp4.json',
                folder / '=HYPERLINK("http:x")+.mp4.json')
    result = run_cli('pose_analysis_service.py', '--report', folder,
                     '--config', tmp_path / 'no_such_config.json')
    assert result.returncode == 0, result.stderr
    rows = _csv_rows(folder)
    failed = {row['result']: row['reason'] for row in rows
              if row['status'] == 'failed'}
    assert 'meta.run.seconds is not a number' in \
        failed['nan_seconds.mp4.json']
    assert 'meta.fps is not a number' in failed['text_fps.mp4.json']
    assert "'=HYPERLINK(\"http:x\")+.mp4.json" in [r['result'] for r in rows]
    assert not any(value.startswith(('=', '+', '-', '@'))
                   for row in rows for value in row.values())
    summary = json.loads((folder / 'summary.json').read_text())
    assert len(summary['inputs']) == 5
    assert (folder / 'report.html').is_file()


def test_analysed_says_the_part_a_result_holds():
    """summary.csv's ``analysed``: a video's range and step, the person
    limit; "" for all of it, for an image's range, and for results older
    than ``meta.selection`` or with odd values."""
    from pose_suite.outputs.summary import analysed
    whole = {'time_range': None, 'frame_range': None, 'frame_step': 1,
             'target_fps': 0.0}
    video = {'kind': 'video', 'max_persons': 0, 'person_order': 'largest'}
    assert analysed(dict(video, selection=dict(
        whole, time_range=[12.5, 30], frame_step=4))) == \
        '12.5-30 s, every 4 frames'
    assert analysed(dict(video, selection=dict(
        whole, frame_range=[300, None], target_fps=5.0), max_persons=2,
        person_order='score')) == \
        'frames 300-, 5 fps, at most 2 persons a frame (score)'
    assert analysed(dict(video, selection=whole, max_persons=1)) == \
        'at most 1 person a frame (largest)'
    assert analysed(dict(video, selection=whole)) == ''
    assert analysed({'kind': 'video', 'fps': 25.0}) == ''  # older result
    assert analysed(dict(video, kind='image', selection=dict(
        whole, time_range=[1, 2]))) == ''
    assert analysed(dict(video, selection=dict(
        whole, time_range=['x', None]), max_persons='2')) == ''
