"""From a finished result to its movement folder, without the models.

:func:`derive` reads the result's tracks, runs the chain on each
(:mod:`.chain`), computes the angles from the cleaned points and, with a
height, the metres (:mod:`.metres`), and publishes the folder
(:mod:`pose_suite.outputs.movement_files`). :func:`is_current` says whether the folder beside a
result was made from this very result with these settings and formats, so
that a second run rewrites nothing.
"""
import dataclasses
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from pose_suite.errors import MovementError, one_line
from pose_suite.movement import filters, grid, opensim_files
from pose_suite.movement.chain import (CleanTrack, MovementSettings,
                                       clean_track)
from pose_suite.movement.scale import Scale, scale_from
from pose_suite.movement.series import read_trajectories
from pose_suite.outputs.movement_files import (made_from, movement_folder,
                                               publish_folder,
                                               read_movement_meta,
                                               write_angles_csv,
                                               write_movement_json)
from pose_suite.outputs.angles import AngleComputer
from pose_suite.outputs.results import (ANGLE_DECIMALS, PIXEL_DECIMALS,
                                        why_incomplete)

#: Metres are kept to the micrometre (the pixels to 0.001 px, the angles
#: to 1e-6 degrees: :mod:`pose_suite.outputs.results`).
METRE_DECIMALS = 6
#: The export formats the movement folder holds.
FORMATS = ('trc', 'mot')


def wanted(settings: MovementSettings, formats: Sequence[str],
           meta: Optional[dict] = None) -> bool:
    """Whether a result (whose ``meta`` is given, when known) gets a
    movement folder: asked for by the settings or formats, and never for
    an image."""
    if meta is not None and meta.get('kind') == 'image':
        return False
    return settings.wanted or any(f in FORMATS for f in formats)


def _formats(formats: Sequence[str]) -> List[str]:
    return [f for f in FORMATS if f in formats]


def is_current(native_path: Path, meta: dict, settings: MovementSettings,
               formats: Sequence[str]) -> bool:
    """Whether the movement folder beside ``native_path`` was made from
    this result (``meta``) with ``settings`` and ``formats``."""
    found = read_movement_meta(movement_folder(native_path))
    return found is not None and \
        found.get('made_from') == made_from(native_path, meta) and \
        found.get('settings_sha256') == settings.sha256() and \
        found.get('formats') == _formats(formats)


@dataclasses.dataclass
class Derived:
    """What :func:`derive` wrote: the folder, and the warnings to say."""

    folder: Path
    warnings: List[str]


def derive(native_path: Path, meta: dict, settings: MovementSettings,
           formats: Sequence[str]) -> Derived:
    """Write the movement folder of the finished result ``native_path``.

    Raises:
        MovementError: nothing could be made (a result cut short or
            untracked, a filter the frame rate cannot take); the result and
            any earlier folder are untouched.
    """
    native_path = Path(native_path)
    why = why_incomplete(native_path, meta)
    if why:
        raise MovementError(f'{native_path}: {why}; analyse it again (or '
                            'with --resume) before post-processing')
    if meta.get('kind') == 'image' or not meta.get('tracking'):
        raise MovementError(
            f'{native_path} has no tracks (an image, or a video analysed '
            'without tracking): movement data follows tracked persons; '
            'analyse the video with "tracking": true')
    names = meta['keypoint_names']
    found = _read(native_path, names)
    # A result of one frame has no rate of its own: its video's.
    rate = grid.rate_of(found.timestamp_s) or float(meta.get('fps') or 1.0)
    problem = filters.check_rate(settings.filter, rate)
    if problem:
        raise MovementError(f'{native_path}: {problem}')
    cleaned = [clean_track(track, settings, rate) for track in found.tracks]
    warnings = _warnings(native_path, cleaned, settings)
    angles = AngleComputer(names, 0.0) if settings.angles else None
    scale = None
    if settings.person_height_m and cleaned:
        try:
            scale = scale_from(cleaned, names, settings, meta)
        except MovementError as exc:  # the pixels are still worth having
            warnings.append(f'{native_path.name}: no metres: {exc}')
    if scale is not None and scale.fallback:
        warnings.append(f'{native_path.name}: {scale.fallback}')
    tracks = [_track_out(track, angles, scale, names) for track in cleaned]
    movement = {
        'made_from': made_from(native_path, meta),
        'settings': settings.as_meta(),
        'settings_sha256': settings.sha256(),
        'formats': _formats(formats),
        'keypoint_names': names,
        **({'angles': angles.names} if angles else {}),
        'metres': scale.as_meta() if scale else None,
        'tracks': [_track_meta(track) for track in cleaned]}

    def write(folder: Path) -> None:
        write_movement_json(folder / 'movement.json', movement, tracks)
        if angles:
            write_angles_csv(folder / 'angles.csv', tracks, angles.names)
        if 'trc' in formats:
            _write_trc(folder, tracks, names, rate, movement_folder(
                native_path))
        if 'mot' in formats and angles:
            for track in tracks:
                opensim_files.write_mot(
                    folder / f'track{track["track_id"]}_angles.mot',
                    track['timestamp_s'], angles.names,
                    np.stack([track['angles'][n] for n in angles.names], 1))
    folder = movement_folder(native_path)
    try:
        publish_folder(folder, write)
    except OSError as exc:
        raise MovementError(f'cannot write {folder}: {exc}') from None
    return Derived(folder, warnings)


def _read(native_path: Path, names: Sequence[str]):
    """The result's tracks; a result edited so that they cannot be read
    (a point or time missing, frames out of order) is refused."""
    try:
        found = read_trajectories(native_path, len(names))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise MovementError(f'{native_path}: its frames cannot be read as '
                            f'tracks ({one_line(exc)})') from None
    times = found.timestamp_s
    if not np.isfinite(times).all() or (np.diff(times) <= 0).any():
        raise MovementError(f'{native_path}: its frames\' timestamp_s do '
                            'not increase: not a result as the suite '
                            'writes them')
    return found


def _track_out(clean: CleanTrack, angles: Optional[AngleComputer],
               scale: Optional[Scale], names: Sequence[str]) -> dict:
    track = clean.track
    # As written (0.001 px), so that angles and metres computed again from
    # the file are these.
    points = np.round(clean.points, PIXEL_DECIMALS)
    out = {'track_id': track.track_id, 'frame_index': track.frame_index,
           'timestamp_s': track.timestamp_s, 'keypoints': points}
    if angles is not None:
        table = np.round(angles.compute(points, np.ones(points.shape[:2])),
                         ANGLE_DECIMALS)
        out['angles'] = {name: table[:, i]
                         for i, name in enumerate(angles.names)}
    if scale is not None:  # to the micrometre, as written
        out['keypoints_m'] = np.round(scale.to_metres(points), METRE_DECIMALS)
    return out


def _track_meta(clean: CleanTrack) -> dict:
    return {'track_id': clean.track.track_id,
            'frames': int(len(clean.track.frame_index)),
            'points_filled': clean.filled, 'outliers_replaced': clean.outliers,
            'stretches_too_short_to_filter': clean.short,
            'filter_rate_hz': round(clean.rate_hz, 6),
            'resampled': clean.resampled,
            **({'unfiltered': clean.unfiltered} if clean.unfiltered else {})}


def _warnings(native_path: Path, cleaned: List[CleanTrack],
              settings: MovementSettings) -> List[str]:
    said = []
    short = sum(track.short for track in cleaned)
    if short:
        said.append(
            f'{native_path.name}: {short} stretches of trajectories were too '
            f'short for the {settings.filter["type"]} filter (at least '
            f'{filters.min_length(settings.filter)} points) and were left '
            'unfiltered, as Pose2Sim leaves them')
    slow = [track for track in cleaned if track.unfiltered]
    if slow:
        said.append(
            f'{native_path.name}: track(s) '
            f'{", ".join(str(t.track.track_id) for t in slow[:5])}'
            f'{", ..." if len(slow) > 5 else ""} left unfiltered: their '
            f'frames come too slowly ({slow[0].unfiltered})')
    return said


def _write_trc(folder: Path, tracks: List[dict], names: Sequence[str],
               rate: float, published: Path) -> None:
    """The .trc files of each track in ``folder``, naming their place
    once ``folder`` is published as ``published``."""
    markers = opensim_files.marker_names(names)
    columns = list(markers)
    for track in tracks:
        for key, units in (('keypoints', 'px'), ('keypoints_m', 'm')):
            if key not in track:
                continue
            xy = track[key][:, columns]
            xyz = np.concatenate([xy, np.zeros(xy.shape[:2] + (1,))], 2)
            name = f'track{track["track_id"]}_{units}.trc'
            opensim_files.write_trc(
                folder / name, track['timestamp_s'], xyz,
                list(markers.values()), rate, units,
                shown_path=published / name)
