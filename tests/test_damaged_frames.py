"""Damaged frames you can prove: the frames the suite lists as decoded with
concealed errors (``meta.frames_damaged``) against FFmpeg's own verdict.

Tiny clips (320x240, 20 frames of ``testsrc2``, a key frame every 8, two
B-frames) are made once a session with ffmpeg in H.264, HEVC and MPEG-4
part 2, in MP4, MKV and AVI, and one packet of each (a key frame, a P
frame or a B frame) is overwritten (:data:`MATRIX`). Each is read as the
suite reads (decoding only, no model): whole, resumed from a frame N, and
as Ray segments.

Ground truth, FFmpeg's own verdict per frame, from a decode of the clip on
one thread (``ffmpeg -threads 1 -loglevel level+info -debug_ts -vf
showinfo``), placed independently of the suite's code:

* a frame the decoder flags corrupt (``corrupt decoded frame``, just
  before the ``showinfo`` line of that frame): its place in ffmpeg's
  output order where ffmpeg outputs every frame, else its time among
  ffprobe's packets' presentation times;
* a frame whose packet's decoding logs decoder errors (between that
  packet's ``demuxer`` line and the next), placed by its presentation time
  among ffprobe's packets' (not in AVI, whose packets have decoding times
  only: with B-frames they do not say which frame a packet is);
* less the frames the suite could not decode at all (``frames_failed``).

And the pixels: every frame the suite calls damaged differs from the
intact clip's picture of that frame.

ffmpeg and ffprobe come with ``make test``; without them it is skipped.
"""
import itertools
import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pose_suite.batch.segments import plan_segments
from pose_suite.media.sources import DecodeReport, open_source

FFMPEG, FFPROBE = shutil.which('ffmpeg'), shutil.which('ffprobe')
pytestmark = [pytest.mark.ffmpeg, pytest.mark.skipif(
    not (FFMPEG and FFPROBE),
    reason='ffmpeg/ffprobe not installed (`make test` installs Debian\'s)')]

SOURCE = ['-f', 'lavfi', '-i',
          'testsrc2=size=320x240:rate=25:duration=0.8']
H264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
        '-g', '8', '-bf', '2']
HEVC = ['-c:v', 'libx265', '-preset', 'ultrafast', '-g', '8', '-bf', '2',
        '-x265-params', 'log-level=error', '-pix_fmt', 'yuv420p']
MPEG4 = ['-c:v', 'mpeg4', '-q:v', '5', '-bf', '2', '-g', '8']

#: name -> (encoder options, container, the packet damaged (in decoding
#: order), how: 'noise' (a quarter of its bytes from a third in, random)
#: or 'zero' (its 9th byte to 60 % zeroed)). By ffprobe's picture types:
#: H.264, packet 8 is the second key frame, 9 the P frame after it, 10 and
#: 11 B frames; HEVC, 9 P and 10 B; MPEG-4 part 2, 7 the second key frame,
#: 8 a B frame, 10 a P frame. HEVC has no error concealment: its damage
#: shows as a missing reference.
MATRIX = {
    'h264_key_mp4': (H264, 'mp4', 8, 'noise'),
    'h264_key_mkv': (H264, 'mkv', 8, 'noise'),
    'h264_key_avi': (H264, 'avi', 8, 'noise'),
    'h264_p_mkv': (H264, 'mkv', 9, 'noise'),
    'h264_p_avi': (H264, 'avi', 9, 'noise'),
    'h264_b_mp4': (H264, 'mp4', 11, 'noise'),
    'hevc_p_mp4': (HEVC, 'mp4', 9, 'zero'),
    'hevc_b_mkv': (HEVC, 'mkv', 10, 'zero'),
    'mpeg4_key_avi': (MPEG4, 'avi', 7, 'noise'),
    'mpeg4_b_avi': (MPEG4, 'avi', 8, 'noise'),
    'mpeg4_p_avi': (MPEG4, 'avi', 10, 'noise'),
    'mpeg4_p_mp4': (MPEG4, 'mp4', 10, 'noise'),
    'intact_h264_mp4': (H264, 'mp4', None, None),
}


def _run(*command) -> str:
    done = subprocess.run([str(c) for c in command], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def _packets(path: Path) -> list:
    return json.loads(_run(FFPROBE, '-v', 'error', '-select_streams', 'v:0',
                           '-show_entries', 'packet=pos,size,pts_time',
                           '-of', 'json', path))['packets']


def _make(folder: Path, name: str) -> Path:
    options, ext, number, how = MATRIX[name]
    intact = folder / f'{name}.intact.{ext}'
    _run(FFMPEG, '-v', 'error', '-y', *SOURCE, *options, intact)
    return _overwrite(intact, folder / f'{name}.{ext}', number, how)


def _overwrite(intact: Path, path: Path, number, how) -> Path:
    """``intact`` with its packet ``number`` damaged (see :data:`MATRIX`),
    as ``path``."""
    data = bytearray(intact.read_bytes())
    if number is not None:
        packet = _packets(intact)[number]
        pos, size = int(packet['pos']), int(packet['size'])
        if how == 'zero':
            begin, end = pos + 8, pos + int(size * 0.6)
            data[begin:end] = bytes(end - begin)
        else:
            begin = pos + size // 3
            end = min(pos + size - 4, begin + max(16, size // 4))
            noise = random.Random(number)
            data[begin:end] = bytes(noise.randrange(256)
                                    for _ in range(end - begin))
    path.write_bytes(bytes(data))
    return path


def ffmpeg_verdict(path: Path) -> list:
    """The frame indices FFmpeg's decoder flags corrupt or logs errors
    for (see the module's docstring)."""
    log = _run(FFMPEG, '-hide_banner', '-nostdin', '-nostats', '-loglevel',
               'level+info', '-threads', '1', '-copyts', '-debug_ts', '-i',
               path, '-map', '0:v:0', '-vf', 'showinfo', '-fps_mode',
               'passthrough', '-f', 'null', '-').splitlines()
    decoder = next(re.search(r'-> #0:0 \((\w+)', line).group(1)
                   for line in log if '-> #0:0 (' in line)
    shown, flagged, errors, packet = [], [], set(), None
    pending = False
    for line in log:
        if 'corrupt decoded frame' in line:
            pending = True
        elif 'Parsed_showinfo' in line and ' n:' in line:
            time = float(re.search(r'pts_time:(\S+)', line).group(1))
            if pending:
                flagged.append((len(shown), time))
            shown.append(time)
            pending = False
        elif line.startswith('[info] demuxer+ffmpeg -> '):
            packet = re.search(r'pkt_pts_time:(\S+)', line).group(1)
        elif line.startswith(f'[{decoder} @ ') and (
                '] [error] ' in line or 'concealing' in line):
            errors.add(packet)
    times = sorted(float(p['pts_time']) for p in _packets(path)
                   if p.get('pts_time') not in (None, 'N/A'))
    whole = len(shown) == len(_packets(path))

    def place(time):
        return min(range(len(times)), key=lambda i: abs(times[i] - time))
    verdict = {number if whole or not times else place(time)
               for number, time in flagged}
    if path.suffix != '.avi':  # presentation times: errors are placed
        verdict |= {place(float(pts)) for pts in errors
                    if pts not in (None, 'NOPTS')}
    return sorted(verdict)


@pytest.fixture(scope='session')
def damaged_clips(tmp_path_factory):
    """name -> path, each clip made once, when first asked for."""
    folder = tmp_path_factory.mktemp('damaged')
    made = {}

    def clip(name):
        if name not in made:
            made[name] = _make(folder, name)
        return made[name]
    return clip


def read_checked(source, first=0, stop=None, start=None, earlier=()):
    """What the suite records of a read as ``write_frames`` does:
    ``(records, pixels, damaged)``; records ``(index, failed)``.
    ``start``: the frame a resumed read starts from (``earlier``: the
    records written before it)."""
    report = DecodeReport(damage_range=(first, stop))
    frames = source.frames(start=first if start is None else start,
                           report=report)
    if stop is not None:
        frames = itertools.takewhile(lambda item: item[0] < stop, frames)
    read = list(frames)
    records = list(earlier) + [(i, f is None) for i, _, f in read]
    pixels = {i: f for i, _, f in read if f is not None}
    damaged = report.damage.damaged(i for i, failed in records
                                    if not failed and i >= first)
    return records, pixels, damaged


@pytest.mark.parametrize('name', list(MATRIX))
def test_damaged_frames_are_ffmpegs(damaged_clips, name):
    path = damaged_clips(name)
    source = open_source(path)
    records, pixels, damaged = read_checked(source)
    failed = {i for i, bad in records if bad}
    truth = [i for i in ffmpeg_verdict(path) if i not in failed]
    assert damaged == truth, (records, damaged)
    assert bool(damaged) == (MATRIX[name][2] is not None)
    intact = dict((i, f) for i, _, f in open_source(
        path.with_name(f'{name}.intact{path.suffix}')).frames())
    for index in damaged:
        difference = np.abs(pixels[index].astype(np.int16)
                            - intact[index].astype(np.int16)).mean()
        assert difference >= 1.0, f'frame {index} is the intact picture'


@pytest.mark.parametrize('name', ['h264_key_mp4', 'h264_key_avi',
                                  'mpeg4_p_avi', 'hevc_p_mp4'])
def test_resumed_and_segmented_reads_find_the_same(damaged_clips, name,
                                                   monkeypatch):
    """A run resumed from frame N checks the frames written before it too;
    Ray segments each check theirs (the scan seeking to their start and
    stopped past their end: margins shortened to fit a 0.8-s clip), and
    together the whole clip's."""
    from pose_suite.media import damage
    source = open_source(damaged_clips(name))
    records, _, whole = read_checked(source)
    for start in (3, 9, 14):
        _, _, resumed = read_checked(source, start=start,
                                     earlier=[r for r in records
                                              if r[0] < start])
        assert resumed == whole, f'resumed from frame {start}'
    monkeypatch.setattr(damage, 'BEFORE_START_S', 0.1)
    monkeypatch.setattr(damage, 'PAST_STOP_S', 0.1)
    segments = plan_segments(source.frame_count, source.fps, 0.25)
    assert len(segments) > 1
    found = []
    for segment in segments:
        found += read_checked(source, segment.start, segment.stop)[2]
    assert found == whole


def test_without_ffmpeg_nothing_is_checked_and_it_says_so(
        damaged_clips, monkeypatch):
    from pose_suite.media import damage
    monkeypatch.setattr(damage, 'ffmpeg_path', lambda: None)
    monkeypatch.setattr(damage, '_said_missing', [])
    report = DecodeReport(damage_range=(0, None))
    with pytest.warns(UserWarning, match='ffmpeg is not installed'):
        list(open_source(damaged_clips('h264_key_mp4')).frames(
            report=report))
    assert report.damage is None


def test_a_name_ffmpeg_reads_as_a_protocol_is_the_file(damaged_clips,
                                                       tmp_path,
                                                       monkeypatch):
    """``concat:a.mp4`` is a legal file name, and to ffmpeg the concat
    protocol over ``a.mp4``: the scan must read the file named, not
    another (here a damaged clip beside an intact one of that name)."""
    damaged = damaged_clips('h264_key_mp4')
    shutil.copy(damaged, tmp_path / 'concat:a.mp4')
    shutil.copy(damaged.with_name(f'h264_key_mp4.intact{damaged.suffix}'),
                tmp_path / 'a.mp4')
    monkeypatch.chdir(tmp_path)
    _, _, damaged_frames = read_checked(open_source(Path('concat:a.mp4')))
    assert damaged_frames == ffmpeg_verdict(tmp_path / 'concat:a.mp4') \
        == [8]


def _fake_ffmpeg(folder: Path, body: str) -> str:
    fake = folder / 'ffmpeg'
    fake.write_text('#!/bin/sh\n' + body + '\n')
    fake.chmod(0o755)
    return str(fake)


def _scan_of(path: Path):
    """The damage scan of a whole read of ``path`` (read to its end)."""
    report = DecodeReport(damage_range=(0, None))
    read = [i for i, _, f in open_source(path).frames(report=report)
            if f is not None]
    return report.damage, read


def _stats() -> dict:
    """pid -> (state, ppid) of the processes running (Linux's /proc)."""
    found = {}
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        found[int(stat.parent.name)] = (fields[0], int(fields[1]))
    return found


def _with_children(pid: int) -> list:
    """``pid`` and its children (the fake ffmpeg's sleep), once started."""
    import time
    for _ in range(50):
        children = [p for p, (_, ppid) in _stats().items() if ppid == pid]
        if children:
            return [pid] + children
        time.sleep(0.1)
    return [pid]


def _gone(pids: list) -> bool:
    """None of ``pids`` alive (a zombie is dead) within 5 s."""
    import time
    for _ in range(50):
        stats = _stats()
        if all(stats.get(p, ('Z',))[0] == 'Z' for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_a_scan_that_does_not_finish_is_killed_and_said(
        damaged_clips, tmp_path, monkeypatch):
    """An ffmpeg that hangs: waited for a bounded time after the read,
    then killed with what it started (nothing left running), null and
    one warning line."""
    from pose_suite.media import damage
    monkeypatch.setattr(damage, 'ffmpeg_path', lambda: _fake_ffmpeg(
        tmp_path, 'sleep 100000 & wait'))
    monkeypatch.setattr(damage, 'WAIT_FLOOR_S', 1.0)
    monkeypatch.setattr(damage, 'WAIT_PER_FRAME_S', 0.01)
    scan, read = _scan_of(damaged_clips('h264_key_mp4'))
    started = _with_children(scan._process.pid)
    assert len(started) == 2
    with pytest.warns(UserWarning, match=r'damage not checked for '
                      r'h264_key_mp4\.mp4: ffmpeg did not finish within 1 s'):
        assert scan.damaged(read) is None
    assert scan._process.returncode is not None  # reaped
    assert _gone(started)  # its sleep too


def test_ctrl_c_while_waiting_kills_the_scan(damaged_clips, tmp_path,
                                             monkeypatch):
    from pose_suite.media import damage
    monkeypatch.setattr(damage, 'ffmpeg_path', lambda: _fake_ffmpeg(
        tmp_path, 'sleep 100000 & wait'))
    scan, read = _scan_of(damaged_clips('h264_key_mp4'))
    started = _with_children(scan._process.pid)

    def interrupted(timeout=None):
        raise KeyboardInterrupt
    scan._reader.join = interrupted
    with pytest.raises(KeyboardInterrupt):
        scan.damaged(read)
    assert scan._process.returncode is not None
    assert _gone(started)


def test_an_ffmpeg_that_fails_says_why(damaged_clips, tmp_path,
                                       monkeypatch):
    """An ffmpeg before 5.1 has no ``-fps_mode``: null, and one line with
    its exit status and last error line (escaped)."""
    from pose_suite.media import damage
    monkeypatch.setattr(damage, 'ffmpeg_path', lambda: _fake_ffmpeg(
        tmp_path, "echo 'some banner' >&2; printf \"Unrecognized option "
        "'fps_mode'.\\033[0m\\n\" >&2; exit 8"))
    scan, read = _scan_of(damaged_clips('h264_key_mp4'))
    with pytest.warns(UserWarning) as said:
        assert scan.damaged(read) is None
    assert [str(w.message) for w in said] == [
        'damage not checked for h264_key_mp4.mp4: ffmpeg failed (exit '
        "status 8): Unrecognized option 'fps_mode'.\\x1b[0m "
        '(meta.frames_damaged is null)']


def _pixels_differ(path: Path, intact: Path, indices) -> list:
    """Of ``indices``, the frames whose picture in ``path`` differs from
    that in ``intact`` (mean absolute difference of at least 1)."""
    ours = dict((i, f) for i, _, f in open_source(path).frames())
    theirs = dict((i, f) for i, _, f in open_source(intact).frames())
    return [i for i in indices if np.abs(
        ours[i].astype(np.int16) - theirs[i].astype(np.int16)).mean() >= 1]


def _ffmpeg_errors(path: Path) -> str:
    return subprocess.run([FFMPEG, '-v', 'error', '-threads', '1', '-i',
                           path, '-f', 'null', '-'], capture_output=True,
                          text=True, timeout=120).stderr


def test_without_a_packet_table_it_says_damage_is_not_checked(tmp_path):
    """MPEG-PS with tiny pictures: several frames a PES packet, most
    without a time (ffprobe: N/A); nowhere to place verdicts."""
    path = tmp_path / 'ps.mpg'
    _run(FFMPEG, '-v', 'error', '-f', 'lavfi', '-i',
         'testsrc2=size=64x48:rate=30:duration=0.2', '-c:v', 'mpeg2video',
         path)
    times = [p.get('pts_time') for p in _packets(path)]
    assert times.count('N/A') + times.count(None) >= 3, times
    report = DecodeReport(damage_range=(0, None))
    with pytest.warns(UserWarning, match=r'damage not checked for ps\.mpg: '
                      'its packets do not say where its frames are'):
        list(open_source(path).frames(report=report))
    assert report.damage is None


def test_a_raw_stream_is_not_called_clean(damaged_clips, tmp_path):
    """A raw H.264 stream (no container, packets without times) of the
    clip with a damaged key frame: FFmpeg logs errors, which cannot be
    placed: null and said, never ``[]``."""
    path = tmp_path / 'raw.h264'
    _run(FFMPEG, '-v', 'error', '-i', damaged_clips('h264_key_mp4'),
         '-c', 'copy', '-f', 'h264', path)
    assert _ffmpeg_errors(path)  # FFmpeg sees the damage
    report = DecodeReport(damage_range=(0, None))
    with pytest.warns(UserWarning, match=r'damage not checked for '
                      r'raw\.h264: its packets do not say where'):
        list(open_source(path).frames(report=report))
    assert report.damage is None


@pytest.mark.parametrize('corrupt, errors', [([], [(None, None)]),
                                             ([0.5], [(0.04, 0.0)]),
                                             ([0.04], [(0.5, None)])])
def test_verdicts_without_a_place_are_not_called_clean(corrupt, errors):
    """A verdict without a time (a packet with none), or one no frame of
    the packet table has: not checked (None), never dropped."""
    from pose_suite.media.damage import Verdicts
    from pose_suite.media.packets import PacketTable
    verdicts = Verdicts()
    verdicts.corrupt, verdicts.errors = corrupt, errors
    table = PacketTable([0.0, 0.04, 0.08, 0.12])
    assert verdicts.indices(table, 0.0) is None
    verdicts.corrupt, verdicts.errors = [0.04], [(0.08, 0.0)]
    assert verdicts.indices(table, 0.0) == {1, 2}


def test_a_damaged_key_frame_never_shown_counts_for_the_first_shown(
        damaged_clips, tmp_path):
    """An MP4 trimmed with ``-ss 0.1 -c copy``: its key frame before the
    cut is decoded, never shown. Damaged, its errors smear the first
    frames shown (the pixels tell); no shown frame is flagged corrupt,
    so they count for the first frame shown."""
    whole = damaged_clips('h264_key_mp4').with_name(
        'h264_key_mp4.intact.mp4')
    intact = tmp_path / 'trim.intact.mp4'
    _run(FFMPEG, '-v', 'error', '-ss', '0.1', '-i', whole, '-c', 'copy',
         intact)
    assert _packets(intact)[0]['pts_time'].startswith('-')  # hidden
    path = _overwrite(intact, tmp_path / 'trim.mp4', 0, 'noise')
    assert _ffmpeg_errors(path)
    _, _, damaged = read_checked(open_source(path))
    assert damaged == [0]
    assert _pixels_differ(path, intact, [0]) == [0]


def test_the_warning_says_the_frames_after_a_damaged_one_are_smeared(
        damaged_clips):
    """FFmpeg flags only the frame decoded with errors (8, the second key
    frame); the pictures after it up to the next key frame (16, by
    ffprobe's key flags) refer to it and differ from the intact clip's
    too: the warning line says so."""
    from types import SimpleNamespace
    from pose_suite.service.frames import damaged_frames
    path = damaged_clips('h264_key_mp4')
    source = open_source(path)
    report = DecodeReport(damage_range=(0, None))
    read = list(source.frames(report=report))
    writer = SimpleNamespace(frames_failed=[], next_frame_index=len(read))
    with pytest.warns(UserWarning) as said:
        assert damaged_frames(source, writer, report, 0) == [8]
    assert [str(w.message).split(': ', 1)[1] for w in said] == [
        '1 frame(s) decoded with errors FFmpeg concealed (partly guessed '
        'pictures): 8; listed in meta.frames_damaged; the frames after '
        'each up to the next key frame refer to it and may be smeared too']
    keys = json.loads(_run(FFPROBE, '-v', 'error', '-select_streams', 'v:0',
                           '-show_entries', 'packet=pts_time,flags', '-of',
                           'json', path))['packets']
    times = sorted(float(p['pts_time']) for p in keys)
    key_frames = sorted(times.index(float(p['pts_time'])) for p in keys
                        if 'K' in p['flags'])
    assert key_frames == [0, 8, 16]
    intact = path.with_name('h264_key_mp4.intact.mp4')
    assert _pixels_differ(path, intact, range(20)) == list(range(8, 16))
