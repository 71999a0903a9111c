"""``make install TORCH=system`` where ``python3`` is a virtual
environment's Python: the venv it makes sees that environment's packages
(torch there on GPU images), not only the base interpreter's
(pose_suite/models/parent_venv.py). Shown with real venvs: one made from
this test's Python (itself a venv), and the project's venv made from that
one by the Makefile's own target."""
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.install


def python_of(venv):
    return str(venv / 'bin' / 'python')


def sees(venv, module):
    """What ``module.WHERE`` says in ``venv``'s Python, or None."""
    done = subprocess.run(
        [python_of(venv), '-c', f'import {module}; print({module}.WHERE)'],
        capture_output=True, text=True, cwd='/')
    return done.stdout.strip() if done.returncode == 0 else None


def site_packages(venv):
    return subprocess.run(
        [python_of(venv), '-c',
         'import sysconfig; print(sysconfig.get_path("purelib"))'],
        capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def parent_venv(tmp_path, request):
    """A venv made from this test's Python (a venv made from a venv: the
    chain of a GPU image's venv and the suite's), with a package of its
    own."""
    if sys.prefix == sys.base_prefix:
        pytest.skip('the tests do not run in a virtual environment')
    parent = tmp_path / getattr(request, 'param', 'image-venv')
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    str(parent)], check=True)
    subprocess.run([sys.executable, '-m', 'pose_suite.models.parent_venv',
                    str(parent)], check=True, cwd=ROOT)
    from pathlib import Path
    folder = Path(site_packages(parent))
    (folder / 'image_only.py').write_text("WHERE = 'image venv'\n")
    (folder / 'both.py').write_text("WHERE = 'image venv'\n")
    return parent


def test_a_venv_made_from_a_venv_sees_its_packages(parent_venv, tmp_path):
    venv = tmp_path / 'suite-venv'
    if shutil.which('make') is None:
        pytest.skip('make is not installed')
    done = subprocess.run(
        ['make', '--no-print-directory', '-C', str(ROOT), 'system-venv',
         f'PYTHON={python_of(parent_venv)}', f'VENV={venv}'],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'also sees the packages of' in done.stdout
    from pathlib import Path
    (Path(site_packages(venv)) / 'both.py').write_text("WHERE = 'suite'\n")
    assert sees(venv, 'image_only') == 'image venv'
    assert sees(venv, 'both') == 'suite'  # its own packages come first
    # And, through the parent's own link, this test's venv (torch here).
    found = subprocess.run(
        [python_of(venv), '-c', 'import importlib.util, sys; '
         'print(importlib.util.find_spec("torch").origin)'],
        capture_output=True, text=True, cwd='/')
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith(sys.prefix)
    # Made again (a second `make install`): the link is rewritten, not
    # doubled, and the venv kept.
    again = subprocess.run(
        ['make', '--no-print-directory', '-C', str(ROOT), 'system-venv',
         f'PYTHON={python_of(parent_venv)}', f'VENV={venv}'],
        capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert sees(venv, 'both') == 'suite'
    lines = (Path(site_packages(venv)) /
             'pose_suite_parent_venv.pth').read_text().splitlines()
    assert len(lines) == len(set(lines)) == 2  # the image venv, this one


@pytest.mark.parametrize('parent_venv', ["image venv 'x'"], indirect=True)
def test_a_parent_with_an_odd_name_is_linked(parent_venv, tmp_path):
    """A space and a quote in the parent's path (make cannot take such a
    path; the module can)."""
    venv = tmp_path / 'suite'
    subprocess.run([python_of(parent_venv), '-m', 'venv', '--without-pip',
                    '--system-site-packages', str(venv)], check=True)
    subprocess.run([python_of(parent_venv), '-m',
                    'pose_suite.models.parent_venv', str(venv)], check=True,
                   cwd=ROOT)
    assert sees(venv, 'image_only') == 'image venv'


def test_without_the_link_the_parent_is_not_seen(parent_venv, tmp_path):
    """What ``python -m venv --system-site-packages`` alone gives (the
    fault): only the base interpreter's packages."""
    venv = tmp_path / 'plain'
    subprocess.run([python_of(parent_venv), '-m', 'venv', '--without-pip',
                    '--system-site-packages', str(venv)], check=True)
    assert sees(venv, 'image_only') is None


def test_a_parent_that_is_no_venv_writes_nothing(tmp_path):
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    str(venv)], check=True)
    done = subprocess.run(
        [sys._base_executable, '-I', '-c',
         'import sys; sys.path.insert(0, sys.argv[1]); '
         'from pose_suite.models.parent_venv import main; '
         'sys.exit(main([sys.argv[2]]))', str(ROOT), str(venv)],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ''
    assert not list(venv.glob('lib/python*/site-packages/*.pth'))
