"""DetectionService against mmdet's own inference, on real images."""
import cv2
import numpy as np
import pytest
from conftest import BOXES_PER_FRAME, COCO_IMAGES, data_file

from pose_suite.errors import CheckpointError, DeviceError, ModelConfigError


def reference_boxes(model, image, bbox_thr, nms_thr, det_cat_id=0):
    """What mmpose's topdown_demo_with_mmdet.py computes, scores kept."""
    from mmdet.apis import inference_detector
    from mmpose.evaluation.functional import nms
    instances = inference_detector(model, image).pred_instances.cpu().numpy()
    boxes = np.concatenate((instances.bboxes, instances.scores[:, None]), 1)
    boxes = boxes[np.logical_and(instances.labels == det_cat_id,
                                 instances.scores > bbox_thr)]
    return boxes[nms(boxes, nms_thr)]


@pytest.fixture(scope='module')
def reference_detector(real_model_files):
    """The same real-size checkpoint through mmdet's plain init_detector,
    set up as mmpose's topdown_demo_with_mmdet.py does."""
    import torch
    from mmdet.apis import init_detector
    from mmpose.utils import adapt_mmdet_pipeline

    from pose_suite.models.checkpoints import allowed_globals
    with torch.serialization.safe_globals(allowed_globals()):
        model = init_detector(str(real_model_files['det_config']),
                              str(real_model_files['det_checkpoint']),
                              device='cpu')
    model.cfg = adapt_mmdet_pipeline(model.cfg)
    return model


@pytest.mark.parametrize('image_name', COCO_IMAGES + ['images/astronaut.png'])
def test_boxes_match_mmdet_reference(real_detector, reference_detector,
                                     image_name):
    detector = real_detector
    image = cv2.imread(str(data_file(image_name)))
    boxes = detector.detect(image)
    expected = reference_boxes(reference_detector, image, detector.bbox_thr,
                               detector.nms_thr)
    assert boxes.dtype == np.float32 and boxes.shape[1] == 5
    assert 1 <= len(boxes) <= BOXES_PER_FRAME
    np.testing.assert_allclose(boxes, expected, atol=1e-3)
    assert np.all(np.diff(boxes[:, 4]) <= 0), 'sorted by decreasing score'
    height, width = image.shape[:2]
    assert np.all(boxes[:, [0, 2]] >= 0) and np.all(boxes[:, [0, 2]] <= width)
    assert np.all(boxes[:, [1, 3]] >= 0) and np.all(boxes[:, [1, 3]] <= height)


def test_bbox_thr_filters_by_real_score(detector):
    image = cv2.imread(str(data_file(COCO_IMAGES[3])))
    boxes = detector.detect(image)
    cut = float(boxes[0, 4])  # the best score: nothing is strictly above
    detector.bbox_thr = cut
    try:
        assert detector.detect(image).shape == (0, 5)
        detector.bbox_thr = float(boxes[-1, 4]) - 1e-6
        np.testing.assert_array_equal(detector.detect(image), boxes)
    finally:
        detector.bbox_thr = 0.0


def test_pose_checkpoint_is_refused_by_the_detector(model_files):
    from detection_service import DetectionService
    with pytest.raises(CheckpointError, match='does not fit'):
        DetectionService(model_files['det_config'],
                         model_files['pose_checkpoint'], device='cpu')


def test_missing_checkpoint(model_files, tmp_path):
    from detection_service import DetectionService
    with pytest.raises(CheckpointError, match='not found.*make weights'):
        DetectionService(model_files['det_config'], tmp_path / 'absent.pth')


def test_checkpoint_failing_its_hash_is_refused(model_files, tmp_path):
    from detection_service import DetectionService
    wrong = tmp_path / 'rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth'
    wrong.write_bytes(model_files['det_checkpoint'].read_bytes())
    with pytest.raises(CheckpointError, match='fails its checksum'):
        DetectionService(model_files['det_config'], wrong)


def test_file_that_is_not_a_checkpoint(model_files, tmp_path):
    from detection_service import DetectionService
    bogus = tmp_path / 'weights.pth'
    bogus.write_text('this is text, not weights')
    with pytest.raises(CheckpointError, match='not a PyTorch checkpoint'):
        DetectionService(model_files['det_config'], bogus)


def test_missing_model_config(model_files, tmp_path):
    from detection_service import DetectionService
    with pytest.raises(ModelConfigError, match='not found'):
        DetectionService(tmp_path / 'absent.py',
                         model_files['det_checkpoint'])


def test_cuda_without_gpu_is_a_clear_error(model_files):
    import torch

    from detection_service import DetectionService
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    with pytest.raises(DeviceError, match='CUDA is not available'):
        DetectionService(model_files['det_config'],
                         model_files['det_checkpoint'], device='cuda')


def test_fast_mode_boxes_close_to_fp32(real_model_files, real_detector):
    """bf16 runs the backbone and neck only: the head's box regression of
    every candidate stays within 0.5 px of fp32, and its scores within
    0.01. Compared candidate by candidate, before the ranking: the random
    weights score all candidates about 0.5, so bf16's rounding may change
    which are the top two (it does on this CPU with AMX: a box 200 px
    away), which says nothing about the boxes."""
    model_files, detector = real_model_files, real_detector
    import torch
    from mmengine.dataset import pseudo_collate

    from detection_service import DetectionService
    fast = DetectionService(model_files['det_config'],
                            model_files['det_checkpoint'], bbox_thr=0.0,
                            precision='bf16', runtime='pytorch')
    for name in COCO_IMAGES[:2]:
        image = cv2.imread(str(data_file(name)))
        heads = []
        for service in (detector, fast):
            batch = pseudo_collate([service._pipeline(dict(img=image,
                                                           img_id=0))])
            with torch.inference_mode():
                inputs = service.model.data_preprocessor(batch)['inputs']
                heads.append(service.model.bbox_head(
                    service.model.extract_feat(inputs)))
        (exact_scores, exact_boxes), (fast_scores, fast_boxes) = heads
        for exact, approximate in zip(exact_boxes, fast_boxes):
            assert approximate.dtype == torch.float32  # heads stay fp32
            assert 0 < (approximate - exact).abs().max() <= 0.5
        for exact, approximate in zip(exact_scores, fast_scores):
            assert (approximate.sigmoid() - exact.sigmoid()).abs().max() \
                <= 0.01
        assert fast.detect(image).shape == detector.detect(image).shape


def test_detect_batch_matches_detect(detector):
    """The GPU path (several frames per pass), run on the CPU."""
    from conftest import real_frames
    frames = real_frames(3)
    batched = detector.detect_batch(frames)
    assert len(batched) == 3
    for frame, boxes in zip(frames, batched):
        np.testing.assert_allclose(boxes, detector.detect(frame), atol=1e-3)


def test_production_settings_end_to_end(real_model_files, tmp_path):
    """The shipped detector config as it is (test_cfg score 0.05, NMS 0.6,
    up to 100 boxes; the tests' factory config forces 2 boxes instead):
    the same boxes as mmdet's own inference, then through the CLI."""
    model_files = real_model_files
    import json

    import torch
    from conftest import ROOT, run_cli
    from mmdet.apis import init_detector
    from mmengine.config import Config
    from mmpose.utils import adapt_mmdet_pipeline

    from detection_service import DetectionService
    from pose_suite.config import DET_CONFIG
    from pose_suite.models.checkpoints import allowed_globals
    config = ROOT / DET_CONFIG
    test_cfg = Config.fromfile(str(config)).model.test_cfg
    assert (test_cfg.score_thr, test_cfg.nms.iou_threshold,
            test_cfg.max_per_img) == (0.05, 0.6, 100)
    image_path = data_file(COCO_IMAGES[0])
    image = cv2.imread(str(image_path))
    service = DetectionService(config, model_files['det_checkpoint'],
                               device='cpu', bbox_thr=0.0, nms_thr=0.3)
    boxes = service.detect(image)
    with torch.serialization.safe_globals(allowed_globals()):
        reference = init_detector(str(config),
                                  str(model_files['det_checkpoint']),
                                  device='cpu')
    reference.cfg = adapt_mmdet_pipeline(reference.cfg)
    np.testing.assert_allclose(boxes, reference_boxes(reference, image, 0.0,
                                                      0.3), atol=1e-3)
    assert len(boxes) > 2  # not the factory's forced two
    # End to end, with a threshold that keeps the two best boxes.
    threshold = float(boxes[1, 4] + boxes[2, 4]) / 2
    values = {'det_config': str(config),
              'det_checkpoint': str(model_files['det_checkpoint']),
              'pose_config': str(model_files['pose_config']),
              'pose_checkpoint': str(model_files['pose_checkpoint']),
              'input': str(image_path), 'output': str(tmp_path / 'r.json'),
              'device': 'cpu', 'bbox_thr': threshold, 'nms_thr': 0.3}
    (tmp_path / 'config.json').write_text(json.dumps(values))
    result = run_cli('pose_analysis_service.py', '--config',
                     tmp_path / 'config.json', '--quiet')
    assert result.returncode == 0, result.stderr
    persons = json.loads((tmp_path / 'r.json').read_text())['frames'][0][
        'persons']
    np.testing.assert_allclose([p['bbox'] + [p['bbox_score']]
                                for p in persons], boxes[:2], atol=1e-3)
