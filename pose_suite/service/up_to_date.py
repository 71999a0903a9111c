"""Whether a result already there can be kept: the keys a run compares
(:meth:`ResultChecks.resume_keys`), the settings by name for the warning
that says what changed, and a complete result whose derived fields alone
differ, made again without the models (:mod:`pose_suite.outputs.rederive`).

A mixin of :class:`~pose_suite.service.analyser.PoseAnalyser`: it reads
the analyser's ``config``, ``detector``, ``pose`` and ``precision``.
"""
from pathlib import Path
from typing import Optional, Tuple, Union

from pose_suite.config import AnalysisConfig
from pose_suite.media.selection import FrameSelection
from pose_suite.movement import MOVEMENT_FORMATS, movement_stale
from pose_suite.outputs.exports import is_current
from pose_suite.outputs.rederive import rederive
from pose_suite.outputs.results import read_meta, why_incomplete
from pose_suite.service.meta import new_result_id
from pose_suite.service.resume import (ModelFile, derived_only, is_file,
                                       resume_keys, runtimes_of, video_only,
                                       why_not_up_to_date)

PathLike = Union[str, Path]


class ResultChecks:
    """The analyser's checks of a result already at its output path."""

    def resume_keys(self, input_path: PathLike, kind: str = 'video',
                    cfg: Optional[AnalysisConfig] = None,
                    models_only: bool = False) -> Tuple[str, str]:
        """``(resume_key, settings_sha256)`` of a run of ``input_path`` (of
        ``kind``, ``image`` or ``video``) with this service (``cfg``: the
        input's settings, default the service's)
        (:func:`pose_suite.service.resume.resume_keys`): the settings are
        the checkpoints, the model configs by their resolved content (an
        edit to them, or to a file they inherit from, is another run),
        thresholds, device, precision and every option that changes a
        result of that kind (not ``visualize_output``; for an image not the
        video settings either, :func:`video_only`). ``models_only``: the
        key of what the models gave (``meta.model_key``), without the
        settings only derived fields depend on (:func:`derived_only`)."""
        cfg = video_only(cfg or self.config, kind)
        derived = derived_only(cfg, kind) if models_only else ()
        selection = FrameSelection.from_config(cfg)
        return resume_keys(input_path, [
            self.detector.loaded.checkpoint_sha256,
            self.pose.loaded.checkpoint_sha256,
            self.detector.loaded.config_sha256,
            self.pose.loaded.config_sha256, cfg.bbox_thr, cfg.nms_thr,
            cfg.det_cat_id, self.detector.device, self.precision.precision,
            self.precision.fast,
            # Only when one ran: results made before the key keep theirs.
            *([self.runtimes()] if self.runtimes() != 'pytorch' else []),
            cfg.det_interval,
            None if 'kpt_thr' in derived else cfg.kpt_thr,
            cfg.tracking, cfg.smoothing, self.pose.flip_test,
            # Only when on: results made before the key keep their keys.
            *(['angles'] if cfg.angles and not derived else []),
            *([selection.as_meta()] if not selection.whole else []),
            *([cfg.max_persons, cfg.person_order] if cfg.max_persons
              else [])])

    def runtimes(self) -> str:
        """What ran the two models' heavy parts: ``pytorch`` when PyTorch
        ran both, else ``detector: <runtime>, pose model: <runtime>``."""
        return runtimes_of(self.detector.loaded.runtime,
                           self.pose.loaded.runtime)

    def settings_by_name(self, kind: str,
                         cfg: Optional[AnalysisConfig] = None) -> dict:
        """The settings of :meth:`resume_keys` by name, as a result's meta
        records them (:func:`pose_suite.service.resume.settings_in_meta`),
        so that a warning can say which changed."""
        cfg = video_only(cfg or self.config, kind)
        selection = FrameSelection.from_config(cfg).as_meta()
        det, pose = self.detector.loaded, self.pose.loaded
        return {
            'detector checkpoint': ModelFile(det.checkpoint_sha256,
                                             det.checkpoint_path.name),
            'detector config': ModelFile(det.config_sha256,
                                         Path(det.config_path).name),
            'pose model checkpoint': ModelFile(pose.checkpoint_sha256,
                                               pose.checkpoint_path.name),
            'pose model config': ModelFile(pose.config_sha256,
                                           Path(pose.config_path).name),
            'bbox_thr': cfg.bbox_thr, 'nms_thr': cfg.nms_thr,
            'kpt_thr': cfg.kpt_thr, 'det_cat_id': cfg.det_cat_id,
            'device': self.detector.device,
            'precision': self.precision.precision,
            'runtime': self.runtimes(),
            'det_interval': cfg.det_interval,
            'tracking': cfg.tracking and kind != 'image',
            'smoothing': cfg.smoothing and kind != 'image',
            'flip_test': self.pose.flip_test, 'angles': cfg.angles,
            **selection, 'max_persons': cfg.max_persons,
            'person_order': cfg.person_order}

    def up_to_date(self, input_path: PathLike, output_file: Path,
                   cfg: Optional[AnalysisConfig] = None
                   ) -> Tuple[Optional[dict], str]:
        """``(meta, '')`` when ``output_file`` is a complete result of
        ``input_path`` made with these settings (its ``meta``), else
        ``(None, why)`` (``why`` is "" when there is no result at all)."""
        if not Path(output_file).exists() or not is_file(input_path):
            return None, ''
        meta = read_meta(output_file)
        kind = meta.get('kind', 'video') if meta else 'video'
        why = why_not_up_to_date(meta, Path(output_file),
                                 *self.resume_keys(input_path, kind, cfg),
                                 self.settings_by_name(kind, cfg)) \
            or why_incomplete(Path(output_file), meta)
        if why is not None and meta and 'resume_key' in meta and \
                meta.get('model_key') == \
                self.resume_keys(input_path, kind, cfg, True)[0] and \
                why_incomplete(Path(output_file), meta) is None:
            # Only angles or kpt_thr changed: no model runs again.
            return rederive(output_file, meta, self.angles(
                video_only(cfg or self.config, kind)),
                video_only(cfg or self.config, kind).kpt_thr, dict(zip(
                    ('resume_key', 'settings_sha256'),
                    self.resume_keys(input_path, kind, cfg))),
                new_result_id()), ''
        return (meta, '') if why is None else (None, why)

    def only_derived_changed(self, input_path: PathLike, output_file: Path,
                             cfg: AnalysisConfig) -> bool:
        """Whether a complete result at ``output_file`` was made by the
        same models and model settings and differs from this run only in
        what is derived from it (angles, kpt_thr where it decides nothing
        else, the movement keys, export formats): then a run without
        ``--resume`` derives those again instead of running the models."""
        meta = read_meta(output_file) if Path(output_file).exists() and \
            is_file(input_path) else None
        if not meta or why_incomplete(Path(output_file), meta) is not None:
            return False
        kind = meta.get('kind', 'video')
        if meta.get('model_key') != self.resume_keys(input_path, kind, cfg,
                                                     True)[0]:
            return False
        return meta.get('resume_key') != self.resume_keys(
            input_path, kind, cfg)[0] or movement_stale(
                output_file, meta, cfg) or any(
            not is_current(output_file, fmt, meta)
            for fmt in cfg.export_formats if fmt not in MOVEMENT_FORMATS)
