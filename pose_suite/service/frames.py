"""The per-frame loop: frames in, persons out, written in frame order.

:class:`~pose_suite.service.analyser.PoseAnalyser` calls these with itself
as ``analyser`` (its ``detector``, ``pose``, ``frame_batch`` and
``analyse_frame``), so that a test or a caller that swaps one of those on
the instance changes what the loop runs.
"""
import itertools
import sys
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from pose_suite.config import AnalysisConfig
from pose_suite.errors import InputError, SuiteWarning, visible
from pose_suite.media.selection import FramePlan, FrameSelection, RangeError
from pose_suite.media.sources import DecodeReport, Frame, FrameSource
from pose_suite.outputs.overlay import OverlayWriter
from pose_suite.outputs.results import frame_record, persons_from_record
from pose_suite.outputs.writer import ResultWriter
from pose_suite.service.persons import choose_boxes
from pose_suite.service.tracking import CarriedState, boxes_from_keypoints


def write_frames(analyser, cfg: AnalysisConfig, source: FrameSource,
                 writer: ResultWriter, overlay: Optional[OverlayWriter],
                 carried: CarriedState, bar, report: DecodeReport,
                 first: int = 0, stop: Optional[int] = None,
                 on_frame: Optional[Callable[[int], None]] = None,
                 plan: Optional[FramePlan] = None) -> None:
    """Analyse the frames not yet written (from ``first``, before
    ``stop``) that ``plan`` selects (None: all), and write them, in order.

    Args:
        bar: a tqdm bar, advanced once a frame (:func:`progress_bar`).
        report: filled in by the source when the video ends.
        on_frame: called with each frame index once it is written.
    """
    plan = plan or FramePlan(FrameSelection(), 0, None)
    first = max(first, plan.first)
    stop = plan.stop if stop is None else \
        stop if plan.stop is None else min(stop, plan.stop)
    # A resumed run checks the damage of the frames written before too.
    report.damage_range = (first, stop)
    start = max(writer.next_frame_index, first)
    frames = source.frames(start=start, report=report, plan=plan)
    if stop is not None:
        frames = itertools.takewhile(lambda item: item[0] < stop, frames)
    # Where det_interval's count of analysed frames stands at the start.
    counted = plan.count_before(start)
    if counted is None:  # chosen as they come: the records written count
        counted = writer.frame_count + len(writer.frames_failed)
    try:
        for frame_index, timestamp_s, frame, persons in analysed(
                analyser, frames, cfg, source, carried, counted):
            if persons is None:
                writer.write_failed(frame_index)
            else:
                # Tracked and smoothed as written (0.001 px, 1 µs), which
                # is all a resumed or stitched run has: all three then give
                # the same.
                written = frame_record(frame_index, timestamp_s, persons)
                persons = carried.follow(persons_from_record(written),
                                         written['timestamp_s'])
                writer.write_frame(frame_index, timestamp_s, persons)
                if overlay:
                    overlay.write(frame, persons, timestamp_s)
            bar.update(1)
            if on_frame:
                on_frame(frame_index)
    except KeyboardInterrupt:
        if report.damage:
            report.damage.close()
        if source.kind != 'stream':
            raise  # a file: keep the partial result to resume
        # A live source has no end: Ctrl-C ends it, and what was seen is
        # written as a complete result.
    except BaseException:
        if report.damage:
            report.damage.close()
        raise
    report.frames_damaged = damaged_frames(source, writer, report, first)


def check_any_frame(writer: ResultWriter, plan: FramePlan, name) -> None:
    """Refuse a result without a frame (of a whole input, ``name``).

    Raises:
        RangeError: the range held no frame (chosen as they come: a
            camera, a stream, a file without packet times).
        InputError: no frame could be read.
    """
    if writer.frame_count:
        return
    if not plan.everything and not writer.frames_failed:
        raise RangeError(f'{plan.selection.describe()} holds no frame of '
                         f'{visible(name)}')
    raise InputError(f'no frame could be read from {name}')


def damaged_frames(source: FrameSource, writer: ResultWriter,
                   report: DecodeReport, first: int) -> Optional[List[int]]:
    """The frames written (from ``first``) that FFmpeg decoded with
    errors it concealed, said in one warning line; None when not checked
    (see :mod:`pose_suite.media.damage`)."""
    if report.damage is None:
        return None
    try:
        failed = set(writer.frames_failed)
        damaged = report.damage.damaged(
            i for i in range(first, writer.next_frame_index)
            if i not in failed)
    finally:
        report.damage.close()  # every way out (Ctrl-C while waiting)
    if damaged:
        shown = ', '.join(map(str, damaged[:10])) + \
            (', ...' if len(damaged) > 10 else '')
        warnings.warn(f'{visible(source.path)}: {len(damaged)} frame(s) '
                      'decoded with errors FFmpeg concealed (partly guessed '
                      f'pictures): {shown}; listed in meta.frames_damaged; '
                      'the frames after each up to the next key frame refer '
                      'to it and may be smeared too', SuiteWarning)
    return damaged


def analysed(analyser, frames: Iterator[Frame], cfg: AnalysisConfig,
             source: FrameSource, carried: Optional[CarriedState] = None,
             counted: int = 0) -> Iterator[Tuple]:
    """Yield ``(frame_index, timestamp_s, frame, persons)`` in frame order;
    frame and persons are None for a frame that could not be decoded.

    Args:
        frames: ``(frame_index, timestamp_s, frame)`` from
            :meth:`FrameSource.frames`; frame (H, W, 3) BGR or None.
        carried: the tracks and the persons of the frame before the first
            (video mode follows them; ``person_order`` longest reads the
            tracks, which the caller updates as it writes each frame).
        counted: frames analysed (or failed) before the first:
            ``det_interval`` counts analysed frames.
    """
    tracker = carried.tracker if carried is not None else None

    def chosen(boxes):
        """At most max_persons boxes, before the pose model runs."""
        return choose_boxes(boxes, cfg.max_persons, cfg.person_order,
                            tracker)

    if cfg.det_interval == 1 and analyser.frame_batch > 1:
        for chunk in _chunks(frames, analyser.frame_batch):
            decoded = [frame for _, _, frame in chunk if frame is not None]
            boxes = iter(analyser.detector.detect_batch(decoded)
                         if decoded else [])
            for frame_index, timestamp_s, frame in chunk:
                yield frame_index, timestamp_s, frame, \
                    None if frame is None \
                    else analyser.pose.extract(frame, chosen(next(boxes)))
        return
    persons = (carried.persons if carried is not None else None) or []
    for number, (frame_index, timestamp_s, frame) in enumerate(frames,
                                                              counted):
        if frame is None:
            yield frame_index, timestamp_s, None, None
            continue
        if persons and number % cfg.det_interval:
            # Video mode: follow the people found before, by their
            # keypoints as written (0.001 px), which is all a resumed run
            # has: both then compute the same boxes.
            boxes = boxes_from_keypoints(
                persons_from_record(frame_record(0, 0.0, persons)),
                cfg.kpt_thr, source.width, source.height)
            persons = analyser.pose.extract(frame, boxes)
        else:
            # The input's own person limit; longest reads the tracks.
            persons = analyser.analyse_frame(frame, tracker, cfg.max_persons,
                                             cfg.person_order)
        yield frame_index, timestamp_s, frame, persons


def progress_bar(source: FrameSource, done: int, quiet: bool,
                 in_batch: bool, plan: Optional[FramePlan] = None):
    """A tqdm bar on stderr for videos and streams, when it is a terminal
    and not ``quiet``; a no-op bar otherwise. ``done``: frames already
    written; ``in_batch``: the batch has its own bar over the inputs, so
    this one is not left on screen; ``plan``: its frames are the total,
    where known."""
    from tqdm import tqdm
    total = len(plan.indices) if plan is not None and \
        plan.indices is not None else source.frame_count
    return tqdm(total=total or None, initial=done,
                unit='frame', desc=visible(Path(str(source.path)).name),
                dynamic_ncols=True, leave=not in_batch,
                disable=(quiet or source.kind == 'image'
                         or not sys.stderr.isatty()))


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
