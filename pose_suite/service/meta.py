"""The ``meta`` block of a result: what was analysed, with what, and how.

Everything a reader needs to trust or reproduce a result: the source and
its frame counts, the models by file and SHA-256, thresholds, precision and
device, package versions, and how this run went (``meta.run``). The resume
keys (:mod:`pose_suite.service.resume`) are added by the caller.
"""
import datetime
import functools
import secrets
import subprocess
from pathlib import Path
from typing import Optional

from pose_suite.config import AnalysisConfig
from pose_suite.media.selection import FrameSelection
from pose_suite.media.sources import DecodeReport, FrameSource
from pose_suite.outputs.writer import ResultWriter
from pose_suite.service.resume import video_only


def result_meta(analyser, cfg: AnalysisConfig, source: FrameSource,
                writer: ResultWriter, report: DecodeReport,
                seconds: float) -> dict:
    """The ``meta`` of the result ``writer`` is about to commit.

    Args:
        analyser: the :class:`~pose_suite.service.analyser.PoseAnalyser`
            that ran (its models, precision and detector NMS).
        seconds: this call's analysis time, in seconds.
    """
    from pose_suite.models.runtime import package_versions  # imports torch
    cfg = video_only(cfg, source.kind)

    def model_meta(loaded):
        return {'config': str(loaded.config_path),
                'config_sha256': loaded.config_sha256,
                'checkpoint': loaded.checkpoint_path.name,
                'checkpoint_sha256': loaded.checkpoint_sha256,
                # What ran its backbone and head (pose_suite.runtimes).
                'runtime': loaded.runtime,
                'runtime_speedups_measured': runtime_speedups(loaded)}

    detector, pose, precision = \
        analyser.detector, analyser.pose, analyser.precision
    return {
        'source': str(source.path),
        'kind': source.kind,
        'width': source.width,
        'height': source.height,
        'fps': source.fps,
        'stream_start_s': source.stream_start_s,
        'rotation': source.rotation,
        'mirrored': source.mirrored,
        'frame_count': writer.frame_count,
        'frame_count_reported': source.frame_count,
        'frames_failed': writer.frames_failed,
        'frames_unread_at_end': report.frames_unread_at_end,
        # Decoded with errors FFmpeg concealed (null: not checked).
        'frames_damaged': report.frames_damaged,
        'keypoint_names': pose.keypoint_names,
        'skeleton_links': pose.skeleton_links,
        'detector': model_meta(detector.loaded),
        'pose_model': model_meta(pose.loaded),
        'thresholds': {'bbox_thr': cfg.bbox_thr, 'nms_thr': cfg.nms_thr,
                       'kpt_thr': cfg.kpt_thr},
        'det_cat_id': cfg.det_cat_id,
        'det_interval': cfg.det_interval,
        # The part analysed: range and step (a video's), person limit.
        'selection': FrameSelection.from_config(cfg).as_meta(),
        'max_persons': cfg.max_persons,
        'person_order': cfg.person_order,
        'precision': precision.precision,
        'precision_asked': cfg.precision,
        'flip_test': pose.flip_test,
        'tracking': cfg.tracking and source.kind != 'image',
        'smoothing': cfg.smoothing and source.kind != 'image',
        **({'angles': writer.angles.names} if writer.angles else {}),
        'device': detector.device,
        # IEEE fp32 or TF32, cuDNN benchmark/deterministic (None: CPU).
        'cuda_arithmetic': _arithmetic(detector.loaded),
        'versions': package_versions(),
        'suite_version': suite_version(),
        'run': {
            'finished_at': datetime.datetime.now(
                datetime.timezone.utc).isoformat(timespec='seconds'),
            'seconds': round(seconds, 3),
            'resumed_from_frame': writer.resumed_from,
            'executor': 'local',
            'detector_nms': detector.nms,
            'bf16_speedup_measured': precision.bf16_speedup,
            'result_id': new_result_id(),
        },
    }


def runtime_speedups(loaded) -> dict:
    """The runtime probe's speed ratios to PyTorch for this model (empty
    where nothing was measured)."""
    seam = getattr(loaded, 'seam', None)
    return dict(seam.choice.speedups) if seam and seam.choice else {}


def _arithmetic(loaded):
    arithmetic = getattr(loaded, 'cuda_arithmetic', None)
    return arithmetic.as_meta() if arithmetic is not None else None


def new_result_id() -> str:
    """A new result's identity (``meta.run.result_id``): its exports name
    it, so that they are remade when the result is
    (:func:`pose_suite.outputs.exports.is_current`)."""
    return secrets.token_hex(8)


@functools.lru_cache(maxsize=1)
def suite_version() -> Optional[str]:
    """The suite's own version: the git commit of its checkout (with
    ``-modified`` when files differ from it), or None outside a checkout
    (the suite is not installed as a package, so it has no number)."""
    root = Path(__file__).resolve().parent.parent.parent
    try:
        commit = subprocess.run(
            ['git', '-C', str(root), 'rev-parse', '--short=12', 'HEAD'],
            capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ['git', '-C', str(root), 'status', '--porcelain',
             '--untracked-files=no', '--', 'pose_suite', '*.py'],
            capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f'{commit}-modified' if changed else commit or None
