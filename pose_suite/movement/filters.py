"""Zero-phase filters of trajectories, each Pose2Sim's own definition
(``Pose2Sim.filtering``), run on every stretch of a trajectory without a
missing point.

A stretch too short for a filter is left as it is, as Pose2Sim leaves it,
and counted (:class:`Filtered`): Butterworth needs more than
``3 × (order / 2 + 1)`` points (scipy's ``filtfilt`` padding), LOESS more
than ``nb_values``, Kalman and One-Euro 2. Gaussian and median filters,
which Pose2Sim runs over the whole column (a NaN spreads over the kernel),
run here on each stretch, so that a gap spreads into nothing: Gaussian
with scipy's own edges (``reflect``); median with the end values repeated
(``scipy.ndimage.median_filter``, ``nearest``), where Pose2Sim's
``signal.medfilt`` pads with zeros and so pulls the first and last
``kernel_frames // 2`` points of a stretch towards 0 px (a point alone
between two gaps becomes 0): elsewhere the two are equal.

The stretches of one length (x and y of a point, every point seen in
every frame, the many short stretches between missing points) are
filtered together, the columns of one block.

The samples must be evenly spaced: :mod:`.grid` resamples a variable
frame rate first.
"""
import dataclasses
from typing import Callable, Dict, List, Tuple

import numpy as np
from scipy import signal
from scipy.ndimage import gaussian_filter1d, median_filter

from pose_suite.movement import smoothers
from pose_suite.movement.steps import runs


@dataclasses.dataclass
class Filtered:
    """A filter's output (T, C) and the stretches it left as they were
    (``short``: too short; ``stretches``: all of them)."""

    values: np.ndarray
    stretches: int = 0
    short: int = 0


def min_length(spec: Dict) -> int:
    """The fewest points of a stretch the filter ``spec`` changes."""
    kind = spec['type']
    if kind == 'butterworth':
        return 3 * (spec['order'] // 2 + 1) + 1
    if kind == 'loess':
        return spec['nb_values'] + 1
    return 2 if kind in ('kalman', 'one_euro') else 1


def check_rate(spec: Dict, rate_hz: float) -> str:
    """'' when ``spec`` can run on frames ``rate_hz`` apart, else why not
    (one line): a Butterworth cut-off at or above half the rate."""
    if spec['type'] == 'butterworth' and spec['cutoff_hz'] >= rate_hz / 2:
        return (f'the filter\'s cutoff_hz {spec["cutoff_hz"]:g} Hz is at or '
                f'above half the frame rate ({rate_hz / 2:g} Hz): lower it')
    return ''


def zero_phase(values: np.ndarray, rate_hz: float, spec: Dict) -> Filtered:
    """Filter each column of ``values`` (T, C), evenly spaced at
    ``rate_hz``, with ``spec`` (the ``filter`` key: ``{"type": ...,
    parameters}``) on each stretch without NaN."""
    out = np.array(values, np.float64)
    if spec['type'] == 'none':
        return Filtered(out)
    run = _RUNNERS[spec['type']](spec, rate_hz)
    shortest = min_length(spec)
    result = Filtered(out)
    for length, (starts, columns) in _stretches(out).items():
        result.stretches += len(columns)
        if length < shortest:
            result.short += len(columns)
            continue
        rows = starts[None, :] + np.arange(length)[:, None]  # (L, n)
        out[rows, columns] = run(out[rows, columns])
    return result


def _stretches(values: np.ndarray
               ) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
    """``length -> (starts, columns)`` of every stretch without NaN of
    the (T, C) ``values``: the stretches of one length are filtered
    together, as the columns of one (length, n) block."""
    found: Dict[int, Tuple[List[int], List[int]]] = {}
    for column in range(values.shape[1]):
        for start, stop in runs(np.isfinite(values[:, column])):
            starts, columns = found.setdefault(int(stop - start), ([], []))
            starts.append(int(start))
            columns.append(column)
    return {length: (np.array(starts), np.array(columns))
            for length, (starts, columns) in found.items()}


# Each runner filters a (n, k) block of k stretches of n points, along
# axis 0.
def _butterworth(spec, rate_hz) -> Callable:
    b, a = signal.butter(spec['order'] / 2, spec['cutoff_hz'] / (rate_hz / 2),
                         'low', analog=False)
    return lambda x: signal.filtfilt(b, a, x, axis=0)


def _gaussian(spec, rate_hz) -> Callable:
    return lambda x: gaussian_filter1d(x, spec['sigma_frames'], axis=0)


def _median(spec, rate_hz) -> Callable:
    return lambda x: median_filter(x, size=(spec['kernel_frames'], 1),
                                   mode='nearest')


def _loess(spec, rate_hz) -> Callable:
    return lambda x: smoothers.loess(x, spec['nb_values'])


def _kalman(spec, rate_hz) -> Callable:
    return lambda x: smoothers.kalman(x, rate_hz, spec['trust_ratio'],
                                      spec['smooth'])


def _one_euro(spec, rate_hz) -> Callable:
    def run(x):
        forward = one_euro(x, rate_hz, spec['cutoff_hz'], spec['beta'],
                           spec['d_cutoff_hz'])
        return one_euro(forward[::-1], rate_hz, spec['cutoff_hz'],
                        spec['beta'], spec['d_cutoff_hz'])[::-1]
    return run


def one_euro(x: np.ndarray, rate_hz: float, cutoff_hz: float, beta: float,
             d_cutoff_hz: float) -> np.ndarray:
    """One pass of the One-Euro filter over (T, k) evenly spaced values,
    each column on its own (Pose2Sim's: the derivative of the raw value
    against the previous filtered one, its cut-off raised by ``beta`` ×
    |speed|); the filter runs it forwards then backwards."""
    dt = 1.0 / rate_hz

    def alpha(cutoff):
        r = 2 * np.pi * cutoff * dt
        return r / (r + 1)

    out = np.empty_like(x)
    out[0] = previous = x[0]
    speed = np.zeros_like(x[0])
    alpha_d = alpha(d_cutoff_hz)
    for i in range(1, len(x)):
        speed = alpha_d * (x[i] - previous) / dt + (1 - alpha_d) * speed
        a = alpha(cutoff_hz + beta * np.abs(speed))
        out[i] = previous = a * x[i] + (1 - a) * previous
    return out


_RUNNERS: Dict[str, Callable] = {
    'butterworth': _butterworth, 'gaussian': _gaussian, 'median': _median,
    'loess': _loess, 'kalman': _kalman, 'one_euro': _one_euro}


def describe(spec: Dict) -> Tuple[str, ...]:
    """The filter in words, e.g. ``('butterworth', 'cutoff_hz 6', ...)``."""
    return (spec['type'],) + tuple(f'{k} {v}' for k, v in spec.items()
                                   if k != 'type')
