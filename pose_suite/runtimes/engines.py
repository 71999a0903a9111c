"""OpenVINO and ONNX Runtime, each behind one small interface.

An :class:`Engine` runs the heavy part (:mod:`.heavy`) converted to that
runtime: a float32 (N, 3, H, W) batch in, its outputs out as float32
arrays, N free (dynamic batch). OpenVINO reads the ONNX export and keeps
its own IR (``.xml`` + ``.bin``); ONNX Runtime runs the ONNX file itself.
Both runtimes send usage telemetry unless told not to: ``import openvino``
sends an event through ``openvino_telemetry`` (a DNS query for Google
Analytics, files in ``~/intel``), and ONNX Runtime 1.32 sends events to
Microsoft. The suite contacts nothing but what a user names, so both are
imported through :func:`openvino_module` and :func:`onnxruntime_module`,
which turn them off first: ``openvino_telemetry`` is replaced by
OpenVINO's own stub (it falls back to it where the package is missing),
and ONNX Runtime is given ``ORT_DISABLE_TELEMETRY=1`` and
``disable_telemetry_events()``. OpenVINO's converter
(``openvino.convert_model``) is never used.
"""
import importlib.metadata
import os
import shutil
import sys
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np

#: The runtimes, in the order they are tried; their package names.
RUNTIMES = ('openvino', 'onnxruntime')
#: What a runtime's converted file ends with.
SUFFIX = {'openvino': '.xml', 'onnxruntime': '.onnx'}
#: Display names, for the lines a user reads.
NAMES = {'openvino': 'OpenVINO', 'onnxruntime': 'ONNX Runtime',
         'pytorch': 'PyTorch'}


class Engine:
    """A compiled heavy part: ``engine(batch)`` -> list of float32 arrays.

    ``name`` (``openvino`` or ``onnxruntime``), ``version`` and
    ``precision`` (``f32``, or ``bf16`` where OpenVINO was asked to infer
    in bf16) say what runs."""

    def __init__(self, name: str, version: str, precision: str,
                 run: Callable[[np.ndarray], List[np.ndarray]]):
        self.name, self.version, self.precision = name, version, precision
        self._run = run
        #: The cached converted file it was made from (None: made now).
        self.source: Optional[Path] = None

    def __call__(self, batch: np.ndarray) -> List[np.ndarray]:
        return self._run(np.ascontiguousarray(batch, dtype=np.float32))

    def describe(self) -> str:
        return f'{self.name} {self.version} {self.precision}'


def version_of(name: str) -> Optional[str]:
    """The installed version of runtime ``name``; None when it is not
    installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def openvino_module():
    """``openvino``, imported without its telemetry (module docstring)."""
    if 'openvino' not in sys.modules:
        sys.modules.setdefault('openvino_telemetry', None)  # -> its stub
    import openvino
    return openvino


def onnxruntime_module():
    """``onnxruntime``, imported without its telemetry."""
    os.environ.setdefault('ORT_DISABLE_TELEMETRY', '1')
    import onnxruntime
    onnxruntime.disable_telemetry_events()
    return onnxruntime


def load(name: str, path: Path, precision: str, threads: int) -> Engine:
    """The engine of runtime ``name`` for the converted file (or ONNX
    export) at ``path``, inferring in ``precision`` (``f32`` or ``bf16``;
    ONNX Runtime has only f32 on a CPU) on ``threads`` threads."""
    if name == 'openvino':
        return _openvino(path, precision, threads)
    return _onnxruntime(path, threads)


def _openvino(path: Path, precision: str, threads: int) -> Engine:
    openvino = openvino_module()
    core = openvino.Core()
    model = core.read_model(str(path))
    compiled = core.compile_model(model, 'CPU', {
        'INFERENCE_PRECISION_HINT': precision,
        'PERFORMANCE_HINT': 'LATENCY',
        'INFERENCE_NUM_THREADS': threads})
    request = compiled.create_infer_request()
    outputs = compiled.outputs

    def run(batch):
        results = request.infer({0: batch})
        return [np.array(results[output], np.float32) for output in outputs]

    return Engine('openvino', version_of('openvino'), precision, run)


def _onnxruntime(path: Path, threads: int) -> Engine:
    onnxruntime = onnxruntime_module()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no warnings on stderr
    session = onnxruntime.InferenceSession(
        str(path), options, providers=['CPUExecutionProvider'])
    input_name = session.get_inputs()[0].name

    def run(batch):
        return session.run(None, {input_name: batch})

    return Engine('onnxruntime', version_of('onnxruntime'), 'f32', run)


def save(name: str, onnx_path: Path, target: Path) -> None:
    """Write runtime ``name``'s converted file of the ONNX export
    ``onnx_path`` at ``target``, whole or not at all: written under
    temporary names in its folder and renamed into place (for OpenVINO the
    ``.bin`` first, then the ``.xml`` a reader looks for), so that a
    concurrent run never reads half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f'.{target.stem}.{os.getpid()}.part'
                                 f'{target.suffix}')
    try:
        if name == 'openvino':
            openvino = openvino_module()
            model = openvino.Core().read_model(str(onnx_path))
            openvino.save_model(model, str(temporary), compress_to_fp16=False)
            os.replace(temporary.with_suffix('.bin'),
                       target.with_suffix('.bin'))
        else:
            shutil.copyfile(onnx_path, temporary)
        os.replace(temporary, target)
    finally:
        for left in (temporary, temporary.with_suffix('.bin')):
            left.unlink(missing_ok=True)


def discard(target: Path) -> None:
    """Delete a converted file (an OpenVINO one with its ``.bin``), where
    this user can."""
    for path in (target, *([target.with_suffix('.bin')]
                           if target.suffix == '.xml' else [])):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
