"""A run of part of a video (a range, a step, a person limit) resumes like
a whole one: the resumed records are those of an uninterrupted run, and a
complete result made with another selection is never kept as up to date
(issue 38)."""
import json
import shutil
import subprocess
import warnings

import pytest
from conftest import ROOT, fail_on_call

from pose_suite.outputs.writer import ResultWriter

#: 24 frames at 30 fps, two people.
CLIP = ROOT / 'tests' / 'data' / 'two_people_24frames_270p.mp4'
#: Video mode (a detection every 2nd analysed frame), tracks, smoothing.
FOLLOWED = {'det_interval': 2, 'tracking': True, 'smoothing': True}


def _records(result: dict) -> list:
    """What a resumed run must give as a whole one did: per frame, its
    index and time, and per person its track id and keypoints."""
    return [(frame['frame_index'], frame['timestamp_s'],
             [(person['track_id'], person['keypoints'],
               person['keypoints_raw']) for person in frame['persons']])
            for frame in result['frames']]


@pytest.mark.parametrize('selection, analysed, resumed_from', [
    # A seek to frame 2, then every 3rd frame; cut at the 5th analysed
    # frame (the 3rd detection: det_interval counts analysed frames).
    ({'frame_range': [2, None], 'frame_step': 3},
     [2, 5, 8, 11, 14, 17, 20, 23], 12),
    # The frame nearest each 1/7 s tick of the 30 fps clip.
    ({'target_fps': 7}, [0, 4, 9, 13, 17, 21], 14),
    # An MPEG-PS (no packet times): the frames are chosen as they come,
    # counted from the range's first frame when the read resumes too.
    ({'frame_range': [2, None], 'frame_step': 3, 'mpeg_ps': True},
     [2, 5, 8, 11, 14, 17, 20, 23], 12),
    ({'target_fps': 7, 'mpeg_ps': True}, [0, 4, 9, 13, 17, 21], 14),
], ids=['frame_step', 'target_fps', 'frame_step_mpeg_ps',
        'target_fps_mpeg_ps'])
def test_stepped_run_resumed_equals_uninterrupted(
        analysis_service, tmp_path, monkeypatch, selection, analysed,
        resumed_from):
    """Interrupted (Ctrl-C) after four analysed frames and resumed: the
    same frames, times, track ids and keypoints as an uninterrupted run,
    and the four frames kept (not dropped as a damaged partial file)."""
    selection, clip = dict(selection), CLIP
    if selection.pop('mpeg_ps', False):
        if not shutil.which('ffmpeg'):
            pytest.skip('ffmpeg not installed')
        clip = tmp_path / 'clip.mpg'
        subprocess.run(['ffmpeg', '-v', 'error', '-i', str(CLIP), '-c:v',
                        'mpeg2video', '-bf', '2', '-g', '12', '-q:v', '3',
                        str(clip)], check=True)
        from pose_suite.media.packets import packet_table
        assert packet_table(clip) is None  # chosen as they come
    settings = {**FOLLOWED, **selection}
    whole = json.loads(analysis_service.run(
        clip, tmp_path / 'whole.json', settings=settings).read_text())
    assert [f['frame_index'] for f in whole['frames']] == analysed
    assert any(f['persons'] for f in whole['frames'])
    fail_on_call(monkeypatch, analysis_service, 'analyse_frame', 3,
                 KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        analysis_service.run(clip, tmp_path / 'cut.json', settings=settings)
    monkeypatch.undo()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        resumed = json.loads(analysis_service.run(
            clip, tmp_path / 'cut.json', resume=True,
            settings=settings).read_text())
    assert not [w for w in caught if 'damaged at line' in str(w.message)]
    assert resumed['meta']['run']['resumed_from_frame'] == resumed_from
    assert _records(resumed) == _records(whole)
    assert resumed['meta']['selection'] == whole['meta']['selection']
    assert resumed['meta']['frame_count'] == len(analysed)


def test_stepped_partial_with_a_record_out_of_place_resumes_before_it(
        tmp_path):
    """A partial file of every 3rd frame whose 3rd record is frame 7 (not
    6, the next analysed): damage there, as with every frame."""
    from pose_suite.media.selection import FramePlan, FrameSelection
    plan = FramePlan(FrameSelection(frame_step=3), first=0, stop=22,
                     indices=list(range(0, 22, 3)))
    output = tmp_path / 'r.json'
    with ResultWriter(output, 'key', next_after=plan.next_after) as writer:
        for index in (0, 3, 7, 9):
            writer.write_frame(index, index / 30, [])
    with pytest.warns(UserWarning, match='damaged at line 4; resuming from '
                      'frame 4'):
        with ResultWriter(output, 'key', resume=True,
                          next_after=plan.next_after) as writer:
            assert (writer.frame_count, writer.next_frame_index) == (2, 4)


@pytest.mark.parametrize('before, after, said', [
    ({'frame_range': [0, 11]}, {'frame_range': [0, 17]},
     'frame_range [0, 11] -> [0, 17]'),
    ({'time_range': [0.1, None]}, {'time_range': [0.2, None]},
     'time_range [0.1, null] -> [0.2, null]'),
    ({'frame_step': 3}, {'frame_step': 2}, 'frame_step 3 -> 2'),
    ({'target_fps': 7}, {'target_fps': 5}, 'target_fps 7.0 -> 5.0'),
    ({'max_persons': 1}, {'max_persons': 2}, 'max_persons 1 -> 2'),
    ({'max_persons': 1}, {'max_persons': 1, 'person_order': 'score'},
     'person_order largest -> score'),
], ids=['frame_range', 'time_range', 'frame_step', 'target_fps',
        'max_persons', 'person_order'])
def test_result_of_another_selection_is_analysed_again(
        analysis_service, tmp_path, before, after, said):
    """``resume`` keeps a complete result only when it was made with the
    same range, step and person limit; else it is analysed again, with a
    line naming the setting that changed."""
    output = tmp_path / 'r.json'
    analysis_service.run(CLIP, output, settings=before)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        done = analysis_service.analyse_input(CLIP, output, resume=True,
                                              settings=after)
    assert done.status == 'done'
    said_lines = [str(w.message) for w in caught
                  if 're-analysing' in str(w.message)]
    assert len(said_lines) == 1 and said in said_lines[0], \
        [str(w.message) for w in caught]
    meta = json.loads(output.read_text())['meta']
    assert analysis_service.analyse_input(
        CLIP, output, resume=True, settings=after).status == 'up to date'
    assert meta['selection'] == {
        'time_range': None, 'frame_range': None, 'frame_step': 1,
        'target_fps': 0.0, **{key: value for key, value in after.items()
                              if key in meta['selection']}}


#: 24 frames at 4 fps, a key frame every 5th: segments seek.
GOP5 = ROOT / 'tests' / 'data' / 'two_people_24frames_4fps_gop5.mp4'


def test_segments_of_a_selection_stitch_to_a_whole_run(analysis_service,
                                                       tmp_path):
    """Frames 3..21, every 2nd, video mode, tracks and smoothing, cut as
    Ray cuts them (1.5 s), each segment analysed on its own and stitched
    (no Ray: its run is in test_ray_executor.py): the records and meta of
    a whole run."""
    from pose_suite.batch.segments import segment_file, segments_for, stitch
    from pose_suite.config import apply_overrides
    from pose_suite.media.sources import open_source
    settings = {**FOLLOWED, 'frame_range': [3, 21], 'frame_step': 2}
    whole = json.loads(analysis_service.run(
        GOP5, tmp_path / 'whole.json', settings=settings).read_text())
    config = apply_overrides(analysis_service.config,
                             {**settings, 'executor': 'ray',
                              'segment_s': 1.5})
    segments = segments_for(config, open_source(GOP5))
    assert [(s.start, s.stop) for s in segments] == [(3, 11), (11, 19),
                                                     (19, 22)]
    output = tmp_path / 'stitched.json'
    files = [segment_file(output, number, len(segments))
             for number in range(len(segments))]
    for segment, path in zip(segments, files):
        analysis_service.analyse_input(GOP5, path, settings=settings,
                                       frame_range=(segment.start,
                                                    segment.stop))
    stitch(segments, files, output, config)
    stitched = json.loads(output.read_text())
    assert [f['frame_index'] for f in stitched['frames']] == \
        list(range(3, 22, 2))
    assert stitched['frames'] == whole['frames']
    for result in (stitched, whole):
        result['meta'].pop('run')
    assert stitched['meta'] == whole['meta']
