"""Shared fixtures: real test data, and checkpoints made here.

The real weights cannot be downloaded on this machine, so the tests build
the two real model configs with random weights (fixed seed) and save them in
the real OpenMMLab file layout ``{'meta': ..., 'state_dict': ...}``. A
``-<8 hex>`` part in each name is the file's real SHA-256 prefix, so the
checksum code runs on them as on the published files.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pose_suite.checkpoints import sha256_of  # noqa: E402
from pose_suite.config import DET_CONFIG, POSE_CONFIG  # noqa: E402

TESTDATA = Path(os.environ.get('POSE_SUITE_TESTDATA',
                               ROOT.parent / 'shared' / 'testdata'))
#: Person boxes the test detector returns per frame: few, so tests stay fast.
BOXES_PER_FRAME = 2


def data_file(relative: str) -> Path:
    """A file of ../shared/testdata; fails (not skips) when it is absent."""
    path = TESTDATA / relative
    assert path.is_file(), (f'test data missing: {path} (set '
                            'POSE_SUITE_TESTDATA to the testdata folder)')
    return path


COCO_IMAGES = ['images/000000000785.jpg', 'images/000000040083.jpg',
               'images/000000196141.jpg', 'images/000000197388.jpg']


def _with_hash_name(path: Path, stem: str) -> Path:
    """Rename ``path`` to ``<stem>-<sha256[:8]>.pth`` like published files."""
    named = path.with_name(f'{stem}-{sha256_of(path)[:8]}.pth')
    path.rename(named)
    return named


def _legacy_pose_state_dict(state_dict):
    """The mmpose 0.x layout of a 1.x HRNet state dict: ``keypoint_head.*``
    keys and module versions as mmcv 1.x saved them (version 1 for the
    model and the head, which had no ``_version`` of their own then)."""
    from collections import OrderedDict
    legacy = OrderedDict(
        (key.replace('head.', 'keypoint_head.', 1)
         if key.startswith('head.') else key, value)
        for key, value in state_dict.items())
    metadata = OrderedDict()
    for prefix, local in state_dict._metadata.items():
        if prefix == 'head' or prefix.startswith('head.'):
            prefix = 'keypoint_' + prefix
        metadata[prefix] = dict(local)
    metadata['']['version'] = 1
    metadata['keypoint_head']['version'] = 1
    legacy._metadata = metadata
    return legacy


@pytest.fixture(scope='session')
def model_files(tmp_path_factory):
    """Configs and random-weight checkpoints for both models.

    Returns a dict: ``det_config`` (the project's config with ``score_thr=0``
    and ``max_per_img=BOXES_PER_FRAME`` so every frame yields that many
    boxes), ``det_checkpoint``, ``pose_config``, ``pose_checkpoint`` (1.x
    layout, zip), ``pose_checkpoint_legacy`` (0.x layout, legacy
    serialization, numpy scalars in meta).
    """
    import torch

    import detection_service  # noqa: F401 - torchvision fallback first
    from mmdet.apis import init_detector
    from mmpose.apis import init_model

    folder = tmp_path_factory.mktemp('checkpoints')
    det_config = folder / 'rtmdet_person_test.py'
    det_config.write_text(
        f'_base_ = {str(ROOT / DET_CONFIG)!r}\n'
        'model = dict(test_cfg=dict(score_thr=0.0, '
        f'max_per_img={BOXES_PER_FRAME}))\n')
    pose_config = ROOT / POSE_CONFIG

    torch.manual_seed(0)
    detector = init_detector(str(det_config), None, device='cpu')
    det_path = folder / 'det.pth'
    torch.save({'meta': {'dataset_meta': {'classes': ('person',)},
                         'mmengine_version': '0.10.7', 'epoch': 100},
                'state_dict': detector.state_dict()}, det_path)

    torch.manual_seed(1)
    pose_model = init_model(str(pose_config), None, device='cpu')
    # Random heads give flat heatmaps; a scaled final layer gives peaked
    # ones, so DARK decoding works on realistic maxima.
    with torch.no_grad():
        pose_model.head.final_layer.weight.mul_(50.0)
    state_dict = pose_model.state_dict()
    pose_path = folder / 'pose.pth'
    torch.save({'meta': {'dataset_meta': pose_model.dataset_meta,
                         'mmengine_version': '0.10.7'},
                'state_dict': state_dict}, pose_path)
    legacy_path = folder / 'pose_legacy.pth'
    torch.save({'meta': {'epoch': 210, 'iter': 123060,
                         'mmcv_version': '1.1.1', 'time': 'Fri Sep 18 2020',
                         'hook_msgs': {'best_score': np.float64(0.667),
                                       'last_ckpt': 'epoch_210.pth'},
                         'seed': np.int64(0)},
                'state_dict': _legacy_pose_state_dict(state_dict)},
               legacy_path, _use_new_zipfile_serialization=False)
    return {
        'det_config': det_config,
        'det_checkpoint': _with_hash_name(det_path, 'rtmdet_person_random'),
        'pose_config': pose_config,
        'pose_checkpoint': _with_hash_name(pose_path, 'hrnet_w48_random'),
        'pose_checkpoint_legacy': _with_hash_name(
            legacy_path, 'hrnet_w48_random_legacy'),
    }


@pytest.fixture(scope='session')
def detector(model_files):
    from detection_service import DetectionService
    return DetectionService(model_files['det_config'],
                            model_files['det_checkpoint'], device='cpu',
                            bbox_thr=0.0, nms_thr=0.3)


@pytest.fixture(scope='session')
def pose_service(model_files):
    from pose_extraction_service import PoseExtractionService
    return PoseExtractionService(model_files['pose_config'],
                                 model_files['pose_checkpoint'],
                                 device='cpu')


@pytest.fixture
def config_values(model_files, tmp_path):
    """A config.json dict using the test checkpoints, output in tmp_path."""
    return {
        'det_config': str(model_files['det_config']),
        'det_checkpoint': str(model_files['det_checkpoint']),
        'pose_config': str(model_files['pose_config']),
        'pose_checkpoint': str(model_files['pose_checkpoint']),
        'input': str(data_file(COCO_IMAGES[0])),
        'output': str(tmp_path / 'out' / 'result.json'),
        'device': 'cpu',
        'bbox_thr': 0.0,
    }


@pytest.fixture
def write_config(tmp_path):
    def write(values, name='config.json'):
        path = tmp_path / name
        path.write_text(json.dumps(values))
        return path
    return write


def run_cli(script: str, *args, cwd=None) -> subprocess.CompletedProcess:
    """Run one of the project's scripts (``x.py``) or modules (``a.b``) as a
    user would."""
    target = [str(ROOT / script)] if script.endswith('.py') else ['-m', script]
    return subprocess.run([sys.executable, *target, *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or ROOT,
                          timeout=600)


def assert_one_line_error(result: subprocess.CompletedProcess, *words):
    """Non-zero exit, one ``error:`` line on stderr naming ``words``, no
    traceback, and nothing else on stderr but ``warning:`` lines."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith('error:')]
    assert len(errors) == 1, result.stderr
    assert all(line.startswith(('error:', 'warning:')) for line in lines), \
        result.stderr
    for word in words:
        assert word in errors[0], errors[0]


def real_frames(count: int, size=(480, 270)):
    """The first ``count`` frames of the real two-person video, resized."""
    import cv2
    capture = cv2.VideoCapture(str(
        data_file('videos/two_people_72frames_1080p.mp4')))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        assert ok, 'the test video has fewer frames than asked for'
        frames.append(cv2.resize(frame, size))
    capture.release()
    return frames


def write_avi(path: Path, frames, fps: float = 10.0) -> Path:
    """Write frames as Motion-JPEG AVI: every frame is its own JPEG, so one
    can be corrupted alone and the container header patched."""
    import cv2
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps,
                             (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope='session')
def analysis_service(model_files):
    """PoseAnalysisService on the test checkpoints (bbox_thr 0)."""
    from pose_analysis_service import PoseAnalysisService
    return PoseAnalysisService({
        'det_config': str(model_files['det_config']),
        'det_checkpoint': str(model_files['det_checkpoint']),
        'pose_config': str(model_files['pose_config']),
        'pose_checkpoint': str(model_files['pose_checkpoint']),
        'device': 'cpu', 'bbox_thr': 0.0})
