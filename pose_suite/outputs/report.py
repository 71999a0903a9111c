"""``report.html``: a batch's summary as one page that opens from disk.

The page holds everything it shows: the totals, the table of
:mod:`pose_suite.outputs.summary` (sortable by any column, failures first), and for
each result a thumbnail of its representative frame (the one with the most
persons, then the highest mean keypoint score) with the skeletons drawn by
the overlay's own :func:`~pose_suite.outputs.overlay.draw_persons`, and a
matplotlib plot of persons per frame and mean keypoint score over time.
Images are JPEG/PNG ``data:`` URIs, decoded only when scrolled into view;
its Content-Security-Policy forbids any request (``default-src 'none'``),
so the page cannot reach the network. A thumbnail needs the input file
where the result says it was; without it the row says so.
"""
import base64
import datetime
import html
import io
import json
import warnings
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np

from pose_suite.config.keys import is_number
from pose_suite.config.specs import is_stream
from pose_suite.errors import SuiteWarning, one_line
from pose_suite.outputs.publish import atomic_write
from pose_suite.outputs.results import iter_frame_records, read_meta
from pose_suite.outputs.summary import (COLUMNS, REPORT_NAME, totals,
                                        write_summary)

THUMBNAIL_SIZE = (200, 150)  # px, at most; shown at most 160x120 CSS px
#: Columns shown in the table after the thumbnail, with their headings.
HEADINGS = {'input': 'input', 'status': 'status', 'kind': 'kind',
            'frames': 'frames', 'fps': 'fps', 'duration_s': 'seconds long',
            'persons_per_frame_mean': 'persons / frame',
            'persons_per_frame_max': 'max', 'frames_with_nobody':
            'frames with nobody', 'body_score_mean': 'body score',
            'face_score_mean': 'face score', 'hands_score_mean':
            'hands score', 'tracks': 'tracks', 'seconds': 'seconds taken'}


def publish(folder: Path, make_rows: Callable[[], List[dict]],
            with_report: bool = True) -> List[Path]:
    """Write the summary (and the report) of ``make_rows()`` in
    ``folder``; returns what was written. Never raises: a summary or report
    that cannot be made is one warning line, and the results stay."""
    written = []
    try:
        rows = make_rows()
        written += write_summary(folder, rows)
        if with_report:
            written.append(write_report(folder, rows))
    except Exception as exc:  # noqa: BLE001 - never the results' failure
        what = 'report' if written else 'summary'
        warnings.warn(f'no {what} written in {folder}: {one_line(exc)}',
                      SuiteWarning)
    return written


def write_report(folder: Path, rows: List[dict]) -> Path:
    """Publish ``report.html`` in ``folder`` for the summary ``rows``
    (as :func:`pose_suite.outputs.summary.ordered` gives them)."""
    folder = Path(folder)
    dataset_meta = _wholebody_meta()
    body = [_row_html(row, folder, dataset_meta) for row in rows]
    page = _PAGE.format(
        title=html.escape(f'Pose results: {folder.resolve().name}'),
        made_at=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
        folder=html.escape(str(folder.resolve())),
        totals=_totals_html(totals(rows)),
        headings=''.join(
            f'<th data-column="{index + 1}">{html.escape(text)}</th>'
            for index, text in enumerate(HEADINGS.values())),
        rows='\n'.join(body))
    target = folder / REPORT_NAME
    with atomic_write(target, encoding='utf-8') as handle:
        handle.write(page)
    return target


def _row_html(row: dict, folder: Path, dataset_meta: dict) -> str:
    thumbnail, plot, note, angle_plots = '', '', '', ''
    if row.get('result'):
        try:
            thumbnail, plot = _pictures(folder / row['result'], dataset_meta)
        except Exception as exc:  # noqa: BLE001 - one row, not the page
            note = f'no picture: {one_line(exc)}'
        try:  # the angles of each tracked person, when written
            from pose_suite.outputs.angle_plots import angle_plots_html
            angle_plots = angle_plots_html(folder / row['result'])
        except Exception as exc:  # noqa: BLE001 - one row, not the page
            note += f' no angle plot: {one_line(exc)}'
    cells = [f'<td class="pictures">{_img(thumbnail, "thumbnail")}'
             f'{_img(plot, "plot")}{angle_plots}{html.escape(note)}</td>']
    for column in HEADINGS:
        value = row.get(column, '')
        text = html.escape(str(value))
        if column == 'input':
            text = f'<span class="path">{text}</span>'
            if row.get('result'):
                text += (f'<br><a href="{html.escape(row["result"])}">'
                         f'{html.escape(row["result"])}</a>')
        elif column == 'status' and row.get('reason'):
            text += f'<div class="reason">{html.escape(row["reason"])}</div>'
        sort_key = value if is_number(value) else str(value)
        cells.append(f'<td data-sort="{html.escape(json.dumps(sort_key))}">'
                     f'{text}</td>')
    status = str(row.get('status', '')).replace(' ', '-')
    return f'<tr class="{status}">{"".join(cells)}</tr>'


def _img(data_uri: str, kind: str) -> str:
    if not data_uri:
        return ''
    return f'<img class="{kind}" alt="{kind}" data-src="{data_uri}">'


def _pictures(result: Path, dataset_meta: dict) -> Tuple[str, str]:
    """(thumbnail, plot) of one result as data URIs ('' where none)."""
    meta = read_meta(result)
    times, counts, means = [], [], []
    best, best_key = None, None
    for frame in iter_frame_records(result):
        scores = [s for person in frame['persons']
                  for s in person['keypoint_scores'] if s is not None]
        mean = float(np.mean(scores)) if scores else float('nan')
        times.append(frame.get('timestamp_s') or 0.0)
        counts.append(len(frame['persons']))
        means.append(mean)
        key = (len(frame['persons']), mean if scores else -np.inf)
        if best_key is None or key > best_key:
            best, best_key = frame, key
    plot = _plot(times, counts, means) if len(counts) > 1 else ''
    return _thumbnail(meta, best, dataset_meta), plot


def _thumbnail(meta: dict, frame: Optional[dict], dataset_meta: dict) -> str:
    """The frame as displayed, skeletons drawn, within THUMBNAIL_SIZE."""
    from pose_suite.media.sources import open_source
    from pose_suite.outputs.overlay import draw_persons
    if frame is None or is_stream(str(meta['source'])):
        return ''
    source = open_source(meta['source'])
    image = next((picture for index, _, picture in source.frames(
        start=frame['frame_index']) if index >= frame['frame_index']), None)
    if image is None:
        return ''
    scale = min(THUMBNAIL_SIZE[0] / image.shape[1],
                THUMBNAIL_SIZE[1] / image.shape[0])
    image = cv2.resize(image, (max(1, round(image.shape[1] * scale)),
                               max(1, round(image.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    persons = [_scaled(person, scale) for person in frame['persons']]
    kpt_thr = (meta.get('thresholds') or {}).get('kpt_thr', 0.3)
    image = draw_persons(image, persons, dataset_meta, kpt_thr)
    ok, jpeg = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 70])
    return 'data:image/jpeg;base64,' + base64.b64encode(jpeg).decode()


def _scaled(person: dict, scale: float) -> dict:
    """A result's person with coordinates times ``scale``, unknown values
    (null) as NaN and their points not drawn."""
    points = np.array(person['keypoints'], np.float64) * scale
    scores = np.array(person['keypoint_scores'], np.float64)
    scores[~np.isfinite(points).all(axis=1)] = np.nan
    return {'keypoints': np.nan_to_num(points), 'keypoint_scores': scores,
            'bbox': (np.array(person['bbox'], np.float64) * scale).tolist(),
            'bbox_score': person.get('bbox_score') or 0.0,
            **({'track_id': person['track_id']}
               if 'track_id' in person else {})}


def _plot(times, counts, means) -> str:
    """Persons per frame (steps) and mean keypoint score over time."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    figure, persons_axis = pyplot.subplots(figsize=(2.6, 0.95), dpi=100)
    try:
        persons_axis.step(times, counts, where='post', color='tab:blue',
                          linewidth=1)
        persons_axis.set_ylim(0, max(counts) + 1)
        persons_axis.set_ylabel('persons', fontsize=6, color='tab:blue')
        score_axis = persons_axis.twinx()
        score_axis.plot(times, means, color='tab:orange', linewidth=1)
        score_axis.set_ylabel('score', fontsize=6, color='tab:orange')
        for axis in (persons_axis, score_axis):
            axis.tick_params(labelsize=5, length=2, pad=1)
        persons_axis.set_xlabel('s', fontsize=6, labelpad=0)
        figure.tight_layout(pad=0.2)
        figure.canvas.draw()
        rgb = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    finally:
        pyplot.close(figure)
    # A few colours are enough for two lines: a third of the bytes.
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(rgb).quantize(16).save(buffer, format='png',
                                           optimize=True)
    return 'data:image/png;base64,' + base64.b64encode(
        buffer.getvalue()).decode()


def _wholebody_meta() -> dict:
    """mmpose's COCO-WholeBody metadata: skeleton links and colours."""
    import mmpose
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    return parse_pose_metainfo({'from_file': str(
        Path(mmpose.__file__).parent / '.mim' / 'configs' / '_base_' /
        'datasets' / 'coco_wholebody.py')})


def _totals_html(counted: dict) -> str:
    parts = [f'<b>{counted["inputs"]}</b> inputs']
    parts += [f'<span class="{status.replace(" ", "-")}">{counted[status]} '
              f'{status}</span>' for status in
              ('failed', 'not media', 'done', 'up to date')]
    parts += [f'{counted["frames"]} frames', f'{counted["persons"]} persons',
              f'{counted["seconds"]} s of analysis']
    return ' · '.join(parts)


assert set(HEADINGS) <= set(COLUMNS)

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; \
img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 1em; color: #222; }}
table {{ border-collapse: collapse; }}
th {{ cursor: pointer; background: #eee; position: sticky; top: 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left;
  vertical-align: top; }}
th.sorted-up::after {{ content: " \\25B2"; }}
th.sorted-down::after {{ content: " \\25BC"; }}
td.pictures img {{ display: block; max-width: 160px; max-height: 120px; }}
td.pictures img.plot {{ width: 208px; }}
tr.failed {{ background: #fdd; }} tr.not-media {{ background: #f4f4f4; }}
.failed {{ color: #a00; }} .reason {{ color: #a00; max-width: 30em; }}
.path {{ word-break: break-all; }}
</style></head><body>
<h1>{title}</h1>
<p>{folder} · made {made_at}</p>
<p id="totals">{totals}</p>
<table id="results"><thead><tr><th>pictures</th>{headings}</tr></thead>
<tbody>
{rows}
</tbody></table>
<script>
// Pictures are decoded when scrolled into view.
const show = image => {{ image.src = image.dataset.src; }};
const watcher = 'IntersectionObserver' in window ? new IntersectionObserver(
  entries => entries.forEach(entry => {{ if (entry.isIntersecting) {{
    show(entry.target); watcher.unobserve(entry.target); }} }}),
  {{ rootMargin: '400px' }}) : null;
document.querySelectorAll('img[data-src]').forEach(
  image => watcher ? watcher.observe(image) : show(image));
// Click a heading to sort by it; again to reverse.
document.querySelectorAll('th[data-column]').forEach(heading =>
  heading.addEventListener('click', () => {{
    const column = Number(heading.dataset.column);
    const up = !heading.classList.contains('sorted-up');
    document.querySelectorAll('th').forEach(
      th => th.classList.remove('sorted-up', 'sorted-down'));
    heading.classList.add(up ? 'sorted-up' : 'sorted-down');
    const body = document.querySelector('#results tbody');
    const key = row => JSON.parse(row.cells[column].dataset.sort);
    const rows = Array.from(body.rows).sort((a, b) => {{
      const [x, y] = [key(a), key(b)];
      const order = typeof x === 'number' && typeof y === 'number' ? x - y
        : String(x).localeCompare(String(y));
      return up ? order : -order; }});
    rows.forEach(row => body.appendChild(row));
  }}));
</script>
</body></html>
"""
