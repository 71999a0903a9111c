"""The overlay output (pose_suite.overlay)."""
import dataclasses
import json

import cv2
import numpy as np

from conftest import data_file, real_frames, write_avi
from pose_suite.overlay import draw_persons


def _ground_truth_persons():
    """The real annotated poses of 000000196141.jpg, as persons."""
    annotations = json.loads(data_file(
        'annotations/test_coco_wholebody.json').read_text())
    persons = []
    for annotation in annotations['annotations']:
        if annotation['image_id'] != 196141 or not annotation['num_keypoints']:
            continue
        triplets = np.concatenate([np.reshape(annotation[k], (-1, 3)) for k in
                                   ('keypoints', 'foot_kpts', 'face_kpts',
                                    'lefthand_kpts', 'righthand_kpts')])
        x, y, w, h = annotation['bbox']
        persons.append({'bbox': [x, y, x + w, y + h], 'bbox_score': 1.0,
                        'track_id': len(persons),
                        'keypoints': triplets[:, :2],
                        'keypoint_scores': (triplets[:, 2] > 0) * 1.0})
    return persons


def test_draws_only_visible_keypoints_in_part_colours(pose_service):
    image = cv2.imread(str(data_file('images/000000196141.jpg')))
    persons = _ground_truth_persons()
    drawn = draw_persons(image, persons, pose_service.model.dataset_meta,
                         kpt_thr=0.5)
    assert drawn.shape == image.shape and not np.array_equal(drawn, image)
    colors = pose_service.model.dataset_meta['keypoint_colors']
    for person in persons:
        for index in np.flatnonzero(person['keypoint_scores'] > 0.5)[:5]:
            x, y = np.round(person['keypoints'][index]).astype(int)
            expected = np.asarray(colors[index])[::-1]  # RGB -> BGR
            assert np.abs(drawn[y, x].astype(int) - expected).max() <= 60
    hidden = [dict(p, keypoint_scores=p['keypoint_scores'] * 0)
              for p in persons]
    only_boxes = draw_persons(image, hidden, pose_service.model.dataset_meta,
                              kpt_thr=0.5)
    changed = np.any(only_boxes != image, axis=2)
    assert changed.mean() < np.any(drawn != image, axis=2).mean()


def test_video_overlay_has_source_fps_size_and_frames(analysis_service,
                                                      tmp_path, monkeypatch):
    video = write_avi(tmp_path / 'clip.avi', real_frames(3), fps=10)
    overlay = tmp_path / 'vis' / 'clip.mp4'
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, visualize_output=overlay))
    analysis_service.run(video, tmp_path / 'r.json')
    capture = cv2.VideoCapture(str(overlay))
    assert capture.get(cv2.CAP_PROP_FPS) == 10
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH),
            capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (480, 270)
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 3
    assert sorted(p.name for p in overlay.parent.iterdir()) == ['clip.mp4']


def test_image_overlay_and_no_overlay_on_failure(analysis_service, tmp_path,
                                                 monkeypatch):
    overlay = tmp_path / 'vis.jpg'
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, visualize_output=overlay))
    analysis_service.run(data_file('images/000000000785.jpg'),
                         tmp_path / 'r.json')
    assert cv2.imread(str(overlay)).shape == (425, 640, 3)
    overlay.unlink()

    def fail(frame):
        raise RuntimeError('simulated failure')
    monkeypatch.setattr(analysis_service, 'analyse_frame', fail)
    try:
        analysis_service.run(data_file('images/000000000785.jpg'),
                             tmp_path / 'r2.json')
    except RuntimeError:
        pass
    assert not overlay.exists()
    assert not list(tmp_path.glob('.vis*'))
