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
* ``openpose`` and ``pose2sim``: a folder of OpenPose files, one per frame
  (:mod:`pose_suite.outputs.openpose`).

The native JSON holds one frame per line, so each export streams through it
without loading the whole file.
"""
import csv
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from pose_suite.config.specs import check_distinct
from pose_suite.media.inputs import Inputs
from pose_suite.outputs.openpose import (FOLDER_FORMATS, folder_path,
                                         write_folder)
from pose_suite.outputs.publish import atomic_write
from pose_suite.outputs.results import iter_frame_records, triplets

SUFFIXES = {'mmpose': '.mmpose.json', 'coco': '.coco.json', 'csv': '.csv'}


def output_files(inputs: Inputs, output: Path,
                 export_formats: Sequence[str] = ()) -> List[Path]:
    """The result file of each input, in order
    (:meth:`~pose_suite.media.inputs.Inputs.output_files`), with the
    OpenPose folders of ``export_formats`` checked too: no two inputs may
    write the same one (``cam01.mp4`` and ``cam01.mov`` both make
    ``cam01_json``).

    Raises:
        OutputError: several inputs and a ``.json`` file, or two inputs
        whose results or OpenPose folders would be the same.
    """
    files = inputs.output_files(output)
    for fmt in set(export_formats) & set(FOLDER_FORMATS):
        check_distinct(inputs.sources, [
            folder_path(file, fmt, source)
            for source, file in zip(inputs.sources, files)], f'{fmt} files')
    return files


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
        return write_folder(native_path, fmt, meta,
                            iter_frame_records(native_path))
    target = export_path(native_path, fmt, meta['source'])
    with atomic_write(target, encoding='utf-8', newline='') as handle:
        frames = iter_frame_records(native_path)
        if fmt == 'mmpose':
            _write_mmpose(handle, frames, meta, dataset_meta)
        elif fmt == 'coco':
            _write_coco(handle, frames)
        else:
            _write_csv(handle, frames, meta['keypoint_names'],
                       meta.get('tracking', False))
    return target


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
        handle.write(json.dumps(_mmpose_instances(next(frames))))
    else:
        handle.write('[')
        for number, frame in enumerate(frames):
            handle.write(', ' if number else '')
            handle.write(json.dumps({'frame_id': frame['frame_index'] + 1,
                                     'instances': _mmpose_instances(frame)}))
        handle.write(']')
    handle.write('}\n')


def _write_coco(handle, frames) -> None:
    handle.write('[')
    first = True
    for frame in frames:
        for person in frame['persons']:
            points = triplets(person)
            x1, y1, x2, y2 = person['bbox']
            entry = {'image_id': frame['frame_index'], 'category_id': 1,
                     'keypoints': np.round(points, 5).ravel().tolist(),
                     'score': round(person['bbox_score'] * points[:, 2].mean(),
                                    5),
                     'bbox': [x1, y1, round(x2 - x1, 3), round(y2 - y1, 3)]}
            if 'track_id' in person:
                entry['idx'] = person['track_id']  # AlphaPose's name
            handle.write(('' if first else ',') + '\n' + json.dumps(entry))
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
            track = [person['track_id']] if tracking else []
            writer.writerow([frame['frame_index'], frame['timestamp_s'],
                             index, *track, *person['bbox'],
                             person['bbox_score'], *values])
