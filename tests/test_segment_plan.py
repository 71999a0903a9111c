"""Where a long video is cut for Ray (``segment_s``) when a run analyses
only part of it (a range, a step, issue 38): the segments cover exactly
the frames a whole run analyses, and each starts on one of its detection
frames. Pure: no models, no Ray (the Ray run is in test_ray_executor.py)."""
import warnings
from pathlib import Path

import pytest
from conftest import ROOT

from pose_suite.batch.local import BatchResult
from pose_suite.batch.ray_executor import _plan
from pose_suite.batch.segments import Segment, plan_segments, segments_for
from pose_suite.config import build_config
from pose_suite.media.inputs import Inputs
from pose_suite.media.selection import FramePlan, FrameSelection
from pose_suite.media.sources import open_source

#: 24 frames at 4 fps, a key frame every 5th (it has a packet table).
CLIP = ROOT / 'tests' / 'data' / 'two_people_24frames_4fps_gop5.mp4'


def _plan_of(indices, **selection) -> FramePlan:
    return FramePlan(FrameSelection(**selection), first=indices[0],
                     stop=indices[-1] + 1, indices=list(indices))


#: Plans of a 1000-frame 25 fps video: a range and a step, and the
#: irregular choice target_fps makes (the nearest frame of each tick).
PLANS = {
    'range and step': _plan_of(range(101, 901, 3), frame_range=(101, 900),
                               frame_step=3),
    'ticks': _plan_of(sorted({round(tick * 25 / 7) for tick in range(250)}),
                      target_fps=7.0),
}


@pytest.mark.parametrize('det_interval', [1, 2, 3])
@pytest.mark.parametrize('segment_s', [1.0, 4.0, 9.5])
@pytest.mark.parametrize('name', list(PLANS))
def test_segments_cover_the_plan_and_start_on_detection_frames(
        name, segment_s, det_interval):
    plan = PLANS[name]
    segments = plan_segments(1000, 25.0, segment_s, det_interval, plan)
    assert len(segments) > 1
    # From the plan's first frame to its stop, without gaps.
    assert segments[0].start == plan.first
    assert segments[-1].stop == plan.stop
    assert [s.stop for s in segments[:-1]] == [s.start for s in segments[1:]]
    # Every analysed frame in exactly one segment.
    held = [index for s in segments for index in plan.indices
            if s.start <= index < s.stop]
    assert held == plan.indices
    for segment in segments:
        # An analysed frame that is a detection frame of a whole run.
        assert segment.start in plan.indices
        assert plan.count_before(segment.start) % det_interval == 0
    # About segment_s seconds each: none shorter (but the last, never
    # under half), none longer than the next detection frame allows.
    length = segment_s * 25
    longest_gap = max(b - a for a, b in zip(plan.indices, plan.indices[1:]))
    for segment in segments[:-1]:
        assert length <= segment.stop - segment.start < \
            length + 1 + det_interval * longest_gap
    assert segments[-1].stop - segments[-1].start >= length / 2


def test_a_range_and_step_cut_where_a_whole_run_detects():
    """Frames 3..21, every 2nd, det_interval 2 (detections on 3, 7, 11,
    15, 19), 1.5 s at 4 fps (6 frames): cut at 11 and 19."""
    plan = _plan_of(range(3, 22, 2), frame_range=(3, 21), frame_step=2)
    assert plan_segments(24, 4.0, 1.5, 2, plan) == [
        Segment(3, 11), Segment(11, 19), Segment(19, 22)]


def test_a_whole_video_is_cut_as_before():
    """Every frame: multiples of det_interval, the last to the end."""
    assert plan_segments(24, 4.0, 2.0, 2) == [
        Segment(0, 8), Segment(8, 16), Segment(16, None)]
    whole = FramePlan(FrameSelection(), first=0, stop=None)
    assert plan_segments(24, 4.0, 2.0, 2, whole) == \
        plan_segments(24, 4.0, 2.0, 2)


def _config(**values):
    """A config of a Ray run cutting 1.5 s segments, video mode."""
    return build_config({'executor': 'ray', 'segment_s': 1.5,
                         'det_interval': 2, **values})


def test_segments_for_a_video_with_a_range_and_step():
    """A real clip's plan (packet times): 1.5 s at 4 fps, cut on
    detection frames of frames 2.., every 3rd."""
    source = open_source(CLIP)
    segments = segments_for(_config(frame_range=[2, None], frame_step=3),
                            source)
    plan = FrameSelection(frame_range=(2, None), frame_step=3).plan(source)
    assert segments == plan_segments(source.frame_count, source.fps, 1.5, 2,
                                     plan)
    assert [s.start for s in segments] == [2, 8, 14, 20]
    assert segments[-1].stop == 24


@pytest.mark.parametrize('values, why', [
    ({'max_persons': 1, 'person_order': 'longest'}, 'person_order longest'),
    ({'frame_step': 3, 'packets': False}, 'chosen as they come'),
])
def test_a_selection_segments_cannot_follow_is_one_unit(values, why,
                                                        monkeypatch):
    """The longest tracks are the whole video's; frames chosen as they
    come (no packet times) are not known before a segment's start: one
    unit, said in one line."""
    if not values.pop('packets', True):
        import pose_suite.media.packets as packets
        monkeypatch.setattr(packets, 'packet_table', lambda path: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert segments_for(_config(**values), open_source(CLIP)) == []
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and why in said[0] and 'one unit' in said[0] \
        and '\n' not in said[0], said


def test_ray_plan_uses_each_inputs_own_range(tmp_path):
    """Per-input settings (a list file's range) decide an input's
    segments; a range past its end is that input's failure, before any
    worker."""
    clip = tmp_path / 'clip.mp4'
    clip.write_bytes(CLIP.read_bytes())
    other = tmp_path / 'other.mp4'
    other.write_bytes(CLIP.read_bytes())
    settings = {str(clip): {'frame_range': [12, None]},
                str(other): {'frame_range': [50, None]}}
    result = BatchResult()
    units = _plan(_config(), Inputs([clip, other], many=True),
                  [tmp_path / 'clip.json', tmp_path / 'other.json'], result,
                  settings_for=lambda path: settings.get(str(path)))
    assert [(u.kind, u.segment) for u in units] == [
        ('segment', Segment(12, 18)), ('segment', Segment(18, 24))]
    assert [Path(f[0]).name for f in result.failures] == ['other.mp4']
    assert 'starts after the end' in result.failures[0][1]


def test_what_every_segment_says_of_its_input_is_said_once():
    """Each segment of a range past the end warns of it; the batch says
    it once per input (another input's same words are said again)."""
    import warnings

    from pose_suite.batch.ray_executor import say_once
    said = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        for number in (1, 1, 1, 2):
            say_once(said, number, ['time_range 0-99 s runs past the end',
                                    f'segment note {len(caught)}'])
    messages = [str(w.message) for w in caught]
    assert messages.count('time_range 0-99 s runs past the end') == 2
    assert len(messages) == 6
