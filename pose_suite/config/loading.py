"""config.json: loading, defaults and validation, done once at the edge.

The keys themselves (default, help, kind) are one table,
:data:`pose_suite.config.keys.KEYS`; this module turns a file, a dict or
command-line overrides into an :class:`AnalysisConfig`, whose fields come
from that table and whose paths are already resolved against the folder of
the config file. The rest of the suite never reads config.json.
"""
import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any, Dict, Optional

from pose_suite.config.keys import (DEFAULTS, KEYS, PATH_KEYS, suggest,
                                    validate_value)
from pose_suite.config.specs import (has_glob, is_json_file, is_stream,
                                     output_name)
from pose_suite.errors import ConfigError, SuiteWarning


def _output_file(self, input_path=None) -> Path:
    """The JSON file to write for ``input_path`` (default: ``input``)
    alone: ``output`` itself, or ``<output>/<input file name>.json`` when
    ``output`` is a folder (see :mod:`pose_suite.config.specs`)."""
    source = self.input if input_path is None else input_path
    return self.output if is_json_file(self.output) \
        else self.output / output_name(source)


#: A validated config.json, one field per key of the table; paths are
#: absolute (``input`` stays a str for a camera, stream URL or glob
#: pattern; ``visualize_output`` is None when off).
AnalysisConfig = dataclasses.make_dataclass(
    'AnalysisConfig', [(key.name, key.kind.type) for key in KEYS],
    frozen=True, namespace={'output_file': _output_file,
                            '__module__': __name__})


def validate_dict(values: Dict[str, Any]) -> Dict[str, Any]:
    """Fill in defaults and validate every key.

    Unknown keys are dropped with a warning naming the closest valid key, so
    a typo does not silently fall back to a default.
    """
    if not isinstance(values, dict):
        raise ConfigError('config must be a JSON object ({"key": value, ...}),'
                          f' got {type(values).__name__}')
    merged = dict(DEFAULTS)
    for key, value in values.items():
        if key not in DEFAULTS:
            warnings.warn(f'ignoring unknown config key {key!r}'
                          f'{suggest(key)}', SuiteWarning, stacklevel=2)
            continue
        merged[key] = validate_value(key, value)
    check_combination(merged)
    return merged


def check_combination(values) -> None:
    """Refuse settings that are valid alone but not together. Every path
    into a config (file, dict, overrides) ends here, so that ``meta`` never
    records a setting that did not take effect.

    Args:
        values: the keys' values, as a dict or an :class:`AnalysisConfig`.
    Raises:
        ConfigError: naming the keys.
    """
    get = values.get if isinstance(values, dict) else \
        (lambda key: getattr(values, key))
    if get('smoothing') and not get('tracking'):
        raise ConfigError('smoothing needs tracking: set "tracking": true')
    for fmt in ('angles', 'mot'):
        if fmt in get('export_formats') and not get('angles'):
            raise ConfigError(f'the {fmt} export needs angles: set '
                              '"angles": true (or --angles)')
    if get('segment_s') and get('executor') != 'ray':
        raise ConfigError('segment_s needs several workers: set "executor": '
                          '"ray" (or "segment_s": 0)')
    device = get('device')
    if get('executor') == 'ray' and device.startswith('cuda'):
        if get('gpus_per_worker') == 0:
            raise ConfigError(
                f'device is {device} but gpus_per_worker is 0: Ray would '
                'give the workers no GPU; set "gpus_per_worker" above 0 (or '
                '"auto"), or "device": "cpu"')
        if device != 'cuda' and device != 'cuda:0':
            raise ConfigError(
                f'device {device} with executor ray: Ray gives each worker '
                'its own GPU, which the worker sees as cuda:0; set "device": '
                '"cuda" (to keep Ray to some GPUs, start it with '
                'CUDA_VISIBLE_DEVICES set)')
    if get('precision') == 'fp32' and get('runtime') not in ('auto',
                                                              'pytorch'):
        raise ConfigError(f'runtime {get("runtime")} runs in fast mode only; '
                          'precision fp32 is the exact mode, always PyTorch: '
                          'set "precision" to "auto", "bf16" or "fp32-fast"')
    if get('time_range') is not None and get('frame_range') is not None:
        raise ConfigError('time_range and frame_range both say what part to '
                          'analyse: set one of them to null')
    if get('frame_step') > 1 and get('target_fps'):
        raise ConfigError('frame_step and target_fps both say which frames '
                          'to analyse: set "frame_step": 1 or '
                          '"target_fps": 0')
    if get('person_order') == 'longest' and not get('tracking'):
        raise ConfigError('person_order longest needs tracking (the tracks '
                          'seen longest): set "tracking": true')
    if get('segment_s') and get('visualize_output'):
        raise ConfigError('segment_s cannot be combined with '
                          'visualize_output (an overlay is drawn in one '
                          'pass): set one of them off')


def read_config_file(path: Path) -> Dict[str, Any]:
    """Read config.json as a dict, without filling defaults."""
    try:
        text = Path(path).read_text(encoding='utf-8')
    except FileNotFoundError:
        raise ConfigError(f'config file not found: {path} (create it with '
                          '`python creating_config.py`, or `pose-config` '
                          'where the suite is pip-installed)') from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f'cannot read config file {path}: {exc}') from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f'{path} is not valid JSON: {exc.msg} at line '
                          f'{exc.lineno} column {exc.colno}') from None
    if not isinstance(values, dict):
        raise ConfigError(f'{path} must hold a JSON object, got '
                          f'{type(values).__name__}')
    return values


def build_config(values: Dict[str, Any],
                 base_dir: Optional[Path] = None) -> AnalysisConfig:
    """Validate ``values`` and resolve relative paths against ``base_dir``
    (the folder of config.json; the current folder when None)."""
    merged = validate_dict(values)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    fields = dict(merged, export_formats=tuple(merged['export_formats']))
    for key in PATH_KEYS + ('visualize_output',):
        fields[key] = _resolve(key, merged[key], base)
    return AnalysisConfig(**fields)


def load_config(path: Path,
                overrides: Optional[Dict[str, Any]] = None) -> AnalysisConfig:
    """Read, merge ``overrides`` (e.g. CLI flags) and validate config.json."""
    path = Path(path)
    values = read_config_file(path)
    config = build_config(values, base_dir=path.resolve().parent)
    return apply_overrides(config, overrides or {})


def apply_overrides(config: AnalysisConfig,
                    overrides: Dict[str, Any]) -> AnalysisConfig:
    """Validate ``overrides`` and return a changed copy of ``config``.

    Override paths that are relative are taken as given on the command line,
    i.e. relative to the current folder, not to config.json.
    """
    changes = {}
    for key, value in overrides.items():
        value = validate_value(key, value)
        if key in PATH_KEYS or key == 'visualize_output':
            value = _resolve(key, value, Path.cwd())
        if key == 'export_formats':
            value = tuple(value)
        changes[key] = value
    config = dataclasses.replace(config, **changes)
    check_combination(config)
    return config


def _resolve(key: str, value: str, base: Path):
    """A path value made absolute against ``base``; a camera index or
    stream URL given as ``input`` stays as it is; "" (no overlay) is None."""
    if value == '':
        return None
    if key == 'input' and is_stream(value):
        return value
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    return str(path) if key == 'input' and has_glob(value) else path
