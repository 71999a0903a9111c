"""Building an OpenMMLab model from a config file and a checkpoint.

Both services go through :func:`build_model`: resolve the device, read the
config, verify the checkpoint file, build the model with the library's own
``init_detector``/``init_model`` (no weights), then load the weights safely
(:mod:`pose_suite.models.checkpoints`).
"""
import contextlib
import dataclasses
import functools
import hashlib
import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

import torch
from mmcv.cnn import fuse_conv_bn
from mmengine.config import Config

from pose_suite.errors import ModelConfigError
from pose_suite.models.checkpoints import (load_weights, require_file,
                                           verify_checkpoint_file)
from pose_suite.models.cuda_arithmetic import (CudaArithmetic,
                                               cuda_arithmetic,
                                               run_model_with)
from pose_suite.models.precision import refuse_fp16_on_cpu
from pose_suite.models.runtime import resolve_device
from pose_suite.runtimes.seam import RuntimeSeam, SeamSettings

#: precision -> autocast dtype (None: plain fp32, the exact mode).
PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


@dataclasses.dataclass
class LoadedModel:
    """A model in eval mode on ``device`` and where it came from."""

    model: torch.nn.Module
    config_path: Path
    checkpoint_path: Path
    checkpoint_sha256: str
    checkpoint_meta: dict
    device: str
    precision: str = 'fp32'
    #: SHA-256 of the config as resolved (``_base_`` files merged): changes
    #: when any file it inherits from changes, not only its own.
    config_sha256: str = ''
    #: The CUDA settings its calls run under (None on the CPU).
    cuda_arithmetic: Optional[CudaArithmetic] = None
    #: Where fast mode may run the heavy part through another runtime (CPU
    #: only; :mod:`pose_suite.runtimes`); None: PyTorch always.
    seam: Optional[RuntimeSeam] = None

    @property
    def runtime(self) -> str:
        """What runs the heavy part: ``pytorch`` or e.g. ``openvino
        2026.4.1 bf16`` (decided by the model's first call, its warm-up)."""
        return self.seam.describe() if self.seam is not None else 'pytorch'


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
                device: str, precision: str = 'fp32',
                fast: Optional[bool] = None,
                runtime: str = 'pytorch') -> LoadedModel:
    """Build a model with ``init_fn`` (``init_detector`` or ``init_model``)
    and load ``checkpoint_path`` into it.

    The library init functions are called without a checkpoint so that the
    weights go through :func:`~pose_suite.models.checkpoints.load_weights`
    (``weights_only`` unpickling, every weight required). ``precision``:
    ``fp32``, ``bf16`` or ``fp16`` (CUDA only), used as given
    (:mod:`pose_suite.models.precision` decides it for a run from what the machine
    does). With ``fast`` (default: a precision other than fp32) the model
    is also made fast (:func:`use_fast_mode`); fp32 without it is the exact
    mode. ``runtime`` (fast mode on a CPU only): ``auto`` (OpenVINO or ONNX
    Runtime where measured faster, :mod:`pose_suite.runtimes`),
    ``openvino`` or ``onnxruntime`` (used), or ``pytorch``.
    The checkpoint's SHA-256 is computed in a thread while the model is
    built, and checked before the file is unpickled.
    """
    device = resolve_device(device)
    refuse_fp16_on_cpu(precision, device)
    config = load_model_config(config_path)
    require_file(checkpoint_path)
    with ThreadPoolExecutor(1, thread_name_prefix='sha256') as pool:
        # hashlib and file reads release the GIL: the hash costs no time.
        hashing = pool.submit(verify_checkpoint_file, checkpoint_path)
        config_sha256 = hashlib.sha256(json.dumps(
            config.to_dict(), sort_keys=True,
            default=repr).encode()).hexdigest()
        # Recorded and dropped: "checkpoint is None, use COCO classes" (the
        # weights come next); mmdet resets the filters itself, so ignoring
        # is not enough.
        with warnings.catch_warnings(record=True), _weights_left_empty():
            model = _built(init_fn, config, config_path)
        sha256 = hashing.result()
    meta = load_weights(model, checkpoint_path)
    model.to(device)
    model.eval()
    arithmetic = None
    if runs_on_cuda(device):
        # IEEE fp32 and deterministic cuDNN in exact mode, TF32 and timed
        # kernels in fast mode, set on each call (cuda_arithmetic says why).
        arithmetic = cuda_arithmetic(precision, fast_mode_of(precision, fast))
        run_model_with(model, arithmetic)
    seam = None
    if fast_mode_of(precision, fast):
        def make_fast(module):
            use_fast_mode(module, PRECISIONS[precision])

        if runtime != 'pytorch' and not runs_on_cuda(device):
            seam = RuntimeSeam(model, SeamSettings(
                runtime, 'bf16' if precision == 'bf16' else 'f32',
                Path(checkpoint_path), sha256, config_sha256,
                'detector' if hasattr(model, 'bbox_head') else 'pose model'),
                make_fast)
        else:
            make_fast(model)
    return LoadedModel(model, Path(config_path), Path(checkpoint_path),
                       sha256, meta, device, precision, config_sha256,
                       arithmetic, seam)


def runs_on_cuda(device: str) -> bool:
    """Whether ``device`` (resolved) is a CUDA device (the tests simulate
    one by replacing this)."""
    return device.startswith('cuda')


def fast_mode_of(precision: str, fast: Optional[bool]) -> bool:
    """Whether a model is made fast: as asked, else for any precision but
    fp32 (fp32 without fast mode is the exact mode)."""
    return precision != 'fp32' if fast is None else fast


def _built(init_fn: Callable, config: Config, config_path: Path):
    """``init_fn(config)`` on the CPU, without weights.

    Raises:
        ModelConfigError: the config parses but names a model, layer or
            argument the libraries cannot build (mmengine's registries
            raise KeyError, TypeError and others for that).
    """
    try:
        return init_fn(config, None, device='cpu')
    except Exception as exc:  # noqa: BLE001
        message = str(exc).strip().splitlines()
        raise ModelConfigError(
            f'cannot build the model of {config_path}: '
            f'{message[0][:300] if message else type(exc).__name__}') \
            from None


@contextlib.contextmanager
def _weights_left_empty():
    """Skip the random initialisation layers give their weights when they
    are built (``torch.nn.init.*``): :func:`load_weights` overwrites every
    one of them at once, and refuses a checkpoint that lacks any, so none
    is ever used. It took about 0.5 s of the start-up (measured, both
    models)."""
    names = [name for name in vars(torch.nn.init)
             if name.endswith('_') and not name.startswith('_')]
    saved = {name: getattr(torch.nn.init, name) for name in names}

    def leave(tensor, *args, **kwargs):
        return tensor

    for name in names:
        setattr(torch.nn.init, name, leave)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(torch.nn.init, name, function)


def use_fast_mode(model: torch.nn.Module,
                  dtype: Optional[torch.dtype]) -> None:
    """Fast mode: fold BatchNorm into the convolutions, keep activations
    channels-last, and (``dtype`` not None) run the backbone and neck in
    ``dtype``: on the CPU
    with their weights converted once (autocast converts every weight again
    on every call: 10 % of the pose model's time, measured), on CUDA under
    autocast. Their features go back to float32, so the heads stay in
    float32: box regression keeps full precision (bf16 has an 8-bit
    mantissa, about 4 px at 1000 px), as do flip averaging, DARK decoding
    and NMS (numpy has no bf16 either). Measured here: the heads in bf16
    gain 0.05 s per frame and reorder near-tied boxes.

    These change rounding, so results differ slightly from fp32 (see the
    benchmark's heatmap error); the default fp32 mode does none of this.
    """
    fuse_conv_bn(model)
    model.to(memory_format=torch.channels_last)
    device_type = next(model.parameters()).device.type
    if dtype is None:
        model.extract_feat = _in_dtype_to_float(model.extract_feat,
                                                torch.float32)
    elif device_type == 'cpu':
        for part in (model.backbone, getattr(model, 'neck', None)):
            if part is not None:
                part.to(dtype)
        model.extract_feat = _in_dtype_to_float(model.extract_feat, dtype)
    else:
        model.extract_feat = _autocast_to_float(model.extract_feat,
                                                device_type, dtype)


def _to_float(value):
    """Tensors (also in tuples and lists) as float32."""
    if isinstance(value, torch.Tensor):
        return value.float()
    if isinstance(value, (tuple, list)):
        return type(value)(_to_float(v) for v in value)
    return value


def _in_dtype_to_float(function: Callable, dtype: torch.dtype) -> Callable:
    """``function`` (of a module whose weights are in ``dtype``) given its
    input in ``dtype``, channels-last; its tensors returned as float32."""

    @functools.wraps(function)
    def wrapped(inputs, *args, **kwargs):
        inputs = inputs.to(dtype).contiguous(
            memory_format=torch.channels_last)
        return _to_float(function(inputs, *args, **kwargs))

    return wrapped


def _autocast_to_float(function: Callable, device_type: str,
                       dtype: torch.dtype) -> Callable:
    """``function`` run under autocast, its tensors returned as float32."""

    @functools.wraps(function)
    def wrapped(inputs, *args, **kwargs):
        if isinstance(inputs, torch.Tensor):
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type, dtype=dtype):
            return _to_float(function(inputs, *args, **kwargs))

    return wrapped
