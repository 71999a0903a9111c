"""The arithmetic a model runs with on CUDA: IEEE fp32 in exact mode.

torch 2.13 runs fp32 convolutions in TF32 (a 10-bit mantissa) on Ampere and
newer GPUs by default (``torch.backends.cudnn.conv.fp32_precision ==
'tf32'``). Emulated on the CPU (every convolution's input and weight
rounded to TF32: ``tests/test_cuda_arithmetic.py``), that moves keypoints
by tens to hundreds of pixels where two heatmap peaks nearly tie, so exact
mode would not be exact on an A100 or an RTX 4090. And with
``cudnn.benchmark`` cuDNN picks kernels by timing them, for each new batch
shape (person counts, a detector's last chunk), so results could differ
from run to run.

So every CUDA model's ``test_step`` runs under :func:`cuda_arithmetic`'s
settings, set on each call (they are process-wide: a fast model built next
to an exact one must not turn the exact one to TF32):

- exact mode: convolutions and matrix products in IEEE fp32,
  ``cudnn.deterministic`` on, ``cudnn.benchmark`` off;
- fast mode: TF32 allowed, ``cudnn.benchmark`` on (fp16/bf16 autocast is
  :func:`pose_suite.models.build.use_fast_mode`'s).

``meta.cuda_arithmetic`` records them (None on the CPU).
"""
import contextlib
import dataclasses
import functools
from typing import Optional

import torch


@dataclasses.dataclass(frozen=True)
class CudaArithmetic:
    """torch's process-wide CUDA settings a model runs under.

    ``fp32``: ``'ieee'`` or ``'tf32'`` (torch's ``fp32_precision`` of cuDNN
    convolutions and of CUDA matrix products); ``autocast``: None, ``'fp16'``
    or ``'bf16'`` (fast mode's backbone and neck)."""

    fp32: str
    autocast: Optional[str]
    cudnn_benchmark: bool
    cudnn_deterministic: bool

    def as_meta(self) -> dict:
        """What ``meta.cuda_arithmetic`` records."""
        return dataclasses.asdict(self)


def cuda_arithmetic(precision: str, fast: bool) -> CudaArithmetic:
    """The settings of a CUDA model: exact (fp32, not fast) is IEEE fp32 and
    deterministic; fast mode may use TF32 and cuDNN's timed kernels."""
    autocast = None if precision == 'fp32' else precision
    if fast:
        return CudaArithmetic('tf32', autocast, True, False)
    return CudaArithmetic('ieee', autocast, False, True)


def apply(arithmetic: CudaArithmetic) -> None:
    """Set torch's process-wide flags to ``arithmetic`` (the new
    ``fp32_precision`` API only: torch refuses to mix it with the legacy
    ``allow_tf32`` flags)."""
    torch.backends.cudnn.conv.fp32_precision = arithmetic.fp32
    torch.backends.cuda.matmul.fp32_precision = arithmetic.fp32
    torch.backends.cudnn.benchmark = arithmetic.cudnn_benchmark
    torch.backends.cudnn.deterministic = arithmetic.cudnn_deterministic


def current() -> CudaArithmetic:
    """torch's flags as they are now (autocast not included)."""
    return CudaArithmetic(torch.backends.cudnn.conv.fp32_precision, None,
                          torch.backends.cudnn.benchmark,
                          torch.backends.cudnn.deterministic)


@contextlib.contextmanager
def running_with(arithmetic: CudaArithmetic):
    """``arithmetic`` set for the block, the previous flags back after."""
    before = (torch.backends.cudnn.conv.fp32_precision,
              torch.backends.cuda.matmul.fp32_precision,
              torch.backends.cudnn.benchmark,
              torch.backends.cudnn.deterministic)
    apply(arithmetic)
    try:
        yield
    finally:
        (torch.backends.cudnn.conv.fp32_precision,
         torch.backends.cuda.matmul.fp32_precision,
         torch.backends.cudnn.benchmark,
         torch.backends.cudnn.deterministic) = before


def run_model_with(model: torch.nn.Module,
                   arithmetic: CudaArithmetic) -> None:
    """Make every ``model.test_step`` call (mmdet's ``inference_detector``
    and the services call it) run under ``arithmetic``. Four flag writes a
    call: nothing next to a forward pass."""
    step = model.test_step

    @functools.wraps(step)
    def test_step(*args, **kwargs):
        with running_with(arithmetic):
            return step(*args, **kwargs)

    model.test_step = test_step
