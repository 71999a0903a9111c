"""The heavy part of a model, and its calls routed elsewhere.

The heavy part is what a runtime other than PyTorch runs: for RTMDet the
backbone, neck and ``bbox_head.forward`` (per level class scores and box
offsets, before ``predict_by_feat`` decodes boxes and runs NMS); for a
top-down pose model the backbone and ``head.forward`` (heatmaps, before flip
averaging and DARK decoding). Without its head (``with_head`` False) it
ends at the neck's features, and the head runs in PyTorch in float32: how
bf16 fast mode runs RTMDet, whose box scores and offsets in bf16 reorder
near-tied boxes (OpenVINO in bf16 with the head: class scores 1.7e-3
relative L2 from fp32, against 1.5e-4 with the head in fp32, measured).
mmdet's ``predict`` calls ``extract_feat`` then the head's ``forward``;
mmpose's the same, so routing those two calls (:func:`route`) leaves every
other step in the libraries' own code.
"""
import contextlib
from typing import Callable, Sequence, Tuple

import torch


class HeavyPart(torch.nn.Module):
    """``model``'s backbone, neck and head convolutions as one module:
    ``forward(inputs)`` takes the (N, 3, H, W) float32 batch the model's
    data preprocessor made and returns a tuple of float32 tensors, each
    with the batch first: RTMDet's class scores per level then its box
    offsets per level (2 x levels tensors); a pose model's heatmaps
    (N, K, H/4, W/4), alone; without the head, the neck's (or backbone's)
    features, one tensor per level. It calls the model's methods as they are
    (fast mode's, where fast mode was applied), so it is built on a model
    whose calls are not routed (:func:`unroute`)."""

    def __init__(self, model: torch.nn.Module, with_head: bool = True):
        super().__init__()
        self.model = model
        self.is_detector = hasattr(model, 'bbox_head')
        self.with_head = with_head

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        features = self.model.extract_feat(inputs)
        if not self.with_head:
            return tuple(features)
        if self.is_detector:
            class_scores, box_offsets = self.model.bbox_head.forward(features)
            return tuple(class_scores) + tuple(box_offsets)
        return (self.model.head.forward(features),)


def head_of(model: torch.nn.Module) -> torch.nn.Module:
    """The head whose ``forward`` ends the heavy part."""
    return model.bbox_head if hasattr(model, 'bbox_head') else model.head


def route(model: torch.nn.Module,
          run: Callable[[torch.Tensor], Sequence[torch.Tensor]],
          with_head: bool = True) -> None:
    """Make ``model.extract_feat(inputs)`` return ``run(inputs)`` (the heavy
    part's outputs, :class:`HeavyPart`) and its head's ``forward`` hand
    them on as the head's own ``forward`` would have returned them, so that
    the libraries' ``predict`` decodes them unchanged. Slicing the
    features by batch (fast mode's one-pass flip test) keeps working:
    they are a tuple of batch-first tensors. Without the head, only
    ``extract_feat`` is routed."""
    head = head_of(model)
    model.extract_feat = run
    if not with_head:
        return
    if hasattr(model, 'bbox_head'):
        def forward(outputs):
            levels = len(outputs) // 2
            return list(outputs[:levels]), list(outputs[levels:])
    else:
        def forward(outputs):
            return outputs[0]
    head.forward = forward


def unroute(model: torch.nn.Module) -> None:
    """Undo :func:`route`: the model's own methods again."""
    for owner, name in _routed(model):
        owner.__dict__.pop(name, None)


@contextlib.contextmanager
def unrouted(model: torch.nn.Module):
    """The model's own methods for the duration (an export, a copy), its
    routed ones again after."""
    saved = [(owner, name, owner.__dict__.pop(name))
             for owner, name in _routed(model) if name in owner.__dict__]
    try:
        yield model
    finally:
        for owner, name, method in saved:
            setattr(owner, name, method)


def _routed(model):
    return ((model, 'extract_feat'), (head_of(model), 'forward'))
