"""Nothing lost: kills, Ctrl-C, bad frames, flat memory, concurrent runs."""
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import cv2
import pytest
from conftest import (COCO_IMAGES, ROOT, assert_one_line_error, damaged_avi,
                      data_file, fail_on_call, real_frames, run_cli, write_avi)

from pose_suite.errors import OutputError, ResumeError
from pose_suite.outputs.writer import ResultWriter

FRAMES = 6


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    """A real 6-frame clip of two people (480x270)."""
    folder = tmp_path_factory.mktemp('clip')
    return write_avi(folder / 'two_people.avi', real_frames(FRAMES))


@pytest.fixture(scope='module')
def uninterrupted(analysis_service, clip, tmp_path_factory):
    output = tmp_path_factory.mktemp('reference') / 'reference.json'
    return json.loads(analysis_service.run(clip, output).read_text())


def _without_run_times(result):
    meta = {k: v for k, v in result['meta'].items() if k != 'run'}
    return meta, result['frames']


def _start_cli(config, *args):
    return subprocess.Popen(
        [sys.executable, str(ROOT / 'pose_analysis_service.py'), '--config',
         str(config), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def _wait_for_frames(partial, count, process, timeout=300):
    """Wait until the partial file holds ``count`` frame lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if partial.exists() and partial.read_text().count(
                '"frame_index"') >= count:
            return
        time.sleep(0.05)
    raise AssertionError('the run made no progress')


@pytest.mark.parametrize('how', ['SIGKILL', 'SIGINT', 'SIGTERM'])
def test_resume_after_interruption_gives_same_json(
        clip, uninterrupted, config_values, write_config, tmp_path, how):
    output = tmp_path / 'out' / 'result.json'
    output.parent.mkdir()
    output.write_text('previous good result')
    config = write_config({**config_values, 'input': str(clip)})
    partial = output.parent / '.result.json.partial'
    process = _start_cli(config)
    _wait_for_frames(partial, 2, process)
    process.send_signal(getattr(signal, how))
    _, stderr = process.communicate(timeout=120)

    assert output.read_text() == 'previous good result'
    done = partial.read_text().count('"frame_index"')
    assert 2 <= done < FRAMES
    if how == 'SIGKILL':
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 128 + getattr(signal, how)
        assert stderr.count('\n') == 1 and 'Traceback' not in stderr
        assert f'interrupted after {done} frame(s)' in stderr
        assert '--resume' in stderr

    result = run_cli('pose_analysis_service.py', '--config', config,
                     '--resume')
    assert result.returncode == 0, result.stderr
    resumed = json.loads(output.read_text())
    assert resumed['meta']['run']['resumed_from_frame'] == done
    assert _without_run_times(resumed) == _without_run_times(uninterrupted)
    assert sorted(p.name for p in output.parent.iterdir()) == ['result.json']


def test_resume_refuses_partial_of_another_input(analysis_service, clip,
                                                 tmp_path):
    output = tmp_path / 'r.json'
    with ResultWriter(output, resume_key='some other run') as writer:
        writer.write_frame(0, 0.0, [])
    with pytest.raises(ResumeError, match='another input'):
        analysis_service.run(clip, output, resume=True)
    assert not output.exists()


def test_resume_without_partial_starts_over(analysis_service, tmp_path):
    with pytest.warns(UserWarning, match='nothing to resume'):
        output = analysis_service.run(data_file(COCO_IMAGES[0]),
                                      tmp_path / 'r.json', resume=True)
    assert json.loads(output.read_text())['meta']['run'][
        'resumed_from_frame'] is None


def test_crash_mid_run_keeps_previous_result_and_progress(
        analysis_service, clip, tmp_path, monkeypatch):
    output = tmp_path / 'r.json'
    output.write_text('previous good result')
    fail_on_call(monkeypatch, analysis_service, 'analyse_frame', 3,
                 MemoryError('simulated crash on the third frame'))
    with pytest.raises(MemoryError):
        analysis_service.run(clip, output)
    assert output.read_text() == 'previous good result'
    partial = tmp_path / '.r.json.partial'
    assert partial.read_text().count('"frame_index"') == 2


def test_undecodable_frame_is_skipped_and_listed(analysis_service, tmp_path):
    video = damaged_avi(tmp_path / 'bad_frame.avi', 4, [2])
    with pytest.warns(UserWarning, match='frame 2 of .* could not be decoded'):
        output = analysis_service.run(video, tmp_path / 'r.json')
    result = json.loads(output.read_text())
    assert result['meta']['frames_failed'] == [2]
    assert [f['frame_index'] for f in result['frames']] == [0, 1, 3]
    assert [f['timestamp_s'] for f in result['frames']] == [0.0, 0.1, 0.3]


def _peak_python_memory(service, video, output):
    tracemalloc.start()
    try:
        service.run(video, output)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_over_a_long_video(analysis_service, tmp_path,
                                             monkeypatch):
    """Results stream to disk: 300 frames peak like 30. The models are
    replaced by their real output for one frame (3 persons, 133 keypoints
    each), so the test measures the frame source and writer, not 300
    forward passes."""
    frame = real_frames(1)[0]
    persons = analysis_service.analyse_frame(frame)
    persons = (persons * 3)[:3]
    monkeypatch.setattr(analysis_service, 'analyse_frame',
                        lambda frame, *limit: persons)
    small = [cv2.resize(f, (96, 54)) for f in real_frames(6)]
    short = write_avi(tmp_path / 'short.avi', small * 5)
    long = write_avi(tmp_path / 'long.avi', small * 50)
    short_peak = _peak_python_memory(analysis_service, short,
                                     tmp_path / 'short.json')
    long_peak = _peak_python_memory(analysis_service, long,
                                    tmp_path / 'long.json')
    result = json.loads((tmp_path / 'long.json').read_text())
    assert len(result['frames']) == 300
    assert sum(len(f['persons']) for f in result['frames']) == 900
    # Holding 900 person records in memory would add about 10 MB.
    assert long_peak < short_peak * 1.15 + 256 * 1024, (short_peak,
                                                         long_peak)


def test_two_runs_on_different_inputs_at_once(config_values, write_config,
                                              tmp_path):
    runs = []
    for index, image in enumerate(COCO_IMAGES[:2]):
        config = write_config({**config_values, 'input': str(
            data_file(image)), 'output': str(tmp_path / f'{index}.json')},
            name=f'config{index}.json')
        runs.append(_start_cli(config))
    for process in runs:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    for index, image in enumerate(COCO_IMAGES[:2]):
        meta = json.loads((tmp_path / f'{index}.json').read_text())['meta']
        assert meta['source'].endswith(image.split('/')[1])


def test_second_writer_of_same_output_fails_clearly(config_values,
                                                    write_config, tmp_path):
    output = tmp_path / 'out' / 'result.json'
    with ResultWriter(output, resume_key='first run') as writer:
        writer.write_frame(0, 0.0, [])
        with pytest.raises(OutputError, match='another run is writing'):
            ResultWriter(output, resume_key='second run')
        result = run_cli('pose_analysis_service.py', '--config',
                         write_config(config_values))
        assert_one_line_error(result, 'another run is writing',
                              'result.json')
        assert (output.parent / '.result.json.partial').read_text().count(
            '"frame_index"') == 1
    assert not os.path.exists(output)


def test_resume_refuses_after_the_model_config_changed(
        model_files, clip, tmp_path, monkeypatch):
    """The resume key is the configs' resolved content, not their paths:
    the same path with another content (here the detector config now
    inherits from the old one and changes a threshold) is another run."""
    import shutil

    from pose_analysis_service import PoseAnalysisService
    det_config = tmp_path / 'det.py'
    shutil.copy(model_files['det_config'], det_config)
    values = {'det_config': str(det_config),
              'det_checkpoint': str(model_files['det_checkpoint']),
              'pose_config': str(model_files['pose_config']),
              'pose_checkpoint': str(model_files['pose_checkpoint']),
              'device': 'cpu', 'bbox_thr': 0.0}
    first = PoseAnalysisService(values)
    fail_on_call(monkeypatch, first.detector, 'detect', 3, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        first.run(clip, tmp_path / 'out.json')
    shutil.move(det_config, tmp_path / 'det_base.py')
    det_config.write_text("_base_ = ['./det_base.py']\n"
                          "model = dict(test_cfg=dict(score_thr=0.2))\n")
    second = PoseAnalysisService(values)
    assert second.detector.loaded.config_sha256 != \
        first.detector.loaded.config_sha256
    with pytest.raises(ResumeError, match='other settings'):
        second.run(clip, tmp_path / 'out.json', resume=True)
    assert (tmp_path / '.out.json.partial').exists()


@pytest.fixture
def nobody_detected(analysis_service, monkeypatch):
    """These tests are about which frames are read, not about poses."""
    import numpy as np
    monkeypatch.setattr(analysis_service.detector, 'detect',
                        lambda frame: np.zeros((0, 5), np.float32))
    return analysis_service


def test_good_frames_after_a_long_damaged_stretch_are_kept(nobody_detected,
                                                           tmp_path):
    """18 damaged frames in a row (more than the 16 that once ended a
    video silently), then 4 good ones: all 4 are analysed."""
    video = damaged_avi(tmp_path / 'gap.avi', 24, range(2, 20))
    result = json.loads(nobody_detected.run(video, tmp_path / 'r.json')
                        .read_text())
    assert [f['frame_index'] for f in result['frames']] == \
        [0, 1, 20, 21, 22, 23]
    assert result['meta']['frames_failed'] == list(range(2, 20))
    assert result['meta']['frames_unread_at_end'] == 0


def test_damaged_end_is_reported_not_dropped(nobody_detected, tmp_path):
    video = damaged_avi(tmp_path / 'end.avi', 8, [5, 6, 7])
    with pytest.warns(UserWarning, match='reports 8 frames, but none after '
                      r'frame 4 could be decoded \(3 frame'):
        output = nobody_detected.run(video, tmp_path / 'r.json')
    meta = json.loads(output.read_text())['meta']
    assert (meta['frame_count'], meta['frame_count_reported'],
            meta['frames_unread_at_end']) == (5, 8, 3)


@pytest.mark.parametrize('name', ['vfr_30_then_5fps.mkv',
                                  'vfr_30_then_5fps.mp4'])
def test_a_video_that_ended_is_not_reported(nobody_detected, tmp_path, name):
    """Matroska reports an estimated count (21 for these 15 frames): the
    duration check keeps that from looking like a damaged end."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        # (Said once a process where damage cannot be checked.)
        warnings.filterwarnings('ignore', 'ffmpeg is not installed')
        output = nobody_detected.run(ROOT / 'tests' / 'data' / name,
                                     tmp_path / 'r.json')
    meta = json.loads(output.read_text())['meta']
    assert meta['frame_count'] == 15 and meta['frames_unread_at_end'] == 0


def test_resume_with_smoothing_and_video_mode(analysis_service, clip,
                                              tmp_path, monkeypatch):
    """Interrupted at frame 3 and resumed, with smoothing and det_interval
    2: the same ids, boxes and measured keypoints as an uninterrupted run,
    and smoothed ones within 0.01 px."""
    import dataclasses

    import numpy as np
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, tracking=True, smoothing=True,
        det_interval=2))
    whole = json.loads(analysis_service.run(clip, tmp_path / 'whole.json')
                       .read_text())
    extract = analysis_service.pose.extract
    fail_on_call(monkeypatch, analysis_service.pose, 'extract', 4,
                 KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        analysis_service.run(clip, tmp_path / 'cut.json')
    monkeypatch.setattr(analysis_service.pose, 'extract', extract)
    resumed = json.loads(analysis_service.run(
        clip, tmp_path / 'cut.json', resume=True).read_text())
    assert resumed['meta']['run']['resumed_from_frame'] == 3
    assert resumed['meta']['smoothing'] and resumed['meta']['det_interval'] \
        == 2
    assert len(resumed['frames']) == len(whole['frames']) == FRAMES
    for got, want in zip(resumed['frames'], whole['frames']):
        assert [p['track_id'] for p in got['persons']] == \
            [p['track_id'] for p in want['persons']]
        for mine, theirs in zip(got['persons'], want['persons']):
            assert mine['keypoints_raw'] == theirs['keypoints_raw']
            assert mine['bbox'] == theirs['bbox']
            # The filter is rebuilt from the written (rounded) values.
            np.testing.assert_allclose(mine['keypoints'], theirs['keypoints'],
                                       atol=0.01)
