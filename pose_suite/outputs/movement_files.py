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
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from pose_suite.errors import OutputError
from pose_suite.outputs.number_text import table_text
from pose_suite.outputs.publish import spreadsheet_cell

FOLDER_SUFFIX = '.movement'
HEAD = '{"movement": '


#: The files the suite writes in a movement folder.
OWN_NAMES = re.compile(r'movement\.json|angles\.csv|track-?\d+_(px\.trc|'
                       r'm\.trc|angles\.mot)')
#: Folders a killed publication left beside it (removed when this old).
STALE_AFTER_S = 3600


def movement_folder(native_path: Path) -> Path:
    """Where the movement data of the result ``native_path`` goes:
    ``clip.mp4.json`` -> ``clip.mp4.movement``; a result not named
    ``.json`` gets the suffix added (``r.bak`` -> ``r.bak.movement``)."""
    native_path = Path(native_path)
    name = native_path.name
    if name.lower().endswith('.json') and len(name) > 5:
        name = name[:-len('.json')]
    return native_path.with_name(name + FOLDER_SUFFIX)


def foreign_entries(folder: Path) -> List[str]:
    """The entries of a movement folder that the suite did not write."""
    try:
        return sorted(entry.name for entry in Path(folder).iterdir()
                      if not (OWN_NAMES.fullmatch(entry.name)
                              and entry.is_file()
                              and not entry.is_symlink()))
    except OSError:
        return []


def check_movement_folder(native_path: Path) -> None:
    """Refuse, before any work, a movement folder's place taken by
    something the suite would not replace: not a movement folder of the
    suite, or one holding other files (OpenSim's, the user's).

    Raises:
        OutputError: naming it and what is in the way.
    """
    folder = movement_folder(native_path)
    if not os.path.lexists(folder):
        return
    if folder.is_symlink() or not folder.is_dir() or \
            read_movement_meta(folder) is None:
        raise OutputError(f'{folder} is in the way of the movement data and '
                          'is not a movement folder this suite wrote: move it '
                          '(nothing was analysed)')
    foreign = foreign_entries(folder)
    if foreign:
        raise OutputError(
            f'{folder} holds files this suite did not write '
            f'({", ".join(foreign[:3])}); the movement data would replace '
            'them: move them out (nothing was analysed)')


def in_movement_folder(path: Path) -> bool:
    """Whether ``path`` is a file the suite wrote in a movement folder
    (the input search leaves it out)."""
    path = Path(path)
    return path.parent.name.endswith(FOLDER_SUFFIX) and \
        bool(OWN_NAMES.fullmatch(path.name)) and \
        read_movement_meta(path.parent) is not None


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
    _remove_left_behind(folder)
    temporary = folder.with_name(f'.{folder.name}.{secrets.token_hex(4)}')
    temporary.mkdir()
    try:
        write(temporary)
        if folder.is_symlink() or (os.path.lexists(folder) and
                                   read_movement_meta(folder) is None):
            raise OSError(f'{folder} is in the way and is not a movement '
                          'folder the suite wrote: move it away')
        foreign = foreign_entries(folder)
        if foreign:
            raise OSError(f'{folder} holds files this suite did not write '
                          f'({", ".join(foreign[:3])}): move them out')
        old = None
        if folder.exists():
            old = folder.with_name(f'.{folder.name}.old.'
                                   f'{secrets.token_hex(4)}')
            os.replace(folder, old)
        os.replace(temporary, folder)
        if old is not None:  # published; what stays is swept later
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def remove_stale(native_path: Path, meta: dict) -> bool:
    """Remove the movement folder beside the result ``native_path`` when
    it was made from another result than this one (``meta``) and holds
    only the suite's files; True when removed."""
    folder = movement_folder(native_path)
    found = read_movement_meta(folder)
    if found is None or folder.is_symlink() or foreign_entries(folder) or \
            found.get('made_from') == made_from(native_path, meta):
        return False
    shutil.rmtree(folder)
    return True


def _remove_left_behind(folder: Path) -> None:
    """Remove the hidden folders that publications of ``folder`` killed
    before their end left beside it, once :data:`STALE_AFTER_S` old (a
    younger one may be another run's, still writing)."""
    pattern = re.compile(re.escape(f'.{folder.name}.') +
                         r'(old\.)?[0-9a-f]{8}')
    try:
        entries = list(folder.parent.iterdir())
    except OSError:
        return
    now = time.time()
    for entry in entries:
        try:
            if pattern.fullmatch(entry.name) and entry.is_dir() and \
                    not entry.is_symlink() and \
                    now - entry.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


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
            for frame, seconds, row in zip(track['frame_index'],
                                           track['timestamp_s'], table):
                writer.writerow([int(frame), round(float(seconds), 6),
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
    the angles of the cleaned points, from its ``angles.csv`` (a row at a
    time); None when there is no such folder made from this very result,
    or it has no angles."""
    folder = movement_folder(native_path)
    found = read_movement_meta(folder)
    if not found or found.get('made_from') != made_from(native_path, meta) \
            or not found.get('angles'):
        return None
    tracks: Dict[int, Dict[str, list]] = {}
    try:
        with open(folder / 'angles.csv', encoding='utf-8', newline='') as f:
            rows = csv.reader(f)
            names = next(rows)[3:]
            for row in rows:
                series = tracks.setdefault(int(row[2]), {n: [] for n in names})
                seconds = float(row[1])
                for name, text in zip(names, row[3:]):
                    series[name].append(
                        (seconds, float(text) if text else float('nan')))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return tracks
