"""Shared fixtures: real test data, and checkpoints made here
(``model_factory``)."""
import contextlib
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model_factory import make_model_files  # noqa: E402

TESTDATA = Path(os.environ.get('POSE_SUITE_TESTDATA',
                               ROOT.parent / 'shared' / 'testdata'))
#: Person boxes the test detector returns per frame: few, so tests stay fast.
BOXES_PER_FRAME = 2
#: What a batch writes in its output folder beside the results.
BATCH_FILES = ('report.html', 'summary.csv', 'summary.json')


def data_file(relative: str) -> Path:
    """A file of ../shared/testdata; fails (not skips) when it is absent."""
    path = TESTDATA / relative
    assert path.is_file(), (f'test data missing: {path} (set '
                            'POSE_SUITE_TESTDATA to the testdata folder)')
    return path


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'gpu: runs on a CUDA device (POSE_SUITE_GPU_DEVICE; '
        '`make gpu-check`); skipped where there is none')


COCO_IMAGES = ['images/000000000785.jpg', 'images/000000040083.jpg',
               'images/000000196141.jpg', 'images/000000197388.jpg']


@pytest.fixture(scope='session')
def model_files(tmp_path_factory):
    """See ``model_factory.make_model_files``."""
    return make_model_files(tmp_path_factory.mktemp('checkpoints'),
                            BOXES_PER_FRAME)


@pytest.fixture(scope='session')
def detector(model_files):
    from detection_service import DetectionService
    return DetectionService(model_files['det_config'],
                            model_files['det_checkpoint'], device='cpu',
                            bbox_thr=0.0, nms_thr=0.3)


@pytest.fixture(scope='session')
def pose_service(model_files):
    from pose_extraction_service import PoseExtractionService
    return PoseExtractionService(model_files['pose_config'],
                                 model_files['pose_checkpoint'],
                                 device='cpu')


@pytest.fixture
def config_values(model_files, tmp_path):
    """A config.json dict using the test checkpoints, output in tmp_path."""
    return {
        'det_config': str(model_files['det_config']),
        'det_checkpoint': str(model_files['det_checkpoint']),
        'pose_config': str(model_files['pose_config']),
        'pose_checkpoint': str(model_files['pose_checkpoint']),
        'input': str(data_file(COCO_IMAGES[0])),
        'output': str(tmp_path / 'out' / 'result.json'),
        'device': 'cpu',
        'bbox_thr': 0.0,
    }


@pytest.fixture
def write_config(tmp_path):
    def write(values, name='config.json'):
        path = tmp_path / name
        path.write_text(json.dumps(values))
        return path
    return write


def run_cli(script: str, *args, cwd=None) -> subprocess.CompletedProcess:
    """Run one of the project's scripts (``x.py``) or modules (``a.b``) as a
    user would."""
    target = [str(ROOT / script)] if script.endswith('.py') else ['-m', script]
    return subprocess.run([sys.executable, *target, *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or ROOT,
                          timeout=600)


def assert_one_line_error(result: subprocess.CompletedProcess, *words):
    """Non-zero exit, one ``error:`` line on stderr naming ``words``, no
    traceback, and nothing else on stderr but ``warning:`` lines."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith('error:')]
    assert len(errors) == 1, result.stderr
    assert all(line.startswith(('error:', 'warning:')) for line in lines), \
        result.stderr
    for word in words:
        assert word in errors[0], errors[0]


def fail_on_call(monkeypatch, owner, name: str, number: int,
                 error: BaseException) -> list:
    """Make ``owner.<name>`` raise ``error`` on its ``number``-th call (a
    crash, or Ctrl-C, in the middle of a run); the calls before go through.
    Returns the list that counts the calls."""
    real, calls = getattr(owner, name), []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def real_frames(count: int, size=(480, 270)):
    """The first ``count`` frames of the real two-person video, resized."""
    import cv2
    capture = cv2.VideoCapture(str(
        data_file('videos/two_people_72frames_1080p.mp4')))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        assert ok, 'the test video has fewer frames than asked for'
        frames.append(cv2.resize(frame, size))
    capture.release()
    return frames


def write_avi(path: Path, frames, fps: float = 10.0) -> Path:
    """Write frames as Motion-JPEG AVI: every frame is its own JPEG, so one
    can be corrupted alone and the container header patched."""
    import cv2
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps,
                             (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def damaged_avi(path: Path, count: int, damaged) -> Path:
    """A real MJPEG clip of ``count`` frames at 10 fps whose ``damaged``
    frames lose their JPEG header."""
    video = write_avi(path, real_frames(count))
    data = bytearray(video.read_bytes())
    jpeg_starts = [i for i in range(len(data) - 2)
                   if data[i:i + 3] == b'\xff\xd8\xff']
    for index in damaged:
        data[jpeg_starts[index]:jpeg_starts[index] + 600] = bytes(600)
    video.write_bytes(bytes(data))
    return video


@pytest.fixture(scope='session')
def analysis_service(model_files):
    """PoseAnalysisService on the test checkpoints (bbox_thr 0)."""
    from pose_analysis_service import PoseAnalysisService
    return PoseAnalysisService({
        'det_config': str(model_files['det_config']),
        'det_checkpoint': str(model_files['det_checkpoint']),
        'pose_config': str(model_files['pose_config']),
        'pose_checkpoint': str(model_files['pose_checkpoint']),
        'device': 'cpu', 'bbox_thr': 0.0})


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_folder(folder: Path):
    """Serve ``folder`` over HTTP on 127.0.0.1; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope='session')
def tiny_models(model_files, tmp_path_factory):
    """Config keys for big batches: the test detector at a 64x64 input
    (the same weights, about 100 times less work than at 640) keeping no
    box (bbox_thr 1), so no pose model runs. For tests of which inputs a
    batch analyses, not of what it finds."""
    folder = tmp_path_factory.mktemp('tiny')
    det_config = folder / 'det_64.py'
    det_config.write_text(
        f"_base_ = '{model_files['det_config']}'\n"
        "test_pipeline = [dict(type='LoadImageFromFile', backend_args=None),"
        " dict(type='Resize', scale=(64, 64), keep_ratio=True),"
        " dict(type='Pad', size=(64, 64), pad_val=dict(img=(114, 114, 114))),"
        " dict(type='PackDetInputs', meta_keys=('img_id', 'img_path',"
        " 'ori_shape', 'img_shape', 'scale_factor'))]\n"
        "test_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n")
    return {'det_config': str(det_config),
            'det_checkpoint': str(model_files['det_checkpoint']),
            'pose_config': str(model_files['pose_config']),
            'pose_checkpoint': str(model_files['pose_checkpoint']),
            'device': 'cpu', 'bbox_thr': 1.0}


@pytest.fixture(scope='session')
def tiny_photos(tmp_path_factory):
    """A folder of 200 small photos (48x32 crops of a real one), each
    different, and a README."""
    import cv2
    folder = tmp_path_factory.mktemp('tiny_photos')
    image = cv2.imread(str(data_file(COCO_IMAGES[3])))
    for number in range(200):
        y, x = divmod(number, 20)
        crop = image[y * 30:y * 30 + 32, x * 28:x * 28 + 48]
        cv2.imwrite(str(folder / f'photo_{number:03d}.jpg'), crop)
    (folder / 'README.md').write_text('# 200 photos\n')
    return folder
