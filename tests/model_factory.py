"""Checkpoints made here, in the real OpenMMLab file layout.

The real weights cannot be downloaded on this machine, so the tests and the
benchmark build the two model configs with random weights (fixed seeds) and
save them as ``{'meta': ..., 'state_dict': ...}``. A ``-<8 hex>`` part in
each name is the file's real SHA-256 prefix, so the checksum code runs on
them as on the published files.

Two sizes (``make_model_files(size=...)``):

* ``'real'``: the project's RTMDet-m 640 and HRNet-W48 384x288 configs, for
  the tests that compare with mmdet's and mmpose's own functions, and the
  benchmarks;
* ``'tiny'``: the same model types, heads, 133 keypoints, DARK codec, flip
  test, pipelines and checkpoint layout, on a narrow backbone and a small
  input (RTMDet at 128x128, HRNet with 8-64 channels at 128x96): a few
  milliseconds a frame, for the tests of the plumbing around the models.

:func:`cached_model_files` builds each size once per machine, in a folder
named by the configs, this file and the torch, mmcv, mmengine, mmdet and
mmpose versions.
"""
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pose_suite.config import DET_CONFIG, POSE_CONFIG  # noqa: E402

#: Built folders of one size kept in the cache (the most recently used).
KEPT = 3


def _with_hash_name(path: Path, stem: str) -> Path:
    """Rename ``path`` to ``<stem>-<sha256[:8]>.pth`` like published files
    (hashed here, not by the code the tests check)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    named = path.with_name(f'{stem}-{digest[:8]}.pth')
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


#: Overrides of the project's RTMDet-m config for the tiny detector:
#: RTMDet's CSPNeXt backbone, PAFPN neck and RTMDetSepBNHead at an eighth
#: of RTMDet-l's widths and a sixth of its depth, fed 128x128 images.
TINY_DET_MODEL = """
    backbone=dict(deepen_factor=0.167, widen_factor=0.125),
    neck=dict(in_channels=[32, 64, 128], out_channels=32, num_csp_blocks=1),
    bbox_head=dict(in_channels=32, feat_channels=32),"""
#: ... and its own NMS at the tests' nms_thr (0.3): its random boxes crowd
#: together, and two of them must stay (``boxes_per_frame``), as the
#: real-size model's do, for the tests that follow persons.
TINY_DET_NMS = "nms=dict(type='nms', iou_threshold=0.3), "
TINY_DET = """
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='Pad', size=(128, 128), pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
"""

#: Overrides of the project's HRNet-W48 config for the tiny pose model:
#: HRNet's four stages and branches with one block each and 8-64 channels,
#: the same HeatmapHead (133 keypoints) and DARK codec at a 128x96 input.
TINY_POSE = """
codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32),
             sigma=1, unbiased=True)
model = dict(
    backbone=dict(extra=dict(
        stage1=dict(num_blocks=(1, ), num_channels=(16, )),
        stage2=dict(num_blocks=(1, 1), num_channels=(8, 16)),
        stage3=dict(num_modules=1, num_blocks=(1, 1, 1),
                    num_channels=(8, 16, 32)),
        stage4=dict(num_modules=1, num_blocks=(1, 1, 1, 1),
                    num_channels=(8, 16, 32, 64)))),
    head=dict(in_channels=8, decoder=codec))
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')]
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
"""


def cached_model_files(cache: Path, size: str, boxes_per_frame: int) -> dict:
    """:func:`make_model_files` of ``size``, built once in a sub-folder of
    ``cache`` named by everything that makes them (the configs, this file,
    the library versions, ``boxes_per_frame``, and the project folder the
    configs name as their base). Built in a temporary folder renamed into
    place, so a concurrent test run never reads half a file; a folder whose
    files are not all there at their sizes (``files.txt``) is built again.
    The cache keeps the ``KEPT`` folders of each size last used. Callers
    copy the files before changing them."""
    import mmcv
    import mmdet
    import mmengine
    import mmpose
    import torch
    key = hashlib.sha256()
    for part in (Path(__file__).read_bytes(), (ROOT / DET_CONFIG).read_bytes(),
                 (ROOT / POSE_CONFIG).read_bytes(),
                 ' '.join(module.__version__ for module in (
                     torch, mmcv, mmengine, mmdet, mmpose)).encode(),
                 f'{size} {boxes_per_frame} {ROOT}'.encode()):
        key.update(hashlib.sha256(part).digest())
    folder = Path(cache) / f'{size}-{key.hexdigest()[:16]}'
    files = _complete(folder)
    if files is None:
        _evict(folder.parent, size)
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f'.{size}-',
                                         dir=folder.parent))
        try:
            made = make_model_files(building, boxes_per_frame, size)
            (building / 'files.txt').write_text(''.join(
                f'{name} {path.stat().st_size} {path.name}\n'
                for name, path in made.items() if path.parent == building))
            os.rename(building, folder)
        except OSError:  # another run published it first
            pass
        finally:
            shutil.rmtree(building, ignore_errors=True)
        files = _complete(folder)
        assert files is not None, f'models not built in {folder}'
    os.utime(folder / 'files.txt')  # used now (see _evict)
    if size == 'real':
        files['pose_config'] = ROOT / POSE_CONFIG
    return files


def _evict(cache: Path, size: str) -> None:
    """Before a build in ``cache``: remove the folders of ``size`` but the
    ``KEPT - 1`` most recently used, and the temporary folders of builds
    killed more than an hour ago."""
    import time
    if not cache.is_dir():
        return
    built = sorted(cache.glob(f'{size}-*/files.txt'),
                   key=lambda path: path.stat().st_mtime, reverse=True)
    for index in built[KEPT - 1:]:
        shutil.rmtree(index.parent, ignore_errors=True)
    for building in cache.glob(f'.{size}-*'):
        if building.stat().st_mtime < time.time() - 3600:
            shutil.rmtree(building, ignore_errors=True)


def _complete(folder: Path):
    """The files listed in ``folder``'s ``files.txt``, when all are there
    at their sizes; else None."""
    try:
        lines = (folder / 'files.txt').read_text().splitlines()
    except OSError:
        return None
    files = {}
    for line in lines:
        name, size, file = line.split(' ', 2)
        path = folder / file
        if not path.is_file() or path.stat().st_size != int(size):
            return None
        files[name] = path
    return files


def copy_model_files(files: dict, folder: Path) -> dict:
    """``files`` copied into ``folder`` (configs that name a base by path
    keep naming it), so that a test may change them."""
    folder.mkdir(parents=True, exist_ok=True)
    copied = {}
    for name, path in files.items():
        path = Path(path)
        if path.is_relative_to(ROOT):
            copied[name] = path  # the project's own config
            continue
        copied[name] = folder / path.name
        shutil.copyfile(path, copied[name])
    return copied


def make_model_files(folder: Path, boxes_per_frame: int,
                     size: str = 'real') -> dict:
    """Configs and random-weight checkpoints for both models, ``size``
    ``'real'`` or ``'tiny'`` (module docstring).

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

    assert size in ('real', 'tiny'), size
    det_config = folder / f'rtmdet_person_{size}.py'
    det_config.write_text(
        f'_base_ = {str(ROOT / DET_CONFIG)!r}\n'
        + (TINY_DET if size == 'tiny' else '') +
        'model = dict(' + (TINY_DET_MODEL if size == 'tiny' else '') +
        '\n    test_cfg=dict(' + (TINY_DET_NMS if size == 'tiny' else '') +
        f'score_thr=0.0, max_per_img={boxes_per_frame}))\n')
    pose_config = ROOT / POSE_CONFIG
    if size == 'tiny':
        pose_config = folder / 'hrnet_wholebody_tiny.py'
        pose_config.write_text(f'_base_ = {str(ROOT / POSE_CONFIG)!r}\n'
                               + TINY_POSE)

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
    pose_name = 'hrnet_w48' if size == 'real' else 'hrnet_tiny'
    return {
        'det_config': det_config,
        'det_checkpoint': _with_hash_name(
            det_path, 'rtmdet_person_random' + ('_tiny' if size == 'tiny'
                                                else '')),
        'pose_config': pose_config,
        'pose_checkpoint': _with_hash_name(pose_path, f'{pose_name}_random'),
        'pose_checkpoint_legacy': _with_hash_name(
            legacy_path, f'{pose_name}_random_legacy'),
    }


