"""Long videos cut into segments analysed in parallel, and stitched back.

Only the frames a run selects are cut (a range and step,
:mod:`pose_suite.media.selection`): the segments go from the range's first
frame to its stop. A cut falls on a detection frame (an analysed frame
whose number among the analysed frames is a multiple of ``det_interval``),
so every frame of a segment is measured exactly as in a whole run: the
keypoints are the same. Tracking and smoothing are what one frame hands
to the next, so the segments' own track ids and filtered keypoints stop at
the cut; the stitching redoes both over the whole video from the measured
keypoints as written, as a whole run computes them (``PoseAnalyser``
tracks and smooths the written values too). A stitched result therefore
equals a whole run, track ids and smoothed keypoints included; no overlap
is needed. A selection a segment cannot follow on its own (frames chosen
as they come, or the persons of the longest tracks) is one unit.
"""
import dataclasses
import json
import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from pose_suite.errors import SuiteWarning, visible
from pose_suite.media.selection import FramePlan, FrameSelection
from pose_suite.outputs.angles import AngleComputer
from pose_suite.outputs.exports import SUFFIXES
from pose_suite.outputs.openpose import FOLDER_FORMATS
from pose_suite.outputs.publish import atomic_write
from pose_suite.outputs.results import (frame_record, iter_frame_records,
                                        persons_from_record, record_line,
                                        write_result)
from pose_suite.service.meta import new_result_id
from pose_suite.service.tracking import CarriedState


@dataclasses.dataclass(frozen=True)
class Segment:
    """Frames ``[start, stop)`` of a video (``stop`` None: to its end)."""

    start: int
    stop: Optional[int]


def plan_segments(frame_count: int, fps: float, segment_s: float,
                  det_interval: int = 1,
                  plan: Optional[FramePlan] = None) -> List[Segment]:
    """Cut the frames of a video that ``plan`` analyses (None, or every
    frame: all ``frame_count`` of them) into segments of about
    ``segment_s`` seconds of source time at ``fps`` frames a second (one
    segment when they are not longer, or the length is unknown).

    ``plan`` must know its frames in advance (``plan.indices``) unless it
    analyses every frame.

    Returns:
        The segments in order, from the plan's first frame to its stop
        (None: the video's end). Each starts on an analysed frame that
        ``det_interval`` makes a detection frame in a whole run (its
        ``count_before`` a multiple of ``det_interval``); a last segment
        shorter than half the others joins the one before.
    """
    if plan is None or plan.everything:
        analysed, stop, end = range(frame_count), None, frame_count
    else:
        analysed, stop = plan.indices, plan.stop
        end = stop
    length = _round_up(max(1, round(segment_s * fps)), det_interval) \
        if fps > 0 and segment_s > 0 else 0
    if not analysed:
        return [Segment(0, stop)]
    if length == 0 or end - analysed[0] <= length:
        return [Segment(analysed[0], stop)]
    cuts = [analysed[0]]
    # Detection frames: every det_interval-th analysed frame.
    for cut in analysed[det_interval::det_interval]:
        if cut >= cuts[-1] + length:
            cuts.append(cut)
    if len(cuts) > 1 and end - cuts[-1] < length / 2:
        cuts.pop()
    return [Segment(cut, cuts[number + 1] if number + 1 < len(cuts)
                    else stop) for number, cut in enumerate(cuts)]


def segments_for(config, source) -> List[Segment]:
    """The segments ``source`` (an opened
    :class:`~pose_suite.media.sources.FrameSource`) is cut in with
    ``config`` (the input's own settings: its range and step,
    ``segment_s`` in seconds, ``det_interval``); [] for one unit (not a
    video, no ``segment_s``, or a selection segments cannot follow, said
    in one warning line).

    Raises:
        RangeError: the range selects no frame of it.
    """
    if source.kind != 'video' or not config.segment_s:
        return []
    with warnings.catch_warnings():
        # A range past the end: said by the worker that analyses it.
        warnings.simplefilter('ignore', SuiteWarning)
        plan = FrameSelection.from_config(config).plan(source)
    why = _not_cut_because(config, plan)
    if why:
        warnings.warn(f'{visible(source.path)} is analysed as one unit, '
                      f'not in segments of {config.segment_s:g} s: {why}',
                      SuiteWarning)
        return []
    return plan_segments(max(source.frame_count or 1, 1), source.fps or 0.0,
                         config.segment_s, config.det_interval, plan)


def _not_cut_because(config, plan: FramePlan) -> Optional[str]:
    """Why a segment could not analyse its frames as a whole run does
    (None: it can)."""
    if config.max_persons and config.person_order == 'longest':
        return ('max_persons with person_order longest keeps the persons '
                'of the longest tracks, which follow the video from its '
                'start')
    if plan.indices is None and not plan.everything:
        return ('its frames are chosen as they come (the file gives no '
                'packet times), so a segment cannot know which frames the '
                'range and step pick before it')
    return None


def segment_file(output_file: Path, number: int, count: int) -> Path:
    """Where segment ``number`` of ``count`` is written, beside the
    result (hidden; removed once stitched)."""
    output_file = Path(output_file)
    return output_file.with_name(
        f'.{output_file.name}.segment-{number + 1:03d}-of-{count:03d}.json')


def stitch(segments: List[Segment], files: List[Path], output_file: Path,
           config, run_info: Optional[dict] = None) -> Tuple[dict, int]:
    """Join the segment results ``files`` (in order) into ``output_file``,
    published atomically; the files stay (:func:`remove_segments` once the
    exports are written too), so that a stitching cut off at any point can
    be done again. ``config``: the run's :class:`AnalysisConfig`
    (tracking, smoothing, kpt_thr).

    Returns:
        The result's ``meta`` and its number of persons (all frames).
    """
    started = time.perf_counter()
    metas = [_read_meta(path) for path in files]
    meta = {key: value for key, value in metas[0].items()
            if key != 'segment'}
    frame_count = sum(m['frame_count'] for m in metas)
    meta.update(
        frame_count=frame_count,
        frames_failed=[i for m in metas for i in m['frames_failed']],
        frames_unread_at_end=metas[-1]['frames_unread_at_end'],
        # Null (not checked) when a segment was not.
        frames_damaged=None if any(m.get('frames_damaged') is None
                                   for m in metas)
        else [i for m in metas for i in m['frames_damaged']])
    meta['run'] = {
        'finished_at': metas[-1]['run']['finished_at'],
        'seconds': round(sum(m['run']['seconds'] for m in metas)
                         + time.perf_counter() - started, 3),
        'resumed_from_frame': None,
        'result_id': new_result_id(),
        **(run_info or {}),
        'attempts': max(m['run'].get('attempts', 1) for m in metas),
        'segments': [{'frames': [segment.start, segment.stop],
                      **{key: m['run'].get(key) for key in (
                          'node', 'node_id', 'worker', 'attempts',
                          'resumed_from_frame', 'seconds')}}
                     for segment, m in zip(segments, metas)],
    }
    carried = CarriedState.for_source(config, 'video')
    angles = AngleComputer(meta['keypoint_names'], config.kpt_thr) \
        if config.angles else None
    persons_total = [0]

    def frame_lines() -> Iterator[str]:
        for path in files:
            for record in iter_frame_records(path):
                persons = persons_from_record(record)
                for person in persons:
                    person.pop('track_id', None)
                persons = carried.follow(persons, record['timestamp_s'])
                persons_total[0] += len(persons)
                yield record_line(frame_record(
                    record['frame_index'], record['timestamp_s'], persons,
                    angles))

    with atomic_write(output_file, encoding='utf-8') as handle:
        write_result(handle, meta, frame_lines())
    return meta, persons_total[0]


def remove_segments(output_file: Path, files: List[Path]) -> None:
    """Remove the segment ``files`` of ``output_file``, and whatever an
    attempt killed while stitching or exporting left beside it (the
    temporary files of the result and of its exports, and the hidden
    folders of its OpenPose exports). Called last, once the result and its
    exports are published."""
    output_file = Path(output_file)
    name, stem = re.escape(output_file.name), re.escape(output_file.stem)
    suffixes = '|'.join(re.escape(s) for s in SUFFIXES.values())
    left = re.compile(
        rf'\.(?:{name}|{name}\.exports\.json|{stem}(?:{suffixes}))'
        r'\.[0-9a-f]{8}\.tmp'
        rf'|\.{name}\.(?:{"|".join(FOLDER_FORMATS)})\.[0-9a-f]{{8}}'
        r'\.partial(?:\.old)?')
    for path in output_file.parent.iterdir():
        if left.fullmatch(path.name):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    for path in files:
        Path(path).unlink(missing_ok=True)


def _read_meta(path: Path) -> dict:
    with open(path, encoding='utf-8') as handle:
        return json.load(handle)['meta']


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
