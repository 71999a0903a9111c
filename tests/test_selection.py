"""Analyse only what is asked: ranges, steps and how many persons
(:mod:`pose_suite.media.selection`, :mod:`pose_suite.service.persons`).

A ranged or stepped run must give, for each frame it analyses, the record
a whole run gives at that ``frame_index`` (exact mode: the same boxes,
scores and times, keypoints within 1e-3 px), on a real video and on the
frame-position matrix's awkward clips; which frames it analyses is checked
against the whole run's own times (``_chosen_in``, computed in the
matrix's module from the records alone). A person limit keeps the persons
its order names, with their unlimited keypoints. The reads themselves
(every matrix clip, pixels and all) are in test_frame_positions_matrix.
"""
import json
import shutil
import subprocess
import warnings

import cv2
import numpy as np
import pytest

from conftest import (assert_one_line_error, count_pictures, data_file,
                      run_cli)
from pose_suite.media.selection import FrameSelection
from pose_suite.media.sources import DecodeReport, open_source
from pose_suite.service.persons import choose_boxes
from pose_suite.service.tracking import PoseTracker
from test_frame_positions_matrix import RECIPES, _chosen_in, _make

VIDEO = 'videos/two_people_72frames_1080p.mp4'
FFMPEG = shutil.which('ffmpeg')
#: Matrix clips the runs are compared on: B-frames in an AVI, a variable
#: frame rate, an ``-ss -c copy`` trim, MPEG-TS, a damaged key frame, and
#: an MPEG-PS without packet times (frames chosen as they come).
CLIPS = ['mpeg4_bf2_xvid_avi', 'vfr_pause_mkv', 'trim_ss_copy_mp4',
         'h264_bf3_ts', 'damaged_key_frame_bf3_mkv', 'mpeg2_bf2_mpg']
#: What each clip is cut to, by each of the selection settings.
CUTS = [{'frame_range': [4, 30], 'frame_step': 3},
        {'time_range': [0.5, 1.3]},
        {'time_range': [0.3, None], 'target_fps': 7.0}]


def _frames(result: dict) -> dict:
    return {frame['frame_index']: frame for frame in result['frames']}


def _assert_same_records(part: dict, whole: dict, label):
    """Each record of ``part`` equals ``whole``'s at its frame_index (boxes,
    scores, times; keypoints within 1e-3 px; track ids are the cut run's
    own)."""
    for index, frame in part.items():
        other = whole[index]
        assert frame['timestamp_s'] == other['timestamp_s'], (label, index)
        assert len(frame['persons']) == len(other['persons']), (label, index)
        for mine, theirs in zip(frame['persons'], other['persons']):
            assert mine['bbox'] == theirs['bbox'], (label, index)
            assert mine['bbox_score'] == theirs['bbox_score'], (label, index)
            assert mine['keypoint_scores'] == theirs['keypoint_scores']
            np.testing.assert_allclose(mine['keypoints'], theirs['keypoints'],
                                       atol=1.001e-3, err_msg=str(label))


def _records(result: dict) -> list:
    """(frame_index, timestamp_s, failed) of a result, as the matrix reads
    give them."""
    failed = [(i, None, True) for i in result['meta']['frames_failed']]
    good = [(f['frame_index'], f['timestamp_s'], False)
            for f in result['frames']]
    return sorted(failed + good)


def _run(service, path, output, **settings) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        service.analyse_input(path, output, settings=settings)
    return json.loads(output.read_text())


@pytest.fixture(scope='module')
def clip_files(tmp_path_factory):
    if not FFMPEG:
        pytest.skip('ffmpeg not installed')
    folder = tmp_path_factory.mktemp('clips')
    return {name: _make(folder, name) for name in CLIPS}


@pytest.mark.ffmpeg
@pytest.mark.parametrize('name', ['real'] + CLIPS)
def test_a_cut_run_gives_the_whole_runs_records(analysis_service, clip_files,
                                                tmp_path, name):
    path = data_file(VIDEO) if name == 'real' else clip_files[name]
    whole = _run(analysis_service, path, tmp_path / 'whole.json')
    records = _records(whole)
    for number, cut in enumerate(CUTS):
        part = _run(analysis_service, path, tmp_path / f'{number}.json',
                    **cut)
        expected = _chosen_in(records, FrameSelection(
            **{key: tuple(value) if isinstance(value, list) else value
               for key, value in cut.items()}))
        assert [i for i, _, failed in _records(part) if not failed] == \
            [i for i, _, failed in records if not failed and i in expected], \
            (name, cut)
        _assert_same_records(_frames(part), _frames(whole), (name, cut))
        assert part['end']['frame_count'] == len(part['frames'])
        assert part['meta']['selection'] == {
            'time_range': None, 'frame_range': None, 'frame_step': 1,
            'target_fps': 0, **cut}


def test_a_range_is_read_from_a_seek_and_stops_after_its_end():
    """Cost follows the range: frames before it are skipped by a seek
    (decoding starts at the key frame before it), none after it is read,
    and the frames between steps are never made pictures."""
    source = open_source(data_file(VIDEO))
    whole = DecodeReport()
    count = sum(1 for _ in source.frames(report=whole))
    assert count == 72 and whole.frames_decoded == 72
    late = DecodeReport()
    plan = FrameSelection(time_range=(2.0, None)).plan(source)
    read = [index for index, _, _ in source.frames(report=late, plan=plan)]
    assert read[0] == plan.first and read == list(range(plan.first, 72))
    # Decoded from the key frame before the range, not from the first.
    assert late.frames_decoded < 72 - plan.first + 30, late.frames_decoded
    early = DecodeReport()
    plan = FrameSelection(frame_range=(0, 9), frame_step=3).plan(source)
    read = [index for index, _, frame in source.frames(report=early,
                                                       plan=plan)]
    assert read == [0, 3, 6, 9]
    assert early.frames_decoded <= 11  # frame 10 says the range ended


def test_frames_between_steps_never_become_pictures(monkeypatch):
    source = open_source(data_file(VIDEO))
    counts = count_pictures(monkeypatch)
    plan = FrameSelection(frame_step=8).plan(source)
    read = [index for index, _, frame in source.frames(plan=plan)
            if frame is not None]
    assert read == list(range(0, 72, 8))
    # The first read is frame 0, and is read one ahead: frame 1 too.
    assert counts['pictures'] == len(read) + 1, counts


@pytest.mark.parametrize('order', ['largest', 'score'])
def test_max_persons_keeps_the_persons_its_order_names(analysis_service,
                                                       tmp_path, order,
                                                       monkeypatch):
    """The tiny detector finds 2 persons a frame: with max_persons 1 the
    pose model gets only the one the order names, whose keypoints are
    those of the unlimited run. (One person a forward pass in both runs:
    a batch of 2 crops convolves to within 1e-6 of two batches of 1, which
    the random weights' flat heatmaps turn into up to 0.3 px at near-ties
    in 6 % of the points.)"""
    monkeypatch.setattr(analysis_service.pose, 'batch_size', 1)
    path = data_file(VIDEO)
    cut = {'frame_range': [0, 11]}
    whole = _frames(_run(analysis_service, path, tmp_path / 'w.json', **cut))
    boxes_given = []
    real_extract = analysis_service.pose.extract

    def extract(frame, boxes):
        boxes_given.append(len(boxes))
        return real_extract(frame, boxes)
    monkeypatch.setattr(analysis_service.pose, 'extract', extract)
    limited = _frames(_run(analysis_service, path, tmp_path / 'l.json',
                           max_persons=1, person_order=order, **cut))
    assert boxes_given and max(boxes_given) == 1

    def rank(person):
        x1, y1, x2, y2 = person['bbox']
        area = (x2 - x1) * (y2 - y1)
        return (area, person['bbox_score']) if order == 'largest' \
            else (person['bbox_score'], area)
    assert sum(len(f['persons']) for f in whole.values()) > len(whole)
    for index, frame in limited.items():
        expected = max(whole[index]['persons'], key=rank)
        assert len(frame['persons']) == 1
        kept = frame['persons'][0]
        assert kept['bbox'] == expected['bbox'], index
        # The pose model's batch is 1 person, not 2: rounding.
        np.testing.assert_allclose(kept['keypoints'], expected['keypoints'],
                                   atol=1.001e-3, err_msg=str(index))


def test_longest_keeps_the_box_of_the_longest_track():
    tracker = PoseTracker()
    old = {'bbox': np.array([10, 10, 50, 90.]), 'keypoints':
           np.zeros((133, 2)), 'keypoint_scores': np.zeros(133)}
    new = {'bbox': np.array([200, 10, 300, 200.]), 'keypoints':
           np.zeros((133, 2)), 'keypoint_scores': np.zeros(133)}
    for frame in range(5):  # the small person seen in 5 frames
        tracker.remember([{**old, 'track_id': 0}] +
                         ([{**new, 'track_id': 1}] if frame == 4 else []))
    boxes = np.array([[202, 12, 300, 198, 0.9],   # large, seen once
                      [11, 11, 51, 88, 0.5],      # small, seen 5 times
                      [400, 0, 600, 300, 0.99]])  # largest, new
    kept = choose_boxes(boxes, 1, 'longest', tracker)
    assert kept.tolist() == [boxes[1].tolist()]
    assert choose_boxes(boxes, 2, 'longest', tracker).tolist() == \
        boxes[:2].tolist()  # in the detector's order
    assert choose_boxes(boxes, 1, 'largest').tolist() == [boxes[2].tolist()]
    assert choose_boxes(boxes, 1, 'score').tolist() == [boxes[2].tolist()]
    assert choose_boxes(boxes, 0, 'largest').tolist() == boxes.tolist()


def test_det_interval_counts_analysed_frames(analysis_service, tmp_path,
                                            monkeypatch):
    """frame_step 3 with det_interval 2 from frame 1: the detector runs on
    every other analysed frame (source frames 1, 7, 13, 19; not on the
    even source frames)."""
    detected = []
    real_detect = analysis_service.detector.detect

    def detect(frame):
        detected.append(frame.copy())
        return real_detect(frame)
    monkeypatch.setattr(analysis_service.detector, 'detect', detect)
    result = _run(analysis_service, data_file(VIDEO), tmp_path / 'r.json',
                  frame_range=[1, 24], frame_step=3, det_interval=2)
    assert [f['frame_index'] for f in result['frames']] == \
        list(range(1, 25, 3))
    source = open_source(data_file(VIDEO))
    pictures = {index: frame for index, _, frame in source.frames()
                if index < 25}
    assert len(detected) == 4
    for picture, index in zip(detected, [1, 7, 13, 19]):
        assert np.array_equal(picture, pictures[index]), index


def test_an_overlay_holds_each_analysed_frame_until_the_next(
        analysis_service, tmp_path):
    import dataclasses
    service = analysis_service
    overlay = tmp_path / 'o.mp4'
    old = service.config
    service.config = dataclasses.replace(old, visualize_output=overlay)
    try:
        _run(service, data_file(VIDEO), tmp_path / 'r.json',
             frame_range=[10, 30], frame_step=4)
    finally:
        service.config = old
    capture = cv2.VideoCapture(str(overlay))
    shown = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        shown.append(frame.astype(np.int16))
    source = open_source(data_file(VIDEO))
    analysed = {index: frame.astype(np.int16) for index, _, frame
                in source.frames() if index in range(10, 31, 4)}
    # Frames 10, 14, ..., 30, each shown until the next: 4 times, the
    # last once; each shown frame is nearest its source frame's picture.
    assert len(shown) == 21
    for number, picture in enumerate(shown):
        nearest = min(analysed, key=lambda index: np.abs(
            analysed[index] - picture).mean())
        assert nearest == 10 + 4 * (number // 4), number


def test_openpose_files_are_named_by_source_index(analysis_service,
                                                  tmp_path):
    import dataclasses
    service = analysis_service
    old = service.config
    service.config = dataclasses.replace(old, export_formats=('openpose',))
    try:
        _run(service, data_file(VIDEO), tmp_path / 'r.json',
             frame_range=[20, 40], frame_step=10)
    finally:
        service.config = old
    folder, = tmp_path.glob('*_json')
    names = sorted(p.name for p in folder.iterdir() if p.suffix == '.json')
    assert names == [f'{folder.name[:-5]}_{index:012d}_keypoints.json'
                     for index in (20, 30, 40)]


def test_an_image_is_analysed_whole(analysis_service, tmp_path):
    image = data_file('images/000000000785.jpg')
    result = _run(analysis_service, image, tmp_path / 'i.json',
                  time_range=[5, 10], frame_step=3)
    assert [f['frame_index'] for f in result['frames']] == [0]
    assert result['meta']['selection']['time_range'] is None


@pytest.mark.parametrize('flags, words', [
    (['--time-range', '30-20'], ['time_range ends before it starts']),
    (['--frame-step', '0'], ['frame_step', '>= 1']),
    (['--frame-range', '5-2'], ['frame_range ends before it starts']),
    (['--time-range', '1-2', '--frame-range', '3-4'],
     ['time_range and frame_range']),
    (['--frame-step', '2', '--target-fps', '5'],
     ['frame_step and target_fps']),
    (['--time-range', '10-20'], ['starts after the end', 'frame 71']),
    (['--frame-range', '72-'], ['starts after the end']),
    # Its frames come at 30 fps (28.05 on average, for a gap).
    (['--target-fps', '31'], ['above the frame rate', '(30']),
    (['--time-range', '1..2'], ['--time-range must be START-END']),
    (['--person-order', 'tallest'], ['person_order']),
])
def test_bad_values_are_one_line_and_write_nothing(config_values,
                                                   write_config, tmp_path,
                                                   flags, words):
    output = tmp_path / 'out'
    config = write_config({**config_values, 'input': str(data_file(VIDEO)),
                           'output': str(output)})
    result = run_cli('pose_analysis_service.py', '--config', config, *flags)
    assert_one_line_error(result, *words)
    assert not output.exists()


def test_a_range_past_the_end_is_analysed_to_the_end(config_values,
                                                     write_config, tmp_path):
    output = tmp_path / 'out.json'
    config = write_config({**config_values, 'input': str(data_file(VIDEO)),
                           'output': str(output)})
    result = run_cli('pose_analysis_service.py', '--config', config,
                     '--frame-range', '66-100')
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines()
            if 'runs past the end' in line]
    assert len(said) == 1 and 'ends at frame 71' in said[0], result.stderr
    frames = json.loads(output.read_text())['frames']
    assert [f['frame_index'] for f in frames] == list(range(66, 72))


def test_a_result_of_another_selection_is_not_up_to_date(analysis_service,
                                                         tmp_path):
    path, output = data_file(VIDEO), tmp_path / 'r.json'
    _run(analysis_service, path, output, frame_range=[0, 5])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        done = analysis_service.analyse_input(
            path, output, resume=True, settings={'frame_range': [0, 7]})
    assert done.status == 'done'
    said = ' '.join(str(w.message) for w in caught)
    assert 'frame_range [0, 5] -> [0, 7]' in said, said
    done = analysis_service.analyse_input(
        path, output, resume=True, settings={'frame_range': [0, 7]})
    assert done.status == 'up to date'


def test_iter_frames_follows_the_range_and_step(analysis_service,
                                                monkeypatch):
    import dataclasses
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, frame_range=(2, 11), frame_step=3))
    frames = list(analysis_service.iter_frames(data_file(VIDEO)))
    assert [f['frame_index'] for f in frames] == [2, 5, 8, 11]


def test_a_rate_is_its_frames_not_its_average_and_an_instant_is_a_range(
        analysis_service, tmp_path):
    """The 72-frame clip runs at 30 fps with a 0.2-s gap (28.05 on
    average): target_fps 30 takes every frame; a time range of one
    instant on a frame's time takes that frame."""
    path = data_file(VIDEO)
    every = _run(analysis_service, path, tmp_path / 'a.json',
                 frame_range=[60, 71], target_fps=30.0)
    assert [f['frame_index'] for f in every['frames']] == list(range(60, 72))
    instant = _run(analysis_service, path, tmp_path / 'b.json',
                   time_range=[1.0, 1.0])
    assert [(f['frame_index'], f['timestamp_s'])
            for f in instant['frames']] == [(30, 1.0)]


@pytest.mark.ffmpeg
def test_a_range_past_a_cut_end_is_said_once_where_it_really_ends(
        analysis_service, tmp_path):
    """A file cut short whose index lists the frames it lost: the warning
    is the read's (where the frames really end), not the index's end."""
    if not FFMPEG:
        pytest.skip('ffmpeg not installed')
    path = _make(tmp_path, 'cut_70pc_faststart_mp4')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        analysis_service.analyse_input(path, tmp_path / 'r.json',
                                       settings={'frame_range': [5, 100]})
    said = [str(w.message) for w in caught if 'end' in str(w.message)]
    assert len(said) == 1 and 'none after frame' in said[0], said


@pytest.mark.ffmpeg
def test_an_overlay_keeps_a_variable_rate_clips_times(analysis_service,
                                                      tmp_path):
    """30 frames at 30 fps, a 1-s pause, 30 more: a stepped overlay holds
    each analysed frame until the next one's time and the last one to the
    range's end, at the frames' own rate (30 fps, not the 20 average)."""
    import dataclasses
    if not FFMPEG:
        pytest.skip('ffmpeg not installed')
    clip = tmp_path / 'pause.mp4'
    subprocess.run([FFMPEG, '-v', 'error', '-f', 'lavfi', '-i',
                    'testsrc2=size=160x120:rate=30:duration=2', '-vf',
                    "setpts='if(lt(N,30),N,N+30)/30/TB'", '-fps_mode',
                    'passthrough', '-c:v', 'libx264', '-g', '10', str(clip)],
                   check=True)
    overlay = tmp_path / 'o.mp4'
    service, old = analysis_service, analysis_service.config
    service.config = dataclasses.replace(old, visualize_output=overlay)
    try:
        result = _run(service, clip, tmp_path / 'r.json',
                      time_range=[0.5, 2.5], frame_step=4)
    finally:
        service.config = old
    times = [f['timestamp_s'] for f in result['frames']]
    assert times[0] == 0.5 and times[-1] < 2.5
    capture = cv2.VideoCapture(str(overlay))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(30, abs=0.01)
    shown = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    # From 0.5 s to one frame after the range's last (2.5 s): 2.033 s.
    assert shown == round((2.5 + 1 / 30 - 0.5) * 30), shown

