"""Even sampling for the filters.

A filter's cut-off in Hz means something only on evenly spaced samples.
Frames analysed at a constant rate (a constant-rate video, a step, a
target_fps) are filtered as they are, at that rate. When the intervals
between analysed frames vary by more than :data:`TOLERANCE` of their
median (a phone's variable-frame-rate video, a frame that failed), each
trajectory is resampled linearly on a grid at the median interval, filtered
there, and read back at the frames' own times (linearly): the points keep
their frames, and no point is added where a gap was left.
"""
from typing import Callable, Optional

import numpy as np

from pose_suite.movement.steps import runs

#: Intervals within this fraction of their median count as even.
TOLERANCE = 0.05


def rate_of(times: np.ndarray) -> float:
    """The frames' rate in Hz: of evenly spaced (T,) times, 1 / their mean
    interval (times are kept to the microsecond, so one interval is not
    exact); else 1 / their median interval (0.0 for fewer than 2)."""
    if len(times) < 2:
        return 0.0
    if is_even(times):
        return float((len(times) - 1) / (times[-1] - times[0]))
    return float(1.0 / np.median(np.diff(times)))


def is_even(times: np.ndarray) -> bool:
    """Whether the (T,) times are evenly spaced (see :data:`TOLERANCE`)."""
    if len(times) < 3:
        return True
    steps = np.diff(times)
    median = np.median(steps)
    return bool(np.all(np.abs(steps - median) <= TOLERANCE * median))


def on_even_grid(values: np.ndarray, times: np.ndarray,
                 run: Callable[[np.ndarray], np.ndarray]
                 ) -> np.ndarray:
    """``run`` (a function of (G, C) values evenly spaced on
    :func:`even_grid`) applied to
    ``values`` (T, C) at uneven ``times`` (T,): resampled on the grid,
    run, read back. A grid point between two frames of which one misses a
    value is NaN, so a gap stays a gap."""
    grid = even_grid(times)
    step = float(grid[1] - grid[0])
    on_grid = np.full((len(grid), values.shape[1]), np.nan)
    for c, column in enumerate(values.T):
        on_grid[:, c] = _resample(column, times, grid)
    done = run(on_grid)
    back = np.full_like(values, np.nan)
    for c, column in enumerate(done.T):
        back[:, c] = _resample(column, grid, times, step,
                               np.isfinite(values[:, c]))
    return back


def even_grid(times: np.ndarray) -> np.ndarray:
    """Evenly spaced times from the first of (T,) ``times`` to the last,
    the step as near their median interval as fits a whole number."""
    span = float(times[-1] - times[0])
    count = max(2, int(round(span / float(np.median(np.diff(times))))))
    return times[0] + span * np.arange(count + 1) / count


def _resample(column: np.ndarray, times: np.ndarray, at: np.ndarray,
              slack: float = 0.0,
              keep: Optional[np.ndarray] = None) -> np.ndarray:
    """``column`` (on ``times``) at the times ``at``, linearly, within
    each stretch without NaN, and up to ``slack`` seconds past its ends
    (along the line through its two end values: a frame just past the last
    grid point of a stretch reads it back as it was); ``keep``: where the
    result may have a value."""
    out = np.full(len(at), np.nan)
    for start, stop in runs(np.isfinite(column)):
        inside = (at >= times[start] - slack) & \
            (at <= times[stop - 1] + slack)
        t, v = times[start:stop], column[start:stop]
        out[inside] = np.interp(at[inside], t, v)
        if stop - start >= 2 and slack:
            before = inside & (at < t[0])
            after = inside & (at > t[-1])
            out[before] = v[0] + (at[before] - t[0]) * (v[1] - v[0]) / \
                (t[1] - t[0])
            out[after] = v[-1] + (at[after] - t[-1]) * (v[-1] - v[-2]) / \
                (t[-1] - t[-2])
    if keep is not None:
        out[~keep] = np.nan
    return out
