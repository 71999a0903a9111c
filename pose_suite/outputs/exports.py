"""Other formats, written beside the native JSON from it, frame by frame.

* ``mmpose``: what mmpose's ``topdown_demo_with_mmdet.py
  --save-predictions`` writes (json_tricks ``meta_info`` and
  ``instance_info``: for a video a list of ``{"frame_id": 1-based,
  "instances": [...]}``, for an image the list of instances), except that
  ``bbox_score`` is the detector's real score where the demo writes 1.0.
* ``coco``: COCO keypoint results, one entry per person and frame, as
  AlphaPose writes: ``image_id`` (the frame index), ``category_id`` 1,
  ``keypoints`` (133 × x, y, score flattened), ``score`` (bbox_score × mean
  keypoint score), ``bbox`` (x, y, width, height) and, for a tracked
  video, ``idx`` (the ``track_id``, as AlphaPose's tracked output names it).
* ``csv``: one row per person and frame: frame_index, timestamp_s,
  person_index, track_id (tracked videos only), bbox, bbox_score, then x,
  y, score of each keypoint by name.
* ``angles`` (``.angles.csv``; results written with ``angles``): one row
  per person and frame: frame_index, timestamp_s, person_index, track_id
  (tracked videos only), then each angle in degrees (empty: null), in the
  order of ``meta.angles``.
* ``openpose`` and ``pose2sim``: a folder of OpenPose files, one per frame
  (:mod:`pose_suite.outputs.openpose`).

The native JSON holds one frame per line, so each export streams through it
without loading the whole file. Each export is tied to the result it was
made from: a hidden file beside the result (``.<name>.exports.json``, the
manifest) maps each format to the result's ``meta.run.result_id`` (and
``overlay`` to ``{"from": result_id, "file": name}``: the one overlay file
beside the result written with it; no other ``<name>.overlay.*`` file is
ever removed or linked), so that an export of an
earlier result is never kept beside a new one (:func:`is_current`): when a
new result replaces one, what the manifest says was made from the earlier
result is removed (:func:`remove_stale`), and the report links only what
it says was made from the result shown (:func:`current_outputs`).
"""
import csv
import json
import shutil
from pathlib import Path
from typing import Collection, Dict, List, Optional

import numpy as np

from pose_suite.outputs.movement_files import movement_folder
from pose_suite.outputs.openpose import (FOLDER_FORMATS, folder_owner,
                                         folder_path, foreign_entries,
                                         owned_by, same_file, write_folder)
from pose_suite.outputs.publish import atomic_write, spreadsheet_cell
from pose_suite.outputs.results import iter_frame_records, triplets_found

SUFFIXES = {'mmpose': '.mmpose.json', 'coco': '.coco.json', 'csv': '.csv',
            'angles': '.angles.csv'}
#: Formats written in the movement folder (``<name>.movement/``) by
#: :mod:`pose_suite.movement`, not here.
MOVEMENT_FOLDER_FORMATS = ('trc', 'mot')
#: The manifest's key of an overlay beside the result.
OVERLAY = 'overlay'


def export_path(native_path: Path, fmt: str, source: str) -> Path:
    """Where the ``fmt`` export of a native results file (of the input
    ``source``) goes: a file, or a folder for OpenPose's layout."""
    native_path = Path(native_path)
    if fmt in FOLDER_FORMATS:
        return folder_path(native_path, fmt, source)
    if fmt in MOVEMENT_FOLDER_FORMATS:  # pose_suite.movement writes it
        return movement_folder(native_path)
    return native_path.with_name(native_path.stem + SUFFIXES[fmt])


def export(native_path: Path, fmt: str, meta: dict,
           dataset_meta: Dict) -> Path:
    """Write ``native_path`` in ``fmt`` beside it; returns the new path.

    Args:
        meta: the native file's ``meta`` (for kind and keypoint names).
        dataset_meta: the pose model's ``dataset_meta`` (mmpose's
            ``meta_info``).
    """
    if fmt in FOLDER_FORMATS:
        target = write_folder(native_path, fmt, meta,
                              iter_frame_records(native_path),
                              _identity(Path(native_path), meta))
    else:
        target = export_path(native_path, fmt, meta['source'])
        with atomic_write(target, encoding='utf-8', newline='') as handle:
            frames = iter_frame_records(native_path)
            if fmt == 'mmpose':
                _write_mmpose(handle, frames, meta, dataset_meta)
            elif fmt == 'coco':
                _write_coco(handle, frames)
            elif fmt == 'angles':
                _write_angles(handle, frames, meta)
            else:
                _write_csv(handle, frames, meta['keypoint_names'],
                           meta.get('tracking', False))
    _record_made_from(native_path, fmt, meta)
    return target


def is_current(native_path: Path, fmt: str, meta: dict) -> bool:
    """Whether the ``fmt`` export of the result ``native_path`` (whose
    ``meta`` is given) is there and was made from this very result."""
    native_path = Path(native_path)
    target = export_path(native_path, fmt, meta['source'])
    identity = _identity(native_path, meta)
    if fmt in FOLDER_FORMATS and not owned_by(target, native_path, identity):
        return False  # written since for another result (or unmarked)
    return target.exists() and _made_from(native_path).get(fmt) == identity


def current_outputs(native_path: Path, meta: dict) -> Dict[str, Path]:
    """The exports and overlays beside the result ``native_path`` (whose
    ``meta`` is given) that are there and were made from this very result,
    by label (``csv``, ``overlay jpg``...). An export the manifest does not
    tie to this result (an earlier result's, a user's file of that name) is
    left out."""
    native_path = Path(native_path)
    try:
        identity = _identity(native_path, meta)
        source = meta['source']
        made = _made_from(native_path)
        overlay = _overlay_file(native_path, made)
        found = {f'overlay {overlay.suffix[1:]}': overlay} if overlay and \
            overlay.is_file() and _made_from_id(made, OVERLAY) == identity \
            else {}
        for fmt in (*SUFFIXES, *FOLDER_FORMATS):
            if is_current(native_path, fmt, meta):
                found[fmt] = export_path(native_path, fmt, source)
    except Exception:  # noqa: BLE001 - an odd meta: no link, not the page
        return {}
    return found


def remove_stale(native_path: Path, meta: dict,
                 fresh: Collection[Path] = ()) -> List[Path]:
    """Remove the exports and the overlay beside the result
    ``native_path`` that its manifest says were made from another result
    than this one (``meta``'s), and drop them from the manifest; returns
    the paths removed. ``fresh``: paths just written for this result (an
    overlay), kept. An OpenPose folder holding files the suite did not
    write, or written since for another result (its owner file says), is
    kept (and never linked)."""
    native_path = Path(native_path)
    made = _made_from(native_path)
    identity = _identity(native_path, meta)
    fresh = {Path(path).resolve() for path in fresh}
    stale = [key for key in made if _made_from_id(made, key) != identity]
    removed = []
    for key in stale:
        if key in FOLDER_FORMATS:
            folder = export_path(native_path, key, meta['source'])
            owner = folder_owner(folder)
            if folder.is_dir() and not folder.is_symlink() and \
                    not foreign_entries(folder) and owner is not None and \
                    same_file(owner[0], native_path):
                shutil.rmtree(folder)
                removed.append(folder)
            continue
        paths = [_overlay_file(native_path, made)] if key == OVERLAY else \
            [export_path(native_path, key, meta['source'])] \
            if key in SUFFIXES else []
        for path in filter(None, paths):
            if path.resolve() not in fresh and (path.is_file()
                                                or path.is_symlink()):
                path.unlink()
                removed.append(path)
    if stale:
        _write_made_from(native_path, {key: value for key, value in
                                       made.items() if key not in stale})
    return removed


def record_overlay(native_path: Path, meta: dict, overlay: Path) -> None:
    """Note in the manifest that ``overlay``, when it is the overlay beside
    the result ``native_path``, was made from this result."""
    native_path, overlay = Path(native_path), Path(overlay)
    if overlay.parent.resolve() != native_path.parent.resolve() or \
            not _is_overlay_name(native_path, overlay.name):
        return  # elsewhere: never linked
    made = _made_from(native_path)
    made[OVERLAY] = {'from': _identity(native_path, meta),
                     'file': overlay.name}
    _write_made_from(native_path, made)


def _is_overlay_name(native_path: Path, name: str) -> bool:
    """Whether ``name`` is an overlay's beside the result: ``<input
    name>.overlay.<ext>``, ``<ext>`` letters and digits."""
    stem = native_path.name[:-len('.json')] + '.overlay.'
    return name.startswith(stem) and name[len(stem):].isalnum() and \
        name[len(stem):].isascii()


def _overlay_file(native_path: Path, made: dict) -> Optional[Path]:
    """The overlay file the manifest ``made`` records beside the result
    (None: none, or a manifest of an earlier version, which named none)."""
    entry = made.get(OVERLAY)
    name = entry.get('file') if isinstance(entry, dict) else None
    if not isinstance(name, str) or not _is_overlay_name(native_path, name):
        return None
    return native_path.with_name(name)


def _made_from_id(made: dict, key: str) -> Optional[str]:
    """The identity of the result the manifest's ``key`` was made from."""
    entry = made.get(key)
    return entry.get('from') if isinstance(entry, dict) else entry


def _made_from_path(native_path: Path) -> Path:
    return native_path.with_name(f'.{native_path.name}.exports.json')


def _made_from(native_path: Path) -> Dict[str, str]:
    """Format -> identity of the result each export was made from."""
    try:
        made = json.loads(_made_from_path(native_path).read_text('utf-8'))
    except (OSError, ValueError):
        return {}
    return made if isinstance(made, dict) else {}


def _identity(native_path: Path, meta: dict) -> str:
    """``meta.run.result_id``; for a result of a version before it, the
    file's size and modification time."""
    result_id = (meta.get('run') or {}).get('result_id')
    if result_id:
        return str(result_id)
    stat = native_path.stat()
    return f'{stat.st_size}-{stat.st_mtime_ns}'


def _record_made_from(native_path: Path, fmt: str, meta: dict) -> None:
    made = _made_from(native_path)
    made[fmt] = _identity(native_path, meta)
    _write_made_from(native_path, made)


def _write_made_from(native_path: Path, made: Dict[str, str]) -> None:
    with atomic_write(_made_from_path(native_path), encoding='utf-8') as out:
        json.dump(made, out)


def _mmpose_instances(frame: dict) -> List[dict]:
    return [{'keypoints': p['keypoints'],
             'keypoint_scores': p['keypoint_scores'],
             'bbox': [p['bbox']], 'bbox_score': p['bbox_score']}
            for p in frame['persons']]


def _write_mmpose(handle, frames, meta: dict, dataset_meta: Dict) -> None:
    import json_tricks
    handle.write('{"meta_info": ')
    handle.write(json_tricks.dumps(dataset_meta))
    handle.write(', "instance_info": ')
    if meta['kind'] == 'image':
        handle.write(json.dumps(_mmpose_instances(next(frames)),
                                allow_nan=False))
    else:
        handle.write('[')
        for number, frame in enumerate(frames):
            handle.write(', ' if number else '')
            handle.write(json.dumps({'frame_id': frame['frame_index'] + 1,
                                     'instances': _mmpose_instances(frame)},
                                    allow_nan=False))
        handle.write(']')
    handle.write('}\n')


def _write_coco(handle, frames) -> None:
    handle.write('[')
    first = True
    for frame in frames:
        for person in frame['persons']:
            points, _ = triplets_found(person)
            x1, y1, x2, y2 = person['bbox']
            entry = {'image_id': frame['frame_index'], 'category_id': 1,
                     'keypoints': np.round(points, 5).ravel().tolist(),
                     'score': round(person['bbox_score'] * points[:, 2].mean(),
                                    5),
                     'bbox': [x1, y1, round(x2 - x1, 3), round(y2 - y1, 3)]}
            if 'track_id' in person:
                entry['idx'] = person['track_id']  # AlphaPose's name
            handle.write(('' if first else ',') + '\n'
                         + json.dumps(entry, allow_nan=False))
            first = False
    handle.write('\n]\n')


def _write_csv(handle, frames, keypoint_names: List[str],
               tracking: bool) -> None:
    writer = csv.writer(handle)
    writer.writerow(['frame_index', 'timestamp_s', 'person_index'] + (
        ['track_id'] if tracking else []) + [
        'bbox_x1', 'bbox_y1', 'bbox_x2', 'bbox_y2', 'bbox_score'] + [
        f'{name}_{field}' for name in keypoint_names
        for field in ('x', 'y', 'score')])
    for frame in frames:
        for index, person in enumerate(frame['persons']):
            values = []
            for (x, y), score in zip(person['keypoints'],
                                     person['keypoint_scores']):
                values += [x, y, score]
            track = [person.get('track_id', '')] if tracking else []
            writer.writerow([spreadsheet_cell(value) for value in (
                frame['frame_index'], frame['timestamp_s'], index, *track,
                *person['bbox'], person['bbox_score'], *values)])


def _write_angles(handle, frames, meta: dict) -> None:
    names = meta.get('angles')
    if names is None:
        raise ValueError('this result has no angles (it was made without '
                         '"angles": true)')
    tracking = meta.get('tracking', False)
    writer = csv.writer(handle)
    writer.writerow([spreadsheet_cell(name) for name in [
        'frame_index', 'timestamp_s', 'person_index'] + (
        ['track_id'] if tracking else []) + list(names)])
    for frame in frames:
        for index, person in enumerate(frame['persons']):
            angles = person.get('angles') or {}
            track = [person.get('track_id', '')] if tracking else []
            writer.writerow([spreadsheet_cell(value) for value in (
                frame['frame_index'], frame['timestamp_s'], index, *track,
                *(_degrees(angles.get(name)) for name in names))])


def _degrees(value):
    """An angle's cell: its degrees, or empty for null (and for what is
    not a finite number: a result not written by this suite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not np.isfinite(value):
        return ''
    return value
