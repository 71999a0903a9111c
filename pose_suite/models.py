"""Building an OpenMMLab model from a config file and a checkpoint.

Both services go through :func:`build_model`: resolve the device, read the
config, verify the checkpoint file, build the model with the library's own
``init_detector``/``init_model`` (no weights), then load the weights safely
(:mod:`pose_suite.checkpoints`).
"""
import dataclasses
import warnings
from pathlib import Path
from typing import Callable

import torch
from mmengine.config import Config

from pose_suite.checkpoints import load_weights, verify_checkpoint_file
from pose_suite.errors import ModelConfigError
from pose_suite.runtime import resolve_device


@dataclasses.dataclass
class LoadedModel:
    """A model in eval mode on ``device`` and where it came from."""

    model: torch.nn.Module
    config_path: Path
    checkpoint_path: Path
    checkpoint_sha256: str
    checkpoint_meta: dict
    device: str


def load_model_config(path: Path) -> Config:
    """Read an mmengine config file (``_base_`` inheritance included).

    Raises:
        ModelConfigError: missing file, or a file mmengine cannot parse.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelConfigError(f'model config not found: {path}')
    try:
        return Config.fromfile(str(path))
    except Exception as exc:  # mmengine raises many kinds on a bad file
        message = str(exc).strip().splitlines()
        raise ModelConfigError(
            f'cannot read model config {path}: '
            f'{message[0] if message else type(exc).__name__}') from None


def build_model(init_fn: Callable, config_path: Path, checkpoint_path: Path,
                device: str) -> LoadedModel:
    """Build a model with ``init_fn`` (``init_detector`` or ``init_model``)
    and load ``checkpoint_path`` into it.

    The library init functions are called without a checkpoint so that the
    weights go through :func:`~pose_suite.checkpoints.load_weights`
    (``weights_only`` unpickling, every weight required).
    """
    device = resolve_device(device)
    config = load_model_config(config_path)
    sha256 = verify_checkpoint_file(checkpoint_path)
    # Recorded and dropped: "checkpoint is None, use COCO classes" (the
    # weights come next); mmdet resets the filters itself, so ignoring is
    # not enough.
    with warnings.catch_warnings(record=True):
        model = init_fn(config, None, device='cpu')
    meta = load_weights(model, checkpoint_path)
    model.to(device)
    model.eval()
    return LoadedModel(model, Path(config_path), Path(checkpoint_path),
                       sha256, meta, device)
