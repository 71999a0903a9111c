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
        values (np.ndarray): (T,) or (T, C) finite values on consecutive
            frames, e.g. a keypoint's x in pixels (each column on its own:
            the weights depend on the frames only).
        nb_values (int): frames in each local fit (Pose2Sim's
            ``nb_values_used``).

    Returns:
        np.ndarray: float64 smoothed values, ``values``' shape and unit.
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
    if y.ndim == 1:
        return (projection * y[window]).sum(axis=1)
    return (projection[..., None] * y[window]).sum(axis=1)


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


def _gains(count, transition, noise):
    """filterpy's covariance recursion of ``batch_filter`` (predict then
    update at every frame), which does not depend on the values: the gain
    (T, 3) and the covariance (T, 3, 3) after each update."""
    # filterpy's P = I, times 20 (Pose2Sim).
    covariance = np.eye(3) * MEASUREMENT_NOISE
    variance = MEASUREMENT_NOISE ** 2
    gains = np.empty((count, 3))
    covariances = np.empty((count, 3, 3))
    for i in range(count):
        covariance = transition @ covariance @ transition.T + noise
        gain = covariance[:, 0] / (covariance[0, 0] + variance)
        # Joseph form, as filterpy: (I-KH) P (I-KH)' + K R K'
        keep = np.eye(3) - np.outer(gain, [1.0, 0.0, 0.0])
        covariance = (keep @ covariance @ keep.T
                      + np.outer(gain, gain) * variance)
        gains[i], covariances[i] = gain, covariance
    return gains, covariances


def _filter(values, transition, gains):
    """The states of ``batch_filter`` for (T, C) values, every column at
    once: means (T, 3, C)."""
    # Pose2Sim's initial state: the first value, first difference and second
    # difference (per frame, not per second).
    state = np.stack([values[0], values[1] - values[0],
                      values[2] - 2 * values[1] + values[0]])
    means = np.empty((len(values), 3, values.shape[1]))
    for i, value in enumerate(values):
        state = transition @ state
        state = state + gains[i][:, None] * (value - state[0])
        means[i] = state
    return means


def _smooth(means, covariances, transition, noise):
    """filterpy's ``rts_smoother`` on the filtered means (T, 3, C)
    (positions only need the smoothed means: the smoothed covariances are
    not kept)."""
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
        values (np.ndarray): (T,) or (T, C) finite values on consecutive
            frames, e.g. a keypoint's x in pixels, each column filtered on
            its own (Pose2Sim treats 0 as missing: the caller splits
            there).
        frame_rate (float): frames per second of the series.
        trust_ratio (float): process noise over measurement noise
            (Pose2Sim's ``trust_ratio``; truncated to an integer as it does).
        smooth (bool): run the backward (RTS) pass.

    Returns:
        np.ndarray: float64 filtered positions, ``values``' shape and unit.
    """
    values = np.asarray(values, dtype=float)
    if len(values) < 3:
        return values.copy()
    columns = values.reshape(len(values), -1)
    transition, noise = _model(frame_rate,
                               MEASUREMENT_NOISE * int(trust_ratio))
    gains, covariances = _gains(len(values), transition, noise)
    means = _filter(columns, transition, gains)
    if smooth:
        means = _smooth(means, covariances, transition, noise)
    return means[:, 0].reshape(values.shape)
