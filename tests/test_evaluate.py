"""pose_suite.evaluate against the real COCO-WholeBody annotations."""
import json

import numpy as np
import pytest

from conftest import data_file, run_cli
from pose_suite.evaluate import PARTS, evaluate

ANNOTATIONS = 'annotations/test_coco_wholebody.json'


def _results_from_ground_truth(folder, noise_px=0.0, seed=0):
    """One results file per annotated image, in this suite's format, with
    the ground-truth keypoints as predictions (plus Gaussian noise), scored
    1 where annotated and 0 where not, for
    every person with annotated keypoints (two tiny background persons have
    none; COCO ignores them)."""
    annotations = json.loads(data_file(ANNOTATIONS).read_text())
    generator = np.random.default_rng(seed)
    paths = []
    for image in annotations['images']:
        persons = []
        for annotation in annotations['annotations']:
            if annotation['image_id'] != image['id'] or \
                    annotation['num_keypoints'] == 0:
                continue
            triplets = np.concatenate([
                np.reshape(annotation[key], (-1, 3)) for _, key, _ in PARTS])
            keypoints = triplets[:, :2] + generator.normal(
                0, noise_px, (133, 2)) * (noise_px > 0)
            x, y, w, h = annotation['bbox']
            annotated = (triplets[:, 2] > 0).astype(float)
            persons.append({'bbox': [x, y, x + w, y + h], 'bbox_score': 1.0,
                            'keypoints': keypoints.tolist(),
                            'keypoint_scores': annotated.tolist()})
        path = folder / f'{image["id"]}.json'
        path.write_text(json.dumps({
            'meta': {'source': f'/anywhere/{image["file_name"]}'},
            'frames': [{'frame_index': 0, 'timestamp_s': 0.0,
                        'persons': persons}]}))
        paths.append(path)
    return paths


def test_ground_truth_scores_one(tmp_path):
    scores = evaluate(data_file(ANNOTATIONS),
                      _results_from_ground_truth(tmp_path))
    assert set(scores) == {'body', 'foot', 'face', 'lefthand', 'righthand',
                           'wholebody'}
    for part, values in scores.items():
        assert values['AP'] == pytest.approx(1.0), part
        assert values['AR'] == pytest.approx(1.0), part


def test_perturbed_keypoints_score_lower(tmp_path):
    exact = evaluate(data_file(ANNOTATIONS),
                     _results_from_ground_truth(tmp_path))
    noisy = evaluate(data_file(ANNOTATIONS),
                     _results_from_ground_truth(tmp_path, noise_px=6.0))
    for part in exact:
        assert noisy[part]['AP'] < exact[part]['AP'] - 0.05, part


def test_cli_prints_a_table(tmp_path):
    paths = _results_from_ground_truth(tmp_path)
    result = run_cli('pose_suite.evaluate', data_file(ANNOTATIONS), *paths)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ['part', 'AP', 'AR']
    assert lines[-1].split() == ['wholebody', '1.000', '1.000']


def test_cli_refuses_a_file_that_is_not_results(tmp_path):
    other = tmp_path / 'other.json'
    other.write_text('{"hello": 1}')
    result = run_cli('pose_suite.evaluate', data_file(ANNOTATIONS), other)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.startswith('error: ') and 'other.json' in \
        result.stderr
