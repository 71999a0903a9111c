"""``PoseAnalysisService``: RTMDet person detection followed by HRNet
whole-body pose on every frame of an input, written as one JSON file.

Both executors run inputs through :meth:`PoseAnalysisService.analyse_input`
(``executor: local`` in :mod:`pose_suite.batch`, ``executor: ray`` in
:mod:`pose_suite.ray_worker`); ``pose_analysis_service.py`` is the script and
the name users import it by.
"""
import dataclasses
import datetime
import itertools
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from pose_suite.config import (AnalysisConfig, apply_overrides, build_config,
                               load_config)
from pose_suite.errors import InputError, OutputError, SuiteWarning, one_line
from pose_suite.exports import export, export_path
from pose_suite.inputs import Inputs
from pose_suite.overlay import OverlayWriter, overlay_path
from pose_suite.results import (ResultWriter, frame_record,
                                persons_from_record, read_meta)
from pose_suite.resume import (finished_segment, is_file, resume_keys,
                               segment_key, why_not_up_to_date)
from pose_suite.sources import (DecodeReport, Frame, FrameSource, is_stream,
                                open_source)
from pose_suite.tracking import CarriedState, boxes_from_keypoints

PathLike = Union[str, Path]


@dataclasses.dataclass(frozen=True)
class InputResult:
    """What :meth:`PoseAnalysisService.analyse_input` did with one input.

    ``status``: ``'done'`` (analysed now, wholly or resumed) or
    ``'up to date'`` (``resume`` found a complete result of the same input
    and settings and kept it; ``frames`` and ``persons`` are then 0, since
    nothing was analysed). ``seconds``: this call's analysis time.
    """

    output: Path
    status: str
    frames: int = 0
    persons: int = 0
    seconds: float = 0.0


class PoseAnalysisService:
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
        from pose_suite.precision import choose_precision, say
        from pose_suite.runtime import resolve_device

        if isinstance(config, AnalysisConfig):
            self.config = apply_overrides(config, overrides)
        elif isinstance(config, dict):
            self.config = build_config({**config, **overrides})
        else:
            self.config = load_config(Path(config), overrides)
        cfg = self.config
        #: What runs for the precision asked (pose_suite.precision).
        self.precision = choose_precision(cfg.precision,
                                          resolve_device(cfg.device))
        say(self.precision)
        run = dict(precision=self.precision.precision,
                   fast=self.precision.fast)
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

    def analyse_frame(self, frame_bgr: np.ndarray) -> List[Dict]:
        """Detect and estimate every person in one (H, W, 3) BGR frame.

        Returns:
            The list of ``PoseExtractionService.extract`` (bbox, bbox_score,
            keypoints (133, 2) in pixels, keypoint_scores (133,)).
        """
        return self.pose.extract(frame_bgr, self.detector.detect(frame_bgr))

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
                      source: Optional[FrameSource] = None,
                      keep_up_to_date: Optional[bool] = None) -> InputResult:
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
                segment of a longer run (:mod:`pose_suite.segments`); no
                exports. A finished segment is kept when resumed.
            run_info: entries added to ``meta.run`` (the executor, node and
                worker that wrote the result).
            on_frame: called with each frame index once it is written.
            source: ``input_path`` already opened (``open_source``), so
                that it is not opened and probed again.
            keep_up_to_date: whether a complete result of the same input
                and settings is kept (default: ``resume``); a Ray worker
                resumes a dead attempt's partial file without it.

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
        resume = cfg.resume if resume is None else resume
        keep = resume if keep_up_to_date is None else keep_up_to_date
        output_file = cfg.output_file()
        # Checked before the input is opened, so that a finished batch
        # resumes in seconds.
        if frame_range and resume and is_file(cfg.input) and \
                finished_segment(output_file, segment_key(
                    self.resume_keys(cfg.input)[0], frame_range)):
            return InputResult(output_file, 'up to date')
        if keep and not frame_range:
            meta, why = self.up_to_date(cfg.input, output_file)
            if meta is not None:  # formats asked for since: written now
                self.export(output_file, meta, only_missing=True)
                return InputResult(output_file, 'up to date')
            if why:
                warnings.warn(f're-analysing {cfg.input}: {why}',
                              SuiteWarning)
        if source is None or str(source.path) != str(cfg.input):
            source = open_source(cfg.input)  # the input's own errors
        resume_key, settings_key = self.resume_keys(cfg.input)
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
                              resume,
                              carried.replay) as writer, self._progress_bar(
                                  source, writer.next_frame_index) as bar:
                self.writer = writer  # progress, for an interrupted caller
                if resume and writer.resumed_from is None and \
                        not self.in_batch and not frame_range:
                    warnings.warn(f'nothing to resume for {output_file}; '
                                  'starting from the first frame',
                                  SuiteWarning)
                if overlay_file:
                    overlay = OverlayWriter(
                        overlay_file, source.kind, source.width,
                        source.height, source.fps,
                        self.pose.model.dataset_meta, cfg.kpt_thr)
                self._write_frames(cfg, source, writer, overlay, carried, bar,
                                   report, first, stop, on_frame)
                if writer.frame_count == 0 and first == 0:
                    raise InputError(
                        f'no frame could be read from {cfg.input}')
                meta = self._meta(cfg, source, writer, report,
                                  time.perf_counter() - started)
                # What a resumed run checks a result against.
                meta.update(resume_key=resume_key,
                            settings_sha256=settings_key)
                meta['run'].update(run_info or {})
                if frame_range:
                    meta['segment'] = {'frames': [first, stop],
                                       'resume_key': key_of_segment}
                output = writer.commit(meta)
        finally:
            if overlay:
                overlay.close(keep=output is not None)
        if not frame_range:
            self.export(output, meta)
        return InputResult(output, 'done', writer.frame_count,
                           writer.person_count, meta['run']['seconds'])

    def export(self, output: Path, meta: dict,
               only_missing: bool = False) -> None:
        """Write the config's ``export_formats`` beside a result JSON
        (``only_missing``: those not there yet).

        Raises:
            OutputError: the JSON stays; the export named failed.
        """
        for fmt in self.config.export_formats:
            if only_missing and export_path(output, fmt,
                                           meta['source']).exists():
                continue
            try:
                export(output, fmt, meta, self.pose.model.dataset_meta)
            except Exception as exc:  # noqa: BLE001
                raise OutputError(
                    f'{output} was written, but its {fmt} export failed: '
                    f'{one_line(exc)}') from None

    def _write_frames(self, cfg: AnalysisConfig, source: FrameSource,
                      writer: ResultWriter, overlay: Optional[OverlayWriter],
                      carried: CarriedState, bar, report: DecodeReport,
                      first: int = 0, stop: Optional[int] = None,
                      on_frame: Optional[Callable[[int], None]] = None
                      ) -> None:
        """Analyse the frames not yet written (from ``first``, before
        ``stop``) and write them, in order."""
        frames = source.frames(start=max(writer.next_frame_index, first),
                               report=report)
        if stop is not None:
            frames = itertools.takewhile(lambda item: item[0] < stop, frames)
        try:
            for frame_index, timestamp_s, frame, persons in self._analysed(
                    frames, cfg, source, carried.persons):
                if persons is None:
                    writer.write_failed(frame_index)
                else:
                    # Tracked and smoothed as written (0.001 px, 1 µs),
                    # which is all a resumed or stitched run has: all three
                    # then give the same.
                    written = frame_record(frame_index, timestamp_s, persons)
                    persons = carried.follow(persons_from_record(written),
                                             written['timestamp_s'])
                    writer.write_frame(frame_index, timestamp_s, persons)
                    if overlay:
                        overlay.write(frame, persons)
                bar.update(1)
                if on_frame:
                    on_frame(frame_index)
        except KeyboardInterrupt:
            if source.kind != 'stream':
                raise  # a file: keep the partial result to resume
            # A live source has no end: Ctrl-C ends it, and what was seen is
            # written as a complete result.

    def run_many(self, inputs: Union[Inputs, List[Union[Path, str]]]
                 ) -> Tuple[List[Path], List[Tuple[str, str]],
                            List[Tuple[str, str]]]:
        """``run`` each input into the config's ``output`` folder (names:
        see :mod:`pose_suite.inputs`), one after another in this process; a
        failing input does not stop the others, and one that turns out not
        to be media is skipped. Then ``summary.csv``, ``summary.json`` and
        (``report``) ``report.html`` are written there. (``executor: ray`` spreads them over
        workers: :func:`pose_suite.batch.run_batch`.)

        Returns:
            The JSON files written (or kept up to date, with ``resume``),
            ``(input, reason)`` per failure, and
            ``(input, reason)`` per file skipped as not media (those the
            search skipped first).
        Raises:
            OutputError: before any work, when two inputs would write the
            same file or ``output`` is one ``.json`` file.
        """
        from pose_suite.batch import publish_summary, run_local
        result = run_local(self, inputs)
        publish_summary(self.config, result)
        return (result.outputs + result.up_to_date, result.failures,
                result.skipped)

    def iter_frames(self, input_path: Optional[PathLike] = None
                    ) -> Iterator[Dict]:
        """Analyse an image or video frame by frame, writing nothing.

        Yields, as each frame is done: ``{'frame_index': int,
        'timestamp_s': float, 'persons': [...]}`` with persons as
        ``analyse_frame`` returns them (numpy arrays). Frames that cannot be
        decoded are skipped with a warning.
        """
        source = open_source(self.config.input if input_path is None
                             else input_path)  # a file, camera or stream
        for frame_index, timestamp_s, _, persons in self._analysed(
                source.frames(), self.config, source):
            if persons is not None:
                yield {'frame_index': frame_index, 'timestamp_s': timestamp_s,
                       'persons': persons}

    def _progress_bar(self, source: FrameSource, done: int):
        """A tqdm bar on stderr for videos and streams, when it is a
        terminal and the service is not ``quiet``; a no-op bar otherwise.
        (``run_many`` adds a bar over the inputs.)"""
        from tqdm import tqdm
        return tqdm(total=source.frame_count or None, initial=done,
                    unit='frame', desc=Path(str(source.path)).name,
                    dynamic_ncols=True, leave=not self.in_batch,
                    disable=(self.quiet or source.kind == 'image'
                             or not sys.stderr.isatty()))

    def _analysed(self, frames: Iterator[Frame], cfg: AnalysisConfig,
                  source: FrameSource, persons: Optional[List[Dict]] = None
                  ) -> Iterator[Tuple]:
        """Yield ``(frame_index, timestamp_s, frame, persons)`` in frame
        order; frame and persons are None for a frame that could not be
        decoded. ``persons``: those of the frame before the first (video
        mode follows them)."""
        if cfg.det_interval == 1 and self.frame_batch > 1:
            for chunk in _chunks(frames, self.frame_batch):
                decoded = [frame for _, _, frame in chunk if frame is not None]
                boxes = iter(self.detector.detect_batch(decoded)
                             if decoded else [])
                for frame_index, timestamp_s, frame in chunk:
                    yield frame_index, timestamp_s, frame, \
                        None if frame is None \
                        else self.pose.extract(frame, next(boxes))
            return
        persons = persons or []
        for frame_index, timestamp_s, frame in frames:
            if frame is None:
                yield frame_index, timestamp_s, None, None
                continue
            if persons and frame_index % cfg.det_interval:
                # Video mode: follow the people found before, by their
                # keypoints as written (0.001 px), which is all a resumed
                # run has: both then compute the same boxes.
                boxes = boxes_from_keypoints(
                    persons_from_record(frame_record(0, 0.0, persons)),
                    cfg.kpt_thr, source.width, source.height)
                persons = self.pose.extract(frame, boxes)
            else:
                persons = self.analyse_frame(frame)
            yield frame_index, timestamp_s, frame, persons

    def resume_keys(self, input_path: PathLike) -> Tuple[str, str]:
        """``(resume_key, settings_sha256)`` of a run of ``input_path`` with
        this service (:func:`pose_suite.resume.resume_keys`): the settings
        are the checkpoints, the model configs by their resolved content
        (an edit to them, or to a file they inherit from, is another run),
        thresholds, device, precision and every option that changes a
        result (not ``visualize_output``)."""
        cfg = self.config
        return resume_keys(input_path, [
            self.detector.loaded.checkpoint_sha256,
            self.pose.loaded.checkpoint_sha256,
            self.detector.loaded.config_sha256,
            self.pose.loaded.config_sha256, cfg.bbox_thr, cfg.nms_thr,
            cfg.det_cat_id, self.detector.device, self.precision.precision,
            self.precision.fast,
            cfg.det_interval, cfg.kpt_thr, cfg.tracking, cfg.smoothing,
            self.pose.flip_test])

    def up_to_date(self, input_path: PathLike, output_file: Path
                   ) -> Tuple[Optional[dict], str]:
        """``(meta, '')`` when ``output_file`` is a complete result of
        ``input_path`` made with these settings (its ``meta``), else
        ``(None, why)`` (``why`` is "" when there is no result at all)."""
        if not Path(output_file).exists() or not is_file(input_path):
            return None, ''
        meta = read_meta(output_file)
        why = why_not_up_to_date(meta, Path(output_file),
                                 *self.resume_keys(input_path))
        return (meta, '') if why is None else (None, why)

    def _meta(self, cfg: AnalysisConfig, source: FrameSource,
              writer: ResultWriter, report: DecodeReport,
              seconds: float) -> dict:
        from pose_suite.runtime import package_versions  # imports torch

        def model_meta(loaded):
            return {'config': str(loaded.config_path),
                    'config_sha256': loaded.config_sha256,
                    'checkpoint': loaded.checkpoint_path.name,
                    'checkpoint_sha256': loaded.checkpoint_sha256}

        return {
            'source': str(source.path),
            'kind': source.kind,
            'width': source.width,
            'height': source.height,
            'fps': source.fps,
            'rotation': source.rotation,
            'mirrored': source.mirrored,
            'frame_count': writer.frame_count,
            'frame_count_reported': source.frame_count,
            'frames_failed': writer.frames_failed,
            'frames_unread_at_end': report.frames_unread_at_end,
            'keypoint_names': self.pose.keypoint_names,
            'skeleton_links': self.pose.skeleton_links,
            'detector': model_meta(self.detector.loaded),
            'pose_model': model_meta(self.pose.loaded),
            'thresholds': {'bbox_thr': cfg.bbox_thr, 'nms_thr': cfg.nms_thr,
                           'kpt_thr': cfg.kpt_thr},
            'det_cat_id': cfg.det_cat_id,
            'det_interval': cfg.det_interval,
            'precision': self.precision.precision,
            'precision_asked': cfg.precision,
            'flip_test': self.pose.flip_test,
            'tracking': cfg.tracking and source.kind != 'image',
            'smoothing': cfg.smoothing and source.kind != 'image',
            'device': self.detector.device,
            'versions': package_versions(),
            'run': {
                'finished_at': datetime.datetime.now(
                    datetime.timezone.utc).isoformat(timespec='seconds'),
                'seconds': round(seconds, 3),
                'resumed_from_frame': writer.resumed_from,
                'executor': 'local',
                'detector_nms': self.detector.nms,
                'bf16_speedup_measured': self.precision.bf16_speedup,
            },
        }


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
