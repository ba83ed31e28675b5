"""Find the frames a pose model gets wrong, without ground truth.

Four per-frame signals, each a pure function of a predictions Dataset that returns a
named ``DataArray`` over ``time`` (larger = more suspicious):

- :func:`score_jump`: a body part leaves its neighbours in time (px);
- :func:`score_fit`: distance from a robust constant-velocity Kalman (RTS) smoother
  fitted with low-confidence points treated as missing (px);
- :func:`score_uncertain`: ``1 - min(confidence)`` over body parts;
- :func:`score_ensemble`: spread of several models' predictions of the same frame (px).

:func:`detect_outlier_frames` turns a signal into candidate frames and
:func:`select_diverse_frames` picks ``n_frames`` of them spread over appearance by
k-means (one frame per cluster, the most suspicious one), as DeepLabCut's
``extract_outlier_frames`` does. Extraction to a project lives in
:mod:`pose.refine.extract`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import xarray as xr

from pose.dataset import validate_pose

logger = logging.getLogger(__name__)

OutlierMethod = Literal["jump", "fit", "uncertain", "ensemble"]
OUTLIER_METHODS: tuple[str, ...] = ("jump", "fit", "uncertain", "ensemble")


def _masked_position(ds: xr.Dataset, p_cutoff: float) -> np.ndarray:
    """Position (time, space, keypoint, individual) with points below ``p_cutoff`` as NaN."""
    pos = ds["position"].values.astype(float).copy()
    conf = ds["confidence"].values
    low = np.isfinite(conf) & (conf < p_cutoff)
    pos = np.where(low[:, np.newaxis], np.nan, pos)
    return pos


def _frame_max(per_point: np.ndarray) -> np.ndarray:
    """Max over every axis but the first, NaN-aware (all-NaN rows give 0)."""
    flat = per_point.reshape(per_point.shape[0], -1)
    out = np.zeros(flat.shape[0])
    ok = np.isfinite(flat).any(axis=1)
    out[ok] = np.nanmax(flat[ok], axis=1)
    return out


def _named(values: np.ndarray, ds: xr.Dataset, name: str, units: str, long_name: str) -> xr.DataArray:
    return xr.DataArray(
        values,
        dims=("time",),
        coords={"time": ds.coords["time"].values},
        name=name,
        attrs={"units": units, "long_name": long_name},
    )


def score_jump(ds: xr.Dataset, *, p_cutoff: float = 0.0) -> xr.DataArray:
    """Per-frame jump size: how far a body part is from both its temporal neighbours.

    For each body part the displacement to the previous frame and to the next frame is
    computed; the score of a frame is the largest, over body parts, of the *smaller* of
    the two (the one neighbour when the other is missing). A one-frame glitch (a body
    part jumps away and back) therefore scores on the glitched frame only, not on its
    neighbours, which a plain frame-to-frame displacement would also flag.

    Parameters
    ----------
    ds
        Predictions, dims ``(time, space, keypoint, individual)`` in px.
    p_cutoff
        Points with confidence below this are ignored (treated as missing).

    Returns
    -------
    xarray.DataArray
        ``jump_px`` over ``time``, px.
    """
    validate_pose(ds, context="score_jump")
    pos = _masked_position(ds, p_cutoff)
    step = np.linalg.norm(np.diff(pos, axis=0), axis=1)  # (time-1, keypoint, individual)
    nan_row = np.full((1,) + step.shape[1:], np.nan)
    back = np.concatenate([nan_row, step])
    fwd = np.concatenate([step, nan_row])
    both = np.fmin(back, fwd)  # fmin ignores a NaN when the other is finite
    return _named(_frame_max(both), ds, "jump_px", "px", "jump away from temporal neighbours")


def _rts_smooth(obs: np.ndarray, process_noise: float, measurement_noise: float) -> np.ndarray:
    """Constant-velocity Kalman filter + RTS smoother per column of ``obs`` (time, n_series),
    NaN = missing, time step one frame (:func:`pose.kalman.kalman_smooth`)."""
    from pose.kalman import kalman_smooth

    return kalman_smooth(obs, np.full(obs.shape, measurement_noise**2), dt=1.0, order=2,
                         process_noise=process_noise, p0_diag=np.array([0.0, 1e4]))


def score_fit(
    ds: xr.Dataset,
    *,
    p_cutoff: float = 0.1,
    process_noise_px: float = 1.0,
    measurement_noise_px: float = 2.0,
    n_iter: int = 2,
    robust_threshold_px: float = 10.0,
) -> xr.DataArray:
    """Per-frame deviation from a state-space (Kalman) fit of each body part's trajectory.

    Each coordinate of each body part is fitted by a constant-velocity Kalman filter and
    RTS smoother, with points below ``p_cutoff`` treated as missing. The fit is made
    robust by refitting ``n_iter`` times with points deviating more than
    ``robust_threshold_px`` also treated as missing, so one confident glitch does not
    drag the fit towards it. The score of a frame is the largest distance, over body
    parts, between the prediction (low-confidence points included) and the fit.

    Parameters
    ----------
    ds
        Predictions, dims ``(time, space, keypoint, individual)`` in px.
    p_cutoff
        Confidence below which a point does not inform the fit.
    process_noise_px
        Standard deviation of the acceleration, px per frame squared.
    measurement_noise_px
        Standard deviation of a prediction's error, px.
    n_iter
        Number of robust refits.
    robust_threshold_px
        Deviation beyond which a point is dropped in the refits.

    Returns
    -------
    xarray.DataArray
        ``fit_deviation_px`` over ``time``, px.
    """
    validate_pose(ds, context="score_fit")
    raw = ds["position"].values.astype(float)
    n_t = raw.shape[0]
    flat_raw = raw.reshape(n_t, -1)
    used = _masked_position(ds, p_cutoff).reshape(n_t, -1)
    fit = _rts_smooth(used, process_noise_px, measurement_noise_px)
    for _ in range(n_iter):
        resid = np.abs(flat_raw - fit)
        used = np.where(resid > robust_threshold_px, np.nan, used)
        fit = _rts_smooth(used, process_noise_px, measurement_noise_px)
    dev = (flat_raw - fit).reshape(raw.shape)
    dist = np.linalg.norm(dev, axis=1)  # (time, keypoint, individual)
    return _named(_frame_max(dist), ds, "fit_deviation_px", "px", "deviation from Kalman fit")


def score_uncertain(ds: xr.Dataset) -> xr.DataArray:
    """Per-frame uncertainty: ``1 - min(confidence)`` over body parts and individuals.

    A frame with any body part below a bound ``p`` has a score above ``1 - p``. Notes:
    confidences of different software are on different scales (DeepLabCut's are heatmap
    peaks, SLEAP's are not bounded by 1 before normalisation); the bound is model-specific.

    Returns
    -------
    xarray.DataArray
        ``uncertainty`` over ``time``, dimensionless in [0, 1].
    """
    validate_pose(ds, context="score_uncertain")
    conf = ds["confidence"].values.reshape(ds.sizes["time"], -1)
    if not np.isfinite(conf).any():
        raise ValueError("score_uncertain: the predictions carry no confidence (all NaN)")
    low = np.where(np.isfinite(conf), conf, 0.0).min(axis=1)
    return _named(1.0 - low, ds, "uncertainty", "1", "one minus the lowest confidence")


def score_ensemble(datasets: Sequence[xr.Dataset]) -> xr.DataArray:
    """Per-frame disagreement of several models' predictions of the same video.

    The score of a frame is the largest, over body parts, of the root-mean-square
    distance of the members' predictions to their mean (px). Members must share time,
    keypoints and individuals.

    Returns
    -------
    xarray.DataArray
        ``ensemble_spread_px`` over ``time``, px.
    """
    if len(datasets) < 2:
        raise ValueError(f"score_ensemble needs at least 2 predictions, got {len(datasets)}")
    ref = validate_pose(datasets[0], context="score_ensemble member 0")
    for i, other in enumerate(datasets[1:], start=1):
        validate_pose(other, context=f"score_ensemble member {i}")
        if other["position"].shape != ref["position"].shape:
            raise ValueError(
                f"score_ensemble: member {i} has shape {other['position'].shape}, "
                f"member 0 has {ref['position'].shape}"
            )
    stack = np.stack([d["position"].values for d in datasets])  # (member, time, space, kp, ind)
    mean = np.nanmean(stack, axis=0)
    sq = np.nansum((stack - mean) ** 2, axis=2)  # (member, time, kp, ind)
    rms = np.sqrt(np.nanmean(sq, axis=0))
    return _named(
        _frame_max(rms), ref, "ensemble_spread_px", "px", "RMS distance of members to their mean"
    )


def compute_outlier_scores(
    ds: xr.Dataset,
    method: OutlierMethod,
    *,
    p_cutoff: float = 0.1,
    ensemble: Sequence[xr.Dataset] = (),
) -> xr.DataArray:
    """Score every frame with one method (see the ``score_*`` functions)."""
    match method:
        case "jump":
            return score_jump(ds, p_cutoff=p_cutoff)
        case "fit":
            return score_fit(ds, p_cutoff=p_cutoff)
        case "uncertain":
            return score_uncertain(ds)
        case "ensemble":
            if not ensemble:
                raise ValueError(
                    "method 'ensemble' needs predictions of the same video by other models "
                    "(CLI: --ensemble-model MODEL_DIR, repeatable)"
                )
            return score_ensemble([ds, *ensemble])
        case _:
            raise ValueError(f"unknown outlier method {method!r}; choose from {OUTLIER_METHODS}")


def detect_outlier_frames(scores: xr.DataArray, threshold: float) -> np.ndarray:
    """Row indices (into ``time``) whose score exceeds ``threshold``, most suspicious first."""
    values = np.nan_to_num(scores.values, nan=-np.inf)
    idx = np.flatnonzero(values > threshold)
    return idx[np.argsort(-values[idx], kind="stable")]


def select_diverse_frames(
    candidates: np.ndarray,
    scores: np.ndarray,
    appearance: np.ndarray | None,
    n_frames: int,
    *,
    random_state: int = 0,
) -> np.ndarray:
    """Pick ``n_frames`` candidates spread over appearance by k-means.

    The candidates' appearance vectors (e.g. downsampled grey frames) are clustered into
    ``n_frames`` clusters and the most suspicious candidate of each cluster is kept, so
    the selection covers different looks (positions, postures, lighting) instead of
    ``n_frames`` copies of one hard moment.

    Parameters
    ----------
    candidates
        Row indices of candidate frames, shape (n,).
    scores
        Their outlier scores, shape (n,) (higher = more suspicious).
    appearance
        Feature vectors, shape (n, d). ``None`` picks the highest scores.
    n_frames
        How many frames to pick.
    random_state
        Seed of k-means.

    Returns
    -------
    numpy.ndarray
        Selected row indices, sorted.
    """
    candidates = np.asarray(candidates)
    scores = np.asarray(scores, dtype=float)
    if candidates.shape != scores.shape:
        raise ValueError(f"{candidates.shape[0]} candidates but {scores.shape[0]} scores")
    if n_frames <= 0:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    if len(candidates) <= n_frames:
        return np.sort(candidates)
    if appearance is None:
        return np.sort(candidates[np.argsort(-scores, kind="stable")[:n_frames]])
    from sklearn.cluster import KMeans

    feats = np.asarray(appearance, dtype=float).reshape(len(candidates), -1)
    feats = (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-9)
    labels = KMeans(n_clusters=n_frames, n_init=3, random_state=random_state).fit_predict(feats)
    chosen = []
    for k in range(n_frames):
        members = np.flatnonzero(labels == k)
        if members.size:
            chosen.append(candidates[members[np.argmax(scores[members])]])
    if len(chosen) < n_frames:  # k-means left a cluster empty: top up by score
        rest = [c for c in candidates[np.argsort(-scores, kind="stable")] if c not in set(chosen)]
        chosen.extend(rest[: n_frames - len(chosen)])
    return np.sort(np.asarray(chosen))
