"""pose_suite/models/device_ops.py on the CPU: the NMS fallback against mmcv's own
``batched_nms`` on real detector outputs, the decision, and the batch move
that must leave CPU runs as they were."""
import json
import warnings

import cv2
import numpy as np
import pytest
import torch
from conftest import COCO_IMAGES, data_file

from pose_suite.errors import SuiteWarning
from pose_suite.models.device_ops import (choose_nms, mmcv_nms_fails_on,
                                          nms_on_cpu, to_device_once,
                                          use_nms_on_cpu)


def candidates(detector, image):
    """RTMDet's boxes before NMS for one real image, as its head hands them
    to ``batched_nms``: (bboxes (N, 4), scores (N,), labels (N,))."""
    from mmengine.dataset import pseudo_collate
    model = detector.model
    batch = pseudo_collate([detector._pipeline(dict(img=image, img_id=0))])
    with torch.inference_mode():
        data = model.data_preprocessor(batch, False)
        outputs = model.bbox_head(model.extract_feat(data['inputs']))
        results = model.bbox_head.predict_by_feat(
            *outputs, batch_img_metas=[s.metainfo
                                       for s in data['data_samples']],
            cfg=model.bbox_head.test_cfg, rescale=True, with_nms=False)
    return results[0].bboxes, results[0].scores, results[0].labels


@pytest.mark.parametrize('image', COCO_IMAGES)
@pytest.mark.parametrize('nms_cfg', [
    {'iou_threshold': 0.65},  # the RTMDet config's own
    {'iou_threshold': 0.3},
    {'iou_threshold': 0.1},
    {'iou_threshold': 0.3, 'split_thr': 50},  # class by class
])
def test_nms_on_cpu_keeps_what_mmcv_batched_nms_keeps(detector, image,
                                                      nms_cfg):
    from mmcv.ops import batched_nms
    boxes, scores, labels = candidates(detector,
                                       cv2.imread(str(data_file(image))))
    assert len(boxes) > 100  # score_thr 0: a real crowd of candidates
    labels = labels.clone()
    labels[::3] = 1  # two classes, so the class offsets matter too
    expected = batched_nms(boxes, scores, labels, dict(type='nms', **nms_cfg))
    got = batched_nms(boxes, scores, labels, dict(type=nms_on_cpu, **nms_cfg))
    assert torch.equal(got[1], expected[1])  # the same indices, in order
    assert torch.equal(got[0], expected[0])
    # Random weights regress boxes about one anchor wide: at 0.65 they
    # barely overlap; lower thresholds drop hundreds to thousands.
    if nms_cfg['iou_threshold'] <= 0.3:
        assert 0 < len(got[1]) < 0.6 * len(boxes)


def test_detector_with_the_fallback_finds_the_same_boxes(model_files,
                                                         detector,
                                                         monkeypatch):
    """The fallback wired through the model's test_cfg is what the head
    calls, and the detector's boxes stay the same to the bit."""
    import mmcv.ops

    from detection_service import DetectionService
    fallback = DetectionService(model_files['det_config'],
                                model_files['det_checkpoint'], device='cpu',
                                bbox_thr=0.0, nms_thr=0.3)
    assert use_nms_on_cpu(fallback.model) == 1
    assert fallback.model.bbox_head.test_cfg.nms.type is nms_on_cpu
    calls = []
    real_nms = mmcv.ops.nms
    monkeypatch.setattr(mmcv.ops, 'nms',
                        lambda *a, **k: calls.append(1) or real_nms(*a, **k))
    for image in COCO_IMAGES:
        frame = cv2.imread(str(data_file(image)))
        np.testing.assert_array_equal(fallback.detect(frame),
                                      detector.detect(frame))
    assert len(calls) == len(COCO_IMAGES)


def test_mmcv_nms_is_kept_where_it_runs(detector):
    assert mmcv_nms_fails_on('cpu') is None
    assert detector.nms == 'mmcv on cpu'
    assert detector.model.bbox_head.test_cfg.nms.type == 'nms'


def test_a_device_without_mmcv_nms_gets_the_fallback(model_files):
    """mmcv has no NMS for the ``meta`` device, as a CPU-only build has none
    for CUDA: the decision made at build time, said once."""
    from mmdet.apis import init_detector
    why = mmcv_nms_fails_on('meta')
    assert why is not None and 'meta' in why
    model = init_detector(str(model_files['det_config']), None, device='cpu')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        said = choose_nms(model, 'meta')
    assert said == f'mmcv on cpu (fallback: {why})'
    assert model.bbox_head.test_cfg.nms.type is nms_on_cpu
    suite_warnings = [w for w in caught if w.category is SuiteWarning]
    assert len(suite_warnings) == 1
    assert 'NMS runs on the CPU' in str(suite_warnings[0].message)


def test_nms_entries_found_in_nested_test_cfgs():
    """Two-stage detectors keep ``nms`` under ``rpn`` and ``rcnn``; a
    soft-NMS entry is left as configured."""
    module = torch.nn.Module()
    module.test_cfg = {'rpn': {'nms': {'type': 'nms', 'iou_threshold': 0.7}},
                       'rcnn': {'nms': {'iou_threshold': 0.5}},
                       'other': {'nms': {'type': 'soft_nms'}}}
    assert use_nms_on_cpu(module) == 2
    assert module.test_cfg['rpn']['nms']['type'] is nms_on_cpu
    assert module.test_cfg['rcnn']['nms']['type'] is nms_on_cpu
    assert module.test_cfg['other']['nms']['type'] == 'soft_nms'


def test_batches_stay_as_they_are_on_the_cpu():
    batch = {'inputs': [torch.zeros(3, 4, 5, dtype=torch.uint8)],
             'data_samples': [None]}
    assert to_device_once(batch, 'cpu') is batch


def test_where_nms_ran_is_in_meta_run(analysis_service, tmp_path):
    output = analysis_service.run(data_file(COCO_IMAGES[0]),
                                  tmp_path / 'result.json')
    meta = json.loads(output.read_text())['meta']
    assert meta['run']['detector_nms'] == 'mmcv on cpu'
