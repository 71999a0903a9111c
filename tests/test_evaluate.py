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


def _noisy_results_with_false_positives(folder, seed=1):
    """Ground truth moved by 3 px noise with random keypoint scores, plus
    per image a near-duplicate of each person (OKS-NMS must drop it) and
    one person far off with mostly low scores (the 0.2 keypoint-score
    threshold decides its instance score)."""
    generator = np.random.default_rng(seed)
    paths = _results_from_ground_truth(folder, noise_px=3.0, seed=seed)
    for path in paths:
        result = json.loads(path.read_text())
        persons = result['frames'][0]['persons']
        extra = []
        for person in persons:
            scores = generator.uniform(0.05, 1.0, 133)
            person['keypoint_scores'] = scores.tolist()
            person['bbox_score'] = float(generator.uniform(0.5, 1.0))
            extra.append(dict(person, bbox_score=person['bbox_score'] * 0.9,
                              keypoints=(np.asarray(person['keypoints'])
                                         + 0.5).tolist()))
            far = (np.asarray(person['keypoints']) + [150, 40]).tolist()
            low = generator.uniform(0.0, 0.15, 133)
            low[:5] = 0.95
            extra.append(dict(person, keypoints=far,
                              keypoint_scores=low.tolist(),
                              bbox=(np.asarray(person['bbox']) +
                                    [150, 40, 150, 40]).tolist()))
        persons += extra
        path.write_text(json.dumps(result))
    return paths


def _mmpose_metric_directly(paths, **metric_options):
    """The same persons through mmpose's CocoWholeBodyMetric, the areas
    from mmpose's own GetBBoxCenterScale + TopdownAffine: {part: AP}."""
    from unittest import mock

    import mmpose.evaluation.metrics.coco_wholebody_metric as module
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    from mmpose.datasets.transforms import GetBBoxCenterScale, TopdownAffine
    from xtcocotools.cocoeval import COCOeval

    annotations = json.loads(data_file(ANNOTATIONS).read_text())
    image_ids = {image['file_name']: image['id']
                 for image in annotations['images']}
    metric = module.CocoWholeBodyMetric(ann_file=str(data_file(ANNOTATIONS)),
                                        **metric_options)
    metric.dataset_meta = parse_pose_metainfo(dict(
        from_file='configs/_base_/datasets/coco_wholebody.py'))
    samples = []
    for path in paths:
        result = json.loads(path.read_text())
        image_id = image_ids[result['meta']['source'].rsplit('/', 1)[1]]
        for person in result['frames'][0]['persons']:
            data = {'img': np.zeros((480, 640, 3), np.uint8),
                    'bbox': np.asarray([person['bbox']], np.float32)}
            data = TopdownAffine(input_size=(288, 384))(
                GetBBoxCenterScale()(data))
            samples.append({
                'id': len(samples), 'img_id': image_id,
                'pred_instances': {
                    'keypoints': np.asarray([person['keypoints']]),
                    'keypoint_scores': np.asarray(
                        [person['keypoint_scores']]),
                    'bbox_scores': np.asarray([person['bbox_score']])},
                'gt_instances': {'bbox_scales': data['bbox_scale']}})
    metric.process([], samples)
    stats = {}

    class Recording(COCOeval):
        def summarize(self):
            super().summarize()
            stats[self.params.iouType.split('_', 1)[1]] = self.stats[0]

    with mock.patch.object(module, 'COCOeval', Recording):
        returned = metric.compute_metrics(metric.results)
    assert stats['wholebody'] == returned['AP']
    return stats


def test_same_ap_as_mmpose_coco_wholebody_metric(tmp_path):
    paths = _noisy_results_with_false_positives(tmp_path)
    ours = evaluate(data_file(ANNOTATIONS), paths)
    theirs = _mmpose_metric_directly(paths)
    assert set(theirs) == set(ours)
    for part in ours:
        assert ours[part]['AP'] == pytest.approx(theirs[part], abs=1e-9), \
            part
        assert 0 < ours[part]['AP'] < 0.99, part  # neither 0 nor 1
    # The duplicates and false positives matter: without OKS-NMS, or with
    # mmpose's keypoint-score threshold off, the numbers differ.
    without_nms = _mmpose_metric_directly(paths, nms_mode='none')
    no_threshold = _mmpose_metric_directly(paths, keypoint_score_thr=0.0)
    assert any(abs(without_nms[p] - theirs[p]) > 1e-3 for p in theirs)
    assert any(abs(no_threshold[p] - theirs[p]) > 1e-3 for p in theirs)


def test_error_lines_show_names_escaped(tmp_path, capsys):
    """A name with a RIGHT-TO-LEFT OVERRIDE or a newline is shown
    escaped in both error lines (not found; not results)."""
    from pose_suite.evaluate import main
    missing = tmp_path / 'gt\u202enosj.json'
    assert main([str(missing), str(tmp_path / 'r.json')]) == 1
    assert capsys.readouterr().err == (
        f'error: annotations not found: {tmp_path}/gt\\u202enosj.json\n')
    other = tmp_path / 'other\nline.json'
    other.write_text('{"hello": 1}')
    assert main([str(data_file(ANNOTATIONS)), str(other)]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1, err
    assert f'{tmp_path}/other\\nline.json' in err
