"""How ``make install`` builds mmcv 2.1.0: with its CUDA ops or its CPU ops.

mmcv has no wheel for our torch, so pip compiles it. Its ``setup.py`` builds
the CUDA ops whenever ``torch.cuda.is_available()`` is true or
``FORCE_CUDA=1``; ``FORCE_CUDA=0`` does not turn that off. So on a machine
with a GPU but no usable CUDA toolkit the build fails, and with one it
compiles kernels for every architecture torch knows (hours). This module
looks at the machine once (:func:`probe`), decides (:func:`decide`, a pure
function, tested with made-up machines) and runs pip with that decision's
environment:

- a GPU, and an ``nvcc`` whose major CUDA version is torch's, that knows the
  GPU's architecture: the CUDA ops, for the local GPUs' architectures only
  (``TORCH_CUDA_ARCH_LIST``), ``MAX_JOBS`` from the cores and memory;
- anything else: the CPU ops, the GPU hidden from the build
  (``CUDA_VISIBLE_DEVICES=``), with one line saying why. The detector then
  runs its NMS on the CPU (:mod:`pose_suite.models.device_ops`).

pip caches the wheel it builds by mmcv's name and version only, so each
kind of build gets a pip cache of its own, named by torch's version, the
ops, and for CUDA the CUDA version and GPU architectures: a CPU-ops wheel
is never reused when a toolkit appears later, nor a wheel compiled against
another torch (``make install TORCH=system``), which would not load.

    python -m pose_suite.models.install_mmcv [--dry-run] [-- extra pip arguments]
"""
import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

MMCV = 'mmcv==2.1.0'
#: nvcc needs about this much memory per parallel compile job.
GIB_PER_JOB = 2
#: The oldest torch the suite runs on (``torch.serialization.safe_globals``,
#: with which checkpoints are unpickled, came in 2.5).
MIN_TORCH = (2, 5)


@dataclasses.dataclass(frozen=True)
class Machine:
    """What the build decision depends on.

    ``gpu_capabilities``: (major, minor) of each visible CUDA device (empty
    without one); ``torch_cuda``: the CUDA version torch was built with
    (``torch.version.cuda``, None for a CPU build); ``nvcc``: path of the
    toolkit's compiler or None; ``nvcc_cuda``: its release ("12.4");
    ``nvcc_archs``: the ``compute_XY`` it can build (``--list-gpu-arch``;
    empty when it cannot say); ``torch_version``: ``torch.__version__``.
    """

    gpu_capabilities: Tuple[Tuple[int, int], ...] = ()
    torch_cuda: Optional[str] = None
    nvcc: Optional[str] = None
    nvcc_cuda: Optional[str] = None
    nvcc_archs: Tuple[str, ...] = ()
    cpu_count: int = 2
    memory_gib: float = 8.0
    torch_version: str = '2.13.0+cpu'


@dataclasses.dataclass(frozen=True)
class Build:
    """The decision: ``ops`` is ``'cuda'`` or ``'cpu'``; ``env`` the
    variables to set for pip (a value of None: remove the variable);
    ``note``: the one line that tells the user; ``cache``: the name of this
    kind of build's own pip cache folder."""

    ops: str
    env: Dict[str, Optional[str]]
    note: str
    cache: str


def _major(version: Optional[str]) -> Optional[int]:
    try:
        return int(str(version).split('.')[0])
    except ValueError:
        return None


def decide(machine: Machine) -> Build:
    """The mmcv build for ``machine``: CUDA ops only where they can be
    built and will load; CPU ops otherwise."""
    jobs = max(1, min(machine.cpu_count,
                      int(machine.memory_gib // GIB_PER_JOB)))
    cpu_env = {'MMCV_WITH_OPS': '1', 'FORCE_CUDA': None,
               'CUDA_VISIBLE_DEVICES': '', 'MAX_JOBS': str(jobs)}

    def cpu(why: str) -> Build:
        return Build('cpu', cpu_env, f'mmcv: building its CPU ops ({why})',
                     f'cpu-torch{machine.torch_version}')

    if not machine.gpu_capabilities:
        return cpu('no CUDA device visible')
    gpus = f'{len(machine.gpu_capabilities)} CUDA device(s)'
    if not machine.torch_cuda:
        return cpu(f'{gpus}, but torch is a CPU build')
    fallback = ('; the detector runs its NMS on the CPU, the models on the '
                'GPU')
    if machine.nvcc is None:
        return cpu(f'{gpus}, but no CUDA toolkit (nvcc) was found: install '
                   f'CUDA {machine.torch_cuda} and set CUDA_HOME for GPU '
                   f'ops{fallback}')
    torch_major = _major(machine.torch_cuda)
    if _major(machine.nvcc_cuda) != torch_major:
        return cpu(f'{gpus}, but nvcc is CUDA {machine.nvcc_cuda} and torch '
                   f'was built with CUDA {machine.torch_cuda}{fallback}')
    capabilities = sorted(set(machine.gpu_capabilities))
    unknown = [f'{a}.{b}' for a, b in capabilities
               if machine.nvcc_archs and f'compute_{a}{b}'
               not in machine.nvcc_archs]
    if unknown:
        return cpu(f'nvcc {machine.nvcc_cuda} cannot build for this GPU '
                   f'(compute capability {", ".join(unknown)}){fallback}')
    arch_list = ';'.join(f'{a}.{b}' for a, b in capabilities)
    toolkit = str(Path(machine.nvcc).resolve().parent.parent)
    env = {'MMCV_WITH_OPS': '1', 'FORCE_CUDA': '1',
           'TORCH_CUDA_ARCH_LIST': arch_list, 'MAX_JOBS': str(jobs),
           'CUDA_HOME': toolkit}
    return Build('cuda', env,
                 f'mmcv: building its CUDA ops for compute capability '
                 f'{arch_list} with nvcc {machine.nvcc_cuda} ({toolkit}), '
                 f'{jobs} job(s): about 10-20 minutes',
                 f'cuda{machine.torch_cuda}-sm{arch_list.replace(";", "_")}'
                 f'-torch{machine.torch_version}')


def _find_nvcc() -> Optional[str]:
    """nvcc as torch's own extension builder looks for it: ``CUDA_HOME`` /
    ``CUDA_PATH``, then ``PATH``, then /usr/local/cuda."""
    for variable in ('CUDA_HOME', 'CUDA_PATH'):
        home = os.environ.get(variable)
        if home and Path(home, 'bin', 'nvcc').is_file():
            return str(Path(home, 'bin', 'nvcc'))
    found = shutil.which('nvcc')
    if found:
        return found
    default = Path('/usr/local/cuda/bin/nvcc')
    return str(default) if default.is_file() else None


def _nvcc_facts(nvcc: str) -> Tuple[Optional[str], Tuple[str, ...]]:
    """(release, compute archs) of an nvcc, from what it prints."""
    try:
        text = subprocess.run([nvcc, '--version'], capture_output=True,
                              text=True, timeout=60).stdout
        archs = subprocess.run([nvcc, '--list-gpu-arch'],
                               capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None, ()
    release = re.search(r'release (\d+\.\d+)', text)
    listed = tuple(archs.stdout.split()) if archs.returncode == 0 else ()
    return (release.group(1) if release else None), listed


def probe() -> Machine:
    """This machine's facts (imports torch; runs nvcc if there is one)."""
    import torch
    capabilities = ()
    if torch.cuda.is_available():
        capabilities = tuple(torch.cuda.get_device_capability(index)
                             for index in range(torch.cuda.device_count()))
    nvcc = _find_nvcc()
    nvcc_cuda, archs = _nvcc_facts(nvcc) if nvcc else (None, ())
    memory = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    return Machine(capabilities, torch.version.cuda, nvcc, nvcc_cuda, archs,
                   os.cpu_count() or 1, memory, torch.__version__)


def torch_problem() -> Optional[str]:
    """Why the installed torch cannot run the suite, or None."""
    try:
        import torch
    except ImportError:
        return 'no torch is installed for this Python'
    found = tuple(int(part) for part in re.findall(
        r'\d+', torch.__version__.split('+')[0])[:2])
    if found < MIN_TORCH:
        return (f'torch {torch.__version__} is too old: the suite needs '
                f'torch >= {MIN_TORCH[0]}.{MIN_TORCH[1]}')
    return None


def pip_command(build: Build, pip_args: List[str],
                wheel_dir: Optional[Path] = None) -> List[str]:
    """The pip call that builds and installs mmcv with ``build`` (with
    ``wheel_dir``: that builds its wheel, or takes it from this kind of
    build's cache, into ``wheel_dir``, for ``make wheelhouse``)."""
    cache = Path(os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache'),
                 'pose-suite', f'pip-mmcv-{build.cache}')
    action = ['install'] if wheel_dir is None else \
        ['wheel', '--no-deps', '--wheel-dir', str(wheel_dir)]
    return [sys.executable, '-m', 'pip', '--disable-pip-version-check',
            *action, '--no-build-isolation', '--cache-dir', str(cache),
            *pip_args, MMCV]


def build_environment(build: Build) -> Dict[str, str]:
    env = dict(os.environ)
    for name, value in build.env.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dry-run', action='store_true',
                        help='print the decision and the pip command only')
    parser.add_argument('--check-torch', action='store_true',
                        help='only check that the installed torch can run '
                             'the suite (make install TORCH=system)')
    parser.add_argument('--wheel-dir', type=Path, default=None,
                        help='put the wheel in this folder instead of '
                             'installing it (make wheelhouse)')
    parser.add_argument('pip_args', nargs='*',
                        help='more pip arguments (after --)')
    args = parser.parse_args(argv)
    problem = torch_problem()
    if problem:
        print(f'error: {problem}', file=sys.stderr)
        return 1
    if args.check_torch:
        return 0
    from pose_suite.models.cuda_driver import check_torch_driver
    driver = check_torch_driver()
    if driver:
        print(f'warning: {driver}', flush=True)
    machine = probe()
    build = decide(machine)
    print(build.note, flush=True)
    command = pip_command(build, args.pip_args, args.wheel_dir)
    if args.dry_run:
        shown = ' '.join(f'{k}={v}' if v is not None else f'-u {k}'
                         for k, v in build.env.items())
        print(f'env {shown} {" ".join(command)}')
        return 0
    status = subprocess.run(command, env=build_environment(build)).returncode
    if build.ops != 'cuda' or args.wheel_dir is not None:
        return status  # (a wheel for elsewhere is not installed here)
    # The CUDA ops are tried whenever nvcc's major is torch's (mmcv's
    # reports of CUDA 13 builds without ops, #3310, concern pip's build
    # isolation, which --no-build-isolation avoids); what decides is
    # whether mmcv.ops loads and its NMS runs on the GPU.
    why = 'the build failed' if status != 0 else cuda_nms_problem()
    if why is None:
        print('mmcv: its CUDA NMS runs on the GPU', flush=True)
        return 0
    cpu_build = decide(dataclasses.replace(machine, gpu_capabilities=()))
    print(f'mmcv: its CUDA ops do not work ({why}): building its CPU ops '
          'instead; the detector runs its NMS on the CPU, the models on the '
          'GPU', flush=True)
    return subprocess.run(
        pip_command(cpu_build, ['--force-reinstall', '--no-deps',
                                *args.pip_args]),
        env=build_environment(cpu_build)).returncode


def cuda_nms_problem() -> Optional[str]:
    """Why mmcv's NMS does not run on the GPU in a fresh process (the last
    line of its error), or None when it does."""
    check = subprocess.run([sys.executable, '-c', _CUDA_NMS_CHECK],
                           capture_output=True, text=True)
    if check.returncode == 0:
        return None
    return (check.stderr.strip().splitlines() or ['?'])[-1][:200]


#: Run after a CUDA build: mmcv's NMS on a CUDA tensor, as RTMDet calls it.
_CUDA_NMS_CHECK = '''
import torch
from mmcv.ops import nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]], device='cuda')
nms(boxes, torch.tensor([0.9, 0.8], device='cuda'), 0.5)
'''


if __name__ == '__main__':
    sys.exit(main())
