"""Loading OpenMMLab checkpoints safely.

* Files are unpickled with ``torch.load(weights_only=True)`` and an explicit
  allow-list of the few numpy globals that real OpenMMLab checkpoints keep in
  their ``meta`` (numpy scalars and arrays). A file whose pickle names any
  other global (e.g. a ``__reduce__`` payload calling ``os.system``) is
  refused before anything in it runs; there is no fallback to unrestricted
  unpickling.
* OpenMMLab names published weights ``<name>-<sha256[:8]>[_<date>].pth``;
  such a file is verified against that prefix before it is loaded.
* Weights load with every parameter of the model present, so the checkpoint
  of the other model, or of a different architecture, is refused instead of
  silently leaving random weights in place.
"""
import hashlib
import pickle
import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from pose_suite.errors import CheckpointError, SuiteWarning

_HASH_IN_NAME = re.compile(r'-([0-9a-f]{8})(?:_\d{8})?\.pth$')

# numpy 1.x pickles scalars through numpy.core.multiarray.scalar and arrays
# through numpy.core.multiarray._reconstruct; numpy 2 renamed numpy.core to
# numpy._core. Both names are listed so either kind of file loads.
_NUMPY_GLOBAL_NAMES = (
    ('numpy.core.multiarray', 'scalar'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy._core.multiarray', '_reconstruct'),
)


def allowed_globals() -> list:
    """The globals, beyond torch's own, a checkpoint may reference:
    numpy scalar/array reconstruction, ``numpy.ndarray``, ``numpy.dtype`` and
    the concrete dtype classes (``numpy.dtypes.Float64DType``, ...)."""
    import importlib
    allowed = [np.ndarray, np.dtype]
    for module_name, name in _NUMPY_GLOBAL_NAMES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        function = getattr(module, name, None)
        if function is not None:
            # Register under the name the pickle uses, which for numpy 1
            # differs from the function's __module__.
            allowed.append((function, f'{module_name}.{name}'))
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes)
                    if n.endswith('DType')]
    return allowed


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def expected_sha256_prefix(path: Path) -> Optional[str]:
    """The 8 hex digits OpenMMLab puts in a published file's name, or None."""
    match = _HASH_IN_NAME.search(Path(path).name)
    return match.group(1) if match else None


def require_file(path: Path) -> None:
    """Raises CheckpointError unless ``path`` is an existing file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f'checkpoint not found: {path} (run `make '
                              'weights` or set the path in config.json)')
    if not path.is_file():
        raise CheckpointError(f'checkpoint is not a file: {path}')


def verify_checkpoint_file(path: Path) -> str:
    """Check that ``path`` is a readable file whose SHA-256 matches the
    prefix in its name (when it has one).

    Returns:
        The file's hex SHA-256.
    Raises:
        CheckpointError: missing, not a file, unreadable or wrong checksum.
    """
    path = Path(path)
    require_file(path)
    try:
        digest = sha256_of(path)
    except OSError as exc:
        raise CheckpointError(f'cannot read checkpoint {path}: '
                              f'{exc.strerror or exc}') from None
    expected = expected_sha256_prefix(path)
    if expected is not None and not digest.startswith(expected):
        raise CheckpointError(
            f'checkpoint {path} fails its checksum: SHA-256 starts with '
            f'{digest[:8]}, its name says {expected} (corrupt or incomplete '
            'download; delete it and run `make weights`)')
    return digest


def safe_torch_load(path: Path) -> dict:
    """Unpickle a checkpoint with ``weights_only=True`` and the allow-list.

    Returns:
        The checkpoint dict (``{'meta': ..., 'state_dict': ...}``, or a bare
        state dict).
    Raises:
        CheckpointError: not a PyTorch file, or it references a global that
        is not allowed (its code does not run).
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(allowed_globals()):
            checkpoint = torch.load(path, map_location='cpu',
                                    weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc)
        found = re.search(r'GLOBAL ([\w.]+)', reason)
        if found:
            name = found.group(1)
            raise CheckpointError(
                f'refusing checkpoint {path}: it references {name}, which a '
                'weights file does not need and could run code; it was not '
                'loaded') from None
        raise CheckpointError(f'{path} is not a PyTorch checkpoint '
                              f'({_first_line(reason)})') from None
    except Exception as exc:  # the parser meets arbitrary bytes: any error
        raise CheckpointError(f'{path} is not a PyTorch checkpoint '
                              f'({_first_line(str(exc))})') from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'{path} holds a {type(checkpoint).__name__}, '
                              'not a checkpoint dict')
    return checkpoint


def load_weights(model: torch.nn.Module, path: Path) -> dict:
    """Load a checkpoint file into ``model``, requiring every weight.

    Applies the model's own load hooks (mmpose renames the 0.x
    ``keypoint_head.*`` keys there) and strips a ``module.`` prefix, as
    mmengine's ``load_checkpoint`` does.

    Returns:
        The checkpoint's ``meta`` dict ({} when absent).
    Raises:
        CheckpointError: unsafe or unreadable file, or weights that do not
        fit the model (e.g. the other model's checkpoint).
    """
    path = Path(path)
    checkpoint = safe_torch_load(path)
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict) or not all(
            isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f'{path} has no state_dict of tensors')
    metadata = getattr(state_dict, '_metadata', None)
    state_dict = OrderedDict(
        (re.sub(r'^module\.', '', key), value)
        for key, value in state_dict.items())
    if metadata is not None:
        state_dict._metadata = metadata  # load hooks read versions from it
    model_name = type(model).__name__
    try:
        result = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(
            f'checkpoint {path.name} does not fit the {model_name} config '
            f'(weight shapes differ: {_first_line(str(exc), skip=1)})'
        ) from None
    # Old checkpoints may lack BatchNorm counters, which inference ignores.
    missing = [k for k in result.missing_keys
               if not k.endswith('num_batches_tracked')]
    if missing:
        raise CheckpointError(
            f'checkpoint {path.name} does not fit the {model_name} config: '
            f'{len(missing)} weights missing (e.g. {missing[0]}); is it the '
            'other model\'s checkpoint?')
    if result.unexpected_keys:
        warnings.warn(f'checkpoint {path.name} has {len(result.unexpected_keys)}'
                      f' weights the model does not use (e.g. '
                      f'{result.unexpected_keys[0]}); they are ignored',
                      SuiteWarning)
    meta = checkpoint.get('meta', {})
    return meta if isinstance(meta, dict) else {}


def _first_line(text: str, skip: int = 0) -> str:
    lines = [line.strip() for line in text.strip().splitlines()
             if line.strip()]
    if not lines:
        return 'unreadable'
    return lines[min(skip, len(lines) - 1)][:200]
