"""What a file is, from its first bytes: the files that are certainly not
an image or a video.

OpenCV's video backend (FFmpeg) opens more than videos: its ``tty``
demuxer renders a text file (``.txt``, ``.nfo``...) as a 640×400, 25 fps
"video", so a dataset's ``SOURCES.txt`` would be analysed and given a
result. This module names such files before any decoder sees them: text
(notes, subtitles, JSON, CSV, HTML), documents and archives (PDF, ZIP and
Office files, ``Thumbs.db``, ``.DS_Store``) and audio-only files (MP3, WAV,
FLAC, Ogg Vorbis/Opus, M4A, and MP4/MOV files whose tracks are all
sound).
What it does not name is left to OpenCV to decode.
"""
import os
import stat
import struct
from pathlib import Path
from typing import List, Optional, Tuple

#: Bytes read from the start of a file to decide.
HEAD_BYTES = 8192
#: Extensions of the image and video files people keep: a file with one of
#: these that cannot be decoded is a damaged file (a failure), any other
#: undecodable file is just not media (skipped in a folder).
MEDIA_EXTENSIONS = frozenset((
    '.mp4', '.m4v', '.mov', '.qt', '.3gp', '.3g2', '.mkv', '.webm', '.avi',
    '.wmv', '.asf', '.flv', '.mpg', '.mpeg', '.m2v', '.ts', '.mts', '.m2ts',
    '.vob', '.ogv', '.mxf', '.dv', '.y4m', '.h264', '.264', '.hevc', '.265',
    '.mjpeg', '.gif', '.jpg', '.jpeg', '.jpe', '.png', '.bmp', '.dib',
    '.tif', '.tiff', '.webp', '.jp2', '.pbm', '.pgm', '.ppm', '.pnm', '.pfm',
    '.sr', '.ras', '.exr', '.hdr', '.pic', '.avif', '.heic', '.heif'))
_TEXT_KINDS = {**dict.fromkeys(('.srt', '.vtt', '.ass', '.ssa', '.sub'),
                               'a subtitle file'),
               '.json': 'a JSON file', '.csv': 'a CSV table',
               '.tsv': 'a table', '.html': 'an HTML page',
               '.htm': 'an HTML page', '.xml': 'an XML file',
               '.svg': 'an SVG drawing'}
#: (offset, signature, what it is) of files that hold no picture.
_NOT_MEDIA_SIGNATURES = (
    (0, b'%PDF-', 'a PDF document'),
    (0, b'PK\x03\x04', 'a ZIP archive or Office document'),
    (0, b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1', 'an OLE2 file (Thumbs.db, an '
                                             'old Office document)'),
    (4, b'Bud1', 'a .DS_Store folder index'),
    (0, b'SQLite format 3\x00', 'an SQLite database'),
    (0, b'ID3', 'audio only (MP3)'),
    (0, b'fLaC', 'audio only (FLAC)'),
    (0, b'#!AMR', 'audio only (AMR)'),
    (0, b'caff', 'audio only (CAF)'),
)
#: Video formats whose header could pass for text.
_VIDEO_SIGNATURES = ((0, b'YUV4MPEG2'),)
_ISO_BMFF_TOP_BOXES = (b'ftyp', b'moov', b'mdat', b'free', b'skip', b'wide',
                       b'pnot', b'uuid', b'styp', b'sidx', b'moof')


def not_media_reason(path: Path) -> Optional[str]:
    """Why ``path`` is certainly neither an image nor a video (``'a text
    file'``, ``'audio only (MP3)'``...), or None when it may be one.

    Reads the first 8 KB only, so a folder of thousands of files is sorted
    quickly; see :func:`audio_only_reason` for MP4 files without video.
    """
    with open(path, 'rb') as handle:
        head = handle.read(HEAD_BYTES)
    if not head or any(head[offset:offset + len(signature)] == signature
                       for offset, signature in _VIDEO_SIGNATURES):
        return None
    for offset, signature, what in _NOT_MEDIA_SIGNATURES:
        if head[offset:offset + len(signature)] == signature:
            return what
    audio = _audio_kind(head)
    if audio:
        return f'audio only ({audio})'
    if _is_text(head):
        return _TEXT_KINDS.get(Path(path).suffix.lower(), 'a text file')
    return None


def special_file_kind(path: Path) -> Optional[str]:
    """What ``path`` is when it exists but is no regular file nor folder
    (``'a FIFO'``, ``'a socket'``, ``'a character device'``, ``'a block
    device'``), else None. Only ``stat``: a FIFO is never opened (that
    would wait for a writer)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    for test, what in ((stat.S_ISFIFO, 'a FIFO'), (stat.S_ISSOCK, 'a socket'),
                       (stat.S_ISCHR, 'a character device'),
                       (stat.S_ISBLK, 'a block device')):
        if test(mode):
            return what
    return None


def looks_like_media(path: Path) -> bool:
    """Named like an image or video file (so a decoding failure is damage,
    not a stray file)."""
    return Path(path).suffix.lower() in MEDIA_EXTENSIONS


def _is_text(head: bytes) -> bool:
    """Text in UTF-8, UTF-16 (with its byte-order mark) or a single-byte
    encoding: no NUL and no control bytes but layout ones. Every video and
    image container has binary fields (sizes, NULs) in its first bytes."""
    if head.startswith((b'\xff\xfe', b'\xfe\xff')):
        return True
    if b'\x00' in head:
        return False
    try:
        head.decode('utf-8')
        return True
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:  # a character cut by the 8 KB read
            return True
    layout = set(b'\t\n\r\f\v\x1b')
    return not any(byte < 0x20 and byte not in layout or byte == 0x7f
                   for byte in head)


def audio_only_reason(path: Path) -> Optional[str]:
    """``'audio only (MP4)'`` for an MP4/MOV/M4A/3GP file whose tracks are
    all sound (a recording app's ``.mp4`` or ``.m4a``), else None. Reads
    its ``moov`` box, so it is asked only of a file no video frame could be
    decoded from."""
    with open(path, 'rb') as handle:
        if handle.read(8)[4:8] in _ISO_BMFF_TOP_BOXES and \
                _iso_bmff_audio_only(handle):
            return 'audio only (MP4)'
    return None


def cut_short(path: Path) -> bool:
    """Whether a video file ends before its own structure says it does:
    an MP4/MOV whose last top-level box runs past the end of the file (a
    copy or recording stopped half-way), a RIFF (AVI) file shorter than
    its header's size, or a Matroska/WebM file shorter than its Segment's
    size (written when the file was finished)."""
    with open(path, 'rb') as handle:
        head = handle.read(64)
        size = handle.seek(0, 2)
        if head[:4] == b'RIFF':
            return struct.unpack('<I', head[4:8])[0] + 8 > size
        if head[:4] == b'\x1a\x45\xdf\xa3':
            return _matroska_cut_short(head, size)
        if head[4:8] not in _ISO_BMFF_TOP_BOXES:
            return False
        return any(end > size for _, _, end in _top_boxes(handle))


def _matroska_cut_short(head: bytes, size: int) -> bool:
    """Whether the Segment after a Matroska file's EBML header (both in
    ``head``) runs past ``size`` bytes; False when its size is unknown
    (a live recording)."""
    def number(at):  # an EBML size: (value, end, all ones)
        width = next((w for w in range(1, 9) if head[at] & (0x80 >> (w - 1))),
                     None)
        if width is None or at + width > len(head):
            raise ValueError
        value = head[at] & (0xFF >> width)
        for byte in head[at + 1:at + width]:
            value = value << 8 | byte
        return value, at + width, value == (1 << (7 * width)) - 1
    try:
        header_size, body, _ = number(4)
        segment = body + header_size
        if head[segment:segment + 4] != b'\x18\x53\x80\x67':
            return False
        segment_size, body, unknown = number(segment + 4)
    except (ValueError, IndexError):
        return False
    return not unknown and body + segment_size > size


def mp4_frame_times(path: Path) -> Optional[Tuple[List[float], float]]:
    """The frames an MP4/MOV's index (``moov``) says its video track shows:
    their presentation times (seconds from the first, sorted) and the
    stream's start (FFmpeg's ``start_time``, seconds); None when it is
    not such a file or its index cannot be read.

    Read from the sample tables (``stts`` durations, ``ctts`` reordering
    offsets) and the edit list (``elst``): samples before the edit's media
    time or past its end are in the file but not shown (a ``-ss ... -c
    copy`` trim, an edit that ends early: ffprobe flags them ``D``), and an
    empty edit first delays the track. The index lists every frame, also
    those a file cut short lost. An edit list of more than one shown edit
    (rare) gives None.
    """
    with open(path, 'rb') as handle:
        if handle.read(8)[4:8] not in _ISO_BMFF_TOP_BOXES:
            return None
        moov = _top_box(handle, b'moov')
    mvhd = _child(moov, b'mvhd') if moov is not None else None
    if mvhd is None or len(mvhd) < 24:
        return None
    movie_scale = struct.unpack('>I', mvhd[12:16] if mvhd[0] == 0
                                else mvhd[20:24])[0]
    for trak in _children(moov, b'trak'):
        mdia = _child(trak, b'mdia')
        hdlr = _child(mdia, b'hdlr') if mdia is not None else None
        if hdlr is None or hdlr[8:12] != b'vide':
            continue
        try:
            return _track_times(trak, mdia, movie_scale)
        except (struct.error, TypeError, ZeroDivisionError):
            return None
    return None


def _track_times(trak: bytes, mdia: bytes, movie_scale: int
                 ) -> Optional[Tuple[List[float], float]]:
    mdhd = _child(mdia, b'mdhd')
    scale = struct.unpack('>I', mdhd[12:16] if mdhd[0] == 0
                          else mdhd[20:24])[0]
    stbl = _child(_child(mdia, b'minf'), b'stbl')
    stts = _child(stbl, b'stts')
    dts, decode_times = 0, []
    for number in range(struct.unpack('>I', stts[4:8])[0]):
        count, delta = struct.unpack_from('>II', stts, 8 + 8 * number)
        for _ in range(count):
            decode_times.append(dts)
            dts += delta
    offsets = []
    ctts = _child(stbl, b'ctts')
    if ctts is not None:
        for number in range(struct.unpack('>I', ctts[4:8])[0]):
            count, offset = struct.unpack_from('>Ii', ctts, 8 + 8 * number)
            offsets += [offset] * count
    offsets += [0] * (len(decode_times) - len(offsets))
    pts = [d + o for d, o in zip(decode_times, offsets)]
    if not pts or not scale:
        return None
    delay, first, last = None, min(pts), None
    elst = _child(_child(trak, b'edts') or b'', b'elst')
    if elst is not None and movie_scale:
        version, count = elst[0], struct.unpack('>I', elst[4:8])[0]
        size = 20 if version == 1 else 12
        shown = []
        for number in range(count):
            duration, media_time = struct.unpack_from(
                '>Qq' if version == 1 else '>Ii', elst, 8 + number * size)
            if media_time < 0:  # an empty edit: the track starts later
                delay = (delay or 0.0) + duration / movie_scale
            else:
                shown.append((media_time, duration))
        if len(shown) > 1:
            return None
        delay = delay or 0.0
        if shown:
            first = shown[0][0]
            if shown[0][1]:
                last = first + shown[0][1] * scale / movie_scale
    times = sorted((p - first) / scale for p in pts
                   if p >= first and (last is None or p < last - 1e-9))
    if not times:
        return None
    # With an edit list, FFmpeg starts the track at the first frame shown
    # (after any empty edit); without, at its first presentation time.
    start = times[0] + first / scale if delay is None else delay
    return [t - times[0] for t in times], start


def _top_boxes(handle):
    """``(type, body start, end)`` of each top-level box of an ISO BMFF
    file, in order, seeking from box to box (so ``moov`` at the end of a
    large file costs a few reads); stops at one that is not a box after
    all. A box of size 0 runs to the end of the file; the last one's end
    is past it when the file was cut short."""
    size = handle.seek(0, 2)
    position = 0
    while position + 8 <= size:
        handle.seek(position)
        header = handle.read(16)
        box_size, box_type = struct.unpack('>I4s', header[:8])
        body = 8
        if box_size == 1 and len(header) == 16:
            box_size, body = struct.unpack('>Q', header[8:])[0], 16
        elif box_size == 0:
            box_size = size - position
        if box_size < body:
            return
        yield box_type, position + body, position + box_size
        position += box_size


def _top_box(handle, kind: bytes) -> Optional[bytes]:
    """The body of the first top-level box ``kind`` (at most 64 MB)."""
    for box_type, start, end in _top_boxes(handle):
        if box_type == kind:
            if end - start > 64 << 20:
                return None
            handle.seek(start)
            return handle.read(end - start)
    return None


def _children(body: bytes, kind: bytes):
    """The bodies of the boxes ``kind`` directly inside ``body``."""
    position = 0
    while position + 8 <= len(body):
        box_size, box_type = struct.unpack('>I4s', body[position:position + 8])
        if box_size < 8:
            return
        if box_type == kind:
            yield body[position + 8:position + box_size]
        position += box_size


def _child(body: bytes, kind: bytes) -> Optional[bytes]:
    return next(_children(body, kind), None)


def _audio_kind(head: bytes) -> Optional[str]:
    """The audio format of a file that can only hold sound, else None."""
    if head[4:8] == b'ftyp' and head[8:12] in (b'M4A ', b'M4B ', b'M4P ',
                                               b'F4A '):
        return 'M4A'
    if head[:4] == b'RIFF' and head[8:12] == b'WAVE':
        return 'WAV'
    if head[:4] == b'FORM' and head[8:12] in (b'AIFF', b'AIFC'):
        return 'AIFF'
    if head[:4] == b'OggS' and b'theora' not in head and (
            b'\x01vorbis' in head or b'OpusHead' in head
            or b'\x7fFLAC' in head):
        return 'Ogg'
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 \
            and not _transport_stream(head):
        return 'MPEG audio or AAC'  # frame sync; JPEG's FF D8 is not one
    return None


def _transport_stream(head: bytes) -> bool:
    """Whether ``head`` has an MPEG-TS's sync byte every 188 (or, M2TS,
    192) bytes, from anywhere in its first packet: a capture cut inside
    a packet may begin with its 0xFF stuffing, which looks like an MPEG
    audio frame's sync."""
    return any(len(head) >= start + stride * 4 and all(
        head[start + stride * k] == 0x47 for k in range(5)
        if start + stride * k < len(head))
        for stride in (188, 192) for start in range(stride))


def _iso_bmff_audio_only(handle) -> bool:
    """For an MP4/MOV/M4A/3GP file: whether its ``moov`` box has sound
    tracks and no video track.

    Reads the handler type of each track (``hdlr`` box: ``vide``,
    ``soun``...) in its ``moov``.
    """
    moov = _top_box(handle, b'moov')
    if moov is None:
        return False
    handlers = set()
    start = moov.find(b'hdlr')
    while start != -1:
        # size, 'hdlr', version+flags, pre_defined, handler type
        handlers.add(moov[start + 12:start + 16])
        start = moov.find(b'hdlr', start + 4)
    return b'soun' in handlers and b'vide' not in handlers
