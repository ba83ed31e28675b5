"""Rejecting a pose model's confident gross errors before the freezing speeds (not confidence-based).

A short-trained pose model puts a keypoint 20-150 px off in a few % of frames, often with a
confidence a mask lets through. One such point inside the speed window moves a least-squares
slope by its full size: a freezing mouse reads as moving (the simulated-error grid,
``bench/freezing_posture_states.py``: freezing kappa 0.00-0.70 at its heavy levels).

The rule (methods sentence, defaults): "Before the speeds were computed, a keypoint position
was treated as missing where it lay farther from its own running median (centred, 0.5 s,
x and y filtered separately) than the larger of 5 times the keypoint's tracking jitter (robust s.d.
of its high-frequency residual, estimated without the samples a first pass rejected) and
10 mm." A still point's jitter alone exceeds 5 s.d. (2-D
Rayleigh) in about 4 in a million frames; 10 mm is far above the jitter of any usable track
and below the commonest gross errors (20-150 px at 0.7-2 px/mm). 5 mm was tried and
rejected: on demo1 at 15 fps it removed real head movements and turned them into freezing
(the sweep's 15 fps row 0.853 -> 0.834; at 10 mm every cell is as without the rule). The
running median follows a real movement (a ramp or a step keeps the median on the track), so
a deviation means a sample that leaves the track and comes back within half the window,
which a body point at rest cannot do.
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from behavior.noise import _residual, _robust_sd

logger = logging.getLogger(__name__)


def reject_gross_errors(
    xyk: np.ndarray, *, fps: float, px_per_mm: float, window_s: float = 0.5, n_sd: float = 5.0,
    min_mm: float = 10.0,
) -> tuple[np.ndarray, dict[str, object]]:
    """Positions with the samples far from their keypoint's running median set to NaN.

    Parameters
    ----------
    xyk
        ``(time, space, keypoint)`` positions in px (x, y first); NaN = unknown.
    fps, px_per_mm
        Frame rate and calibration.
    window_s
        Running-median window (odd frame count, at least 5 frames: a 2-frame error does not
        move it).
    n_sd, min_mm
        A sample is rejected where its distance from the running median exceeds
        ``max(n_sd * sigma_k, min_mm * px_per_mm)``, ``sigma_k`` the keypoint's jitter
        (robust s.d. per coordinate of its 5-frame Savitzky-Golay residual, estimated again
        without the samples a first pass rejected).

    Returns
    -------
    positions, info
        A copy of ``xyk`` with the rejected samples NaN; ``info`` holds the rule's values,
        the limit per keypoint (px) and the rejected count and share. The first and last
        half-window are not tested.
    """
    from features.filters import nan_median_filter

    x = np.array(xyk, dtype=float)
    n, _, k = x.shape
    w = max(5, int(round(window_s * fps)))
    w += 1 - w % 2
    xy = x[:, :2]
    med = nan_median_filter(xy.reshape(n, -1), w).reshape(xy.shape) if n >= w else xy
    dev = np.hypot(xy[:, 0] - med[:, 0], xy[:, 1] - med[:, 1])  # (time, keypoint)
    dev[: w // 2], dev[n - w // 2:] = np.nan, np.nan  # the filter reflects at the ends: not a median there
    floor = min_mm * px_per_mm
    bad = np.zeros(dev.shape, bool)
    for _ in range(2):  # the jitter again on the samples the first pass kept (errors inflate it)
        kept = np.where(bad[:, None, :], np.nan, xy)
        sigma = np.array([_robust_sd(_residual(kept[:, :, j]))[0] for j in range(k)])
        limit = np.maximum(n_sd * np.nan_to_num(sigma, nan=0.0), floor)
        bad = dev > limit[None, :]
    x[np.broadcast_to(bad[:, None, :], x.shape)] = np.nan
    known = int(np.isfinite(dev).sum())
    info = {"rule": f"|p - running median over {w / fps:.3f} s| > max({n_sd:g} x jitter sd, {min_mm:g} mm)",
            "window_frames": w, "limit_px": [round(float(v), 3) for v in limit],
            "rejected": int(bad.sum()), "rejected_share": float(bad.sum() / known) if known else 0.0}
    if bad.any():
        logger.info("gross errors: %d of %d keypoint positions rejected (%.2f %%; %s)", info["rejected"], known,
                    100 * info["rejected_share"], info["rule"])
    return x, info


def without_gross_errors(one: xr.Dataset, *, fps: float, px_per_mm: float, min_mm: float) -> tuple[xr.Dataset, dict]:
    """A copy of a one-individual pose Dataset with :func:`reject_gross_errors` applied to its
    positions (the rejected ones NaN), and the rejection's summary."""
    one = one.copy(deep=True)
    pos = one.position.isel(individual=0).transpose("time", "space", "keypoint")
    clean, info = reject_gross_errors(pos.values, fps=fps, px_per_mm=px_per_mm, min_mm=min_mm)
    full = one.position.transpose("time", "space", "keypoint", "individual")
    one["position"] = full.copy(data=clean[..., None]).transpose(*one.position.dims)
    return one, info
