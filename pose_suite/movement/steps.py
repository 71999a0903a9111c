"""The chain's first steps, on (T, C) arrays: C trajectories (a track's x
and y of every point) over T analysed frames, NaN where missing.

* :func:`fill_gaps`: Pose2Sim's ``interpolate_zeros_nans`` on the true
  timestamps: gaps of at most ``max_gap`` frames are interpolated with
  scipy's ``interp1d`` (``kind``), longer ones stay NaN; nothing is
  extrapolated before the first or after the last point; a trajectory with
  4 points or fewer is left as it is (Pose2Sim's rule).
* :func:`fill_large_gaps`: Sports2D's ``fill_large_gaps_with:
  last_value``: what is still missing takes the last value seen (the first
  one before it).
* :func:`hampel`: Pose2Sim's ``hampel_filter``: a point further than
  ``n_sigma`` robust deviations (0.6745 × |x − median| / MAD) from the
  median of the ``window`` centred on it becomes that median; the first and
  last ``window // 2`` points and windows with a missing point or a MAD of
  0 are left as they are.
"""
import numpy as np
from scipy import interpolate


def fill_gaps(values: np.ndarray, times: np.ndarray, max_gap: int,
              kind: str = 'linear') -> np.ndarray:
    """Interpolate the gaps of at most ``max_gap`` frames.

    Args:
        values: (T, C) in any unit, NaN where missing.
        times: (T,) seconds, increasing.
    Returns:
        (T, C) a new array.
    """
    out = np.array(values, np.float64)
    for column in range(out.shape[1]):
        out[:, column] = _fill_column(out[:, column], times, max_gap, kind)
    return out


def _fill_column(column: np.ndarray, times: np.ndarray, max_gap: int,
                 kind: str) -> np.ndarray:
    good = np.isfinite(column)
    missing = ~good
    if good.sum() <= 4 or not missing.any():
        return column
    at = interpolate.interp1d(times[good], column[good], kind=kind,
                              bounds_error=False)
    filled = np.where(good, column, at(times))
    for start, stop in runs(missing):
        if stop - start > max_gap:
            filled[start:stop] = np.nan
    return filled


def runs(mask: np.ndarray) -> np.ndarray:
    """(R, 2) ``[start, stop)`` of each run of True in the (T,) ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(edges == 1),
                     np.flatnonzero(edges == -1)], 1)


def fill_large_gaps(values: np.ndarray) -> np.ndarray:
    """(T, C) -> (T, C): each NaN takes the last value before it (the
    first value after it at the start); a column with no value stays
    NaN."""
    out = np.array(values, np.float64)
    for column in out.T:
        good = np.flatnonzero(np.isfinite(column))
        if len(good) == 0:
            continue
        last = np.maximum.accumulate(
            np.where(np.isfinite(column), np.arange(len(column)), -1))
        column[:] = column[np.where(last < 0, good[0], last)]
    return out


def hampel(values: np.ndarray, window: int, n_sigma: float) -> np.ndarray:
    """Replace outliers by their window's median (see the module).

    Args:
        values: (T, C), NaN where missing.
        window: frames in the window (an even number counts as the odd
            number above it, as Pose2Sim's ``half_window = window // 2``).
    Returns:
        (T, C) a new array.
    """
    out = np.array(values, np.float64)
    half = window // 2
    if len(out) <= 2 * half:
        return out
    for first in range(0, out.shape[1], _COLUMNS_AT_ONCE):
        _hampel_block(out[:, first:first + _COLUMNS_AT_ONCE], half, n_sigma)
    return out


#: Columns Hampel takes at once: its (T, columns, window) temporaries stay
#: small (a 100,000-frame track's 266 columns at once would need GBs).
_COLUMNS_AT_ONCE = 32


def _hampel_block(block: np.ndarray, half: int, n_sigma: float) -> None:
    """Hampel on the (T, c) ``block`` (a view), in place."""
    windows = np.lib.stride_tricks.sliding_window_view(
        block, 2 * half + 1, axis=0)  # (T - 2h, c, 2h + 1)
    centre = block[half:len(block) - half]
    # A window with a missing point has no median (NaN in Pose2Sim's
    # np.median): its centre stays. The median of the others: the middle
    # of the partly sorted window (np.median's own value, faster).
    missing = np.isnan(windows)
    whole = ~missing.any(axis=-1)
    filled = np.where(missing, 0.0, windows)
    median = np.partition(filled, half, axis=-1)[..., half]
    deviation = np.abs(filled - median[..., None])
    mad = np.partition(deviation, half, axis=-1)[..., half]
    with np.errstate(divide='ignore', invalid='ignore'):
        score = np.abs(0.6745 * (centre - median) / mad)
    outlier = whole & (mad != 0) & (score > n_sigma)
    centre[outlier] = median[outlier]  # a view: writes into the block


def hampel_window(window, rate_hz: float) -> int:
    """The window in frames: ``window`` or, for ``'auto'``, Sports2D's
    ``round(7 * rate / 30)`` (at least 3)."""
    if window == 'auto':
        return max(3, int(round(7 * rate_hz / 30)))
    return int(window)
