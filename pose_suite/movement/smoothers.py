"""Pose2Sim 0.10.49's LOESS and Kalman filters on one series, in numpy.

Both take one contiguous, finite series (no gaps: the caller splits a
trajectory at its missing frames) sampled on consecutive frames, and return
what Pose2Sim's ``loess_filter_1d`` / ``kalman_filter_1d`` return for it,
without statsmodels or filterpy:

- :func:`loess` is ``statsmodels``' ``lowess(y, frames, frac=nb_values / T,
  it=0, is_sorted=True)`` (local linear regression, tricube weights, no
  robustness iterations, ``delta=0``: every frame is fitted);
- :func:`kalman` is ``filterpy``'s ``KalmanFilter.batch_filter`` (and
  ``rts_smoother``) on Pose2Sim's constant-acceleration model.

``tests/test_movement_smoothers.py`` runs Pose2Sim's own functions on the
same series and checks both agree within 1e-6.
"""
import numpy as np

#: Pose2Sim's measurement noise (its unit is that of the values, px).
MEASUREMENT_NOISE = 20.0


def loess(values: np.ndarray, nb_values: int) -> np.ndarray:
    """Smooth a series by LOESS over its ``nb_values`` nearest frames.

    Each frame's value is the weighted linear least-squares fit, at that
    frame, of the ``k`` frames nearest to it (``k = nb_values``, at least
    2, as statsmodels counts it from ``frac = nb_values / T``), weighted by
    the tricube of their distance over the farthest one's. A series of
    ``nb_values`` frames or fewer is returned unchanged, as Pose2Sim leaves
    it.

    Args:
        values (np.ndarray): (T,) finite values on consecutive frames, e.g.
            a keypoint's x in pixels.
        nb_values (int): frames in each local fit (Pose2Sim's
            ``nb_values_used``).

    Returns:
        np.ndarray: (T,) float64 smoothed values, in the unit of ``values``.
    """
    y = np.asarray(values, dtype=float)
    count = len(y)
    if count <= nb_values:
        return y.copy()
    k = min(max(int(nb_values / count * count + 1e-10), 2), count)
    frames = np.arange(count)
    # statsmodels slides a k-frame window right while the frame is past its
    # middle (strictly): a tie keeps the window on the left.
    left = np.clip(frames - k // 2, 0, count - k)
    window = left[:, None] + np.arange(k)                 # (T, k) frames
    offset = window - frames[:, None]
    radius = np.abs(offset).max(axis=1, keepdims=True)
    weights = (1.0 - (np.abs(offset) / radius) ** 3) ** 3
    # statsmodels keeps a frame's value where under 2 weights are > 1e-12:
    # the one left is then the frame's own, whose fit below is that value.
    weights /= weights.sum(axis=1, keepdims=True)
    mean = (weights * window).sum(axis=1, keepdims=True)
    spread = np.maximum((weights * (window - mean) ** 2).sum(
        axis=1, keepdims=True), 1e-12)
    projection = weights * (1.0 + (frames[:, None] - mean)
                            * (window - mean) / spread)
    return (projection * y[window]).sum(axis=1)


def _model(frame_rate: float, process_noise: float):
    """Pose2Sim's constant-acceleration model for one coordinate.

    Returns:
        tuple: F (3, 3) state transition over one frame, Q (3, 3) process
        noise covariance (filterpy's ``Q_discrete_white_noise(3, dt,
        var=process_noise**2)``), for the state (position, velocity,
        acceleration) in (unit, unit/s, unit/s²).
    """
    dt = 1 / frame_rate
    transition = np.array([[1.0, dt, dt ** 2 / 2],
                           [0.0, 1.0, dt],
                           [0.0, 0.0, 1.0]])
    noise = np.array([[.25 * dt ** 4, .5 * dt ** 3, .5 * dt ** 2],
                      [.5 * dt ** 3, dt ** 2, dt],
                      [.5 * dt ** 2, dt, 1]]) * process_noise ** 2
    return transition, noise


def _filter(values, transition, noise):
    """filterpy's ``batch_filter``: predict then update at every frame.

    Returns:
        tuple: means (T, 3) and covariances (T, 3, 3) after each update.
    """
    # Pose2Sim's initial state: the first value, first difference and second
    # difference (per frame, not per second); filterpy's P = I, times 20.
    state = np.array([values[0], values[1] - values[0],
                      values[2] - 2 * values[1] + values[0]])
    covariance = np.eye(3) * MEASUREMENT_NOISE
    variance = MEASUREMENT_NOISE ** 2
    means = np.empty((len(values), 3))
    covariances = np.empty((len(values), 3, 3))
    for i, value in enumerate(values):
        state = transition @ state
        covariance = transition @ covariance @ transition.T + noise
        gain = covariance[:, 0] / (covariance[0, 0] + variance)
        state = state + gain * (value - state[0])
        # Joseph form, as filterpy: (I-KH) P (I-KH)' + K R K'
        keep = np.eye(3) - np.outer(gain, [1.0, 0.0, 0.0])
        covariance = (keep @ covariance @ keep.T
                      + np.outer(gain, gain) * variance)
        means[i], covariances[i] = state, covariance
    return means, covariances


def _smooth(means, covariances, transition, noise):
    """filterpy's ``rts_smoother`` on the filtered means (positions only
    need the smoothed means: the smoothed covariances are not kept)."""
    means = means.copy()
    for i in range(len(means) - 2, -1, -1):
        predicted = transition @ covariances[i] @ transition.T + noise
        gain = covariances[i] @ transition.T @ np.linalg.inv(predicted)
        means[i] += gain @ (means[i + 1] - transition @ means[i])
    return means


def kalman(values: np.ndarray, frame_rate: float, trust_ratio: float = 500,
           smooth: bool = True) -> np.ndarray:
    """Filter a series with Pose2Sim's constant-acceleration Kalman filter.

    The measurement noise is 20 (the values' unit, px) and the process
    noise ``20 * int(trust_ratio)``, as Pose2Sim sets them; with ``smooth``
    the forward pass is followed by a Rauch-Tung-Striebel backward pass.
    A series of fewer than 3 frames is returned unchanged (Pose2Sim leaves
    one frame as is; 0.10.49 raises IndexError on two, its initial
    acceleration needing three).

    Args:
        values (np.ndarray): (T,) finite values on consecutive frames, e.g.
            a keypoint's x in pixels (Pose2Sim treats 0 as missing: the
            caller splits there).
        frame_rate (float): frames per second of the series.
        trust_ratio (float): process noise over measurement noise
            (Pose2Sim's ``trust_ratio``; truncated to an integer as it does).
        smooth (bool): run the backward (RTS) pass.

    Returns:
        np.ndarray: (T,) float64 filtered positions, in the unit of
        ``values``.
    """
    values = np.asarray(values, dtype=float)
    if len(values) < 3:
        return values.copy()
    transition, noise = _model(frame_rate,
                               MEASUREMENT_NOISE * int(trust_ratio))
    means, covariances = _filter(values, transition, noise)
    if smooth:
        means = _smooth(means, covariances, transition, noise)
    return means[:, 0]
