"""95 % intervals for open-field endpoints that reflect pose (tracking) uncertainty.

:func:`endpoint_intervals` gives distance, centre time and centre entries of one session a
bias-corrected (basic) parametric bootstrap interval:

1. **Error model from the track itself** (:func:`protocols.uncertainty_model.jitter_model`).
   The body-centre jitter variance is piecewise linear in the pose model's confidence,
   fitted to the squared residuals of a 5-frame Savitzky-Golay smooth (whose expectation is
   a known mix of the 5 frames' variances). No labelled test frames are needed
   (``sigma_px`` overrides it, e.g. with a model's own test-frame error). The overall
   scale's standard error (block means) is carried too: each replicate draws its own scale.
2. **Bootstrap worlds.** For distance, the "true" track of a world is the stand-in
   :func:`protocols.uncertainty_model.stillness_smooth`: a 2-D total-variation smooth of
   the frames the protocol keeps, which holds a still animal exactly still (a moving
   average keeps ~1/3 of the jitter, whose extra path the bias correction then misses).
   Every run of masked (low-confidence) frames gets its own plausible path in each world
   (:func:`impute_gaps`: the Hermite curve from the entry and exit velocities plus the
   deviation from its own curve of an observed stretch of the same track, alike in chord
   length and speeds), so what the animal may have done while it was not seen is part of
   the interval. For centre time and entries, each world is its own draw from the
   posterior of a constant-velocity Kalman model of the track
   (:func:`protocols.uncertainty_model.kalman_posterior_draws`, a simulation smoother):
   zone endpoints are decided frame by frame at a boundary, and a single smoothed track
   fixes where the animal was relative to it, which the data know only to about the
   jitter over the square root of the frames. Each world's endpoints, computed through the
   protocol's own path, are that world's truth ``theta_s``.
3. **Replicates.** One replicate per world = world + Gaussian jitter with the per-frame sd
   of step 1 (times the replicate's scale), on the frames the protocol keeps (the others
   are missing, as in the data); worlds and replicates go through
   :func:`features.filters.clean` (the protocol's filters),
   :func:`features.table.compute_feature_table` and the reducers of :mod:`features.table`
   in one vectorised call (replicates as individuals; chunked for long sessions).
4. **Basic interval around the truth, not around the biased value.** Distance from a noisy
   track is biased upward; ``theta* - theta_s`` carries that bias, so
   ``[theta_hat - q_hi(theta* - theta_s), theta_hat - q_lo(theta* - theta_s)]`` is centred on
   the bias-corrected value (:func:`basic_interval`). Counts (entries) take the shortest
   whole-number interval holding at least 95 % of the replicates (:func:`count_interval`),
   percentages are clipped to [0, 100].

Notes
-----
The calibration (coverage of the virtual mouse's truth at three pose-error levels) is
measured by ``bench/endpoint_uncertainty.py`` (table in
``bench/results/endpoint_uncertainty.md``). The error model is independent Gaussian jitter
per frame plus unseen runs: correlated pose errors (a keypoint stuck on the wrong body part
for seconds) are not in it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field

from features.filters import clean
from features.steps import CleanStep, ConfidenceMask
from features.table import (
    compute_feature_table,
    count_entries,
    percent_of_valid,
    valid_frames,
)
from features.zones import ZoneSet
from protocols.uncertainty_model import jitter_model, kalman_posterior_draws, stillness_smooth


class UncertaintyOptions(BaseModel):
    """``uncertainty:`` in a protocol YAML: give endpoints a pose-uncertainty interval.

    The built-in open field has ``uncertainty: {n_boot: 200}``; a protocol without the key
    (or with ``uncertainty: null``) gets no intervals. The cost is about ``4 n_boot`` extra
    passes of the protocol's cleaning and feature table per animal (two stand-in worlds;
    ~23 s CPU per 10-minute animal at 30 fps and 200 replicates). The coverage of the truth
    on the virtual mouse, per endpoint and error level, is in
    ``bench/results/endpoint_uncertainty.md``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    n_boot: int = Field(default=200, ge=20, le=5000)
    level: float = Field(default=0.95, gt=0.5, lt=1.0)
    seed: int = 0


#: Endpoints that get an interval.
INTERVAL_ENDPOINTS = ("distance_mm", "centre_time_pct", "centre_entries")
#: Per-frame rows (frames x replicates) of one vectorised pass; longer sessions go in chunks.
MAX_ROWS = 2_000_000


def _endpoints(ds: xr.Dataset, steps: list[CleanStep] | tuple[CleanStep, ...], zones: ZoneSet,
               centre: str, px_per_mm: float, min_dwell_s: float) -> pd.DataFrame:
    """Distance, centre time and entries of every individual of ``ds`` via the protocol path."""
    cl = clean(ds, steps) if steps else ds
    table = compute_feature_table(cl, zones, keypoint=centre, px_per_mm=px_per_mm, min_dwell_s=min_dwell_s,
                                  families=["speed", "distance", "zones"])
    # the table is individual-major (n_t rows each): reduce arrays, not 2 n_boot pandas groups;
    # distance is features.table.total_distance's rule on arrays (tests check they agree)
    n_ind, n_t = cl.sizes["individual"], cl.sizes["time"]
    valid = valid_frames(table).reshape(n_ind, n_t)
    dist = table["distance_mm"].to_numpy(float).reshape(n_ind, n_t)
    pair = (valid[:, 1:] & valid[:, :-1]).any(axis=1) if n_t > 1 else np.zeros(n_ind, bool)
    total = np.where(pair, np.fmax.reduce(np.where(np.isfinite(dist), dist, -np.inf), axis=1), np.nan)
    inside = table["in_centre"].to_numpy(bool).reshape(n_ind, n_t) if "in_centre" in table else None
    rows = []
    for i in range(n_ind):
        row = {"distance_mm": float(total[i])}
        if inside is not None:
            row["centre_time_pct"] = percent_of_valid(inside[i], valid[i])
            row["centre_entries"] = float(count_entries(inside[i]))
        rows.append(row)
    return pd.DataFrame(rows)


def _gap_runs(observed: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of unobserved frames with an observed frame on both sides."""
    o = np.asarray(observed, bool)
    d = np.diff(np.concatenate([[0], (~o).astype(int), [0]]))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True) if a > 0 and b < o.size]


def _hermite(p0: np.ndarray, v0: np.ndarray, p1: np.ndarray, v1: np.ndarray, m: int) -> np.ndarray:
    """``(..., m, 2)`` cubic Hermite curve from ``p0`` (velocity ``v0`` px/frame) to ``p1`` (``v1``)."""
    u = np.linspace(0.0, 1.0, m)[:, None]
    h00, h10, h01, h11 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u, -2 * u**3 + 3 * u**2, u**3 - u**2
    k = m - 1
    return (h00 * p0[..., None, :] + h10 * k * v0[..., None, :] + h01 * p1[..., None, :]
            + h11 * k * v1[..., None, :])


def _edge_velocities(track: np.ndarray, obs: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Velocity (px/frame) into frame ``a`` and out of frame ``b`` (chord velocity where unknown)."""
    n = len(track)
    chord_v = (track[b] - track[a]) / np.maximum(b - a, 1)[:, None]
    ia, ib = np.clip(a - 1, 0, n - 1), np.clip(b + 1, 0, n - 1)
    ok0 = ((a - 1) >= 0) & obs[ia]
    ok1 = ((b + 1) < n) & obs[ib]
    v0 = np.where(ok0[:, None], track[a] - track[ia], chord_v)
    v1 = np.where(ok1[:, None], track[ib] - track[b], chord_v)
    return v0, v1


def impute_gaps(track: np.ndarray, observed: np.ndarray, n_draws: int, rng: np.random.Generator, *,
                n_donors: int = 20) -> tuple[np.ndarray, int]:
    """Random plausible paths through the unobserved runs of a ``(time, 2)`` track.

    Each interior run of unobserved frames (a masked, low-confidence burst) is filled with the
    cubic Hermite curve that leaves the last observed frame with its velocity and reaches the
    next observed frame with that frame's velocity, plus the deviation from its own Hermite
    curve of a stretch of the same length taken from the observed part of the same track:
    one of the ``n_donors`` stretches most alike in chord length and entry and exit speeds,
    turned onto the gap's chord and mirrored across it at random.

    Runs at the start or end of the session (one observed side only) get an observed
    stretch of the same length anchored at the first (last) observed frame, turned at random.

    Returns
    -------
    tuple
        ``(time, 2, n_draws)`` tracks (observed frames unchanged) and the number of runs no
        observed stretch was long enough for (left on the Hermite curve, or held still at an end).
    """
    out = np.repeat(track[:, :, None], n_draws, axis=2)
    obs = np.asarray(observed, bool) & np.isfinite(track).all(axis=1)
    bad = np.concatenate([[0], np.cumsum(~obs)])  # bad[j + m] - bad[j]: unobserved frames in [j, j + m)
    no_donor = 0
    for a, b in _gap_runs(obs):
        m = b - a + 2  # the gap and its two observed neighbours a - 1 and b
        v0, v1 = _edge_velocities(track, obs, np.array([a - 1]), np.array([b]))
        base = _hermite(track[a - 1], v0[0], track[b], v1[0], m)  # (m, 2)
        j = np.flatnonzero(bad[m:] - bad[:-m] == 0) if m <= len(track) else np.array([], int)
        if j.size == 0:
            no_donor += 1
            out[a:b] = base[1:-1, :, None]
            continue
        chord_gap = track[b] - track[a - 1]
        dv0, dv1 = _edge_velocities(track, obs, j, j + m - 1)
        chords = track[j + m - 1] - track[j]
        k = m - 1
        f_d = np.stack([np.hypot(*chords.T), k * np.hypot(*dv0.T), k * np.hypot(*dv1.T)], axis=-1)
        f_g = np.array([np.hypot(*chord_gap), k * np.hypot(*v0[0]), k * np.hypot(*v1[0])])
        dist = np.linalg.norm(f_d - f_g, axis=1)
        near = np.argsort(dist)[:n_donors]
        pick = rng.choice(near, n_draws)
        jj = j[pick]
        win = track[jj[:, None] + np.arange(m)]  # (draw, m, 2)
        dev = win - _hermite(win[:, 0], dv0[pick], win[:, -1], dv1[pick], m)
        c = chords[pick]
        tiny = (np.hypot(*chord_gap) < 1e-9) | (np.hypot(c[:, 0], c[:, 1]) < 1e-9)
        u = np.where(tiny[:, None], [1.0, 0.0], c / np.where(tiny, 1.0, np.hypot(c[:, 0], c[:, 1]))[:, None])
        along = (dev * u[:, None]).sum(-1)
        perp = dev[..., 1] * u[:, None, 0] - dev[..., 0] * u[:, None, 1]
        perp = np.where((rng.random(n_draws) < 0.5)[:, None], -perp, perp)  # a left or a right wiggle
        g = np.where(tiny, rng.uniform(-np.pi, np.pi, n_draws), np.arctan2(chord_gap[1], chord_gap[0]))
        dx = along * np.cos(g)[:, None] - perp * np.sin(g)[:, None]
        dy = along * np.sin(g)[:, None] + perp * np.cos(g)[:, None]
        fill = base[None] + np.stack([dx, dy], axis=-1)  # (draw, m, 2)
        out[a:b] = fill[:, 1:-1].transpose(1, 2, 0)
    no_donor += _impute_ends(track, obs, out, rng, bad)
    return out, no_donor


def _impute_ends(track: np.ndarray, obs: np.ndarray, out: np.ndarray, rng: np.random.Generator,
                 bad: np.ndarray) -> int:
    """Fill the unobserved runs at the start and end of ``out`` in place: an observed stretch
    of the same track, anchored at the first (last) observed frame and turned at random.
    Returns 1 per end run no stretch was long enough for (held at the anchor)."""
    n, n_draws = len(track), out.shape[2]
    seen = np.flatnonzero(obs)
    if seen.size == 0:
        return 0
    missed = 0
    for lo, hi, anchor in ((0, seen[0], seen[0]), (seen[-1] + 1, n, seen[-1])):
        m = hi - lo + 1  # the run and its anchor
        if hi <= lo:
            continue
        j = np.flatnonzero(bad[m:] - bad[:-m] == 0) if m <= n else np.array([], int)
        if j.size == 0:
            out[lo:hi] = track[anchor][None, :, None]
            missed += 1
            continue
        win = track[rng.choice(j, n_draws)[:, None] + np.arange(m)]  # (draw, m, 2)
        dev = win - (win[:, -1:] if anchor == hi else win[:, :1])
        g = rng.uniform(-np.pi, np.pi, n_draws)[:, None]
        dx = dev[..., 0] * np.cos(g) - dev[..., 1] * np.sin(g)
        dy = dev[..., 0] * np.sin(g) + dev[..., 1] * np.cos(g)
        fill = track[anchor][None, None] + np.stack([dx, dy], axis=-1)
        out[lo:hi] = (fill[:, :-1] if anchor == hi else fill[:, 1:]).transpose(1, 2, 0)
    return missed


def zone_stand_ins(xy: np.ndarray, observed: np.ndarray, sd: np.ndarray, fps: float, n_draws: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``(time, 2, n_draws)`` worlds for the zone endpoints: draws from the Kalman posterior.

    :func:`protocols.uncertainty_model.kalman_posterior_draws` (the posterior's own bridge
    through every unobserved run between observed frames); the unseen runs at the session's
    ends get an observed stretch of the track anchored at each draw's first (last) seen frame,
    as :func:`impute_gaps` does.
    """
    mean, draws = kalman_posterior_draws(xy, observed, sd, fps, n_draws, rng)
    obs = np.asarray(observed, bool) & np.isfinite(mean).all(axis=1)
    seen = np.flatnonzero(obs)
    if seen.size == 0 or (seen[0] == 0 and seen[-1] == len(xy) - 1):
        return draws
    ends = np.repeat(mean[:, :, None], n_draws, axis=2)
    _impute_ends(mean, obs, ends, rng, np.concatenate([[0], np.cumsum(~obs)]))
    a, b = seen[0], seen[-1]
    draws[:a] = ends[:a] + (draws[a] - mean[a, :, None])[None]
    draws[b + 1:] = ends[b + 1:] + (draws[b] - mean[b, :, None])[None]
    return draws


def _replicate_dataset(pos: np.ndarray, conf: np.ndarray, one: xr.Dataset, centre: str) -> xr.Dataset:
    """``(time, space, n)`` tracks as an ``n``-individual one-keypoint pose Dataset."""
    n = pos.shape[2]
    return xr.Dataset(
        {"position": (("time", "space", "keypoint", "individual"), pos[:, :, None, :]),
         "confidence": (("time", "keypoint", "individual"), conf[:, None, :])},
        coords={"time": one["time"].values, "space": ["x", "y"], "keypoint": [centre],
                "individual": [f"b{i}" for i in range(n)]},
        attrs=dict(one.attrs))


def _replicate_differences(worlds: np.ndarray, boot: np.ndarray, conf: np.ndarray, one: xr.Dataset,
                           steps, zones: ZoneSet, centre: str, px_per_mm: float,
                           min_dwell_s: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``theta(replicate) - theta(world)`` and ``theta(world)`` per replicate, in chunks so that
    feature tables stay small."""
    n, _, n_boot = worlds.shape
    k = max(10, int(MAX_ROWS // (2 * n)))
    parts, world_parts = [], []
    for c in range(0, n_boot, k):
        sl = slice(c, min(c + k, n_boot))
        m = sl.stop - sl.start
        cf = np.ones((n, 2 * m))
        cf[:, m:] = conf[:, None]
        ep = _endpoints(_replicate_dataset(np.concatenate([worlds[:, :, sl], boot[:, :, sl]], axis=2), cf, one, centre),
                        steps, zones, centre, px_per_mm, min_dwell_s)
        parts.append(ep.iloc[m:].reset_index(drop=True) - ep.iloc[:m].reset_index(drop=True))
        world_parts.append(ep.iloc[:m].reset_index(drop=True))
    return pd.concat(parts, ignore_index=True), pd.concat(world_parts, ignore_index=True)


def bootstrap_differences(
    ds: xr.Dataset,
    steps: list[CleanStep] | tuple[CleanStep, ...],
    zones: ZoneSet,
    *,
    centre: str,
    px_per_mm: float,
    min_dwell_s: float = 0.0,
    n_boot: int = 200,
    sigma_px: float | None = None,
    seed: int = 0,
    return_worlds: bool = False,
) -> tuple[pd.Series, pd.DataFrame, dict[str, float]] | tuple[pd.Series, pd.DataFrame, dict[str, float], pd.DataFrame]:
    """The bootstrap of :func:`endpoint_intervals`: the estimate and ``theta* - theta_s``.

    Parameters are those of :func:`endpoint_intervals`. Returns ``(theta_hat, diff, info)``:
    the protocol's endpoints on the session, one row per replicate of
    ``theta(replicate) - theta(world)`` per endpoint, and ``{"sigma_px", "sigma_scale_se",
    "gap_pct"}``; with ``return_worlds`` also ``theta(world)`` per replicate (the zone
    endpoints' worlds are draws from the Kalman posterior, so these are the posterior's own
    centre time and entries).
    """
    one = ds.isel(individual=[0]).sel(keypoint=[centre])
    fps = float(ds.attrs["fps"])
    theta_hat = _endpoints(one, steps, zones, centre, px_per_mm, min_dwell_s).iloc[0]
    xy = one["position"].values[:, :2, 0, 0]
    conf = one["confidence"].values[:, 0, 0]
    # the frames the protocol keeps (its confidence mask) are the data; the rest is unseen
    masked = clean(one, [s for s in steps if isinstance(s, ConfidenceMask)])
    observed = np.isfinite(masked["position"].values[:, :2, 0, 0]).all(axis=1)
    if sigma_px is None:
        sd, scale_se, _ = jitter_model(xy, conf, observed)
        scale_se = float(np.nan_to_num(scale_se, nan=0.0))
    else:
        sd, scale_se = np.full(len(xy), float(sigma_px)), 0.0
    n = len(xy)
    rng = np.random.default_rng(seed)
    # the jitter scale is itself estimated: each replicate draws its own (log-normal, the
    # estimate's standard error), so the interval carries the bias correction's uncertainty
    scale = np.exp(scale_se * rng.standard_normal(n_boot) - 0.5 * scale_se**2)
    noise = sd[:, None, None] * scale[None, None, :] * rng.standard_normal((n, 2, n_boot))
    # distance: the still stand-in (any jitter left in a world is path the bias correction
    # misses), a different plausible path through every unobserved run in each replicate
    worlds, _ = impute_gaps(stillness_smooth(xy, observed, sd, fps), observed, n_boot, rng)
    boot = np.where(observed[:, None, None], worlds + noise, np.nan)
    diff, _ = _replicate_differences(worlds, boot, conf, one, steps, zones, centre, px_per_mm, min_dwell_s)
    # zone endpoints: each replicate's world is its own draw from the Kalman posterior, so the
    # bootstrap carries where the animal may have been relative to a zone boundary
    zone_worlds = zone_stand_ins(xy, observed, sd, fps, n_boot, rng)
    boot = np.where(observed[:, None, None], zone_worlds + noise, np.nan)
    zdiff, theta_s = _replicate_differences(zone_worlds, boot, conf, one, steps, zones, centre, px_per_mm,
                                            min_dwell_s)
    for e in zdiff.columns:
        if e != "distance_mm":
            diff[e] = zdiff[e]
    known = np.isfinite(worlds[:, :, 0]).all(axis=1)
    info = {"sigma_px": float(np.nanmedian(sd[observed])) if observed.any() else float("nan"),
            "sigma_scale_se": scale_se, "gap_pct": float(100 * (known & ~observed).mean())}
    if return_worlds:
        return theta_hat, diff, info, theta_s
    return theta_hat, diff, info


def count_interval(value: float, diff: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The shortest whole-number interval that holds at least ``level`` of a count's bootstrap.

    The candidate true counts of the replicates are ``value - diff`` (whole numbers). Of the
    intervals ``[a, b]`` of them that hold at least ``level`` of the replicates, the
    narrowest is taken; among equally narrow ones the one holding most replicates, then the
    one whose centre is nearest the bias-corrected value ``value - mean(diff)``.

    Notes
    -----
    This is the highest-posterior-mass set of integers, kept contiguous. The equal-tailed
    interval (each tail at most ``(1 - level) / 2``) is one of the candidates, so this one
    is never wider; it is narrower when both tails are just over ``(1 - level) / 2``, e.g.
    3.5 % of the replicates one entry too many and 3.5 % one too few, where the equal-tailed
    interval must hold all three values (100 %) and this one holds 96.5 %. A count's
    interval still cannot hold less than its most frequent value: when more than ``level``
    of the replicates agree with the estimate the interval is ``[k, k]`` and covers exactly
    when the count is right (``bench/results/endpoint_uncertainty.md``).
    """
    d = np.asarray(diff, float)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.isfinite(value):
        return float("nan"), float("nan")
    # ascending candidate counts (a reflected difference below 0 is a count of 0)
    cand, counts = np.unique(np.maximum(value - d, 0.0), return_counts=True)
    cum = np.concatenate([[0], np.cumsum(counts)])
    i, j = np.triu_indices(cand.size)  # every interval [cand[i], cand[j]]
    mass = (cum[j + 1] - cum[i]) / d.size
    ok = mass >= level - 1e-12
    width = cand[j] - cand[i]
    off_centre = np.abs((cand[i] + cand[j]) / 2 - (value - d.mean()))
    best = np.lexsort((off_centre[ok], -mass[ok], width[ok]))[0]
    return float(cand[i[ok][best]]), float(cand[j[ok][best]])


def basic_interval(endpoint: str, value: float, diff: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The basic bootstrap interval ``[value - q_hi(diff), value - q_lo(diff)]`` of one endpoint.

    Counts (``centre_entries``) have whole-number differences: their interval is
    :func:`count_interval`, the shortest whole-number interval holding at least ``level``
    of the replicates (never wider than the equal-tailed one of exact quantiles; no
    interpolation, no rounding outward). Percentages are clipped to [0, 100], lengths and
    counts at 0.
    """
    d = np.asarray(diff, float)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.isfinite(value):
        return float("nan"), float("nan")
    if endpoint == "centre_entries":
        return count_interval(value, d, level)
    a = (1 - level) / 2
    lo = value - float(np.quantile(d, 1 - a))
    hi = value - float(np.quantile(d, a))
    if endpoint.endswith("_pct"):
        return max(0.0, lo), min(100.0, hi)
    return max(0.0, lo), hi


def equal_tailed_count_interval(value: float, diff: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """A count's equal-tailed basic interval (exact, inverted-CDF quantiles: each tail at most
    ``(1 - level) / 2``); :func:`count_interval` replaced it (kept for the bench's comparison)."""
    d = np.asarray(diff, float)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.isfinite(value):
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo = value - float(np.quantile(d, 1 - a, method="inverted_cdf"))
    hi = value - float(np.quantile(d, a, method="inverted_cdf"))
    return max(0.0, lo), max(0.0, hi)


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
        Bootstrap replicates (cost: two vectorised passes over ``2 n_boot`` tracks).
    level
        Interval level.
    sigma_px
        Jitter sd per coordinate (px) to use instead of the estimate from the track.
    seed
        Random seed.

    Returns
    -------
    pandas.DataFrame
        ``endpoint, value, lo, hi, bias, sigma_px, sigma_scale_se, gap_pct``: ``value`` is
        the protocol's estimate on the session, ``bias`` the bootstrap estimate of its bias
        (``value - bias`` is the corrected value the interval is centred on), ``gap_pct``
        the share of frames the error model treats as unobserved (imputed in each replicate).
    """
    theta_hat, diff, info = bootstrap_differences(ds, steps, zones, centre=centre, px_per_mm=px_per_mm,
                                                  min_dwell_s=min_dwell_s, n_boot=n_boot, sigma_px=sigma_px,
                                                  seed=seed)
    rows = []
    for e in INTERVAL_ENDPOINTS:
        if e not in diff:
            continue
        d = diff[e].to_numpy(float)
        v = float(theta_hat[e])
        lo, hi = basic_interval(e, v, d, level)
        bias = float(np.nanmean(d)) if np.isfinite(lo) else float("nan")
        rows.append({"endpoint": e, "value": v, "lo": lo, "hi": hi, "bias": bias})
    out = pd.DataFrame(rows)
    for k, v in info.items():
        out[k] = v
    return out


def interval_columns(raw: xr.Dataset, protocol, zones: ZoneSet, px_per_mm: float) -> dict[str, float]:
    """``<endpoint>_lo`` / ``<endpoint>_hi`` for a session's endpoints that have an interval.

    ``raw`` is the session's aliased pose before cleaning, ``protocol`` a
    :class:`protocols.schema.Protocol` with ``uncertainty`` set; only endpoints the protocol
    lists and :data:`INTERVAL_ENDPOINTS` covers get columns (none without a ``centre``
    zone for the centre endpoints).
    """
    opt = protocol.uncertainty
    wanted = [e for e in INTERVAL_ENDPOINTS if e in protocol.endpoints]
    if opt is None or not wanted:
        return {}
    iv = endpoint_intervals(raw, protocol.filters, zones, centre=protocol.bodyparts.centre, px_per_mm=px_per_mm,
                            min_dwell_s=protocol.min_dwell_s, n_boot=opt.n_boot, level=opt.level, seed=opt.seed)
    out: dict[str, float] = {}
    for r in iv.itertuples():
        if r.endpoint in wanted:
            out[f"{r.endpoint}_lo"], out[f"{r.endpoint}_hi"] = float(r.lo), float(r.hi)
    return out


def interval_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint with ``_lo``/``_hi`` columns: interval width vs the group difference.

    Returns ``endpoint, n, median_width, group_difference, wider_than_difference``:
    ``group_difference`` is the largest minus the smallest group mean (``group`` column),
    ``wider_than_difference`` flags an endpoint whose median per-animal interval is wider than
    that difference (the pose uncertainty alone could account for the group effect).
    """
    rows = []
    for e in INTERVAL_ENDPOINTS:
        if f"{e}_lo" not in table or f"{e}_hi" not in table or e not in table:
            continue
        width = pd.to_numeric(table[f"{e}_hi"], errors="coerce") - pd.to_numeric(table[f"{e}_lo"], errors="coerce")
        value = pd.to_numeric(table[e], errors="coerce")
        means = value.groupby(table["group"].astype(str)).mean().dropna() if "group" in table else pd.Series(dtype=float)
        diff = float(means.max() - means.min()) if len(means) > 1 else float("nan")
        med = float(np.nanmedian(width)) if width.notna().any() else float("nan")
        rows.append({"endpoint": e, "n": int(width.notna().sum()), "median_width": med, "group_difference": diff,
                     "wider_than_difference": bool(np.isfinite(diff) and np.isfinite(med) and med > diff)})
    return pd.DataFrame(rows, columns=["endpoint", "n", "median_width", "group_difference", "wider_than_difference"])
