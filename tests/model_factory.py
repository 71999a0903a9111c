"""Checkpoints made here, in the real OpenMMLab file layout.

The real weights cannot be downloaded on this machine, so the tests and the
benchmark build the two real model configs with random weights (fixed
seeds) and save them as ``{'meta': ..., 'state_dict': ...}``. A
``-<8 hex>`` part in each name is the file's real SHA-256 prefix, so the
checksum code runs on them as on the published files.
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pose_suite.models.checkpoints import sha256_of  # noqa: E402
from pose_suite.config import DET_CONFIG, POSE_CONFIG  # noqa: E402


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


def make_model_files(folder: Path, boxes_per_frame: int) -> dict:
    """Configs and random-weight checkpoints for both models.

    Returns a dict: ``det_config`` (the project's config with ``score_thr=0``
    and ``max_per_img=boxes_per_frame`` so every frame yields that many
    boxes), ``det_checkpoint``, ``pose_config``, ``pose_checkpoint`` (1.x
    layout, zip), ``pose_checkpoint_legacy`` (0.x layout, legacy
    serialization, numpy scalars in meta).
    """
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    import detection_service  # noqa: F401 - torchvision fallback first
    from mmdet.apis import init_detector
    from mmpose.apis import init_model

    det_config = folder / 'rtmdet_person_test.py'
    det_config.write_text(
        f'_base_ = {str(ROOT / DET_CONFIG)!r}\n'
        'model = dict(test_cfg=dict(score_thr=0.0, '
        f'max_per_img={boxes_per_frame}))\n')
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


