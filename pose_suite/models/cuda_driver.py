"""Whether the NVIDIA driver can run the installed torch's CUDA.

PyPI's torch 2.13.0 is a CUDA 13 build (it pulls ``nvidia-*-cu13``), which
needs driver 580 or newer. With an older driver ``torch.cuda.is_available()``
is simply False: ``device: auto`` then runs on the CPU without a word, and
``make gpu-check`` can only say that torch sees no GPU. So ``make install``
and ``make gpu-check`` read the driver's version (``nvidia-smi``, else
``/proc/driver/nvidia/version``) and say in one line what to do.

Only :func:`check_torch_driver` imports torch.
"""
import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Tuple

#: CUDA major -> oldest Linux driver that runs it (CUDA's minor version
#: compatibility, NVIDIA's CUDA Toolkit release notes, table 3).
MIN_DRIVER = {11: (450, 80), 12: (525, 60), 13: (580, 0)}
#: Where the kernel module says its version (tests point it elsewhere).
PROC_VERSION = Path('/proc/driver/nvidia/version')


def _numbers(version: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r'\d+', version))


def driver_version() -> Optional[str]:
    """The NVIDIA driver's version ("550.54.14"), or None without one."""
    smi = shutil.which('nvidia-smi')
    if smi:
        try:
            answer = subprocess.run(
                [smi, '--query-gpu=driver_version', '--format=csv,noheader'],
                capture_output=True, text=True, timeout=30)
            first = (answer.stdout.strip().splitlines() or [''])[0].strip()
            if answer.returncode == 0 and re.fullmatch(r'[\d.]+', first):
                return first
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        text = PROC_VERSION.read_text()
    except OSError:
        return None
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu ..."
    # or "... Open Kernel Module for x86_64  580.65.06  Release Build ...".
    found = re.search(r'Kernel Module.*?\s(\d+\.\d+(?:\.\d+)?)\s', text)
    return found.group(1) if found else None


def driver_problem(torch_version: str, torch_cuda: Optional[str],
                   driver: Optional[str]) -> Optional[str]:
    """One line telling what to do when ``driver`` is too old for torch's
    CUDA, else None (also for a CPU torch or no driver at all)."""
    if not torch_cuda or not driver:
        return None
    needed = MIN_DRIVER.get(_numbers(torch_cuda)[0])
    if needed is None or _numbers(driver)[:2] >= needed:
        return None
    return (f'torch {torch_version} is built for CUDA {torch_cuda}, which '
            f'needs NVIDIA driver >= {needed[0]}; this machine has driver '
            f'{driver}, so torch sees no GPU and the suite would run on the '
            'CPU: update the driver, or install a torch built for your '
            'CUDA (e.g. pip install torch --index-url '
            'https://download.pytorch.org/whl/cu126) and run `make install '
            'TORCH=system`')


def check_torch_driver() -> Optional[str]:
    """:func:`driver_problem` for the installed torch and this machine."""
    import torch
    if torch.cuda.is_available():
        return None
    return driver_problem(torch.__version__, torch.version.cuda,
                          driver_version())
