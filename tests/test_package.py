"""pyproject.toml: ``pip install --no-deps --no-build-isolation -e .``
gives the ``pose-analysis`` and ``pose-config`` commands, equal to the
scripts, and makes the services and ``pose_suite`` importable from any
folder. Shown in a real venv made from this test's Python (its packages
seen through pose_suite/models/parent_venv.py, so nothing is downloaded),
each command run from a folder outside the project."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import COCO_IMAGES, ROOT, data_file

pytestmark = pytest.mark.install

MODULES = ('pose_suite', 'detection_service', 'pose_extraction_service',
           'pose_analysis_service', 'creating_config')


def run(command, cwd, timeout=300) -> subprocess.CompletedProcess:
    """``command`` in ``cwd``, with no PYTHONPATH (what is importable is
    the venv's own doing)."""
    env = {key: value for key, value in os.environ.items()
           if key != 'PYTHONPATH'}
    return subprocess.run([str(part) for part in command], cwd=cwd, env=env,
                          capture_output=True, timeout=timeout)


@pytest.fixture(scope='module')
def venv(tmp_path_factory):
    """A venv that sees this test's packages (torch, mmcv, ...) with the
    project installed into it as the README says."""
    if sys.prefix == sys.base_prefix:
        pytest.skip('the tests do not run in a virtual environment')
    venv = tmp_path_factory.mktemp('package') / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    '--system-site-packages', str(venv)], check=True,
                   timeout=120)
    subprocess.run([sys.executable, '-m', 'pose_suite.models.parent_venv',
                    str(venv)], check=True, cwd=ROOT, capture_output=True,
                   timeout=120)
    done = run([venv / 'bin' / 'python', '-m', 'pip', 'install', '-q',
                '--no-deps', '--no-build-isolation', '--no-index', '-e',
                ROOT], cwd=ROOT)
    assert done.returncode == 0, done.stderr.decode()
    return venv


@pytest.fixture
def elsewhere(tmp_path):
    """A folder outside the project to run commands from."""
    folder = tmp_path / 'elsewhere'
    folder.mkdir()
    assert not folder.resolve().is_relative_to(ROOT)
    return folder


def test_the_modules_import_from_any_folder(venv, elsewhere):
    code = ('import ' + ', '.join(MODULES) + '; print(*(m.__file__ for m '
            'in (' + ', '.join(MODULES) + ')), sep="\\n")')
    # Without the install, the project's venv alone does not find them.
    assert run([sys.executable, '-c', code], elsewhere).returncode != 0
    done = run([venv / 'bin' / 'python', '-c', code], elsewhere)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == [
        str(ROOT / 'pose_suite' / '__init__.py'),
        *(str(ROOT / f'{name}.py') for name in MODULES[1:])]


@pytest.mark.parametrize('command, script', [
    (['pose-analysis', '--help'], ['pose_analysis_service.py', '--help']),
    (['pose-config', '--help'], ['creating_config.py', '--help']),
    (['pose-analysis', '--frame-step', 'x'],
     ['pose_analysis_service.py', '--frame-step', 'x']),
    # No config.json in this folder: the same one-line error, exit 1.
    (['pose-analysis', '--quiet'], ['pose_analysis_service.py', '--quiet']),
])
def test_the_commands_print_what_the_scripts_print(venv, elsewhere, command,
                                                   script):
    ran = run([venv / 'bin' / command[0], *command[1:]], elsewhere)
    expected = run([sys.executable, ROOT / script[0], *script[1:]],
                   elsewhere)
    assert (ran.returncode, ran.stdout, ran.stderr) == \
        (expected.returncode, expected.stdout, expected.stderr)
    if '--help' in command:
        assert expected.returncode == 0
        assert expected.stdout.startswith(
            f'usage: {script[0]} [-h] [--config CONFIG]'.encode())
    else:
        assert expected.returncode in (1, 2) and b'error: ' in expected.stderr


def test_a_run_through_the_command_equals_the_scripts(venv, model_files,
                                                      tmp_path):
    """The same config (relative paths: taken from its own folder), run
    from two other folders, each with ``--output`` relative to where it
    runs: the command and the script write the same result."""
    conf = tmp_path / 'conf'
    conf.mkdir()
    values = {key: os.path.relpath(model_files[key], conf) for key in (
        'det_config', 'det_checkpoint', 'pose_config', 'pose_checkpoint')}
    values.update(input=os.path.relpath(data_file(COCO_IMAGES[0]), conf),
                  output='never-used/', device='cpu', bbox_thr=0.0,
                  report=False, quiet=True)
    (conf / 'cfg.json').write_text(json.dumps(values))
    results = []
    for name, command in (
            ('command', [venv / 'bin' / 'pose-analysis']),
            ('script', [sys.executable, ROOT / 'pose_analysis_service.py'])):
        folder = tmp_path / name
        folder.mkdir()
        done = run([*command, '--config', '../conf/cfg.json', '--output',
                    'result.json'], folder)
        assert (done.returncode, done.stdout) == (0, b''), \
            done.stderr.decode()
        results.append(json.loads((folder / 'result.json').read_text()))
    assert not (conf / 'never-used').exists()
    by_command, by_script = results
    # The input, named relative to the config's folder, is found.
    assert Path(by_command['meta']['source']).resolve() == \
        data_file(COCO_IMAGES[0]).resolve()
    assert len(by_command['frames']) == 1
    assert len(by_command['frames'][0]['persons']) == 2  # the test detector
    assert by_command['frames'] == by_script['frames']
    for result in results:
        del result['meta']['run']  # when, how long, the result's id
    assert by_command == by_script
