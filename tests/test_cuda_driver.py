"""The NVIDIA driver against torch's CUDA (pose_suite/models/cuda_driver.py),
with a made-up nvidia-smi on PATH and a made-up /proc file: one line
saying what to do where torch's CUDA needs a newer driver."""

import pytest

from pose_suite.models import cuda_driver
from pose_suite.models.cuda_driver import driver_problem, driver_version


@pytest.fixture
def fake_driver(tmp_path, monkeypatch):
    """Returns a function installing a driver of a version: as nvidia-smi
    on PATH (``smi=True``) or only as /proc/driver/nvidia/version."""
    monkeypatch.setattr(cuda_driver, 'PROC_VERSION', tmp_path / 'version')
    folder = tmp_path / 'bin'
    folder.mkdir()
    monkeypatch.setenv('PATH', f'{folder}:/usr/bin:/bin')

    def install(version, smi=True):
        if smi:
            tool = folder / 'nvidia-smi'
            tool.write_text(f'#!/bin/sh\necho "{version}"\n')
            tool.chmod(0o755)
        (tmp_path / 'version').write_text(
            'NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  '
            f'{version}  Release Build  (dvs-builder@U16)  Thu Jul 10\n'
            'GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n')
    return install


def test_no_driver_no_version(fake_driver):
    assert driver_version() is None


@pytest.mark.parametrize('smi', [True, False])
def test_driver_version_from_nvidia_smi_or_proc(fake_driver, smi):
    fake_driver('550.54.14', smi=smi)
    assert driver_version() == '550.54.14'


@pytest.mark.parametrize('torch_cuda, driver, too_old', [
    ('13.0', '550.54.14', True), ('13.0', '575.57.08', True),
    ('13.0', '580.65.06', False), ('12.8', '550.54.14', False),
    ('12.1', '520.61.05', True), (None, '450.80.02', False),
    ('13.0', None, False)])
def test_driver_against_torch_cuda(torch_cuda, driver, too_old):
    problem = driver_problem('2.13.0', torch_cuda, driver)
    assert (problem is not None) == too_old
    if too_old:
        assert '\n' not in problem
        assert f'driver {driver}' in problem and 'TORCH=system' in problem


def test_install_says_what_to_do_with_an_old_driver(fake_driver,
                                                    monkeypatch, capsys):
    """``make install``'s mmcv step, torch a CUDA 13 build that sees no GPU
    under driver 550: its first line says why and what to do."""
    import torch

    from pose_suite.models import install_mmcv
    fake_driver('550.54.14')
    monkeypatch.setattr(torch.version, 'cuda', '13.0')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert install_mmcv.main(['--dry-run']) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith('warning: torch ') and '>= 580' in first
    assert 'driver 550.54.14' in first


def test_gpu_check_refuses_with_the_driver_line(fake_driver, monkeypatch):
    import torch
    from test_gpu_check import gpu_check
    fake_driver('550.54.14')
    monkeypatch.setattr(torch.version, 'cuda', '13.0')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit, match='needs NVIDIA driver >= 580'):
        gpu_check().environment('cuda')
