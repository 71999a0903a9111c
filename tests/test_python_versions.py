"""``make install`` on other Pythons (pyenv's, where this machine has them):
a version it does not work with stops it at once in one line, before
anything is made; on Python 3.12, where xtcocotools has no wheel, the
Makefile's own xtcocotools line builds it against the pinned numpy<2 and
its mask functions work (evaluation needs them).

On 3.10, 3.11 and 3.12, fast mode's runtimes (OpenVINO, ONNX Runtime and
onnx, as requirements.txt pins them per Python) install beside numpy<2 and
run an ONNX convolution to the same numbers.

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


#: A 3x3 convolution as ONNX, made with onnx's own helpers (no torch in
#: these venvs), run through both runtimes against numpy.
_RUNTIMES_RUN = """
import numpy as np, onnx, onnx.helper as h, openvino, onnxruntime
weights = np.random.RandomState(0).randn(4, 3, 3, 3).astype(np.float32)
graph = h.make_graph(
    [h.make_node('Conv', ['x', 'w'], ['y'], pads=[1, 1, 1, 1])], 'conv',
    [h.make_tensor_value_info('x', onnx.TensorProto.FLOAT, ['n', 3, 8, 8])],
    [h.make_tensor_value_info('y', onnx.TensorProto.FLOAT, ['n', 4, 8, 8])],
    [onnx.numpy_helper.from_array(weights, 'w')])
model = h.make_model(graph, opset_imports=[h.make_opsetid('', 17)])
model.ir_version = 8
onnx.save(model, 'conv.onnx')
x = np.random.RandomState(1).randn(2, 3, 8, 8).astype(np.float32)
padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
expected = np.zeros((2, 4, 8, 8), np.float32)
for i in range(3):
    for j in range(3):
        expected += np.einsum('nchw,oc->nohw', padded[:, :, i:i + 8, j:j + 8],
                              weights[:, :, i, j])
session = onnxruntime.InferenceSession('conv.onnx',
                                       providers=['CPUExecutionProvider'])
compiled = openvino.Core().compile_model(  # its default: bf16 where native
    'conv.onnx', 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
for y in (session.run(None, {'x': x})[0], compiled({0: x})[0]):
    assert np.abs(y - expected).max() < 1e-4, np.abs(y - expected).max()
print(np.__version__, onnxruntime.__version__, openvino.__version__)
"""


@pytest.mark.parametrize('minor', ['3.10', '3.11', '3.12'])
def test_the_runtimes_install_and_run_on_each_python(minor, tmp_path):
    python = _pyenv_python(minor)
    venv = tmp_path / 'venv'
    subprocess.run([str(python), '-m', 'venv', str(venv)], check=True,
                   timeout=300)
    wanted = [line for line in (ROOT / 'requirements.txt').read_text()
              .splitlines() if line.startswith(('openvino', 'onnx'))]
    assert len(wanted) == 4, wanted  # openvino, onnxruntime x2, onnx
    (tmp_path / 'runtimes.txt').write_text('\n'.join(wanted) + '\n')
    installed = subprocess.run(
        [str(venv / 'bin' / 'python'), '-m', 'pip', '-q',
         '--disable-pip-version-check', 'install', '--only-binary=:all:',
         '-c', str(ROOT / 'constraints.txt'), '-r',
         str(tmp_path / 'runtimes.txt')],
        capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-2000:]
    ran = subprocess.run([str(venv / 'bin' / 'python'), '-c', _RUNTIMES_RUN],
                         cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    numpy_version, onnxruntime_version, _ = ran.stdout.split()
    assert numpy_version.startswith('1.')
    assert onnxruntime_version == ('1.23.2' if minor == '3.10' else '1.32.0')
