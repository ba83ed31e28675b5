"""Posture rules from a top-view pose: rearing and self-grooming (thresholds in mm, mm/s, s).

Clean pose in (see :mod:`behavior.rules`); positions in px, ``px_per_mm`` known.
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr
from scipy.ndimage import uniform_filter1d

from behavior.bouts import filter_bouts
from behavior.roles import (
    _below,
    _fps,
    _result,
    centroid_track,
    resolve_px_per_mm,
    select_individual,
    speed_for_threshold,
)
from pose.dataset import validate_pose
from pose.keypoints import select_keypoints

logger = logging.getLogger(__name__)


def _rolling_mean(x: np.ndarray, frames: int) -> np.ndarray:
    """Centred running mean over ``frames`` (NaN-aware; NaN where the window has no value)."""
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    num = uniform_filter1d(np.where(ok, x, 0.0), size=max(1, frames), axis=0, mode="nearest")
    den = uniform_filter1d(ok.astype(float), size=max(1, frames), axis=0, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _row_nanmean(x: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, x, 0.0).sum(axis=1) / n, np.nan)


def body_length_ratio(ds: xr.Dataset, *, individual: str | int | None = None) -> xr.DataArray:
    """Snout-to-tail-base distance divided by its session median (1 = typical stretched length)."""
    one = select_individual(ds, individual)
    snout = select_keypoints(one, "snout")[0]
    tail = select_keypoints(one, "tail_base")[0]
    d = np.hypot(*(centroid_track(one, [snout]) - centroid_track(one, [tail])).T)
    med = np.median(d[np.isfinite(d)]) if np.isfinite(d).any() else np.nan
    return xr.DataArray(d / med, dims=("time",), coords={"time": ds.coords["time"].values},
                        name="body_length_ratio")


def rearing_posture(
    ds: xr.Dataset, *, max_length_ratio: float = 0.75, smooth_s: float = 0.2,
    individual: str | int | None = None,
) -> np.ndarray:
    """``(time,)`` True where the snout-tail-base length (mean over ``smooth_s``) is below
    ``max_length_ratio`` of its session median: the top view of a mouse on its hind legs."""
    one = select_individual(ds, individual)
    ratio = _rolling_mean(body_length_ratio(one).values, int(round(smooth_s * _fps(one))))
    return _below(ratio, max_length_ratio)


def paw_snout_distance_mm(ds: xr.Dataset, *, px_per_mm: float, smooth_s: float = 0.5,
                          individual: str | int | None = None) -> np.ndarray:
    """``(time,)`` mean forepaw-snout distance (mm), running mean over ``smooth_s``.

    Raises ValueError when the pose has no forepaw keypoints.
    """
    one = select_individual(ds, individual)
    paws = select_keypoints(one, "forepaws")
    s = centroid_track(one, [select_keypoints(one, "snout")[0]])
    d = np.stack([np.hypot(*(centroid_track(one, [p]) - s).T) for p in paws], axis=1) / px_per_mm
    return _rolling_mean(_row_nanmean(d), int(round(smooth_s * _fps(one))))


def detect_rearing(
    ds: xr.Dataset,
    *,
    max_length_ratio: float = 0.75,
    max_body_speed_mm_s: float = 50.0,
    smooth_s: float = 0.2,
    min_bout_s: float = 0.3,
    merge_gap_s: float = 0.2,
    px_per_mm: float | None = None,
    individual: str | int | None = None,
) -> xr.DataArray:
    """Rearing (top view): the body foreshortened while the body centre is not travelling.

    Parameters
    ----------
    ds
        Clean pose Dataset with a snout and a tail-base keypoint.
    max_length_ratio
        Snout-tail-base distance (running mean over ``smooth_s``) below this fraction of
        its session median.
    max_body_speed_mm_s
        The body centre moves slower than this.
    smooth_s, min_bout_s, merge_gap_s
        Averaging window of the length, bout rules (s).
    px_per_mm, individual
        Calibration; individual (required with several).

    Notes
    -----
    Seen from above, a mouse standing on its hind legs looks 30-50 % shorter. A mouse
    curled while grooming also looks shorter (by 10-25 %), hence the 0.75 default. The
    session median is a good reference only when the animal spends most of the session
    on four legs.
    """
    validate_pose(ds, require_fps=True, context="detect_rearing")
    fps = _fps(ds)
    ppm = resolve_px_per_mm(ds, px_per_mm)
    one = select_individual(ds, individual)
    foreshortened = rearing_posture(one, max_length_ratio=max_length_ratio, smooth_s=smooth_s)
    body = select_keypoints(one, "body")
    bs, info = speed_for_threshold(one, body, px_per_mm=ppm, threshold_mm_s=max_body_speed_mm_s)
    rear = foreshortened & _below(bs, max_body_speed_mm_s)
    out = filter_bouts(rear, fps=fps, min_bout_s=min_bout_s, merge_gap_s=merge_gap_s)
    return _result(out, one, "rearing", {"max_length_ratio": max_length_ratio,
                                         "max_body_speed_mm_s": max_body_speed_mm_s,
                                         "smooth_s": smooth_s, "min_bout_s": min_bout_s,
                                         "px_per_mm": ppm, **info})


def detect_grooming(
    ds: xr.Dataset,
    *,
    max_body_speed_mm_s: float = 15.0,
    max_paw_snout_mm: float = 15.0,
    min_length_ratio: float = 0.75,
    smooth_s: float = 0.5,
    min_bout_s: float = 1.0,
    merge_gap_s: float = 0.5,
    px_per_mm: float | None = None,
    individual: str | int | None = None,
) -> xr.DataArray:
    """Self-grooming (top view): body still, forepaws at the snout, body not foreshortened.

    Parameters
    ----------
    ds
        Clean pose Dataset with forepaw, snout and tail-base keypoints.
    max_body_speed_mm_s
        The body centre (running mean over ``smooth_s``) is nearly still.
    max_paw_snout_mm
        Mean forepaw-snout distance (running mean over ``smooth_s``) below this.
    min_length_ratio
        Snout-tail-base length at least this fraction of its median (a mouse with its paws
        at the snout and a foreshortened body is rearing, paws at the chest).
    smooth_s, min_bout_s, merge_gap_s
        Averaging window and bout rules (s).
    px_per_mm, individual
        Calibration; individual (required with several).

    Raises
    ------
    ValueError
        Without forepaw keypoints: body still and head moving also catches sniffing in
        place, so the rule refuses rather than report that as grooming.

    Notes
    -----
    The rule uses where the paws are, not how fast they stroke: a top-view pose estimator's
    jitter (1-3 px) hides the 3-5 Hz, few-mm strokes at typical calibrations (~1 px/mm).
    """
    validate_pose(ds, require_fps=True, context="detect_grooming")
    fps = _fps(ds)
    ppm = resolve_px_per_mm(ds, px_per_mm)
    one = select_individual(ds, individual)
    head = select_keypoints(one, "head")
    body = [k for k in select_keypoints(one, "body") if k not in head]
    w = int(round(smooth_s * fps))
    bs, info = speed_for_threshold(one, body, px_per_mm=ppm, threshold_mm_s=max_body_speed_mm_s)
    bs = _rolling_mean(bs, w)
    dist = paw_snout_distance_mm(one, px_per_mm=ppm, smooth_s=smooth_s)
    ratio = _rolling_mean(body_length_ratio(one).values, w)
    groom = _below(bs, max_body_speed_mm_s) & _below(dist, max_paw_snout_mm) & (ratio >= min_length_ratio)
    out = filter_bouts(groom, fps=fps, min_bout_s=min_bout_s, merge_gap_s=merge_gap_s)
    return _result(out, one, "grooming", {"max_body_speed_mm_s": max_body_speed_mm_s,
                                          "max_paw_snout_mm": max_paw_snout_mm,
                                          "min_length_ratio": min_length_ratio,
                                          "smooth_s": smooth_s, "px_per_mm": ppm, **info})
