"""``report.html``: a batch's summary as one page that opens from disk.

The page holds everything it shows: the totals, the settings the results
were made with (read from their ``meta``), the table of
:mod:`pose_suite.outputs.summary` (sortable by any column, failures first)
with links to each input's result, overlay and exports, and the pictures of
:mod:`pose_suite.outputs.report_pictures` (a click shows one large).

File names and summaries are the user's, so nothing read from disk reaches
the page unchecked: text is HTML-escaped, with its control and bidirectional
characters shown escaped (:func:`~pose_suite.errors.visible`: a name with a
RIGHT-TO-LEFT OVERRIDE cannot pose as ``innocentexe.jpg``) and every name
isolated in a ``<bdi>`` (a right-to-left name does not reorder the text
around it); statuses come from a known set,
and every link is ``./`` and the URL-encoded path relative to the page
(or a ``file:`` URI made here), so it never carries a scheme of its own.
The Content-Security-Policy forbids any request (``default-src 'none'``)
and any script or style but the page's own, allowed by their SHA-256.
"""
import base64
import datetime
import hashlib
import html
import json
import warnings
from pathlib import Path
from typing import Callable, Dict, List
from urllib.parse import quote

from pose_suite.config.keys import is_number
from pose_suite.errors import SuiteWarning, one_line, visible
from pose_suite.outputs.exports import current_outputs
from pose_suite.outputs.publish import atomic_write
from pose_suite.outputs.report_pictures import pictures, wholebody_meta
from pose_suite.outputs.report_style import SCRIPT, STYLE
from pose_suite.outputs.results import read_meta
from pose_suite.outputs.summary import (COLUMNS, REPORT_NAME, STATUSES,
                                        totals, write_summary)

#: Columns shown in the table after the pictures, with their headings.
HEADINGS = {'input': 'input', 'status': 'status', 'kind': 'kind',
            'frames': 'frames', 'fps': 'fps', 'duration_s': 'length',
            'persons_per_frame_mean': 'persons / frame',
            'persons_per_frame_max': 'max', 'frames_with_nobody':
            'frames with nobody', 'body_score_mean': 'body score',
            'face_score_mean': 'face score', 'hands_score_mean':
            'hands score', 'tracks': 'tracks', 'seconds': 'time taken'}
#: A status's CSS class (only these statuses get one).
STATUS_CLASSES = {status: status.replace(' ', '-') for status in STATUSES}
#: The settings shown, as (label, function of a result's meta).
SETTINGS = (
    ('detector', lambda m: (m.get('detector') or {}).get('checkpoint')),
    ('pose model', lambda m: (m.get('pose_model') or {}).get('checkpoint')),
    ('thresholds', lambda m: ', '.join(
        f'{k} {v}' for k, v in (m.get('thresholds') or {}).items())),
    ('detection every', lambda m: m.get('det_interval') and
     f'{m["det_interval"]} frame(s)'),
    ('precision', lambda m: m.get('precision')),
    ('device', lambda m: m.get('device')),
    ('flip test', lambda m: m.get('flip_test')),
    ('tracking', lambda m: m.get('tracking')),
    ('smoothing', lambda m: m.get('smoothing')),
    ('suite version', lambda m: m.get('suite_version')),
    ('packages', lambda m: ', '.join(
        f'{k} {v}' for k, v in (m.get('versions') or {}).items() if v)),
)


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
    dataset_meta = wholebody_meta()
    metas = []
    body = [_row_html(row, folder, dataset_meta, metas) for row in rows]
    page = _PAGE.format(
        csp=f"default-src 'none'; img-src data:; base-uri 'none'; "
            f"form-action 'none'; style-src '{_sha256(STYLE)}'; "
            f"script-src '{_sha256(SCRIPT)}'",
        style=STYLE, script=SCRIPT,
        title=_text(f'Pose results: {folder.resolve().name}'),
        name=_name(folder.resolve().name),
        made_at=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
        folder=_name(folder.resolve()),
        totals=_totals_html(totals(rows)),
        settings=_settings_html(metas),
        headings=''.join(
            f'<th data-column="{index + 1}">{html.escape(text)}</th>'
            for index, text in enumerate(HEADINGS.values())),
        rows='\n'.join(body))
    target = folder / REPORT_NAME
    with atomic_write(target, encoding='utf-8') as handle:
        handle.write(page)
    return target


def link(folder: Path, path: Path) -> str:
    """The ``href`` of ``path`` from a page in ``folder``: ``./`` and the
    URL-encoded relative path (``#``, ``?``, ``:``, newlines and all
    encoded), or a ``file:`` URI for a file outside ``folder``; never a
    scheme taken from a name."""
    path = Path(folder) / path
    try:
        relative = path.resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return html.escape(path.resolve().as_uri())
    return html.escape('./' + quote(relative.as_posix(), safe='/'))


def outputs_of(result: Path) -> Dict[str, Path]:
    """The files beside a result that exist and were made from it (its
    exports' manifest says so): its overlay and exports, by label. An
    export left by an earlier result is never linked."""
    meta = read_meta(result)
    return current_outputs(result, meta) if meta else {}


def _row_html(row: dict, folder: Path, dataset_meta: dict,
              metas: List[dict]) -> str:
    thumbnail, plots, note, links, angle_plots = '', [], '', '', ''
    if row.get('result'):
        result = folder / row['result']
        try:
            meta = read_meta(result)
            if meta:
                metas.append(meta)
            thumbnail, plots = pictures(result, dataset_meta)
        except Exception as exc:  # noqa: BLE001 - one row, not the page
            note = f'no picture: {one_line(exc)}'
        try:  # the angles of each tracked person, when written
            from pose_suite.outputs.angle_plots import angle_plots_html
            angle_plots = angle_plots_html(result)
        except Exception as exc:  # noqa: BLE001 - one row, not the page
            note += f' no angle plot: {one_line(exc)}'
        files = {'result': result, **outputs_of(result)}
        links = ' · '.join(
            f'<a href="{link(folder, path)}">{html.escape(label)}</a>'
            for label, path in files.items() if path.exists())
    cells = [f'<td class="pictures">{_img(thumbnail, "thumbnail")}'
             f'{"".join(_img(plot, "plot") for plot in plots)}'
             f'{angle_plots}{_text(note)}</td>']
    status_class = STATUS_CLASSES.get(row.get('status'), 'other')
    for column in HEADINGS:
        value = row.get(column, '')
        text = _text(value)
        if column == 'input':
            text = f'<bdi class="path">{text}</bdi>'
            if links:
                text += f'<div class="links">{links}</div>'
        elif column == 'status':
            text += _status_notes(row, status_class)
        elif column in ('duration_s', 'seconds') and is_number(value):
            text = clock(value)
        sort_key = value if is_number(value) else str(value)
        wraps = ' class="text"' if column in ('input', 'status') else ''
        cells.append(f'<td{wraps} data-sort="'
                     f'{html.escape(json.dumps(sort_key))}">{text}</td>')
    return f'<tr class="{status_class}">{"".join(cells)}</tr>'


def _status_notes(row: dict, status_class: str) -> str:
    """What goes under a row's status: its reason, and the part of the
    input analysed (the summary's ``analysed``: a range, step or person
    limit)."""
    notes = ''
    if row.get('reason'):
        notes += (f'<div class="reason {status_class}">'
                  f'{_text(row["reason"])}</div>')
    if row.get('analysed'):
        notes += f'<div class="analysed">{_text(row["analysed"])}</div>'
    return notes


def clock(seconds: float) -> str:
    """``h:mm:ss`` (``m:ss`` under an hour), tenths under a minute."""
    seconds = float(seconds)
    if seconds < 60:
        return f'0:{seconds:04.1f}'
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f'{hours}:{minutes:02d}:{secs:02d}' if hours else \
        f'{minutes}:{secs:02d}'


def _img(data_uri: str, kind: str) -> str:
    if not data_uri.startswith('data:image/'):
        return ''
    return (f'<img class="{kind}" alt="{kind} (click to enlarge)" '
            f'data-src="{html.escape(data_uri)}">')


def _settings_html(metas: List[dict]) -> str:
    """Each setting's values over the results, with how many results had
    each when they differ."""
    items = []
    for label, read in SETTINGS:
        counted: Dict[str, int] = {}
        for meta in metas:
            try:
                value = read(meta)
            except Exception:  # noqa: BLE001 - an odd meta: not shown
                value = None
            if value not in (None, ''):
                counted[str(value)] = counted.get(str(value), 0) + 1
        if counted:
            values = list(counted) if len(counted) == 1 else [
                f'{value} ({number} results)'
                for value, number in counted.items()]
            items.append(f'<dt>{html.escape(label)}</dt><dd>' + '; '.join(
                _name(value) for value in values) + '</dd>')
    return f'<dl id="settings">{"".join(items)}</dl>' if items else ''


def _text(value) -> str:
    """Text read from disk for the page: control and bidirectional
    characters shown escaped, then HTML-escaped."""
    return html.escape(visible(value))


def _name(value) -> str:
    """A name (file, folder, checkpoint) for the page: :func:`_text`,
    isolated in a ``<bdi>`` from the text around it."""
    return f'<bdi>{_text(value)}</bdi>'


def _totals_html(counted: dict) -> str:
    parts = [f'<b>{counted["inputs"]}</b> inputs']
    parts += [f'<span class="{"attention" if status == "failed" and counted[status] else "count"}">'
              f'{counted[status]} {status}</span>' for status in STATUSES]
    parts += [f'{counted["frames"]} frames', f'{counted["persons"]} persons',
              f'{clock(counted["seconds"])} of analysis']
    return ' · '.join(parts)


def _sha256(text: str) -> str:
    return 'sha256-' + base64.b64encode(
        hashlib.sha256(text.encode()).digest()).decode()


assert set(HEADINGS) <= set(COLUMNS)

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>{title}</title>
<style>{style}</style></head><body>
<h1>Pose results: {name}</h1>
<p>{folder} · made {made_at}</p>
<p id="totals">{totals}</p>
<details open><summary>settings</summary>{settings}</details>
<table id="results"><thead><tr><th>pictures</th>{headings}</tr></thead>
<tbody>
{rows}
</tbody></table>
<div id="lightbox" hidden><img alt="enlarged"></div>
<script>{script}</script>
</body></html>
"""
