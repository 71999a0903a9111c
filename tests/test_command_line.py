"""The flags of pose_analysis_service.py and creating_config.py: a flag
error is one ``error:`` line (exit status 2), not argparse's usage block;
``--angles`` takes true/false, so a config with angles on can be turned
off from the command line; a video's progress bar shows its name on one
line."""
import io
import sys

import pytest
from conftest import COCO_IMAGES, assert_one_line_error, data_file, run_process

import creating_config
import pose_analysis_service
from pose_suite.errors import SuiteError


@pytest.mark.parametrize('argv, words', [
    (['--bogus'], ['unrecognized arguments: --bogus']),
    (['--executor', 'nope'], ['--executor', "invalid choice: 'nope'"]),
    (['--format'], ['--format', 'expected one argument']),
    (['--angles', 'maybe'], ['--angles', 'true or false', 'maybe']),
])
def test_flag_errors_are_one_line(argv, words, capsys):
    with pytest.raises(SystemExit) as exited:
        pose_analysis_service.main(argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.count('\n') == 1 and \
        captured.err.startswith('error: '), captured.err
    for word in words:
        assert word in captured.err


def test_creating_config_flag_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as exited:
        creating_config.main(['--bbox-thr', '0.5', '--nonsense'])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == 'error: unrecognized arguments: --nonsense (see --help)\n'


def test_flag_error_as_a_user_sees_it():
    result = run_process('pose_analysis_service.py', '--input')
    assert_one_line_error(result, '--input', 'expected one argument')
    assert result.returncode == 2 and result.stdout == ''
    assert 'usage' not in result.stderr


class _Recorder:
    """A service class that keeps the config it is given, then stops."""

    configs = []

    def __init__(self, config):
        self.configs.append(config)
        raise SuiteError('recorded')


@pytest.mark.parametrize('flags, angles', [
    ([], None), (['--angles', 'false'], False), (['--angles', 'no'], False),
    (['--no-angles'], False), (['--angles'], True),
    (['--angles', 'true', '--quiet'], True)])
def test_angles_flag_turns_the_config_on_and_off(
        flags, angles, config_values, write_config, tmp_path):
    from pose_suite.cli import run_command
    for on_in_config in (True, False):
        config = write_config({**config_values, 'angles': on_in_config,
                               'input': str(data_file(COCO_IMAGES[0]))})
        _Recorder.configs.clear()
        assert run_command(['--config', str(config), *flags],
                           _Recorder) == 1
        expected = on_in_config if angles is None else angles
        assert [c.angles for c in _Recorder.configs] == [expected]


def test_progress_bar_names_the_file_on_one_line(monkeypatch):
    from pose_suite.media.sources import FrameSource
    from pose_suite.service.frames import progress_bar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, 'stderr', terminal)
    source = FrameSource('/clips/new\nline\u202e.mp4', 'video', 64, 48,
                         25.0, 10)
    bar = progress_bar(source, 0, quiet=False, in_batch=False)
    bar.update(3)
    bar.close()
    drawn = terminal.getvalue()
    assert 'new\\nline\\u202e.mp4: ' in drawn and '3/10' in drawn
    assert '\u202e' not in drawn and drawn.rstrip('\n').count('\n') == 0
