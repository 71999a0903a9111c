"""Which precision a run really uses, decided by what the machine does.

``precision`` in config.json is what the user asks for: ``fp32`` (exact,
the default: the libraries' own arithmetic), ``bf16``, ``fp32-fast``,
``fp16`` (CUDA) or ``auto``. Fast mode in bf16 pays only where the CPU
convolves bf16 faster than fp32, which no flag list tells (pytorch #118499, #146508: without
AVX512-BF16 or AMX, bf16 convolutions are emulated and slower; virtual
machines advertise ``avx512_bf16`` whose speed is not there; and
``ONEDNN_MAX_CPU_ISA`` makes oneDNN behave like an older CPU). So
:func:`bf16_speedup` times representative convolutions in both precisions
(about 0.1 s, once per machine, remembered), and :func:`choose_precision`
turns what was asked into what runs:

- CUDA: ``auto`` and ``fp16`` run fp16; ``bf16`` runs bf16.
- CPU: ``bf16`` and ``auto`` run bf16 where it measured at least
  :data:`BF16_MIN_SPEEDUP` times fp32, else fp32 in fast mode (BatchNorm
  folded into the convolutions, channels-last: 1.2x the exact mode's
  backbone and 1.2-1.4x its detector, measured with oneDNN capped to
  AVX512_CORE_VNNI and uncapped), with one line saying so; ``fp16`` is
  refused (no CPU kernels worth having).
- ``fp32-fast`` is fast mode in fp32 on any device (OpenVINO or ONNX
  Runtime in f32 where they measured faster, :mod:`pose_suite.runtimes`).
- ``fp32`` is always the exact mode.

``meta.precision`` records what ran, ``meta.precision_asked`` what was
asked.
"""
import dataclasses
import time
import warnings
from typing import Optional

import torch

from pose_suite.errors import DeviceError, SuiteWarning
from pose_suite.runtimes.machine import machine_key, remembered

#: bf16 is chosen on a CPU only when its convolutions run at least this many
#: times as fast as fp32 ones: the rest of a run (heads, decoding, I/O)
#: stays fp32, so a smaller gain would be eaten by the conversions.
BF16_MIN_SPEEDUP = 1.3
#: A 3x3 convolution of HRNet-W48's second branch on one 384x288 crop
#: (96 channels at 1/8 of the crop): 143 M multiply-accumulates, 10 to 80 ms
#: for the whole probe (measured, uncapped and capped).
_PROBE_SHAPE = (1, 96, 48, 36)
_PROBE_CHANNELS = 96


@dataclasses.dataclass(frozen=True)
class PrecisionChoice:
    """What runs: ``precision`` (``fp32``, ``bf16`` or ``fp16``) and
    ``fast`` (BatchNorm folded, channels-last, flip test in one pass:
    ``pose_suite.models.build.use_fast_mode``); ``asked``: the config's value;
    ``bf16_speedup``: the measured bf16/fp32 convolution speed ratio where
    it was measured (CPU, bf16 or auto asked); ``note``: the line said
    when what runs differs from what was asked."""

    precision: str
    fast: bool
    asked: str
    bf16_speedup: Optional[float] = None
    note: Optional[str] = None


def measure_bf16_speedup(repeats: int = 5) -> float:
    """Time one 3x3 convolution in fp32 and in bf16 (both channels-last, as
    fast mode runs them) on this CPU; returns fp32 time / bf16 time (above
    1: bf16 is faster). Best of ``repeats`` after a warm-up call each, the
    two precisions alternated; about 0.1 s in all."""
    conv = torch.nn.Conv2d(_PROBE_CHANNELS, _PROBE_CHANNELS, 3, padding=1,
                           bias=False).eval()
    conv_bf16 = torch.nn.Conv2d(_PROBE_CHANNELS, _PROBE_CHANNELS, 3,
                                padding=1, bias=False).eval()
    conv_bf16.load_state_dict(conv.state_dict())
    conv_bf16.to(torch.bfloat16)
    conv.to(memory_format=torch.channels_last)
    conv_bf16.to(memory_format=torch.channels_last)
    inputs = torch.randn(_PROBE_SHAPE).contiguous(
        memory_format=torch.channels_last)
    inputs_bf16 = inputs.to(torch.bfloat16)
    best = {'fp32': float('inf'), 'bf16': float('inf')}
    with torch.inference_mode():
        conv(inputs), conv_bf16(inputs_bf16)  # oneDNN builds its kernels
        for _ in range(repeats):
            for name, module, tensor in (('fp32', conv, inputs),
                                         ('bf16', conv_bf16, inputs_bf16)):
                started = time.perf_counter()
                module(tensor)
                best[name] = min(best[name], time.perf_counter() - started)
    return best['fp32'] / best['bf16']


def bf16_speedup() -> float:
    """:func:`measure_bf16_speedup`, measured once per machine setting and
    torch version and remembered in
    ``~/.cache/pose-suite/precision_probe.json``
    (:mod:`pose_suite.runtimes.machine`), so that a machine keeps its
    decision from run to run (and ``--resume`` its results)."""
    return float(remembered(
        'precision_probe', machine_key(torch.__version__),
        lambda: round(measure_bf16_speedup(), 3),
        lambda known: isinstance(known, (int, float))))


def refuse_fp16_on_cpu(precision: str, device: str) -> None:
    """The one check, for a run's choice and for a model built directly.

    Raises:
        DeviceError: ``fp16`` on a device that is not CUDA.
    """
    if precision == 'fp16' and not device.startswith('cuda'):
        raise DeviceError('precision "fp16" needs a CUDA device; on the CPU '
                          'use "bf16", "auto" (or "fp32")')


def choose_precision(asked: str, device: str) -> PrecisionChoice:
    """What runs for ``asked`` on ``device`` (a torch device string).

    Raises:
        DeviceError: ``fp16`` on a CPU.
    """
    if asked == 'fp32':
        return PrecisionChoice('fp32', False, asked)
    if asked == 'fp32-fast':
        return PrecisionChoice('fp32', True, asked)
    if device.startswith('cuda'):
        return PrecisionChoice('bf16' if asked == 'bf16' else 'fp16', True,
                               asked)
    refuse_fp16_on_cpu(asked, device)
    ratio = bf16_speedup()
    if ratio >= BF16_MIN_SPEEDUP:
        return PrecisionChoice('bf16', True, asked, ratio)
    note = (f'precision {asked}: this CPU convolves bf16 at {ratio:.2f}x '
            f'the speed of fp32 (measured; {BF16_MIN_SPEEDUP}x needed), so '
            'fp32 runs instead, in fast mode (BatchNorm folded, '
            'channels-last; meta.precision says fp32)')
    return PrecisionChoice('fp32', True, asked, ratio, note)


def say(choice: PrecisionChoice) -> None:
    """The one line, once, where what runs is not what was asked."""
    if choice.note:
        warnings.warn(choice.note, SuiteWarning)
