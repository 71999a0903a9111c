"""The metres of a result: one scale and one floor for all its tracks.

As Sports2D does with its first person, the scale (``person_height_m`` /
the person's height in pixels) and the floor come from one track, here the
one with the most points (the person seen longest; the next one when its
height cannot be measured), and hold for every track: they share the camera and the floor. ``person_height_m`` is that
person's height. :mod:`.metres` has the arithmetic and what a single
camera cannot give.
"""
import dataclasses
from typing import List, Optional, Sequence

import numpy as np

from pose_suite.errors import MovementError
from pose_suite.movement import metres
from pose_suite.movement.chain import CleanTrack, MovementSettings

#: Sports2D's ``average_likelihood_threshold`` default: a toe scored above
#: it counts for the floor.
FLOOR_SCORE = 0.5


@dataclasses.dataclass
class Scale:
    """Pixels -> metres for a result (:func:`scale_from`)."""

    track_id: int
    height_m: float
    height_px: float
    floor: metres.Floor

    @property
    def fallback(self) -> str:
        return self.floor.fallback or ''

    def to_metres(self, points: np.ndarray) -> np.ndarray:
        """(T, K, 2) px -> (T, K, 2) m: x forwards along the floor, y up."""
        x, y = metres.to_metres(points[..., 0], points[..., 1],
                                self.height_m, self.height_px,
                                self.floor.origin, self.floor.angle_rad)
        return np.stack([x, y], -1)

    def as_meta(self) -> dict:
        return {'from_track': self.track_id, 'person_height_m': self.height_m,
                'person_height_px': round(self.height_px, 6),
                'floor_angle_deg': round(float(np.degrees(
                    self.floor.angle_rad)), 6),
                'floor_origin_px': [round(float(v), 6)
                                    for v in self.floor.origin],
                'floor_estimated': self.floor.fallback is None}


def _by_sports2d_name(values: np.ndarray, names: Sequence[str]) -> dict:
    return {short: values[:, list(names).index(ours)]
            for short, ours in metres.POINTS.items() if ours in names}


def scale_from(cleaned: List[CleanTrack], names: Sequence[str],
               settings: MovementSettings, meta: dict) -> Scale:
    """The scale and floor of a result's cleaned tracks (see the module).

    Raises:
        MovementError: the person's height cannot be measured (a point it
            needs is never seen).
    """
    ranked = sorted(cleaned, key=lambda c: -int(np.isfinite(c.points).sum()))
    for best in ranked:  # the first whose height can be measured
        points = _by_sports2d_name(best.points, names)
        try:
            height = metres.height_px(points)
        except (ValueError, KeyError):
            continue
        if np.isfinite(height) and height > 0:
            break
    else:
        raise MovementError(
            'no track\'s height in pixels can be measured (heels, ankles, '
            'knees, hips, shoulders and nose must be seen in some frames)')
    scores = best.track.scores
    kept = np.where(scores >= settings.kpt_thr, scores, np.nan)
    floor = metres.floor(
        points, _by_sports2d_name(kept, names), best.rate_hz, height,
        settings.person_height_m, FLOOR_SCORE,
        (int(meta.get('width') or 0), int(meta.get('height') or 0)),
        floor_angle_deg=_given(settings.floor_angle),
        origin_px=_given(settings.floor_origin))
    if floor.fallback and 'auto' in (settings.floor_angle,
                                     settings.floor_origin):
        floor = floor._replace(fallback=(
            f'{floor.fallback}: floor angle 0 and origin the image centre, as '
            'Sports2D; give floor_angle and floor_origin for true metres'))
    elif floor.fallback:  # both given: nothing fell back
        floor = floor._replace(fallback=None)
    return Scale(best.track.track_id, settings.person_height_m, height,
                 floor)


def _given(value) -> Optional[object]:
    return None if value == 'auto' else value
