"""What ``--resume`` compares: the keys that say whether a partial or
complete result was made from the same input and settings, and, when it was
not, why (in words, for the warning).

``PoseAnalyser`` gives its settings (:meth:`resume_keys` there, and by
name, :meth:`settings_by_name`); everything decided from them is here.
"""
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from pose_suite.config import DEFAULTS, AnalysisConfig
from pose_suite.config.specs import is_stream
from pose_suite.outputs.results import read_meta


def resume_keys(input_path, settings: Sequence) -> Tuple[str, str]:
    """``(resume_key, settings_sha256)`` of a run of ``input_path`` with
    ``settings`` (JSON values: everything that decides the results).

    The resume key adds the input file (resolved path, size, modification
    time; a stream's URL) to the settings; ``settings_sha256`` is the
    settings alone, so that a refusal can say which changed.
    """
    if is_stream(input_path):
        file_identity = [str(input_path)]
    else:
        stat = Path(input_path).stat()
        file_identity = [str(Path(input_path).resolve()), stat.st_size,
                         stat.st_mtime_ns]
    return _sha256_of([*file_identity, *settings]), _sha256_of(list(settings))


def segment_key(resume_key: str, frame_range: Tuple) -> str:
    """The resume key of one segment (frames ``frame_range``) of an
    input."""
    return _sha256_of([resume_key, list(frame_range)])


def is_file(spec) -> bool:
    """A file that is there (a camera or stream is never up to date)."""
    return not is_stream(spec) and Path(spec).is_file()


def finished_segment(output_file: Path, key: str) -> bool:
    """Whether ``output_file`` is a segment already finished with segment
    key ``key`` (a resumed segmented run keeps it)."""
    meta = read_meta(output_file)
    try:
        return meta['segment']['resume_key'] == key
    except (KeyError, TypeError):
        return False


def why_not_up_to_date(meta: Optional[dict], output_file: Path,
                       resume_key: str, settings_key: str,
                       settings: Optional[dict] = None) -> Optional[str]:
    """None when ``meta`` (``read_meta`` of ``output_file``, which exists)
    is that of a complete result made from the same input and settings;
    else why not, in words: for other settings, each one changed, by name,
    as far as ``meta`` records it (``settings``: this run's, by name, as
    :func:`settings_in_meta` reads them)."""
    if meta is None:
        return f'{output_file} is not a result the suite can read'
    if meta.get('resume_key') == resume_key:
        return None
    if 'resume_key' not in meta:
        return (f'{output_file.name} was made by an earlier version of the '
                'suite, which recorded no resume key')
    if meta.get('settings_sha256') != settings_key:
        changed = changed_settings(meta, settings or {})
        if changed:
            return (f'{output_file.name} was made with other settings: '
                    f'{", ".join(changed)}')
        return (f'{output_file.name} was made with other settings or '
                'models')
    return f'the input changed since {output_file.name} was made'


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """A model's checkpoint or config, told apart by content (SHA-256),
    shown by name."""

    sha256: str
    name: str = dataclasses.field(compare=False)


def runtimes_of(detector: str, pose_model: str) -> str:
    """What ran the heavy parts (``meta.detector.runtime``,
    ``meta.pose_model.runtime``) as one setting: ``pytorch`` for both."""
    if detector == pose_model == 'pytorch':
        return 'pytorch'
    return f'detector: {detector}, pose model: {pose_model}'


def _model(block: dict, what: str) -> ModelFile:
    return ModelFile(block[f'{what}_sha256'], Path(str(block[what])).name)


#: Where a result's ``meta`` records each setting of its resume key
#: (:mod:`pose_suite.service.meta`), by the name a warning gives it.
_IN_META = {
    'detector checkpoint': lambda m: _model(m['detector'], 'checkpoint'),
    'detector config': lambda m: _model(m['detector'], 'config'),
    'pose model checkpoint': lambda m: _model(m['pose_model'], 'checkpoint'),
    'pose model config': lambda m: _model(m['pose_model'], 'config'),
    'bbox_thr': lambda m: m['thresholds']['bbox_thr'],
    'nms_thr': lambda m: m['thresholds']['nms_thr'],
    'kpt_thr': lambda m: m['thresholds']['kpt_thr'],
    'det_cat_id': lambda m: m['det_cat_id'],
    'device': lambda m: m['device'],
    'precision': lambda m: m['precision'],
    'runtime': lambda m: runtimes_of(m['detector'].get('runtime', 'pytorch'),
                                     m['pose_model'].get('runtime',
                                                         'pytorch')),
    'det_interval': lambda m: m['det_interval'],
    'tracking': lambda m: m['tracking'],
    'smoothing': lambda m: m['smoothing'],
    'flip_test': lambda m: m['flip_test'],
    'angles': lambda m: 'angles' in m,
    'time_range': lambda m: m['selection']['time_range'],
    'frame_range': lambda m: m['selection']['frame_range'],
    'frame_step': lambda m: m['selection']['frame_step'],
    'target_fps': lambda m: m['selection']['target_fps'],
    'max_persons': lambda m: m['max_persons'],
    'person_order': lambda m: m['person_order'],
}


def settings_in_meta(meta: dict) -> Dict[str, object]:
    """The settings a result was made with, by name, as its ``meta``
    records them (those it does not record are left out)."""
    found = {}
    for name, read in _IN_META.items():
        try:
            found[name] = read(meta)
        except (KeyError, TypeError, AttributeError):
            continue
    return found


def changed_settings(meta: dict, settings: dict) -> List[str]:
    """``'name old -> new'`` for each of this run's ``settings`` (by name)
    that ``meta`` records with another value, e.g. ``'angles false ->
    true'``."""
    before = settings_in_meta(meta)
    return [_change(name, before[name], value)
            for name, value in settings.items()
            if name in before and before[name] != value]


def _change(name: str, old, new) -> str:
    if isinstance(new, ModelFile) and isinstance(old, ModelFile) and \
            old.name == new.name:
        return f'{name} {new.name} (its content changed)'
    return f'{name} {_shown(old)} -> {_shown(new)}'


def _shown(value) -> str:
    """A setting's value as config.json spells it (``true``, ``0.5``)."""
    if isinstance(value, ModelFile):
        return value.name
    if isinstance(value, str):
        return value
    return json.dumps(value)


#: Settings that change only a video's result (an image has one frame:
#: nothing to follow, track, smooth, cut or step over).
VIDEO_ONLY_KEYS = ('det_interval', 'tracking', 'smoothing', 'time_range',
                   'frame_range', 'frame_step', 'target_fps')


def video_only(config: AnalysisConfig, kind: str) -> AnalysisConfig:
    """``config`` as it bears on an input of ``kind``: for an image, the
    video-only settings at their defaults, so that changing them neither
    re-analyses a photo nor shows in its ``meta``."""
    if kind != 'image':
        return config
    return dataclasses.replace(config, **{key: DEFAULTS[key]
                                          for key in VIDEO_ONLY_KEYS},
                               # No tracks in one frame: the largest.
                               person_order='largest'
                               if config.person_order == 'longest'
                               else config.person_order)


def _sha256_of(values: list) -> str:
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()


def derived_only(config: AnalysisConfig, kind: str) -> Tuple[str, ...]:
    """The settings of a result of ``kind`` that decide only what is
    derived from the keypoints (``meta.model_key`` leaves them out):
    ``angles``, and ``kpt_thr`` unless it decides the tracks (a tracked
    video) or the boxes between detections (``det_interval`` > 1)."""
    if (kind != 'image' and config.tracking) or config.det_interval > 1:
        return ('angles',)
    return ('angles', 'kpt_thr')
