"""The angle plots of report.html read at the page's size: 340 px wide,
shown 1:1, every text on them at least as large as the table's text (the
page's style sheet), a larger drawing shown on a click, and an angle null
in every frame left out of the plot and the legend, with a note.

Results are the suite's own format, written here from the first version's
result of the test clip with angles and track ids added (no model run)."""
import base64
import io
import json
import re

import pytest
from conftest import ROOT
from test_report import browser  # noqa: F401 - the same Chromium
from test_report import wait_for

from pose_suite.outputs.angle_plots import (angle_figure, angle_plots_html,
                                            angle_tracks, drawn_and_empty)
from pose_suite.outputs.angles import PLOTTED
from pose_suite.outputs.report_style import STYLE
from pose_suite.outputs.results import record_line, write_result

TESTS_DATA = ROOT / 'tests' / 'data'
RESULT = TESTS_DATA / 'results_c8e1fd9' / 'two_people_24frames_4fps_gop5.mp4.json'
VIDEO = TESTS_DATA / 'two_people_24frames_4fps_gop5.mp4'
#: The table's text in CSS px, from the page's style sheet.
TABLE_PX = float(re.search(r'body \{ font: (\d+)px', STYLE).group(1))
PERSON = {'bbox': [10.0, 10.0, 60.0, 120.0], 'bbox_score': 0.9,
          'keypoints': [[30.0, 60.0]] * 133, 'keypoint_scores': [0.5] * 133}


@pytest.fixture(scope='module')
def angles_result(tmp_path_factory):
    """Person 0: every angle but the left knee (null in every frame);
    person 1: no angle in any frame; person 2: all five."""
    whole = json.loads(RESULT.read_text())
    meta = dict(whole['meta'], source=str(VIDEO), angles=list(PLOTTED),
                tracking=True)
    frames = []
    for frame in whole['frames']:
        persons = []
        for track in (0, 1, 2):  # the clip's result has no person
            person = dict(PERSON, track_id=track, angles={
                name: None if track == 1 or (
                    track == 0 and name == 'left knee')
                else 90.0 + 10 * index + frame['frame_index']
                for index, name in enumerate(PLOTTED)})
            persons.append(person)
        frames.append(dict(frame, persons=persons))
    folder = tmp_path_factory.mktemp('angle_plots')
    path = folder / 'clip.mp4.json'
    with open(path, 'w', encoding='utf-8') as handle:
        write_result(handle, meta, map(record_line, frames))
    return path


def _size(data_uri: str):
    from PIL import Image
    data = base64.b64decode(data_uri.split(',', 1)[1])
    return Image.open(io.BytesIO(data)).size


def test_plots_sizes_notes_and_empty_series(angles_result):
    page = angle_plots_html(angles_result)
    images = re.findall(r'<img class="plot angles" alt="angles of person '
                        r'(\d+) [^>]*data-src="([^"]+)" data-full="([^"]+)"',
                        page)
    assert [track for track, _, _ in images] == ['0', '2']
    for _, small, large in images:
        assert _size(small) == (340, 190)  # shown 1:1 in the 340 px column
        assert _size(large) == (850, 475)
    notes = re.findall(r'<div class="note">([^<]*)</div>', page)
    assert notes == ['person 0: no value in any frame for left knee',
                     'person 1: no value in any frame for right knee, left '
                     'knee, right hip, left hip, trunk']


def test_legend_lists_the_drawn_series_and_text_is_legible(angles_result):
    from matplotlib import pyplot
    series = angle_tracks(angles_result)[0]
    drawn, empty = drawn_and_empty(series)
    assert empty == ['left knee']
    figure = angle_figure(0, drawn)
    try:
        axis = figure.axes[0]
        legend = [text.get_text() for text in axis.get_legend().get_texts()]
        assert legend == ['right knee', 'right hip', 'left hip', 'trunk']
        figure.canvas.draw()
        texts = [text for text in figure.findobj(
            lambda artist: hasattr(artist, 'get_fontsize') and
            hasattr(artist, 'get_text')) if text.get_text().strip()]
        assert {'time (s)', 'trunk', 'person 0: angles (°)'} <= {
            text.get_text() for text in texts}
        assert any(text.get_text() == '100' for text in texts)  # a tick
        # Font size in CSS px where the figure is shown 1:1 (100 dpi).
        sizes = {text.get_text(): text.get_fontsize() * figure.dpi / 72
                 for text in texts}
        assert min(sizes.values()) >= TABLE_PX, sizes
    finally:
        pyplot.close(figure)


def test_click_shows_the_large_picture(angles_result, browser):  # noqa: F811
    from pose_suite.outputs.report import publish
    from pose_suite.outputs.summary import rows_from_folder
    folder = angles_result.parent
    publish(folder, lambda: rows_from_folder(folder))
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    page.goto((folder / 'report.html').as_uri())
    page.mouse.wheel(0, 100000)
    wait_for(page, 'Array.from(document.querySelectorAll("td img"))'
                    '.every(i => i.complete && i.src)')
    sizes = page.eval_on_selector_all(
        'img.angles', 'ps => ps.map(p => [p.naturalWidth, p.width])')
    assert sizes == [[340, 340], [340, 340]]
    notes = page.locator('td.pictures .note').all_inner_texts()
    assert notes[0] == 'person 0: no value in any frame for left knee'
    assert page.eval_on_selector('td.pictures .note', 'n => parseFloat('
                                 'getComputedStyle(n).fontSize)') >= TABLE_PX
    page.locator('img.angles').first.click()
    lightbox = page.locator('#lightbox img')
    assert lightbox.is_visible()
    wait_for(page, 'document.querySelector("#lightbox img").naturalWidth'
                    ' > 0')
    assert lightbox.evaluate('i => i.naturalWidth') == 850
    page.close()


def _marker_points(axis, colour):
    from matplotlib.colors import to_hex
    return [list(zip(line.get_xdata(), line.get_ydata()))
            for line in axis.lines if line.get_marker() not in ('None', None)
            and to_hex(line.get_color()) == to_hex(colour)]


def test_isolated_values_are_dots_and_one_time_has_a_range():
    """Values with no value beside them (no line segment) are drawn as
    dots; a person seen at one time gets one second of axis around it, not
    matplotlib's -0.05..0.05 around a point."""
    from matplotlib import pyplot
    nan = float('nan')
    figure = angle_figure(3, {
        'right knee': [(0.0, 10.0), (0.1, nan), (0.2, 20.0), (0.3, nan)],
        'left knee': [(0.0, 5.0), (0.1, 6.0), (0.2, nan), (0.3, 7.0)]})
    try:
        axis = figure.axes[0]
        assert _marker_points(axis, 'tab:blue') == [[(0.0, 10.0),
                                                     (0.2, 20.0)]]
        assert _marker_points(axis, 'tab:orange') == [[(0.3, 7.0)]]
        assert [text.get_text() for text in axis.get_legend().get_texts()] \
            == ['right knee', 'left knee']
    finally:
        pyplot.close(figure)
    figure = angle_figure(4, {'right knee': [(1.5, 30.0)]})
    try:
        axis = figure.axes[0]
        assert axis.get_xlim() == (1.0, 2.0)
        assert _marker_points(axis, 'tab:blue') == [[(1.5, 30.0)]]
    finally:
        pyplot.close(figure)
