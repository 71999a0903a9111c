"""The results JSON: its records, how it is written whole, and how it is
read back a frame at a time.

A result is ``{"meta": ..., "frames": [...], "end": {"frame_count": N}}``
with one frame record a line (:func:`write_result`), so that a long video's
result is never loaded whole (:func:`iter_frame_records`,
:func:`read_meta`) and a cut copy is told from a whole one by its last
bytes (:func:`why_incomplete`). It is streamed to disk and published by
:class:`pose_suite.outputs.writer.ResultWriter`.
"""
import json
import math
import os
import re
import warnings
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from pose_suite.errors import SuiteWarning

#: The first bytes of every result the suite has written.
RESULT_HEAD = b'{\n"meta": '
#: Decimals kept in the JSON: 0.001 px for positions, 1e-5 for scores.
PIXEL_DECIMALS = 3
SCORE_DECIMALS = 5
#: Decimals kept for angles: 1e-6 degrees.
ANGLE_DECIMALS = 6


def _number(value, decimals: int) -> Optional[float]:
    value = float(value)
    return round(value, decimals) if math.isfinite(value) else None


def _points(keypoints) -> list:
    return [[_number(x, PIXEL_DECIMALS), _number(y, PIXEL_DECIMALS)]
            for x, y in np.asarray(keypoints)]


def person_record(person: Dict[str, np.ndarray], angles=None) -> dict:
    """JSON-ready record of one person from ``PoseExtractionService``, with
    ``track_id`` and ``keypoints_raw`` when tracking and smoothing set
    them, and ``angles`` (name -> degrees or null) when ``angles`` (an
    :class:`pose_suite.outputs.angles.AngleComputer`) is given: computed
    from ``keypoints`` (the smoothed ones when smoothing) as written, so
    that anyone recomputing them from the file gets the same."""
    record = {}
    if 'track_id' in person:
        record['track_id'] = int(person['track_id'])
    record.update({
        'bbox': [_number(v, PIXEL_DECIMALS) for v in person['bbox'][:4]],
        'bbox_score': _number(person['bbox_score'], SCORE_DECIMALS),
        'keypoints': _points(person['keypoints']),
        'keypoint_scores': [_number(s, SCORE_DECIMALS)
                            for s in np.asarray(person['keypoint_scores'])],
    })
    if 'keypoints_raw' in person:
        record['keypoints_raw'] = _points(person['keypoints_raw'])
    if angles is not None:
        record['angles'] = record_angles(angles, record['keypoints'],
                                         record['keypoint_scores'])
    return record


def record_angles(angles, keypoints: list, scores: list) -> dict:
    """A person's ``angles`` as the JSON holds them (name -> degrees,
    1e-6, or null) from its ``keypoints`` and ``keypoint_scores`` as
    written."""
    return {name: None if value is None else round(value, ANGLE_DECIMALS)
            for name, value in angles.of_record(keypoints, scores).items()}


def persons_from_record(record: dict) -> List[Dict[str, np.ndarray]]:
    """A frame record's persons as numpy arrays, as the services give them
    (measured keypoints: ``keypoints_raw`` when the file has them)."""
    persons = []
    for person in record['persons']:
        raw = person.get('keypoints_raw', person['keypoints'])
        persons.append({
            'bbox': np.asarray(person['bbox'], np.float32),
            'bbox_score': person['bbox_score'],
            'keypoints': np.asarray(raw, np.float32),
            'keypoint_scores': np.asarray(person['keypoint_scores'],
                                          np.float32),
            **({'track_id': person['track_id']} if 'track_id' in person
               else {})})
    return persons


def frame_record(frame_index: int, timestamp_s: float,
                 persons: List[Dict[str, np.ndarray]], angles=None) -> dict:
    """JSON-ready record of one frame (``persons`` may be empty);
    ``angles``: see :func:`person_record`."""
    return {
        'frame_index': int(frame_index),
        'timestamp_s': round(float(timestamp_s), 6),
        'persons': [person_record(p, angles) for p in persons],
    }


def record_line(record: dict) -> str:
    """A frame record as the one line it takes in a result file."""
    return json.dumps(record, separators=(',', ':'), allow_nan=False)


def read_meta(path: Path) -> Optional[dict]:
    """The ``meta`` block of a result file written by :func:`write_result`,
    read without its frames (a long video's result can be hundreds of MB);
    None when the file is missing or not such a result."""
    try:
        with open(path, 'rb') as handle:
            return meta_block(handle)[0]
    except OSError:
        return None


def meta_block(lines: Iterable[bytes]) -> Tuple[Optional[dict], int]:
    """The ``meta`` of a result in :func:`write_result`'s layout from its
    ``lines`` (bytes, from the first), read up to its ``"frames": [``
    line, which is read and no further: the meta (None where there is no
    such line or the block does not read as UTF-8 JSON) and the number of
    lines read."""
    block = []
    for line in lines:
        if line.startswith(b'"frames": ['):
            break
        block.append(line)
    else:
        return None, len(block)
    try:
        text = b''.join(block).decode('utf-8').rstrip().rstrip(',')
        meta = json.loads(text + '\n}')['meta']
    except (ValueError, KeyError, TypeError):  # UnicodeDecodeError too
        return None, len(block) + 1
    return (meta if isinstance(meta, dict) else None), len(block) + 1


def triplets(person: dict) -> np.ndarray:
    """(K, 3) x, y, score of a person record (null values as NaN)."""
    return np.concatenate(
        [np.array(person['keypoints'], np.float64),
         np.array(person['keypoint_scores'], np.float64)[:, None]], axis=1)


def triplets_found(person: dict) -> Tuple[np.ndarray, np.ndarray]:
    """``(points, missing)``: (K, 3) x, y, score of a person record with
    each point the result holds as null written (0, 0, 0), as OpenPose and
    COCO write a point that was not found, and the (K,) bool mask of those
    points."""
    points = triplets(person)
    missing = ~np.isfinite(points).all(axis=1)
    points[missing] = 0.0
    return points, missing


def iter_frame_records(path: Path) -> Iterator[dict]:
    """The frame records of a result file, one at a time (one a line
    after the meta block, as every version of the suite wrote them), so
    that a long video's result is never loaded whole."""
    with open(path, encoding='utf-8') as handle:
        for line in handle:
            if line.startswith('{"frame_index"'):
                yield json.loads(line.rstrip().rstrip(','))


def write_result(handle, meta: dict, frame_lines: Iterable[str]) -> None:
    """Write a result JSON, ``{"meta": ..., "frames": [...], "end":
    {"frame_count": N}}``, with one frame record a line (``record_line``),
    to an open text file. ``end`` comes last, so that a file that holds it
    was written to its end (:func:`why_incomplete`)."""
    handle.write('{\n"meta": ')
    handle.write(json.dumps(meta, indent=2, ensure_ascii=False,
                            allow_nan=False))
    handle.write(',\n"frames": [')
    separator, count = '\n', 0
    for line in frame_lines:
        handle.write(separator + line)
        separator, count = ',\n', count + 1
    handle.write('\n],\n"end": ' + json.dumps({'frame_count': count})
                 + '\n}\n')


#: The last bytes of a complete result: its closing record (``end``), or,
#: from versions before it, the end of its frame list.
_END = re.compile(rb'\r?\n\],\r?\n"end": (\{[^{}\r\n]*\})\s*\}\s*\Z')
_END_BEFORE_CLOSING_RECORD = re.compile(rb'\n\]\s*\}\s*\Z')


def is_result(path: Path) -> bool:
    """A result JSON of this suite, from its first bytes (whole or
    not)."""
    return starts_with(path, RESULT_HEAD)


def starts_with(path: Path, head: bytes) -> bool:
    """Whether the file ``path`` begins with ``head`` (False where it
    cannot be read)."""
    try:
        with open(path, 'rb') as handle:
            return handle.read(len(head)) == head
    except OSError:
        return False


def why_incomplete(path: Path, meta: dict) -> Optional[str]:
    """None when the result ``path`` (whose ``meta`` block reads) was
    written to its end, read from its last bytes only: its closing record
    is there and counts the frames ``meta`` says. Else why not, in words
    (a copy cut short, a disk that filled up)."""
    try:
        with open(path, 'rb') as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - 256))
            tail = handle.read()
    except OSError as exc:
        return f'{path.name} cannot be read ({exc.strerror or exc})'
    found = _END.search(tail)
    if found is None:
        if _END_BEFORE_CLOSING_RECORD.search(tail) and \
                'result_id' not in (meta.get('run') or {}):
            return None  # an earlier version's result, whole
        return f'{path.name} is cut short (its end is missing)'
    try:
        count = json.loads(found.group(1))['frame_count']
    except (ValueError, KeyError, TypeError):
        return f'{path.name} is cut short (its end is damaged)'
    if count != meta.get('frame_count'):
        return (f'the closing record of {path.name} counts {count} '
                f'frame(s) where its meta says {meta.get("frame_count")}')
    return None


#: The meta keys of the frames a result lacks or holds damaged, as the
#: summary's columns count them.
LOSS_KEYS = ('frames_failed', 'frames_unread_at_end', 'frames_damaged')


def frame_losses(meta: dict) -> Dict[str, object]:
    """How many frames of a result's video are lost or damaged, by
    :data:`LOSS_KEYS`: ``frames_failed`` (not decoded, skipped),
    ``frames_unread_at_end`` (none could be read after the last decoded
    one: a file cut short or damaged at its end), ``frames_damaged``
    (decoded with errors FFmpeg concealed). '' where ``meta`` lacks the
    key (results of earlier versions) or, for ``frames_damaged``, is null
    (not checked).

    Raises:
        ValueError: a value of another type (not written by this suite).
    """
    counts: Dict[str, object] = {}
    for key in LOSS_KEYS:
        value = meta.get(key)
        if value is None:
            counts[key] = ''
        elif key == 'frames_unread_at_end' and isinstance(value, int) and \
                not isinstance(value, bool) and value >= 0:
            counts[key] = value
        elif key != 'frames_unread_at_end' and isinstance(value, list):
            counts[key] = len(value)
        else:
            raise ValueError(f'its meta.{key} is not a frame count or list: '
                             f'{str(value)[:40]}')
    return counts


def losses_in_words(meta: dict) -> str:
    """The frames a result lacks or holds damaged, in words ('' for
    none), e.g. "18 of 20 frames unread at end (file cut short or
    damaged)": the reason of its summary row and the warning repeated when
    ``--resume`` keeps it."""
    counts = frame_losses(meta)
    failed, unread, damaged = (counts[key] or 0 for key in LOSS_KEYS)
    written = meta.get('frame_count')
    total = (written if isinstance(written, int) else 0) + failed + unread
    said = []
    if unread:
        said.append(f'{unread} of {total} frames unread at end (file cut '
                    'short or damaged)')
    if failed:
        said.append(f'{failed} of {total} frames could not be decoded')
    if damaged:
        said.append(f'{damaged} of {total} frames damaged (decoded with '
                    'concealed errors)')
    return '; '.join(said)


def repeat_losses(output_file: Path, meta: dict) -> None:
    """Say again, for a result kept up to date, the frames it lacks or
    holds damaged (its run said so once; the kept result still does)."""
    try:
        losses = losses_in_words(meta)
    except ValueError:
        return  # not this suite's numbers: the summary's row says so
    if losses:
        warnings.warn(f'{output_file} (kept, up to date): {losses}',
                      SuiteWarning)
