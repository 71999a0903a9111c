"""Frame positions (:mod:`pose_suite.media.positions`): a frame's index is its
place in the stream, gaps and all; frames a container counts but the
stream never held are not called missing; a read from frame N (a segment)
starts near N with the indices, times and pixels of a read from the first.

The expected times are ffprobe's (``-show_entries
frame=best_effort_timestamp_time``, minus the stream's start_time), noted
in tests/data/README.md; the code under test never ran ffprobe.
"""
import json
import shutil
import subprocess
import warnings

import numpy as np
import pytest
from conftest import ROOT

from pose_suite.media.sources import DecodeReport, open_source

DATA = ROOT / 'tests' / 'data'


def _read(name: str, start: int = 0):
    """(frames, report, warning texts) of a read of tests/data/<name>."""
    source = open_source(DATA / name)
    report = DecodeReport()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        frames = list(source.frames(start=start, report=report))
    return source, frames, report, [str(w.message) for w in caught]


def test_cut_off_file_indices_are_positions_in_the_stream():
    """The first half of a fast-start MP4 at 50 fps: ffprobe decodes 9
    frames, at 0.00-0.14 s and 0.18 s. OpenCV's reader has one failed read
    and hands the later frames late, so a count called the 0.14 s frame 8
    and the 0.18 s frame 9 ... here 0.14 s is frame 7 and 0.18 s is 9."""
    source, frames, report, said = _read('cut_half_faststart_50fps.mp4')
    decoded = [(index, time) for index, time, frame in frames
               if frame is not None]
    ffprobe_times = [0.0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.14, 0.18]
    assert [time for _, time in decoded] == pytest.approx(ffprobe_times)
    assert [index for index, _ in decoded] == \
        [round(time * 50) for time in ffprobe_times]
    assert [index for index, _, frame in frames if frame is None] == [8]
    # The index (30 frames) says more than the cut file holds: said once.
    assert source.frame_count == 30
    assert report.frames_unread_at_end == 20
    assert sum('none after frame 9 could be decoded' in s for s in said) == 1


@pytest.mark.parametrize('name, frames', [('audio_early_0.056s.mkv', 12),
                                          ('vfr_30_then_5fps.mkv', 15),
                                          ('vfr_30_then_5fps.mp4', 15),
                                          ('vfr_edit_list_ends_at_1s.mp4', 14)])
def test_intact_files_are_not_called_damaged(name, frames):
    """Matroska estimates its frame count from the duration, which counts
    the sound's lead (14 for these 12 frames), and an MP4 whose edit list
    ends before its last packet counts that packet (15 for 14 shown): the
    packets that are shown say the stream ended where decoding did."""
    source, read, report, said = _read(name)
    assert len(read) == frames
    assert all(frame is not None for _, _, frame in read)
    assert [index for index, _, _ in read] == list(range(frames))
    assert report.frames_unread_at_end == 0
    assert not said, said


def test_audio_early_mkv_times_are_ffprobes():
    _, read, _, _ = _read('audio_early_0.056s.mkv')
    ffprobe = [0.079, 0.112, 0.146, 0.179, 0.212, 0.246, 0.279, 0.312,
               0.346, 0.379, 0.412, 0.446]
    assert [time for _, time, _ in read] == pytest.approx(
        [t - ffprobe[0] for t in ffprobe], abs=1.5e-3)


@pytest.mark.parametrize('name', ['two_people_24frames_4fps_gop5.mp4',
                                  'vfr_30_then_5fps.mp4'])
def test_a_read_from_frame_n_equals_the_whole_read_from_n(name):
    """Every start: the same indices, times and pixels as frames N... of a
    read from the first frame (variable frame rate too, where OpenCV's own
    seek, by estimated frame number, lands after the frame)."""
    _, whole, _, _ = _read(name)
    for start in range(1, len(whole)):
        _, part, _, said = _read(name, start)
        assert [(i, t) for i, t, _ in part] == \
            [(i, t) for i, t, _ in whole[start:]], start
        assert all(np.array_equal(a, b) for (_, _, a), (_, _, b)
                   in zip(part, whole[start:])), start
        assert not said, (start, said)


def test_a_read_from_frame_n_does_not_decode_the_frames_before():
    """Frame 20 of 24 (key frames every 5): decoding starts at the key frame
    before it, not at frame 0."""
    _, part, report, _ = _read('two_people_24frames_4fps_gop5.mp4', 20)
    assert [index for index, _, _ in part] == [20, 21, 22, 23]
    assert report.frames_decoded <= 4 + 5
    _, _, whole, _ = _read('two_people_24frames_4fps_gop5.mp4')
    assert whole.frames_decoded == 24


def test_lost_packets_go_where_the_rate_leaves_a_hole():
    """A packet OpenCV's raw demux could not hand out has no time: it goes
    in a one-frame hole of a constant rate, before the first frame too,
    and is not placed where the holes do not say where it was."""
    from pose_suite.media.packets import _with_lost
    rate = [i * 0.04 for i in range(20)]
    holed = rate[:7] + rate[8:]
    assert _with_lost(holed, 1) == pytest.approx(rate)
    assert _with_lost(rate[1:], 1) == pytest.approx(rate)
    # A recording pause of 5 frames and one lost packet: the single hole.
    paused = rate[:7] + rate[8:12] + [t + 0.2 for t in rate[12:]]
    assert _with_lost(paused, 1) == pytest.approx(
        rate[:12] + [t + 0.2 for t in rate[12:]])
    # Two one-frame holes and one packet lost: which one is not known...
    two_holes = rate[:5] + rate[6:9] + rate[10:]
    assert _with_lost(two_holes, 1) is None
    # ... unless the packets around it in decoding order say it.
    assert _with_lost(two_holes, 1, [(0.28, 0.44)]) == pytest.approx(
        rate[:5] + rate[6:])
    # A variable rate leaves no hole.
    assert _with_lost([0, 0.03, 0.1, 0.12, 0.2, 0.33, 0.35], 1) is None


@pytest.mark.ffmpeg
@pytest.mark.skipif(not (shutil.which('ffmpeg') and shutil.which('ffprobe')),
                    reason='ffmpeg/ffprobe not installed')
@pytest.mark.parametrize('name', ['intra.mkv', 'raw.h264'])
def test_a_packet_without_a_time_is_not_frame_0s_time(tmp_path, name):
    """OpenCV's raw mode gives FFmpeg's "no time" (INT64_MIN, scaled) for
    every packet of an all-intra H.264 MKV and of a raw ``.h264``: it is
    no time (frame 0 got -9.2e15 s and -7.7e12 s). The times are
    ffprobe's (frames' best effort times; a raw stream has none, nor a
    start_time: from 0, by 1 / fps)."""
    path = tmp_path / name
    subprocess.run(['ffmpeg', '-v', 'error', '-f', 'lavfi', '-i',
                    'testsrc2=size=64x48:rate=30', '-frames:v', '6',
                    '-c:v', 'libx264', '-x264-params', 'keyint=1', path],
                   check=True, timeout=120)
    probed = subprocess.run(
        ['ffprobe', '-v', 'error', '-select_streams', 'v:0', '-show_entries',
         'frame=best_effort_timestamp_time:format=start_time', '-of',
         'json', path], capture_output=True, text=True, check=True).stdout
    probed = json.loads(probed)
    times = [f.get('best_effort_timestamp_time', 'N/A')
             for f in probed['frames']]
    if 'N/A' in times:
        assert probed['format'].get('start_time', 'N/A') == 'N/A'
        times = [i / 30 for i in range(6)]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        read = list(open_source(path).frames())
    assert [t for _, t, _ in read] == pytest.approx(
        [float(t) - float(times[0]) for t in times], abs=1e-3)
