"""report.html opened in headless Chromium (Debian's, driven by Playwright)
with hostile and odd file names and a hostile earlier summary.json: no
script of theirs runs, no request leaves the page, every link is encoded
and resolves to its file; colours, wrapping, durations, settings and the
enlarged pictures read from the rendered page."""
import csv
import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from conftest import ROOT
from test_report import browser  # noqa: F401 - the same Chromium
from test_report import wait_for

TESTS_DATA = ROOT / 'tests' / 'data'
RESULT = TESTS_DATA / 'results_c8e1fd9' / 'two_people_24frames_4fps_gop5.mp4.json'
VIDEO = TESTS_DATA / 'two_people_24frames_4fps_gop5.mp4'
HOSTILE_LINK = ("javascript:location='http:127.0.0.1:8765?leak='+"
                "document.title;x.mp4")
NAMES = [HOSTILE_LINK, 'take#1.mp4', 'a?b.mp4', 'c:d.mp4', 'new\nline.mp4',
         '<img src=x onerror=alert(7)>.mp4', '%41 100%.mp4']
HOSTILE_STATUS = 'x"><svg/onload=alert(1)>'
LONG_REASON = 'the decoder said ' + 'E' * 700


def _result(folder: Path, name: str) -> Path:
    """A result (of the suite's first version) of the real test clip, named
    after ``name``."""
    text = RESULT.read_text()
    text = text.replace('"/tmp/old/tests/data/two_people_24frames_4fps_gop5'
                        '.mp4"', json.dumps(str(VIDEO)), 1)
    path = folder / f'{name}.json'
    path.write_text(text)
    return path


@pytest.fixture(scope='module')
def hostile(tmp_path_factory):
    """A folder of results with hostile names, overlays and exports beside
    two of them, and an earlier summary.json with a hostile status, input
    and reason and a failure with a very long reason; ``--report`` run on
    it (as ``pose_analysis_service.py --report`` does)."""
    folder = tmp_path_factory.mktemp('hostile')
    for name in NAMES:
        _result(folder, name)
    for name in ('take#1.mp4', HOSTILE_LINK):
        (folder / f'{name}.overlay.mp4').write_bytes(VIDEO.read_bytes())
        (folder / f'{name}.csv').write_text('frame\n')
        (folder / f'{name}.coco.json').write_text('{}')
        # Made from this result, as the manifest beside it says (a result
        # of the first version is known by its size and mtime).
        stat = (folder / f'{name}.json').stat()
        made_from = f'{stat.st_size}-{stat.st_mtime_ns}'
        (folder / f'.{name}.json.exports.json').write_text(json.dumps(
            dict(dict.fromkeys(('csv', 'coco'), made_from),
                 overlay={'from': made_from,
                          'file': f'{name}.overlay.mp4'})))
    (folder / 'summary.json').write_text(json.dumps({'inputs': [
        {'input': '/clips/x.mp4', 'status': HOSTILE_STATUS, 'reason': 'r'},
        {'input': '</td><script>alert(3)</script>', 'status': 'failed',
         'reason': '<svg onload=alert(4)>'},
        {'input': '/clips/long.mp4', 'status': 'failed',
         'reason': LONG_REASON},
        {'input': '/clips/notes.txt', 'status': 'not media',
         'reason': 'a text file'},
        {'input': str(VIDEO), 'status': HOSTILE_STATUS,
         'result': 'take#1.mp4.json'}]}))
    from pose_suite.outputs.report import publish
    from pose_suite.outputs.summary import rows_from_folder
    written = publish(folder, lambda: rows_from_folder(folder))
    assert [p.name for p in written] == [
        'summary.csv', 'summary.json', 'report.html']
    return folder


class Watched:
    """A page at 1400x1000 and what it did: dialogs, console messages,
    requests."""

    def __init__(self, browser, page_path: Path):
        self.page = browser.new_page(viewport={'width': 1400,
                                               'height': 1000})
        self.dialogs, self.console, self.requests = [], [], []
        self.page.on('dialog', lambda d: (self.dialogs.append(d.message),
                                          d.dismiss()))
        self.page.on('console', lambda m: self.console.append(m.text))
        self.page.on('request', lambda r: self.requests.append(r.url))
        self.page.goto(page_path.as_uri())
        self.page.mouse.wheel(0, 100000)  # pictures decode in view
        wait_for(self.page,
                 'Array.from(document.querySelectorAll("td img"))'
                 '.every(i => i.complete && i.src)')


def test_no_hostile_script_runs_nor_request_leaves(hostile, browser):
    watched = Watched(browser, hostile / 'report.html')
    page = watched.page
    csp = page.locator('meta[http-equiv="Content-Security-Policy"]'
                       ).get_attribute('content')
    assert 'unsafe-inline' not in csp and "default-src 'none'" in csp
    assert page.evaluate('document.querySelectorAll("svg, script").length'
                         ) == 1  # the page's own script only
    # Each link, clicked, opens a file of the folder; nothing else is asked.
    hrefs = page.eval_on_selector_all('a', 'as => as.map(a => '
                                      'a.getAttribute("href"))')
    assert hrefs and all(href.startswith('./') for href in hrefs), hrefs
    for index in range(len(hrefs)):
        page.locator('a').nth(index).click(modifiers=['Shift'])
    page.wait_for_timeout(500)
    page.goto((hostile / 'report.html').as_uri())
    page.locator('a', has_text='result').first.click()
    page.wait_for_load_state()
    assert watched.dialogs == [] and watched.console == []
    assert all(urlparse(url).scheme in ('file', 'data')
               for url in watched.requests), watched.requests
    assert all(Path(unquote(urlparse(url).path)).is_relative_to(hostile)
               for url in watched.requests if url.startswith('file:'))
    # The hostile status is not carried into the new summary.
    document = (hostile / 'summary.json').read_text()
    assert HOSTILE_STATUS not in document and 'svg/onload' not in document
    statuses = [row['status'] for row in json.loads(document)['inputs']]
    assert set(statuses) <= {'failed', 'not media', 'done', 'up to date'}
    page.close()


def test_links_are_encoded_and_resolve_to_the_files(hostile, browser):
    watched = Watched(browser, hostile / 'report.html')
    links = watched.page.eval_on_selector_all(
        'a', 'as => as.map(a => [a.textContent, a.href])')
    resolved = {Path(unquote(urlparse(url).path)) for _, url in links}
    assert {hostile / f'{name}.json' for name in NAMES} <= resolved
    for name in ('take#1.mp4', HOSTILE_LINK):
        assert {hostile / f'{name}{suffix}' for suffix in (
            '.overlay.mp4', '.csv', '.coco.json')} <= resolved
    assert all(path.is_file() for path in resolved)
    labels = {label for label, _ in links}
    assert labels == {'result', 'overlay mp4', 'csv', 'coco'}
    watched.page.close()


def _colour(page, selector: str) -> str:
    return page.eval_on_selector(selector,
                                 'e => getComputedStyle(e).color')


def test_colours_wrapping_durations_settings(hostile, browser):
    watched = Watched(browser, hostile / 'report.html')
    page = watched.page
    body = _colour(page, 'body')
    failed = page.locator('#totals span', has_text='failed')
    assert failed.inner_text() == '2 failed'
    assert failed.evaluate('e => getComputedStyle(e).color') != body
    for text in ('not media', 'done', 'up to date'):
        span = page.locator('#totals span', has_text=text)
        assert span.evaluate('e => getComputedStyle(e).color') == body
    reasons = page.eval_on_selector_all(
        '.reason', 'rs => rs.map(r => [r.textContent, '
                   'getComputedStyle(r).color])')
    colour_of = dict(reasons)
    assert colour_of['a text file'] != colour_of[LONG_REASON]
    assert colour_of['a text file'] != 'rgb(170, 0, 0)'
    # The long reason wraps: nothing overflows at 1400 px.
    assert page.evaluate('document.documentElement.scrollWidth') <= 1400
    table = page.evaluate('[document.querySelector("#results").scrollWidth,'
                          ' document.documentElement.clientWidth]')
    assert table[0] <= table[1]
    # h:mm:ss on the page, seconds in the CSV.
    column = list(page.locator('th').all_inner_texts()).index('length')
    lengths = page.locator('#results tbody tr').evaluate_all(
        f'rows => rows.map(r => r.cells[{column}].textContent)')
    assert '0:06.0' in lengths
    with open(hostile / 'summary.csv', newline='') as handle:
        assert '6.0' in {row['duration_s'] for row in csv.DictReader(handle)}
    settings = page.locator('#settings').inner_text()
    assert 'thresholds' in settings and 'kpt_thr' in settings
    page.close()


def test_pictures_readable_and_enlarged(hostile, browser):
    page = Watched(browser, hostile / 'report.html').page
    sizes = page.eval_on_selector_all(
        'img.plot', 'ps => ps.map(p => [p.naturalWidth, p.width])')
    assert sizes and all(natural == shown == 340 for natural, shown in sizes)
    page.locator('img.plot').first.click()
    lightbox = page.locator('#lightbox img')
    assert lightbox.is_visible()
    assert lightbox.evaluate('i => i.width') >= 900
    page.keyboard.press('Escape')
    assert not lightbox.is_visible()
    page.locator('img.thumbnail').first.click()
    assert lightbox.is_visible()
    page.close()


def test_no_failures_is_not_red(hostile, browser, tmp_path):
    folder = tmp_path / 'calm'
    folder.mkdir()
    _result(folder, 'clip.mp4')
    from pose_suite.outputs.report import publish
    from pose_suite.outputs.summary import rows_from_folder
    publish(folder, lambda: rows_from_folder(folder))
    page = Watched(browser, folder / 'report.html').page
    failed = page.locator('#totals span', has_text='failed')
    assert failed.inner_text() == '0 failed'
    assert failed.evaluate('e => getComputedStyle(e).color') == _colour(
        page, 'body')
    page.close()
