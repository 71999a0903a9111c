"""Tracking ids and One-Euro smoothing (pose_suite.service.tracking), on the real
COCO-WholeBody poses of the test annotations, moved as in a video."""
import dataclasses
import json

import numpy as np
import pytest
from conftest import data_file, real_frames, write_avi

from pose_suite.service.tracking import OneEuroSmoother, PoseTracker


@pytest.fixture(scope='module')
def real_poses():
    """The annotated people of 000000197388.jpg (5 skiers), as persons."""
    annotations = json.loads(data_file(
        'annotations/test_coco_wholebody.json').read_text())
    persons = []
    for annotation in annotations['annotations']:
        if annotation['image_id'] != 197388:
            continue
        triplets = np.concatenate([np.reshape(annotation[k], (-1, 3)) for k in
                                   ('keypoints', 'foot_kpts', 'face_kpts',
                                    'lefthand_kpts', 'righthand_kpts')])
        x, y, w, h = annotation['bbox']
        persons.append({'bbox': np.array([x, y, x + w, y + h]),
                        'bbox_score': 0.9,
                        'keypoints': triplets[:, :2].astype(np.float32),
                        'keypoint_scores': (triplets[:, 2] > 0) * 0.9})
    assert len(persons) == 5
    return persons


def _moved(person, dx, dy):
    shift = np.array([dx, dy])
    return dict(person, bbox=person['bbox'] + np.tile(shift, 2),
                keypoints=person['keypoints'] + shift.astype(np.float32))


def test_ids_follow_people_whatever_their_order(real_poses):
    tracker = PoseTracker(kpt_thr=0.3)
    first = [dict(p) for p in real_poses]
    tracker.update(first)
    ids = [p['track_id'] for p in first]
    assert sorted(ids) == [0, 1, 2, 3, 4]
    generator = np.random.default_rng(0)
    for step in range(1, 6):
        order = generator.permutation(5)
        frame = [_moved(real_poses[i], 4 * step, -2 * step) for i in order]
        tracker.update(frame)
        assert [p['track_id'] for p in frame] == [ids[i] for i in order]


def test_lost_person_gets_their_id_back_and_newcomer_a_new_one(real_poses):
    tracker = PoseTracker(kpt_thr=0.3, max_missed=5)
    frame = [dict(p) for p in real_poses]
    tracker.update(frame)
    hidden_id = frame[2]['track_id']
    for _ in range(3):  # person 2 is hidden for three frames
        tracker.update([dict(p) for i, p in enumerate(real_poses) if i != 2])
    back = [dict(real_poses[2])]
    tracker.update(back)
    assert back[0]['track_id'] == hidden_id
    stranger = [_moved(real_poses[0], 5000, 5000)]
    tracker.update(stranger)
    assert stranger[0]['track_id'] == 5


def test_track_forgotten_after_max_missed(real_poses):
    tracker = PoseTracker(kpt_thr=0.3, max_missed=2)
    frame = [dict(real_poses[0])]
    tracker.update(frame)
    for _ in range(3):
        tracker.update([])
    again = [dict(real_poses[0])]
    tracker.update(again)
    assert again[0]['track_id'] == 1


def test_one_euro_removes_jitter_and_keeps_raw(real_poses):
    person = dict(real_poses[0], track_id=0)
    smoother = OneEuroSmoother()
    generator = np.random.default_rng(1)
    raw_error, smooth_error = [], []
    for frame in range(60):
        noisy = dict(person, keypoints=person['keypoints'] + generator.normal(
            0, 2.0, (133, 2)).astype(np.float32))
        [out] = smoother.smooth([noisy], frame / 30)
        assert out['keypoints_raw'] is noisy['keypoints']
        if frame >= 10:
            raw_error.append(np.abs(noisy['keypoints'] - person['keypoints']))
            smooth_error.append(np.abs(out['keypoints'] - person['keypoints']))
    assert np.mean(smooth_error) < 0.5 * np.mean(raw_error)


def test_one_euro_follows_fast_motion(real_poses):
    person = dict(real_poses[0], track_id=0)
    smoother = OneEuroSmoother()
    for frame in range(30):  # 300 px/s to the right
        moved = _moved(person, 10 * frame, 0)
        [out] = smoother.smooth([moved], frame / 30)
    lag = np.abs(out['keypoints'][:, 0] - moved['keypoints'][:, 0]).mean()
    assert lag < 5.0  # under half a frame's motion


def test_video_results_carry_track_ids_and_raw_keypoints(analysis_service,
                                                         tmp_path,
                                                         monkeypatch):
    video = write_avi(tmp_path / 'clip.avi', real_frames(3))
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, smoothing=True))
    result = json.loads(analysis_service.run(video, tmp_path / 'r.json')
                        .read_text())
    assert result['meta']['tracking'] and result['meta']['smoothing']
    for frame in result['frames']:
        ids = [p['track_id'] for p in frame['persons']]
        assert len(set(ids)) == len(ids)
        for person in frame['persons']:
            assert len(person['keypoints_raw']) == 133
    first = result['frames'][0]['persons']
    assert [p['track_id'] for p in first] == list(range(len(first)))
    assert all(p['keypoints'] == p['keypoints_raw'] for p in first)


def test_images_have_no_track_ids(analysis_service, tmp_path):
    result = json.loads(analysis_service.run(
        data_file('images/000000000785.jpg'), tmp_path / 'r.json')
        .read_text())
    assert result['meta']['tracking'] is False
    assert all('track_id' not in p for p in result['frames'][0]['persons'])


@pytest.mark.parametrize('hidden, same_id', [(14, True), (15, False)])
def test_memory_is_the_documented_15_frames(real_poses, hidden, same_id):
    """docs/movement.md: a track not matched for 15 frames is forgotten.
    Hidden for 14 frames, a person gets their id back; for 15, a new one.
    The smoother forgets its state at the same frame."""
    tracker, smoother = PoseTracker(kpt_thr=0.3), OneEuroSmoother()
    frame = [dict(real_poses[0])]
    tracker.update(frame)
    smoother.smooth(frame, 0.0)
    for index in range(1, hidden + 1):
        tracker.update([])
        smoother.smooth([], index / 30)
    again = [dict(real_poses[0])]
    tracker.update(again)
    assert (again[0]['track_id'] == 0) is same_id
    assert (0 in smoother.state) is same_id
