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
made from: a hidden file beside the result (``.<name>.exports.json``) maps
each format to the result's ``meta.run.result_id``, so that an export of an
earlier result is never kept beside a new one (:func:`is_current`).
"""
import csv
import json
from pathlib import Path
from typing import Dict, List

import numpy as np

from pose_suite.outputs.openpose import (FOLDER_FORMATS, folder_path,
                                         write_folder)
from pose_suite.outputs.publish import atomic_write, spreadsheet_cell
from pose_suite.outputs.results import iter_frame_records, triplets_found

SUFFIXES = {'mmpose': '.mmpose.json', 'coco': '.coco.json', 'csv': '.csv',
            'angles': '.angles.csv'}


def export_path(native_path: Path, fmt: str, source: str) -> Path:
    """Where the ``fmt`` export of a native results file (of the input
    ``source``) goes: a file, or a folder for OpenPose's layout."""
    native_path = Path(native_path)
    if fmt in FOLDER_FORMATS:
        return folder_path(native_path, fmt, source)
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
                              iter_frame_records(native_path))
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
    return export_path(native_path, fmt, meta['source']).exists() and \
        _made_from(native_path).get(fmt) == _identity(native_path, meta)


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
