"""``--format openpose`` and ``--format pose2sim``: OpenPose's published
``--write_json`` layout, and Pose2Sim's own code reading our files back and
triangulating two views of them.

OpenPose cannot be installed here: its layout is checked against its
``doc/output.md`` (keys, ``version``, file names) and
``faceParameters.hpp``/``poseParameters.hpp`` (70 face points, BODY_25's
names), with BODY_25 mapped from the whole-body points by *name* in this
file. Pose2Sim is the real package (``make test`` installs it with
``--no-deps``; ``tests/requirements.txt``).
"""
import dataclasses
import json
import re
import shutil

import numpy as np
import pytest
from conftest import (COCO_IMAGES, assert_one_line_error, damaged_avi,
                      data_file, real_frames, run_cli, write_avi)

from pose_suite.errors import OutputError

#: OpenPose's POSE_BODY_25_BODY_PARTS, in order.
BODY_25 = ('Nose', 'Neck', 'RShoulder', 'RElbow', 'RWrist', 'LShoulder',
           'LElbow', 'LWrist', 'MidHip', 'RHip', 'RKnee', 'RAnkle', 'LHip',
           'LKnee', 'LAnkle', 'REye', 'LEye', 'REar', 'LEar', 'LBigToe',
           'LSmallToe', 'LHeel', 'RBigToe', 'RSmallToe', 'RHeel')
#: OpenPose's hand order: the wrist, then each finger from its base.
FINGERS = ('thumb', 'forefinger', 'middle_finger', 'ring_finger',
           'pinky_finger')
PERSON_KEYS = {'person_id', 'pose_keypoints_2d', 'face_keypoints_2d',
               'hand_left_keypoints_2d', 'hand_right_keypoints_2d',
               'pose_keypoints_3d', 'face_keypoints_3d',
               'hand_left_keypoints_3d', 'hand_right_keypoints_3d'}


def _wholebody_name(openpose_name: str) -> str:
    """'RBigToe' -> 'right_big_toe' (mmpose's COCO-WholeBody names)."""
    side = {'R': 'right_', 'L': 'left_'}.get(openpose_name[0], '')
    rest = openpose_name[1:] if side else openpose_name
    return side + re.sub(r'(?<!^)([A-Z])', r'_\1', rest).lower()


def _point(person: dict, names: list, name: str) -> list:
    index = names.index(name)
    return [*person['keypoints'][index], person['keypoint_scores'][index]]


def _expected_body_25(person: dict, names: list) -> np.ndarray:
    midpoints = {'Neck': ('right_shoulder', 'left_shoulder'),
                 'MidHip': ('right_hip', 'left_hip')}
    rows = []
    for name in BODY_25:
        if name in midpoints:
            a, b = (_point(person, names, n) for n in midpoints[name])
            rows.append([(a[0] + b[0]) / 2, (a[1] + b[1]) / 2,
                         min(a[2], b[2])])
        else:
            rows.append(_point(person, names, _wholebody_name(name)))
    return np.asarray(rows)


def _hand_names(side: str) -> list:
    return [f'{side}_hand_root'] + [f'{side}_{finger}{joint}'
                                    for finger in FINGERS
                                    for joint in range(1, 5)]


def _assert_openpose_person(entry: dict, person: dict, names: list) -> None:
    assert set(entry) == PERSON_KEYS
    assert entry['person_id'] == [person.get('track_id', -1)]
    assert [len(entry[key]) for key in (
        'pose_keypoints_2d', 'face_keypoints_2d', 'hand_left_keypoints_2d',
        'hand_right_keypoints_2d')] == [25 * 3, 70 * 3, 21 * 3, 21 * 3]
    assert all(entry[key] == [] for key in PERSON_KEYS if key.endswith('3d'))
    np.testing.assert_allclose(np.reshape(entry['pose_keypoints_2d'], (25, 3)),
                               _expected_body_25(person, names), atol=1e-3)
    face = np.reshape(entry['face_keypoints_2d'], (70, 3))
    assert face[:68].tolist() == [_point(person, names, f'face-{i}')
                                  for i in range(68)]
    assert face[68:].tolist() == [[0, 0, 0]] * 2  # OpenPose's pupils
    for side in ('left', 'right'):
        assert entry[f'hand_{side}_keypoints_2d'] == [
            value for name in _hand_names(side)
            for value in _point(person, names, name)]


@pytest.fixture
def exporting(analysis_service, monkeypatch):
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, export_formats=('openpose', 'pose2sim')))
    return analysis_service


def test_openpose_files_of_a_video(exporting, tmp_path):
    """A tracked 4-frame video whose frame 2 cannot be decoded: one file
    per frame, named by OpenPose's rule, frame 2 with nobody; every person
    in OpenPose's layout with its track id; Pose2Sim's files in pose/."""
    video = damaged_avi(tmp_path / 'clip.avi', 4, [2])
    with pytest.warns(UserWarning, match='frame 2 of .* could not be decoded'):
        native = exporting.run(video, tmp_path / 'clip.avi.json')
    result = json.loads(native.read_text())
    names = result['meta']['keypoint_names']
    frames = {frame['frame_index']: frame for frame in result['frames']}
    assert sorted(frames) == [0, 1, 3]
    folder = tmp_path / 'clip_json'
    assert sorted(p.name for p in folder.glob('*_keypoints.json')) == [
        f'clip_{i:012d}_keypoints.json' for i in range(4)]
    for index in range(4):
        written = json.loads(
            (folder / f'clip_{index:012d}_keypoints.json').read_text())
        assert set(written) == {'version', 'people'}
        assert written['version'] == 1.3
        persons = frames.get(index, {'persons': []})['persons']
        assert len(written['people']) == len(persons)
        assert len(persons) == (0 if index == 2 else 2)
        for entry, person in zip(written['people'], persons):
            assert 'track_id' in person
            _assert_openpose_person(entry, person, names)
        pose2sim = json.loads((tmp_path / 'pose' / 'clip_json' /
                               f'clip_{index:012d}_keypoints.json'
                               ).read_text())
        assert [p['pose_keypoints_2d'] for p in pose2sim['people']] == [
            [value for point, score in zip(p['keypoints'],
                                           p['keypoint_scores'])
             for value in (*point, score)] for p in persons]
    assert not list(tmp_path.glob('.*partial*'))


def test_openpose_file_of_an_image(exporting, tmp_path):
    """An image: ``<name>_keypoints.json`` as OpenPose names it, persons
    without a track (person_id -1); Pose2Sim's file keeps frame number 0."""
    image = data_file(COCO_IMAGES[3])
    native = exporting.run(image, tmp_path / 'out' / f'{image.name}.json')
    result = json.loads(native.read_text())
    written = json.loads((tmp_path / 'out' / f'{image.stem}_json' /
                          f'{image.stem}_keypoints.json').read_text())
    persons = result['frames'][0]['persons']
    assert len(written['people']) == len(persons) == 2
    for entry, person in zip(written['people'], persons):
        assert entry['person_id'] == [-1]
        _assert_openpose_person(entry, person, result['meta']['keypoint_names'])
    assert [p.name for p in (tmp_path / 'out' / 'pose' / f'{image.stem}_json'
                             ).glob('*_keypoints.json')] == [
        f'{image.stem}_000000000000_keypoints.json']


def test_failed_export_keeps_the_previous_folder(exporting, tmp_path,
                                                 monkeypatch):
    """An export that fails half way leaves no partial folder, and the
    JSON stays written; the previous folder, made from the result this
    run replaced, is gone (issue 36: an export not made from the current
    result is removed), not left to be read as the new result's."""
    video = write_avi(tmp_path / 'clip.avi', real_frames(3))
    native = exporting.run(video, tmp_path / 'clip.avi.json')
    folder = tmp_path / 'clip_json'
    before = {p.name: p.read_bytes()
              for p in folder.glob('*_keypoints.json')}
    assert len(before) == 3
    import pose_suite.outputs.openpose
    real_dump, calls = json.dump, []

    def dump_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, 'No space left on device')
        return real_dump(*args, **kwargs)

    monkeypatch.setattr(pose_suite.outputs.openpose.json, 'dump', dump_then_fail)
    with pytest.raises(OutputError, match='openpose export failed: .*No '
                       'space left'):
        exporting.run(video, native, resume=False)
    monkeypatch.undo()
    assert native.is_file()
    assert not folder.exists()
    assert not list(tmp_path.glob('.*partial*'))
    assert not [p for p in tmp_path.iterdir() if p.is_dir()
                and p.name.startswith(('.clip_json', 'clip_json'))]


def test_formats_asked_later_are_written_without_analysing(
        analysis_service, exporting, tmp_path, monkeypatch):
    """A result up to date gets the folder formats asked for since,
    without the models running, on ``resume``."""
    video = write_avi(tmp_path / 'clip.avi', real_frames(2))
    monkeypatch.setattr(exporting, 'config', dataclasses.replace(
        exporting.config, export_formats=()))
    native = exporting.run(video, tmp_path / 'clip.avi.json')
    assert not (tmp_path / 'clip_json').exists()
    monkeypatch.setattr(exporting, 'config', dataclasses.replace(
        exporting.config, export_formats=('openpose', 'pose2sim')))

    def no_detection(*args, **kwargs):
        raise AssertionError('the detector ran')

    for name in ('detect', 'detect_batch'):
        monkeypatch.setattr(exporting.detector, name, no_detection)
    done = exporting.analyse_input(video, native, resume=True)
    assert done.status == 'up to date'
    assert len(list((tmp_path / 'clip_json').glob('*_keypoints.json'))) == 2
    assert len(list((tmp_path / 'pose' / 'clip_json').glob(
        '*_keypoints.json'))) == 2


def test_two_inputs_one_folder_refused(tiny_models, write_config, tmp_path):
    """cam01.avi and cam01.mkv would both write cam01_json: refused in one
    line before anything is analysed."""
    clips = tmp_path / 'clips'
    clips.mkdir()
    write_avi(clips / 'cam01.avi', real_frames(1))
    shutil.copy(clips / 'cam01.avi', clips / 'cam01.mkv')
    config = write_config(dict(tiny_models, input=str(clips),
                               output=str(tmp_path / 'out')))
    result = run_cli('pose_analysis_service.py', '--config', config,
                     '--format', 'openpose')
    assert_one_line_error(result, 'cam01.avi', 'cam01.mkv', 'cam01_json')
    assert not (tmp_path / 'out').exists()
    result = run_cli('pose_analysis_service.py', '--config', config,
                     '--format', 'csv', '--quiet')
    assert result.returncode == 0, result.stderr


def _strict_json(text: str):
    """json.loads that refuses NaN and Infinity, as strict readers do."""
    def refuse(constant):
        raise ValueError(f'not JSON: {constant}')
    return json.loads(text, parse_constant=refuse)


def test_points_held_as_null_are_written_as_openpose_and_coco_do(
        exporting, tmp_path):
    """A result holds a point it could not compute as null: the OpenPose,
    Pose2Sim and COCO files write it as (0, 0, 0), as OpenPose writes a
    point it did not find, a BODY_25 midpoint of it too, and every file is
    strict JSON."""
    from pose_suite.outputs.exports import export
    from pose_suite.outputs.results import read_meta
    image = data_file(COCO_IMAGES[0])
    native = exporting.run(image, tmp_path / 'out' / 'photo.json')
    data = json.loads(native.read_text())
    names = data['meta']['keypoint_names']
    person = data['frames'][0]['persons'][0]
    for name in ('left_shoulder', 'face-3', 'left_hand_root'):
        person['keypoints'][names.index(name)] = [None, None]
        person['keypoint_scores'][names.index(name)] = None
    text = native.read_text()
    head, frames = text.split('\n"frames": [\n', 1)
    lines = frames.split('\n')
    lines[0] = json.dumps(data['frames'][0], separators=(',', ':')) + \
        lines[0][len(lines[0].rstrip(',')):]
    native.write_text(head + '\n"frames": [\n' + '\n'.join(lines))
    meta = read_meta(native)
    dataset_meta = exporting.pose.model.dataset_meta
    for fmt in ('openpose', 'pose2sim', 'coco'):
        export(native, fmt, meta, dataset_meta)
    entry = _strict_json((tmp_path / 'out' / 'photo_json' /
                          'photo_keypoints.json').read_text())['people'][0]
    body = np.reshape(entry['pose_keypoints_2d'], (25, 3))
    for name in ('LShoulder', 'Neck'):  # the point, and its midpoint
        assert body[BODY_25.index(name)].tolist() == [0, 0, 0]
    assert body[BODY_25.index('RShoulder')].tolist() != [0, 0, 0]
    assert entry['face_keypoints_2d'][9:12] == [0, 0, 0]
    assert entry['hand_left_keypoints_2d'][:3] == [0, 0, 0]
    pose2sim = _strict_json((tmp_path / 'out' / 'pose' / 'photo_json' /
                             'photo_000000000000_keypoints.json').read_text())
    flat = pose2sim['people'][0]['pose_keypoints_2d']
    index = names.index('left_shoulder')
    assert flat[3 * index:3 * index + 3] == [0, 0, 0]
    coco = _strict_json((tmp_path / 'out' / 'photo.coco.json').read_text())
    assert coco[0]['keypoints'][3 * index:3 * index + 3] == [0, 0, 0]


def test_a_folder_of_frame_files_is_synced_once(tmp_path, monkeypatch):
    """300 frame files are made durable with one sync of the filesystem,
    not one fsync each (10,000 files took 60 s that way), and a crash
    before the rename still leaves the previous folder (see
    test_failed_export_keeps_the_previous_folder)."""
    import os

    from pose_suite.outputs import openpose, publish
    names = [f'kp{i}' for i in range(133)]
    meta = {'source': str(tmp_path / 'clip.mp4'), 'kind': 'video',
            'keypoint_names': names, 'frames_failed': []}
    person = {'bbox': [0, 0, 10, 10], 'bbox_score': 0.9,
              'keypoints': [[1.0, 2.0]] * 133, 'keypoint_scores': [0.5] * 133}
    frames = [{'frame_index': i, 'timestamp_s': i / 30, 'persons': [person]}
              for i in range(300)]
    calls = {'fsync': 0, 'sync_filesystem': 0}
    real_fsync, real_sync = os.fsync, publish.sync_filesystem

    def fsync(descriptor):
        calls['fsync'] += 1
        return real_fsync(descriptor)

    def sync_filesystem(path):
        calls['sync_filesystem'] += 1
        return real_sync(path)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(openpose, 'sync_filesystem', sync_filesystem)
    folder = openpose.write_folder(tmp_path / 'clip.mp4.json', 'openpose',
                                   meta, frames)
    assert len(list(folder.glob("*_keypoints.json"))) == 300
    assert (folder / openpose.OWNER_FILE).is_file()
    assert calls['fsync'] <= 3 and calls['sync_filesystem'] == 1, calls
