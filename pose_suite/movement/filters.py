"""Zero-phase filters of trajectories, each Pose2Sim's own definition
(``Pose2Sim.filtering``), run on every stretch of a trajectory without a
missing point.

A stretch too short for a filter is left as it is, as Pose2Sim leaves it,
and counted (:class:`Filtered`): Butterworth needs more than
``3 × (order / 2 + 1)`` points (scipy's ``filtfilt`` padding), LOESS more
than ``nb_values``, Kalman and One-Euro 2. Gaussian and median filters,
which Pose2Sim runs over the whole column (a NaN spreads over the kernel),
run here on each stretch with scipy's own edge handling (``reflect`` for
Gaussian, zero padding for ``medfilt``), so that a gap spreads into nothing.

The samples must be evenly spaced: :mod:`.grid` resamples a variable
frame rate first.
"""
import dataclasses
from typing import Callable, Dict, Tuple

import numpy as np
from scipy import signal
from scipy.ndimage import gaussian_filter1d

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
    """'' when ``spec`` can run at ``rate_hz``, else why not (one line)."""
    for name in ('cutoff_hz', 'd_cutoff_hz'):
        if spec['type'] == 'butterworth' and name in spec and \
                spec[name] >= rate_hz / 2:
            return (f'the filter\'s {name} {spec[name]:g} Hz is at or above '
                    f'half the frame rate ({rate_hz / 2:g} Hz): lower it')
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
    for column in out.T:
        for start, stop in runs(np.isfinite(column)):
            result.stretches += 1
            if stop - start < shortest:
                result.short += 1
                continue
            column[start:stop] = run(column[start:stop])
    return result


def _butterworth(spec, rate_hz) -> Callable:
    b, a = signal.butter(spec['order'] / 2, spec['cutoff_hz'] / (rate_hz / 2),
                         'low', analog=False)
    return lambda x: signal.filtfilt(b, a, x)


def _gaussian(spec, rate_hz) -> Callable:
    return lambda x: gaussian_filter1d(x, spec['sigma_frames'])


def _median(spec, rate_hz) -> Callable:
    return lambda x: signal.medfilt(x, kernel_size=spec['kernel_frames'])


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
    """One pass of the One-Euro filter over (T,) evenly spaced values
    (Pose2Sim's: the derivative of the raw value against the previous
    filtered one, its cut-off raised by ``beta`` × |speed|); the filter
    runs it forwards then backwards."""
    dt = 1.0 / rate_hz

    def alpha(cutoff):
        r = 2 * np.pi * cutoff * dt
        return r / (r + 1)

    out = np.empty_like(x)
    out[0] = previous = x[0]
    speed = 0.0
    alpha_d = alpha(d_cutoff_hz)
    for i in range(1, len(x)):
        speed = alpha_d * (x[i] - previous) / dt + (1 - alpha_d) * speed
        a = alpha(cutoff_hz + beta * abs(speed))
        out[i] = previous = a * x[i] + (1 - a) * previous
    return out


_RUNNERS: Dict[str, Callable] = {
    'butterworth': _butterworth, 'gaussian': _gaussian, 'median': _median,
    'loess': _loess, 'kalman': _kalman, 'one_euro': _one_euro}


def describe(spec: Dict) -> Tuple[str, ...]:
    """The filter in words, e.g. ``('butterworth', 'cutoff_hz 6', ...)``."""
    return (spec['type'],) + tuple(f'{k} {v}' for k, v in spec.items()
                                   if k != 'type')
