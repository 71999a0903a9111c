"""Bad input, through the CLI and through the service classes.

Each refused case: non-zero exit (CLI) or a specific exception type (API),
one readable line naming the problem and the file, no traceback, and no
output file created or overwritten. Each odd-but-valid image is processed.
"""
import json
import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import (COCO_IMAGES, ROOT, assert_one_line_error, data_file,
                      real_frames, run_cli, with_models, write_avi)

from pose_suite.errors import (CheckpointError, ConfigError, DeviceError,
                               InputError, OutputError)


@pytest.fixture(scope='module')
def bad_files(tmp_path_factory):
    """name -> (path, words the error must contain)."""
    folder = tmp_path_factory.mktemp('bad')
    (folder / 'notes.jpg').write_text('this is text, not a picture')
    (folder / 'empty.jpg').write_bytes(b'')
    video = data_file('videos/football_5frames_720p.mp4').read_bytes()
    (folder / 'half.mp4').write_bytes(video[:len(video) // 2])
    writer = cv2.VideoWriter(str(folder / 'zero_frames.mp4'),
                             cv2.VideoWriter_fourcc(*'mp4v'), 25, (64, 48))
    writer.release()  # a container with no frame in it
    (folder / 'a_folder').mkdir()
    os.mkfifo(folder / 'pipe.mp4')  # never opened: that would wait
    return {
        'missing': (folder / 'absent.mp4', ['not found', 'absent.mp4']),
        'directory': (folder / 'a_folder', ['folder', 'a_folder']),
        'FIFO': (folder / 'pipe.mp4', ['not a regular file (a FIFO)',
                                       'pipe.mp4']),
        'text named .jpg': (folder / 'notes.jpg', ['not an image',
                                                   'notes.jpg']),
        'zero bytes': (folder / 'empty.jpg', ['empty', 'empty.jpg']),
        'truncated video': (folder / 'half.mp4', ['truncated', 'half.mp4']),
        'zero-frame video': (folder / 'zero_frames.mp4',
                             ['no video frame', 'zero_frames.mp4']),
    }


CASES = ['missing', 'directory', 'FIFO', 'text named .jpg', 'zero bytes',
         'truncated video', 'zero-frame video']


@pytest.mark.parametrize('case', CASES)
def test_bad_input_cli(bad_files, config_values, write_config, tmp_path,
                       case):
    path, words = bad_files[case]
    output = tmp_path / 'out' / 'result.json'
    output.parent.mkdir()
    output.write_text('previous result')
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--input', path)
    assert_one_line_error(result, *words)
    assert output.read_text() == 'previous result'
    assert [p.name for p in output.parent.iterdir()] == ['result.json']


@pytest.mark.parametrize('case', CASES)
def test_bad_input_api(bad_files, analysis_service, tmp_path, case):
    path, words = bad_files[case]
    with pytest.raises(InputError) as error:
        analysis_service.run(path, tmp_path / 'r.json')
    for word in words:
        assert word in str(error.value)
    assert list(tmp_path.iterdir()) == []


def _persons(output):
    return json.loads(output.read_text())['frames'][0]['persons']


def test_one_pixel_image_is_processed(analysis_service, tmp_path):
    image = tmp_path / 'dot.png'
    cv2.imwrite(str(image), np.full((1, 1, 3), 200, np.uint8))
    result = json.loads(analysis_service.run(image, tmp_path / 'r.json')
                        .read_text())
    assert (result['meta']['width'], result['meta']['height']) == (1, 1)
    assert len(result['frames']) == 1


def test_grayscale_image_is_processed_as_bgr(analysis_service, tmp_path):
    gray = data_file('images/camera_grayscale.png')
    assert cv2.imread(str(gray), cv2.IMREAD_UNCHANGED).ndim == 2
    as_bgr = tmp_path / 'bgr.png'
    cv2.imwrite(str(as_bgr), cv2.cvtColor(
        cv2.imread(str(gray), cv2.IMREAD_UNCHANGED), cv2.COLOR_GRAY2BGR))
    got = _persons(analysis_service.run(gray, tmp_path / 'g.json'))
    assert got and got == _persons(analysis_service.run(as_bgr,
                                                        tmp_path / 'b.json'))


def test_grayscale_image_cli(config_values, write_config, tmp_path):
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--input',
                     data_file('images/camera_grayscale.png'))
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / 'out' / 'result.json').read_text())['meta']
    assert (meta['width'], meta['height']) == (512, 512)


def test_rgba_image_is_processed_without_alpha(analysis_service, tmp_path):
    rgb = data_file('images/astronaut.png')
    bgr = cv2.imread(str(rgb))
    rgba = tmp_path / 'astronaut_rgba.png'
    alpha = np.linspace(0, 255, bgr.shape[1], dtype=np.uint8)
    cv2.imwrite(str(rgba), np.dstack([bgr, np.tile(alpha, (bgr.shape[0], 1))]))
    assert cv2.imread(str(rgba), cv2.IMREAD_UNCHANGED).shape[2] == 4
    got = _persons(analysis_service.run(rgba, tmp_path / 'a.json'))
    assert got and got == _persons(analysis_service.run(rgb,
                                                        tmp_path / 'b.json'))


def test_16_bit_image_is_processed(analysis_service, tmp_path):
    bgr = cv2.imread(str(data_file(COCO_IMAGES[0])))
    deep = tmp_path / 'deep.png'
    cv2.imwrite(str(deep), bgr.astype(np.uint16) * 257)  # full 16-bit range
    assert cv2.imread(str(deep), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    eight = tmp_path / 'eight.png'
    cv2.imwrite(str(eight), bgr)
    got = _persons(analysis_service.run(deep, tmp_path / 'd.json'))
    assert got and got == _persons(analysis_service.run(eight,
                                                        tmp_path / 'e.json'))


def test_very_large_image_is_processed(config_values, real_model_files,
                                       tmp_path):
    """An 8000x6000 photo: processed, boxes inside it, and the memory it
    adds measured in a fresh process: the peak (VmHWM) is reset after the
    models and a small photo (Linux's clear_refs 5; loading the models
    peaks higher than the photo does, so ru_maxrss would show nothing),
    then read after the big one."""
    config_values = with_models(config_values, real_model_files)
    import subprocess
    import sys
    big = tmp_path / 'big.jpg'
    cv2.imwrite(str(big), cv2.resize(cv2.imread(str(data_file(
        COCO_IMAGES[0]))), (8000, 6000)), [cv2.IMWRITE_JPEG_QUALITY, 80])
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
from pose_analysis_service import PoseAnalysisService

def kilobytes(field):
    for line in open('/proc/self/status'):
        if line.startswith(field + ':'):
            return int(line.split()[1])

service = PoseAnalysisService(json.loads(sys.argv[1]))
service.run({str(data_file(COCO_IMAGES[0]))!r}, {str(tmp_path / 's.json')!r})
with open('/proc/self/clear_refs', 'w') as handle:
    handle.write('5')  # the peak starts again from here
before = kilobytes('VmHWM')
service.run({str(big)!r}, {str(tmp_path / 'r.json')!r})
print((kilobytes('VmHWM') - before) // 1024)
"""
    done = subprocess.run([sys.executable, '-c', script,
                           json.dumps(config_values)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    grown_mb = int(done.stdout.split()[-1])
    result = json.loads((tmp_path / 'r.json').read_text())
    assert (result['meta']['width'], result['meta']['height']) == (8000, 6000)
    persons = result['frames'][0]['persons']
    assert persons
    for person in persons:
        x1, y1, x2, y2 = person['bbox']
        assert 0 <= x1 < x2 <= 8000 and 0 <= y1 < y2 <= 6000
    # The 144 MB frame is decoded once; crops are 384x288.
    assert 100 < grown_mb < 1500, f'peak memory grew by {grown_mb} MB'


def test_video_lying_about_frame_count_and_fps(analysis_service, tmp_path):
    """Written at 10 fps with 3 frames; the header is made to say 25 fps and
    500 frames. Every real frame is processed and the count is the real one;
    the fps, which nothing in the file contradicts, is the header's."""
    video = write_avi(tmp_path / 'lie.avi', real_frames(3), fps=10)
    data = bytearray(video.read_bytes())
    # RIFF AVI: avih.dwTotalFrames and the video strh.dwLength say 500,
    # strh.dwRate / dwScale say 25 fps.
    struct.pack_into('<I', data, data.find(b'avih') + 8 + 16, 500)
    strh = data.find(b'strh') + 8
    struct.pack_into('<II', data, strh + 20, 1, 25)
    struct.pack_into('<I', data, strh + 32, 500)
    video.write_bytes(bytes(data))
    capture = cv2.VideoCapture(str(video))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 500
    assert capture.get(cv2.CAP_PROP_FPS) == 25
    # The stream holds 3 packets and the file is whole: the header
    # miscounted, nothing is missing (so nothing is said).
    import warnings

    from pose_suite.errors import SuiteWarning
    with warnings.catch_warnings():
        warnings.simplefilter('error', SuiteWarning)
        output = analysis_service.run(video, tmp_path / 'r.json')
    result = json.loads(output.read_text())
    assert result['meta']['frame_count'] == 3
    assert result['meta']['frame_count_reported'] == 500
    assert result['meta']['frames_unread_at_end'] == 0
    assert result['meta']['fps'] == 25
    assert [f['frame_index'] for f in result['frames']] == [0, 1, 2]
    assert [f['timestamp_s'] for f in result['frames']] == [0, 0.04, 0.08]
    assert result['meta']['frames_failed'] == []


# --- config.json -----------------------------------------------------------

@pytest.mark.parametrize('change, words', [
    ({'bbox_thr': '0.5'}, ['bbox_thr', "'0.5'"]),
    ({'kpt_thr': 1.5}, ['kpt_thr', '[0, 1]']),
    ({'nms_thr': -0.2}, ['nms_thr', '[0, 1]']),
    ({'det_cat_id': 'person'}, ['det_cat_id']),
    ({'resume': 'yes'}, ['resume', 'true or false']),
])
def test_bad_config_value_cli(config_values, write_config, tmp_path, change,
                              words):
    config = write_config({**config_values, **change})
    result = run_cli('pose_analysis_service.py', '--config', config)
    assert_one_line_error(result, *words)
    assert not (tmp_path / 'out').exists()


def test_config_not_json_cli(tmp_path):
    config = tmp_path / 'config.json'
    config.write_text('bbox_thr = 0.3\n')
    result = run_cli('pose_analysis_service.py', '--config', config)
    assert_one_line_error(result, 'config.json', 'not valid JSON')


def test_config_missing_cli(tmp_path):
    result = run_cli('pose_analysis_service.py', '--config',
                     tmp_path / 'absent.json')
    assert_one_line_error(result, 'config file not found', 'absent.json',
                          'creating_config.py')


def test_unknown_config_key_warns_and_runs(config_values, write_config,
                                          tmp_path):
    config = write_config({**config_values, 'kpt_threshold': 0.5})
    result = run_cli('pose_analysis_service.py', '--config', config)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ("warning: ignoring unknown config key "
                                     "'kpt_threshold' (did you mean "
                                     "'kpt_thr'?)")


def test_cuda_on_machine_without_it(config_values, write_config, tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--device', 'cuda')
    assert_one_line_error(result, "'cuda'", 'not available')
    assert not (tmp_path / 'out').exists()


def test_auto_device_falls_back_to_cpu(config_values, write_config,
                                       tmp_path):
    import torch
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--device', 'auto')
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / 'out' / 'result.json').read_text())['meta']
    assert meta['device'] == ('cuda:0' if torch.cuda.is_available()
                              else 'cpu')


# --- checkpoints -----------------------------------------------------------

@pytest.fixture(scope='module')
def bad_checkpoints(tmp_path_factory, model_files):
    folder = tmp_path_factory.mktemp('bad_checkpoints')
    not_checkpoint = folder / 'notes.pth'
    not_checkpoint.write_text('weights? no')
    renamed = folder / 'hrnet_w48_coco_wholebody_384x288_dark-f5726563_' \
                       '20200918.pth'
    renamed.write_bytes(model_files['pose_checkpoint'].read_bytes())
    return {
        'missing': (folder / 'gone.pth', ['not found', 'gone.pth']),
        'not a checkpoint': (not_checkpoint, ['not a PyTorch checkpoint',
                                              'notes.pth']),
        'other model': (model_files['det_checkpoint'],
                        ['does not fit', 'rtmdet_person_random']),
        'fails sha256': (renamed, ['fails its checksum', 'f5726563']),
    }


@pytest.mark.parametrize('case', ['missing', 'not a checkpoint',
                                  'other model', 'fails sha256'])
def test_bad_pose_checkpoint_cli(bad_checkpoints, config_values,
                                 write_config, tmp_path, case):
    path, words = bad_checkpoints[case]
    config = write_config({**config_values, 'pose_checkpoint': str(path)})
    result = run_cli('pose_analysis_service.py', '--config', config)
    assert_one_line_error(result, *words)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('case', ['missing', 'not a checkpoint',
                                  'other model', 'fails sha256'])
def test_bad_pose_checkpoint_api(bad_checkpoints, model_files, case):
    from pose_extraction_service import PoseExtractionService
    path, words = bad_checkpoints[case]
    with pytest.raises(CheckpointError) as error:
        PoseExtractionService(model_files['pose_config'], path)
    for word in words:
        assert word in str(error.value)


def test_api_config_errors_are_typed(config_values):
    from pose_analysis_service import PoseAnalysisService
    with pytest.raises(ConfigError, match='bbox_thr'):
        PoseAnalysisService({**config_values, 'bbox_thr': 7})
    import torch
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match='CUDA'):
            PoseAnalysisService({**config_values, 'device': 'cuda:0'})


# --- output ----------------------------------------------------------------

def test_missing_output_folders_are_created(analysis_service, tmp_path):
    output = tmp_path / 'a' / 'b' / 'c' / 'r.json'
    assert analysis_service.run(data_file(COCO_IMAGES[0]), output).is_file()


def test_unwritable_output_api(analysis_service, tmp_path):
    (tmp_path / 'plain_file').write_text('x')
    with pytest.raises(OutputError, match='plain_file'):
        analysis_service.run(data_file(COCO_IMAGES[0]),
                             tmp_path / 'plain_file' / 'r.json')


def test_unwritable_output_cli(config_values, write_config, tmp_path):
    (tmp_path / 'plain_file').write_text('x')
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--output',
                     tmp_path / 'plain_file' / 'r.json')
    assert_one_line_error(result, 'cannot write', 'plain_file')


def test_model_config_that_does_not_parse(config_values, write_config,
                                          tmp_path):
    broken = tmp_path / 'broken_pose.py'
    broken.write_text("_base_ = ['./nowhere.py']\nmodel = dict(\n")
    result = run_cli('pose_analysis_service.py', '--config', write_config(
        {**config_values, 'pose_config': str(broken)}))
    assert_one_line_error(result, 'cannot read model config',
                          'broken_pose.py')
    assert not (tmp_path / 'out').exists()


def test_several_inputs_and_one_json_output_refused(config_values,
                                                    write_config, tmp_path):
    folder = tmp_path / 'two'
    folder.mkdir()
    for name in COCO_IMAGES[:2]:
        (folder / Path(name).name).write_bytes(data_file(name).read_bytes())
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--input', folder)
    assert_one_line_error(result, '2 inputs need an output folder',
                          'result.json')
    assert not (tmp_path / 'out').exists()


def test_list_file_through_the_cli(config_values, write_config, tmp_path):
    """A list with a comment, a relative and an absolute path, and a
    missing entry: the two real ones written, the missing one reported."""
    listing = tmp_path / 'lists' / 'clips.txt'
    for folder, name in (('a', COCO_IMAGES[0]), ('b', COCO_IMAGES[1])):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / 'photo.jpg').write_bytes(
            data_file(name).read_bytes())
    listing.parent.mkdir()
    listing.write_text(f'# two photos\n../a/photo.jpg\n'
                       f'{tmp_path / "b" / "photo.jpg"}\nmissing.jpg\n')
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--input', listing,
                     '--output', tmp_path / 'res')
    assert result.returncode == 1
    assert 'missing.jpg failed: input not found' in result.stderr
    written = sorted(p.relative_to(tmp_path / 'res').as_posix()
                     for p in (tmp_path / 'res').rglob('*.json'))
    assert written == ['a/photo.jpg.json', 'b/photo.jpg.json',
                       'summary.json']


def test_unreadable_input_cli(config_values, write_config, tmp_path):
    """A photo without read permission. Root reads anything, so as root the
    command runs with the capabilities that let it (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH) dropped, as any user's would be."""
    import os
    import shutil
    import subprocess
    import sys
    photo = tmp_path / 'locked.jpg'
    photo.write_bytes(data_file(COCO_IMAGES[0]).read_bytes())
    photo.chmod(0)
    prefix = []
    if os.geteuid() == 0:
        assert shutil.which('setpriv'), 'util-linux setpriv is needed'
        prefix = ['setpriv', '--inh-caps=-all',
                  '--bounding-set=-dac_override,-dac_read_search']
    result = subprocess.run(
        [*prefix, sys.executable, str(ROOT / 'pose_analysis_service.py'),
         '--config', str(write_config(config_values)), '--input', str(photo)],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert_one_line_error(result, 'not readable', 'locked.jpg')
    assert not (tmp_path / 'out').exists()
