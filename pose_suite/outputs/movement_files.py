"""The movement folder beside a result: ``<result name>.movement/`` (for
``clip.mp4.json``, ``clip.mp4.movement/``), remade whole whenever the
result or the movement settings change, never touching the result.

* ``movement.json``: ``{"movement": meta, "tracks": [...]}``; ``meta``
  names the result it was made from (``made_from``: its name and
  ``meta.run.result_id``), the settings (``settings``), the frame rate the
  filter ran at, the metres' scale and floor, and per track what each step
  did; each track holds ``track_id``, ``frame_index``, ``timestamp_s``,
  ``keypoints`` ((T, K, 2) px, null where missing), ``angles`` (name ->
  (T,) degrees) with ``angles``, and ``keypoints_m`` ((T, K, 2) metres:
  x forwards along the floor, y up) with ``person_height_m``.
* ``angles.csv`` (with ``angles``): one row per track and frame.
* ``track<ID>_px.trc``, ``track<ID>_m.trc`` (format ``trc``) and
  ``track<ID>_angles.mot`` (format ``mot``), as Sports2D writes them.

The folder is written whole into a hidden folder beside it, then renamed
over the old one: a reader never finds half of one.
"""
import csv
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from pose_suite.outputs.number_text import table_text
from pose_suite.outputs.publish import spreadsheet_cell

FOLDER_SUFFIX = '.movement'
HEAD = '{"movement": '


def movement_folder(native_path: Path) -> Path:
    """Where the movement data of the result ``native_path`` goes."""
    native_path = Path(native_path)
    return native_path.with_name(native_path.name[:-len('.json')]
                                 + FOLDER_SUFFIX)


def read_movement_meta(folder: Path) -> Optional[dict]:
    """The ``movement`` meta of a movement folder (None: none there, or
    not the suite's)."""
    try:
        with open(Path(folder) / 'movement.json', encoding='utf-8') as handle:
            head = handle.readline()
        if not head.startswith(HEAD):
            return None
        return json.loads(head[len(HEAD):].rstrip().rstrip(','))
    except (OSError, ValueError):
        return None


def publish_folder(folder: Path, write) -> None:
    """Call ``write(tmp)`` to fill a new hidden folder, then put it in
    place of ``folder`` (removed first when it is a movement folder of the
    suite; anything else there is refused: OSError)."""
    folder = Path(folder)
    temporary = folder.with_name(f'.{folder.name}.{secrets.token_hex(4)}')
    temporary.mkdir()
    try:
        write(temporary)
        if folder.is_symlink() or (folder.exists() and
                                   read_movement_meta(folder) is None):
            raise OSError(f'{folder} is in the way and is not a movement '
                          'folder the suite wrote: move it away')
        old = None
        if folder.exists():
            old = folder.with_name(f'.{folder.name}.old.'
                                   f'{secrets.token_hex(4)}')
            os.replace(folder, old)
        os.replace(temporary, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def json_array(values: np.ndarray, decimals: int) -> Iterator[str]:
    """(T,) or (T, K, 2) floats as a JSON array, rounded, NaN as null, in
    pieces: the same text as ``json.dumps``, a (T, K, 2) array a chunk of
    frames at a time (:func:`~pose_suite.outputs.number_text.table_text`)."""
    values = np.round(np.asarray(values, np.float64), decimals)
    if values.ndim != 3 or not values.size:
        yield json.dumps(values.tolist()).replace('NaN', 'null')
        return
    frame = '[' + ', '.join(['[%r, %r]'] * values.shape[1]) + ']'
    yield '['
    separator = ''
    for text in table_text(values.reshape(len(values), -1),
                           ', ' + frame, 'null'):
        yield separator + text[2:]  # the first frame has no ', '
        separator = ', '
    yield ']'


def write_movement_json(path: Path, meta: dict, tracks: List[dict]) -> None:
    """``movement.json``: the meta on the first line, then one track a
    line, streamed. ``tracks``: dicts of numpy arrays (see the module)."""
    with open(path, 'w', encoding='utf-8') as out:
        out.write(HEAD + json.dumps(meta, allow_nan=False) + ',\n')
        out.write('"tracks": [')
        for number, track in enumerate(tracks):
            out.write(',\n{' if number else '\n{')
            out.write(f'"track_id": {int(track["track_id"])}, '
                      '"frame_index": '
                      f'{json.dumps(track["frame_index"].tolist())}, '
                      '"timestamp_s": ')
            out.writelines(json_array(track['timestamp_s'], 6))
            out.write(', "keypoints": ')
            out.writelines(json_array(track['keypoints'], 3))
            if 'angles' in track:
                out.write(', "angles": {' + ', '.join(
                    f'{json.dumps(name)}: {"".join(json_array(values, 6))}'
                    for name, values in track['angles'].items()) + '}')
            if 'keypoints_m' in track:
                out.write(', "keypoints_m": ')
                out.writelines(json_array(track['keypoints_m'], 6))
            out.write('}')
        out.write('\n]}\n')


def write_angles_csv(path: Path, tracks: List[dict],
                     names: Sequence[str]) -> None:
    """One row per track and frame: frame_index, timestamp_s, track_id,
    then each angle in degrees (empty: missing)."""
    with open(path, 'w', encoding='utf-8', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(['frame_index', 'timestamp_s', 'track_id',
                         *[spreadsheet_cell(n) for n in names]])
        for track in tracks:
            table = np.stack([track['angles'][n] for n in names], 1)
            for frame, time, row in zip(track['frame_index'],
                                        track['timestamp_s'], table):
                writer.writerow([int(frame), round(float(time), 6),
                                 track['track_id'],
                                 *['' if not np.isfinite(v) else
                                   round(float(v), 6) for v in row]])


def made_from(native_path: Path, meta: dict) -> Dict[str, str]:
    """What a movement folder records of the result it was made from."""
    return {'result': Path(native_path).name,
            'result_id': str((meta.get('run') or {}).get('result_id', ''))}


def movement_angles(native_path: Path, meta: dict
                    ) -> Optional[Dict[int, Dict[str, list]]]:
    """track_id -> angle name -> [(seconds, degrees or NaN), ...] of the
    movement folder beside the result ``native_path`` (its ``meta``):
    the angles of the cleaned points; None when there is no such folder
    made from this very result, or it has no angles."""
    folder = movement_folder(native_path)
    found = read_movement_meta(folder)
    if not found or found.get('made_from') != made_from(native_path, meta) \
            or not found.get('angles'):
        return None
    try:
        data = json.loads((folder / 'movement.json').read_text('utf-8'))
        return {track['track_id']: {
            name: [(t, float('nan') if v is None else v)
                   for t, v in zip(track['timestamp_s'], values)]
            for name, values in track['angles'].items()}
            for track in data['tracks']}
    except (OSError, ValueError, KeyError, TypeError):
        return None

