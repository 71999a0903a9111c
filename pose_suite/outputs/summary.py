"""A batch at a glance: one row per input of a folder, glob or list run,
written as ``summary.csv`` and ``summary.json`` in the output folder.

A row is made from the input's result JSON alone (its ``meta`` and frame
records, read a frame at a time), so results of every version of the suite
give one: the fields read (``meta.source``, ``kind``, ``fps``,
``run.seconds``; each frame's ``timestamp_s`` and persons' ``keypoints``,
``keypoint_scores`` and, where tracked, ``track_id``) are all in the
results of its first version (commit c8e1fd9) on; the frames lost or
damaged (``meta.frames_failed``, ``frames_unread_at_end``,
``frames_damaged``: later keys) are counted where a result has them, and
said in its reason; so is the part analysed (``meta.selection``,
``max_persons``: later keys, "" where absent). Inputs without a result
(failed, not media) get their one-line reason.
"""
import csv
import dataclasses
import datetime
import json
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np

from pose_suite.errors import one_line, visible
from pose_suite.media.selection import FrameSelection
from pose_suite.outputs.openpose import is_openpose_file
from pose_suite.outputs.publish import atomic_write, spreadsheet_cell
from pose_suite.outputs.results import (LOSS_KEYS, frame_losses,
                                        is_result, iter_frame_records,
                                        losses_in_words, read_meta,
                                        why_incomplete)

CSV_NAME, JSON_NAME = 'summary.csv', 'summary.json'
REPORT_NAME = 'report.html'
#: The files a batch writes in its output folder, besides the results.
BATCH_FILES = (CSV_NAME, JSON_NAME, REPORT_NAME)
COLUMNS = ('input', 'status', 'reason', 'kind', 'analysed', 'frames',
           *LOSS_KEYS,
           'fps', 'duration_s', 'persons', 'persons_per_frame_mean',
           'persons_per_frame_max', 'frames_with_nobody', 'body_score_mean',
           'face_score_mean', 'hands_score_mean', 'tracks', 'seconds',
           'result')
#: Statuses in the order a reader wants them: what went wrong first.
STATUSES = ('failed', 'not media', 'done', 'up to date')
#: COCO-WholeBody's parts: body with feet (17 + 6), face (68), hands (2×21).
PARTS = {'body': slice(0, 23), 'face': slice(23, 91), 'hands': slice(91, 133)}


def result_row(path: Path, status: str, folder: Path) -> dict:
    """The row of one result JSON (``status``: ``done`` or ``up to date``;
    ``result`` relative to ``folder``).

    Raises:
        ValueError: ``path`` is not a result of this suite.
        OSError: it cannot be read.
    """
    meta = read_meta(path)
    if meta is None:
        raise ValueError(f'{path.name} is cut short or damaged' if
                         is_result(path) else
                         f'{path} is not a result of this suite')
    why = why_incomplete(path, meta)
    if why:
        raise ValueError(why)
    counts, times, tracks = [], [], set()
    sums = {part: [0.0, 0] for part in PARTS}
    for frame in iter_frame_records(path):
        counts.append(len(frame['persons']))
        times.append(frame.get('timestamp_s'))
        for person in frame['persons']:
            scores = np.array(person['keypoint_scores'], np.float64)
            for part, where in PARTS.items():
                part_scores = scores[where]
                part_scores = part_scores[np.isfinite(part_scores)]
                sums[part][0] += float(part_scores.sum())
                sums[part][1] += part_scores.size
            if 'track_id' in person:
                tracks.add(person['track_id'])
    fps = _number(meta.get('fps'), 'meta.fps') or 0.0
    seconds = _number((meta.get('run') or {}).get('seconds'),
                      'meta.run.seconds')
    row = dict.fromkeys(COLUMNS, '')
    row.update(
        input=str(meta.get('source', '')), status=status,
        # Frames lost or damaged: counted, and said in the reason.
        reason=losses_in_words(meta), **frame_losses(meta),
        kind=meta.get('kind', ''), analysed=analysed(meta),
        frames=len(counts),
        fps=round(fps, 3) if fps else '',
        duration_s=_duration(times, fps, meta.get('kind')),
        persons=sum(counts),
        persons_per_frame_mean=round(sum(counts) / len(counts), 3)
        if counts else '',
        persons_per_frame_max=max(counts, default=''),
        frames_with_nobody=counts.count(0),
        tracks=len(tracks) if meta.get('tracking') else '',
        seconds=seconds,
        result=_relative(path, folder))
    for part, (total, number) in sums.items():
        row[f'{part}_score_mean'] = round(total / number, 4) if number else ''
    return row


def analysed(meta: dict) -> str:
    """What part of its input a result holds, in words: a video's range
    and step (``12.5-30 s, every 4 frames``: seconds of ``timestamp_s``;
    ``frames 300-899``: source frame indices) and the person limit (``at
    most 2 persons a frame (largest)``). "" for all of it, and for results
    older than ``meta.selection``."""
    parts = []
    selection = meta.get('selection')
    if isinstance(selection, dict) and meta.get('kind') != 'image':
        names = [field.name for field in dataclasses.fields(FrameSelection)]
        try:
            parts.append(FrameSelection(**{
                name: selection[name] for name in names
                if name in selection}).describe())
        except (TypeError, ValueError):  # not this suite's: not shown
            pass
    limit = meta.get('max_persons')
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        parts.append(f'at most {limit} person{"s" * (limit > 1)} a frame'
                     f' ({meta.get("person_order", "largest")})')
    return ', '.join(part for part in parts if part)


def _number(value, name: str):
    """A finite number of a result's ``meta`` ('' when absent).

    Raises:
        ValueError: another value (text, NaN, infinity): the result was
        not written by this suite, and its row says so.
    """
    if value is None or value == '':
        return ''
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not np.isfinite(value):
        raise ValueError(f'its {name} is not a number: {str(value)[:40]}')
    return value


def readable_row(path: Path, status: str, folder: Path) -> dict:
    """:func:`result_row`, or for a result that cannot be read (removed,
    damaged, not this suite's) a ``failed`` row saying why."""
    try:
        return result_row(path, status, folder)
    except Exception as exc:  # noqa: BLE001 - one row, not the summary
        row = problem_row(path, 'failed',
                          f'its result cannot be read: {one_line(exc)}')
        row['result'] = _relative(path, folder)
        return row


def batch_rows(result, folder: Path) -> List[dict]:
    """The rows of a :class:`~pose_suite.batch.local.BatchResult`."""
    return ordered(
        [readable_row(path, 'done', folder) for path in result.outputs]
        + [readable_row(path, 'up to date', folder)
           for path in result.up_to_date]
        + [problem_row(source, 'failed', reason)
           for source, reason in result.failures]
        + [problem_row(source, 'not media', reason)
           for source, reason in result.skipped])


def problem_row(source, status: str, reason: str) -> dict:
    """The row of an input without a result (``failed``, ``not media``)."""
    row = dict.fromkeys(COLUMNS, '')
    row.update(input=str(source), status=status, reason=reason)
    return row


def ordered(rows: Iterable[dict]) -> List[dict]:
    """Failures first, then non-media files, then results (those with
    lost or damaged frames, which have a reason, first); by input."""
    return sorted(rows, key=lambda row: (
        STATUSES.index(row['status']) if row['status'] in STATUSES
        else len(STATUSES), not row.get('reason'), row['input']))


def totals(rows: List[dict]) -> dict:
    """Inputs by status, and the frames, persons and seconds of all."""
    counted = {status: sum(row['status'] == status for row in rows)
               for status in STATUSES}
    return {'inputs': len(rows), **counted,
            **{key: round(sum(row[key] or 0 for row in rows), 3)
               for key in ('frames', 'persons', 'seconds')}}


def write_summary(folder: Path, rows: List[dict]) -> List[Path]:
    """Publish ``summary.csv`` and ``summary.json`` in ``folder`` (each
    whole or not at all); returns both paths."""
    folder = Path(folder)
    # A batch whose every input failed made no output folder yet.
    folder.mkdir(parents=True, exist_ok=True)
    rows = ordered(rows)
    with atomic_write(folder / CSV_NAME, encoding='utf-8',
                      newline='') as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({key: _csv_cell(value)
                          for key, value in row.items()} for row in rows)
    document = {'made_at': datetime.datetime.now(
        datetime.timezone.utc).isoformat(timespec='seconds'),
        'folder': str(folder.resolve()), 'totals': totals(rows),
        'inputs': rows}
    with atomic_write(folder / JSON_NAME, encoding='utf-8') as handle:
        json.dump(document, handle, indent=1, allow_nan=False)
    return [folder / CSV_NAME, folder / JSON_NAME]


def _csv_cell(value):
    """A value as a person reads it in a spreadsheet: text with its
    control and bidirectional characters shown escaped (``\\u202e``, ``\\n``;
    summary.json keeps the exact names) and never a formula."""
    return spreadsheet_cell(visible(value) if isinstance(value, str)
                            else value)


def read_summary(folder: Path) -> List[dict]:
    """The rows of an earlier ``summary.json`` in ``folder`` ([] if none
    or unreadable)."""
    try:
        rows = json.loads((Path(folder) / JSON_NAME).read_text(
            encoding='utf-8'))['inputs']
    except (OSError, ValueError, KeyError, TypeError):
        return []
    # The file is on disk and anyone's to edit: only rows whose status is
    # one of ours and whose values are text are kept (a status goes into
    # the page, and back into the next summary).
    return [row for row in rows if isinstance(row, dict)
            and row.get('status') in STATUSES
            and isinstance(row.get('input'), str)
            and isinstance(row.get('reason', ''), str)
            and isinstance(row.get('result', ''), (str, type(None)))]


def find_results(folder: Path) -> List[Path]:
    """The result JSONs below ``folder`` (by their first bytes: whole, cut
    short or damaged), leaving out hidden files, exports and OpenPose's
    frame files (not the user's folders that happen to end in ``_json``)."""
    found = []
    for path in sorted(Path(folder).rglob('*.json')):
        relative = path.relative_to(folder)
        if any(part.startswith('.') for part in relative.parts) or \
                path.name == JSON_NAME or is_openpose_file(path) or \
                path.name.endswith(('.coco.json', '.mmpose.json')):
            continue
        if is_result(path):  # whole or not: one cut short is a row too
            found.append(path)
    return found


def rows_from_folder(folder: Path,
                     statuses: Optional[Dict[str, str]] = None) -> List[dict]:
    """Rows for every result below ``folder``, plus the failed and
    non-media inputs an earlier summary there listed that still have no
    result. A result's status is the earlier summary's, else ``done``."""
    folder = Path(folder)
    earlier = read_summary(folder)
    status_of = {row.get('result'): row['status'] for row in earlier}
    status_of.update(statuses or {})
    rows = [readable_row(path, status_of.get(_relative(path, folder),
                                             'done'), folder)
            for path in find_results(folder)]
    with_result = {row['input'] for row in rows}
    rows += [problem_row(row['input'], row['status'], row.get('reason', ''))
             for row in earlier if row['status'] in ('failed', 'not media')
             and row['input'] not in with_result]
    return ordered(rows)


def _duration(times: List, fps: float, kind: Optional[str]):
    """Seconds from the first frame's start to the last frame's end."""
    times = [t for t in times if isinstance(t, (int, float))]
    if kind == 'image' or not times or not fps:
        return ''
    return round(max(times) - min(times) + 1.0 / fps, 3)


def _relative(path: Path, folder: Path) -> str:
    try:
        return Path(path).resolve().relative_to(
            Path(folder).resolve()).as_posix()
    except ValueError:
        return str(path)
