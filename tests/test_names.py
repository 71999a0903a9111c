"""Names that could spoof or break a line: a RIGHT-TO-LEFT OVERRIDE that
makes ``innocent<RLO>gpj.exe`` read ``innocentexe.jpg``, isolates,
zero-width characters, C0/C1 controls, a newline, an undecodable byte.
Real files so named, through the command line: every terminal line, the
counter, summary.csv (escaped for people), summary.json (the exact names),
report.html (escaped and isolated, read from the page Chromium renders)."""
import csv
import json
import unicodedata
from pathlib import Path

import pytest
from conftest import COCO_IMAGES, data_file, run_cli

from pose_suite.errors import visible

#: name -> how a person must see it (written by hand, not by visible()).
SPOOFS = {
    'innocent\u202egpj.exe': 'innocent\\u202egpj.exe',
    'left\u2066isolated\u2069.jpg': 'left\\u2066isolated\\u2069.jpg',
    'zero\u200bwidth\ufeff.jpg': 'zero\\u200bwidth\\ufeff.jpg',
    'c0\x1b[31mred\x07.jpg': 'c0\\x1b[31mred\\x07.jpg',
    'c1\x85next\x9bline.jpg': 'c1\\x85next\\x9bline.jpg',
    'new\nline\ttab.jpg': 'new\\nline\\ttab.jpg',
    'para\u2029graph.jpg': 'para\\u2029graph.jpg',
    'plain é 日本 a\\b.jpg': 'plain é 日本 a\\b.jpg',  # kept as it is
}
#: Names shown escaped that are not analysed here: a byte that is not
#: UTF-8 (Python's surrogate escape) has no place in a result written as
#: UTF-8 (json.dumps(..., ensure_ascii=False) keeps it raw).
NOT_ANALYSED = {'bad\udcffbyte.jpg': 'bad\\udcffbyte.jpg'}
HIDDEN = ('Cc', 'Cf', 'Cs', 'Zl', 'Zp')


def hidden_characters(text: str) -> set:
    return {char for char in text if unicodedata.category(char) in HIDDEN}


@pytest.mark.parametrize('name', {**SPOOFS, **NOT_ANALYSED})
def test_visible_shows_what_hides(name):
    assert visible(name) == {**SPOOFS, **NOT_ANALYSED}[name]


#: Characters that show nothing outside the categories above (Unicode's
#: Default_Ignorable_Code_Point, and BRAILLE PATTERN BLANK), written by hand.
BLANKS = {'\u3164': '\\u3164', '\u115f': '\\u115f', '\u1160': '\\u1160',
          '\uffa0': '\\uffa0', '\u2800': '\\u2800', '\ufe00': '\\ufe00',
          '\ufe0f': '\\ufe0f', '\U000e0100': '\\U000e0100',
          '\U000e01ef': '\\U000e01ef', '\u034f': '\\u034f',
          '\u180b': '\\u180b', '\u17b4': '\\u17b4'}


@pytest.mark.parametrize('char', BLANKS)
def test_visible_shows_blank_characters(char):
    assert visible(f'cam{char}.jpg') == f'cam{BLANKS[char]}.jpg'


def test_visible_keeps_letters_next_to_blanks():
    """Hangul syllables and jamo, braille dots, a heart: shown as they
    are."""
    for text in ('\ud55c\uae00.jpg', '\u1100\u1161.jpg', '\u2801.jpg',
                 '\u2764.jpg', '\uffa1.jpg'):
        assert visible(text) == text


def test_the_ray_executors_lines_too():
    """Ray's per-input line is finished_line with the node and worker."""
    from pose_suite.batch.local import finished_line
    from pose_suite.service.analyser import InputResult
    done = InputResult(Path('/out/new\nline\u202e.mp4.json'), 'done', 5, 2)
    line = finished_line(3, 4, '/clips/new\nline\u202e.mp4', done,
                         ' (node 10.0.0.2, worker 1)')
    assert line == ('[3/4] new\\nline\\u202e.mp4: 5 frame(s), 2 person(s) '
                    '-> /out/new\\nline\\u202e.mp4.json (node 10.0.0.2, '
                    'worker 1)')


@pytest.fixture(scope='module')
def spoof_run(tiny_models, tmp_path_factory):
    """A folder of real photos with the SPOOFS names and an empty
    Thumbs.db (sorted first), analysed by the command line."""
    import cv2
    folder = tmp_path_factory.mktemp('names')
    inputs = folder / 'in'
    inputs.mkdir()
    image = cv2.imread(str(data_file(COCO_IMAGES[3])))
    for number, name in enumerate(SPOOFS):
        crop = image[number * 30:number * 30 + 32, 0:48]
        ok, jpeg = cv2.imencode('.jpg', crop)
        (inputs / name).write_bytes(jpeg.tobytes())
    (inputs / 'Thumbs.db').write_bytes(b'')
    config = folder / 'config.json'
    config.write_text(json.dumps(tiny_models))
    result = run_cli('pose_analysis_service.py', '--config', config,
                     '--input', inputs, '--output', folder / 'out')
    assert result.returncode == 0, result.stderr
    return inputs, folder / 'out', result


def test_terminal_lines_show_names_escaped(spoof_run):
    inputs, out, result = spoof_run
    assert not hidden_characters(result.stdout.replace('\n', '')), \
        result.stdout
    assert not hidden_characters(result.stderr.replace('\n', '')), \
        result.stderr
    lines = result.stdout.splitlines()
    finished = [line for line in lines if line.startswith('[')]
    assert len(finished) == len(SPOOFS) and len(lines) == len(SPOOFS) + 1
    shown = {line.split('] ', 1)[1].split(': 1 frame(s)')[0]
             for line in finished}
    assert shown == set(SPOOFS.values())
    for line in finished:  # the result's path too
        name = line.split('] ', 1)[1].split(': 1 frame(s)')[0]
        assert line.endswith(f'-> {out}/{name}.json'), line


def test_counter_counts_media_only(spoof_run):
    """The empty Thumbs.db, first in name order, turns out not to be media
    only when opened: it is neither numbered nor in the total."""
    _, _, result = spoof_run
    counters = [line.split(']')[0] + ']' for line in result.stdout.split(
        '\n') if line.startswith('[')]
    total = len(SPOOFS)
    assert counters == [f'[{n}/{total}]' for n in range(1, total + 1)]
    assert 'warning: skipped 1 non-media file(s): Thumbs.db' in \
        result.stderr


def test_summary_csv_for_people_json_exact(spoof_run):
    inputs, out, _ = spoof_run
    with open(out / 'summary.csv', newline='', encoding='utf-8') as handle:
        rows = list(csv.DictReader(handle))
    done = {row['input'] for row in rows if row['status'] == 'done'}
    assert done == {f'{inputs}/{shown}' for shown in SPOOFS.values()}
    assert not any(hidden_characters(value) for row in rows
                   for value in row.values())
    document = json.loads((out / 'summary.json').read_text())
    assert {row['input'] for row in document['inputs']
            if row['status'] == 'done'} == {
        str(inputs / name) for name in SPOOFS}


def test_report_names_escaped_and_isolated(spoof_run):
    inputs, out, _ = spoof_run
    page = (out / 'report.html').read_text(encoding='utf-8')
    assert not hidden_characters(page.replace('\n', ''))
    for shown in SPOOFS.values():
        escaped = shown.replace('&', '&amp;').replace('<', '&lt;')
        assert f'<bdi class="path">{inputs}/{escaped}</bdi>' in page


@pytest.mark.browser
def test_report_as_chromium_renders_it(spoof_run):
    """The rendered text of each input reads as its escaped name, in a
    <bdi>, every character left of the next on its line (nothing
    reordered)."""
    from test_report import CHROMIUM
    if not CHROMIUM.exists():
        pytest.skip('Debian\'s chromium is not installed')
    from playwright.sync_api import sync_playwright
    inputs, out, _ = spoof_run
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=['--no-sandbox',
                                                 '--disable-gpu'])
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        page.goto((out / 'report.html').as_uri())
        paths = page.eval_on_selector_all('.path', '''ps => ps.map(p => {
            const range = document.createRange(), text = p.firstChild;
            const xs = [];
            for (let i = 0; i < text.length; i++) {
              range.setStart(text, i); range.setEnd(text, i + 1);
              const box = range.getBoundingClientRect();
              xs.push([box.top, box.left]); }
            return [p.tagName, p.innerText, xs]; })''')
        browser.close()
    shown = {f'{inputs}/{name}': name for name in SPOOFS.values()}
    rendered = {text: (tag, xs) for tag, text, xs in paths}
    assert set(shown) <= set(rendered)
    for text in shown:
        tag, boxes = rendered[text]
        assert tag == 'BDI'
        for (top, left), (next_top, next_left) in zip(boxes, boxes[1:]):
            # right of the character before, or on a line below it
            assert next_left > left or next_top > top + 8, (text, boxes)


@pytest.fixture(scope='module')
def undecodable_run(tiny_models, tmp_path_factory):
    """A folder of a photo and its copy named with a byte that is not
    UTF-8 (``\\xff``: Python's ``\\udcff``), analysed by the command line.
    OpenCV crashes the process (exit 139) on such a name."""
    import shutil
    folder = tmp_path_factory.mktemp('undecodable')
    inputs = folder / 'in'
    inputs.mkdir()
    shutil.copy(data_file(COCO_IMAGES[3]), inputs / 'a.jpg')
    shutil.copy(inputs / 'a.jpg', inputs / 'bad\udcffbyte.jpg')
    config = folder / 'config.json'
    config.write_text(json.dumps(tiny_models))
    result = run_cli('pose_analysis_service.py', '--config', config,
                     '--input', inputs, '--output', folder / 'out')
    return inputs, folder / 'out', result


def test_undecodable_name_is_one_failed_input(undecodable_run):
    """The batch goes on: a.jpg done, the other one failed row whose
    reason says to rename it, the summary written, exit status 1."""
    inputs, out, result = undecodable_run
    assert result.returncode == 1, result.stdout + result.stderr
    assert (out / 'a.jpg.json').is_file()
    assert not hidden_characters(result.stderr.replace('\n', ''))
    assert ('warning: bad\\udcffbyte.jpg failed: input name is not valid '
            'UTF-8' in result.stderr or f'{inputs}/bad\\udcffbyte.jpg '
            'failed: input name is not valid UTF-8' in result.stderr), \
        result.stderr
    document = json.loads((out / 'summary.json').read_text())
    status = {Path(row['input']).name: row['status']
              for row in document['inputs']}
    assert status == {'a.jpg': 'done', 'bad\udcffbyte.jpg': 'failed'}


def test_report_of_a_result_naming_it_has_no_thumbnail(undecodable_run):
    """A result whose source is such a name (renamed since, or from an
    earlier version): --report writes the page, that row without a
    thumbnail and saying why."""
    inputs, out, _ = undecodable_run
    text = (out / 'a.jpg.json').read_text(encoding='utf-8')
    source = json.dumps(str(inputs / 'a.jpg'))
    assert source in text
    (out / 'b.jpg.json').write_text(text.replace(source, json.dumps(
        str(inputs / 'bad\udcffbyte.jpg'))))  # ASCII escapes: \udcff
    result = run_cli('pose_analysis_service.py', '--report', out)
    assert result.returncode == 0, result.stdout + result.stderr
    page = (out / 'report.html').read_text(encoding='utf-8')
    assert page.count('class="thumbnail"') == 1
    assert 'no picture: pose_suite.errors.InputError: input name is not ' \
        'valid UTF-8' in page
