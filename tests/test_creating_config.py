"""creating_config.py and the config.json schema (pose_suite.config)."""
import json
import warnings

import pytest
from conftest import ROOT, assert_one_line_error, run_cli

from pose_suite.config import DEFAULTS, load_config
from pose_suite.errors import ConfigError

import creating_config

#: What creating_config.py writes in a folder outside the project: the
#: defaults, the model files named by the project's full paths.
ELSEWHERE = {**DEFAULTS, **{key: str(ROOT / DEFAULTS[key])
                            for key in creating_config.MODEL_KEYS}}


def test_writes_complete_default_config(tmp_path):
    path = tmp_path / 'config.json'
    result = run_cli('creating_config.py', '--config', path)
    assert result.returncode == 0, result.stderr
    assert json.loads(path.read_text()) == ELSEWHERE
    assert DEFAULTS['bbox_thr'] == DEFAULTS['nms_thr'] == \
        DEFAULTS['kpt_thr'] == 0.3


def test_a_config_written_elsewhere_names_the_projects_model_files(
        tmp_path, monkeypatch, capsys):
    """`pose-config` in a folder of the user's: the default model paths
    (relative to config.json's folder) become the project's, so that the
    run finds the shipped model configs and `make weights`' checkpoints; in
    the project's folder, and where the folder has its own config_files/,
    they stay relative."""
    mine = tmp_path / 'my project' / 'config.json'
    assert creating_config.main(['--config', str(mine), '--device', 'cpu']) == 0
    config = load_config(mine)
    assert config.det_config == ROOT / DEFAULTS['det_config']
    assert config.pose_config == ROOT / DEFAULTS['pose_config']
    assert config.det_config.is_file() and config.pose_config.is_file()
    assert config.pose_checkpoint == ROOT / DEFAULTS['pose_checkpoint']
    # The user's own choice of a model file is kept as written.
    assert creating_config.main(['--config', str(mine), '--det-checkpoint',
                                 'mine.pth']) == 0
    assert json.loads(mine.read_text())['det_checkpoint'] == 'mine.pth'
    # In the project itself (here: a stand-in), nothing changes.
    monkeypatch.setattr(creating_config, 'PROJECT', tmp_path / 'project')
    own = tmp_path / 'project' / 'config.json'
    assert creating_config.main(['--config', str(own)]) == 0
    assert json.loads(own.read_text()) == DEFAULTS
    # A folder with config_files/ of its own keeps its relative paths.
    copied = tmp_path / 'copy' / 'config.json'
    (copied.parent / 'config_files').mkdir(parents=True)
    for key in creating_config.MODEL_KEYS:
        (copied.parent / DEFAULTS[key]).write_bytes(b'')
    assert creating_config.main(['--config', str(copied)]) == 0
    assert json.loads(copied.read_text()) == DEFAULTS


def test_shipped_config_json_is_the_default():
    assert json.loads((ROOT / 'config.json').read_text()) == DEFAULTS


def test_flag_changes_only_that_key(tmp_path):
    path = tmp_path / 'config.json'
    path.write_text(json.dumps({**DEFAULTS, 'input': 'my.mp4'}))
    result = run_cli('creating_config.py', '--config', path, '--bbox-thr',
                     '0.55', '--device', 'cuda:1')
    assert result.returncode == 0, result.stderr
    values = json.loads(path.read_text())
    assert values == {**ELSEWHERE, 'input': 'my.mp4', 'bbox_thr': 0.55,
                      'device': 'cuda:1'}


@pytest.mark.parametrize('flag, value, words', [
    ('--bbox-thr', '1.5', ['bbox_thr', '[0, 1]']),
    ('--nms-thr', 'abc', ['--nms-thr', 'number']),
    ('--device', 'gpu', ['device', 'gpu']),
    ('--det-cat-id', '-1', ['det_cat_id']),
    ('--flip-test', 'sometimes', ['--flip-test', 'true or false or auto']),
])
def test_invalid_value_refused_and_file_untouched(tmp_path, flag, value,
                                                  words):
    path = tmp_path / 'config.json'
    run_cli('creating_config.py', '--config', path)
    before = path.read_bytes()
    result = run_cli('creating_config.py', '--config', path, flag, value)
    assert_one_line_error(result, *words)
    assert path.read_bytes() == before


def test_not_json_refused_and_untouched(tmp_path):
    path = tmp_path / 'config.json'
    path.write_text('{"bbox_thr": 0.3,,}')
    result = run_cli('creating_config.py', '--config', path, '--kpt-thr',
                     '0.1')
    assert_one_line_error(result, 'not valid JSON', 'line 1')
    assert path.read_text() == '{"bbox_thr": 0.3,,}'


def test_show_prints_effective_config_without_writing(tmp_path):
    path = tmp_path / 'config.json'
    path.write_text(json.dumps({'kpt_thr': 0.5}))
    result = run_cli('creating_config.py', '--config', path, '--show')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {**ELSEWHERE, 'kpt_thr': 0.5}
    assert json.loads(path.read_text()) == {'kpt_thr': 0.5}


def test_existing_file_is_completed_not_reset(tmp_path):
    path = tmp_path / 'config.json'
    path.write_text(json.dumps({'kpt_thr': 0.5}))
    assert run_cli('creating_config.py', '--config', path).returncode == 0
    assert json.loads(path.read_text()) == {**ELSEWHERE, 'kpt_thr': 0.5}
    assert run_cli('creating_config.py', '--config', path,
                   '--reset').returncode == 0
    assert json.loads(path.read_text()) == ELSEWHERE


def test_relative_paths_resolve_against_config_folder(tmp_path):
    folder = tmp_path / 'project'
    folder.mkdir()
    path = folder / 'config.json'
    path.write_text(json.dumps({'input': 'clips/a.mp4',
                                'output': 'results/'}))
    config = load_config(path)
    assert config.input == folder / 'clips' / 'a.mp4'
    assert config.output_file() == folder / 'results' / 'a.mp4.json'
    assert config.det_config == folder / DEFAULTS['det_config']


def test_cli_overrides_are_relative_to_current_folder(tmp_path,
                                                      monkeypatch):
    path = tmp_path / 'config.json'
    path.write_text('{}')
    monkeypatch.chdir(tmp_path.parent)
    config = load_config(path, {'input': 'x.jpg', 'device': 'cpu'})
    assert config.input == tmp_path.parent / 'x.jpg'
    assert config.device == 'cpu'


def test_unknown_key_warns_with_closest_name(tmp_path):
    path = tmp_path / 'config.json'
    path.write_text(json.dumps({'bbox_threshold': 0.5}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        config = load_config(path)
    assert config.bbox_thr == 0.3
    assert any("'bbox_threshold'" in str(w.message)
               and "'bbox_thr'" in str(w.message) for w in caught)


@pytest.mark.parametrize('values, words', [
    ({'bbox_thr': 'high'}, ['bbox_thr', "'high'"]),
    ({'kpt_thr': -0.1}, ['kpt_thr', '[0, 1]']),
    ({'nms_thr': True}, ['nms_thr']),
    ({'input': 3}, ['input']),
    ({'device': 'tpu'}, ['device']),
    ({'flip_test': 'on'}, ['flip_test', '"auto"', "'on'"]),
    ({'flip_test': 1}, ['flip_test']),
])
def test_bad_values_raise_config_error(tmp_path, values, words):
    path = tmp_path / 'config.json'
    path.write_text(json.dumps(values))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    for word in words:
        assert word in str(error.value)


def test_config_must_be_an_object(tmp_path):
    path = tmp_path / 'config.json'
    path.write_text('[1, 2]')
    with pytest.raises(ConfigError, match='JSON object'):
        load_config(path)


def test_apply_overrides_validates_and_resolves(tmp_path, monkeypatch):
    from pose_suite.config import apply_overrides
    path = tmp_path / 'config.json'
    path.write_text('{}')
    config = load_config(path)
    monkeypatch.chdir(tmp_path)
    changed = apply_overrides(config, {'input': 'a.mp4', 'kpt_thr': 0.5})
    assert changed.input == tmp_path / 'a.mp4' and changed.kpt_thr == 0.5
    assert config.kpt_thr == 0.3  # a copy; the original is unchanged
    with pytest.raises(ConfigError, match='kpt_thr'):
        apply_overrides(config, {'kpt_thr': 2})
    with pytest.raises(ConfigError, match="did you mean 'kpt_thr'"):
        apply_overrides(config, {'kpt_threshold': 0.5})


def test_smoothing_without_tracking_refused_on_every_path(tmp_path):
    """The file, a dict, and overrides on a built config all refuse it, so
    meta.smoothing can never say true while nothing is smoothed."""
    from pose_suite.config import apply_overrides, build_config
    path = tmp_path / 'config.json'
    path.write_text(json.dumps({'tracking': False}))
    config = load_config(path)
    for attempt in (lambda: apply_overrides(config, {'smoothing': True}),
                    lambda: load_config(path, {'smoothing': True}),
                    lambda: build_config({'tracking': False,
                                          'smoothing': True})):
        with pytest.raises(ConfigError, match='smoothing needs tracking'):
            attempt()
    assert apply_overrides(config, {'tracking': True,
                                    'smoothing': True}).smoothing


def test_show_on_a_missing_config_does_not_write_it(tmp_path):
    path = tmp_path / 'config.json'
    result = run_cli('creating_config.py', '--config', path, '--show')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ELSEWHERE
    assert not path.exists()


FLAG_VALUES = {
    'det_config': ('other_det.py', 'other_det.py'),
    'det_checkpoint': ('det.pth', 'det.pth'),
    'pose_config': ('other_pose.py', 'other_pose.py'),
    'pose_checkpoint': ('pose.pth', 'pose.pth'),
    'input': ('clips/', 'clips/'),
    'recursive': ('yes', True),
    'output': ('results/run1.json', 'results/run1.json'),
    'device': ('cuda:0', 'cuda:0'),  # cuda:1 is refused with ray (below)
    'det_cat_id': ('2', 2),
    'bbox_thr': ('0.55', 0.55),
    'nms_thr': ('0.65', 0.65),
    'kpt_thr': ('0.1', 0.1),
    'resume': ('on', True),
    'precision': ('bf16', 'bf16'),
    'flip_test': ('off', False),
    'det_interval': ('4', 4),
    'export_formats': ('coco,csv', ['coco', 'csv']),
    'smoothing': ('true', True),
    'angles': ('yes', True),
    'report': ('false', False),
    'tracking': ('yes', True),
    'visualize_output': ('drawn/', 'drawn/'),
    'quiet': ('1', True),
    'executor': ('ray', 'ray'),
    'ray_address': ('10.0.0.1:6379', '10.0.0.1:6379'),
    'workers': ('3', 3),
    'threads_per_worker': ('2', 2),
    'gpus_per_worker': ('0.5', 0.5),
    'segment_s': ('0', 0.0),  # with visualize_output set above: refused
    # One of each pair: the other is refused beside it (below).
    'frame_range': ('10-20', [10, 20]),
    'time_range': ('none', None),
    'frame_step': ('3', 3),
    'target_fps': ('0', 0.0),
    'max_persons': ('2', 2),
    'person_order': ('score', 'score'),
    'runtime': ('pytorch', 'pytorch'),
    'interp_max_gap': ('10', 10),
    'interp_kind': ('cubic', 'cubic'),
    'fill_large_gaps': ('last_value', 'last_value'),
    'hampel': ('true', True),
    'filter': ('butterworth,cutoff_hz=5', {'type': 'butterworth',
                                           'cutoff_hz': 5.0, 'order': 4}),
    'person_height_m': ('1.8', 1.8),
    'floor_angle': ('-3.5', -3.5),
    'floor_origin': ('10,700', [10.0, 700.0]),
}


def test_every_key_has_a_working_flag(tmp_path):
    """Each key's flag turns its text into the key's JSON type and changes
    only that key."""
    assert set(FLAG_VALUES) == set(DEFAULTS)
    path = tmp_path / 'config.json'
    for key, (text, value) in FLAG_VALUES.items():
        before = json.loads(path.read_text()) if path.exists() else ELSEWHERE
        result = run_cli('creating_config.py', '--config', path,
                         '--' + key.replace('_', '-'), text)
        assert result.returncode == 0, (key, result.stderr)
        after = json.loads(path.read_text())
        assert after[key] == value, key
        assert {k: v for k, v in after.items() if k != key} == \
            {k: v for k, v in before.items() if k != key}, key


def test_auto_flags_take_auto_back(tmp_path):
    """A key that takes "auto" or a value can be set back to "auto"."""
    path = tmp_path / 'config.json'
    path.write_text(json.dumps({**DEFAULTS, 'flip_test': False,
                                'workers': 3}))
    result = run_cli('creating_config.py', '--config', path, '--flip-test',
                     'auto', '--workers', 'auto')
    assert result.returncode == 0, result.stderr
    values = json.loads(path.read_text())
    assert values['flip_test'] == 'auto' and values['workers'] == 'auto'


@pytest.mark.parametrize('text', ['{"workers": Infinity}',
                                  '{"threads_per_worker": NaN}',
                                  '{"gpus_per_worker": -Infinity}',
                                  '{"segment_s": Infinity}'])
def test_infinity_and_nan_are_one_line(tmp_path, text):
    """JSON readers take Infinity and NaN; they are never a count."""
    config = tmp_path / 'config.json'
    config.write_text(text)
    result = run_cli('pose_analysis_service.py', '--config', config)
    key = text.split('"')[1]
    assert_one_line_error(result, key)
    flag = run_cli('creating_config.py', '--config', tmp_path / 'c.json',
                   '--' + key.replace('_', '-'), '1.0e400')
    assert_one_line_error(flag, key, 'inf')
    assert not (tmp_path / 'c.json').exists()


@pytest.mark.parametrize('values, words', [
    ({'segment_s': 0.5, 'executor': 'ray'}, ['segment_s', '>= 1', '0.5']),
    ({'segment_s': 10}, ['segment_s needs', 'executor']),
    ({'segment_s': 10, 'executor': 'ray', 'visualize_output': 'o.mp4'},
     ['segment_s cannot be combined with visualize_output']),
])
def test_segment_s_refusals(tmp_path, values, words):
    config = tmp_path / 'config.json'
    config.write_text(json.dumps(values))
    assert_one_line_error(run_cli('pose_analysis_service.py', '--config',
                                  config), *words)


def test_wrote_line_shows_the_name_escaped(tmp_path):
    path = tmp_path / 'con\u202enosj.json'
    result = run_cli('creating_config.py', '--config', path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == f'wrote {tmp_path}/con\\u202enosj.json\n'
    assert json.loads(path.read_text()) == ELSEWHERE
