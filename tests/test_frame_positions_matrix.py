"""Frame positions you can prove: a conformance matrix against ffprobe.

Tiny clips (320x240, 40 frames of ffmpeg's ``testsrc2``) are made with
ffmpeg at test time in many containers and codecs, with B-frames, variable
frame rates, late clocks, edit-list trims, a damaged frame and files cut
short (:data:`RECIPES`). Each is read by the suite (decoding only, no
model) as a whole, from several frames N (what ``--resume`` and a Ray
segment read: ``FrameSource.frames(start=N)``), and as the segments a Ray
run plans (``plan_segments``, each read ``frames(start=first)`` up to its
``stop``), and compared with ffprobe as ground truth.

Ground truth, from ``ffprobe -show_packets`` and ``-show_frames`` of
the clip (of the uncut clip for the packets of a file cut short, since its
index lists them all):

* The stream's frames are its packets that are shown: a packet flagged
  ``D`` (discard: before an edit list's start, or after its end) is not a
  frame. ``frame_index`` is a frame's place among them in presentation
  order (by pts; by dts where the container has no pts, as AVI). For a
  file cut short, the packets are those of the uncut file where the
  container has an index that lists them (MP4), else those left in it.
* A frame ffprobe decodes with a presentation time (pts) not after that of
  the frame before it is not shown (a decoder that lost a key frame hands
  a picture out late; a player drops it).
* The frames ffprobe decodes take those indices in order when it decodes
  as many frames as there are packets; otherwise (a damaged or cut file)
  each decoded frame's index is the place of its time among the packets'.
  A shown packet that decodes to no frame keeps its index and is a failed
  frame (``meta.frames_failed``) when a later frame decodes, and is
  unread at the end (``meta.frames_unread_at_end``) after the last one.
  A file cut short lost the frames its container counts (an MP4's index,
  an AVI header, a Matroska duration: the uncut file's frames) after the
  last decoded one; an MPEG-TS counts nothing, so nothing is unread.
  A frame ffprobe gives no time takes the index after the one before.
* ``timestamp_s`` is ffprobe's ``best_effort_timestamp_time`` minus the
  stream's ``start_time``; where ffprobe has no time for a frame (the last
  frames of an AVI with B-frames), the time goes on from the last real
  one by the stream's frame interval (``1 / avg_frame_rate``).
* ``stream_start_s`` is ffprobe's stream ``start_time``.
* A damage warning is given exactly when a frame failed or is unread.

Where ffprobe cannot place frames (an AVI, without presentation times,
after damage) and for every damaged clip, the pixels are the ground truth:
each picture read is the intact clip's picture of its time (ffmpeg's
decode of the clip before the damage), or matches none (concealed) just
after the damage, and every frame the damage did not reach is read.

Reads from N and segments must give the whole read's records from N on:
the same indices, times, failed frames and pixels, never a duplicate, a
shift or a hang (each read is given at most :data:`READ_TIMEOUT_S`).

ffmpeg and ffprobe come with ``make test`` (Debian's, as chromium);
without them the matrix is skipped and says why.
"""
import contextlib
import itertools
import json
import shutil
import signal
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import count_pictures

from pose_suite.batch.segments import plan_segments
from pose_suite.errors import InputError
from pose_suite.media.selection import FrameSelection, RangeError
from pose_suite.media.sources import DecodeReport, open_source

FFMPEG, FFPROBE = shutil.which('ffmpeg'), shutil.which('ffprobe')
pytestmark = [pytest.mark.ffmpeg, pytest.mark.skipif(
    not (FFMPEG and FFPROBE),
    reason='ffmpeg/ffprobe not installed (`make test` installs Debian\'s '
           'as root; otherwise `apt-get install ffmpeg`)')]

FRAMES = 40
RATE = 25
#: The picture: 40 frames of ffmpeg's test pattern, 320x240.
SOURCE = ['-f', 'lavfi', '-i',
          f'testsrc2=size=320x240:rate={RATE}:duration={FRAMES / RATE}']
H264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
        '-g', '12']
NO_B = [*H264, '-bf', '0']
B3 = [*H264, '-bf', '3']


def _vfr(pause_after: int, pause_ms: int) -> list:
    """Variable frame rate: irregular intervals (20-60 ms) and a pause of
    ``pause_ms`` after frame ``pause_after``, in milliseconds."""
    return ['-vf', f"settb=1/1000,setpts='(N*40+mod(N*7,5)*5"
            f"+gte(N,{pause_after})*{pause_ms})/1000/TB'", '-fps_mode',
            'passthrough', '-enc_time_base:v', '1:1000']


VFR = _vfr(20, 1000)
MP4_MS = ['-video_track_timescale', '1000']
HEVC = ['-c:v', 'libx265', '-preset', 'ultrafast', '-g', '12',
        '-x265-params', 'log-level=error']
MJPEG = ['-c:v', 'mjpeg', '-q:v', '6', '-pix_fmt', 'yuvj420p']

#: name -> (ffmpeg output options, file suffix, what is then done to it).
#: After-steps: ('trim', ss, t): ``ffmpeg -ss ss -i clip -t t -c copy``;
#: ('corrupt', k): the k-th packet's JPEG header overwritten; ('damage',
#: k): the k-th packet's bytes from its 9th to 60 % of its size zeroed;
#: ('zero', k): the k-th packet zeroed whole; ('nal', k): the 4-byte
#: length of the k-th packet's first H.264 NAL unit zeroed (OpenCV's raw
#: demux then cannot hand that packet out); ('skip', n): the file
#: without its first n bytes; ('cut', share): the file's
#: first ``share`` of bytes only.
RECIPES = {
    **{f'h264_{kind}_{ext}': (options, ext, None)
       for ext in ('mp4', 'mov', 'mkv', 'avi', 'ts', 'flv')
       for kind, options in (('noB', NO_B), ('bf3', B3))},
    'mpeg4_bf2_xvid_avi': (['-c:v', 'mpeg4', '-q:v', '5', '-bf', '2',
                            '-g', '12', '-vtag', 'XVID'], 'avi', None),
    'hevc_rotate90_mp4': ([*HEVC, '-pix_fmt', 'yuv420p',
                           '-metadata:s:v:0', 'rotate=90'], 'mp4', None),
    'hevc10_rotate270_mp4': ([*HEVC, '-pix_fmt', 'yuv420p10le',
                              '-metadata:s:v:0', 'rotate=270'], 'mp4', None),
    # After a seek into a GOP, OpenCV's HEVC decoder loses P frames that a
    # read from the first decodes.
    'hevc_bf4_ts': ([*HEVC, '-bf', '4', '-pix_fmt', 'yuv420p'], 'ts', None),
    'vp9_webm': (['-c:v', 'libvpx-vp9', '-deadline', 'realtime',
                  '-cpu-used', '8', '-g', '12', '-b:v', '300k'], 'webm',
                 None),
    'mjpeg_avi': (MJPEG, 'avi', None),
    'mjpeg_mkv': (MJPEG, 'mkv', None),
    'gif': (['-vf', 'split[a][b];[a]palettegen[p];[b][p]paletteuse'], 'gif',
            None),
    'vfr_pause_mp4': ([*VFR, *B3, *MP4_MS], 'mp4', None),
    'vfr_pause_mkv': ([*VFR, *B3], 'mkv', None),
    'ts_late_clock_ts': ([*B3, '-output_ts_offset', '10'], 'ts', None),
    # The 33-bit clock (95443.7 s) wraps 1.4 s after the first frame, and
    # a clock that starts less than 60 s before it (FFmpeg: negative).
    'ts_clock_wraps_ts': ([*B3, '-output_ts_offset', '95441'], 'ts', None),
    'ts_clock_near_wrap_ts': ([*B3, '-output_ts_offset', '95400'], 'ts',
                              None),
    # A capture begun mid-stream: packets before the first tables.
    'ts_captured_mid_stream_ts': (B3, 'ts', ('skip', 188 * 20)),
    # ... and cut inside a packet, in the tables' 0xFF stuffing (which
    # looks like an MPEG audio frame's sync).
    'ts_cut_inside_a_packet_ts': (B3, 'ts', ('skip', 100)),
    'mpeg2_bf2_mpg': (['-c:v', 'mpeg2video', '-bf', '2', '-g', '12'], 'mpg',
                      None),
    # A high-speed camera's rate: frames 1 ms apart.
    **{f'h264_1000fps_{ext}': (NO_B, ext, None) for ext in ('mp4', 'mkv')},
    'mkv_audio_first': (['-map', '0:v', '-map', '1:a', *B3, '-c:a', 'aac',
                         '-shortest'], 'mkv', None),
    'mp4_audio_first': (['-map', '0:v', '-map', '1:a', *B3, '-c:a', 'aac',
                         '-shortest'], 'mp4', None),
    # The sound, first, starts 60.05 s before the clock's wrap, the
    # picture 59.75 s: FFmpeg takes the program's first packet (sound) as
    # the wrap's reference, and counts the picture's times positive.
    'ts_near_wrap_audio_first': (['-map', '0:v', '-map', '1:a', *B3,
                                  '-c:a', 'aac', '-shortest',
                                  '-output_ts_offset', '95382.27'], 'ts',
                                 None),
    'mp4_no_edit_list': ([*B3, '-use_editlist', '0'], 'mp4', None),
    'trim_ss_copy_mp4': (B3, 'mp4', ('trim', '0.3', '1.0')),
    'corrupt_frame_mjpeg_avi': (MJPEG, 'avi', ('corrupt', 17)),
    'corrupt_first_frame_mjpeg_avi': (MJPEG, 'avi', ('corrupt', 0)),
    'corrupt_last_frame_vfr_mjpeg_mkv': ([*VFR, *MJPEG], 'mkv',
                                         ('corrupt', 39)),
    'corrupt_frame_vfr_mjpeg_mkv': ([*VFR, *MJPEG], 'mkv', ('corrupt', 17)),
    # The second key frame (packet 12 of a GOP of 12 with B-frames) half
    # overwritten: the decoder conceals, hands a frame out late, and (TS)
    # the container loses the packet.
    **{f'damaged_key_frame_bf3_{ext}': (B3, ext, ('damage', 12))
       for ext in ('mp4', 'mkv', 'ts', 'avi')},
    # A P frame of the first GOP: the first frame (time 0) is handed out
    # late, and OpenCV gives it its packet's decoding time.
    **{f'damaged_first_gop_p_bf3_{ext}': (B3, ext, ('damage', 1))
       for ext in ('mp4', 'mkv')},
    # A zeroed NAL length: the packet table must not end there, nor lack
    # the packet (its frame is failed, the next ones keep their indices).
    'zeroed_nal_length_bf3_mkv': (B3, 'mkv', ('nal', 13)),
    'zeroed_nal_length_first_bf3_mkv': (B3, 'mkv', ('nal', 0)),
    'zeroed_nal_length_key_bf3_flv': (B3, 'flv', ('nal', 24)),
    # ... in a clip that has a one-frame gap of its own (frame 30 dropped
    # when recording): the lost packet's time is the hole near it.
    'gap_and_zeroed_nal_length_bf3_mkv': (['-vf', r'select=not(eq(n\,30))',
                                           '-fps_mode', 'passthrough', *B3],
                                          'mkv', ('nal', 13)),
    # AVI, first group of pictures: the B-frame delay is measured from the
    # first frame decoded, counting the reads that failed before it.
    'damaged_first_gop_p_bf3_avi': (B3, 'avi', ('damage', 1)),
    'damaged_first_frame_bf3_avi': (B3, 'avi', ('damage', 0)),
    'damaged_late_p_frame_bf3_avi': (B3, 'avi', ('damage', 30)),
    # A Matroska block overwritten whole: the rest of its cluster is lost.
    'zeroed_block_bf3_mkv': (B3, 'mkv', ('zero', 12)),
    'cut_70pc_faststart_mp4': ([*B3, '-movflags', '+faststart'], 'mp4',
                               ('cut', 0.70)),
    # The pause (0.5 s) is among the last frames before the cut.
    'cut_75pc_vfr_faststart_mp4': ([*_vfr(28, 500), *B3, *MP4_MS,
                                    '-movflags', '+faststart'], 'mp4',
                                   ('cut', 0.75)),
    'cut_65pc_moov_at_end_mp4': (B3, 'mp4', ('cut', 0.65)),
    'cut_70pc_mkv': (B3, 'mkv', ('cut', 0.70)),
    'cut_70pc_avi': (B3, 'avi', ('cut', 0.70)),
    'cut_70pc_ts': (B3, 'ts', ('cut', 0.70)),
}
#: Clips the suite refuses, and the words of its error.
REFUSED = {'cut_65pc_moov_at_end_mp4': ['truncated']}
#: Seconds one read may take before it counts as a hang.
READ_TIMEOUT_S = 60
#: Seconds a Ray segment lasts in the segmented reads (several segments
#: of these 1.6-s clips).
SEGMENT_S = 0.5


def _run(*command):
    done = subprocess.run([str(c) for c in command], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _probe(path, *entries):
    return json.loads(_run(FFPROBE, '-v', 'error', '-select_streams', 'v:0',
                           *entries, '-of', 'json', path))


def _make(folder: Path, name: str) -> Path:
    options, ext, after = RECIPES[name]
    inputs = list(SOURCE)
    if name.endswith('_audio_first'):
        # The picture starts 0.3 s after the sound.
        inputs = ['-itsoffset', '0.3', *SOURCE, '-f', 'lavfi', '-i',
                  'sine=frequency=440:duration=2.5']
    if '_1000fps_' in name:
        inputs = ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=1000:'
                  f'duration={FRAMES / 1000}']
    path = folder / f'{name}.{ext}'
    made = path if after is None else folder / f'{name}.whole.{ext}'
    _run(FFMPEG, '-v', 'error', '-y', *inputs, *options, made)
    if after is None:
        return path
    if after[0] == 'trim':
        _run(FFMPEG, '-v', 'error', '-y', '-ss', after[1], '-i', made, '-t',
             after[2], '-c', 'copy', path)
    elif after[0] == 'skip':
        path.write_bytes(made.read_bytes()[after[1]:])
    elif after[0] in ('corrupt', 'damage', 'zero', 'nal'):
        shutil.copyfile(made, path)
        if after[0] == 'corrupt':
            _corrupt_packet(path, after[1])
        elif after[0] == 'nal':
            _zero_nal_length(path, after[1])
        else:
            _damage_packet(path, after[1], whole=after[0] == 'zero')
    else:
        data = made.read_bytes()
        path.write_bytes(data[:int(len(data) * after[1])])
    return path


def _corrupt_packet(path: Path, number: int):
    """Zero the JPEG header of the ``number``-th video packet: it no longer
    decodes, the container is untouched."""
    packets = _probe(path, '-show_entries', 'packet=pos,size')['packets']
    pos, size = int(packets[number]['pos']), int(packets[number]['size'])
    data = bytearray(path.read_bytes())
    start = data.find(b'\xff\xd8', pos, pos + 64)
    assert start >= 0, 'no JPEG in the packet'
    data[start:start + min(600, size // 2)] = bytes(min(600, size // 2))
    path.write_bytes(bytes(data))


def _zero_nal_length(path: Path, number: int):
    """Zero the length field (4 bytes, the packet's first) of the first
    NAL unit of the ``number``-th video packet, found in the file by its
    first bytes after ffprobe's position of the packet."""
    packet = _probe(path, '-show_entries', 'packet=pos,data',
                    '-show_data')['packets'][number]
    first_line = packet['data'].strip().split('\n')[0]
    start = bytes.fromhex(''.join(first_line.split(':')[1].split()[:8]))
    data = bytearray(path.read_bytes())
    at = data.find(start, int(packet['pos']))
    assert 0 <= at - int(packet['pos']) < 64, 'packet data not found'
    data[at:at + 4] = bytes(4)
    path.write_bytes(bytes(data))


def _damage_packet(path: Path, number: int, whole: bool = False):
    """Zero the ``number``-th video packet from its 9th byte to 60 % of
    its size (in MPEG-TS this crosses the 188-byte packets' headers), or
    ``whole``."""
    packets = _probe(path, '-show_entries', 'packet=pos,size')['packets']
    pos, size = int(packets[number]['pos']), int(packets[number]['size'])
    begin, end = (pos, pos + size) if whole else (pos + 8,
                                                   pos + int(size * 0.6))
    data = bytearray(path.read_bytes())
    data[begin:end] = bytes(end - begin)
    path.write_bytes(bytes(data))


def _seconds(value):
    return None if value in (None, 'N/A') else float(value)


def _truth(path: Path, whole: Path) -> dict:
    """What ffprobe says of ``path`` (``whole``: the same before it was cut
    short, or ``path``): see the module's docstring."""
    stream = _probe(path, '-show_entries', 'stream=start_time,'
                    'avg_frame_rate,r_frame_rate')['streams'][0]
    rate = stream['avg_frame_rate'] if stream['avg_frame_rate'] != '0/0' \
        else stream['r_frame_rate']
    numerator, denominator = map(int, rate.split('/'))
    interval = denominator / numerator
    start = float(stream.get('start_time', 0) or 0)
    shown = _shown(path if whole.suffix not in INDEXED else whole)
    # Frames the container says it has: an index, an AVI header, a
    # Matroska duration; MPEG-TS says nothing.
    count = len(_shown(whole)) if whole.suffix != '.ts' else len(shown)
    frames, shown_pts = [], None
    for frame in _probe(path, '-show_entries', 'frame=pts_time,'
                        'best_effort_timestamp_time')['frames']:
        pts = _seconds(frame.get('pts_time'))
        if pts is not None and shown_pts is not None and pts <= shown_pts:
            continue  # handed out after a later frame: not shown
        shown_pts = pts if pts is not None else shown_pts
        frames.append(_seconds(frame.get('best_effort_timestamp_time')))
    if len(frames) == len(shown):
        indices = list(range(len(frames)))
    else:  # a frame without a time follows the one before
        indices = []
        for time in frames:
            indices.append(indices[-1] + 1 if time is None else min(
                range(len(shown)), key=lambda i: abs(shown[i] - time)))
    times, last = [], None
    for index, time in zip(indices, frames):
        if time is None:
            time = last[1] + (index - last[0]) * interval + start
        last = (index, time - start)
        times.append(round(time - start, 6))
    failed = sorted(set(range(indices[-1] + 1)) - set(indices))
    return {'indices': indices, 'times': times, 'failed': failed,
            'unread': count - indices[-1] - 1, 'start_s': start}


#: Containers whose index lists every frame, also those a cut file lost.
INDEXED = ('.mp4', '.mov')


def _shown(path: Path) -> list:
    """The presentation times (decoding times where there are none) of
    the packets of ``path`` that are shown (not flagged D), sorted."""
    packets = _probe(path, '-show_entries',
                     'packet=pts_time,dts_time,flags')['packets']
    return sorted(
        _seconds(p.get('pts_time')) if _seconds(p.get('pts_time'))
        is not None else _seconds(p.get('dts_time'))
        for p in packets if 'D' not in p['flags'])


@pytest.fixture(scope='session')
def clips(tmp_path_factory):
    """name -> (path, ffprobe's truth), each clip made once, when first
    asked for."""
    folder = tmp_path_factory.mktemp('matrix')
    made = {}

    def clip(name):
        if name not in made:
            path = _make(folder, name)
            cut = RECIPES[name][2] and RECIPES[name][2][0] == 'cut'
            whole = next(folder.glob(f'{name}.whole.*')) if cut else path
            made[name] = (path, None if name in REFUSED
                          else _truth(path, whole))
        return made[name]
    return clip


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: int):
    """Raise _Hang in the block after ``seconds`` (a read that loops)."""
    def expired(*_):
        raise _Hang(f'a read took more than {seconds} s')
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _read(source, start=0, stop=None, plan=None):
    """(records, pixels, report, damage warnings) of one read (``plan``: a
    range and step); records are ``(frame_index, timestamp_s, failed)``."""
    report = DecodeReport()
    with warnings.catch_warnings(record=True) as caught, \
            _deadline(READ_TIMEOUT_S):
        warnings.simplefilter('always')
        frames = source.frames(start=start, report=report, plan=plan)
        if stop is not None:
            frames = itertools.takewhile(lambda item: item[0] < stop, frames)
        read = list(frames)
    records = [(index, None if time is None else round(time, 6),
                frame is None) for index, time, frame in read]
    pixels = {index: frame for index, _, frame in read if frame is not None}
    said = [str(w.message) for w in caught
            if 'could not be decoded' in str(w.message)
            or 'none after frame' in str(w.message)
            or 'missing at its frame rate' in str(w.message)]
    return records, pixels, report, said


def _starts(count: int):
    """Frames a read starts from: the second and third, a third and
    half-way in, the last two."""
    return sorted({s for s in (1, 2, count // 3, count // 2 + 1, count - 2,
                               count - 1) if 0 < s < count})


CLIPS = [name for name in RECIPES if name not in REFUSED]
#: Damaged clips whose frames ffprobe cannot place: AVI has no
#: presentation times, and after the damage ffprobe's best-effort times
#: are guesses (they put pictures where they are not). Their pictures are
#: checked against the intact clip's instead.
UNPLACED_BY_FFPROBE = ['damaged_key_frame_bf3_avi',
                       'damaged_first_gop_p_bf3_avi',
                       'damaged_first_frame_bf3_avi',
                       'damaged_late_p_frame_bf3_avi']
#: Clips with a damaged packet, made from an intact one.
DAMAGED = [name for name, (_, _, after) in RECIPES.items()
           if after and after[0] in ('corrupt', 'damage', 'nal')]
#: Most frames between the first one a damaged packet spoils and the
#: first one shown right again (a GOP of 12 and the B-frames' delay).
DAMAGE_SPAN = 16


@pytest.mark.parametrize('name', [c for c in CLIPS
                                  if c not in UNPLACED_BY_FFPROBE])
def test_a_whole_read_is_ffprobes(clips, name):
    path, truth = clips(name)
    source = open_source(path)
    records, _, report, said = _read(source)
    decoded = [(index, time) for index, time, failed in records
               if not failed]
    assert [index for index, _ in decoded] == truth['indices']
    np.testing.assert_allclose([time for _, time in decoded],
                               truth['times'], atol=1.5e-3)
    assert [index for index, _, failed in records if failed] == \
        truth['failed']
    assert report.frames_unread_at_end == truth['unread']
    damage = [s for s in said if 'missing at its frame rate' not in s]
    assert bool(damage) == bool(truth['failed'] or truth['unread']), said
    gaps = [s for s in said if 'missing at its frame rate' in s]
    assert len(gaps) == (RECIPES[name][2] or ('',))[0].startswith('zero'), \
        said


@pytest.mark.parametrize('name', [n for n in CLIPS
                                  if (RECIPES[n][2] or ('',))[0] == 'zero'])
def test_frames_lost_from_the_container_are_reported(clips, name):
    """A packet overwritten whole: the demuxer resumes at the next one
    it can read, as ffprobe does (its frames are counted among those
    there are), and the frames lost between are reported: as many as the
    intact clip has more than ffprobe finds in the damaged one."""
    path, truth = clips(name)
    intact = path.with_name(f'{name}.whole{path.suffix}')
    lost = len(_shown(intact)) - len(_shown(path))
    assert lost >= 3
    _, _, _, said = _read(open_source(path))
    assert [s for s in said if f'{lost} frame(s) missing at its frame '
            'rate, in 1 stretch(es)' in s], said


@pytest.mark.parametrize('name', CLIPS)
def test_the_stream_start_is_ffprobes(clips, name):
    """``meta.stream_start_s``: timestamp_s + stream_start_s is the
    container's presentation time, to line frames up with its sound."""
    path, truth = clips(name)
    assert open_source(path).stream_start_s == pytest.approx(
        truth['start_s'], abs=1e-3)


@pytest.mark.parametrize('name', CLIPS)
def test_a_read_from_frame_n_is_the_whole_read_from_n(clips, name):
    """What --resume reads after N frames were written."""
    path, _ = clips(name)
    source = open_source(path)
    whole, pixels, report, _ = _read(source)
    last = max(index for index, _, failed in whole if not failed)
    for start in _starts(last + 1):
        part, got, part_report, said = _read(source, start)
        expected = [r for r in whole if r[0] >= start]
        assert part == expected, f'from frame {start}'
        for index in [r[0] for r in expected if not r[2]][:2]:
            assert np.array_equal(got[index], pixels[index]), \
                f'from frame {start}: pixels of frame {index}'
        assert part_report.frames_unread_at_end == \
            report.frames_unread_at_end, f'from frame {start}'
        assert not [s for s in said if any(
            f'frame {i} ' in s for i in range(start))], (start, said)


@pytest.mark.parametrize('name', CLIPS)
def test_segments_stitch_to_the_whole_read(clips, name):
    """What a Ray run with ``segment_s`` reads, segment by segment."""
    path, _ = clips(name)
    source = open_source(path)
    whole, pixels, _, _ = _read(source)
    segments = plan_segments(source.frame_count, source.fps,
                             min(SEGMENT_S, FRAMES / source.fps / 3))
    assert len(segments) > 1
    stitched, firsts = [], []
    for segment in segments:
        records, got, _, _ = _read(source, segment.start, segment.stop)
        stitched += records
        first = next((r[0] for r in records if not r[2]), None)
        if first is not None:
            firsts.append((segment, first, got[first]))
    assert stitched == whole
    for segment, first, frame in firsts:
        assert np.array_equal(frame, pixels[first]), segment


@pytest.mark.parametrize('name', sorted(REFUSED))
def test_unreadable_clips_are_refused(clips, name):
    """An MP4 cut before its index (moov at the end) holds no frame a
    decoder can find: refused as truncated, as ffprobe refuses it."""
    path, _ = clips(name)
    with pytest.raises(InputError) as error:
        open_source(path)
    for word in REFUSED[name]:
        assert word in str(error.value)
    probed = subprocess.run([FFPROBE, '-v', 'error', str(path)],
                            capture_output=True, text=True)
    assert probed.returncode != 0


def _intact_pictures(path: Path) -> dict:
    """{time from the stream's start in ms: (H, W, 3) BGR picture} of a
    clip, as the ffmpeg command line decodes it."""
    stream = _probe(path, '-show_entries',
                    'stream=width,height')['streams'][0]
    times = [round(time * 1000) for time in _truth(path, path)['times']]
    raw = subprocess.run(
        [FFMPEG, '-v', 'error', '-i', str(path), '-map', '0:v:0',
         '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'bgr24',
         '-'], capture_output=True, timeout=120, check=True).stdout
    pictures = np.frombuffer(raw, np.uint8).reshape(
        -1, int(stream['height']), int(stream['width']), 3)
    assert len(pictures) == len(times) == len(set(times))
    return dict(zip(times, pictures.astype(np.int16)))


@pytest.mark.parametrize('name', DAMAGED)
def test_pictures_after_damage_are_the_intact_clips(clips, name):
    """Ground truth from pixels: each picture read from a damaged clip is
    the intact clip's picture of the same time, or (a decoder concealing
    what it lost) no intact picture at all, and only just after the
    damage; each frame is given once, in order; every frame the damage
    did not reach is read, to the end. A picture the decoder hands out
    late (an H.264 key frame lost) is dropped, never given the next
    frame's place."""
    path, _ = clips(name)
    intact = _intact_pictures(path.with_name(f'{name}.whole{path.suffix}'))
    records, pixels, _, said = _read(open_source(path))
    assert [index for index, _, _ in records] == list(range(len(records)))
    assert said
    right, spoiled = [], []
    for index, time, failed in records:
        if failed:
            spoiled.append(index)
            continue
        at = round(time * 1000)
        at = min(intact, key=lambda t: abs(t - at))
        assert abs(at - time * 1000) < 1.5, f'frame {index} at {time} s'
        differences = {t: np.abs(pixels[index] - picture).mean()
                       for t, picture in intact.items()}
        if differences[at] < 1.0:
            right.append(at)
        else:
            assert min(differences.values()) >= 1.0, \
                f'frame {index} at {time} s shows another frame\'s picture'
            spoiled.append(index)
    # (None where the damage is at the end: it is unread, not failed.)
    assert not spoiled or max(spoiled) - min(spoiled) < DAMAGE_SPAN, spoiled
    order = sorted(intact)
    missing = [order.index(t) for t in order if t not in right]
    assert missing and max(missing) - min(missing) < DAMAGE_SPAN, \
        f'frames the damage did not reach are lost: {missing}'


def test_a_ts_whose_picture_starts_8_s_after_its_sound(tmp_path):
    """OpenCV's FFmpeg probes about 7 s of an MPEG-TS (and the wheel takes
    no option for more), so such a file cannot be read: it is refused with
    a line that says why and how to make a copy that opens, and that copy
    keeps the picture's offset (ffprobe's, probing long enough)."""
    path, copy = tmp_path / 'late_picture.ts', tmp_path / 'late_picture.mp4'
    _run(FFMPEG, '-v', 'error', '-itsoffset', '8', *SOURCE, '-f', 'lavfi',
         '-i', 'sine=frequency=440:duration=10', '-map', '0:v', '-map',
         '1:a', *B3, '-c:a', 'aac', path)
    with pytest.raises(InputError) as error:
        open_source(path)
    assert 'starts long after its sound' in str(error.value)
    command = str(error.value).split('`')[1].split()
    _run(FFMPEG, '-v', 'error', *[str(path) if word == 'IN' else str(copy)
                                  if word == 'OUT.mp4' else word
                                  for word in command[1:]])
    start = _probe(copy, '-show_entries', 'stream=start_time')['streams'][0]
    source = open_source(copy)
    assert source.stream_start_s == pytest.approx(
        float(start['start_time']), abs=1e-3)
    assert source.stream_start_s > 8
    assert len(list(source.frames())) == FRAMES


@pytest.mark.parametrize('name', ['h264_1000fps_mp4', 'h264_1000fps_mkv'])
def test_a_1000_fps_clip_has_its_rate(clips, name):
    """``meta.fps`` of a high-speed clip is ffprobe's average rate (OpenCV
    says 1000 of any Matroska whose rate it does not know: the packets
    decide)."""
    path, _ = clips(name)
    stream = _probe(path, '-show_entries',
                    'stream=avg_frame_rate,r_frame_rate')['streams'][0]
    rate = stream['avg_frame_rate'] if stream['avg_frame_rate'] != '0/0' \
        else stream['r_frame_rate']
    numerator, denominator = map(int, rate.split('/'))
    assert open_source(path).fps == pytest.approx(numerator / denominator)


#: Ranges and steps read from every clip (40 frames of 1.6 s at 25 fps;
#: the variable-rate ones 2.6 s): by index, by time (ends between frames
#: and on one), and target rates whose ticks fall between frames.
SELECTIONS = {
    'frames 5-30, every 3rd': FrameSelection(frame_range=(5, 30),
                                             frame_step=3),
    'from 0.86 s, every 2nd': FrameSelection(time_range=(0.86, None),
                                             frame_step=2),
    '0.3-1.1 s at 7 fps': FrameSelection(time_range=(0.3, 1.1),
                                         target_fps=7.0),
    'up to frame 27 at 11 fps': FrameSelection(frame_range=(None, 27),
                                               target_fps=11.0),
    '0.4-1.2 s, frames at both ends': FrameSelection(time_range=(0.4, 1.2)),
}


def _chosen_in(whole, selection) -> list:
    """The frame indices ``selection`` names among the records of a whole
    read, computed here from its times alone (a failed frame, which has
    none, is placed by its index between its neighbours' times, or one
    frame interval on from the nearest): the expected answer."""
    good = {index: time for index, time, failed in whole if not failed}
    indices = [index for index, _, _ in whole]
    times = {}
    for index in indices:
        before = max((i for i in good if i <= index), default=None)
        after = min((i for i in good if i >= index), default=None)
        if before is None or after is None or before == after:
            near = before if after is None else after
            times[index] = good[near] + (index - near) / RATE
        else:
            times[index] = good[before] + (good[after] - good[before]) * \
                (index - before) / (after - before)
    if selection.frame_range is not None:
        first, last = selection.frame_range
        inside = [i for i in indices if (first or 0) <= i and
                  (last is None or i <= last)]
    else:
        start, end = selection.time_range
        inside = [i for i in indices if times[i] >= start - 5e-7 and
                  (end is None or times[i] <= end + 5e-7)]
    if not selection.target_fps or not inside:
        return inside[::selection.frame_step]
    origin, last = times[inside[0]], times[inside[-1]]
    limit = last + (last - times[inside[-2]]) / 2 if len(inside) > 1 \
        else last
    chosen, number = [], 0
    while origin + number / selection.target_fps <= limit + 1e-9:
        tick = origin + number / selection.target_fps
        nearest = min(inside, key=lambda i: (abs(times[i] - tick), i))
        if nearest not in chosen:
            chosen.append(nearest)
        number += 1
    return chosen


@pytest.mark.parametrize('name', CLIPS)
def test_a_selected_read_is_the_whole_read_selected(clips, name,
                                                    monkeypatch):
    """What a run with a range and a step reads: exactly the whole read's
    records of the frames the selection names (computed from the whole
    read's times, which the tests above hold to ffprobe's), with their
    pixels; the frames between steps are never turned into pictures."""
    path, _ = clips(name)
    source = open_source(path)
    whole, pixels, _, _ = _read(source)
    calls = count_pictures(monkeypatch)
    for label, selection in SELECTIONS.items():
        expected = _chosen_in(whole, selection)
        if not expected:  # the 40-ms clips end before 0.3 s
            with pytest.raises(RangeError, match='starts after the end'):
                selection.plan(source)
            continue
        plan = selection.plan(source)
        assert plan.indices is None or plan.indices == sorted(
            set(plan.indices)), label  # never a frame twice
        calls.update(pictures=0, seeks=0, opens=0)
        records, got, _, _ = _read(source, plan=plan)
        assert [r for r in whole if r[0] in expected and not r[2]] == \
            [r for r in records if not r[2]], label
        # A failed frame has no time of its own: by time, one next to an
        # end may fall either side of it.
        failed = [r[0] for r in whole if r[2]]
        assert all(r[0] in failed and min(expected) - 1 <= r[0] <=
                   max(expected) + 1 for r in records if r[2]), label
        for index in got:
            assert np.array_equal(got[index], pixels[index]), (label, index)
        # A picture a frame chosen, and the first two of each try (an
        # open or a seek: the first's time is put right by reading one
        # ahead).
        assert calls['pictures'] <= len(expected) + 2 * (
            calls['seeks'] + calls['opens']), (label, calls)

