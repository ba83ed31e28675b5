"""The error model and the stand-in track of :mod:`protocols.uncertainty`'s bootstrap.

:func:`jitter_model` estimates the per-frame tracking jitter (sd, px per coordinate) of a
track as a function of the pose model's confidence, with the uncertainty of its overall
scale; :func:`stillness_smooth` is the stand-in for the unknown true track of distance: a
2-D total variation (fused) smoother that holds a still animal exactly still and follows a
moving one; :func:`kalman_posterior_draws` gives the zone endpoints (centre time, entries)
random draws of the true track from a constant-velocity Kalman model's posterior (a
simulation smoother), so that the bootstrap carries where the animal may have been relative
to a zone boundary, not one smoothed guess of it.

Why total variation. Distance is ``sum |step|``: at a still frame any jitter adds path
linearly, so the bootstrap's bias correction ``theta(world + noise) - theta(world)`` falls
short wherever the stand-in ("world") keeps some jitter. A moving average (or a Kalman
smoother) keeps a fraction of it everywhere; the total-variation solution is piecewise
constant where the data cannot tell movement from jitter and follows the track where they
can (the bench, ``bench/endpoint_uncertainty.py``, shows the difference).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import nnls

#: 5-point quadratic Savitzky-Golay centre weights; the residual ``x - SG5(x)`` has weights
#: ``_RESID`` (its variance is ``sum_j _RESID[j]**2 sigma[t + j]**2`` for independent jitter).
_SG5 = np.array([-3.0, 12.0, 17.0, 12.0, -3.0]) / 35.0
_RESID = np.array([0.0, 0.0, 1.0, 0.0, 0.0]) - _SG5
#: Still segments up to about this long (s) are held exactly still by the stand-in smoother
#: (its penalty ``lambda = sqrt(fps * STILL_S) / sd``; at 30 fps ``lambda sd = 3.9``).
STILL_S = 0.5
#: Frames per block of the block-means standard error of the jitter scale.
BLOCK_FRAMES = 30


def _hat_basis(c: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """``(n, K)`` piecewise-linear (hat) basis of ``c`` on ``knots`` (flat beyond the ends)."""
    c = np.clip(c, knots[0], knots[-1])
    out = np.zeros((c.size, knots.size))
    if knots.size == 1:
        out[:, 0] = 1.0
        return out
    i = np.clip(np.searchsorted(knots, c, side="right") - 1, 0, knots.size - 2)
    w = (c - knots[i]) / (knots[i + 1] - knots[i])
    out[np.arange(c.size), i] = 1.0 - w
    out[np.arange(c.size), i + 1] = w
    return out


def jitter_model(xy: np.ndarray, conf: np.ndarray, observed: np.ndarray, *, n_knots: int = 5,
                 trim: float = 10.0) -> tuple[np.ndarray, float, dict]:
    """Per-frame jitter sd (px per coordinate) as a function of confidence, from the track.

    The residual of a 5-frame quadratic Savitzky-Golay smooth is, for a smooth movement,
    a known linear combination of the jitter of the 5 frames, so its expected square is
    ``sum_j h_j**2 sigma**2(conf[t + j])``. ``sigma**2(conf)`` is piecewise linear in the
    confidence (knots at quantiles of the observed frames' confidence) and fitted to the
    squared residuals by non-negative least squares, reweighted by the fit (squared
    residuals have sd proportional to their mean) and trimmed of residuals over ``trim``
    times their fitted mean (real movement the smooth does not follow).

    Parameters
    ----------
    xy
        ``(time, 2)`` track (px).
    conf
        ``(time,)`` confidence.
    observed
        ``(time,)`` frames the protocol keeps (finite and confident enough); only windows
        of 5 observed frames are used.
    n_knots
        Knots of the piecewise-linear variance (fewer where the confidence takes few values).
    trim
        Residuals above ``trim`` x their fitted variance are left out.

    Returns
    -------
    tuple
        ``(sd, scale_se, info)``: ``sd`` ``(time,)`` px; ``scale_se`` the relative standard
        error of the overall jitter scale (block means of the squared residual over
        :data:`BLOCK_FRAMES`-frame blocks: the residuals of neighbouring frames are
        correlated); ``info`` ``{"knots", "sd_at_knots", "n"}``. With fewer than 20
        usable windows the sd is 0 and ``scale_se`` NaN.
    """
    obs = np.asarray(observed, bool) & np.isfinite(xy).all(axis=1)
    c = np.nan_to_num(np.asarray(conf, float), nan=1.0)
    x = np.where(obs[:, None], xy, 0.0)
    r = ndimage.correlate1d(x, _RESID, axis=0, mode="constant")
    full = ndimage.correlate1d(obs.astype(float), np.ones(5), mode="constant") == 5
    r2 = 0.5 * (r**2).sum(axis=1)
    qs = np.unique(np.quantile(c[obs], np.linspace(0, 1, n_knots))) if obs.any() else np.array([1.0])
    basis = _hat_basis(c, qs)
    design = ndimage.correlate1d(basis, _RESID**2, axis=0, mode="nearest")
    use = full.copy()
    if use.sum() < 20:
        return np.zeros(len(xy)), float("nan"), {"knots": qs, "sd_at_knots": np.zeros(qs.size), "n": int(use.sum())}
    w = np.ones(use.sum())
    beta = np.zeros(qs.size)
    for _ in range(4):
        idx = np.flatnonzero(use)
        beta, _ = nnls(design[idx] * w[:, None], r2[idx] * w)
        fit = np.maximum(design @ beta, 1e-12)
        use = full & (r2 <= trim * fit)
        w = 1.0 / fit[use]
    sd = np.sqrt(np.maximum(basis @ beta, 0.0))
    u = r2[use] / fit[use]
    nb = u.size // BLOCK_FRAMES
    if nb >= 4:
        blocks = u[:nb * BLOCK_FRAMES].reshape(nb, BLOCK_FRAMES).mean(axis=1)
        var_se = float(blocks.std(ddof=1) / np.sqrt(nb) / max(u.mean(), 1e-12))
    else:
        var_se = float(np.sqrt(2.0 / max(u.size, 1)) * 3)
    return sd, 0.5 * var_se, {"knots": qs, "sd_at_knots": np.sqrt(np.maximum(beta, 0.0)), "n": int(use.sum())}


def _tv_dual_primal(y: np.ndarray, winv: np.ndarray, p: np.ndarray) -> np.ndarray:
    dtp = np.zeros_like(y)
    dtp[:-1] -= p
    dtp[1:] += p
    return y - winv[:, None] * dtp


def group_tv(y: np.ndarray, weight: np.ndarray, lam: float, *, tol_px: float = 1e-3,
             max_iter: int = 3000) -> np.ndarray:
    """``argmin_x sum_t weight_t |x_t - y_t|^2 / 2 + lam sum_t |x_{t+1} - x_t|`` of a ``(n, 2)`` track.

    2-D (isotropic, the step's length) total variation; FISTA on the dual (``|p_t| <= lam``),
    stopped when no position moves more than ``tol_px`` in 50 iterations.
    """
    y = np.asarray(y, float)
    n = len(y)
    if n < 3 or lam <= 0:
        return y.copy()
    winv = 1.0 / np.asarray(weight, float)
    tau = 1.0 / (4.0 * winv.max())
    p = np.zeros((n - 1, 2))
    q, t, last = p.copy(), 1.0, y
    for k in range(max_iter):
        g = q + tau * np.diff(_tv_dual_primal(y, winv, q), axis=0)
        pn = g * np.minimum(1.0, lam / np.maximum(np.hypot(g[:, 0], g[:, 1]), 1e-300))[:, None]
        tn = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        q = pn + ((t - 1.0) / tn) * (pn - p)
        p, t = pn, tn
        if k % 50 == 49:
            x = _tv_dual_primal(y, winv, p)
            if np.abs(x - last).max() < tol_px:
                return x
            last = x
    return _tv_dual_primal(y, winv, p)


def stillness_smooth(track: np.ndarray, observed: np.ndarray, sd: np.ndarray, fps: float, *,
                     still_s: float = STILL_S) -> np.ndarray:
    """The stand-in true track: :func:`group_tv` of the observed frames, weights ``1 / sd**2``.

    ``lambda = sqrt(fps * still_s) / median(sd)``: standardised jitter summed over ``m``
    still frames wanders ~``sqrt(m)``, so still runs up to about ``still_s`` are held
    exactly still. Unobserved frames get the straight line between their observed
    neighbours (the bootstrap imputes a path there); frames before the first or after the
    last observed frame stay NaN.
    """
    out = np.full_like(track, np.nan, dtype=float)
    obs = np.asarray(observed, bool) & np.isfinite(track).all(axis=1)
    if obs.sum() < 3:
        out[obs] = track[obs]
        return out
    s = np.asarray(sd, float)[obs]
    med = float(np.median(s))
    if not np.isfinite(med) or med <= 1e-9:
        out[obs] = track[obs]  # no jitter: the track is its own stand-in
    else:
        s = np.maximum(s, 0.05 * med)  # a floor keeps the dual step size reasonable
        out[obs] = group_tv(track[obs], 1.0 / s**2, float(np.sqrt(fps * still_s)) / med, tol_px=1e-3 * med)
    idx = np.flatnonzero(obs)
    inner = np.arange(idx[0], idx[-1] + 1)
    for i in range(2):
        out[inner, i] = np.interp(inner, idx, out[idx, i])
    return out


def kalman_smooth_track(track: np.ndarray, observed: np.ndarray, sd: np.ndarray, fps: float) -> np.ndarray:
    """The stand-in for the zone endpoints: a constant-velocity RTS smooth of the observed frames.

    Measurement variance ``sd**2`` per frame (:func:`jitter_model`), process noise by maximum
    likelihood (:func:`pose.kalman.estimate_process_noise`); unobserved frames between
    observed ones get the smoother's prediction, frames outside them stay NaN.
    """
    from pose.kalman import estimate_process_noise, kalman_smooth

    obs = np.asarray(observed, bool) & np.isfinite(track).all(axis=1)
    out = np.full_like(track, np.nan, dtype=float)
    s = np.asarray(sd, float)
    if obs.sum() < 3 or not np.any(s[obs] > 1e-9):
        out[obs] = track[obs]
        idx = np.flatnonzero(obs)
        if idx.size:
            inner = np.arange(idx[0], idx[-1] + 1)
            for i in range(2):
                out[inner, i] = np.interp(inner, idx, track[idx, i])
        return out
    obs, z, r = _kalman_inputs(track, observed, sd)
    q = estimate_process_noise(z, r, 1.0 / fps, 2)
    sm = kalman_smooth(z, r, dt=1.0 / fps, order=2, process_noise=q)
    idx = np.flatnonzero(obs)
    out[idx[0]:idx[-1] + 1] = sm[idx[0]:idx[-1] + 1]
    return out


def _kalman_inputs(track: np.ndarray, observed: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed mask, ``(time, 2)`` measurements (NaN unobserved) and measurement variances."""
    obs = np.asarray(observed, bool) & np.isfinite(track).all(axis=1)
    s = np.asarray(sd, float)
    r = np.repeat(np.maximum(s, 0.05 * float(np.median(s[obs])))[:, None] ** 2, 2, axis=1)
    return obs, np.where(obs[:, None], track, np.nan), r


def kalman_posterior_draws(track: np.ndarray, observed: np.ndarray, sd: np.ndarray, fps: float, n_draws: int,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draws of the true track from the posterior of :func:`kalman_smooth_track`'s model.

    The Durbin-Koopman simulation smoother: with ``x_hat(y)`` the RTS smooth (the
    posterior mean, linear in the data ``y``), a pair ``(x+, y+)`` simulated from the model
    itself (constant velocity, white-noise acceleration of the maximum-likelihood sd,
    measurement noise ``sd`` on the observed frames only) gives the posterior draw
    ``x_hat(y) + x+ - x_hat(y+)``. One vectorised smoother pass over ``2 n_draws`` series.

    Parameters
    ----------
    track
        ``(time, 2)`` track (px).
    observed
        ``(time,)`` frames the protocol keeps.
    sd
        ``(time,)`` measurement sd (px per coordinate), :func:`jitter_model`.
    fps
        Frame rate.
    n_draws
        Number of draws.
    rng
        Random generator.

    Returns
    -------
    tuple
        ``(mean, draws)``: the posterior mean ``(time, 2)`` (= :func:`kalman_smooth_track`)
        and ``(time, 2, n_draws)`` draws. Unobserved runs between observed frames get the
        posterior's bridge (a path consistent with both sides); frames before the first
        or after the last observed frame are NaN in both. Without jitter (``sd`` 0) every
        draw is the track.

    Notes
    -----
    The smoother starts each series at its first observation with that sample's variance
    and a diffuse velocity (:func:`pose.kalman.kalman_smooth`); the posterior spread is
    therefore slightly too small on the first few frames only.
    """
    from pose.kalman import estimate_process_noise, kalman_smooth

    mean = kalman_smooth_track(track, observed, sd, fps)
    obs = np.asarray(observed, bool) & np.isfinite(track).all(axis=1)
    s = np.asarray(sd, float)
    if obs.sum() < 3 or not np.any(s[obs] > 1e-9):
        return mean, np.repeat(mean[:, :, None], n_draws, axis=2)
    obs, z, r = _kalman_inputs(track, observed, sd)
    dt = 1.0 / fps
    q = estimate_process_noise(z, r, dt, 2)
    n = len(track)
    # the model itself: p_t = p_(t-1) + v_(t-1) dt + a_t dt^2 / 2, v_t = v_(t-1) + a_t dt, a ~ N(0, q^2)
    acc = q * rng.standard_normal((n, 2 * n_draws))
    acc[0] = 0.0
    v = dt * np.cumsum(acc, axis=0)
    v_prev = np.vstack([np.zeros((1, 2 * n_draws)), v[:-1]])
    x_plus = np.cumsum(v_prev * dt + 0.5 * dt**2 * acc, axis=0)
    r_all = np.concatenate([np.repeat(r[:, :1], n_draws, axis=1), np.repeat(r[:, 1:], n_draws, axis=1)], axis=1)
    y_plus = np.where(np.repeat(obs[:, None], 2 * n_draws, axis=1), x_plus + np.sqrt(r_all) * rng.standard_normal(x_plus.shape),
                      np.nan)
    x_hat_plus = kalman_smooth(y_plus, r_all, dt=dt, order=2, process_noise=q)
    err = (x_plus - x_hat_plus).reshape(n, 2, n_draws)
    draws = mean[:, :, None] + err
    idx = np.flatnonzero(obs)
    draws[:idx[0]] = np.nan
    draws[idx[-1] + 1:] = np.nan
    return mean, draws
