"""pose_analysis_service.py end to end: JSON content, correctness against
mmdet + mmpose's own functions, input kinds, video mode, batching. Bad input
is in test_bad_input.py, interruptions in test_interrupted_runs.py."""
import dataclasses
import json
import shutil

import cv2
import numpy as np
import pytest
from conftest import (BOXES_PER_FRAME, COCO_IMAGES, ROOT, data_file,
                      fail_on_call, run_cli, run_process)

from pose_suite.errors import InputError, OutputError


@pytest.fixture(scope='module')
def service(analysis_service):
    return analysis_service


def test_image_json_matches_reference_pipeline(
        real_analysis_service, real_detector, real_pose_service, tmp_path):
    """The JSON of a photo against mmdet's and mmpose's own inference on
    the same (real-size) models."""
    from test_detection_service import reference_boxes
    from test_pose_extraction_service import inference_topdown_reference

    image_path = data_file(COCO_IMAGES[2])
    service, detector, pose_service = \
        real_analysis_service, real_detector, real_pose_service
    output = service.run(image_path, tmp_path / 'r.json')
    result = json.loads(output.read_text(encoding='utf-8'))
    meta = result['meta']
    assert meta['kind'] == 'image' and meta['frame_count'] == 1
    assert (meta['width'], meta['height']) == (640, 429)
    assert len(meta['keypoint_names']) == 133
    assert meta['thresholds'] == {'bbox_thr': 0.0, 'nms_thr': 0.3,
                                  'kpt_thr': 0.3}
    assert meta['pose_model']['checkpoint_sha256'].startswith(
        service.pose.loaded.checkpoint_path.stem.split('-')[-1])
    assert meta['versions']['mmpose'] == '1.3.2'
    [frame] = result['frames']
    assert frame['frame_index'] == 0 and frame['timestamp_s'] == 0.0

    image = cv2.imread(str(image_path))
    boxes = reference_boxes(detector.model, image, 0.0, 0.3)
    expected = inference_topdown_reference(pose_service.model, image, boxes)
    assert 1 <= len(frame['persons']) == len(boxes) <= BOXES_PER_FRAME
    for person, box, (keypoints, scores) in zip(frame['persons'], boxes,
                                                expected):
        np.testing.assert_allclose(person['bbox'], box[:4], atol=1e-3)
        assert person['bbox_score'] == pytest.approx(box[4], abs=1e-5)
        assert person['bbox_score'] != 1.0
        np.testing.assert_allclose(person['keypoints'], keypoints, atol=1e-3)
        np.testing.assert_allclose(person['keypoint_scores'], scores,
                                   atol=1e-5)


def test_video_frames_in_order_with_timestamps(service, tmp_path):
    video = data_file('videos/football_5frames_720p.mp4')
    output = service.run(video, tmp_path)
    assert output == tmp_path / 'football_5frames_720p.mp4.json'
    result = json.loads(output.read_text())
    meta = result['meta']
    assert meta['kind'] == 'video' and meta['frame_count'] == 5
    assert (meta['width'], meta['height'], meta['fps']) == (1280, 720, 30.0)
    assert (meta['rotation'], meta['mirrored']) == (0, False)
    assert [f['frame_index'] for f in result['frames']] == [0, 1, 2, 3, 4]
    assert [f['timestamp_s'] for f in result['frames']] == pytest.approx(
        [i / 30 for i in range(5)], abs=1e-6)
    for frame in result['frames']:
        assert 1 <= len(frame['persons']) <= BOXES_PER_FRAME
        for person in frame['persons']:
            assert len(person['keypoints']) == 133
            assert all(len(xy) == 2 for xy in person['keypoints'])
    # One frame per line: a long video's JSON stays greppable.
    lines = output.read_text().splitlines()
    assert sum(line.startswith('{"frame_index"') for line in lines) == 5


def test_frame_without_person_has_empty_list(service, tmp_path):
    """No box above bbox_thr: `persons: []`, not a whole-image pose."""
    service.detector.bbox_thr = 1.0
    try:
        output = service.run(data_file('images/no_person_sunglasses.jpg'),
                             tmp_path / 'none.json')
    finally:
        service.detector.bbox_thr = 0.0
    assert json.loads(output.read_text())['frames'][0]['persons'] == []


def test_kind_comes_from_content_not_extension(service, tmp_path):
    as_video = tmp_path / 'photo.mp4'
    shutil.copy(data_file(COCO_IMAGES[0]), as_video)
    as_image = tmp_path / 'clip.jpg'
    shutil.copy(data_file('videos/football_5frames_720p.mp4'), as_image)
    from pose_suite.media.sources import open_source
    assert open_source(as_video).kind == 'image'
    assert open_source(as_image).kind == 'video'
    assert open_source(as_image).frame_count == 5


def test_failed_run_leaves_previous_result(service, tmp_path, monkeypatch):
    """The run fails on the third frame, after two were written: the
    previous result stays, the two frames are kept for --resume, and no
    temporary or lock file is left."""
    output = tmp_path / 'keep.json'
    output.write_text('previous good result')
    with pytest.raises(InputError):
        service.run(tmp_path / 'missing.mp4', output)
    fail_on_call(monkeypatch, service, 'analyse_frame', 3,
                 RuntimeError('simulated crash'))
    with pytest.raises(RuntimeError, match='simulated'):
        service.run(data_file('videos/football_5frames_720p.mp4'), output)
    assert output.read_text() == 'previous good result'
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        '.keep.json.partial', 'keep.json']
    partial = (tmp_path / '.keep.json.partial').read_text().splitlines()
    assert [json.loads(line)['frame_index'] for line in partial[1:]] == [0, 1]


def test_output_under_a_file_is_an_output_error(service, tmp_path):
    blocker = tmp_path / 'file.txt'
    blocker.write_text('x')
    with pytest.raises(OutputError, match='cannot write'):
        service.run(data_file(COCO_IMAGES[0]), blocker / 'out.json')


def test_cli_writes_json(config_values, write_config, tmp_path):
    config = write_config(config_values)
    result = run_process('pose_analysis_service.py', '--config', config)
    assert result.returncode == 0, result.stderr
    assert result.stderr == '', 'library chatter reached the user'
    output = tmp_path / 'out' / 'result.json'
    assert str(output) in result.stdout and 'person(s)' in result.stdout
    assert json.loads(output.read_text())['meta']['device'] == 'cpu'


def test_docs_document_every_config_key_and_field():
    from pose_suite.config import DEFAULTS
    configuration = (ROOT / 'docs' / 'configuration.md').read_text()
    for key in DEFAULTS:
        assert f'| `{key}` |' in configuration, key
    output = (ROOT / 'docs' / 'output.md').read_text()
    for field in ('frame_index', 'timestamp_s', 'persons', 'bbox_score',
                  'keypoint_scores', 'keypoint_names', 'skeleton_links',
                  'frame_count'):
        assert f'`{field}`' in output, field


def test_boxes_from_keypoints():
    from pose_suite.service.tracking import boxes_from_keypoints
    keypoints = np.zeros((133, 2), np.float32)
    keypoints[:3] = [[100, 50], [140, 90], [120, 250]]
    scores = np.zeros(133, np.float32)
    scores[:3] = 0.9
    lost = {'keypoints': keypoints, 'keypoint_scores': scores * 0,
            'bbox_score': 0.4}
    seen = {'keypoints': keypoints, 'keypoint_scores': scores,
            'bbox_score': 0.8}
    boxes = boxes_from_keypoints([lost, seen], kpt_thr=0.3, width=150,
                                 height=400)
    # Extent 100..140 x 50..250, 1.25x about (120, 150), clipped to 150 wide.
    np.testing.assert_allclose(boxes, [[95, 25, 145, 275, 0.8]])
    assert boxes_from_keypoints([], 0.3, 10, 10).shape == (0, 5)


def test_video_mode_detects_every_nth_frame(service, tmp_path, monkeypatch):
    from conftest import real_frames, write_avi

    from pose_suite.service.tracking import boxes_from_keypoints
    video = write_avi(tmp_path / 'clip.avi', real_frames(5))
    calls = []
    detect = service.detector.detect
    monkeypatch.setattr(service.detector, 'detect',
                        lambda frame: calls.append(1) or detect(frame))
    monkeypatch.setattr(service, 'config', dataclasses.replace(
        service.config, det_interval=3, kpt_thr=0.0))
    result = json.loads(service.run(video, tmp_path / 'r.json').read_text())
    assert len(calls) == 2  # frames 0 and 3
    assert result['meta']['det_interval'] == 3
    frames = result['frames']
    for previous, current in ((0, 1), (1, 2), (3, 4)):
        persons = [{'keypoints': np.array(p['keypoints'], np.float32),
                    'keypoint_scores': np.array(p['keypoint_scores']),
                    'bbox_score': p['bbox_score']}
                   for p in frames[previous]['persons']]
        expected = boxes_from_keypoints(persons, 0.0, 480, 270)
        np.testing.assert_allclose(
            [p['bbox'] for p in frames[current]['persons']], expected[:, :4],
            atol=2e-3)


def test_frame_batching_gives_the_same_json(service, tmp_path, monkeypatch):
    """What a GPU does (frames batched through the detector), on the CPU."""
    from conftest import real_frames, write_avi
    video = write_avi(tmp_path / 'clip.avi', real_frames(3))
    one = json.loads(service.run(video, tmp_path / 'one.json').read_text())
    monkeypatch.setattr(service, 'frame_batch', 2)
    batched = json.loads(service.run(video, tmp_path / 'b.json').read_text())
    assert len(one['frames']) == len(batched['frames']) == 3
    for a, b in zip(one['frames'], batched['frames']):
        assert a['frame_index'] == b['frame_index']
        assert len(a['persons']) == len(b['persons'])
        for p, q in zip(a['persons'], b['persons']):
            np.testing.assert_allclose(p['bbox'], q['bbox'], atol=1e-2)
            np.testing.assert_allclose(p['keypoints'], q['keypoints'],
                                       atol=1e-2)


def test_iter_frames_yields_what_run_writes(service, tmp_path):
    from conftest import real_frames, write_avi
    video = write_avi(tmp_path / 'clip.avi', real_frames(2))
    frames = list(service.iter_frames(video))
    written = json.loads(service.run(video, tmp_path / 'r.json')
                         .read_text())['frames']
    assert [f['frame_index'] for f in frames] == [0, 1]
    for live, saved in zip(frames, written):
        assert live['timestamp_s'] == saved['timestamp_s']
        assert len(live['persons']) == len(saved['persons'])
        for person, record in zip(live['persons'], saved['persons']):
            assert person['keypoints'].shape == (133, 2)
            np.testing.assert_allclose(person['keypoints'],
                                       record['keypoints'], atol=1e-3)


def _run_on_terminal(*args):
    """Run the CLI with stderr on a pseudo-terminal of 120 columns; returns
    (exit status, stdout, what the terminal showed)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ,
                struct.pack('HHHH', 24, 120, 0, 0))
    process = subprocess.run(
        [sys.executable, str(ROOT / 'pose_analysis_service.py'),
         *map(str, args)], stdout=subprocess.PIPE, stderr=follower,
        text=True, cwd=ROOT, timeout=600)
    os.close(follower)
    terminal = b''
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        terminal += chunk
    os.close(leader)
    return process.returncode, process.stdout, terminal.decode(
        errors='replace')


def test_progress_bar_on_a_terminal_and_quiet(config_values, write_config,
                                              tmp_path):
    config = write_config({**config_values, 'input': str(
        data_file('videos/football_5frames_720p.mp4'))})
    status, stdout, terminal = _run_on_terminal('--config', config)
    assert status == 0
    assert '5/5' in terminal and 'frame' in terminal, terminal
    assert '5 frame(s)' in stdout and 'result.json' in stdout

    quiet = run_process('pose_analysis_service.py', '--config', config,
                    '--quiet')
    assert quiet.returncode == 0
    assert quiet.stdout == '' and quiet.stderr == ''


def test_progress_bar_over_a_folder(config_values, write_config, tmp_path):
    import shutil
    folder = tmp_path / 'photos'
    folder.mkdir()
    for name in COCO_IMAGES[:2]:
        shutil.copy(data_file(name), folder)
    status, stdout, terminal = _run_on_terminal(
        '--config', write_config(config_values), '--input', folder,
        '--output', tmp_path / 'results')
    assert status == 0
    assert '2/2' in terminal and 'file' in terminal, terminal
    assert '[2/2] 000000040083.jpg' in stdout


def test_a_published_file_is_synced_before_its_rename(tmp_path,
                                                      monkeypatch):
    """A result is flushed to disk (fsync of the new file) before it is
    renamed over the old one, and the folder is synced after: a power cut
    leaves the previous result or the new one, never an empty file."""
    import os

    from pose_suite.outputs.publish import atomic_write
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(descriptor):
        events.append(('fsync', os.readlink(f'/proc/self/fd/{descriptor}')))
        return real_fsync(descriptor)

    def replace(source, target):
        events.append(('replace', str(source), str(target)))
        return real_replace(source, target)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    target = tmp_path / 'r.json'
    target.write_text('old')
    with atomic_write(target) as handle:
        handle.write('new')
    assert target.read_text() == 'new'
    [(_, temporary, _)] = [event for event in events
                           if event[0] == 'replace']
    assert events == [('fsync', temporary),
                      ('replace', temporary, str(target)),
                      ('fsync', str(tmp_path))]


def test_published_files_get_the_users_permissions(config_values,
                                                   write_config, tmp_path):
    """Results, exports, overlay and config.json are created as any new
    file of the user is (0666 less the umask), so a lab can share a results
    folder; tempfile's 0600 would make them private."""
    import os
    import stat
    import subprocess
    import sys

    def run_with_umask(umask, *command):
        return subprocess.run([sys.executable, *map(str, command)],
                              capture_output=True, text=True, cwd=ROOT,
                              preexec_fn=lambda: os.umask(umask),
                              timeout=600)

    out = tmp_path / 'out'
    config = write_config({**config_values, 'output': str(out),
                           'export_formats': ['mmpose', 'coco', 'csv'],
                           'visualize_output': str(out / 'overlay.jpg')})
    result = run_with_umask(0o002, ROOT / 'pose_analysis_service.py',
                            '--config', config, '--quiet')
    assert result.returncode == 0, result.stderr
    names = ['000000000785.jpg.coco.json', '000000000785.jpg.csv',
             '000000000785.jpg.json', '000000000785.jpg.mmpose.json',
             'overlay.jpg']
    assert sorted(p.name for p in out.iterdir()
                  if not p.name.startswith('.')) == names
    for path in out.iterdir():  # what made the exports (hidden) too
        assert stat.S_IMODE(path.stat().st_mode) == 0o664, path
    created = tmp_path / 'made' / 'config.json'
    result = run_with_umask(0o027, ROOT / 'creating_config.py', '--config',
                            created)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(created.stat().st_mode) == 0o640


def test_torchvision_status_in_a_real_output(config_values, write_config,
                                             tmp_path):
    """Run alone, in fresh processes: what meta.versions.torchvision says
    is what importing torchvision does on this machine."""
    import subprocess
    import sys
    probe = subprocess.run(
        [sys.executable, '-c', 'import torchvision; '
         'print(torchvision.__version__)'], capture_output=True, text=True)
    expected = f'torchvision {probe.stdout.strip()}' \
        if probe.returncode == 0 else 'fallback'
    result = run_process('pose_analysis_service.py', '--config',
                     write_config(config_values), '--quiet')
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / 'out' / 'result.json').read_text())['meta']
    assert meta['versions']['torchvision'] == expected


def test_tracking_and_smoothing_end_to_end(service, tmp_path, monkeypatch):
    """On a real clip: each person keeps their id from frame to frame (their
    box moves little), smoothing changes the keypoints of later frames and
    keeps the measured ones; with tracking off there are no ids."""
    from conftest import real_frames, write_avi
    video = write_avi(tmp_path / 'clip.avi', real_frames(3))
    monkeypatch.setattr(service, 'config', dataclasses.replace(
        service.config, tracking=True, smoothing=True))
    frames = json.loads(service.run(video, tmp_path / 's.json').read_text())[
        'frames']
    from pose_suite.service.tracking import box_iou
    first = {p['track_id']: p for p in frames[0]['persons']}
    assert sorted(first) == list(range(BOXES_PER_FRAME))
    for frame in frames[1:]:
        for person in frame['persons']:
            before = first[person['track_id']]
            assert box_iou(np.asarray(person['bbox']),
                           np.asarray(before['bbox'])) > 0.5
            moved = np.abs(np.subtract(person['keypoints'],
                                       person['keypoints_raw']))
            assert moved.max() > 0.01  # filtered
    for person in frames[0]['persons']:
        assert person['keypoints'] == person['keypoints_raw']
    monkeypatch.setattr(service, 'config', dataclasses.replace(
        service.config, tracking=False, smoothing=False))
    plain = json.loads(service.run(video, tmp_path / 'p.json').read_text())
    assert plain['meta']['tracking'] is False
    assert all('track_id' not in p and 'keypoints_raw' not in p
               for f in plain['frames'] for p in f['persons'])
    assert [p['keypoints'] for p in plain['frames'][2]['persons']] == \
        [p['keypoints_raw'] for p in frames[2]['persons']]


def test_precision_from_config(config_values, write_config, tmp_path):
    result = run_cli('pose_analysis_service.py', '--config', write_config(
        {**config_values, 'precision': 'bf16'}), '--quiet')
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / 'out' / 'result.json').read_text())['meta']
    assert meta['precision_asked'] == 'bf16'
    # What ran: bf16 where this CPU measured it faster (test_precision.py).
    assert meta['precision'] == ('bf16' if meta['run'][
        'bf16_speedup_measured'] >= 1.3 else 'fp32')


def test_three_processes_write_the_same_json(config_values, write_config,
                                             tmp_path):
    """Exact mode is reproducible from process to process: three runs of
    the same photo give the same JSON but for ``meta.run``. On CPUs with
    AMX the first forward pass of a process differed (boxes 0.001-0.002 px
    apart in about one process in three); the services pass first when
    they are built (``warm_up``)."""
    results = []
    for number in range(3):
        output = tmp_path / f'run{number}.json'
        config = write_config(dict(config_values, output=str(output)),
                              name=f'config{number}.json')
        result = run_process('pose_analysis_service.py', '--config', config,
                         '--quiet')
        assert result.returncode == 0, result.stderr
        data = json.loads(output.read_text())
        data['meta'].pop('run')
        results.append(data)
    assert results[0]['frames'][0]['persons']
    assert results[0] == results[1] == results[2]


def test_each_model_passes_once_when_built(model_files, monkeypatch):
    """The warm-up pass runs each model once, before any frame of the
    user's: the first frame's numbers come from a second pass."""
    import torch

    from detection_service import DetectionService
    from pose_extraction_service import PoseExtractionService
    passes = []
    real = torch.nn.Module.__call__

    def counting(module, *args, **kwargs):
        if type(module).__name__ in ('RTMDet', 'TopdownPoseEstimator'):
            passes.append(type(module).__name__)
        return real(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, '__call__', counting)
    DetectionService(model_files['det_config'], model_files['det_checkpoint'],
                     device='cpu')
    PoseExtractionService(model_files['pose_config'],
                          model_files['pose_checkpoint'], device='cpu')
    assert 'RTMDet' in passes and 'TopdownPoseEstimator' in passes, passes
