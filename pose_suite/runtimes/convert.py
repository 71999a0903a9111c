"""The heavy part exported to ONNX once, and where converted files live.

A converted file is named by what makes it: the checkpoint (its name, cut
to 80 characters, and the first 12 hex digits of its SHA-256), the model
config as resolved (8 hex digits of its SHA-256: an edited config is
another model), the input size, with or without the head, and the runtime
and its version, e.g. ``hrnet_w48_...-f5726563_20200918.a1b2c3d4e5f6.
0a1b2c3d.384x288.openvino-2026.4.1.xml``.
It lives in ``converted/`` beside the checkpoint, or, where that folder
cannot be written, in ``~/.cache/pose-suite/converted/``. Delete either
folder at any time: the files are made again when needed (about 5 s for
HRNet-W48, 2 s for RTMDet-m, measured on 2 cores).
"""
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

import torch

from pose_suite.runtimes.engines import SUFFIX, version_of
from pose_suite.runtimes.heavy import HeavyPart

#: Temporary folders of an export start so (:func:`sweep`).
TEMPORARY_PREFIX = 'pose-suite-'
#: Left-behind files and folders older than this are removed (seconds).
LEFT_BEHIND_S = 3600

#: The ONNX operator set the export uses (OpenVINO and ONNX Runtime of the
#: versions pinned read it; PyTorch's TorchScript exporter writes it).
OPSET = 17


class ConversionError(Exception):
    """The heavy part could not be exported or converted (the runtime falls
    back to PyTorch, saying why)."""


def cache_folders(checkpoint: Path):
    """Where converted files of ``checkpoint`` are looked for, in order."""
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return [Path(checkpoint).resolve().parent / 'converted',
            Path(base) / 'pose-suite' / 'converted']


def converted_name(checkpoint: Path, sha256: str, config_sha256: str,
                   shape: Tuple[int, ...], runtime: str,
                   with_head: bool = True) -> str:
    """The file name of ``runtime``'s conversion of ``checkpoint`` (whose
    hash is ``sha256``) built from a config hashed ``config_sha256``, for
    inputs of ``shape`` (N, 3, H, W; N is free), with or without the head
    (``.nohead``)."""
    return (f'{Path(checkpoint).stem[:80]}.{sha256[:12]}.'
            f'{config_sha256[:8]}.{shape[2]}x{shape[3]}.'
            f'{"" if with_head else "nohead."}'
            f'{runtime}-{version_of(runtime)}{SUFFIX[runtime]}')


def find_converted(checkpoint: Path, name: str) -> List[Path]:
    """The converted file ``name`` where it already is, the checkpoint's
    folder first."""
    return [folder / name for folder in cache_folders(checkpoint)
            if (folder / name).is_file()]


def writable_folder(checkpoint: Path) -> Optional[Path]:
    """The first of :func:`cache_folders` this user can write in."""
    for folder in cache_folders(checkpoint):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                return folder
        except OSError:
            continue
    return None


def export_onnx(model: torch.nn.Module, shape: Tuple[int, ...],
                path: Path, with_head: bool = True) -> None:
    """Export ``model``'s heavy part (:class:`HeavyPart`, fp32 weights, its
    calls not routed; with or without the head) to ONNX at ``path``: input
    ``input`` of ``shape`` with the batch dimension free, outputs
    ``output0``... with theirs.

    Raises:
        ConversionError: ``onnx`` is missing or the export failed.
    """
    if version_of('onnx') is None:
        raise ConversionError('the onnx package is not installed')
    heavy = HeavyPart(model, with_head).eval()
    example = torch.zeros(shape)
    with torch.inference_mode(False), torch.no_grad():
        count = len(heavy(example))
        outputs = [f'output{index}' for index in range(count)]
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # tracer notes on shapes
            try:
                torch.onnx.export(
                    heavy, (example,), str(path), dynamo=False,
                    opset_version=OPSET, input_names=['input'],
                    output_names=outputs,
                    dynamic_axes={name: {0: 'batch'}
                                  for name in ['input', *outputs]})
            except Exception as exc:  # noqa: BLE001 - any export failure
                raise ConversionError(
                    f'export to ONNX failed: {first_line(exc)}') from None


def sweep(folder: Path) -> None:
    """Remove what killed runs left in ``folder`` (a converted-files
    folder, or the temporary folder) more than :data:`LEFT_BEHIND_S`
    ago: hidden ``.part`` files of a save, ``pose-suite-*`` folders of an
    export. Files that cannot be removed are left."""
    old = time.time() - LEFT_BEHIND_S
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat().st_mtime > old:
                continue
            if entry.name.startswith('.') and '.part' in entry.name:
                entry.unlink()
            elif entry.name.startswith(TEMPORARY_PREFIX) and entry.is_dir() \
                    and entry.stat().st_uid == os.getuid():
                shutil.rmtree(entry)
        except OSError:
            continue


def first_line(exc: BaseException) -> str:
    """An exception's message as one short line."""
    lines = str(exc).strip().splitlines()
    return (lines[0][:200] if lines else type(exc).__name__)
