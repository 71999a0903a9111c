"""What ``--resume`` compares: the keys that say whether a partial or
complete result was made from the same input and settings, and, when it was
not, why (in words, for the warning).

``PoseAnalyser`` gives its settings (:meth:`resume_keys` there);
everything decided from them is here.
"""
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Optional, Sequence, Tuple

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
                       resume_key: str, settings_key: str) -> Optional[str]:
    """None when ``meta`` (``read_meta`` of ``output_file``, which exists)
    is that of a complete result made from the same input and settings;
    else why not, in words."""
    if meta is None:
        return f'{output_file} is not a result the suite can read'
    if meta.get('resume_key') == resume_key:
        return None
    if 'resume_key' not in meta:
        return (f'{output_file.name} was made by an earlier version of the '
                'suite, which recorded no resume key')
    if meta.get('settings_sha256') != settings_key:
        return (f'{output_file.name} was made with other settings or '
                'models')
    return f'the input changed since {output_file.name} was made'


#: Settings that change only a video's result (an image has one frame:
#: nothing to follow, track or smooth).
VIDEO_ONLY_KEYS = ('det_interval', 'tracking', 'smoothing')


def video_only(config: AnalysisConfig, kind: str) -> AnalysisConfig:
    """``config`` as it bears on an input of ``kind``: for an image, the
    video-only settings at their defaults, so that changing them neither
    re-analyses a photo nor shows in its ``meta``."""
    if kind != 'image':
        return config
    return dataclasses.replace(config, **{key: DEFAULTS[key]
                                          for key in VIDEO_ONLY_KEYS})


def _sha256_of(values: list) -> str:
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()
