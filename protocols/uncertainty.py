"""95 % intervals for open-field endpoints that reflect pose (tracking) uncertainty.

:func:`endpoint_intervals` gives distance, centre time and centre entries of one session a
bias-corrected (basic) parametric bootstrap interval:

1. **Error model from the track itself.** The body-centre jitter sd (px, per coordinate) is
   estimated per confidence bin by :func:`behavior.noise.residual_jitter` (robust MAD of the
   residual of a 5-frame Savitzky-Golay smooth); a bin with too few frames takes the pooled
   value. No labelled test frames are needed (``sigma_px`` overrides the estimate, e.g. with
   a model's own test-frame error from ``evaluation.json``).
2. **Bootstrap world.** The "true" track of the bootstrap world is the centre track gap-filled
   and smoothed by a centred 0.3 s moving average (:data:`SMOOTH_S`); its endpoints, computed
   through the protocol's own path, are the bootstrap-world truth ``theta_s``.
3. **Replicates.** ``n_boot`` tracks = smooth track + Gaussian jitter with the per-frame sd of
   step 1, keeping the session's confidences (so the protocol masks the same frames); all
   replicates go through :func:`features.filters.clean` (the protocol's filters),
   :func:`features.table.compute_feature_table` and the reducers of :mod:`features.table`
   in one vectorised call (replicates as individuals).
4. **Basic interval around the truth, not around the biased value.** Distance from a noisy
   track is biased upward; ``theta* - theta_s`` carries that bias, so
   ``[theta_hat - q_hi(theta* - theta_s), theta_hat - q_lo(theta* - theta_s)]`` is centred on
   the bias-corrected value. Counts (entries) get ``floor``/``ceil`` bounds, percentages are
   clipped to [0, 100].

The calibration (coverage of the virtual mouse's truth at three pose-error levels) is
measured by ``bench/endpoint_uncertainty.py`` (table in
``bench/results/endpoint_uncertainty.md``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from behavior.noise import residual_jitter
from features.filters import clean, interpolate_gaps
from features.steps import CleanStep
from features.table import (
    compute_feature_table,
    count_entries,
    percent_of_valid,
    total_distance,
    valid_frames,
)
from features.zones import ZoneSet

#: Endpoints that get an interval.
INTERVAL_ENDPOINTS = ("distance_mm", "centre_time_pct", "centre_entries")
#: Confidence bin edges of the error model.
CONFIDENCE_EDGES = (0.0, 0.5, 0.7, 0.9, 1.01)
#: Smoothing of the bootstrap world's true track (s): a centred moving average (0.1 s left
#: too much jitter in s: distance bias under-corrected by ~25 mm / min at 0.7 px jitter).
SMOOTH_S = 0.3


def _endpoints(ds: xr.Dataset, steps: list[CleanStep] | tuple[CleanStep, ...], zones: ZoneSet,
               centre: str, px_per_mm: float, min_dwell_s: float) -> pd.DataFrame:
    """Distance, centre time and entries of every individual of ``ds`` via the protocol path."""
    cl = clean(ds, steps) if steps else ds
    table = compute_feature_table(cl, zones, keypoint=centre, px_per_mm=px_per_mm, min_dwell_s=min_dwell_s,
                                  families=["speed", "distance", "zones"])
    rows = []
    for _, g in table.groupby("individual", sort=False):
        row = {"distance_mm": total_distance(g, "mm")}
        if "in_centre" in g:
            c = g["in_centre"].to_numpy(bool)
            row["centre_time_pct"] = percent_of_valid(c, valid_frames(g))
            row["centre_entries"] = float(count_entries(c))
        rows.append(row)
    return pd.DataFrame(rows)


def moving_average(xy: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of ``(time, 2)`` with edge padding (``window`` odd)."""
    k = np.ones(window) / window
    return np.column_stack([np.convolve(np.pad(xy[:, i], window // 2, mode="edge"), k, mode="valid")
                            for i in range(xy.shape[1])])


def error_model(xy: np.ndarray, conf: np.ndarray, *, edges=CONFIDENCE_EDGES) -> tuple[np.ndarray, list[dict]]:
    """Per-frame jitter sd (px) from the track itself, per confidence bin.

    Returns the ``(time,)`` sd and one ``{"confidence", "sigma_px", "n"}`` row per bin.
    """
    pooled, _ = residual_jitter(xy)
    pooled = 0.0 if not np.isfinite(pooled) else pooled
    sd = np.full(len(xy), pooled)
    rows = []
    c = np.nan_to_num(conf, nan=1.0)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (c >= lo) & (c < hi)
        s, n = residual_jitter(xy, m) if m.sum() >= 20 else (float("nan"), int(m.sum()))
        s = s if np.isfinite(s) else pooled
        sd[m] = s
        rows.append({"confidence": f"[{lo:g}, {min(hi, 1.0):g})", "sigma_px": s, "n": n})
    return sd, rows


def endpoint_intervals(
    ds: xr.Dataset,
    steps: list[CleanStep] | tuple[CleanStep, ...],
    zones: ZoneSet,
    *,
    centre: str,
    px_per_mm: float,
    min_dwell_s: float = 0.0,
    n_boot: int = 200,
    level: float = 0.95,
    sigma_px: float | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Bias-corrected 95 % bootstrap intervals of distance, centre time and centre entries.

    Parameters
    ----------
    ds
        One-animal pose, aliased to the protocol's names, *before* cleaning (px, fps set).
    steps
        The protocol's cleaning steps (``protocol.filters``).
    zones
        The compiled zones (``protocols.geometry.compile_zones``); needs a ``centre`` zone
        for centre time and entries.
    centre
        The protocol's centre keypoint.
    px_per_mm
        Scale.
    min_dwell_s
        The protocol's zone dwell time (``protocol.min_dwell_s``; its default 0).
    n_boot
        Bootstrap replicates (cost: one vectorised pass over ``n_boot`` tracks).
    level
        Interval level.
    sigma_px
        Jitter sd per coordinate (px) to use instead of the estimate from the track.
    seed
        Random seed.

    Returns
    -------
    pandas.DataFrame
        ``endpoint, value, lo, hi, bias, sigma_px``: ``value`` is the protocol's estimate on
        the session, ``bias`` the bootstrap estimate of its bias (``value - bias`` is the
        corrected value the interval is centred on).
    """
    one = ds.isel(individual=[0]).sel(keypoint=[centre])
    fps = float(ds.attrs["fps"])
    theta_hat = _endpoints(one, steps, zones, centre, px_per_mm, min_dwell_s).iloc[0]
    xy = one["position"].values[:, :2, 0, 0]
    conf = one["confidence"].values[:, 0, 0]
    # the bootstrap world's true track: masked as the protocol masks, gap-filled, smoothed
    masked = clean(one, [s for s in steps if type(s).__name__ == "ConfidenceMask"])
    filled = interpolate_gaps(masked, max_gap_s=1e9)["position"].values[:, :2, 0, 0]
    known = np.isfinite(filled).all(axis=1)
    w = max(1, int(round(SMOOTH_S * fps)) | 1)
    s = filled.copy()
    if known.sum() > w:
        s[known] = moving_average(filled[known], w)
    if sigma_px is None:
        sd, _ = error_model(np.where(np.isfinite(xy), xy, np.nan), conf)
    else:
        sd = np.full(len(xy), float(sigma_px))
    rng = np.random.default_rng(seed)
    n = len(xy)
    boot = s[:, :, None] + sd[:, None, None] * rng.standard_normal((n, 2, n_boot))
    boot[~known] = np.nan
    pos = np.concatenate([s[:, :, None], boot], axis=2)[:, :, None, :]  # (time, space, 1, 1 + n_boot)
    cf = np.repeat(conf[:, None, None], n_boot + 1, axis=2)
    world = xr.Dataset(
        {"position": (("time", "space", "keypoint", "individual"), pos),
         "confidence": (("time", "keypoint", "individual"), cf)},
        coords={"time": one["time"].values, "space": ["x", "y"], "keypoint": [centre],
                "individual": [f"b{i}" for i in range(n_boot + 1)]},
        attrs=dict(one.attrs))
    # theta_s: the smooth track with full confidence passes the mask unchanged
    world["confidence"][:, :, 0] = 1.0
    ep = _endpoints(world, steps, zones, centre, px_per_mm, min_dwell_s)
    theta_s, star = ep.iloc[0], ep.iloc[1:]
    a = (1 - level) / 2
    rows = []
    for e in INTERVAL_ENDPOINTS:
        if e not in ep:
            continue
        d = star[e].to_numpy(float) - theta_s[e]
        d = d[np.isfinite(d)]
        v = float(theta_hat[e])
        if d.size == 0 or not np.isfinite(v):
            rows.append({"endpoint": e, "value": v, "lo": np.nan, "hi": np.nan, "bias": np.nan})
            continue
        lo, hi = v - np.quantile(d, 1 - a), v - np.quantile(d, a)
        if e == "centre_entries":
            lo, hi = max(0.0, float(np.floor(lo))), float(np.ceil(hi))
        elif e.endswith("_pct"):
            lo, hi = max(0.0, lo), min(100.0, hi)
        else:
            lo = max(0.0, lo)
        rows.append({"endpoint": e, "value": v, "lo": float(lo), "hi": float(hi), "bias": float(d.mean())})
    out = pd.DataFrame(rows)
    out["sigma_px"] = float(np.nanmedian(sd))
    return out
