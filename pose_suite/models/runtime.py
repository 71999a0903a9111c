"""What the running machine offers: torchvision (or its fallback), devices,
package versions.

Import this module before mmpose: it makes ``import mmpose`` work on machines
where torchvision cannot be installed (see :func:`ensure_torchvision`).
"""
import importlib.metadata
import sys
import types

import torch

from pose_suite.errors import DeviceError

#: 'torchvision <version>' or 'fallback' once :func:`ensure_torchvision` ran.
TORCHVISION_STATUS = None


def _torchvision_fallback_module() -> types.ModuleType:
    """A minimal stand-in for ``torchvision``.

    mmpose imports ``torchvision.transforms.ToPILImage`` at import time, in
    its SimCC heatmap visualiser only; nothing on this suite's path (RTMDet,
    HRNet heatmap head, DARK decoding) calls torchvision. The stand-in lets
    the import succeed and makes any real use fail loudly.
    """

    class ToPILImage:  # noqa: D401 - mirrors torchvision's name
        def __init__(self, *args, **kwargs):
            raise RuntimeError(
                'torchvision is not installed: ToPILImage (used by mmpose '
                'SimCC visualisation only) is unavailable')

    package = types.ModuleType('torchvision')
    package.__doc__ = 'pose_suite fallback: torchvision is not installed'
    package.__version__ = 'fallback'
    package.__path__ = []  # a package, so submodule imports resolve
    transforms = types.ModuleType('torchvision.transforms')
    transforms.ToPILImage = ToPILImage
    package.transforms = transforms
    return package


def ensure_torchvision() -> str:
    """Use the real torchvision when it imports, else install the fallback.

    Returns:
        ``'torchvision <version>'`` or ``'fallback'``.
    """
    global TORCHVISION_STATUS
    if TORCHVISION_STATUS is not None:
        return TORCHVISION_STATUS
    try:
        import torchvision
        TORCHVISION_STATUS = f'torchvision {torchvision.__version__}'
    except Exception:  # ImportError, or a build that does not match torch
        for name in [m for m in sys.modules if m.startswith('torchvision')]:
            del sys.modules[name]
        fallback = _torchvision_fallback_module()
        sys.modules['torchvision'] = fallback
        sys.modules['torchvision.transforms'] = fallback.transforms
        TORCHVISION_STATUS = 'fallback'
    return TORCHVISION_STATUS


def resolve_device(device: str) -> str:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N`` into a torch device string.

    Raises:
        DeviceError: ``cuda`` was asked for and is not available.
    """
    if device == 'auto':
        return 'cuda:0' if torch.cuda.is_available() else 'cpu'
    if device == 'cpu':
        return device
    if device.startswith('cuda'):
        if not torch.cuda.is_available():
            raise DeviceError(f'device {device!r} requested but CUDA is not '
                              'available on this machine (use "cpu" or '
                              '"auto")')
        index = int(device.split(':')[1]) if ':' in device else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f'device {device!r} requested but this machine '
                              f'has {torch.cuda.device_count()} CUDA '
                              'device(s)')
        return f'cuda:{index}'
    raise DeviceError(f'unknown device {device!r} (use cpu, cuda, cuda:N or '
                      'auto)')


def package_versions() -> dict:
    """Versions of the packages that decide the results."""
    versions = {'python': sys.version.split()[0]}
    for name in ('torch', 'mmcv', 'mmdet', 'mmpose', 'mmengine', 'numpy',
                 'opencv-python'):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions['torchvision'] = ensure_torchvision()
    return versions
