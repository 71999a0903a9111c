"""When a video stream starts on its container's clock: FFmpeg's stream
``start_time`` (what ffprobe shows), read from the container's own
structures, without FFmpeg.

OpenCV gives each frame's time from the video stream's start
(``CAP_PROP_POS_MSEC``), so the frames' times alone cannot line up with the
sound or another stream of the same file: an MPEG-TS clock starts at 1.4 s
or anywhere, a Matroska file whose sound starts first delays its picture,
an FLV or MP4 with B-frames shows its first frame a little after zero.
:func:`stream_start_seconds` reads that offset from MP4/MOV (index and edit
list), MPEG-TS (the first PES presentation times), FLV (the first video
tags' times and composition offsets) and Matroska/WebM (the first blocks'
times); for other containers (AVI, GIF...) it takes OpenCV's time of the
first frame in frame units (``CAP_PROP_PTS``), exact to the frame.
"""
import struct
from pathlib import Path
from typing import Iterator, List, Optional

from pose_suite.media.sniff import mp4_frame_times

#: Video packets (PES, tags, blocks) whose earliest time is the start: the
#: first frames of a stream with B-frames are not in presentation order.
FIRST_PACKETS = 16
#: Bytes read at most from the start of a file to find them.
HEAD_BYTES = 4 << 20


def stream_start_seconds(path: Path) -> Optional[float]:
    """The video stream's start offset in seconds (ffprobe's stream
    ``start_time``), or None when the container is not one read here."""
    try:
        mp4 = mp4_frame_times(path)
        if mp4 is not None:
            return mp4[1]
        with open(path, 'rb') as handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return None
    for reader in (_mpeg_ts, _mpeg_ps, _flv, _matroska):
        try:
            times = reader(head)
        except (IndexError, struct.error, ValueError):
            times = None
        if times:
            # FFmpeg takes an MPEG-TS's first packet's time, whatever
            # B-frames follow (a capture begun mid-GOP shows them first).
            return times[0] if reader in (_mpeg_ts, _mpeg_ps) \
                else min(times[:FIRST_PACKETS])
    return None


def _mpeg_ts(data: bytes) -> Optional[List[float]]:
    """Presentation times of the first PES packets of the first video
    stream of an MPEG transport stream (188-byte packets), from the
    file's start: FFmpeg finds the stream in the tables (PAT, PMT) and
    then reads again from the start, so a capture begun mid-stream counts
    the packets before its first tables too."""
    if len(data) < 188 * 3 or not all(data[i] == 0x47
                                      for i in range(0, 188 * 3, 188)):
        return None
    pmt_pid, streams = None, []
    for pid, start, body in _ts_packets(data):
        if pid == 0 and start and pmt_pid is None:
            section = body[1 + body[0]:]
            pmt_pid = (section[10] & 0x1F) << 8 | section[11]
        elif pid == pmt_pid and start:
            streams = _pmt_streams(body[1 + body[0]:])
            break
    video_pid = next((pid for kind, pid in streams if kind in _TS_VIDEO),
                     None)
    times, firsts = [], {}
    for pid, start, body in _ts_packets(data):
        if video_pid is None or len(times) >= FIRST_PACKETS:
            break
        if start and body[:3] == b'\x00\x00\x01' and body[7] & 0x80 and \
                any(pid == each for _, each in streams):  # a PES with PTS
            pts = _pes_time(body[9:14])
            firsts.setdefault(pid, _pes_time(body[14:19])
                              if body[7] & 0x40 else pts)
            if pid == video_pid:
                times.append(pts)
    # FFmpeg's reference: the program's first packet out of the demuxer,
    # the earliest of its streams' first (a small audio packet is complete
    # before the picture's first).
    reference = min(firsts.values(), default=0)
    return [_unwrapped(t, reference) / 90000.0 for t in times] or None


def _mpeg_ps(data: bytes) -> Optional[List[float]]:
    """Presentation times of the first PES packets of the first video
    stream (ids 0xE0-0xEF) of an MPEG program stream (.mpg, .vob), with
    MPEG-1 or MPEG-2 PES headers."""
    if data[:4] != b'\x00\x00\x01\xba':
        return None
    times, reference, stream = [], None, None
    at = data.find(b'\x00\x00\x01', 0)
    while 0 <= at < len(data) - 32 and len(times) < FIRST_PACKETS:
        code = data[at + 3]
        if 0xE0 <= code <= 0xEF and stream in (None, code):
            stamps = _ps_pes_times(data, at + 6)
            if stamps is not None:
                stream = code
                if reference is None:
                    reference = stamps[1]
                times.append(stamps[0])
        at = data.find(b'\x00\x00\x01', at + 4)
    return [_unwrapped(t, reference) / 90000.0 for t in times] or None


def _ps_pes_times(data: bytes, at: int) -> Optional[tuple]:
    """``(PTS, DTS or else PTS)`` of the PES header whose fields start at
    ``at``, or None when it has no PTS."""
    if data[at] & 0xC0 == 0x80:  # MPEG-2
        if not data[at + 1] & 0x80:
            return None
        pts = _pes_time(data[at + 3:at + 8])
        return pts, (_pes_time(data[at + 8:at + 13])
                     if data[at + 1] & 0x40 else pts)
    while data[at] == 0xFF:  # MPEG-1: stuffing, buffer size, stamps
        at += 1
    if data[at] & 0xC0 == 0x40:
        at += 2
    if data[at] & 0xE0 != 0x20:
        return None
    pts = _pes_time(data[at:at + 5])
    return pts, (_pes_time(data[at + 5:at + 10])
                 if data[at] & 0xF0 == 0x30 else pts)


def _ts_packets(data: bytes) -> Iterator:
    """``(pid, starts a unit, payload)`` of the 188-byte packets of an
    MPEG-TS that carry a payload."""
    for offset in range(0, len(data) - 187, 188):
        packet = data[offset:offset + 188]
        payload = 4
        if packet[3] & 0x20:  # adaptation field
            payload += 1 + packet[4]
        if packet[3] & 0x10 and payload < 188:
            yield ((packet[1] & 0x1F) << 8 | packet[2], packet[1] & 0x40,
                   packet[payload:])


#: MPEG-TS times count 90 kHz ticks in 33 bits, and wrap every 26.5 h.
_TS_WRAP = 1 << 33


def _pes_time(field: bytes) -> int:
    """A PES header's 33-bit PTS or DTS (5 bytes), in 90 kHz ticks."""
    return ((field[0] >> 1) & 0x07) << 30 | field[1] << 22 | \
        (field[2] >> 1) << 15 | field[3] << 7 | field[4] >> 1


def _unwrapped(ticks: int, reference: int) -> int:
    """A time as FFmpeg reads it across the 33-bit wrap
    (libavformat's update_wrap_reference): when the first time stamp
    (``reference``) is less than 60 s (and 1/8 of the range) before the
    wrap, times from 60 s before it on are taken before the wrap
    (negative); otherwise times more than 60 s before it, after."""
    limit = reference - 60 * 90000
    if reference >= _TS_WRAP - (_TS_WRAP >> 3) and \
            reference >= _TS_WRAP - 60 * 90000:
        return ticks - _TS_WRAP if ticks >= limit else ticks
    return ticks + _TS_WRAP if ticks < limit else ticks


#: MPEG-TS stream types of video: MPEG-1/2, MPEG-4 Part 2, H.264, HEVC.
_TS_VIDEO = {0x01, 0x02, 0x10, 0x1B, 0x24}


def _pmt_streams(section: bytes) -> List[tuple]:
    """``(stream type, pid)`` of a program map section's streams."""
    length = (section[1] & 0x0F) << 8 | section[2]
    info = (section[10] & 0x0F) << 8 | section[11]
    position, end, streams = 12 + info, 3 + length - 4, []
    while position + 5 <= end:
        streams.append((section[position], (section[position + 1] & 0x1F)
                        << 8 | section[position + 2]))
        position += 5 + ((section[position + 3] & 0x0F) << 8
                         | section[position + 4])
    return streams


def _flv(data: bytes) -> Optional[List[float]]:
    """Presentation times (tag time plus the AVC/HEVC composition offset)
    of the first video frames of an FLV file."""
    if data[:3] != b'FLV':
        return None
    position, times = struct.unpack('>I', data[5:9])[0] + 4, []
    while position + 11 <= len(data) and len(times) < FIRST_PACKETS:
        kind = data[position] & 0x1F
        size = int.from_bytes(data[position + 1:position + 4], 'big')
        stamp = int.from_bytes(data[position + 4:position + 7], 'big') | \
            data[position + 7] << 24
        body = data[position + 11:position + 11 + size]
        if kind == 9 and body:
            codec = body[0] & 0x0F
            if codec in (7, 12) and len(body) >= 5:
                if body[1] == 1:  # a picture, not the decoder's setup
                    offset = int.from_bytes(body[2:5], 'big', signed=True)
                    times.append((stamp + offset) / 1000.0)
            elif body[0] >> 4 != 5:  # not a video info frame
                times.append(stamp / 1000.0)
        position += 11 + size + 4
    return times or None


def _matroska(data: bytes) -> Optional[List[float]]:
    """Times of the first blocks of the first video track of a Matroska
    or WebM file (cluster time plus the block's offset, in its
    TimestampScale)."""
    if data[:4] != b'\x1a\x45\xdf\xa3':
        return None
    scale, video, cluster, times = 1_000_000, None, 0, []
    for element, body in _ebml(data, 0, len(data), _MKV_DESCEND):
        if element == 0x2AD7B1:
            scale = int.from_bytes(data[body[0]:body[1]], 'big')
        elif element == 0xAE and video is None:
            video = _video_track(data, *body)
        elif element == 0xE7:
            cluster = int.from_bytes(data[body[0]:body[1]], 'big')
        elif element in (0xA3, 0xA1) and video is not None:
            track, at = _vint(data, body[0])
            if track == video:
                relative = struct.unpack('>h', data[at:at + 2])[0]
                times.append((cluster + relative) * scale / 1e9)
                if len(times) >= FIRST_PACKETS:
                    break
    return times or None


#: Matroska elements read into: Segment, Info, Tracks, Cluster, BlockGroup.
_MKV_DESCEND = {0x18538067, 0x1549A966, 0x1654AE6B, 0x1F43B675, 0xA0}


def _video_track(data: bytes, start: int, end: int) -> Optional[int]:
    number, kind = None, None
    for element, (begin, stop) in _ebml(data, start, end, set()):
        if element == 0xD7:
            number = int.from_bytes(data[begin:stop], 'big')
        elif element == 0x83:
            kind = int.from_bytes(data[begin:stop], 'big')
    return number if kind == 1 else None


def _ebml(data: bytes, start: int, end: int, descend) -> Iterator:
    """``(element id, (body start, body end))`` in file order, going into
    the elements of ``descend`` (an unknown size runs to ``end``)."""
    position = start
    while position < min(end, len(data)):
        element, at = _element_id(data, position)
        size, body = _vint(data, at)
        width = body - at
        if size == (1 << (7 * width)) - 1:  # unknown size
            size = end - body
        if element in descend:
            yield from _ebml(data, body, min(body + size, end), descend)
        else:
            yield element, (body, min(body + size, len(data)))
        position = body + size


def _element_id(data: bytes, position: int):
    first = data[position]
    width = 1
    while width <= 4 and not first & (0x80 >> (width - 1)):
        width += 1
    if width > 4:
        raise ValueError('not an EBML id')
    return int.from_bytes(data[position:position + width], 'big'), \
        position + width


def _vint(data: bytes, position: int):
    """An EBML variable-size integer at ``position``: (value, end)."""
    first = data[position]
    width = 1
    while width <= 8 and not first & (0x80 >> (width - 1)):
        width += 1
    if width > 8:
        raise ValueError('not an EBML number')
    value = first & (0xFF >> width)
    for byte in data[position + 1:position + width]:
        value = value << 8 | byte
    return value, position + width
