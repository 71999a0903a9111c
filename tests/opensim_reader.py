"""OpenSim 4.6's own readers of .trc and .mot files, for tests.

OpenSim's wheel (``opensim==4.6``, ~72 MB, its libraries inside) needs
numpy 2 and the project's venv has numpy < 2, so OpenSim lives in a venv of
its own: made once by :func:`opensim_python` under the test cache
(``$POSE_SUITE_TEST_CACHE``, by default ``~/.cache/pose-suite-tests``, as
``opensim-venv``) from the interpreter running the tests, and kept. It is
built in a temporary folder beside it and renamed into place only once
``import opensim`` works there, so a build that was killed is never used
(its leftover folder is removed by the next build); a file lock lets one
pytest worker build it while the others wait. A venv that cannot be made
(no Python for OpenSim's wheels, no way to the package index) skips the
tests that need it, with pip's own words; one that installs but cannot
``import opensim`` fails them.

:func:`read_with_opensim` runs a short script in that venv:
``opensim.TRCFileAdapter().read`` and ``opensim.TimeSeriesTableVec3`` for a
.trc, ``opensim.TimeSeriesTable`` (OpenSim's ``STOFileAdapter``, the
adapter of .mot and .sto files) for a .mot, and hands back by JSON what
OpenSim read.
"""
import contextlib
import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional, Tuple

import pytest
from conftest import MODEL_CACHE

#: What the venv is made with.
REQUIREMENTS = ('opensim==4.6', 'numpy>=2')
VENV = MODEL_CACHE / 'opensim-venv'
#: Seconds for pip (a 72 MB wheel and numpy) and for one reading.
INSTALL_TIMEOUT_S = 1200
READ_TIMEOUT_S = 120

_CHECK = 'import opensim; print(opensim.GetVersion())'

_READER = r'''
import json, math, sys
import opensim

def number(value):
    return None if math.isnan(value) else value

path = sys.argv[1]
if path.endswith('.trc'):
    tables = opensim.TRCFileAdapter().read(path)
    names = sorted(tables.keys())
    table = opensim.TimeSeriesTableVec3(path)
    values = []
    for row_index in range(table.getNumRows()):
        row = table.getRowAtIndex(row_index)
        values.append([[number(row[column][axis]) for axis in range(3)]
                       for column in range(table.getNumColumns())])
else:
    names = []
    table = opensim.TimeSeriesTable(path)
    values = []
    for row_index in range(table.getNumRows()):
        row = table.getRowAtIndex(row_index)
        values.append([number(row[column])
                       for column in range(table.getNumColumns())])
result = {
    'opensim_version': opensim.GetVersion(),
    'adapter_tables': names,
    'labels': list(table.getColumnLabels()),
    'times': [number(time) for time in table.getIndependentColumn()],
    'values': values,
    'metadata': {key: table.getTableMetaDataAsString(key)
                 for key in table.getTableMetaDataKeys()},
}
with open(sys.argv[2], 'w') as out:
    json.dump(result, out)
'''


class OpenSimError(RuntimeError):
    """OpenSim refused a file (its message in ``str()``)."""


def opensim_python() -> Path:
    """The Python of the OpenSim venv, made first if it is not there.

    Skips the calling test (``pytest.skip``, with the reason) when the venv
    cannot be made; fails it when OpenSim, installed, does not import."""
    python, reason = _venv()
    if python is None:
        pytest.skip(reason)
    return python


def read_with_opensim(path) -> dict:
    """What OpenSim 4.6 reads in the .trc or .mot file ``path``.

    Returns:
        ``{'opensim_version': str, 'adapter_tables': [...] (the tables
        TRCFileAdapter.read gives: ['markers']; [] for a .mot), 'labels':
        [M names], 'times': [T seconds], 'values': T rows of M [x, y, z]
        (.trc) or of A numbers (.mot), 'metadata': {key: text} (DataRate,
        Units, ...; inDegrees, nRows, ...)}``, NaN as ``None``.
    Raises:
        OpenSimError: OpenSim refused the file.
    """
    python = opensim_python()
    with tempfile.TemporaryDirectory() as folder:
        # Not on stdout: OpenSim's SWIG wrappers print there ("swig/python
        # detected a memory leak of type 'SimTK::RowVectorView_<...> *'").
        result = Path(folder) / 'read.json'
        done = subprocess.run(
            [str(python), '-c', _READER, str(Path(path).resolve()),
             str(result)],
            capture_output=True, text=True, timeout=READ_TIMEOUT_S, cwd='/',
            env=_environment())
        if done.returncode != 0:
            raise OpenSimError(done.stderr.strip())
        return json.loads(result.read_text())


def _environment() -> dict:
    """This process's environment less what would make the venv's Python
    or pip see another Python's packages or the project's numpy < 2."""
    environment = dict(os.environ)
    for name in ('PYTHONPATH', 'PYTHONHOME', 'PIP_CONSTRAINT',
                 'PIP_REQUIREMENT', 'VIRTUAL_ENV'):
        environment.pop(name, None)
    environment['PYTHONNOUSERSITE'] = '1'
    return environment


@functools.lru_cache(maxsize=None)
def _venv() -> Tuple[Optional[Path], str]:
    """(the venv's Python, '') or (None, why it cannot be made); tried once
    per test process."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with _locked(VENV.parent / 'opensim-venv.lock'):
        python = VENV / 'bin' / 'python'
        if VENV.exists():
            if _imports(python)[0]:
                return python, ''
            # Its interpreter is gone, or it was damaged: made again.
            shutil.rmtree(VENV)
        for leftover in VENV.parent.glob(f'.{VENV.name}-*'):
            shutil.rmtree(leftover, ignore_errors=True)  # a killed build
        building = Path(tempfile.mkdtemp(prefix=f'.{VENV.name}-',
                                         dir=VENV.parent))
        try:
            reason = _build(building)
            if reason:
                return None, reason
            imports, said = _imports(building / 'bin' / 'python')
            assert imports, (f'{" ".join(REQUIREMENTS)} installed in '
                             f'{building} but `import opensim` fails: '
                             f'{said}')
            os.rename(building, VENV)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        imports, said = _imports(python)
        assert imports, f'`import opensim` fails in {VENV}: {said}'
        return python, ''


def _build(folder: Path) -> str:
    """Make a venv in ``folder`` with :data:`REQUIREMENTS`: '' or why
    not."""
    interpreter = getattr(sys, '_base_executable', None) or sys.executable
    steps = (
        [interpreter, '-m', 'venv', str(folder)],
        [str(folder / 'bin' / 'python'), '-m', 'pip', 'install', '--quiet',
         '--disable-pip-version-check', *REQUIREMENTS],
    )
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True,
                                  timeout=INSTALL_TIMEOUT_S, cwd='/',
                                  env=_environment())
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f'cannot make the OpenSim venv: {" ".join(step)}: {exc}'
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip())[-1500:]
            return (f'cannot make the OpenSim venv ({" ".join(step)} '
                    f'exited {done.returncode}): {said}')
    return ''


def _imports(python: Path) -> Tuple[bool, str]:
    """Whether ``import opensim`` works in ``python``, and what it said
    (the version, or the error)."""
    try:
        done = subprocess.run([str(python), '-c', _CHECK],
                              capture_output=True, text=True,
                              timeout=READ_TIMEOUT_S, cwd='/',
                              env=_environment())
    except OSError as exc:
        return False, str(exc)
    return done.returncode == 0, (done.stdout + done.stderr).strip()


@contextlib.contextmanager
def _locked(lock_path: Path):
    """Hold an exclusive lock on ``lock_path`` (waits for other
    processes)."""
    with open(lock_path, 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
