"""``make install``'s mmcv build decision (pose_suite/models/install_mmcv.py), on
made-up machines and on this one with a made-up nvcc."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pose_suite.models.install_mmcv import (Machine, _nvcc_facts,
                                            build_environment, decide,
                                            pip_command, probe)

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ('compute_75', 'compute_80', 'compute_86', 'compute_89',
         'compute_90')


def gpu_machine(**changes) -> Machine:
    """A workstation with one RTX 3090 (8.6), torch for CUDA 12.1 and the
    CUDA 12.4 toolkit in /usr/local/cuda-12.4."""
    facts = dict(gpu_capabilities=((8, 6),), torch_cuda='12.1',
                 torch_version='2.13.0+cpu',
                 nvcc='/usr/local/cuda-12.4/bin/nvcc', nvcc_cuda='12.4',
                 nvcc_archs=ARCHS, cpu_count=16, memory_gib=64.0)
    facts.update(changes)
    return Machine(**facts)


def assert_cpu_ops(build, why: str):
    assert build.ops == 'cpu'
    # mmcv's setup.py builds CUDA ops if torch sees a GPU or FORCE_CUDA=1:
    # both must be off, not FORCE_CUDA=0.
    assert build.env['CUDA_VISIBLE_DEVICES'] == ''
    assert build.env['FORCE_CUDA'] is None
    assert build.env['MMCV_WITH_OPS'] == '1'
    assert build.note.startswith('mmcv: building its CPU ops (')
    assert why in build.note
    assert '\n' not in build.note


def test_cuda_ops_for_the_local_gpu_only():
    build = decide(gpu_machine())
    assert build.ops == 'cuda'
    assert build.env['TORCH_CUDA_ARCH_LIST'] == '8.6'
    assert build.env['FORCE_CUDA'] == '1'
    assert build.env['CUDA_HOME'] == str(Path('/usr/local/cuda-12.4'))
    assert build.env['MAX_JOBS'] == '16'
    assert 'CUDA_VISIBLE_DEVICES' not in build.env
    assert '8.6' in build.note and 'nvcc 12.4' in build.note
    # Its own pip cache: a CPU-ops wheel is never taken for it.
    assert build.cache == 'cuda12.1-sm8.6-torch2.13.0+cpu'
    assert pip_command(build, [])[-2].endswith(
        'pose-suite/pip-mmcv-cuda12.1-sm8.6-torch2.13.0+cpu')


def test_several_gpus_give_each_architecture_once():
    build = decide(gpu_machine(gpu_capabilities=((8, 6), (7, 5), (8, 6))))
    assert build.env['TORCH_CUDA_ARCH_LIST'] == '7.5;8.6'


def test_jobs_bounded_by_memory_and_cores():
    assert decide(gpu_machine(memory_gib=7.5)).env['MAX_JOBS'] == '3'
    assert decide(gpu_machine(cpu_count=2)).env['MAX_JOBS'] == '2'
    assert decide(gpu_machine(memory_gib=1.0)).env['MAX_JOBS'] == '1'
    assert decide(Machine(cpu_count=2, memory_gib=24)).env['MAX_JOBS'] \
        == '2'


@pytest.mark.parametrize('changes, why', [
    ({'gpu_capabilities': ()}, 'no CUDA device visible'),
    ({'torch_cuda': None}, 'torch is a CPU build'),
    ({'nvcc': None, 'nvcc_cuda': None, 'nvcc_archs': ()},
     'no CUDA toolkit (nvcc) was found'),
    ({'nvcc_cuda': '11.8'}, 'nvcc is CUDA 11.8 and torch was built with '
     'CUDA 12.1'),
    ({'gpu_capabilities': ((12, 0),)}, 'compute capability 12.0'),
])
def test_cpu_ops_when_cuda_ops_cannot_be_built(changes, why):
    build = decide(gpu_machine(**changes))
    assert_cpu_ops(build, why)
    assert build.cache == 'cpu-torch2.13.0+cpu'


def test_each_torch_has_its_own_wheel_cache():
    """A wheel compiled against one torch does not load with another:
    pip, which caches by mmcv's version only, must not hand it over."""
    caches = {decide(gpu_machine(torch_version=v, **changes)).cache
              for v in ('2.13.0+cpu', '2.5.1+cu121')
              for changes in ({}, {'nvcc': None})}
    assert len(caches) == 4


def test_a_gpu_without_toolkit_says_the_detector_still_runs_there():
    note = decide(gpu_machine(nvcc=None)).note
    assert 'NMS on the CPU' in note and 'CUDA 12.1' in note


def test_unknown_arch_list_does_not_refuse():
    """An nvcc too old for --list-gpu-arch says nothing: it is trusted."""
    assert decide(gpu_machine(nvcc_archs=())).ops == 'cuda'


def test_build_environment_removes_and_sets(monkeypatch):
    monkeypatch.setenv('FORCE_CUDA', '0')
    env = build_environment(decide(Machine()))
    assert 'FORCE_CUDA' not in env
    assert env['CUDA_VISIBLE_DEVICES'] == ''
    assert env['PATH'] == os.environ['PATH']


@pytest.fixture
def fake_nvcc(tmp_path):
    """An nvcc that prints what CUDA 12.4's prints."""
    folder = tmp_path / 'cuda-12.4' / 'bin'
    folder.mkdir(parents=True)
    nvcc = folder / 'nvcc'
    nvcc.write_text(
        '#!/bin/sh\n'
        'if [ "$1" = "--list-gpu-arch" ]; then\n'
        '  printf "compute_50\\ncompute_75\\ncompute_86\\ncompute_90\\n"\n'
        'else\n'
        '  echo "nvcc: NVIDIA (R) Cuda compiler driver"\n'
        '  echo "Cuda compilation tools, release 12.4, V12.4.131"\n'
        'fi\n')
    nvcc.chmod(0o755)
    return nvcc


def test_nvcc_facts_read_from_its_output(fake_nvcc):
    assert _nvcc_facts(str(fake_nvcc)) == (
        '12.4', ('compute_50', 'compute_75', 'compute_86', 'compute_90'))


def test_probe_finds_nvcc_through_cuda_home(fake_nvcc, monkeypatch):
    monkeypatch.setenv('CUDA_HOME', str(fake_nvcc.parent.parent))
    machine = probe()
    assert machine.nvcc == str(fake_nvcc)
    assert machine.nvcc_cuda == '12.4'
    import torch
    assert machine.torch_cuda == torch.version.cuda
    assert machine.torch_version == torch.__version__
    assert len(machine.gpu_capabilities) == (
        torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_dry_run_on_this_machine(fake_nvcc):
    """The step ``make install`` runs, as a command, with the made-up
    toolkit first on PATH: one line of decision, the pip command."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('CUDA_HOME', 'CUDA_PATH')}
    env['PATH'] = f'{fake_nvcc.parent}:{env["PATH"]}'
    done = subprocess.run(
        [sys.executable, '-m', 'pose_suite.models.install_mmcv', '--dry-run', '--',
         '-q', '-c', 'constraints.txt'], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    note, command = done.stdout.strip().splitlines()
    import torch
    if not torch.cuda.is_available():
        assert note == 'mmcv: building its CPU ops (no CUDA device visible)'
        assert 'CUDA_VISIBLE_DEVICES=' in command
        assert '-u FORCE_CUDA' in command
    assert command.endswith(f'pip-mmcv-cpu-torch{torch.__version__} -q -c '
                            'constraints.txt mmcv==2.1.0')


@pytest.mark.parametrize('version, refused', [
    ('2.13.0+cpu', False), ('2.5.1+cu124', False), ('2.4.1', True),
    ('1.13.1+cu117', True), ('2.10.0a0+git1234', False)])
def test_torch_version_check(monkeypatch, version, refused):
    import torch

    from pose_suite.models.install_mmcv import torch_problem
    monkeypatch.setattr(torch, '__version__', version)
    problem = torch_problem()
    assert (problem is not None) == refused
    if refused:
        assert version in problem and '>= 2.5' in problem


def test_check_torch_command_passes_here():
    done = subprocess.run([sys.executable, '-m', 'pose_suite.models.install_mmcv',
                           '--check-torch'], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == '', done.stderr


def test_cuda_13_with_nvcc_13_tries_the_cuda_ops():
    """mmcv's CUDA 13 reports (#3310) concern build isolation, which the
    install turns off: the CUDA ops are tried, and checked after."""
    build = decide(gpu_machine(torch_cuda='13.0', nvcc_cuda='13.0'))
    assert build.ops == 'cuda'


@pytest.mark.parametrize('build_status, nms_error, fallback', [
    (0, None, False), (1, None, True),
    (0, 'RuntimeError: nms_impl: implementation for device cuda:0 not '
        'found', True),
    (0, "ModuleNotFoundError: No module named 'mmcv._ext'", True)])
def test_cuda_ops_checked_on_the_gpu_and_cpu_ops_as_fallback(
        monkeypatch, capsys, build_status, nms_error, fallback):
    """After a CUDA-ops build, mmcv's NMS is run on the GPU in a fresh
    process; a failed build or a failed NMS rebuilds with the CPU ops
    (forced over the installed one), with one line."""
    from pose_suite.models import cuda_driver, install_mmcv
    calls = []

    def run(command, env=None, **kwargs):
        calls.append((command, env))
        if command[1] == '-c':  # the NMS check
            return subprocess.CompletedProcess(
                command, 1 if nms_error else 0, '',
                f'Traceback ...\n{nms_error}' if nms_error else '')
        return subprocess.CompletedProcess(
            command, build_status if len(calls) == 1 else 0)

    monkeypatch.setattr(install_mmcv, 'probe', lambda: gpu_machine(
        torch_cuda='13.0', nvcc_cuda='13.0'))
    monkeypatch.setattr(install_mmcv.subprocess, 'run', run)
    monkeypatch.setattr(cuda_driver, 'check_torch_driver', lambda: None)
    assert install_mmcv.main(['--', '-q']) == 0
    said = capsys.readouterr().out.strip().splitlines()
    assert said[0].startswith('mmcv: building its CUDA ops')
    builds = [(c, env) for c, env in calls if c[1] != '-c']
    assert builds[0][1]['FORCE_CUDA'] == '1'
    if not fallback:
        assert said[1] == 'mmcv: its CUDA NMS runs on the GPU'
        assert len(builds) == 1
        return
    assert len(said) == 2 and said[1].startswith(
        'mmcv: its CUDA ops do not work (')
    assert (nms_error or 'the build failed') in said[1]
    assert len(builds) == 2
    command, env = builds[1]
    assert env['CUDA_VISIBLE_DEVICES'] == '' and 'FORCE_CUDA' not in env
    assert '--force-reinstall' in command and '-q' in command
    assert 'pip-mmcv-cpu-torch' in ' '.join(command)
