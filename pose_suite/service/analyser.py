"""``PoseAnalyser``: RTMDet person detection followed by HRNet whole-body
pose on every frame of an input, written as one JSON file.

It owns the two models and the per-input bookkeeping: which output, resume
or keep up to date, the overlay, the ``meta`` (:mod:`.meta`) and the
exports; the per-frame loop is :mod:`.frames`. Both executors run inputs
through :meth:`PoseAnalyser.analyse_input` (``executor: local`` in
:mod:`pose_suite.batch.local`, ``executor: ray`` in
:mod:`pose_suite.batch.ray_worker`). Users know it as
``pose_analysis_service.PoseAnalysisService``, which adds ``run_many`` (a
batch, one layer up).
"""
import dataclasses
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from pose_suite.config import (AnalysisConfig, apply_overrides, build_config,
                               load_config)
from pose_suite.config.specs import is_stream
from pose_suite.errors import (MovementError, OutputError, SuiteWarning,
                               one_line)
from pose_suite.media.selection import FrameSelection
from pose_suite.media.sources import DecodeReport, FrameSource, open_source
from pose_suite.outputs.angles import AngleComputer
from pose_suite.outputs.exports import (export, is_current, record_overlay,
                                        remove_stale)
from pose_suite.outputs.overlay import OverlayWriter, overlay_path
from pose_suite.movement import MOVEMENT_FORMATS, write_movement
from pose_suite.outputs.results import repeat_losses
from pose_suite.outputs.writer import ResultWriter
from pose_suite.service.frames import (analysed, check_any_frame,
                                       progress_bar, write_frames)
from pose_suite.service.meta import result_meta
from pose_suite.service.resume import finished_segment, is_file, segment_key
from pose_suite.service.persons import choose_boxes
from pose_suite.service.tracking import CarriedState, PoseTracker
from pose_suite.service.up_to_date import ResultChecks

PathLike = Union[str, Path]


@dataclasses.dataclass(frozen=True)
class InputResult:
    """What :meth:`PoseAnalyser.analyse_input` did with one input.

    ``status``: ``'done'`` (analysed now, wholly or resumed) or
    ``'up to date'`` (``resume`` found a complete result of the same input
    and settings and kept it; ``frames`` and ``persons`` are then 0, since
    nothing was analysed). ``frames`` and ``persons``: those analysed by
    this call; ``frames_kept``: those a resumed run kept from its partial
    result. ``seconds``: this call's analysis time. ``exports``: the
    formats written by this call.
    """

    output: Path
    status: str
    frames: int = 0
    persons: int = 0
    seconds: float = 0.0
    frames_kept: int = 0
    exports: Tuple[str, ...] = ()


class PoseAnalyser(ResultChecks):
    """RTMDet person detection followed by HRNet whole-body pose, per frame.

    Args:
        config: path of a config.json, a dict of its keys (relative paths
            taken from the current folder), or an :class:`AnalysisConfig`.
        **overrides: config keys to change, e.g. ``device='cpu'``.
    """

    def __init__(self, config: Union[PathLike, dict, AnalysisConfig],
                 **overrides):
        # Imported here so that `--help` and config errors answer at once.
        from detection_service import DetectionService
        from pose_extraction_service import PoseExtractionService
        from pose_suite.models.precision import choose_precision, say
        from pose_suite.models.runtime import resolve_device

        if isinstance(config, AnalysisConfig):
            self.config = apply_overrides(config, overrides)
        elif isinstance(config, dict):
            self.config = build_config({**config, **overrides})
        else:
            self.config = load_config(Path(config), overrides)
        cfg = self.config
        #: What runs for the precision asked (pose_suite.models.precision).
        self.precision = choose_precision(cfg.precision,
                                          resolve_device(cfg.device))
        say(self.precision)
        run = dict(precision=self.precision.precision,
                   fast=self.precision.fast, runtime=cfg.runtime)
        self.detector = DetectionService(
            cfg.det_config, cfg.det_checkpoint, device=cfg.device,
            bbox_thr=cfg.bbox_thr, nms_thr=cfg.nms_thr,
            det_cat_id=cfg.det_cat_id, **run)
        on_gpu = self.detector.device.startswith('cuda')
        self.pose = PoseExtractionService(
            cfg.pose_config, cfg.pose_checkpoint, device=cfg.device,
            batch_size=32 if on_gpu else 8,
            flip_test=None if cfg.flip_test == 'auto' else cfg.flip_test,
            **run)
        # Frames per detector pass: batching pays on a GPU; a CPU already
        # runs one frame's convolutions on all its cores.
        self.frame_batch = 8 if on_gpu else 1
        self.quiet = cfg.quiet  # True: no progress bar, no summary lines
        #: True while a batch runs it: per-input notes (nothing to resume)
        #: and each video's own progress bar are left out.
        self.in_batch = False

    def analyse_frame(self, frame_bgr: np.ndarray,
                      tracker: Optional[PoseTracker] = None,
                      max_persons: Optional[int] = None,
                      person_order: Optional[str] = None) -> List[Dict]:
        """Detect and estimate every person in one (H, W, 3) BGR frame, at
        most ``max_persons`` of them (default: the config's), chosen by
        ``person_order`` before the pose model runs
        (:mod:`pose_suite.service.persons`; ``tracker``: the tracks of the
        frames before, for ``longest``).

        Returns:
            The list of ``PoseExtractionService.extract`` (bbox, bbox_score,
            keypoints (133, 2) in pixels, keypoint_scores (133,)).
        """
        boxes = choose_boxes(
            self.detector.detect(frame_bgr),
            self.config.max_persons if max_persons is None else max_persons,
            person_order or self.config.person_order, tracker)
        return self.pose.extract(frame_bgr, boxes)

    def run(self, input_path: Optional[PathLike] = None,
            output_path: Optional[PathLike] = None,
            resume: Optional[bool] = None, **options) -> Path:
        """Analyse every frame of an image or video and write the JSON
        (:meth:`analyse_input`, which says more).

        Returns:
            The path of the JSON file written (or kept, up to date).
        """
        return self.analyse_input(input_path, output_path, resume,
                                  **options).output

    def analyse_input(self, input_path: Optional[PathLike] = None,
                      output_path: Optional[PathLike] = None,
                      resume: Optional[bool] = None, *,
                      frame_range: Optional[Tuple[int, Optional[int]]] = None,
                      run_info: Optional[dict] = None,
                      on_frame: Optional[Callable[[int], None]] = None,
                      source: Optional[FrameSource] = None, plan=None,
                      keep_up_to_date: Optional[bool] = None,
                      settings: Optional[dict] = None) -> InputResult:
        """Analyse every frame of an image or video and write the JSON.

        Args:
            input_path: defaults to the config's ``input``.
            output_path: a .json file, or a folder for <input file
                name>.json; defaults to the config's ``output``.
            resume: continue an interrupted run of the same input and
                settings, and keep a complete result of them (``'up to
                date'``); defaults to the config's ``resume``.
            frame_range: ``(first, stop)`` frame indices: analyse only
                these frames of a video (stop None: to the end), as one
                segment of a longer run (:mod:`pose_suite.batch.segments`); no
                exports. A finished segment is kept when resumed.
            run_info: entries added to ``meta.run`` (the executor, node and
                worker that wrote the result).
            on_frame: called with each frame index once it is written.
            source, plan: ``input_path`` already opened
                (``open_source``), and its frames planned
                (``FrameSelection.plan``), so neither is done again.
            keep_up_to_date: whether a complete result of the same input
                and settings is kept (default: ``resume``); a Ray worker
                resumes a dead attempt's partial file without it.
            settings: config keys that differ for this input (a list
                file's range: ``{'time_range': (12.5, 30.0)}``).

        Returns:
            What was done (:class:`InputResult`).
        Raises:
            InputError, OutputError, ResumeError: nothing is written at the
            output path. An interruption (KeyboardInterrupt) keeps the frames
            done so far for ``resume``.
        """
        cfg = self.config
        if input_path is not None:
            cfg = dataclasses.replace(cfg, input=input_path if is_stream(
                input_path) else Path(input_path))
        if output_path is not None:
            cfg = dataclasses.replace(cfg, output=Path(output_path))
        if settings:
            cfg = apply_overrides(cfg, settings)
        resume = cfg.resume if resume is None else resume
        keep = resume if keep_up_to_date is None else keep_up_to_date
        output_file = cfg.output_file()
        self.published = None  # set once the result is written
        why = ''  # why a complete result is analysed again
        # Checked before the input is opened, so that a finished batch
        # resumes in seconds.
        if frame_range and resume and is_file(cfg.input) and \
                finished_segment(output_file, segment_key(
                    self.resume_keys(cfg.input, cfg=cfg)[0], frame_range)):
            return InputResult(output_file, 'up to date')
        if keep and not frame_range:
            meta, why = self.up_to_date(cfg.input, output_file, cfg)
            if meta is not None:  # formats asked for since: written now
                exports = tuple(self.export(output_file, meta,
                                            only_stale=True, cfg=cfg))
                repeat_losses(output_file, meta)
                return InputResult(output_file, 'up to date',
                                   exports=exports)
            if why:
                warnings.warn(f're-analysing {cfg.input}: {why}',
                              SuiteWarning)
        elif not frame_range and self.only_derived_changed(
                cfg.input, output_file, cfg):
            meta, _ = self.up_to_date(cfg.input, output_file, cfg)
            return InputResult(output_file, 'up to date', exports=tuple(
                self.export(output_file, meta, only_stale=True, cfg=cfg)))
        if source is None or str(source.path) != str(cfg.input):
            source, plan = open_source(cfg.input), None  # its own errors
        if plan is None or plan.selection != FrameSelection.from_config(cfg):
            # The frames to analyse (a range past the end: refused here).
            plan = FrameSelection.from_config(cfg).plan(source)
        resume_key, settings_key = self.resume_keys(cfg.input, source.kind,
                                                    cfg)
        key_of_segment = segment_key(resume_key, frame_range) \
            if frame_range else None
        # In the results' layout below the configured output folder.
        overlay_file = overlay_path(cfg.visualize_output, source.kind,
                                    output_file, self.config.output) \
            if cfg.visualize_output else None
        started = time.perf_counter()
        carried = CarriedState.for_source(cfg, source.kind)
        overlay, output, report = None, None, DecodeReport()
        first, stop = frame_range or (0, None)
        try:
            with ResultWriter(output_file, key_of_segment or resume_key,
                              resume, carried.replay, self.angles(cfg),
                              plan.next_after) as writer, progress_bar(
                                  source, writer.frame_count +
                                  len(writer.frames_failed), self.quiet,
                                  self.in_batch, plan) as bar:
                self.writer = writer  # progress, for an interrupted caller
                if resume and writer.resumed_from is None and \
                        not writer.restarted and not self.in_batch and \
                        not frame_range and not why:  # else said why
                    warnings.warn(f'nothing to resume for {output_file}; '
                                  'starting from the first frame',
                                  SuiteWarning)
                if overlay_file:
                    overlay = OverlayWriter(
                        overlay_file, source.kind, source.width,
                        source.height, plan.fps or source.fps,
                        self.pose.model.dataset_meta, cfg.kpt_thr)
                write_frames(self, cfg, source, writer, overlay, carried, bar,
                             report, first, stop, on_frame, plan)
                if first == 0:
                    check_any_frame(writer, plan, cfg.input)
                meta = result_meta(self, cfg, source, writer, report,
                                   time.perf_counter() - started)
                # What a resumed run checks a result against.
                meta.update(resume_key=resume_key,
                            settings_sha256=settings_key,
                            model_key=self.resume_keys(
                                cfg.input, source.kind, cfg, True)[0])
                meta['run'].update(run_info or {})
                if frame_range:
                    meta['segment'] = {'frames': [first, stop],
                                       'resume_key': key_of_segment}
                output = writer.commit(meta)
                self.published = output  # its exports follow
        finally:
            if overlay:
                overlay.close(keep=output is not None, end_s=plan.end_s)
        exports = () if frame_range else tuple(self.export(
            output, meta, overlay=overlay_file if overlay else None,
            cfg=cfg))
        return InputResult(
            output, 'done', writer.frame_count - writer.kept_frames,
            writer.person_count - writer.kept_persons,
            meta['run']['seconds'], writer.kept_frames, exports)

    def export(self, output: Path, meta: dict, only_stale: bool = False,
               overlay: Optional[Path] = None,
               cfg: Optional[AnalysisConfig] = None) -> List[str]:
        """Write the config's ``export_formats`` beside a result JSON
        (``only_stale``: those not there, or made from another result),
        once the exports and overlay made from an earlier result are
        removed (:func:`~pose_suite.outputs.exports.remove_stale`);
        ``overlay``: the one just written for this result. Returns the
        formats written.

        Raises:
            OutputError: the JSON stays; the export named failed.
        """
        remove_stale(output, meta, fresh=[overlay] if overlay else ())
        if overlay is not None:
            record_overlay(output, meta, overlay)  # linked by the report
        written = []
        cfg = cfg or self.config
        for fmt in cfg.export_formats:
            if fmt in MOVEMENT_FORMATS or (
                    only_stale and is_current(output, fmt, meta)):
                continue
            try:
                export(output, fmt, meta, self.pose.model.dataset_meta)
            except Exception as exc:  # noqa: BLE001
                raise OutputError(
                    f'{output} was written, but its {fmt} export failed: '
                    f'{one_line(exc)}') from None
            written.append(fmt)
        try:
            return written + write_movement(output, meta, cfg, only_stale)
        except MovementError as exc:  # the result itself is sound
            warnings.warn(f'no movement data for {output.name}: {exc}',
                          SuiteWarning)
            return written

    def iter_frames(self, input_path: Optional[PathLike] = None
                    ) -> Iterator[Dict]:
        """Analyse an image or video frame by frame, writing nothing.

        Yields, as each frame the config's range and step select is done:
        ``{'frame_index': int, 'timestamp_s': float, 'persons': [...]}``
        with persons as ``analyse_frame`` returns them (numpy arrays).
        Frames that cannot be decoded are skipped with a warning.
        """
        source = open_source(self.config.input if input_path is None
                             else input_path)  # a file, camera or stream
        plan = FrameSelection.from_config(self.config).plan(source)
        for frame_index, timestamp_s, _, persons in analysed(
                self, source.frames(plan=plan), self.config, source,
                counted=plan.count_before(plan.first) or 0):
            if persons is not None:
                yield {'frame_index': frame_index, 'timestamp_s': timestamp_s,
                       'persons': persons}

    def angles(self, cfg) -> Optional[AngleComputer]:
        """What computes each person's angles, when ``cfg.angles``."""
        return AngleComputer(self.pose.keypoint_names, cfg.kpt_thr) \
            if cfg.angles else None
