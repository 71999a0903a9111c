"""The chain, per track: points below ``kpt_thr`` dropped, short gaps
filled, outliers rejected, a zero-phase filter, then angles from the
cleaned points.

:class:`MovementSettings` is the movement keys of the config, checked
once; :func:`clean_track` runs the chain on one
:class:`~pose_suite.movement.series.Track`.
"""
import dataclasses
import hashlib
import json
from typing import Dict, Optional

import numpy as np

from pose_suite.config.movement_kinds import HAMPEL_DEFAULTS
from pose_suite.movement import filters, grid, steps
from pose_suite.movement.series import Track

#: The config keys the movement data depends on (besides ``angles``).
KEYS = ('kpt_thr', 'interp_max_gap', 'interp_kind', 'fill_large_gaps',
        'hampel', 'filter', 'person_height_m', 'floor_angle', 'floor_origin')


@dataclasses.dataclass(frozen=True)
class MovementSettings:
    """The movement keys (see ``creating_config.py --help``)."""

    kpt_thr: float = 0.3
    interp_max_gap: int = 0
    interp_kind: str = 'linear'
    fill_large_gaps: str = 'none'
    hampel: Optional[dict] = None
    filter: dict = dataclasses.field(
        default_factory=lambda: {'type': 'none'})
    person_height_m: float = 0.0
    floor_angle: object = 'auto'
    floor_origin: object = 'auto'
    angles: bool = False

    @classmethod
    def from_config(cls, cfg) -> 'MovementSettings':
        values = {key: getattr(cfg, key) for key in KEYS}
        if values['hampel'] is True:  # Sports2D's defaults
            values['hampel'] = dict(HAMPEL_DEFAULTS)
        values['hampel'] = values['hampel'] or None  # false: off
        return cls(**values, angles=cfg.angles)

    @property
    def cleans(self) -> bool:
        """Whether any step of the chain is on (else the movement data is
        the measured points above ``kpt_thr``)."""
        return bool(self.interp_max_gap or self.hampel or
                    self.filter['type'] != 'none' or
                    self.fill_large_gaps != 'none')

    @property
    def wanted(self) -> bool:
        """Whether the movement data is asked for at all: a step of the
        chain, or metres."""
        return self.cleans or bool(self.person_height_m)

    def as_meta(self) -> dict:
        """JSON of the settings, as the movement file records them."""
        meta = dataclasses.asdict(self)
        if isinstance(meta['floor_origin'], tuple):
            meta['floor_origin'] = list(meta['floor_origin'])
        return meta

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(
            self.as_meta(), sort_keys=True).encode()).hexdigest()


@dataclasses.dataclass
class CleanTrack:
    """A track after the chain: ``points`` (T, K, 2) px, NaN where still
    missing; ``filled``: points the gap filling gave; ``outliers``: points
    Hampel replaced; ``short``: stretches too short to filter; ``rate_hz``
    and ``resampled``: how the filter ran; ``unfiltered``: why the filter
    could not run on this track ('' when it ran)."""

    track: Track
    points: np.ndarray
    filled: int = 0
    outliers: int = 0
    short: int = 0
    rate_hz: float = 0.0
    resampled: bool = False
    unfiltered: str = ''


def clean_track(track: Track, settings: MovementSettings,
                rate_hz: float = 0.0) -> CleanTrack:
    """Run the chain on one track (see the module); ``rate_hz``: the
    result's frame rate, for a track of one frame (which has none)."""
    points = np.where((track.scores >= settings.kpt_thr)[..., None],
                      track.points, np.nan)
    span, count = points.shape[0], points.shape[1]
    values = points.reshape(span, count * 2)
    missing = np.isnan(values).sum()
    times = track.timestamp_s
    rate = grid.rate_of(times) or rate_hz
    out = CleanTrack(track, points, rate_hz=rate)
    if settings.interp_max_gap:
        values = steps.fill_gaps(values, times, settings.interp_max_gap,
                                 settings.interp_kind)
    if settings.fill_large_gaps == 'last_value':
        values = steps.fill_large_gaps(values)
    out.filled = int((missing - np.isnan(values).sum()) // 2)
    if settings.hampel:
        window = steps.hampel_window(settings.hampel['window_frames'], rate)
        before = values
        values = steps.hampel(values, window, settings.hampel['n_sigma'])
        out.outliers = int(np.sum((before != values) & ~np.isnan(before)))
    if settings.filter['type'] != 'none' and span >= 2:
        values = _filtered(values, times, settings.filter, out)
    out.points = values.reshape(span, count, 2)
    return out


def _filtered(values: np.ndarray, times: np.ndarray, spec: Dict,
              out: CleanTrack) -> np.ndarray:
    even = grid.is_even(times)
    rate = out.rate_hz if even else float(
        1.0 / np.diff(grid.even_grid(times)[:2])[0])
    out.unfiltered = filters.check_rate(spec, rate)
    if out.unfiltered:  # this track's frames come too slowly for it
        return values
    if even:
        result = filters.zero_phase(values, out.rate_hz, spec)
        out.short = result.short
        return result.values
    out.resampled, out.rate_hz = True, rate
    shorts = []

    def run(on_grid):
        result = filters.zero_phase(on_grid, out.rate_hz, spec)
        shorts.append(result.short)
        return result.values
    values = grid.on_even_grid(values, times, run)
    out.short = shorts[0]
    return values
