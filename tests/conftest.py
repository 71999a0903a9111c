"""Shared fixtures: real test data, checkpoints made here
(``model_factory``), the command line run in this process, and the markers:
what each says (:data:`MARKERS`), and those a test gets from the fixtures
it uses.
"""
import contextlib
import functools
import http.server
import importlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model_factory import cached_model_files, copy_model_files  # noqa: E402

#: read_result checked against the JSON of every result the tests write.
pytest_plugins = ['result_sweep']

# Sets OpenCV's FFmpeg log level before a test opens a video, as the
# command line does before it opens one: run_cli sees what the command's
# own process would print, whatever ran before it in this one.
import pose_suite.media.sources  # noqa: E402,F401

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


#: Built models, kept between test runs (``model_factory``).
MODEL_CACHE = Path(os.environ.get(
    'POSE_SUITE_TEST_CACHE', Path.home() / '.cache' / 'pose-suite-tests'))

#: What a test needs beyond this project and Python, as markers (the only
#: place they are registered; tests/pytest.ini makes an unknown one an
#: error). `make test-fast` runs the tests that need none of install, ray,
#: browser or models.
MARKERS = {
    'install': 'makes venvs, wheelhouses or pyenv Pythons, or runs make '
               'install',
    'ray': 'starts Ray (root: in a loopback-only network namespace)',
    'browser': 'opens a page in chromium (playwright)',
    'ffmpeg': 'makes its media with ffmpeg, or checks them with ffprobe',
    'models': 'runs the real-size RTMDet-m and HRNet-W48 (random weights)',
    'gpu': 'runs on a CUDA device (POSE_SUITE_GPU_DEVICE; `make '
           'gpu-check`); skipped where there is none',
}

#: The marker a test gets for using a fixture: what it needs is what it
#: uses.
FIXTURE_MARKERS = {
    'real_model_files': 'models',
    'cluster': 'ray',
    'browser': 'browser',
}


def pytest_configure(config):
    for name, needs in MARKERS.items():
        config.addinivalue_line('markers', f'{name}: {needs}')
    if os.environ.get('PYTEST_XDIST_WORKER'):
        # One of several pytest workers (`make test-fast`: one per core):
        # one thread each, and for the processes it starts, so that they
        # do not wait on each other's threads.
        import torch
        torch.set_num_threads(1)
        os.environ['OMP_NUM_THREADS'] = '1'


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture in set(FIXTURE_MARKERS) & set(item.fixturenames):
            item.add_marker(FIXTURE_MARKERS[fixture])


COCO_IMAGES = ['images/000000000785.jpg', 'images/000000040083.jpg',
               'images/000000196141.jpg', 'images/000000197388.jpg']


@pytest.fixture(scope='session')
def model_files(tmp_path_factory):
    """The tiny models (``model_factory``: the real configs' model types,
    heads and checkpoint layout, a narrow backbone, a small input), copied
    for this run: for every test of what the suite does around the
    models."""
    return _models('tiny', tmp_path_factory)


@pytest.fixture(scope='session')
def real_model_files(tmp_path_factory):
    """The real-size RTMDet-m and HRNet-W48 (random weights), copied for
    this run: for the tests that compare with mmdet's and mmpose's own
    functions. A test using them is marked ``models``."""
    return _models('real', tmp_path_factory)


def _models(size: str, tmp_path_factory) -> dict:
    """The models of ``size`` from the cache (built there once), copied for
    this run; built for this run only where the cache cannot be written."""
    try:
        files = cached_model_files(MODEL_CACHE, size, BOXES_PER_FRAME)
    except OSError as exc:
        warnings.warn(f'model cache {MODEL_CACHE} not usable ({exc}): '
                      'the models are built for this run only')
        files = cached_model_files(tmp_path_factory.mktemp(f'{size}_cache'),
                                   size, BOXES_PER_FRAME)
    return copy_model_files(files, tmp_path_factory.mktemp(f'{size}_models'))


def _detector(files):
    from detection_service import DetectionService
    return DetectionService(files['det_config'], files['det_checkpoint'],
                            device='cpu', bbox_thr=0.0, nms_thr=0.3)


def _pose_service(files):
    from pose_extraction_service import PoseExtractionService
    return PoseExtractionService(files['pose_config'],
                                 files['pose_checkpoint'], device='cpu')


@pytest.fixture(scope='session')
def detector(model_files):
    return _detector(model_files)


@pytest.fixture(scope='session')
def pose_service(model_files):
    return _pose_service(model_files)


@pytest.fixture(scope='session')
def real_detector(real_model_files):
    return _detector(real_model_files)


@pytest.fixture(scope='session')
def real_pose_service(real_model_files):
    return _pose_service(real_model_files)


@pytest.fixture
def config_values(model_files, tmp_path):
    """A config.json dict using the test checkpoints, output in tmp_path."""
    return with_models({
        'input': str(data_file(COCO_IMAGES[0])),
        'output': str(tmp_path / 'out' / 'result.json'),
        'device': 'cpu',
        'bbox_thr': 0.0,
    }, model_files)


def with_models(values: dict, files: dict) -> dict:
    """Config keys ``values`` with the models of ``files`` (e.g.
    ``real_model_files``)."""
    return dict(values, **{key: str(files[key]) for key in (
        'det_config', 'det_checkpoint', 'pose_config', 'pose_checkpoint')})


@pytest.fixture
def write_config(tmp_path):
    def write(values, name='config.json'):
        path = tmp_path / name
        path.write_text(json.dumps(values))
        return path
    return write


def run_process(script: str, *args, cwd=None) -> subprocess.CompletedProcess:
    """Run one of the project's scripts (``x.py``) or modules (``a.b``) as a
    user would, in a new Python process: for the tests of the process
    itself (its exit status, its stderr from a fresh interpreter)."""
    target = [str(ROOT / script)] if script.endswith('.py') else ['-m', script]
    return subprocess.run([sys.executable, *target, *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or ROOT,
                          timeout=600)


def run_cli(script: str, *args, cwd=None) -> subprocess.CompletedProcess:
    """Run the ``main(argv)`` of one of the project's scripts (``x.py``) or
    modules (``a.b``) in this process, as :func:`run_process` would run it
    (in ``cwd``, default the project folder; ``sys.argv[0]`` the script),
    and return its exit status and what it printed the same way: through
    ``sys.stdout``/``sys.stderr`` and straight to file descriptors 1 and 2
    (C libraries: OpenCV, FFmpeg). What the command changes for its
    process (signal handlers, warning filters, the current folder) is put
    back."""
    module = importlib.import_module(script.removesuffix('.py'))
    argv = [str(arg) for arg in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    handlers = {number: signal.getsignal(number)
                for number in (signal.SIGINT, signal.SIGTERM)}
    saved_argv0, saved_cwd = sys.argv[0], os.getcwd()
    try:
        sys.argv[0] = str(ROOT / script) if script.endswith('.py') \
            else script
        os.chdir(cwd or ROOT)
        with _file_descriptors_captured() as written, \
                warnings.catch_warnings(), \
                contextlib.redirect_stdout(stdout), \
                contextlib.redirect_stderr(stderr):
            code = _exit_status(module.main, argv)
    finally:
        os.chdir(saved_cwd)
        sys.argv[0] = saved_argv0
        for number, handler in handlers.items():
            signal.signal(number, handler)
    return subprocess.CompletedProcess(
        [sys.executable, script, *argv], code, stdout.getvalue() +
        written[1], stderr.getvalue() + written[2])


def _exit_status(main, argv: list) -> int:
    """``main(argv)``'s return value, or the status of the ``SystemExit``
    it raised (argparse's errors), as the process would exit with."""
    try:
        return main(argv) or 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1


@contextlib.contextmanager
def _file_descriptors_captured():
    """File descriptors 1 and 2 sent to temporary files in the block;
    yields a dict that gets ``{1: text, 2: text}`` written there."""
    import ctypes
    import tempfile
    written = {}
    libc = ctypes.CDLL(None)
    sys.stdout.flush(), sys.stderr.flush(), libc.fflush(None)
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    files = {fd: tempfile.TemporaryFile() for fd in (1, 2)}
    try:
        for fd, file in files.items():
            os.dup2(file.fileno(), fd)
        yield written
    finally:
        libc.fflush(None)
        for fd, file in files.items():
            os.dup2(saved[fd], fd)
            os.close(saved[fd])
            file.seek(0)
            written[fd] = file.read().decode(errors='replace')
            file.close()


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
def real_analysis_service(real_model_files):
    """PoseAnalysisService on the real-size models (bbox_thr 0)."""
    from pose_analysis_service import PoseAnalysisService
    return PoseAnalysisService(with_models(
        {'device': 'cpu', 'bbox_thr': 0.0}, real_model_files))


@pytest.fixture(scope='session')
def analysis_service(model_files):
    """PoseAnalysisService on the test checkpoints (bbox_thr 0)."""
    from pose_analysis_service import PoseAnalysisService
    return PoseAnalysisService(with_models({'device': 'cpu', 'bbox_thr': 0.0},
                                           model_files))


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


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A cache of this test's own (``XDG_CACHE_HOME``): what it measures
    and converts (pose_suite.runtimes) stays there."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))


@pytest.fixture
def own_models(model_files, tmp_path):
    """The tiny models' files in a folder of this test's (the runtimes'
    converted files go beside the checkpoints)."""
    return copy_model_files(model_files, tmp_path / 'models')


@pytest.fixture(scope='session')
def tiny_models(model_files, tmp_path_factory):
    """Config keys for big batches: the tiny detector at a 64x64 input
    (the same weights, a quarter of its work at 128) keeping no box
    (bbox_thr 1), so no pose model runs. For tests of which inputs a batch
    analyses, not of what it finds."""
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


class _CountingCapture:
    """An OpenCV capture that counts the pictures it makes (``read``,
    ``retrieve``) and the seeks it is asked for."""

    def __init__(self, capture, counts: dict):
        self._capture, self._counts = capture, counts
        counts['opens'] += 1

    def read(self):
        self._counts['pictures'] += 1
        return self._capture.read()

    def retrieve(self):
        self._counts['pictures'] += 1
        return self._capture.retrieve()

    def set(self, *args):
        self._counts['seeks'] += 1
        return self._capture.set(*args)

    def __getattr__(self, name):
        return getattr(self._capture, name)


def count_pictures(monkeypatch) -> dict:
    """Count, in the captures ``FrameSource.frames`` opens from now on,
    the frames turned into BGR pictures (``pictures``), the captures opened
    (``opens``) and their seeks (``seeks``, with the orientation setting
    of each open)."""
    from pose_suite.media import sources
    counts = {'pictures': 0, 'opens': 0, 'seeks': 0}
    real = sources.open_capture
    monkeypatch.setattr(sources, 'open_capture',
                        lambda path: _CountingCapture(real(path), counts))
    return counts
