"""Vectorised linear Kalman filter and RTS smoother for many independent 1-D series.

Every coordinate of every keypoint is an independent series with the same state-space model
(constant velocity: state ``[p, v]``; constant acceleration: ``[p, v, a]``), a scalar
measurement ``z = p + noise`` with a per-sample variance ``R[t]`` (confidence-dependent) and
missing samples (NaN: prediction only). The model matrices are those of
:class:`filterpy.kalman.KalmanFilter` with :func:`filterpy.common.Q_discrete_white_noise`;
the recursion is compiled with numba (one pass over series x frames, no Python loop over
frames). :func:`kalman_smooth` equals filterpy's ``KalmanFilter.predict/update`` followed by
``rts_smoother`` on each series (tested to 1e-9).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["model_matrices", "kalman_smooth", "estimate_process_noise", "running_nanmedian"]


def model_matrices(dt: float, order: int, process_noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Transition ``F`` and process covariance ``Q`` of a constant-velocity (order 2) or
    constant-acceleration (order 3) model with white-noise acceleration/jerk of std
    ``process_noise``; ``Q`` equals ``filterpy.common.Q_discrete_white_noise(order, dt, q**2)``.
    """
    if order == 2:
        f = np.array([[1.0, dt], [0.0, 1.0]])
        q = np.array([[0.25 * dt**4, 0.5 * dt**3], [0.5 * dt**3, dt**2]])
    elif order == 3:
        f = np.array([[1.0, dt, 0.5 * dt**2], [0.0, 1.0, dt], [0.0, 0.0, 1.0]])
        q = np.array([
            [0.25 * dt**4, 0.5 * dt**3, 0.5 * dt**2],
            [0.5 * dt**3, dt**2, dt],
            [0.5 * dt**2, dt, 1.0],
        ])
    else:
        raise ValueError(f"order must be 2 (constant velocity) or 3 (constant acceleration), got {order}")
    return f, q * process_noise**2


def estimate_process_noise(
    z: np.ndarray, r: np.ndarray | float, dt: float, order: int, *, max_samples: int = 100_000
) -> float:
    """Maximum-likelihood process-noise std for a (time, series) matrix of measurements.

    The causal filter's innovation log-likelihood is evaluated on a log-spaced grid of
    process-noise values around a difference-based guess (robust spread of the ``order``-th
    differences / ``dt**order``), refined once on a finer grid; at most ``max_samples``
    measurements (a block of frames, all series) are used. Returns px/s^order.
    """
    z = np.asarray(z, dtype=float)
    r = np.broadcast_to(np.asarray(r, dtype=float), z.shape)
    n_rows = max(50, min(z.shape[0], max_samples // max(z.shape[1], 1)))
    zs, rs = np.ascontiguousarray(z[:n_rows]), np.ascontiguousarray(r[:n_rows])
    d = np.diff(zs, n=order, axis=0)
    d = d[np.isfinite(d)]
    if d.size < 10:
        return 1.0 / dt**order
    guess = max(1.4826 * np.median(np.abs(d - np.median(d))), 1e-9) / dt**order
    p0 = np.array([0.0, 1e3**2, 1e5**2][:order])
    out = np.empty((n_rows, z.shape[1], order))
    ll = np.empty(z.shape[1])

    def score(q: float) -> float:
        f, qm = model_matrices(dt, order, q)
        _kalman_kernel(zs, rs, f, qm, p0, False, out, ll)
        return float(ll.sum())

    grid = guess * np.logspace(-4, 1, 9)
    best = grid[int(np.argmax([score(q) for q in grid]))]
    fine = best * np.logspace(-0.6, 0.6, 7)
    return float(fine[int(np.argmax([score(q) for q in fine]))])


@njit(cache=True, inline="always")
def _inv_sym_small(a, out):  # pragma: no cover - compiled; inverse of a 2x2 or 3x3 matrix
    n = a.shape[0]
    if n == 2:
        det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
        out[0, 0] = a[1, 1] / det
        out[0, 1] = -a[0, 1] / det
        out[1, 0] = -a[1, 0] / det
        out[1, 1] = a[0, 0] / det
        return
    c00 = a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1]
    c01 = a[1, 2] * a[2, 0] - a[1, 0] * a[2, 2]
    c02 = a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]
    det = a[0, 0] * c00 + a[0, 1] * c01 + a[0, 2] * c02
    out[0, 0] = c00 / det
    out[1, 0] = c01 / det
    out[2, 0] = c02 / det
    out[0, 1] = (a[0, 2] * a[2, 1] - a[0, 1] * a[2, 2]) / det
    out[1, 1] = (a[0, 0] * a[2, 2] - a[0, 2] * a[2, 0]) / det
    out[2, 1] = (a[0, 1] * a[2, 0] - a[0, 0] * a[2, 1]) / det
    out[0, 2] = (a[0, 1] * a[1, 2] - a[0, 2] * a[1, 1]) / det
    out[1, 2] = (a[0, 2] * a[1, 0] - a[0, 0] * a[1, 2]) / det
    out[2, 2] = (a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]) / det


@njit(cache=True, inline="always")
def _mm(a, b, out):  # pragma: no cover - compiled; out = a @ b (square, small)
    n = a.shape[0]
    for i in range(n):
        for j in range(n):
            acc = 0.0
            for k in range(n):
                acc += a[i, k] * b[k, j]
            out[i, j] = acc


@njit(cache=True, inline="always")
def _fpft_q(f, p, q, tmp, out):  # pragma: no cover - compiled; out = F P F' + Q
    n = f.shape[0]
    _mm(f, p, tmp)
    for i in range(n):
        for j in range(n):
            acc = q[i, j]
            for k in range(n):
                acc += tmp[i, k] * f[j, k]
            out[i, j] = acc


@njit(cache=True)
def _kalman_kernel(z, r, f, q, p0_diag, smooth, out_state, loglik):  # pragma: no cover - compiled
    n_t, n_s = z.shape
    d = f.shape[0]
    xf = np.empty((n_t, d))
    pf = np.empty((n_t, d, d))
    x = np.empty(d)
    xn = np.empty(d)
    p = np.empty((d, d))
    pn = np.empty((d, d))
    tmp = np.empty((d, d))
    tmp2 = np.empty((d, d))
    kg = np.empty(d)
    c = np.empty((d, d))
    dx = np.empty(d)
    pinv = np.empty((d, d))
    for s in range(n_s):
        loglik[s] = 0.0
        k0 = -1
        for t in range(n_t):
            if not np.isnan(z[t, s]):
                k0 = t
                break
        if k0 < 0:
            for t in range(n_t):
                for i in range(d):
                    out_state[t, s, i] = np.nan
            continue
        for i in range(d):
            x[i] = 0.0
            for j in range(d):
                p[i, j] = 0.0
            p[i, i] = p0_diag[i]
        x[0] = z[k0, s]
        if p0_diag[0] <= 0:
            p[0, 0] = r[k0, s]
        for t in range(k0, n_t):
            if t > k0:
                for i in range(d):
                    acc = 0.0
                    for k in range(d):
                        acc += f[i, k] * x[k]
                    xn[i] = acc
                x[:] = xn
                _fpft_q(f, p, q, tmp, pn)
                p[:, :] = pn
            zt = z[t, s]
            if not np.isnan(zt):
                rt = r[t, s]
                sv = p[0, 0] + rt
                for i in range(d):
                    kg[i] = p[i, 0] / sv
                y = zt - x[0]
                if t > k0:  # innovation log-likelihood (the first sample only initialises)
                    loglik[s] += -0.5 * (np.log(2.0 * np.pi * sv) + y * y / sv)
                for i in range(d):
                    x[i] += kg[i] * y
                # Joseph form, as filterpy: P = (I - K H) P (I - K H)' + K R K'
                for i in range(d):
                    for j in range(d):
                        tmp[i, j] = p[i, j] - kg[i] * p[0, j]  # (I - K H) P
                for i in range(d):
                    for j in range(d):
                        p[i, j] = tmp[i, j] - tmp[i, 0] * kg[j] + kg[i] * rt * kg[j]
            xf[t, :] = x
            pf[t, :, :] = p
        if smooth:
            for t in range(n_t - 2, k0 - 1, -1):
                _fpft_q(f, pf[t], q, tmp, pn)  # predicted covariance Pp
                _inv_sym_small(pn, pinv)
                # C = P F' Pp^-1
                for i in range(d):
                    for j in range(d):
                        acc = 0.0
                        for k in range(d):
                            acc += pf[t, i, k] * f[j, k]
                        tmp[i, j] = acc
                _mm(tmp, pinv, c)
                for i in range(d):
                    acc = 0.0
                    for k in range(d):
                        acc += f[i, k] * xf[t, k]
                    dx[i] = xf[t + 1, i] - acc
                for i in range(d):
                    acc = 0.0
                    for k in range(d):
                        acc += c[i, k] * dx[k]
                    xf[t, i] += acc
                for i in range(d):
                    for j in range(d):
                        tmp[i, j] = pf[t + 1, i, j] - pn[i, j]
                _mm(c, tmp, tmp2)
                for i in range(d):
                    for j in range(d):
                        acc = 0.0
                        for k in range(d):
                            acc += tmp2[i, k] * c[j, k]
                        pf[t, i, j] += acc
        for t in range(n_t):
            for i in range(d):
                out_state[t, s, i] = xf[t, i] if t >= k0 else np.nan
    return out_state


def kalman_smooth(
    z: np.ndarray,
    r: np.ndarray,
    *,
    dt: float,
    order: int = 2,
    process_noise: float = 1.0,
    p0_diag: np.ndarray | None = None,
    smooth: bool = True,
    return_state: bool = False,
) -> np.ndarray:
    """Filter (and smooth) every column of ``z`` with the same linear model.

    Parameters
    ----------
    z
        Measurements, shape (time, series); NaN = missing (prediction only).
    r
        Measurement variance per sample, same shape as ``z``.
    dt
        Time step in seconds.
    order
        2 = constant velocity, 3 = constant acceleration.
    process_noise
        Std of the white-noise acceleration (order 2) or jerk (order 3).
    p0_diag
        Diagonal of the initial covariance at a series' first measurement (position variance
        <= 0 means "use that sample's R"). Default: ``[R, (1e3 px/s)^2, (1e5 px/s^2)^2]``.
    smooth
        RTS smoother (True) or causal filter (False).
    return_state
        Return the whole state (time, series, order) instead of the position (time, series).

    Returns
    -------
    numpy.ndarray
        Estimated positions (or states); NaN before each series' first measurement.
    """
    z = np.ascontiguousarray(z, dtype=float)
    r = np.ascontiguousarray(np.broadcast_to(r, z.shape), dtype=float)
    if z.ndim != 2:
        raise ValueError(f"z must be 2-D (time, series), got shape {z.shape}")
    f, q = model_matrices(dt, order, process_noise)
    if p0_diag is None:
        p0_diag = np.array([0.0, 1e3**2, 1e5**2][:order])
    p0_diag = np.asarray(p0_diag, dtype=float)
    out = np.empty((z.shape[0], z.shape[1], order))
    _kalman_kernel(z, r, f, q, p0_diag, bool(smooth), out, np.empty(z.shape[1]))
    return out if return_state else out[:, :, 0].copy()


@njit(cache=True)
def running_nanmedian(x: np.ndarray, window: int) -> np.ndarray:  # pragma: no cover - compiled
    """Centred running median of each row of ``x`` (series, time), skipping NaN, with
    reflected edges (``d c b | a b c d | c b a``); NaN where the centre sample is NaN."""
    n_s, n_t = x.shape
    h = window // 2
    out = np.empty_like(x)
    buf = np.empty(window)
    for s in range(n_s):
        for t in range(n_t):
            if np.isnan(x[s, t]):
                out[s, t] = np.nan
                continue
            m = 0
            for k in range(t - h, t + h + 1):
                j = k
                if n_t > 1:
                    while j < 0 or j >= n_t:
                        j = -j if j < 0 else 2 * (n_t - 1) - j
                else:
                    j = 0
                v = x[s, j]
                if not np.isnan(v):
                    i = m
                    while i > 0 and buf[i - 1] > v:
                        buf[i] = buf[i - 1]
                        i -= 1
                    buf[i] = v
                    m += 1
            if m % 2 == 1:
                out[s, t] = buf[m // 2]
            else:
                out[s, t] = 0.5 * (buf[m // 2 - 1] + buf[m // 2])
    return out
