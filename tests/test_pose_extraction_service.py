"""PoseExtractionService against mmpose's own inference_topdown."""
import warnings

import cv2
import numpy as np
import pytest
import torch
from conftest import COCO_IMAGES, data_file

from pose_suite.errors import CheckpointError


def inference_topdown_reference(model, image, boxes):
    """mmpose's inference_topdown on (N, 4+) boxes: [(keypoints (133, 2),
    keypoint_scores (133,)), ...]."""
    from mmpose.apis import inference_topdown
    samples = inference_topdown(model, image, np.asarray(boxes)[:, :4])
    return [(s.pred_instances.keypoints[0], s.pred_instances.keypoint_scores[0])
            for s in samples]


@pytest.fixture(scope='module')
def reference_pose_model(real_model_files):
    """The same real-size checkpoint through mmpose's plain init_model."""
    from mmpose.apis import init_model

    from pose_suite.models.checkpoints import allowed_globals
    with torch.serialization.safe_globals(allowed_globals()):
        return init_model(str(real_model_files['pose_config']),
                          str(real_model_files['pose_checkpoint']),
                          device='cpu')


@pytest.mark.parametrize('image_name', COCO_IMAGES)
def test_keypoints_match_inference_topdown(real_detector, real_pose_service,
                                           reference_pose_model, image_name):
    detector, pose_service = real_detector, real_pose_service
    image = cv2.imread(str(data_file(image_name)))
    boxes = detector.detect(image)
    people = pose_service.extract(image, boxes)
    expected = inference_topdown_reference(reference_pose_model, image, boxes)
    assert len(people) == len(boxes) == len(expected) > 0
    for person, box, (keypoints, scores) in zip(people, boxes, expected):
        assert person['keypoints'].shape == (133, 2)
        assert person['keypoint_scores'].shape == (133,)
        np.testing.assert_allclose(person['keypoints'], keypoints, atol=1e-3)
        np.testing.assert_allclose(person['keypoint_scores'], scores,
                                   atol=1e-5)
        np.testing.assert_array_equal(person['bbox'], box[:4])
        assert person['bbox_score'] == pytest.approx(float(box[4]))


def test_keypoints_lie_in_their_box(real_detector, real_pose_service):
    detector, pose_service = real_detector, real_pose_service
    image = cv2.imread(str(data_file(COCO_IMAGES[0])))
    boxes = detector.detect(image)
    for person in pose_service.extract(image, boxes):
        x1, y1, x2, y2 = person['bbox']
        # The crop is the box padded by 1.25 and widened to 3:4; decoding
        # may reach up to about one heatmap pixel (crop / 72) past its edge.
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        w, h = (x2 - x1) * 1.25, (y2 - y1) * 1.25
        w, h = max(w, h * 0.75), max(h, w / 0.75)
        kx, ky = person['keypoints'].T
        margin = 2 * w / 72
        assert np.all(np.abs(kx - cx) <= w / 2 + margin)
        assert np.all(np.abs(ky - cy) <= h / 2 + margin)
        assert np.ptp(kx) > w / 10, 'keypoints spread over the crop'


def test_batching_does_not_change_results(real_detector, real_pose_service):
    detector, pose_service = real_detector, real_pose_service
    image = cv2.imread(str(data_file(COCO_IMAGES[3])))
    boxes = detector.detect(image)
    batched = pose_service.extract(image, boxes)
    pose_service.batch_size = 1
    try:
        one_by_one = pose_service.extract(image, boxes)
    finally:
        pose_service.batch_size = 8
    for a, b in zip(batched, one_by_one):
        np.testing.assert_allclose(a['keypoints'], b['keypoints'], atol=1e-3)


def test_no_boxes_gives_no_people(pose_service):
    image = cv2.imread(str(data_file('images/no_person_sunglasses.jpg')))
    assert pose_service.extract(image, np.zeros((0, 5), np.float32)) == []


def test_metadata_names_133_wholebody_keypoints(pose_service):
    names = pose_service.keypoint_names
    assert len(names) == 133
    assert names[:3] == ['nose', 'left_eye', 'right_eye']
    assert names[17] == 'left_big_toe' and names[23] == 'face-0'
    assert names[91] == 'left_hand_root' and names[112] == 'right_hand_root'
    links = pose_service.skeleton_links
    assert len(links) > 0 and all(0 <= i < 133 for link in links
                                  for i in link)


def test_mmpose_0x_checkpoint_loads_exactly(model_files, pose_service):
    """The published HRNet file is an mmpose 0.x checkpoint: keypoint_head.*
    keys, legacy (non-zip) serialization, numpy scalars in meta."""
    from mmpose.apis import init_model

    from pose_suite.models.checkpoints import load_weights, safe_torch_load
    raw = safe_torch_load(model_files['pose_checkpoint_legacy'])
    assert any(k.startswith('keypoint_head.') for k in raw['state_dict'])
    assert isinstance(raw['meta']['seed'], np.integer)
    model = init_model(str(model_files['pose_config']), None, device='cpu')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # an unexpected key would warn
        load_weights(model, model_files['pose_checkpoint_legacy'])
    expected = pose_service.model.state_dict()
    loaded = model.state_dict()
    assert loaded.keys() == expected.keys()
    for key in expected:
        assert torch.equal(loaded[key], expected[key]), key


def test_detector_checkpoint_is_refused_by_the_pose_model(model_files):
    from pose_extraction_service import PoseExtractionService
    with pytest.raises(CheckpointError, match='does not fit'):
        PoseExtractionService(model_files['pose_config'],
                              model_files['det_checkpoint'])


def test_torchvision_status_is_reported():
    """mmpose imports torchvision; the real one is used when it imports,
    else a fallback whose only class refuses to be used."""
    import sys

    from pose_suite.models.runtime import TORCHVISION_STATUS, package_versions
    assert package_versions()['torchvision'] == TORCHVISION_STATUS
    try:
        import torchvision  # noqa: F401
        real = sys.modules['torchvision'].__version__ != 'fallback'
    except ImportError:
        real = False
    if real:
        assert TORCHVISION_STATUS.startswith('torchvision ')
    else:
        assert TORCHVISION_STATUS == 'fallback'
        from torchvision.transforms import ToPILImage
        with pytest.raises(RuntimeError, match='torchvision is not installed'):
            ToPILImage()


def test_fast_mode_heatmaps_within_one_percent(
        real_model_files, real_detector, real_pose_service):
    """bf16 fast mode: the heatmaps stay within 1 % (relative L2) of fp32;
    the keypoints are mostly the same. (Random weights make flat heatmaps
    whose near-equal peaks can swap, so single keypoints may jump.)"""
    model_files, detector, pose_service = \
        real_model_files, real_detector, real_pose_service
    from pose_extraction_service import PoseExtractionService
    fast = PoseExtractionService(model_files['pose_config'],
                                 model_files['pose_checkpoint'],
                                 precision='bf16', runtime='pytorch')
    image = cv2.imread(str(data_file(COCO_IMAGES[0])))
    boxes = detector.detect(image)
    exact = pose_service.heatmaps(image, boxes)
    approximate = fast.heatmaps(image, boxes)
    assert exact.shape == approximate.shape == (len(boxes), 133, 96, 72)
    error = np.linalg.norm(approximate - exact) / np.linalg.norm(exact)
    assert 0 < error < 0.01
    shifts = np.concatenate([
        np.abs(a['keypoints'] - b['keypoints']).max(axis=1) for a, b in zip(
            fast.extract(image, boxes), pose_service.extract(image, boxes))])
    assert np.median(shifts) < 0.5


def test_fp16_needs_cuda(model_files):
    import torch

    from pose_extraction_service import PoseExtractionService
    from pose_suite.errors import DeviceError
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    with pytest.raises(DeviceError, match='fp16.*CUDA.*bf16'):
        PoseExtractionService(model_files['pose_config'],
                              model_files['pose_checkpoint'],
                              device='cpu', precision='fp16')


def test_one_box_in_any_documented_shape(detector, pose_service):
    """(5,), (4,), (1, 5) and (1, 4) are one box; a (5,) box once became
    five bogus ones. Other shapes are refused with a clear error."""
    image = cv2.imread(str(data_file(COCO_IMAGES[0])))
    box = detector.detect(image)[0]
    reference = pose_service.extract(image, box[None])
    assert len(reference) == 1
    for shape in (box, box[:4], box[None, :4], list(box)):
        people = pose_service.extract(image, shape)
        assert len(people) == 1
        np.testing.assert_array_equal(people[0]['keypoints'],
                                      reference[0]['keypoints'])
    for bad in (box[:3], np.zeros((2, 6)), np.zeros((1, 1, 5))):
        with pytest.raises(ValueError, match=r'\(N, 4\) or \(N, 5\)'):
            pose_service.extract(image, bad)


def test_flip_test_off_matches_mmpose_without_flip_test(
        real_model_files, real_detector, real_pose_service,
        reference_pose_model):
    from pose_extraction_service import PoseExtractionService
    model_files, detector, pose_service = \
        real_model_files, real_detector, real_pose_service
    no_flip = PoseExtractionService(model_files['pose_config'],
                                    model_files['pose_checkpoint'],
                                    flip_test=False)
    assert no_flip.flip_test is False and pose_service.flip_test is True
    image = cv2.imread(str(data_file(COCO_IMAGES[1])))
    boxes = detector.detect(image)
    reference_pose_model.test_cfg['flip_test'] = False
    try:
        expected = inference_topdown_reference(reference_pose_model, image,
                                               boxes)
    finally:
        reference_pose_model.test_cfg['flip_test'] = True
    people = no_flip.extract(image, boxes)
    assert len(people) == len(expected) > 0
    for person, (keypoints, scores) in zip(people, expected):
        np.testing.assert_allclose(person['keypoints'], keypoints, atol=1e-3)
        np.testing.assert_allclose(person['keypoint_scores'], scores,
                                   atol=1e-5)
    flipped = pose_service.extract(image, boxes)
    assert max(np.abs(a['keypoint_scores'] - b['keypoint_scores']).max()
               for a, b in zip(people, flipped)) > 1e-3


def test_building_a_model_leaves_torch_init_as_it_was(pose_service):
    """The random initialisation skipped while the models are built is
    back afterwards, for the user's own models."""
    layer = torch.nn.Linear(64, 64)
    assert layer.weight.std() > 0.01
    assert torch.nn.init.kaiming_uniform_.__module__ == 'torch.nn.init'


def test_fast_mode_flip_test_in_one_pass_equals_mmpose_two_passes(
        real_model_files, real_detector):
    """Fast mode runs crops and mirrored crops as one batch; the averaged
    heatmaps equal those of mmpose's own predict (two passes) on the same
    bf16 model, within rounding."""
    model_files, detector = real_model_files, real_detector
    from pose_extraction_service import PoseExtractionService
    fast = PoseExtractionService(model_files['pose_config'],
                                 model_files['pose_checkpoint'],
                                 precision='bf16', runtime='pytorch')
    image = cv2.imread(str(data_file(COCO_IMAGES[3])))
    boxes = detector.detect(image)
    assert len(boxes) >= 2
    _, batch = next(fast._batches(image, boxes))
    model = fast.model
    model.test_cfg['output_heatmaps'] = True
    heatmaps = []
    with torch.inference_mode():
        data = model.data_preprocessor(batch, False)
        for predict in (model.predict,
                        lambda *args: type(model).predict(model, *args)):
            samples = predict(data['inputs'], data['data_samples'])
            heatmaps.append(np.stack([s.pred_fields.heatmaps.float().numpy()
                                      for s in samples]))
    one_pass, two_passes = heatmaps
    assert one_pass.shape == (len(boxes), 133, 96, 72)
    error = np.linalg.norm(one_pass - two_passes) / np.linalg.norm(two_passes)
    assert error < 1e-3
