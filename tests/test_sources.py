"""Real-world media (pose_suite.media.sources, pose_suite.media.sniff): phone videos
with a rotation, EXIF-rotated photos, variable frame rates, files that are
not media, and decoder noise. The media are in tests/data (README there
says how each was made); reference values come from ffmpeg/ffprobe and
from OpenCV's own EXIF handling, not from the code under test."""
import json
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest
from conftest import (ROOT, assert_one_line_error, data_file, fail_on_call,
                      real_frames, run_cli, run_process, write_avi)
from PIL import Image

from pose_suite.errors import InputError, NotMediaError, SuiteWarning
from pose_suite.media.sources import open_source

MEDIA = ROOT / 'tests' / 'data'
FFPROBE = json.loads((MEDIA / 'ffprobe_timestamps.json').read_text())


def _raw_frames(path):
    """A video's frames as stored (OpenCV's default: no rotation)."""
    capture = cv2.VideoCapture(str(path))
    assert capture.get(cv2.CAP_PROP_ORIENTATION_AUTO) == 0
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


# --- rotation ---------------------------------------------------------------

@pytest.mark.parametrize('name, size, rotation', [
    ('portrait_rotate90', (144, 256), 90),
    ('upside_down_rotate180', (256, 144), 180)])
def test_rotated_video_frames_are_as_ffmpeg_displays_them(name, size,
                                                          rotation):
    source = open_source(MEDIA / f'{name}.mp4')
    assert (source.kind, source.width, source.height, source.rotation) == \
        ('video', *size, rotation)
    frames = [frame for _, _, frame in source.frames()]
    assert len(frames) == 3 and frames[0].shape == (size[1], size[0], 3)
    displayed = cv2.imread(str(MEDIA / f'{name}.displayed0.jpg'))  # ffmpeg
    difference = np.abs(frames[0].astype(int) - displayed).mean()
    assert difference < 4, difference  # JPEG-compressed reference
    stored = _raw_frames(MEDIA / f'{name}.mp4')[0]
    assert stored.shape == (144, 256, 3)
    assert np.abs(cv2.resize(stored, size).astype(int)
                  - displayed).mean() > 20  # sideways / upside down


def test_rotated_video_is_analysed_upright(analysis_service, monkeypatch,
                                          tmp_path):
    """What the detector sees is the displayed frame, the keypoints are
    those of the same frames turned upright beforehand, and the overlay is
    upright too."""
    import dataclasses
    clip = MEDIA / 'portrait_rotate90.mp4'
    upright = [cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE)
               for frame in _raw_frames(clip)]
    expected = [analysis_service.analyse_frame(frame) for frame in upright]
    seen = []
    detect = analysis_service.detector.detect
    monkeypatch.setattr(analysis_service.detector, 'detect',
                        lambda frame: seen.append(frame.copy()) or
                        detect(frame))
    monkeypatch.setattr(analysis_service, 'config', dataclasses.replace(
        analysis_service.config, visualize_output=tmp_path / 'drawn.mp4'))
    result = json.loads(analysis_service.run(clip, tmp_path).read_text())
    drawn = _raw_frames(tmp_path / 'drawn.mp4')
    assert [frame.shape for frame in drawn] == [(256, 144, 3)] * 3
    assert [frame.shape for frame in seen] == [(256, 144, 3)] * 3
    for frame, reference in zip(seen, upright):
        np.testing.assert_array_equal(frame, reference)
    meta = result['meta']
    assert (meta['width'], meta['height'], meta['rotation'],
            meta['mirrored']) == (144, 256, 90, False)
    for frame, persons in zip(result['frames'], expected):
        assert len(frame['persons']) == len(persons) > 0
        for got, want in zip(frame['persons'], persons):
            np.testing.assert_allclose(got['keypoints'], want['keypoints'],
                                       atol=1e-3)
            np.testing.assert_allclose(got['bbox'], want['bbox'][:4],
                                       atol=1e-3)


def _exif_jpeg(path, orientation):
    """A 60x40 photo crop stored with ``orientation`` in its EXIF."""
    photo = Image.open(data_file('images/000000000785.jpg')).crop(
        (200, 100, 260, 140))
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo.save(path, quality=95, exif=exif.tobytes())
    return path


@pytest.mark.parametrize('orientation', range(1, 9))
def test_exif_orientation_as_opencv_applies_it(tmp_path, orientation):
    """For JPEG, OpenCV's own imread applies EXIF orientation: the suite
    must give the same pixels for all eight values."""
    path = _exif_jpeg(tmp_path / 'photo.jpg', orientation)
    source = open_source(path)
    frame = next(source.frames())[2]
    np.testing.assert_array_equal(frame, cv2.imread(str(path)))
    turned = orientation in (5, 6, 7, 8)
    assert (source.width, source.height) == ((40, 60) if turned
                                             else (60, 40))
    assert (source.rotation, source.mirrored) == {
        1: (0, False), 2: (0, True), 3: (180, False), 4: (180, True),
        5: (270, True), 6: (90, False), 7: (90, True),
        8: (270, False)}[orientation]


def test_exif_orientation_of_webp_too(tmp_path):
    """OpenCV does not apply EXIF orientation to WebP; the suite does."""
    photo = Image.open(_exif_jpeg(tmp_path / 'p.jpg', 1))
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.save(tmp_path / 'p.webp', lossless=True, exif=exif.tobytes())
    assert cv2.imread(str(tmp_path / 'p.webp')).shape == (40, 60, 3)
    source = open_source(tmp_path / 'p.webp')
    assert (source.width, source.height, source.rotation) == (40, 60, 90)


def test_exif_rotated_photo_through_the_service(analysis_service, tmp_path):
    photo = MEDIA / 'exif_orientation6.jpg'
    assert cv2.imread(str(photo), cv2.IMREAD_COLOR |
                      cv2.IMREAD_IGNORE_ORIENTATION).shape == (320, 212, 3)
    meta = json.loads(analysis_service.run(photo, tmp_path).read_text())[
        'meta']
    assert (meta['width'], meta['height'], meta['rotation']) == \
        (320, 212, 90)


# --- timestamps ---------------------------------------------------------------

@pytest.mark.parametrize('name', sorted(FFPROBE))
def test_timestamps_are_the_containers(name):
    """Each frame's time equals ffprobe's presentation time (1 ms), on
    variable-rate mp4 and mkv and on constant-rate clips; fps is the
    container's average frame rate."""
    path = MEDIA / name if (MEDIA / name).exists() else data_file(name)
    reference = FFPROBE[name]
    source = open_source(path)
    times = [timestamp for _, timestamp, _ in source.frames()]
    np.testing.assert_allclose(times, reference['timestamps_s'], atol=1e-3)
    numerator, denominator = map(int,
                                 reference['avg_frame_rate'].split('/'))
    assert source.fps == pytest.approx(numerator / denominator, rel=1e-6)


def _interrupted_and_resumed(service, monkeypatch, clip, frames: int,
                             folder) -> dict:
    """The result of ``clip`` analysed with nobody detected (this is about
    time), interrupted after ``frames`` frames and resumed."""
    monkeypatch.setattr(service.detector, 'detect',
                        lambda frame: np.zeros((0, 5), np.float32))
    fail_on_call(monkeypatch, service.detector, 'detect', frames + 1,
                 KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        service.run(clip, folder)
    return json.loads(service.run(clip, folder, resume=True).read_text())


def test_variable_frame_rate_through_the_service_and_resume(
        analysis_service, monkeypatch, tmp_path):
    """The JSON has ffprobe's times; a run interrupted after 8 frames and
    resumed keeps them. (The detector finds nobody here: this is about
    time, and 15 frames of pose would take half a minute.)"""
    result = _interrupted_and_resumed(analysis_service, monkeypatch,
                                      MEDIA / 'vfr_30_then_5fps.mp4', 8,
                                      tmp_path)
    assert result['meta']['run']['resumed_from_frame'] == 8
    np.testing.assert_allclose(
        [frame['timestamp_s'] for frame in result['frames']],
        FFPROBE['vfr_30_then_5fps.mp4']['timestamps_s'], atol=1e-3)
    assert result['meta']['fps'] == 18.0


def test_b_frame_avi_through_the_service_and_resume(
        analysis_service, monkeypatch, tmp_path):
    """H.264 with B-frames in AVI (decoding times only): a run interrupted
    after 10 frames and resumed has the 24 records of a whole run, once
    each (it had 38: 0..23, then 10..23 again), at ffprobe's times
    (0.0667 s + k / 30; its last two frames have none there, and go on by
    1 / fps)."""
    result = _interrupted_and_resumed(analysis_service, monkeypatch,
                                      MEDIA / 'two_people_24frames_bf3.avi',
                                      10, tmp_path)
    assert result['meta']['run']['resumed_from_frame'] == 10
    assert [frame['frame_index'] for frame in result['frames']] == \
        list(range(24))
    np.testing.assert_allclose(
        [frame['timestamp_s'] for frame in result['frames']],
        [(2 + k) / 30 for k in range(24)], atol=1e-3)
    assert result['meta']['frames_failed'] == []
    assert result['meta']['frames_unread_at_end'] == 0
    assert result['meta']['stream_start_s'] == 0.0


def test_timestamps_of_an_avi_follow_its_header(tmp_path):
    """AVI has no per-frame times: they come from the header's rate."""
    video = write_avi(tmp_path / 'c.avi', real_frames(3), fps=4)
    assert [t for _, t, _ in open_source(video).frames()] == [0, 0.25, 0.5]


# --- files that are not media -----------------------------------------------

def _documents(folder):
    (folder / 'data.json').write_text('{"subject": 1, "squats": [1, 2]}')
    (folder / 'table.csv').write_text('frame,x,y\n0,1.5,2.5\n1,1.6,2.4\n')
    (folder / 'page.html').write_text('<!DOCTYPE html><html><body><p>'
                                      'results</p></body></html>\n')
    (folder / 'paper.pdf').write_bytes(
        b'%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n'
        b'endobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n')
    return folder


@pytest.mark.parametrize('name, reason', [
    ('SOURCES.txt', 'a text file'),
    ('subtitles.srt', 'a subtitle file'),
    ('audio_only.m4a', 'audio only (M4A)'),
    ('audio_only_named.mp4', 'audio only (MP4)'),
    ('data.json', 'a JSON file'),
    ('table.csv', 'a CSV table'),
    ('page.html', 'an HTML page'),
    ('paper.pdf', 'a PDF document')])
def test_not_media_is_refused(tmp_path, name, reason):
    path = MEDIA / name if (MEDIA / name).exists() else \
        _documents(tmp_path) / name
    with pytest.raises(NotMediaError) as error:
        open_source(path)
    assert str(error.value) == \
        f'input is not an image or video ({reason}): {path}'


def test_text_file_would_be_a_video_to_ffmpeg():
    """Why the check above is needed: FFmpeg's tty demuxer renders the
    text as a 640x400 video that OpenCV reads."""
    capture = cv2.VideoCapture(str(MEDIA / 'SOURCES.txt'))
    ok, frame = capture.read()
    assert ok and frame.shape == (400, 640, 3)


def test_not_media_cli_writes_nothing(config_values, write_config,
                                      tmp_path):
    result = run_cli('pose_analysis_service.py', '--config',
                     write_config(config_values), '--input',
                     MEDIA / 'subtitles.srt', '--output', tmp_path / 'out')
    assert_one_line_error(result, 'not an image or video',
                          'a subtitle file', 'subtitles.srt')
    assert not (tmp_path / 'out').exists()


def test_corrupt_video_is_damage_not_a_stray_file(tmp_path):
    """A file named like a video that cannot be decoded is an InputError
    (a failure), not a file to skip; one with another name is skipped."""
    garbage = bytes(range(256)) * 40
    (tmp_path / 'clip.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' + garbage)
    (tmp_path / 'Thumbs.db').write_bytes(b'\x00\x01' + garbage)
    with pytest.raises(InputError) as error:
        open_source(tmp_path / 'clip.mp4')
    assert not isinstance(error.value, NotMediaError)
    assert 'corrupt' in str(error.value)
    with pytest.raises(NotMediaError, match='no decoder reads it'):
        open_source(tmp_path / 'Thumbs.db')


# --- what the libraries print -------------------------------------------------

def test_libpng_warning_is_silenced(config_values, write_config, tmp_path):
    png = MEDIA / 'bad_iccp_profile.png'
    bare = subprocess.run([sys.executable, '-c', 'import cv2, sys; '
                           'cv2.imread(sys.argv[1])', str(png)],
                          capture_output=True, text=True)
    assert 'libpng warning: iCCP' in bare.stderr  # what OpenCV alone prints
    result = run_process('pose_analysis_service.py', '--config',
                     write_config(config_values), '--input', png, '--quiet')
    assert result.returncode == 0 and result.stderr == '', result.stderr


def test_damaged_jpeg_gives_one_warning(tmp_path):
    photo = data_file('images/000000000785.jpg').read_bytes()
    truncated = tmp_path / 'cut.jpg'
    truncated.write_bytes(photo[:len(photo) * 2 // 3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        source = open_source(truncated)
    messages = [str(w.message) for w in caught
                if issubclass(w.category, SuiteWarning)]
    assert len(messages) == 1 and 'may be damaged' in messages[0]
    assert 'Premature end of JPEG file' in messages[0]
    assert (source.width, source.height) == (640, 425)
