"""Exports beside the native JSON: mmpose's demo format, COCO, CSV."""
import csv
import dataclasses
import json
import subprocess
import sys

import json_tricks
import numpy as np
import pytest
from conftest import COCO_IMAGES, ROOT, data_file, real_frames, write_avi


@pytest.fixture
def exporting(analysis_service, monkeypatch):
    return _exporting(analysis_service, monkeypatch)


def _exporting(service, monkeypatch):
    """``service`` writing the mmpose, coco and csv exports too."""
    monkeypatch.setattr(service, 'config', dataclasses.replace(
        service.config, export_formats=('mmpose', 'coco', 'csv')))
    return service


def test_mmpose_export_matches_mmpose_demo(real_analysis_service,
                                           real_model_files, monkeypatch,
                                           tmp_path):
    """The same image through mmpose's own demo --save-predictions and
    through this suite's mmpose export (real-size models): same structure
    and numbers, except the real bbox_score where the demo writes 1.0."""
    model_files = real_model_files
    exporting = _exporting(real_analysis_service, monkeypatch)
    image = data_file(COCO_IMAGES[3])
    native = exporting.run(image, tmp_path / 'ours' / 'result.json')
    ours = json_tricks.loads(
        (tmp_path / 'ours' / 'result.mmpose.json').read_text())
    demo_dir = tmp_path / 'demo'
    subprocess.run(
        [sys.executable, str(ROOT / 'benchmarks' / 'mmpose_demo.py'),
         str(model_files['det_config']), str(model_files['det_checkpoint']),
         str(model_files['pose_config']), str(model_files['pose_checkpoint']),
         '--input', str(image), '--output-root', str(demo_dir),
         '--save-predictions', '--device', 'cpu', '--bbox-thr', '0',
         '--nms-thr', '0.3'], check=True, capture_output=True, cwd=ROOT,
        timeout=600)
    demo = json_tricks.loads(
        (demo_dir / f'results_{image.stem}.json').read_text())
    assert set(ours) == set(demo) == {'meta_info', 'instance_info'}
    assert ours['meta_info']['keypoint_id2name'] == \
        demo['meta_info']['keypoint_id2name']
    assert len(ours['instance_info']) == len(demo['instance_info']) > 0
    for mine, theirs in zip(ours['instance_info'], demo['instance_info']):
        assert set(mine) == set(theirs)
        np.testing.assert_allclose(mine['keypoints'], theirs['keypoints'],
                                   atol=1e-3)
        np.testing.assert_allclose(mine['keypoint_scores'],
                                   theirs['keypoint_scores'], atol=1e-5)
        np.testing.assert_allclose(mine['bbox'], theirs['bbox'], atol=1e-3)
        assert theirs['bbox_score'] == 1.0 != mine['bbox_score']
    persons = json.loads(native.read_text())['frames'][0]['persons']
    assert [p['bbox_score'] for p in persons] == \
        [i['bbox_score'] for i in ours['instance_info']]
    # An image has no tracks: no track_id column, no idx.
    with open(tmp_path / 'ours' / 'result.csv', newline='') as handle:
        assert next(csv.reader(handle))[2:4] == ['person_index', 'bbox_x1']
    assert 'idx' not in json.loads(
        (tmp_path / 'ours' / 'result.coco.json').read_text())[0]


def test_video_exports(exporting, tmp_path):
    video = write_avi(tmp_path / 'clip.avi', real_frames(2))
    native = exporting.run(video, tmp_path / 'r.json')
    frames = json.loads(native.read_text())['frames']
    names = json.loads(native.read_text())['meta']['keypoint_names']
    people = [(f, i, p) for f in frames for i, p in enumerate(f['persons'])]

    mmpose = json_tricks.loads((tmp_path / 'r.mmpose.json').read_text())
    assert [f['frame_id'] for f in mmpose['instance_info']] == [1, 2]

    coco = json.loads((tmp_path / 'r.coco.json').read_text())
    assert len(coco) == len(people)
    for entry, (frame, _, person) in zip(coco, people):
        assert entry['image_id'] == frame['frame_index']
        assert entry['category_id'] == 1
        triplets = np.reshape(entry['keypoints'], (133, 3))
        np.testing.assert_allclose(triplets[:, :2], person['keypoints'])
        np.testing.assert_allclose(triplets[:, 2], person['keypoint_scores'])
        x1, y1, x2, y2 = person['bbox']
        np.testing.assert_allclose(entry['bbox'], [x1, y1, x2 - x1, y2 - y1],
                                   atol=1e-3)
        assert entry['score'] == pytest.approx(
            person['bbox_score'] * np.mean(person['keypoint_scores']),
            abs=1e-5)
        assert entry['idx'] == person['track_id']  # AlphaPose's name

    with open(tmp_path / 'r.csv', newline='') as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:9] == ['frame_index', 'timestamp_s', 'person_index',
                           'track_id', 'bbox_x1', 'bbox_y1', 'bbox_x2',
                           'bbox_y2', 'bbox_score']
    assert rows[0][9:12] == ['nose_x', 'nose_y', 'nose_score']
    assert len(rows[0]) == 9 + 3 * len(names) == 9 + 399
    assert len(rows) == 1 + len(people)
    assert {p['track_id'] for _, _, p in people} == {0, 1}
    for row, (frame, index, person) in zip(rows[1:], people):
        assert int(row[0]) == frame['frame_index'] and int(row[2]) == index
        assert int(row[3]) == person['track_id']
        assert float(row[9]) == person['keypoints'][0][0]
        assert float(row[-1]) == person['keypoint_scores'][-1]


def test_format_flag_and_config_key(config_values, write_config, tmp_path):
    from conftest import run_cli
    config = write_config({**config_values, 'export_formats': ['csv']})
    result = run_cli('pose_analysis_service.py', '--config', config,
                     '--format', 'coco', '--quiet')
    assert result.returncode == 0, result.stderr
    out = tmp_path / 'out'
    assert sorted(p.name for p in out.iterdir()
                  if not p.name.startswith('.')) == ['result.coco.json',
                                                     'result.json']
    # What each export was made from (hidden, as the lock and partial).
    assert [p.name for p in out.glob('.*')] == ['.result.json.exports.json']
    bad = run_cli('pose_analysis_service.py', '--config', write_config(
        {**config_values, 'export_formats': ['xml']}))
    assert bad.returncode == 1 and 'export_formats' in bad.stderr


def test_angles_csv_cells_from_odd_records():
    """The angles CSV from records not written by this suite: a tracked
    person without ``track_id`` gets an empty cell (no KeyError), angles
    that are not finite numbers are empty, and names or values that would
    start a spreadsheet formula are written as text."""
    import io

    from pose_suite.outputs.exports import _write_angles
    meta = {'angles': ['right_knee', '=1+1'], 'tracking': True}
    frames = [{'frame_index': 0, 'timestamp_s': 0.0, 'persons': [
        {'track_id': 3, 'angles': {'right_knee': -12.5, '=1+1': None}},
        {'angles': {'right_knee': float('nan'), '=1+1': '=cmd|x'}}]}]
    handle = io.StringIO()
    _write_angles(handle, frames, meta)
    lines = handle.getvalue().splitlines()
    assert lines == ["frame_index,timestamp_s,person_index,track_id,"
                     "right_knee,'=1+1",
                     '0,0.0,0,3,-12.5,', '0,0.0,1,,,']
