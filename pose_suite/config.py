"""config.json: its keys, defaults and validation, done once at the edge.

The rest of the suite never reads config.json; it receives an
:class:`AnalysisConfig`, whose paths are already resolved against the folder
of the config file.
"""
import dataclasses
import difflib
import json
import re
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Union

from pose_suite.errors import ConfigError, SuiteWarning

DET_CONFIG = 'config_files/rtmdet_m_640-8xb32_coco-person.py'
DET_CHECKPOINT = 'config_files/rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth'
POSE_CONFIG = ('config_files/'
               'td-hm_hrnet-w48_dark-8xb32-210e_coco-wholebody-384x288.py')
POSE_CHECKPOINT = ('config_files/'
                   'hrnet_w48_coco_wholebody_384x288_dark-f5726563_20200918.pth')

#: Every key of config.json with its default, in the order they are written.
DEFAULTS: Dict[str, Any] = {
    'det_config': DET_CONFIG,
    'det_checkpoint': DET_CHECKPOINT,
    'pose_config': POSE_CONFIG,
    'pose_checkpoint': POSE_CHECKPOINT,
    'input': 'data/football_5frames_720p.mp4',
    'recursive': False,
    'output': 'output/',
    'device': 'auto',
    'det_cat_id': 0,
    'bbox_thr': 0.3,
    'nms_thr': 0.3,
    'kpt_thr': 0.3,
    'resume': False,
    'precision': 'fp32',
    'flip_test': 'auto',
    'det_interval': 1,
    'export_formats': [],
    'tracking': True,
    'smoothing': False,
    'visualize_output': '',
    'quiet': False,
    'executor': 'local',
    'ray_address': '',
    'workers': 'auto',
    'threads_per_worker': 1,
    'gpus_per_worker': 'auto',
    'segment_s': 0.0,
}

#: One sentence per key, used by ``creating_config.py --help`` and the README.
HELP: Dict[str, str] = {
    'det_config': 'MMDetection config of the person detector (.py).',
    'det_checkpoint': 'Detector weights (.pth).',
    'pose_config': 'MMPose config of the whole-body pose model (.py).',
    'pose_checkpoint': 'Pose model weights (.pth).',
    'input': 'Image or video; or a folder, a glob pattern, a list file '
             '(.txt, one path a line), a camera index (0) or a stream URL.',
    'recursive': 'true: a folder input is searched in its sub-folders too '
                 '(the results keep the sub-folder layout); a glob pattern '
                 'recurses with ** either way.',
    'output': 'JSON file to write (a path ending in .json); any other '
              'path is a folder that gets <input file name>.json inside it '
              '(clip.mp4 -> clip.mp4.json).',
    'device': 'cpu, cuda, cuda:N, or auto (cuda when available, else cpu).',
    'det_cat_id': 'Class index of "person" in the detector (0 for COCO and '
                  'for the one-class person detector).',
    'bbox_thr': 'Keep detections whose score is above this, in [0, 1].',
    'nms_thr': 'IoU above which overlapping person boxes are merged, '
               'in [0, 1].',
    'kpt_thr': 'Keypoint score counted as visible when reporting and drawing, '
               'in [0, 1]; all 133 keypoints are always written.',
    'resume': 'true: continue an interrupted run of the same input and '
              'settings from its last completed frame.',
    'precision': 'fp32 (exact, the default), bf16 (fast mode; CPUs with '
                 'bf16 support and GPUs) or fp16 (fast mode, CUDA only).',
    'flip_test': 'true: the pose model also runs on each mirrored crop and '
                 'averages (mmpose\'s flip test); false: half the pose '
                 'model\'s work, slightly less accurate; "auto": as the '
                 'pose config says (on for the shipped one).',
    'det_interval': 'Run the detector every N video frames and, in between, '
                    'take each person\'s box from their previous keypoints '
                    '(1: detect on every frame).',
    'export_formats': 'Also write the results as any of: mmpose (the JSON '
                      'of mmpose\'s demo), coco (COCO keypoint results), '
                      'csv (one row per person and frame).',
    'tracking': 'Give each person of a video a track_id that stays the same '
                'from frame to frame.',
    'smoothing': 'One-Euro filter each tracked person\'s keypoints over time '
                 '(needs tracking); the measured ones stay in keypoints_raw.',
    'visualize_output': 'Also draw the results: an image path for an image, '
                        'an .mp4 for a video or stream, a folder (no '
                        'suffix) for several inputs ("": off).',
    'quiet': 'true: no progress bar and no summary line (also --quiet).',
    'executor': 'local: one input after another in this process; ray: '
                'the inputs shared among Ray workers on this machine or a '
                'cluster (see "Many videos, many machines").',
    'ray_address': 'executor ray: "" starts a private Ray on this machine, '
                   '"auto" joins the cluster this machine is part of, or '
                   'host:port / ray://host:10001.',
    'workers': 'executor ray: model replicas, each analysing whole inputs; '
               '"auto": one per GPU slot (GPUs / gpus_per_worker), else the '
               'CPUs divided by threads_per_worker.',
    'threads_per_worker': 'executor ray: CPU cores (and torch threads) '
                          'given to each worker.',
    'gpus_per_worker': 'executor ray: GPUs per worker, fractional to share '
                       'one (0.5 = two workers a GPU); "auto": 1 on a '
                       'cluster with GPUs (unless device is cpu), else 0.',
    'segment_s': 'executor ray: cut videos longer than this many seconds '
                 'into segments analysed in parallel and stitched into one '
                 'result (0: off).',
}

PATH_KEYS = ('det_config', 'det_checkpoint', 'pose_config', 'pose_checkpoint',
             'input', 'output')
THRESHOLD_KEYS = ('bbox_thr', 'nms_thr', 'kpt_thr')
BOOL_KEYS = ('resume', 'tracking', 'smoothing', 'quiet', 'recursive')
#: Keys that take "auto" or a number (creating_config.py parses them so).
AUTO_NUMBER_KEYS = ('workers', 'gpus_per_worker')
#: Keys that take "auto", true or false.
AUTO_BOOL_KEYS = ('flip_test',)
_DEVICE_PATTERN = re.compile(r'^(cpu|auto|cuda(:\d+)?)$')


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """A validated config.json; paths are absolute."""

    det_config: Path
    det_checkpoint: Path
    pose_config: Path
    pose_checkpoint: Path
    input: Union[Path, str]  # str: a camera, stream URL or glob pattern
    recursive: bool
    output: Path
    device: str
    det_cat_id: int
    bbox_thr: float
    nms_thr: float
    kpt_thr: float
    resume: bool
    precision: str
    det_interval: int
    export_formats: tuple
    tracking: bool
    smoothing: bool
    visualize_output: Optional[Path]
    quiet: bool
    executor: str = 'local'
    ray_address: str = ''
    workers: Union[int, str] = 'auto'
    threads_per_worker: int = 1
    gpus_per_worker: Union[float, str] = 'auto'
    segment_s: float = 0.0
    flip_test: Union[bool, str] = 'auto'

    def output_file(self, input_path=None) -> Path:
        """The JSON file to write for ``input_path`` (default: ``input``)
        alone: ``output`` itself, or ``<output>/<input file name>.json``
        when ``output`` is a folder (see :mod:`pose_suite.inputs`)."""
        from pose_suite.inputs import Inputs
        source = self.input if input_path is None else input_path
        return Inputs([source]).output_files(self.output)[0]


def validate_value(key: str, value: Any) -> Any:
    """Check one key's value and return it normalised.

    Raises:
        ConfigError: naming the key, the value and what is allowed.
    """
    if key not in DEFAULTS:
        raise ConfigError(f'unknown config key {key!r}{_suggest(key)}')
    if key == 'visualize_output':
        if not isinstance(value, str):
            raise ConfigError(f'{key} must be a path string ("" for none), '
                              f'got {value!r}')
        from pose_suite.overlay import check_overlay_name
        if value:
            check_overlay_name(value)
        return value
    if key in PATH_KEYS:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f'{key} must be a non-empty path string, got {value!r}')
        return value
    if key in THRESHOLD_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f'{key} must be a number in [0, 1], '
                              f'got {value!r}')
        if not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f'{key} must be in [0, 1], got {value!r}')
        return float(value)
    if key in BOOL_KEYS:
        if not isinstance(value, bool):
            raise ConfigError(f'{key} must be true or false, got {value!r}')
        return value
    if key in ('det_cat_id', 'det_interval'):
        low = 0 if key == 'det_cat_id' else 1
        if isinstance(value, bool) or not isinstance(value, int) \
                or value < low:
            raise ConfigError(
                f'{key} must be a whole number >= {low}, got {value!r}')
        return value
    if key == 'export_formats':
        formats = ('mmpose', 'coco', 'csv')
        if not isinstance(value, (list, tuple)) or any(
                f not in formats for f in value):
            raise ConfigError(f'export_formats must be a list of {formats}, '
                              f'got {value!r}')
        return list(dict.fromkeys(value))
    if key == 'precision':
        if value not in ('fp32', 'bf16', 'fp16'):
            raise ConfigError('precision must be fp32, bf16 or fp16, got '
                              f'{value!r}')
        return value
    if key == 'device':
        if not isinstance(value, str) or not _DEVICE_PATTERN.match(value):
            raise ConfigError('device must be cpu, cuda, cuda:N or auto, '
                              f'got {value!r}')
        return value
    if key == 'flip_test':
        if value != 'auto' and not isinstance(value, bool):
            raise ConfigError('flip_test must be true, false or "auto" (as '
                              f'the pose config says), got {value!r}')
        return value
    if key in ('executor', 'ray_address', 'workers', 'threads_per_worker',
               'gpus_per_worker', 'segment_s'):
        return _validate_executor_key(key, value)
    raise AssertionError(f'no validator for {key}')  # pragma: no cover


def _validate_executor_key(key: str, value: Any) -> Any:
    """The keys of ``executor: ray`` (checked whatever the executor, so
    that a typo waits for no cluster)."""
    is_number = isinstance(value, (int, float)) and \
        not isinstance(value, bool)
    if key == 'executor':
        if value not in ('local', 'ray'):
            raise ConfigError(f'executor must be local or ray, got {value!r}')
        return value
    if key == 'ray_address':
        if not isinstance(value, str) or value != value.strip():
            raise ConfigError('ray_address must be "" (a private Ray), '
                              f'"auto", host:port or ray://host:port, '
                              f'got {value!r}')
        if value not in ('', 'auto') and not re.match(
                r'^(ray://)?[\w.\-\[\]:]+:\d+$', value):
            raise ConfigError('ray_address must be "" (a private Ray), '
                              f'"auto", host:port or ray://host:port, '
                              f'got {value!r}')
        return value
    if key == 'workers':
        if value == 'auto':
            return value
        if not is_number or int(value) != value or value < 1:
            raise ConfigError(f'workers must be "auto" or a whole number '
                              f'>= 1, got {value!r}')
        return int(value)
    if key == 'threads_per_worker':
        if not is_number or int(value) != value or value < 1:
            raise ConfigError('threads_per_worker must be a whole number '
                              f'>= 1, got {value!r}')
        return int(value)
    if key == 'gpus_per_worker':
        if value == 'auto':
            return value
        if not is_number or not 0 <= value <= 64 or (
                value > 1 and int(value) != value):
            raise ConfigError('gpus_per_worker must be "auto", 0, a fraction'
                              f' of one GPU or a whole number, got {value!r}')
        return float(value)
    if not is_number or not 0 <= value < 1e7:  # segment_s
        raise ConfigError(f'segment_s must be a number of seconds >= 0 (0: '
                          f'off), got {value!r}')
    return float(value)


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
                          f'{_suggest(key)}', SuiteWarning, stacklevel=2)
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
    if get('segment_s') and get('executor') != 'ray':
        raise ConfigError('segment_s needs several workers: set "executor": '
                          '"ray" (or "segment_s": 0)')
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
                          '`python creating_config.py`)') from None
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
    from pose_suite.sources import has_glob, is_stream
    if value == '':
        return None
    if key == 'input' and is_stream(value):
        return value
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    return str(path) if key == 'input' and has_glob(value) else path


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, DEFAULTS, n=1)
    return f' (did you mean {close[0]!r}?)' if close else ''
