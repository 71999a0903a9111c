"""``make install`` on other Pythons (pyenv's, where this machine has them):
a version it does not work with stops it at once in one line, before
anything is made; on Python 3.12, where xtcocotools has no wheel, the
Makefile's own xtcocotools line builds it against the pinned numpy<2 and
its mask functions work (evaluation needs them).

Not verified here: torch and mmcv on 3.12 (PyPI's torch 2.13.0 for 3.12
is the CUDA build, gigabytes, and mmcv compiles for 15 minutes).
"""
import os
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.install

PYENV = Path.home() / '.pyenv' / 'versions'


def _pyenv_python(minor: str):
    found = sorted(PYENV.glob(f'{minor}.*/bin/python'))
    if not found:
        pytest.skip(f'no Python {minor} under {PYENV} on this machine')
    return found[-1]


def test_an_unsupported_python_stops_make_install_in_one_line(tmp_path):
    python = _pyenv_python('3.9')
    venv = tmp_path / 'venv'
    made = subprocess.run(['make', '-C', str(ROOT), 'install',
                           f'PYTHON={python}', f'VENV={venv}'],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode != 0
    errors = [line for line in made.stderr.splitlines()
              if line.startswith('error:')]
    assert len(errors) == 1, made.stderr
    assert 'Python 3.9' in errors[0] and '3.11' in errors[0]
    assert not venv.exists()


def test_xtcocotools_on_python_312_uses_the_pinned_numpy(tmp_path):
    python = _pyenv_python('3.12')
    venv = tmp_path / 'venv'
    subprocess.run([str(python), '-m', 'venv', str(venv)], check=True,
                   timeout=300)
    pip = [str(venv / 'bin' / 'python'), '-m', 'pip', '-q',
           '--disable-pip-version-check']
    # What the Makefile installs before it (its first pip line, less torch).
    subprocess.run([*pip, 'install', '-c', str(ROOT / 'constraints.txt'),
                    'setuptools<81', 'numpy<2', 'wheel', 'cython'],
                   check=True, timeout=600, capture_output=True)
    (venv / 'constraints.txt').write_text(
        (ROOT / 'constraints.txt').read_text())
    dry = subprocess.run(['make', '-n', '-C', str(ROOT), 'install',
                          f'PYTHON={python}', f'VENV={venv}'],
                         capture_output=True, text=True, timeout=120,
                         check=True).stdout
    line = next(line for line in dry.splitlines()
                if line.rstrip().endswith('xtcocotools'))
    # Built now, not taken from pip's cache (a wheel built another way).
    built = subprocess.run(line, shell=True, capture_output=True, text=True,
                           timeout=900, cwd=ROOT,
                           env={**os.environ, 'PIP_NO_CACHE_DIR': '1'})
    assert built.returncode == 0, built.stderr[-2000:]
    checked = subprocess.run(
        [str(venv / 'bin' / 'python'), '-c',
         'import numpy as np, xtcocotools.mask as mask\n'
         'rle = mask.encode(np.asfortranarray(np.ones((4, 5, 1), np.uint8)))\n'
         'print(np.__version__, *mask.area(rle))'],
        capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr[-2000:]
    numpy_version, area = checked.stdout.split()
    assert numpy_version.startswith('1.') and area == '20'
