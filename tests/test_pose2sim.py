"""Pose2Sim's own code on what ``--format pose2sim`` writes: the reader of
its triangulation step on every frame, person and point, and its
triangulation run end to end on two views, as a user runs it.

Pose2Sim is the real package from the registry (``make test`` installs it
with ``--no-deps`` and what its triangulation imports:
``tests/requirements.txt``). The two views are the same real clip
seen by two cameras whose calibration this file writes so that both see a
plane 4 m away identically (camera 2 is 0.5 m to the right, its principal
point shifted by f × 0.5 / 4 px): every 2D point then has one exact 3D
point on that plane, computed here in closed form.
"""
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rtoml
from anytree import RenderTree
from conftest import real_frames, run_cli, write_avi
from Pose2Sim.common import sort_stringlist_by_last_number
from Pose2Sim.skeletons import COCO_133
from Pose2Sim.triangulation import extract_files_frame_f

FRAMES = 4
CAMERAS = ('cam01', 'cam02')
FOCAL, CENTRE_X, CENTRE_Y = 500.0, 240.0, 135.0  # px, for 480x270 frames
BASELINE, DEPTH = 0.5, 4.0  # m
#: Pose2Sim's whole-body skeleton: 131 of the 133 points (not the two hand
#: roots, which are the wrists again), by index in mmpose's order.
COCO_133_IDS = [node.id for _, _, node in RenderTree(COCO_133)
                if node.id is not None]
COCO_133_NAMES = [node.name for _, _, node in RenderTree(COCO_133)
                  if node.id is not None]


@pytest.fixture(scope='module')
def trial(model_files, tmp_path_factory):
    """A Pose2Sim trial folder: ``videos/cam01.avi`` and ``cam02.avi`` (the
    same real clip), analysed by one command of ours, results in place."""
    trial = tmp_path_factory.mktemp('pose2sim') / 'Trial'
    videos = trial / 'videos'
    videos.mkdir(parents=True)
    write_avi(videos / 'cam01.avi', real_frames(FRAMES))
    shutil.copy(videos / 'cam01.avi', videos / 'cam02.avi')
    suite_config = trial.parent / 'suite.json'
    suite_config.write_text(json.dumps({
        key: str(model_files[key]) for key in (
            'det_config', 'det_checkpoint', 'pose_config',
            'pose_checkpoint')} | {'device': 'cpu', 'bbox_thr': 0.0}))
    result = run_cli('pose_analysis_service.py', '--config', suite_config,
                     '--input', videos, '--output', videos,
                     '--format', 'pose2sim', '--quiet')
    assert result.returncode == 0, result.stderr
    return trial


def _native(trial: Path, camera: str) -> dict:
    return json.loads((trial / 'videos' / f'{camera}.avi.json').read_text())


def _files_of_frame(pose: Path, frame: int) -> list:
    """The file of ``frame`` in each camera folder, chosen as Pose2Sim's
    ``triangulate_all`` chooses them (folders and files sorted by their last
    number, a file's frame its last digits)."""
    folders = sort_stringlist_by_last_number(
        [name for name in os.listdir(pose) if 'json' in name])
    assert folders == [f'{camera}_json' for camera in CAMERAS]
    chosen = []
    for folder in folders:
        names = sort_stringlist_by_last_number(
            fnmatch.filter(os.listdir(pose / folder), '*.json'))
        assert len(names) == FRAMES
        chosen += [pose / folder / name for name in names
                   if int(re.split(r'(\d+)', name)[-2]) == frame]
    assert len(chosen) == len(folders)
    return chosen


def test_pose2sim_reads_every_point(trial):
    """Pose2Sim's reader gives, for every frame, person, camera and point,
    the x, y and score of our JSON: through its COCO_133 skeleton, and
    through all 133 indices."""
    natives = [_native(trial, camera) for camera in CAMERAS]
    for frame in range(FRAMES):
        files = _files_of_frame(trial / 'pose', frame)
        for ids in (COCO_133_IDS, list(range(133))):
            x, y, scores = extract_files_frame_f(files, ids)
            for camera, native in enumerate(natives):
                record = native['frames'][frame]
                assert record['frame_index'] == frame
                assert x.shape[0] == len(record['persons']) == 2
                for person, found in enumerate(record['persons']):
                    keypoints = np.asarray(found['keypoints'])[ids]
                    assert x[person, camera].tolist() == \
                        keypoints[:, 0].tolist()
                    assert y[person, camera].tolist() == \
                        keypoints[:, 1].tolist()
                    assert scores[person, camera].tolist() == \
                        np.asarray(found['keypoint_scores'])[ids].tolist()


def _write_pose2sim_project(trial: Path, likelihood_threshold: float) -> None:
    """Config.toml (Pose2Sim's demo one, for whole-body points) and a
    calibration of two cameras that agree on the plane Z = DEPTH."""
    import Pose2Sim
    config = rtoml.load(Path(Pose2Sim.__file__).parent / 'Demo_SinglePerson'
                        / 'Config.toml')
    config['pose']['pose_model'] = 'Whole_body'
    config['triangulation'].update(
        likelihood_threshold_triangulation=likelihood_threshold,
        min_chunk_size=1, handle_LR_swap=False, undistort_points=False,
        make_c3d=False)
    rtoml.dump(config, trial / 'Config.toml')
    cameras = {}
    for number, shift in ((1, 0.0), (2, BASELINE)):
        cameras[f'cam_0{number}'] = {
            'name': f'cam0{number}', 'size': [480.0, 270.0],
            'matrix': [[FOCAL, 0.0, CENTRE_X + FOCAL * shift / DEPTH],
                       [0.0, FOCAL, CENTRE_Y], [0.0, 0.0, 1.0]],
            'distortions': [0.0, 0.0, 0.0, 0.0],
            'rotation': [0.0, 0.0, 0.0], 'translation': [-shift, 0.0, 0.0],
            'fisheye': False}
    (trial / 'calibration').mkdir(exist_ok=True)
    rtoml.dump(cameras | {'metadata': {'adjusted': False, 'error': 0.0}},
               trial / 'calibration' / 'Calib.toml')


def _read_trc(path: Path):
    """(header fields, marker names, (frames, markers, 3) coordinates)."""
    lines = path.read_text().splitlines()
    header = dict(zip(lines[1].split('\t'), lines[2].split('\t')))
    markers = [name for name in lines[3].split('\t')[2:] if name]
    rows = np.array([[float(v) for v in line.split('\t')]
                     for line in lines[5:] if line.strip()])
    return header, markers, rows[:, 2:].reshape(len(rows), len(markers), 3)


def test_pose2sim_triangulates_two_views(trial):
    """Pose2Sim's triangulation, run in the trial folder as its README
    says, turns our two views into a .trc at the clip's frame rate whose
    points are where the calibration puts them: on the plane 4 m away,
    (x, y) = (u - cx, v - cy) × 4 / f, in Pose2Sim's Y-up axes."""
    threshold = 0.0  # the test models' scores are of random weights
    _write_pose2sim_project(trial, threshold)
    result = subprocess.run(
        [sys.executable, '-c', 'from Pose2Sim import Pose2Sim; '
         'Pose2Sim.triangulation()'], cwd=trial, capture_output=True,
        text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    header, markers, points = _read_trc(
        trial / 'pose-3d' / f'Trial_0-{FRAMES - 1}.trc')
    assert markers == COCO_133_NAMES
    assert header['NumFrames'] == str(FRAMES)
    assert header['DataRate'] == '10'  # write_avi's clip: 10 fps
    checked = 0
    for frame, record in enumerate(_native(trial, 'cam01')['frames']):
        person = record['persons'][0]  # single-person mode: the first one
        uv = np.asarray(person['keypoints'])[COCO_133_IDS]
        seen = np.asarray(person['keypoint_scores'])[COCO_133_IDS] >= \
            threshold
        world = np.stack([(uv[:, 0] - CENTRE_X) * DEPTH / FOCAL,
                          (uv[:, 1] - CENTRE_Y) * DEPTH / FOCAL,
                          np.full(len(uv), DEPTH)], axis=1)
        y_up = world[:, [1, 2, 0]]  # Pose2Sim's zup2yup: X->Y, Y->Z, Z->X
        np.testing.assert_allclose(points[frame][seen], y_up[seen],
                                   atol=1e-6)
        checked += seen.sum()
    # Random weights score about three points in four above 0 (401 of 524
    # here); the others Pose2Sim leaves out and fills.
    assert checked > 0.5 * FRAMES * len(COCO_133_IDS), checked
