"""OpenPose's ``--write_json`` layout, for OpenPose readers and Pose2Sim.

OpenPose writes one file per frame, ``<name>_<frame>_keypoints.json`` with
the frame number in 12 digits from 0 (``<name>_keypoints.json`` for an
image), holding ``{"version": 1.3, "people": [...]}``; each person has flat
``x, y, confidence`` lists (its ``output.md`` and ``faceParameters.hpp``):

* ``openpose``: ``pose_keypoints_2d`` in BODY_25 order (25 points; Neck and
  MidHip, which COCO-WholeBody lacks, are the midpoints of the shoulders and
  of the hips with the lower of the two scores), ``face_keypoints_2d`` 70
  points (COCO-WholeBody's 68 face points are OpenPose's first 68, in the
  same iBUG order; OpenPose's two pupils, 68 and 69, are not in
  COCO-WholeBody and are written ``0, 0, 0`` as OpenPose writes a point it
  did not find), ``hand_left_keypoints_2d`` and ``hand_right_keypoints_2d``
  21 points each (the same order in both layouts), the ``_3d`` lists empty.
  In folder ``<name>_json/`` beside the result JSON.
* ``pose2sim``: the same files with all 133 points in mmpose's order in
  ``pose_keypoints_2d`` (Pose2Sim's ``COCO_133`` skeleton, its
  ``pose_model = 'Whole_body'``) and the other lists empty, in
  ``pose/<name>_json/`` of the trial folder, where Pose2Sim looks for one
  folder per camera: the result JSON's folder, or its parent when that
  folder is named ``videos`` (Pose2Sim's ``Trial/videos/cam01.mp4`` gives
  ``Trial/pose/cam01_json/``).

``person_id`` is ``[track_id]`` in a tracked video, else ``[-1]``. Every
frame gets a file, an undecodable one (``meta.frames_failed``) and one with
nobody ``"people": []``, so that Pose2Sim's frame count per camera is the
video's. ``<name>`` is the result JSON's name without ``.json`` and without
the input's suffix (``cam01.mp4.json`` gives ``cam01``), so results of
``cam.jpg`` and ``cam.png`` (separate runs) name the same folder: a hidden
file in it, ``.pose-suite-export`` (:data:`OWNER_FILE`, no ``.json``: the
readers take ``*.json``), names the result it was last written for (its
path from the folder, and ``meta.run.result_id``). The folder is linked and
removed only for that result, and another result's run refuses to replace
it while that result is there (:func:`check_owner`).
"""
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

import numpy as np

from pose_suite.errors import OutputError
from pose_suite.outputs.publish import fsync_folder, sync_filesystem
from pose_suite.outputs.results import triplets_found

FOLDER_FORMATS = ('openpose', 'pose2sim')
#: The hidden file in an export folder naming the result it was made from.
OWNER_FILE = '.pose-suite-export'
#: A frame file's name (see :func:`frame_file_name`).
_FRAME_FILE = re.compile(r'^(?P<stem>.+?)_(\d{12}_)?keypoints\.json$')
#: BODY_25's points as COCO-WholeBody indices; a pair is a midpoint.
BODY_25_FROM_WHOLEBODY = (
    0, (5, 6), 6, 8, 10, 5, 7, 9, (11, 12), 12, 14, 16, 11, 13, 15, 2, 1, 4,
    3, 17, 18, 19, 20, 21, 22)
FACE, LEFT_HAND, RIGHT_HAND = range(23, 91), range(91, 112), range(112, 133)
OPENPOSE_FACE_POINTS = 70


def result_name(native_path: Path, source: Union[str, Path]) -> str:
    """The name OpenPose would give the input's files (``cam01``)."""
    stem = Path(native_path).stem
    suffix = Path(str(source)).suffix
    if suffix and stem.endswith(suffix) and len(stem) > len(suffix):
        stem = stem[:-len(suffix)]
    return stem


def folder_path(native_path: Path, fmt: str,
                source: Union[str, Path]) -> Path:
    """Where the ``openpose`` or ``pose2sim`` files of a result go."""
    native_path = Path(native_path)
    folder = f'{result_name(native_path, source)}_json'
    if fmt == 'openpose':
        return native_path.parent / folder
    trial = native_path.parent
    if trial.name == 'videos':
        trial = trial.parent
    return trial / 'pose' / folder


def is_openpose_file(path: Path) -> bool:
    """A frame file of an OpenPose or Pose2Sim export: ``<stem>_<frame>
    _keypoints.json`` (or ``<stem>_keypoints.json``) in a folder
    ``<stem>_json``."""
    found = _FRAME_FILE.match(Path(path).name)
    return bool(found) and Path(path).parent.name == found['stem'] + '_json'


def foreign_entries(folder: Path) -> List[str]:
    """The names in an existing export ``folder`` that this suite did not
    write there (anything but its frame files): a user's own folder that
    happens to be named ``<stem>_json``. Replacing the folder would delete
    them. [] for a folder that does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return [folder.name] if folder.exists() else []
    return sorted(entry.name for entry in folder.iterdir()
                  if not (entry.is_file() and (is_openpose_file(entry) or
                                               entry.name == OWNER_FILE)))


def folder_owner(folder: Path) -> Optional[tuple]:
    """``(result path, result id)`` that the export ``folder`` was last
    written for, from its :data:`OWNER_FILE`; None where it has none (not
    there, or written by a version before it)."""
    try:
        owner = json.loads((Path(folder) / OWNER_FILE).read_text('utf-8'))
        return (Path(os.path.normpath(Path(folder) / owner['result'])),
                str(owner['result_id']))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def owned_by(folder: Path, native_path: Path, made_from: str) -> bool:
    """Whether ``folder`` was last written for the result ``native_path``
    whose identity is ``made_from``."""
    owner = folder_owner(folder)
    return owner is not None and owner[1] == made_from and \
        same_file(owner[0], native_path)


def check_owner(folder: Path, native_path: Path, fmt: str) -> None:
    """Refuse to replace ``folder`` for the result ``native_path`` when
    it was written for another result that is still there (``cam.jpg``'s
    and ``cam.png``'s both make ``cam_json``).

    Raises:
        OutputError: naming the folder and both results.
    """
    owner = folder_owner(folder)
    if owner is not None and owner[0].is_file() and \
            not same_file(owner[0], native_path):
        raise OutputError(
            f'{folder} holds the {fmt} export of {owner[0]}; writing '
            f'{native_path}\'s would replace it: write the results '
            'elsewhere, or remove that result first')


def same_file(first: Path, second: Path) -> bool:
    return os.path.normcase(Path(first).resolve()) == \
        os.path.normcase(Path(second).resolve())


def frame_file_name(name: str, frame_index: int, image: bool = False) -> str:
    """OpenPose's file name of one frame (of an image: without number)."""
    if image:
        return f'{name}_keypoints.json'
    return f'{name}_{frame_index:012d}_keypoints.json'


def body_25(points: np.ndarray,
            missing: Optional[np.ndarray] = None) -> np.ndarray:
    """(25, 3) BODY_25 x, y, score from (133, 3) COCO-WholeBody ones; a
    midpoint (Neck, MidHip) of a ``missing`` point is (0, 0, 0), as
    OpenPose writes a point it did not find."""
    rows = []
    for index in BODY_25_FROM_WHOLEBODY:
        if isinstance(index, tuple):
            first, second = points[list(index)]
            if missing is not None and missing[list(index)].any():
                rows.append([0.0, 0.0, 0.0])
                continue
            rows.append([round((first[0] + second[0]) / 2, 3),
                         round((first[1] + second[1]) / 2, 3),
                         min(first[2], second[2])])
        else:
            rows.append(points[index])
    return np.asarray(rows)


def _flat(rows: np.ndarray) -> List[float]:
    return [float(value) for value in np.asarray(rows).ravel()]


def person_record(person: dict, fmt: str) -> dict:
    """One entry of ``people`` for a native person record."""
    points, missing = triplets_found(person)
    record = {'person_id': [person.get('track_id', -1)]}
    if fmt == 'pose2sim':
        record.update(pose_keypoints_2d=_flat(points),
                      face_keypoints_2d=[], hand_left_keypoints_2d=[],
                      hand_right_keypoints_2d=[])
    else:
        pupils = np.zeros((OPENPOSE_FACE_POINTS - len(FACE), 3))
        record.update(
            pose_keypoints_2d=_flat(body_25(points, missing)),
            face_keypoints_2d=_flat(points[list(FACE)]) + _flat(pupils),
            hand_left_keypoints_2d=_flat(points[list(LEFT_HAND)]),
            hand_right_keypoints_2d=_flat(points[list(RIGHT_HAND)]))
    record.update(pose_keypoints_3d=[], face_keypoints_3d=[],
                  hand_left_keypoints_3d=[], hand_right_keypoints_3d=[])
    return record


def _with_failed_frames(frames: Iterable[dict],
                        failed: Sequence[int]) -> Iterable[dict]:
    """The frame records in order, with an empty one for each undecodable
    frame index."""
    failed = sorted(failed)
    position = 0
    for frame in frames:
        while position < len(failed) and \
                failed[position] < frame['frame_index']:
            yield {'frame_index': failed[position], 'persons': []}
            position += 1
        yield frame
    for index in failed[position:]:
        yield {'frame_index': index, 'persons': []}


def write_folder(native_path: Path, fmt: str, meta: dict,
                 frames: Iterable[dict], made_from: str = '') -> Path:
    """Write a result's frames as OpenPose files, and the
    :data:`OWNER_FILE` naming the result (``made_from``: its identity);
    returns the folder.

    The files are written and fsynced into a new hidden folder beside the
    result JSON (not in ``pose/``, where Pose2Sim takes every folder named
    with "json" for a camera), which then replaces the previous folder by
    two renames: a reader never finds a folder half written.
    """
    native_path = Path(native_path)
    target = folder_path(native_path, fmt, meta['source'])
    name = result_name(native_path, meta['source'])
    foreign = foreign_entries(target)
    if foreign:
        raise OutputError(f'{target} holds files this suite did not write '
                          f'({", ".join(foreign[:3])}); move them, or '
                          'write the results elsewhere')
    check_owner(target, native_path, fmt)
    image = meta['kind'] == 'image'
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = staging_folder(native_path, fmt, secrets.token_hex(4))
    temporary.mkdir()
    try:
        for frame in _with_failed_frames(frames,
                                         meta.get('frames_failed', [])):
            people = [person_record(person, fmt)
                      for person in frame['persons']]
            file = temporary / frame_file_name(name, frame['frame_index'],
                                               image and fmt == 'openpose')
            with open(file, 'w', encoding='utf-8') as handle:
                json.dump({'version': 1.3, 'people': people}, handle,
                          allow_nan=False)
        (temporary / OWNER_FILE).write_text(json.dumps({
            'result': os.path.relpath(native_path.absolute(),
                                      target.absolute()),
            'result_id': made_from}), encoding='utf-8')
        # One sync of the filesystem for all the files (one fsync a file
        # took 60 s for 10,000 frames), before the folder is renamed into
        # place: a crash still leaves the previous folder or this one.
        sync_filesystem(temporary)
        fsync_folder(temporary)
        _replace_folder(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return target


def staging_folder(native_path: Path, fmt: str, token: str) -> Path:
    """The hidden folder the ``fmt`` files of a result are written in
    before it replaces the previous one (``token``: 8 hex digits); that
    one is first renamed to this name + ``.old`` (:func:`old_folder`)."""
    native_path = Path(native_path)
    return native_path.with_name(f'.{native_path.name}.{fmt}.{token}.partial')


def old_folder(staging: Path) -> Path:
    """Where the previous folder goes while ``staging`` replaces it."""
    return staging.with_name(staging.name + '.old')


def _replace_folder(new: Path, target: Path) -> None:
    old: Optional[Path] = None
    if target.exists():
        old = old_folder(new)
        os.replace(target, old)
    os.replace(new, target)
    fsync_folder(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
