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

from pose_suite.errors import MovementError
from pose_suite.movement import filters, grid, opensim_files
from pose_suite.movement.chain import (CleanTrack, MovementSettings,
                                       clean_track)
from pose_suite.movement.scale import Scale, scale_from
from pose_suite.outputs.movement_files import (made_from, movement_folder,
                                         publish_folder, read_movement_meta,
                                         write_angles_csv,
                                         write_movement_json)
from pose_suite.movement.series import read_trajectories
from pose_suite.outputs.angles import AngleComputer
from pose_suite.outputs.results import (ANGLE_DECIMALS, PIXEL_DECIMALS,
                                        why_incomplete)

#: Metres are kept to the micrometre (the pixels to 0.001 px, the angles
#: to 1e-6 degrees: :mod:`pose_suite.outputs.results`).
METRE_DECIMALS = 6
#: The export formats the movement folder holds.
FORMATS = ('trc', 'mot')


def wanted(settings: MovementSettings, formats: Sequence[str]) -> bool:
    """Whether a result gets a movement folder."""
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
    found = read_trajectories(native_path, len(names))
    rate = grid.rate_of(found.timestamp_s)
    problem = filters.check_rate(settings.filter, rate) if rate else ''
    if problem:
        raise MovementError(f'{native_path}: {problem}')
    cleaned = [clean_track(track, settings) for track in found.tracks]
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
            _write_trc(folder, tracks, names, rate, scale)
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
            'resampled': clean.resampled}


def _warnings(native_path: Path, cleaned: List[CleanTrack],
              settings: MovementSettings) -> List[str]:
    short = sum(track.short for track in cleaned)
    if not short:
        return []
    return [f'{native_path.name}: {short} stretches of trajectories were too '
            f'short for the {settings.filter["type"]} filter (at least '
            f'{filters.min_length(settings.filter)} points) and were left '
            'unfiltered, as Pose2Sim leaves them']


def _write_trc(folder: Path, tracks: List[dict], names: Sequence[str],
               rate: float, scale: Optional['Scale']) -> None:
    markers = opensim_files.marker_names(names)
    columns = list(markers)
    for track in tracks:
        for key, units in (('keypoints', 'px'), ('keypoints_m', 'm')):
            if key not in track:
                continue
            xy = track[key][:, columns]
            xyz = np.concatenate([xy, np.zeros(xy.shape[:2] + (1,))], 2)
            opensim_files.write_trc(
                folder / f'track{track["track_id"]}_{units}.trc',
                track['timestamp_s'], xyz, list(markers.values()), rate,
                units)
