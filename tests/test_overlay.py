"""The overlay output (pose_suite.outputs.overlay)."""
import dataclasses
import json

import cv2
import numpy as np
import pytest
from conftest import (assert_one_line_error, data_file, fail_on_call,
                      real_frames, run_cli, write_avi)

from pose_suite.config.specs import check_overlay_name
from pose_suite.errors import ConfigError
from pose_suite.outputs.overlay import (OverlayWriter, draw_persons,
                                        overlay_path)


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


def test_image_overlay(analysis_service, tmp_path, monkeypatch):
    overlay = tmp_path / 'vis.jpg'
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, visualize_output=overlay))
    analysis_service.run(data_file('images/000000000785.jpg'),
                         tmp_path / 'r.json')
    assert cv2.imread(str(overlay)).shape == (425, 640, 3)


def test_no_overlay_when_a_video_fails_midway(analysis_service, tmp_path,
                                              monkeypatch):
    """Frames are drawn, then the run fails on the third: no overlay is
    published and no temporary one is left."""
    video = write_avi(tmp_path / 'clip.avi', real_frames(4), fps=10)
    overlay = tmp_path / 'vis' / 'clip.mp4'
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, visualize_output=overlay))
    fail_on_call(monkeypatch, analysis_service, 'analyse_frame', 3,
                 RuntimeError('simulated failure'))
    real_write, written = OverlayWriter.write, []

    def write(self, frame, persons, *index):
        real_write(self, frame, persons, *index)
        written.append(self._temporary.exists())

    monkeypatch.setattr(OverlayWriter, 'write', write)
    with pytest.raises(RuntimeError, match='simulated'):
        analysis_service.run(video, tmp_path / 'r.json')
    assert written == [True, True]  # two frames were in the overlay
    assert list(overlay.parent.iterdir()) == []


@pytest.mark.parametrize('name, words', [
    ('vis.gif', ['visualize_output', 'vis.gif', '.mp4']),
    ('vis.mp4', ['visualize_output', 'vis.mp4', 'an image',
                 'image name'])])
def test_overlay_name_checked_before_any_work(config_values, write_config,
                                              tmp_path, name, words):
    """An unknown suffix is refused by the config; an .mp4 for an image
    input is refused before the models load. Either way: one line."""
    config = write_config({**config_values,
                           'visualize_output': str(tmp_path / name)})
    result = run_cli('pose_analysis_service.py', '--config', config)
    assert_one_line_error(result, *words)
    assert not (tmp_path / 'out').exists()
    with pytest.raises(ConfigError):
        check_overlay_name(tmp_path / 'vis.gif')
    with pytest.raises(ConfigError, match='an .mp4 name'):
        overlay_path(tmp_path / 'v.jpg', 'stream', tmp_path / 'r.json',
                     tmp_path)


def test_each_input_of_a_batch_gets_its_own_overlay(analysis_service,
                                                    tmp_path, monkeypatch):
    photos = [data_file('images/000000000785.jpg'),
              data_file('images/000000040083.jpg')]
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, output=tmp_path / 'out',
        visualize_output=tmp_path / 'drawn'))
    analysis_service.run_many(photos)
    assert sorted(p.name for p in (tmp_path / 'drawn').iterdir()) == [
        '000000000785.jpg.overlay.jpg', '000000040083.jpg.overlay.jpg']
    assert cv2.imread(str(tmp_path / 'drawn' / '000000040083.jpg.overlay'
                          '.jpg')).shape == (333, 500, 3)
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, visualize_output=tmp_path / 'one.jpg'))
    with pytest.raises(ConfigError, match='one file for 2 inputs'):
        analysis_service.run_many(photos)


def test_a_stream_overlay_is_a_video(analysis_service, tmp_path,
                                     monkeypatch):
    from conftest import serve_folder
    folder = tmp_path / 'served'
    folder.mkdir()
    write_avi(folder / 'clip.avi', real_frames(4))
    overlay = tmp_path / 'live.mp4'
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, visualize_output=overlay))
    with serve_folder(folder) as base:
        analysis_service.run(f'{base}/clip.avi', tmp_path / 'r.json')
    capture = cv2.VideoCapture(str(overlay))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 4
