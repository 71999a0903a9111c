"""A model's heavy part run through the runtime fast mode chose.

:class:`RuntimeSeam` takes the place of the model's ``extract_feat``
(:func:`~pose_suite.runtimes.heavy.route`). On the first call, which is the
service's warm-up when it is built, it decides (:mod:`.choice`): the
remembered answer for this machine, or a measurement on that batch. Then
either the runtime runs every batch, converted once per input size and
cached (:mod:`.convert`), or PyTorch does, in its own fast mode, and one
line says why.
"""
import contextlib
import copy
import dataclasses
import warnings
from pathlib import Path
from tempfile import TemporaryDirectory, gettempdir
from typing import Callable, Dict, Optional, Tuple

import torch
from mmcv.cnn import fuse_conv_bn

from pose_suite.errors import SuiteWarning
from pose_suite.runtimes.choice import (RuntimeChoice, candidates, decide,
                                        speed_ratios)
from pose_suite.runtimes.convert import (TEMPORARY_PREFIX, ConversionError,
                                         converted_name, export_onnx,
                                         find_converted, first_line, sweep,
                                         writable_folder)
from pose_suite.runtimes.engines import (NAMES, RUNTIMES, Engine, discard,
                                         load, save, version_of)
from pose_suite.runtimes.heavy import (HeavyPart, head_of, route, unroute,
                                       unrouted)
from pose_suite.runtimes.machine import machine_key, recall, remember


@dataclasses.dataclass(frozen=True)
class SeamSettings:
    """``asked``: the config's ``runtime`` (``auto``, ``openvino`` or
    ``onnxruntime``); ``precision``: the arithmetic fast mode chose
    (``f32`` or ``bf16``); the model's checkpoint, its SHA-256 and its
    config's; ``label``: ``detector`` or ``pose model``, for the lines a
    user reads."""

    asked: str
    precision: str
    checkpoint: Path
    checkpoint_sha256: str
    config_sha256: str
    label: str


class RuntimeSeam:
    """``model.extract_feat`` while a runtime may run the heavy part.

    ``make_fast(model)`` applies PyTorch's fast mode (the fallback, and
    what a runtime is measured against)."""

    def __init__(self, model: torch.nn.Module, settings: SeamSettings,
                 make_fast: Callable[[torch.nn.Module], None]):
        self.model, self.settings, self.make_fast = model, settings, make_fast
        #: Decided on the first call; None before.
        self.choice: Optional[RuntimeChoice] = None
        self.engines: Dict[Tuple[int, int], Engine] = {}
        #: RTMDet's head stays PyTorch float32 in bf16 (:mod:`.heavy`).
        self.with_head = settings.precision != 'bf16' or \
            not hasattr(model, 'bbox_head')
        route(model, self, self.with_head)

    def describe(self) -> str:
        """What runs: ``pytorch`` or e.g. ``openvino 2026.4.1 bf16``."""
        if self.choice is None or self.choice.runtime == 'pytorch':
            return 'pytorch'
        return next(iter(self.engines.values())).describe()

    def __call__(self, inputs: torch.Tensor):
        if self.choice is None:
            self.choice = self._choose(inputs)
        if self.choice.runtime != 'pytorch':
            try:  # converted now where the input size is new
                engine = self._engine(self.choice.runtime,
                                      tuple(inputs.shape))
            except ConversionError as exc:
                self.choice = self._fall_back(self.choice, str(exc))
            else:
                try:
                    outputs = engine(inputs.detach().cpu().numpy())
                except Exception as exc:  # noqa: BLE001 - the runtime's
                    if engine.source is not None:
                        discard(engine.source)  # a foreign file: made again
                    self.choice = self._fall_back(
                        self.choice, f'inference failed: {first_line(exc)}')
                else:
                    return tuple(torch.from_numpy(output)
                                 for output in outputs)
        return self.model.extract_feat(inputs)  # PyTorch's, routed no more

    def _choose(self, inputs: torch.Tensor) -> RuntimeChoice:
        """The remembered or measured choice (``runtime: auto``), or the
        runtime asked; where PyTorch runs, fast mode applied to the model
        and the reason said."""
        settings = self.settings
        if settings.asked == 'auto':
            key = machine_key(
                torch.__version__, settings.precision, settings.config_sha256,
                tuple(inputs.shape[1:]),
                *(f'{name} {version_of(name)}'
                  for name in (*RUNTIMES, 'onnx')))
            choice = RuntimeChoice.from_json(recall(
                'runtime_probe', key,
                lambda known: RuntimeChoice.from_json(known) is not None))
            if choice is not None:  # decided again: the margin may differ
                choice = decide(choice.speedups, choice.failures)
            else:
                choice = self._measure(inputs)
                if choice.speedups:  # a failure alone is tried again
                    remember('runtime_probe', key, choice.as_json())
        else:
            choice = RuntimeChoice(settings.asked)
            if choice.runtime == 'onnxruntime' and settings.precision != 'f32':
                warnings.warn(f'fast mode, {settings.label}: ONNX Runtime '
                              'runs f32 (no bf16 convolutions on a CPU); '
                              'meta.*.runtime says so', SuiteWarning)
        if choice.runtime == 'pytorch':
            return self._fall_back(
                choice, choice.why if choice.worth_saying() else None)
        try:
            self._engine(choice.runtime, tuple(inputs.shape))
        except ConversionError as exc:
            return self._fall_back(choice, str(exc))
        if not self.with_head:
            head = head_of(self.model)  # in float32, as fast mode makes it
            fuse_conv_bn(head)
            head.to(memory_format=torch.channels_last)
        return choice

    def _fall_back(self, choice: RuntimeChoice,
                   why: Optional[str]) -> RuntimeChoice:
        """PyTorch's fast mode from now on, saying why (``why``: the
        probe's reason, or a runtime's failure)."""
        unroute(self.model)
        self.make_fast(self.model)
        if choice.runtime != 'pytorch':
            why = f'{NAMES[choice.runtime]}: {why}'
        if why:
            warnings.warn(f'fast mode, {self.settings.label}: PyTorch runs: '
                          f'{why}', SuiteWarning)
        return RuntimeChoice('pytorch', choice.speedups, why)

    def _measure(self, inputs: torch.Tensor) -> RuntimeChoice:
        """Each candidate against PyTorch's fast mode on ``inputs``; the
        winner's converted file cached, its engine kept."""
        names = candidates(self.settings.asked, self.settings.precision)
        sweep(Path(gettempdir()))
        try:
            with self._exported(tuple(inputs.shape)) as onnx:
                return self._measure_with(inputs, names, onnx)
        except ConversionError as exc:  # the export, or no room for it
            return decide({}, {name: str(exc) for name in names})

    def _measure_with(self, inputs: torch.Tensor, names, onnx: Path
                      ) -> RuntimeChoice:
        shape, engines, failures = tuple(inputs.shape), {}, {}
        for name in names:
            try:
                engines[name] = self._load(name, onnx)
            except ConversionError as exc:
                failures[name] = str(exc)
        speedups = {}
        if engines:
            with unrouted(self.model):
                fast = copy.deepcopy(self.model)
            self.make_fast(fast)
            speedups = speed_ratios(HeavyPart(fast, self.with_head),
                                    engines, inputs)
            del fast
        choice = decide(speedups, failures)
        if choice.runtime != 'pytorch':
            self.engines[shape[2:]] = engines[choice.runtime]
            self._keep(choice.runtime, onnx, shape)
        return choice

    def _engine(self, name: str, shape: Tuple[int, ...]) -> Engine:
        """Runtime ``name``'s engine for inputs of ``shape``: made from the
        cached converted file, or converted now (and cached).

        Raises:
            ConversionError: the runtime is missing or cannot convert.
        """
        if shape[2:] in self.engines:
            return self.engines[shape[2:]]
        engine = None
        for cached in find_converted(self.settings.checkpoint,
                                     self._name(name, shape)):
            try:
                engine = self._load(name, cached)
                engine.source = cached
                break
            except ConversionError:
                discard(cached)  # damaged: made again below
        if engine is None:
            with self._exported(shape) as onnx:
                engine = self._load(name, onnx)
                self._keep(name, onnx, shape)
        self.engines[shape[2:]] = engine
        return engine

    @contextlib.contextmanager
    def _exported(self, shape: Tuple[int, ...]):
        """The heavy part exported to ONNX for inputs of ``shape``, in a
        temporary folder: yields the file's path; the folder is removed
        after.

        Raises:
            ConversionError: the export failed, or there was no room for
                the folder (an OSError in the ``with`` block too).
        """
        try:
            with TemporaryDirectory(prefix=TEMPORARY_PREFIX) as folder:
                onnx = Path(folder) / 'heavy.onnx'
                with unrouted(self.model):
                    export_onnx(self.model, shape, onnx, self.with_head)
                yield onnx
        except OSError as exc:
            raise ConversionError(
                f'conversion failed: {first_line(exc)}') from None

    def _name(self, runtime: str, shape: Tuple[int, ...]) -> str:
        return converted_name(self.settings.checkpoint,
                              self.settings.checkpoint_sha256,
                              self.settings.config_sha256, shape, runtime,
                              self.with_head)

    def _load(self, name: str, path: Path) -> Engine:
        if version_of(name) is None:
            raise ConversionError(f'{name} is not installed')
        try:
            return load(name, path, self.settings.precision,
                        torch.get_num_threads())
        except Exception as exc:  # noqa: BLE001 - the runtime's own errors
            raise ConversionError(
                f'conversion failed: {first_line(exc)}') from None

    def _keep(self, name: str, onnx: Path, shape: Tuple[int, ...]) -> None:
        """Cache runtime ``name``'s converted file of ``onnx``, where a
        folder can be written (else it is converted again next run)."""
        folder = writable_folder(self.settings.checkpoint)
        if folder is not None:
            sweep(folder)
            try:
                save(name, onnx, folder / self._name(name, shape))
            except Exception:  # noqa: BLE001 - a full disk, the runtime's
                pass
