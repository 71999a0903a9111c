"""What a run on a GPU needs beyond the CPU path: NMS where mmcv has it, and
each batch moved to the device in one copy.

**NMS.** RTMDet's head calls ``mmcv.ops.batched_nms`` on the device its
tensors are on. An mmcv built where no GPU was visible (a container build,
or ``make install`` without a CUDA toolkit: :mod:`pose_suite.models.install_mmcv`)
has its ops for the CPU only, and the detector fails on CUDA with
``nms_impl: implementation for device cuda:0 not found`` (mmdetection
#11757, #11531, #10357, #7788). :func:`choose_nms` tries mmcv's NMS on the
run's device once, when the detector is built; where it has no
implementation, the ``nms`` entries of the model's ``test_cfg`` get
:func:`nms_on_cpu` as their ``type``. That is a seam both libraries offer:
mmdet passes ``test_cfg.nms`` to ``batched_nms`` as it is, and
``batched_nms`` calls a ``type`` that is callable instead of looking its
name up, so no library code is patched and every other step (the class
offsets, ``split_thr``, ``max_per_img``) stays mmcv's and mmdet's own.
"""
import warnings
from typing import Optional

import torch

from pose_suite.errors import SuiteWarning


def nms_on_cpu(boxes: torch.Tensor, scores: torch.Tensor,
               iou_threshold: float, **kwargs):
    """``mmcv.ops.nms`` run on the CPU for tensors on any device.

    Args:
        boxes: (N, 4) x1, y1, x2, y2 in pixels; scores: (N,).
        iou_threshold, **kwargs: as ``mmcv.ops.nms`` takes them (``offset``,
            ``score_threshold``, ``max_num``).

    Returns:
        ``(dets, keep)`` on the boxes' device, as ``mmcv.ops.nms`` returns
        them: (M, 5) kept boxes with their scores, and (M,) their indices
        in ``boxes``. The copies cost a few milliseconds for RTMDet's
        at most 30,000 candidates.
    """
    from mmcv.ops import nms
    dets, keep = nms(boxes.detach().cpu(), scores.detach().cpu(),
                     iou_threshold, **kwargs)
    return dets.to(boxes.device), keep.to(boxes.device)


def mmcv_nms_fails_on(device: str) -> Optional[str]:
    """Why mmcv's NMS cannot run on ``device`` (its error's first line), or
    None when it runs there."""
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]],
                         device=device)
    try:
        nms(boxes, torch.tensor([0.9, 0.8], device=device), 0.5)
    except (RuntimeError, NotImplementedError) as exc:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return None


def use_nms_on_cpu(model: torch.nn.Module) -> int:
    """Give every ``nms`` entry of ``model``'s modules' ``test_cfg`` (the
    dicts ``batched_nms`` receives) :func:`nms_on_cpu` as its type, where
    that type is mmcv's plain ``nms``. Returns how many were changed."""
    changed = 0
    for module in model.modules():
        test_cfg = getattr(module, 'test_cfg', None)
        for nms_cfg in _nms_entries(test_cfg):
            if nms_cfg.get('type', 'nms') == 'nms':
                nms_cfg['type'] = nms_on_cpu
                changed += 1
    return changed


def _nms_entries(cfg):
    """The dicts named ``nms`` anywhere in a (nested) test_cfg."""
    if not isinstance(cfg, dict):
        return
    for key, value in cfg.items():
        if key == 'nms' and isinstance(value, dict):
            yield value
        else:
            yield from _nms_entries(value)


def choose_nms(model: torch.nn.Module, device: str) -> str:
    """Decide once, at build, where the detector's NMS runs; say it once.

    Returns:
        What ``meta.run.detector_nms`` records: ``"mmcv on <device>"``, or
        ``"mmcv on cpu (fallback: ...)"`` when mmcv has no NMS for the
        device and :func:`use_nms_on_cpu` was applied.
    """
    why = mmcv_nms_fails_on(device)
    if why is None:
        return f'mmcv on {device}'
    if use_nms_on_cpu(model) == 0:  # no mmcv nms in test_cfg: nothing to do
        return f'as configured (mmcv has no NMS on {device})'
    warnings.warn(f'mmcv has no NMS for {device} (it was built without its '
                  f'ops for it: {why}); the detector\'s NMS runs on the CPU, '
                  'the models on the GPU', SuiteWarning)
    return f'mmcv on cpu (fallback: {why})'


def to_device_once(batch: dict, device: str) -> dict:
    """``batch`` (``pseudo_collate``'s dict) with its ``inputs`` on
    ``device``: on CUDA, crops of one shape are stacked in pinned memory and
    copied in one non-blocking transfer, then handed to the model's data
    preprocessor as the list of tensors it expects (now already on the
    device, so its own per-tensor copies do nothing). On the CPU the batch
    is returned as it is: nothing changes there.

    Args:
        batch: ``{'inputs': [(C, H, W) uint8 tensors], 'data_samples':
            [...]}``.
    """
    inputs = batch['inputs']
    if not str(device).startswith('cuda') or not inputs:
        return batch
    if len({tuple(item.shape) for item in inputs}) == 1:
        stacked = torch.stack(inputs).pin_memory()
        moved = list(stacked.to(device, non_blocking=True).unbind(0))
    else:
        moved = [item.pin_memory().to(device, non_blocking=True)
                 for item in inputs]
    return {**batch, 'inputs': moved}
