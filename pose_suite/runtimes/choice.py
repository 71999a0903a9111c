"""Which runtime fast mode uses for a model, decided by measuring.

Published figures disagree (OpenVINO several times PyTorch's speed on some
CPUs, slower on others), so nothing is assumed: on the first fast-mode run
of a model on a machine, its heavy part runs through PyTorch's fast mode
and through each runtime on the run's own first batch, alternated, and a
runtime is used only where it measured at least :data:`MIN_SPEEDUP` times
PyTorch's speed. The answer is remembered per machine setting, model
config, input size and versions (:mod:`.machine`, ``runtime_probe.json``).
"""
import dataclasses
import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch

from pose_suite.runtimes.engines import NAMES, RUNTIMES

#: A runtime replaces PyTorch only where its heavy part measured at least
#: this many times PyTorch's fast mode's: about 1.15x on a whole run. The
#: heavy part is not all of a run (frames, crops, decoding, writing), so a
#: whole run gains less: measured here (make bench, AMD EPYC), heavy parts
#: 1.16x and 1.16x through OpenVINO gave whole runs 1.04-1.13x, and
#: 1.11-1.28x capped to AVX2 gave 1.02-1.10x.
MIN_SPEEDUP = 1.3
#: Timed calls of each system after one untimed call; the best counts.
REPEATS = 3


@dataclasses.dataclass
class RuntimeChoice:
    """What runs a model's heavy part: ``runtime`` (``pytorch``,
    ``openvino`` or ``onnxruntime``), each candidate's measured speed ratio
    to PyTorch (``speedups``, empty where nothing was measured) and, where
    PyTorch runs although a runtime was tried, ``why``."""

    runtime: str
    speedups: Dict[str, float] = dataclasses.field(default_factory=dict)
    why: Optional[str] = None
    #: Runtime -> why it could not run (missing, failed to convert).
    failures: Dict[str, str] = dataclasses.field(default_factory=dict)

    def worth_saying(self) -> bool:
        """Whether PyTorch runs for a reason a user should read on every
        run: a runtime missing or failing, or every one slower than
        PyTorch. Faster but under the margin is only recorded
        (``meta.*.runtime_speedups_measured``)."""
        return self.runtime == 'pytorch' and bool(self.why) and bool(
            self.failures or max(self.speedups.values(), default=1) < 1.0)

    def as_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, known) -> Optional['RuntimeChoice']:
        """The choice stored in the probe file, None if it is not one."""
        try:
            choice = cls(**known)
        except TypeError:
            return None
        if choice.runtime not in ('pytorch', *RUNTIMES) or \
                not isinstance(choice.speedups, dict) or not all(
                    name in RUNTIMES and isinstance(ratio, (int, float))
                    for name, ratio in choice.speedups.items()) or \
                not isinstance(choice.why, (str, type(None))) or \
                not isinstance(choice.failures, dict):
            return None
        return choice


def candidates(asked: str, precision: str) -> Sequence[str]:
    """The runtimes to try for the config's ``runtime`` (``auto``: all
    that can run ``precision``; ONNX Runtime has no bf16 convolutions on a
    CPU, so it competes in f32 only)."""
    if asked != 'auto':
        return () if asked == 'pytorch' else (asked,)
    return tuple(name for name in RUNTIMES
                 if precision == 'f32' or name != 'onnxruntime')


def speed_ratios(pytorch: Callable[[torch.Tensor], object],
                 engines: Dict[str, Callable[[np.ndarray], object]],
                 batch: torch.Tensor) -> Dict[str, float]:
    """Each engine's speed on ``batch`` as a multiple of ``pytorch``'s
    (above 1: faster): one untimed call each, then :data:`REPEATS` rounds
    in turn, the best time of each."""
    systems = {'pytorch': lambda: pytorch(batch)}
    array = batch.numpy()
    for name, engine in engines.items():
        systems[name] = (lambda engine=engine: engine(array))
    best = {name: float('inf') for name in systems}
    with torch.inference_mode():
        for name, system in systems.items():
            system()
        for _ in range(REPEATS):
            for name, system in systems.items():
                started = time.perf_counter()
                system()
                best[name] = min(best[name], time.perf_counter() - started)
    return {name: round(best['pytorch'] / seconds, 3)
            for name, seconds in best.items() if name != 'pytorch'}


def decide(speedups: Dict[str, float], failures: Dict[str, str]
           ) -> RuntimeChoice:
    """The fastest runtime at :data:`MIN_SPEEDUP` or above, else PyTorch
    with the reason (each candidate's ratio or why it could not run), to
    be said (:meth:`RuntimeChoice.worth_saying`)."""
    fastest = max(speedups, key=speedups.get, default=None)
    if fastest is not None and speedups[fastest] >= MIN_SPEEDUP:
        return RuntimeChoice(fastest, speedups)
    reasons = [f'{NAMES[name]} measured {ratio:.2f}x PyTorch\'s speed'
               for name, ratio in speedups.items()]
    reasons += [f'{NAMES[name]}: {why}' for name, why in failures.items()]
    why = '; '.join(reasons)
    if speedups:
        why += f' ({MIN_SPEEDUP}x needed)'
    return RuntimeChoice('pytorch', speedups, why or None, dict(failures))
