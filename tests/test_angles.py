"""Joint and segment angles equal to Sports2D's own functions.

Sports2D's ``compute_angles_for_person`` (and through it Pose2Sim's
``fixed_angles`` and ``points_to_angles``) runs on the same keypoints as
ours (:mod:`sports2d_reference`): real annotated whole-body keypoints of
the COCO-WholeBody test annotations, moved as in a video (turned, shifted,
mirrored so that the person faces the other way, points dropped below
``kpt_thr``), and the keypoints of real results on a test video. Every
angle, person and frame must agree within 1e-6 degrees, NaN for NaN.
"""
import csv
import json

import numpy as np
import pytest
from conftest import data_file, real_frames, run_cli, write_avi
from sports2d_reference import (ANGLE_NAMES, our_name, sports2d_angles)

from pose_suite.outputs import angles as angles_module
from pose_suite.outputs.angles import AngleComputer, available
from pose_suite.outputs.report_pictures import wholebody_meta

TOLERANCE = 1e-6  # degrees
KPT_THR = 0.3
FACING = ('auto', 'right', 'left', 'front', 'back', 'none')


@pytest.fixture(scope='module')
def keypoint_names():
    meta = wholebody_meta()
    return [meta['keypoint_id2name'][i] for i in range(133)]


@pytest.fixture(scope='module')
def annotated():
    """(N, 133, 2) keypoints and (N, 133) scores: each annotated person of
    the test annotations, in 12 poses as a moving camera sees it (turned
    by up to +-40 degrees, shifted, every other one mirrored), with its
    scores 0.9 for a labelled point and 0 for one not labelled, and a few
    points of each pose below kpt_thr."""
    annotations = json.loads(data_file(
        'annotations/test_coco_wholebody.json').read_text())['annotations']
    rng = np.random.default_rng(0)
    points, scores = [], []
    for annotation in annotations:
        triplets = np.array(
            annotation['keypoints'] + annotation['foot_kpts']
            + annotation['face_kpts'] + annotation['lefthand_kpts']
            + annotation['righthand_kpts'], np.float64).reshape(133, 3)
        if not (triplets[:, 2] > 0).any():
            continue  # a crowd box, nobody labelled
        centre = triplets[triplets[:, 2] > 0, :2].mean(0)
        for pose in range(12):
            turn = np.radians(-40 + pose * 80 / 11)
            rotation = np.array([[np.cos(turn), -np.sin(turn)],
                                 [np.sin(turn), np.cos(turn)]])
            moved = (triplets[:, :2] - centre) @ rotation.T
            if pose % 2:
                moved[:, 0] = -moved[:, 0]  # facing the other way
            moved += centre + rng.uniform(-50, 50, 2)
            score = np.where(triplets[:, 2] > 0, 0.9, 0.0)
            score[rng.choice(133, 4, replace=False)] = KPT_THR - 1e-3
            points.append(moved)
            scores.append(score)
    return np.array(points), np.array(scores)


def differences(ours: AngleComputer, keypoints, scores, names,
                facing='auto') -> dict:
    """Largest |ours - Sports2D's| per angle (inf where one is NaN and the
    other not); asserts Sports2D gives no angle we leave out."""
    mine = ours.compute(keypoints, scores)
    theirs = sports2d_angles(keypoints, scores, names, ours.kpt_thr, facing)
    left_out = set(ANGLE_NAMES) - set(ours.names)
    assert left_out == {'head'}
    assert all(np.isnan(person['head']) for person in theirs)
    worst = {}
    for column, name in enumerate(ours.names):
        a = mine[:, column]
        b = np.array([person[name] for person in theirs])
        both_nan = np.isnan(a) & np.isnan(b)
        gap = np.where(both_nan, 0.0, np.abs(a - b))
        worst[name] = float(np.nan_to_num(gap, nan=np.inf).max())
    return worst


@pytest.mark.parametrize('facing', FACING)
def test_equal_to_sports2d_on_annotated_people(annotated, keypoint_names,
                                               facing):
    keypoints, scores = annotated
    ours = AngleComputer(keypoint_names, KPT_THR, facing)
    worst = differences(ours, keypoints, scores, keypoint_names, facing)
    assert max(worst.values()) <= TOLERANCE, worst
    computed = np.isfinite(ours.compute(keypoints, scores))
    # Real people: most angles have their points, some not (unlabelled or
    # below kpt_thr), so both paths are checked.
    assert 0.5 < computed.mean() < 1.0


def test_names_mapped_by_name(keypoint_names):
    """Our table maps each Sports2D point to the COCO-WholeBody point of
    the same name, and Pose2Sim's own whole-body skeleton puts that point
    at the same index."""
    from anytree import RenderTree
    from Pose2Sim.skeletons import COCO_133
    pose2sim_ids = {node.name: node.id for _, _, node in RenderTree(COCO_133)}
    for sports2d_name, name in angles_module.POINTS.items():
        assert our_name(sports2d_name) == name
        assert keypoint_names.index(name) == pose2sim_ids[sports2d_name]


@pytest.mark.parametrize('name', list(angles_module.DEFINITIONS))
def test_a_broken_definition_is_found(annotated, keypoint_names, name,
                                      monkeypatch):
    """Each angle's offset, scale and order of points matter: changing one
    makes the comparison fail."""
    keypoints, scores = annotated
    points, offset, scale = angles_module.DEFINITIONS[name]
    breaks = [(points, offset + 1, scale), (points, offset, -scale)]
    if name not in angles_module.HALF_TURN:  # a line has no direction
        breaks.append((points[::-1], offset, scale))
    for broken in breaks:
        monkeypatch.setitem(angles_module.DEFINITIONS, name, broken)
        worst = differences(AngleComputer(keypoint_names, KPT_THR),
                            keypoints, scores, keypoint_names)
        assert worst[name] > 1e-3, (name, broken)


def test_a_point_below_kpt_thr_gives_null(annotated, keypoint_names):
    keypoints, scores = annotated[0][:1].copy(), annotated[1][:1].copy()
    scores[:] = 0.9
    ours = AngleComputer(keypoint_names, KPT_THR)
    assert np.isfinite(ours.compute(keypoints, scores)).all()
    knee = keypoint_names.index('right_knee')
    scores[0, knee] = KPT_THR - 1e-6
    row = ours.as_dicts(keypoints, scores)[0]
    with_knee = {name for name, (points, _, _) in
                 angles_module.DEFINITIONS.items() if 'RKnee' in points}
    assert {name for name, value in row.items() if value is None} == \
        with_knee
    scores[0, knee] = KPT_THR  # a score equal to kpt_thr counts (Sports2D)
    assert None not in ours.as_dicts(keypoints, scores)[0].values()


def test_available_leaves_out_angles_without_points(keypoint_names):
    assert available(keypoint_names) == [n for n in ANGLE_NAMES
                                         if n != 'head']
    body_only = keypoint_names[:17]  # no feet, no hands
    assert 'right ankle' not in available(body_only)
    assert 'right knee' in available(body_only)
    assert 'right hand' not in available(body_only)


@pytest.fixture(scope='module')
def smoothed_result(model_files, tmp_path_factory):
    """A real run of the command line on 6 frames of the two-person test
    video, tracking and smoothing on, kpt_thr 0 (the test model's scores
    are low, some negative), with ``--angles --format angles``."""
    folder = tmp_path_factory.mktemp('angles')
    video = write_avi(folder / 'clip.avi', real_frames(6))
    config = folder / 'config.json'
    config.write_text(json.dumps({
        key: str(model_files[key]) for key in (
            'det_config', 'det_checkpoint', 'pose_config',
            'pose_checkpoint')} | {'device': 'cpu', 'bbox_thr': 0.0,
                                   'kpt_thr': 0.0, 'smoothing': True}))
    result = run_cli('pose_analysis_service.py', '--config', config,
                     '--input', video, '--output', folder / 'out',
                     '--angles', '--format', 'angles', '--quiet')
    assert result.returncode == 0, result.stderr
    return folder / 'out'


def test_equal_to_sports2d_on_results(smoothed_result, keypoint_names):
    """The angles written are Sports2D's angles of the smoothed keypoints
    written, in every frame, for every person."""
    result = json.loads((smoothed_result / 'clip.avi.json').read_text())
    assert result['meta']['angles'] == [n for n in ANGLE_NAMES
                                        if n != 'head']
    assert result['meta']['keypoint_names'] == keypoint_names
    persons = [p for frame in result['frames'] for p in frame['persons']]
    assert len(persons) >= 6
    keypoints = np.array([p['keypoints'] for p in persons], np.float64)
    raw = np.array([p['keypoints_raw'] for p in persons], np.float64)
    scores = np.array([p['keypoint_scores'] for p in persons], np.float64)
    theirs = sports2d_angles(keypoints, scores, keypoint_names, 0.0)
    theirs_raw = sports2d_angles(raw, scores, keypoint_names, 0.0)
    moved_by_smoothing, values = 0.0, []
    for person, expected, expected_raw in zip(persons, theirs, theirs_raw):
        assert list(person['angles']) == result['meta']['angles']
        for name, value in person['angles'].items():
            values.append(value)
            if value is None:  # a point scored below kpt_thr
                assert np.isnan(expected[name]), name
                continue
            assert abs(value - expected[name]) <= TOLERANCE, name
            moved_by_smoothing = max(moved_by_smoothing,
                                     abs(value - expected_raw[name]))
    # The test model scores some points below 0: both paths are checked.
    assert 0.2 < np.mean([v is not None for v in values]) < 1
    assert moved_by_smoothing > 0.01  # from the smoothed points, not raw


def test_angles_csv(smoothed_result):
    result = json.loads((smoothed_result / 'clip.avi.json').read_text())
    with open(smoothed_result / 'clip.avi.angles.csv', newline='') as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ['frame_index', 'timestamp_s', 'person_index',
                             'track_id'] + result['meta']['angles']
    expected = [(frame['frame_index'], index, person)
                for frame in result['frames']
                for index, person in enumerate(frame['persons'])]
    assert len(rows) == len(expected)
    for row, (frame_index, index, person) in zip(rows, expected):
        assert int(row['frame_index']) == frame_index
        assert int(row['person_index']) == index
        assert int(row['track_id']) == person['track_id']
        for name, value in person['angles'].items():
            assert row[name] == ('' if value is None else repr(value))


def test_off_by_default_and_export_needs_it(config_values, write_config,
                                            tmp_path):
    from pose_suite.config import build_config
    assert build_config(config_values).angles is False
    config = write_config(config_values)
    result = run_cli('pose_analysis_service.py', '--config', config,
                     '--format', 'angles')
    assert result.returncode != 0
    assert 'angles export needs angles' in result.stderr
    created = tmp_path / 'made.json'
    result = run_cli('creating_config.py', '--config', created, '--angles')
    assert result.returncode == 0, result.stderr
    assert json.loads(created.read_text())['angles'] is True
    result = run_cli('creating_config.py', '--config', created, '--angles',
                     'false')
    assert json.loads(created.read_text())['angles'] is False


def test_report_plots_angles_per_track(smoothed_result):
    from pose_suite.outputs.angle_plots import angle_plots_html, angle_tracks
    result = smoothed_result / 'clip.avi.json'
    tracks = angle_tracks(result)
    assert tracks and all(set(series) == {'right knee', 'left knee',
                                          'right hip', 'left hip', 'trunk'}
                          for series in tracks.values())
    # A person's angle null in every frame is a note, not a line; one
    # with no angle at all (the test model's knees and hips) no plot.
    with_values = [track for track, series in tracks.items() if any(
        value == value for points in series.values() for _, value in points)]
    with_empty = [track for track, series in tracks.items() if any(
        all(value != value for _, value in points)
        for points in series.values())]
    page = angle_plots_html(result)
    assert page.count('<img class="plot angles"') == len(with_values)
    assert page.count('data-src="data:image/webp;base64,') == len(with_values)
    assert page.count('data-full="data:image/webp;base64,') == len(
        with_values)
    assert page.count('<div class="note">person ') == len(with_empty)


def test_stitched_segments_get_angles(smoothed_result, keypoint_names,
                                      model_files, tmp_path):
    """A video cut into Ray segments: the stitched result's angles are
    computed again from its re-tracked, re-smoothed keypoints (segments
    written here without angles, so that only stitching can give them)."""
    from pose_suite.batch.segments import Segment, stitch
    from pose_suite.config import build_config
    from pose_suite.outputs.results import record_line, write_result
    whole = json.loads((smoothed_result / 'clip.avi.json').read_text())
    segments, files = [Segment(0, 3), Segment(3, None)], []
    for number, segment in enumerate(segments):
        frames = whole['frames'][segment.start:segment.stop]
        for frame in frames:
            for person in frame['persons']:
                del person['angles']
        meta = dict(whole['meta'], frame_count=len(frames))
        files.append(tmp_path / f'segment{number}.json')
        with open(files[-1], 'w', encoding='utf-8') as handle:
            write_result(handle, meta, map(record_line, frames))
    config = build_config({key: str(model_files[key]) for key in (
        'det_config', 'det_checkpoint', 'pose_config', 'pose_checkpoint')}
        | {'kpt_thr': 0.0, 'smoothing': True, 'angles': True})
    stitch(segments, files, tmp_path / 'stitched.json', config)
    stitched = json.loads((tmp_path / 'stitched.json').read_text())
    persons = [p for frame in stitched['frames'] for p in frame['persons']]
    theirs = sports2d_angles(
        np.array([p['keypoints'] for p in persons], np.float64),
        np.array([p['keypoint_scores'] for p in persons], np.float64),
        keypoint_names, 0.0)
    for person, expected in zip(persons, theirs):
        for name, value in person['angles'].items():
            if value is None:
                assert np.isnan(expected[name])
            else:
                assert abs(value - expected[name]) <= TOLERANCE
    original = json.loads((smoothed_result / 'clip.avi.json').read_text())
    assert [p['angles'] for f in original['frames'] for p in f['persons']] \
        == [p['angles'] for p in persons]
