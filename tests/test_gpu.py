"""Tests marked ``gpu``: the suite on a CUDA device against the same suite
on the CPU, on real images.

Without CUDA they skip, with the reason. ``make gpu-check`` runs them with
``POSE_SUITE_GPU_DEVICE`` set: ``cuda`` on a GPU machine, ``cpu`` for its
dry run (the same code compared with itself, so that a mistake in a test
shows before the day it meets a GPU).
"""
import json
import os

import cv2
import numpy as np
import pytest
import torch
from conftest import BATCH_FILES, COCO_IMAGES, data_file

pytestmark = pytest.mark.gpu


# The real-size models here: a GPU's numerics on the models users run.
@pytest.fixture(scope='module')
def model_files(real_model_files):
    return real_model_files


@pytest.fixture(scope='module')
def detector(real_detector):
    return real_detector


@pytest.fixture(scope='module')
def pose_service(real_pose_service):
    return real_pose_service


@pytest.fixture(scope='module')
def device():
    asked = os.environ.get('POSE_SUITE_GPU_DEVICE')
    if asked:
        return asked
    if torch.cuda.is_available():
        return 'cuda'
    pytest.skip('no CUDA device here: `make gpu-check` runs the gpu tests '
                'on a CUDA machine (`make gpu-check DEVICE=cpu` is their '
                'dry run on the CPU)')


@pytest.fixture(scope='module')
def fast(device):
    """The fast precision of the device: fp16 on CUDA, bf16 on the CPU."""
    return 'fp16' if device.startswith('cuda') else 'bf16'


@pytest.fixture(scope='module')
def device_detector(model_files, device):
    from detection_service import DetectionService
    return DetectionService(model_files['det_config'],
                            model_files['det_checkpoint'], device=device,
                            bbox_thr=0.0, nms_thr=0.3)


@pytest.fixture(scope='module')
def device_pose(model_files, device):
    from pose_extraction_service import PoseExtractionService
    return PoseExtractionService(model_files['pose_config'],
                                 model_files['pose_checkpoint'],
                                 device=device)


def matched_box_distance(reference: np.ndarray, boxes: np.ndarray) -> float:
    """Largest corner distance (px) from each reference box to the nearest
    box of ``boxes`` (order may differ where scores tie)."""
    assert len(boxes) == len(reference)
    if not len(reference):
        return 0.0
    distance = np.abs(reference[:, None, :4] - boxes[None, :, :4]).max(-1)
    return float(distance.min(1).max())


@pytest.mark.parametrize('image', COCO_IMAGES)
def test_detector_on_the_device_matches_the_cpu(image, detector,
                                                device_detector):
    frame = cv2.imread(str(data_file(image)))
    on_cpu, on_device = detector.detect(frame), device_detector.detect(frame)
    assert matched_box_distance(on_cpu, on_device) <= 0.5
    np.testing.assert_allclose(np.sort(on_device[:, 4]),
                               np.sort(on_cpu[:, 4]), atol=1e-3)


def test_detector_batch_on_the_device_matches_one_by_one(device_detector):
    frames = [cv2.imread(str(data_file(image))) for image in COCO_IMAGES]
    frames = [cv2.resize(frame, (640, 426)) for frame in frames]
    batched = device_detector.detect_batch(frames)
    for frame, boxes in zip(frames, batched):
        assert matched_box_distance(device_detector.detect(frame),
                                    boxes) <= 0.5


def test_detector_nms_runs_and_is_recorded(device_detector, device):
    """mmcv's NMS where it has the device, else the CPU fallback; either
    way named (meta.run.detector_nms)."""
    from pose_suite.models.device_ops import mmcv_nms_fails_on
    why = mmcv_nms_fails_on(device_detector.device)
    if why is None:
        assert device_detector.nms == f'mmcv on {device_detector.device}'
    else:
        assert device_detector.nms.startswith('mmcv on cpu (fallback:')
    print(f'detector NMS on {device}: {device_detector.nms}')


@pytest.mark.parametrize('image', COCO_IMAGES)
def test_keypoints_on_the_device_match_the_cpu(image, detector, pose_service,
                                               device_pose):
    frame = cv2.imread(str(data_file(image)))
    boxes = detector.detect(frame)
    on_cpu = pose_service.extract(frame, boxes)
    on_device = device_pose.extract(frame, boxes)
    assert len(on_device) == len(on_cpu) > 0
    for a, b in zip(on_cpu, on_device):
        assert np.abs(a['keypoints'] - b['keypoints']).max() <= 1.0
        np.testing.assert_allclose(b['keypoint_scores'],
                                   a['keypoint_scores'], atol=1e-2)


def test_many_persons_batched_on_the_device(detector, pose_service,
                                            model_files, device):
    """More boxes than one batch holds: crops moved in batches give what
    the CPU gives box by box."""
    from pose_extraction_service import PoseExtractionService
    pose = PoseExtractionService(model_files['pose_config'],
                                 model_files['pose_checkpoint'],
                                 device=device, batch_size=3)
    frame = cv2.imread(str(data_file(COCO_IMAGES[3])))
    height, width = frame.shape[:2]
    boxes = np.array([[x, 20, x + 160, height - 20, 0.9]
                      for x in range(0, width - 160, 70)], np.float32)
    assert len(boxes) >= 7
    on_cpu = pose_service.extract(frame, boxes)
    for a, b in zip(on_cpu, pose.extract(frame, boxes)):
        assert np.abs(a['keypoints'] - b['keypoints']).max() <= 1.0


def test_fast_precision_on_the_device(model_files, detector, pose_service,
                                      device, fast):
    """fp16 on CUDA (bf16 in the dry run): heatmaps within 1 % of fp32, and
    the keypoint shifts printed for the record."""
    from pose_extraction_service import PoseExtractionService
    pose = PoseExtractionService(model_files['pose_config'],
                                 model_files['pose_checkpoint'],
                                 device=device, precision=fast)
    frame = cv2.imread(str(data_file(COCO_IMAGES[1])))
    boxes = detector.detect(frame)
    exact = pose_service.heatmaps(frame, boxes)
    maps = pose.heatmaps(frame, boxes)
    error = np.linalg.norm(maps - exact) / np.linalg.norm(exact)
    assert error <= 0.01
    shifts = np.concatenate([
        np.linalg.norm(a['keypoints'] - b['keypoints'], axis=1)
        for a, b in zip(pose_service.extract(frame, boxes),
                        pose.extract(frame, boxes))])
    print(f'{fast} on {device}: heatmap error {100 * error:.3f} %, keypoint '
          f'shift median {np.median(shifts):.3f} px, max {shifts.max():.2f}')


def test_batch_moved_once_to_the_device(device_pose, detector, device):
    """The crops arrive on the device as the data preprocessor expects
    them: a list of (3, 384, 288) uint8 tensors, equal to the CPU's."""
    from mmengine.dataset import pseudo_collate

    from pose_suite.models.device_ops import to_device_once
    frame = cv2.imread(str(data_file(COCO_IMAGES[0])))
    boxes = detector.detect(frame)
    (_, batch), = list(device_pose._batches(frame, boxes))
    assert len(batch['inputs']) == len(boxes)
    for item in batch['inputs']:
        assert item.device.type == torch.device(device).type
        assert item.shape == (3, 384, 288) and item.dtype == torch.uint8
    cpu_inputs = [torch.zeros(3, 4, 5, dtype=torch.uint8),
                  torch.ones(3, 4, 6, dtype=torch.uint8)]  # two shapes
    moved = to_device_once(pseudo_collate(
        [{'inputs': t, 'data_samples': None} for t in cpu_inputs]), device)
    for a, b in zip(cpu_inputs, moved['inputs']):
        assert torch.equal(a, b.cpu())


def test_whole_run_on_the_device_with_overlay(model_files, tmp_path, device,
                                              fast):
    """The CLI on a real video on the device, fast precision, overlay on:
    one JSON whose keypoints are near the CPU run's, and an overlay of
    every frame."""
    from conftest import run_cli
    video = data_file('videos/football_5frames_720p.mp4')
    results = {}
    for name, values in (('cpu', {'device': 'cpu'}),
                         ('device', {'device': device}),
                         ('fast', {'device': device, 'precision': fast,
                                   'visualize_output': str(
                                       tmp_path / 'overlay.mp4')})):
        config = tmp_path / f'{name}.json'
        config.write_text(json.dumps({
            **{k: str(v) for k, v in model_files.items()
               if k != 'pose_checkpoint_legacy'},
            'input': str(video), 'output': str(tmp_path / f'{name}_out.json'),
            'bbox_thr': 0.0, 'quiet': True, **values}))
        done = run_cli('pose_analysis_service.py', '--config', config)
        assert done.returncode == 0, done.stderr
        results[name] = json.loads(
            (tmp_path / f'{name}_out.json').read_text())
    meta = results['device']['meta']
    assert meta['device'].split(':')[0] == device.split(':')[0]
    assert meta['run']['detector_nms']
    fast_meta = results['fast']['meta']
    if device.startswith('cuda'):  # exact: IEEE fp32, deterministic cuDNN
        assert meta['cuda_arithmetic'] == {
            'fp32': 'ieee', 'autocast': None, 'cudnn_benchmark': False,
            'cudnn_deterministic': True}
        assert fast_meta['cuda_arithmetic']['fp32'] == 'tf32'
    else:
        assert meta['cuda_arithmetic'] is None
    assert fast_meta['precision_asked'] == fast
    # On CUDA fp16 runs; in the dry run bf16 only where the CPU runs it
    # faster (pose_suite.models.precision), else fp32.
    assert fast_meta['precision'] == fast if device.startswith('cuda') \
        else fast_meta['precision'] in (fast, 'fp32')
    for cpu_frame, frame in zip(results['cpu']['frames'],
                                results['device']['frames']):
        assert len(frame['persons']) == len(cpu_frame['persons'])
        for a, b in zip(cpu_frame['persons'], frame['persons']):
            assert np.abs(np.subtract(a['bbox'], b['bbox'])).max() <= 0.5
            assert np.abs(np.subtract(a['keypoints'],
                                      b['keypoints'])).max() <= 1.0
    overlay = cv2.VideoCapture(str(tmp_path / 'overlay.mp4'))
    assert int(overlay.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert (overlay.get(cv2.CAP_PROP_FRAME_WIDTH),
            overlay.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (1280, 720)


@pytest.mark.ray
def test_ray_workers_share_the_device(model_files, tmp_path, device):
    """executor ray, a private Ray (in a loopback-only network namespace):
    two workers of half a GPU each (none in the dry run) analyse a photo
    and a video on the device."""
    import shutil
    import subprocess
    import sys

    from conftest import ROOT
    from ray_cluster import NO_NAMESPACE, network_namespace
    if NO_NAMESPACE is not None:
        pytest.skip(NO_NAMESPACE)
    folder = tmp_path / 'clips'
    folder.mkdir()
    shutil.copy(data_file(COCO_IMAGES[0]), folder)
    shutil.copy(data_file('videos/football_5frames_720p.mp4'), folder)
    config = tmp_path / 'config.json'
    config.write_text(json.dumps({
        **{k: str(v) for k, v in model_files.items()
           if k != 'pose_checkpoint_legacy'},
        'input': str(folder), 'output': str(tmp_path / 'out'),
        'bbox_thr': 0.0, 'device': device, 'executor': 'ray', 'workers': 2,
        'gpus_per_worker': 0.5 if device.startswith('cuda') else 0,
        'quiet': True}))
    with network_namespace('pose-suite-gpu') as ns:
        done = subprocess.run(
            ['ip', 'netns', 'exec', ns, sys.executable,
             str(ROOT / 'pose_analysis_service.py'), '--config', str(config)],
            capture_output=True, text=True, timeout=900,
            env={k: v for k, v in os.environ.items()
                 if not k.startswith('RAY_')})
    assert done.returncode == 0, done.stderr
    results = sorted(p for p in (tmp_path / 'out').glob('*.json')
                     if p.name not in BATCH_FILES)
    assert [p.name for p in results] == [
        '000000000785.jpg.json', 'football_5frames_720p.mp4.json']
    for path in results:
        meta = json.loads(path.read_text())['meta']
        assert meta['device'].split(':')[0] == device.split(':')[0]
        assert meta['run']['executor'] == 'ray'
        assert meta['run']['detector_nms']
