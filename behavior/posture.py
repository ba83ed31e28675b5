"""Posture rules from a top-view pose: rearing and self-grooming (thresholds in mm, mm/s, s).

Clean pose in (see :mod:`behavior.rules`); positions in px, ``px_per_mm`` known.
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from behavior.bouts import filter_bouts
from behavior.noise import estimate_noise_floor
from behavior.roles import (
    _below,
    _fps,
    _result,
    centroid_track,
    resolve_px_per_mm,
    select_individual,
)
from pose.dataset import validate_pose
from pose.keypoints import select_keypoints

logger = logging.getLogger(__name__)

#: grooming's relative forepaw cue: the forepaws nearer the snout than this fraction of their
#: distance while the mouse walks (see :func:`detect_grooming`, ``max_paw_snout_ratio``)
PAW_SNOUT_RATIO = 0.8


def _rolling_median(x: np.ndarray, frames: int) -> np.ndarray:
    """Centred running median over ``frames`` (made odd; NaN-aware; a NaN frame stays NaN).

    The posture rules average with a median: a short-trained pose model's gross errors (a
    keypoint 20-150 px off, often with a confidence the mask lets through) in a minority of
    a window's frames do not move it.
    """
    from features.filters import nan_median_filter

    n = max(1, int(frames))
    n += 1 - n % 2
    return nan_median_filter(np.asarray(x, dtype=float)[:, None], n)[:, 0]


def median_displacement_speed(xyk: np.ndarray, *, fps: float, window_s: float) -> tuple[np.ndarray, float]:
    """Speed ``(time,)`` of a keypoint group from the displacement of its running-median position.

    Each keypoint's track is median-filtered over about half of ``window_s``; the group's
    position is the mean over its known keypoints (at least half); the speed at ``t`` is the
    distance between that position ``k`` frames before and ``k`` frames after, over ``2k`` frames
    (``2k`` about ``window_s``). Returns the speed (units/s) and the factor ``c`` such that
    white jitter ``sigma`` per coordinate gives each velocity coordinate an s.d. of about
    ``c * sigma`` (median of ``m`` samples: ``sigma * sqrt(pi / (2 m))``).

    Notes
    -----
    A gross error (a keypoint 20-150 px off in a minority of frames, which a confidence mask
    does not always catch) moves a slope fit by its full size; it does not move a median.
    """
    from behavior.noise import _mean_over_known, _min_known
    from features.filters import nan_median_filter

    x = np.asarray(xyk, dtype=float)[:, :2]
    n, _, k_kp = x.shape
    k = max(1, int(round(window_s * fps / 2)))
    m = max(1, k - 1 + k % 2)  # odd, about half the window
    med = nan_median_filter(x.reshape(n, -1), m).reshape(x.shape) if m > 1 else x
    c = _mean_over_known(med, _min_known(k_kp))
    v = np.full((n, 2), np.nan)
    v[k:n - k] = (c[2 * k:] - c[:n - 2 * k]) * fps / (2 * k)
    factor = float(np.sqrt(np.pi / (2 * m)) * np.sqrt(2) * fps / (2 * k))
    return np.hypot(v[:, 0], v[:, 1]), factor


def noise_speed_from_sd(sd_per_coordinate: float, quantile: float = 0.99) -> float:
    """Rayleigh quantile of a speed whose two velocity coordinates have this s.d."""
    return float(sd_per_coordinate * np.sqrt(-2.0 * np.log1p(-quantile)))


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


def head_length_ratio(ds: xr.Dataset, *, reference: np.ndarray | None = None,
                      individual: str | int | None = None) -> xr.DataArray:
    """Snout-to-ear-midpoint distance divided by its median (1 = head held level).

    The median is over the ``reference`` frames (boolean ``(time,)``, e.g. walking, when the
    head is level) where it holds at least 1 s of known lengths, else over the session.
    Seen from above, a mouse that bows its head (face grooming, the snout down at the
    forepaws) shows a shorter head: the snout comes toward the ears. Raises ValueError
    without a snout and both ears.
    """
    one = select_individual(ds, individual)
    snout = select_keypoints(one, "snout")[0]
    ears = [select_keypoints(one, side)[0] for side in ("left_ear", "right_ear")]
    d = np.hypot(*(centroid_track(one, [snout]) - centroid_track(one, ears)).T)
    known = np.isfinite(d)
    if reference is not None and (known & reference).sum() >= _fps(one):
        known &= reference
    med = np.median(d[known]) if known.any() else np.nan
    return xr.DataArray(d / med, dims=("time",), coords={"time": ds.coords["time"].values},
                        name="head_length_ratio")


def walking_frames(ds: xr.Dataset, *, px_per_mm: float, min_speed_mm_s: float = 30.0, window_s: float = 0.5,
                   individual: str | int | None = None) -> np.ndarray:
    """``(time,)`` True where the body's running-median position moves faster than
    ``min_speed_mm_s`` over ``window_s`` (:func:`median_displacement_speed`): the mouse is
    walking, head level and body stretched (30 mm/s: the locomotion rule's threshold)."""
    one = select_individual(ds, individual)
    body = select_keypoints(one, "body")
    pos = one.position.isel(individual=0).transpose("time", "space", "keypoint").sel(keypoint=body).values
    bs, _ = median_displacement_speed(pos, fps=_fps(one), window_s=window_s)
    return np.isfinite(bs) & (bs / px_per_mm > min_speed_mm_s)


def _reference_median(x: np.ndarray, reference: np.ndarray | None, fps: float) -> float:
    """Median of ``x`` over the ``reference`` frames where they hold at least 1 s of known
    values, else over the session (NaN when nothing is known)."""
    known = np.isfinite(x)
    if reference is not None and (known & reference).sum() >= fps:
        known &= reference
    return float(np.median(x[known])) if known.any() else float("nan")


def rearing_posture(
    ds: xr.Dataset, *, max_length_ratio: float = 0.75, smooth_s: float = 0.2,
    individual: str | int | None = None,
) -> np.ndarray:
    """``(time,)`` True where the snout-tail-base length (mean over ``smooth_s``) is below
    ``max_length_ratio`` of its session median: the top view of a mouse on its hind legs.
    The average over ``smooth_s`` (at least 5 frames) is a running median (robust to a pose
    model's gross errors)."""
    one = select_individual(ds, individual)
    ratio = _rolling_median(body_length_ratio(one).values, max(5, int(round(smooth_s * _fps(one)))))
    return _below(ratio, max_length_ratio)


def paw_snout_distance_mm(ds: xr.Dataset, *, px_per_mm: float, smooth_s: float = 0.5,
                          individual: str | int | None = None) -> np.ndarray:
    """``(time,)`` mean forepaw-snout distance (mm), running median over ``smooth_s``.

    Raises ValueError when the pose has no forepaw keypoints.
    """
    one = select_individual(ds, individual)
    paws = select_keypoints(one, "forepaws")
    s = centroid_track(one, [select_keypoints(one, "snout")[0]])
    d = np.stack([np.hypot(*(centroid_track(one, [p]) - s).T) for p in paws], axis=1) / px_per_mm
    return _rolling_median(_row_nanmean(d), int(round(smooth_s * _fps(one))))


def grooming_posture(
    ds: xr.Dataset, *, px_per_mm: float, max_paw_snout_mm: float = 15.0,
    max_paw_snout_ratio: float | None = PAW_SNOUT_RATIO,
    max_head_length_ratio: float | None = None, min_length_ratio: float = 0.75, smooth_s: float = 0.5,
    individual: str | int | None = None,
) -> np.ndarray:
    """``(time,)`` True in a face-grooming posture: forepaws at the snout or the head bowed,
    the body not foreshortened as in rearing.

    Each measure is a running median over ``smooth_s``: the mean forepaw-snout distance
    below ``max_paw_snout_mm`` (:func:`paw_snout_distance_mm`) or below ``max_paw_snout_ratio``
    of its median while the mouse walks (None: not used), or the snout-ear-midpoint
    distance below ``max_head_length_ratio`` of its median while the mouse walks
    (:func:`head_length_ratio`, :func:`walking_frames`; the session median with under 1 s of
    walking; None: not used, or no ears); and the snout-tail-base length at least
    ``min_length_ratio`` of its median. Raises ValueError without forepaw keypoints.

    Notes
    -----
    In a top view the forepaws of a face-grooming mouse are under its head: a pose model
    often cannot see them and puts them where they usually are (the demo's 5-minute model:
    20 mm from the snout, truth 8 mm), while the bowed head (the snout pulled toward the
    ears) stays visible.
    """
    one = select_individual(ds, individual)
    dist = paw_snout_distance_mm(one, px_per_mm=px_per_mm, smooth_s=smooth_s)
    near = _below(dist, max_paw_snout_mm)
    w = int(round(smooth_s * _fps(one)))
    walking = None
    if max_paw_snout_ratio is not None or max_head_length_ratio is not None:
        walking = walking_frames(one, px_per_mm=px_per_mm, window_s=smooth_s)
    if max_paw_snout_ratio is not None:
        near |= _below(dist / _reference_median(dist, walking, _fps(one)), max_paw_snout_ratio)
    if max_head_length_ratio is not None:
        try:
            head = _rolling_median(head_length_ratio(one, reference=walking).values, w)
            near |= _below(head, max_head_length_ratio)
        except ValueError as err:
            logger.info("grooming posture: head length not used (%s)", err)
    ratio = _rolling_median(body_length_ratio(one).values, w)
    return near & (ratio >= min_length_ratio)


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
    speed_window_s: float = 0.5,
    gross_error_mm: float | None = 10.0,
) -> xr.DataArray:
    """Rearing (top view): the body foreshortened while the body centre is not travelling.

    Parameters
    ----------
    ds
        Clean pose Dataset with a snout and a tail-base keypoint.
    max_length_ratio
        Snout-tail-base distance (running median over ``smooth_s``) below this fraction of
        its session median.
    max_body_speed_mm_s
        The body is not travelling: its running-median position moves slower than this over
        ``speed_window_s`` (:func:`median_displacement_speed`).
    smooth_s, min_bout_s, merge_gap_s
        Averaging window of the length (a running median over ``smooth_s`` and at least 5
        frames, so that at 15 fps two frames with a gross pose error do not move it), bout
        rules (s).
    px_per_mm, individual
        Calibration; individual (required with several).
    gross_error_mm
        Positions farther than this (or 5 x the keypoint's jitter) from their 0.5 s running
        median are not used (:func:`behavior.outliers.reject_gross_errors`, the rule freezing
        applies): a pose model's confident gross error on the snout or the tail base
        foreshortens the body as a rear does. None: every position is used.

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
    gross: dict = {}
    if gross_error_mm is not None:
        from behavior.outliers import without_gross_errors

        one, gross = without_gross_errors(one, fps=fps, px_per_mm=ppm, min_mm=gross_error_mm)
    foreshortened = rearing_posture(one, max_length_ratio=max_length_ratio, smooth_s=smooth_s)
    body = select_keypoints(one, "body")
    pos = one.position.isel(individual=0).transpose("time", "space", "keypoint").sel(keypoint=body).values
    bs, factor = median_displacement_speed(pos, fps=fps, window_s=speed_window_s)
    bs = bs / ppm
    sigma = float(estimate_noise_floor(one, {"body": body})["sigma_px"]["body"])
    info = {"body_speed": f"displacement of the running-median body position over {speed_window_s:g} s",
            "noise_sigma_px": sigma,
            "noise_speed_mm_s": noise_speed_from_sd(factor * sigma / ppm) if np.isfinite(sigma) else float("nan")}
    rear = foreshortened & _below(bs, max_body_speed_mm_s)
    out = filter_bouts(rear, fps=fps, min_bout_s=min_bout_s, merge_gap_s=merge_gap_s)
    return _result(out, one, "rearing", {"max_length_ratio": max_length_ratio,
                                         "max_body_speed_mm_s": max_body_speed_mm_s,
                                         "smooth_s": smooth_s, "min_bout_s": min_bout_s,
                                         "px_per_mm": ppm,
                                         "gross_error_mm": "off" if gross_error_mm is None else gross_error_mm,
                                         "gross_errors_rejected": int(gross.get("rejected", 0)), **info})


def detect_grooming(
    ds: xr.Dataset,
    *,
    max_body_speed_mm_s: float = 15.0,
    max_paw_snout_mm: float = 15.0,
    max_paw_snout_ratio: float | None = PAW_SNOUT_RATIO,
    max_head_length_ratio: float | None = None,
    min_length_ratio: float = 0.75,
    smooth_s: float = 0.5,
    min_bout_s: float = 1.0,
    merge_gap_s: float = 0.5,
    px_per_mm: float | None = None,
    individual: str | int | None = None,
) -> xr.DataArray:
    """Self-grooming (top view): body still, forepaws at the snout or the head bowed, body not
    foreshortened.

    Parameters
    ----------
    ds
        Clean pose Dataset with forepaw, snout and tail-base keypoints.
    max_body_speed_mm_s
        The body is nearly still: its running-median position moves slower than this over
        ``smooth_s`` (:func:`median_displacement_speed`).
    max_paw_snout_mm
        Mean forepaw-snout distance (running median over ``smooth_s``) below this.
    max_paw_snout_ratio
        ... or below this fraction of its median while the mouse walks (body faster than
        30 mm/s: :func:`walking_frames`; the session median with under 1 s of walking). The
        recording's own walking pose is the reference, so the cue holds for another body size,
        camera or pose model: a short-trained model pulls the forepaws toward the mean pose
        (the demo's 5-CPU-minute models: 24-25 mm from the snout while walking, truth 30 mm;
        16-17 mm in grooming, truth 8 mm, so 15 mm finds no grooming) but keeps them nearer
        than when walking (0.67-0.69 of it; truth 0.26; walking, turning and freezing
        0.92-1.04). 0.8 lies between; None: the absolute test only.
    max_head_length_ratio
        ... or the head bowed: snout-ear-midpoint distance (running median) below this
        fraction of its median while the mouse walks (:func:`grooming_posture`). A level head varies by a
        few % (10-90 % range 0.92-1.01 on the virtual mouse's exact pose); a face-grooming
        head is 30-40 % shorter from above. None (default): forepaws only. Opt-in (e.g. 0.85)
        for a pose model that misplaces the hidden forepaws: on the demo's seed-0 model it
        lifts grooming 0.00 -> 0.96 and freezing 0.48 -> 0.96, but a weaker model (seed 1,
        10 epochs) draws a still mouse's head short too, and on two sessions without any
        grooming it turned freezing 0.75 -> 0.00 and 0.63 -> 0.38
        (bench/results/freezing_demo_states.md); a still mouse sniffing the floor also lowers
        its head.
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
    Methods sentence (defaults): "Self-grooming was scored where, for at least 1 s (gaps up to
    0.5 s bridged), the body's running-median position (0.5 s) moved slower than 15 mm/s, the
    snout-tail-base length was at least 0.75 of its session median, and the forepaws were
    within 15 mm of the snout or nearer to it than 0.8 of their median distance while the
    mouse walked (body faster than 30 mm/s; each a 0.5 s running median)." With the opt-in
    head cue add:
    "or the snout-ear-midpoint distance was below 0.85 of its median while the mouse walked
    (body faster than 30 mm/s)".

    The rule uses where the paws are, not how fast they stroke: a top-view pose estimator's
    jitter (1-3 px) hides the 3-5 Hz, few-mm strokes at typical calibrations (~1 px/mm).
    """
    validate_pose(ds, require_fps=True, context="detect_grooming")
    fps = _fps(ds)
    ppm = resolve_px_per_mm(ds, px_per_mm)
    one = select_individual(ds, individual)
    head = select_keypoints(one, "head")
    body = [k for k in select_keypoints(one, "body") if k not in head]
    pos = one.position.isel(individual=0).transpose("time", "space", "keypoint").sel(keypoint=body).values
    bs, factor = median_displacement_speed(pos, fps=fps, window_s=smooth_s)
    bs = bs / ppm
    sigma = float(estimate_noise_floor(one, {"body": body})["sigma_px"]["body"])
    v99 = noise_speed_from_sd(factor * sigma / ppm) if np.isfinite(sigma) else float("nan")
    info = {"body_speed": f"displacement of the running-median body position over {smooth_s:g} s",
            "noise_sigma_px": sigma, "noise_speed_mm_s": v99}
    if np.isfinite(v99) and v99 > max_body_speed_mm_s:
        logger.warning("grooming: the tracking noise (%.2f px) alone moves the body faster than "
                       "%g mm/s in > 1 %% of still frames (%.1f mm/s): grooming bouts will be "
                       "fragmented; a better pose model or calibration is needed", sigma,
                       max_body_speed_mm_s, v99)
    posture = grooming_posture(one, px_per_mm=ppm, max_paw_snout_mm=max_paw_snout_mm,
                               max_paw_snout_ratio=max_paw_snout_ratio,
                               max_head_length_ratio=max_head_length_ratio,
                               min_length_ratio=min_length_ratio, smooth_s=smooth_s)
    groom = _below(bs, max_body_speed_mm_s) & posture
    out = filter_bouts(groom, fps=fps, min_bout_s=min_bout_s, merge_gap_s=merge_gap_s)
    return _result(out, one, "grooming", {"max_body_speed_mm_s": max_body_speed_mm_s,
                                          "max_paw_snout_mm": max_paw_snout_mm,
                                          "max_paw_snout_ratio": max_paw_snout_ratio,
                                          "max_head_length_ratio": max_head_length_ratio,
                                          "min_length_ratio": min_length_ratio,
                                          "smooth_s": smooth_s, "px_per_mm": ppm, **info})
