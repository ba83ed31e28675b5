"""Cleaning and smoothing of pose trajectories (pure functions on the pose Dataset).

Every function takes a pose Dataset (see :mod:`pose.dataset`), validates it, returns a new
Dataset with a filtered ``position`` (``confidence`` is kept) and records itself in
``attrs["history"]``. Windows and gaps are given in seconds and converted with
``attrs["fps"]`` (when the Dataset has no fps, seconds are read as frames and a warning is
logged). All work is vectorised over keypoints x individuals x space: the time axis is
axis 0 of a ``(time, series)`` matrix and there is no Python loop over frames.

:func:`clean` is the one entry point every caller uses (the features CLI, protocols, the
demo, behaviour): it runs a list of typed steps (:mod:`features.steps`) in order::

    from features.steps import ConfidenceMask, Interpolate, RemoveJumps, SavGol
    ds = clean(ds, [ConfidenceMask(threshold=0.6), RemoveJumps(max_speed_mm_s=1000),
                    Interpolate(max_gap_s=0.2), SavGol(window_s=0.2, order=2)])
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import xarray as xr
from scipy import ndimage

from features.steps import (
    CleanStep,
    ConfidenceMask,
    Interpolate,
    Kalman,
    Median,
    RemoveJumps,
    SavGol,
    standard_steps,
)
from pose.dataset import append_history, validate_pose

logger = logging.getLogger(__name__)

__all__ = [
    "clean",
    "standard_steps",
    "CleanStep",
    "ConfidenceMask",
    "RemoveJumps",
    "Interpolate",
    "Median",
    "SavGol",
    "Kalman",
    "filter_by_confidence",
    "remove_jumps",
    "interpolate_gaps",
    "filter_median",
    "filter_savgol",
    "filter_kalman",
    "seconds_to_frames",
]


# --------------------------------------------------------------------------- helpers


def _fps(ds: xr.Dataset) -> float:
    fps = ds.attrs.get("fps")
    if fps is None:
        logger.warning("pose Dataset has no fps: durations in seconds are read as frames")
        return 1.0
    return float(fps)


def seconds_to_frames(ds: xr.Dataset, duration_s: float, *, odd: bool = False, minimum: int = 1) -> int:
    """Convert a duration in seconds to a whole number of frames of ``ds``.

    Parameters
    ----------
    ds
        Pose Dataset (uses ``attrs["fps"]``; without fps one "second" is one frame).
    duration_s
        Duration in seconds (must be >= 0).
    odd
        Round up to the next odd number (centred windows).
    minimum
        Smallest number of frames returned.
    """
    if not np.isfinite(duration_s) or duration_s < 0:
        raise ValueError(f"duration must be a non-negative number of seconds, got {duration_s}")
    n = max(int(round(duration_s * _fps(ds))), minimum)
    if odd and n % 2 == 0:
        n += 1
    return n


def _as_matrix(position: xr.DataArray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Position (time, ...) -> float matrix (time, series) (a copy) and the original shape."""
    arr = np.array(position.values, dtype=float)
    return arr.reshape(arr.shape[0], -1), arr.shape


def _with_position(ds: xr.Dataset, matrix: np.ndarray, shape: tuple[int, ...], op: str, params: dict) -> xr.Dataset:
    out = ds.copy()
    out["position"] = (ds["position"].dims, matrix.reshape(shape))
    out["position"].attrs = dict(ds["position"].attrs)
    return append_history(out, op, params)


def _runs(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and stop (exclusive) indices of True runs in a 1-D bool array."""
    padded = np.concatenate(([False], valid, [False])).astype(np.int8)
    d = np.diff(padded)
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _gap_lengths(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a (time, series) validity mask: previous valid index, next valid index, gap length.

    ``prev``/``nxt`` are -1 / n_time where there is none. ``gap`` is the length of the NaN run a
    missing sample belongs to (0 at valid samples; leading/trailing runs get n_time + 1).
    """
    n = valid.shape[0]
    idx = np.arange(n)[:, None]
    prev = np.where(valid, idx, -1)
    np.maximum.accumulate(prev, axis=0, out=prev)
    nxt = np.where(valid, idx, n)
    nxt = np.minimum.accumulate(nxt[::-1], axis=0)[::-1]
    gap = np.where(valid, 0, nxt - prev - 1)
    gap = np.where(~valid & ((prev < 0) | (nxt >= n)), n + 1, gap)
    return prev, nxt, gap


def nan_median_filter(x: np.ndarray, window: int) -> np.ndarray:
    """Centred running median along axis 0 of a (time, series) matrix, ignoring NaN.

    Compiled with numba (insertion sort of each small window); edges use a reflected window
    (as movement pads with ``mode="reflect"``); a window's NaN samples are skipped and NaN
    input samples stay NaN.
    """
    if window <= 1:
        return x.copy()
    from pose.kalman import running_nanmedian

    xt = np.ascontiguousarray(np.asarray(x, dtype=float).T)
    return running_nanmedian(xt, window).T.copy()


# --------------------------------------------------------------------------- filters


def filter_by_confidence(ds: xr.Dataset, p_cutoff: float = 0.6) -> xr.Dataset:
    """Set position to NaN where confidence is below ``p_cutoff``.

    Parameters
    ----------
    ds
        Pose Dataset.
    p_cutoff
        Confidence threshold in [0, 1]; a sample with ``confidence < p_cutoff`` is masked.

    Returns
    -------
    xarray.Dataset
        Same layout; ``position`` NaN at low-confidence samples.

    Notes
    -----
    A NaN confidence means "unknown" (e.g. human labels) and is kept, unlike movement's
    ``filter_by_confidence`` which drops it. DeepLabCut likelihoods and SLEAP instance scores
    are on different scales: choose the cutoff per source.
    """
    validate_pose(ds, context="filter_by_confidence")
    if not 0.0 <= p_cutoff <= 1.0:
        raise ValueError(f"p_cutoff must lie in [0, 1], got {p_cutoff}")
    conf = ds["confidence"].values
    low = conf < p_cutoff  # NaN compares False -> kept
    pos = np.array(ds["position"].values, dtype=float)
    pos = np.where(low[:, None, :, :], np.nan, pos)
    return _with_position(ds, pos.reshape(pos.shape[0], -1), pos.shape, "filter_by_confidence",
                          {"p_cutoff": p_cutoff})


def remove_jumps(
    ds: xr.Dataset,
    max_speed_px_s: float,
    *,
    window_s: float = 0.2,
) -> xr.Dataset:
    """Remove outliers: samples farther from the local median than the body can move.

    A sample is an outlier when its distance (over space) from the centred running median of
    its keypoint's trajectory (NaN-aware, window ``window_s``) is larger than
    ``max_speed_px_s * window_s / 2``: within half a window an animal moving at the maximum
    speed cannot leave the median by more than that. Also removes single-frame spikes whose
    implied speed both into and out of the sample exceeds ``max_speed_px_s``.

    Parameters
    ----------
    ds
        Pose Dataset (position in pixels; pass mm/s if ``position`` is in mm).
    max_speed_px_s
        Largest plausible speed of a body part, in px/s (or px/frame without fps).
    window_s
        Window of the running median in seconds (at least 3 frames).

    Returns
    -------
    xarray.Dataset
        ``position`` NaN at the removed samples.
    """
    validate_pose(ds, context="remove_jumps")
    if not max_speed_px_s > 0:
        raise ValueError(f"max_speed_px_s must be positive, got {max_speed_px_s}")
    fps = _fps(ds)
    w = seconds_to_frames(ds, window_s, odd=True, minimum=3)
    pos = np.array(ds["position"].values, dtype=float)  # (T, S, K, I)
    shape = pos.shape
    mat = pos.reshape(shape[0], -1)
    med = nan_median_filter(mat, w).reshape(shape)
    dev = np.sqrt(np.nansum((pos - med) ** 2, axis=1))  # (T, K, I)
    limit = max_speed_px_s * (w / 2.0) / fps
    bad = dev > limit
    # single-frame spikes: big step in and big step out
    step_limit = max_speed_px_s / fps
    d_in = np.full(dev.shape, np.nan)
    d_in[1:] = np.sqrt(((pos[1:] - pos[:-1]) ** 2).sum(axis=1))
    d_out = np.full(dev.shape, np.nan)
    d_out[:-1] = d_in[1:]
    bad |= (d_in > step_limit) & (d_out > step_limit)
    pos[np.broadcast_to(bad[:, None], shape)] = np.nan
    logger.info("remove_jumps: removed %d samples", int(bad.sum()))
    return _with_position(ds, pos.reshape(shape[0], -1), shape, "remove_jumps",
                          {"max_speed_px_s": max_speed_px_s, "window_s": window_s})


def interpolate_gaps(
    ds: xr.Dataset,
    max_gap_s: float | None = 0.5,
    *,
    method: Literal["linear"] = "linear",
) -> xr.Dataset:
    """Linearly interpolate NaN gaps of at most ``max_gap_s`` seconds.

    Parameters
    ----------
    ds
        Pose Dataset.
    max_gap_s
        Longest gap (duration of the missing run, ``n_missing / fps``) that is filled;
        ``None`` fills every interior gap. Leading and trailing gaps are never filled.
    method
        Only ``"linear"``.

    Returns
    -------
    xarray.Dataset
        ``position`` with short gaps filled.
    """
    validate_pose(ds, context="interpolate_gaps")
    if method != "linear":
        raise ValueError(f"method must be 'linear', got {method!r}")
    mat, shape = _as_matrix(ds["position"])
    max_gap = np.inf if max_gap_s is None else max_gap_s * _fps(ds) + 1e-9
    valid = ~np.isnan(mat)
    prev, nxt, gap = _gap_lengths(valid)
    fill = (~valid) & (gap <= min(max_gap, mat.shape[0]))  # leading/trailing runs: n + 1
    ti, si = np.nonzero(fill)
    if ti.size:
        p, n = prev[ti, si], nxt[ti, si]
        w = (ti - p) / (n - p)
        mat[ti, si] = mat[p, si] * (1 - w) + mat[n, si] * w
    return _with_position(ds, mat, shape, "interpolate_gaps", {"max_gap_s": max_gap_s, "method": method})


def filter_median(ds: xr.Dataset, window_s: float) -> xr.Dataset:
    """Centred running median over time (NaN-aware; NaN samples stay NaN).

    Parameters
    ----------
    ds
        Pose Dataset.
    window_s
        Window length in seconds, rounded to an odd number of frames.

    Notes
    -----
    Uses :func:`scipy.ndimage.median_filter` on the whole (time, series) matrix; windows
    that contain NaN are recomputed from their valid samples only (unlike movement's
    ``rolling_filter``, which returns NaN for them by default).
    """
    validate_pose(ds, context="filter_median")
    w = seconds_to_frames(ds, window_s, odd=True)
    mat, shape = _as_matrix(ds["position"])
    return _with_position(ds, nan_median_filter(mat, w), shape, "filter_median",
                          {"window_s": window_s, "window_frames": w})


def _hat(n: int, polyorder: int) -> np.ndarray:
    """(n, n) matrix mapping n samples to their least-squares polynomial fit at each sample."""
    v = np.vander(np.arange(n, dtype=float) - (n - 1) / 2.0, polyorder + 1, increasing=True)
    return v @ np.linalg.pinv(v)


def savgol_nan(x: np.ndarray, window: int, polyorder: int) -> np.ndarray:
    """Savitzky-Golay along axis 0 of a (time, series) matrix, each valid run on its own.

    Equals :func:`scipy.signal.savgol_filter` with ``mode="interp"`` applied to every
    contiguous run of valid samples at least ``window`` long; a run shorter than the window
    (but longer than ``polyorder``) is replaced by its least-squares polynomial fit; shorter
    runs are kept. Vectorised: one correlation for all interior samples, one gather for the
    samples within half a window of a run's ends, one matrix product per short-run length.
    """
    x = np.asarray(x, dtype=float)
    n_t, n_s = x.shape
    h = window // 2
    hat = _hat(window, polyorder)
    nan = np.isnan(x)
    # interior samples of runs >= window are exact here; samples near a NaN or an end of the
    # recording are wrong/NaN here and recomputed below
    out = ndimage.correlate1d(x, hat[h], axis=0, mode="constant")
    # valid runs of every series: (series, start, stop) in one pass over the transposed mask
    edges = np.zeros((n_s, n_t + 2), dtype=np.int8)
    edges[:, 1:-1] = ~nan.T
    d = np.diff(edges, axis=1)
    cc, tt = np.nonzero(d)
    rising = d[cc, tt] == 1
    col, start, stop = cc[rising], tt[rising], tt[~rising]
    length = stop - start
    long = length >= window
    if long.any():
        c, a0, b0 = col[long], start[long], stop[long]
        k = np.arange(window)[None, :]
        left = x[a0[:, None] + k, c[:, None]]  # first window of each run
        out[a0[:, None] + np.arange(h)[None, :], c[:, None]] = left @ hat[:h].T
        right = x[b0[:, None] - window + k, c[:, None]]  # last window of each run
        out[b0[:, None] - window + np.arange(window - h, window)[None, :], c[:, None]] = right @ hat[window - h:].T
    for n in np.unique(length[~long]):
        sel = ~long & (length == n)
        rows = start[sel][:, None] + np.arange(n)[None, :]
        cols = col[sel][:, None]
        out[rows, cols] = x[rows, cols] @ _hat(int(n), polyorder).T if n > polyorder else x[rows, cols]
    return out


def filter_savgol(ds: xr.Dataset, window_s: float, polyorder: int = 2) -> xr.Dataset:
    """Savitzky-Golay smoothing over time, NaN-aware (each valid run filtered on its own).

    Parameters
    ----------
    ds
        Pose Dataset.
    window_s
        Window length in seconds, rounded to an odd number of frames (> polyorder).
    polyorder
        Order of the local polynomial.

    Notes
    -----
    :func:`scipy.signal.savgol_filter` with ``mode="interp"`` on every contiguous run of
    valid samples, so a gap does not spread NaN over half a window around it (movement's
    ``savgol_filter`` does). NaN samples stay NaN: fill gaps first if needed.
    """
    validate_pose(ds, context="filter_savgol")
    w = seconds_to_frames(ds, window_s, odd=True)
    if w <= polyorder:
        raise ValueError(
            f"window_s={window_s} gives {w} frames, which must be larger than polyorder={polyorder}"
        )
    mat, shape = _as_matrix(ds["position"])
    return _with_position(ds, savgol_nan(mat, w, polyorder), shape, "filter_savgol",
                          {"window_s": window_s, "window_frames": w, "polyorder": polyorder})


def filter_kalman(
    ds: xr.Dataset,
    *,
    model: Literal["constant_velocity", "constant_acceleration"] = "constant_velocity",
    measurement_noise_px: float = 2.0,
    process_noise: float | None = None,
    min_confidence: float = 0.2,
    max_gap_s: float | None = None,
    smooth: bool = True,
) -> xr.Dataset:
    """Kalman filter (and Rauch-Tung-Striebel smoother) with confidence-weighted measurements.

    Each coordinate of each keypoint of each individual is one series with a linear
    constant-velocity (state: position, velocity) or constant-acceleration model. The
    measurement noise of a sample with confidence ``c`` is ``R = measurement_noise_px**2 /
    max(c, min_confidence)**2``; samples with NaN position or ``c < min_confidence`` are
    skipped (prediction only), so dropouts are bridged by the model.

    Parameters
    ----------
    ds
        Pose Dataset (needs fps for physical units; without it dt = 1 frame).
    model
        State-space model.
    measurement_noise_px
        Standard deviation of the position measurement at confidence 1, in px.
    process_noise
        Standard deviation of the white-noise acceleration (constant velocity, px/s^2) or
        jerk (constant acceleration, px/s^3). ``None`` estimates it from the data by
        maximum likelihood (see :func:`pose.kalman.estimate_process_noise`).
    min_confidence
        Samples below this confidence are not used.
    max_gap_s
        Gaps longer than this stay NaN in the output (``None``: bridge all interior gaps).
        Samples before the first and after the last measurement of a series are always NaN.
    smooth
        Run the RTS smoother (True) or return the causal filter estimate (False).

    Returns
    -------
    xarray.Dataset
        ``position`` replaced by the filtered/smoothed estimate.

    Notes
    -----
    The model follows :class:`filterpy.kalman.KalmanFilter` and
    :func:`filterpy.common.Q_discrete_white_noise`, but the recursion is compiled with numba
    and runs over all series at once (see :mod:`pose.kalman`); tests check it against
    filterpy to 1e-9. A NaN confidence (unknown) counts as confidence 1.
    """
    from pose.kalman import estimate_process_noise, kalman_smooth

    validate_pose(ds, context="filter_kalman")
    if measurement_noise_px <= 0:
        raise ValueError(f"measurement_noise_px must be positive, got {measurement_noise_px}")
    fps = _fps(ds)
    dt = 1.0 / fps
    mat, shape = _as_matrix(ds["position"])
    conf = ds["confidence"].values  # (T, K, I)
    conf = np.where(np.isnan(conf), 1.0, conf)
    conf = np.broadcast_to(conf[:, None], shape).reshape(shape[0], -1)
    order = 2 if model == "constant_velocity" else 3
    if model not in ("constant_velocity", "constant_acceleration"):
        raise ValueError(f"model must be 'constant_velocity' or 'constant_acceleration', got {model!r}")
    z = np.where(conf >= min_confidence, mat, np.nan)
    r = measurement_noise_px**2 / np.maximum(conf, min_confidence) ** 2
    q = estimate_process_noise(z, r, dt, order) if process_noise is None else float(process_noise)
    est = kalman_smooth(z, r, dt=dt, order=order, process_noise=q, smooth=smooth)
    valid = ~np.isnan(z)
    _, _, gap = _gap_lengths(valid)
    max_gap = np.inf if max_gap_s is None else max_gap_s * fps + 1e-9
    est[gap > max_gap] = np.nan
    est[gap > shape[0]] = np.nan
    return _with_position(ds, est, shape, "filter_kalman", {
        "model": model, "measurement_noise_px": measurement_noise_px, "process_noise": q,
        "min_confidence": min_confidence, "max_gap_s": max_gap_s, "smooth": smooth})


# --------------------------------------------------------------------------- the one entry point


def _jump_speed_px_s(ds: xr.Dataset, step: RemoveJumps) -> float:
    if step.max_speed_px_s is not None:
        return float(step.max_speed_px_s)
    ppm = ds.attrs.get("px_per_mm")
    if not ppm:
        raise ValueError(
            f"RemoveJumps(max_speed_mm_s={step.max_speed_mm_s}) needs the pose's px_per_mm "
            "(attrs['px_per_mm'] is not set): calibrate it or give max_speed_px_s"
        )
    return float(step.max_speed_mm_s) * float(ppm)


def clean(ds: xr.Dataset, steps: list[CleanStep] | tuple[CleanStep, ...]) -> xr.Dataset:
    """Run cleaning ``steps`` (typed, :mod:`features.steps`) on a pose Dataset, in order.

    Parameters
    ----------
    ds
        Pose Dataset (position in px; ``px_per_mm`` needed for ``max_speed_mm_s``).
    steps
        :class:`~features.steps.ConfidenceMask`, :class:`~features.steps.RemoveJumps`,
        :class:`~features.steps.Interpolate`, :class:`~features.steps.Median`,
        :class:`~features.steps.SavGol`, :class:`~features.steps.Kalman` in any order
        (usually mask -> jumps -> interpolate -> smooth, see
        :func:`~features.steps.standard_steps`).

    Returns
    -------
    xarray.Dataset
        Same layout, ``position`` cleaned; each step is recorded in ``attrs["history"]``,
        then one ``clean`` record listing all steps (a later layer can tell the pose is clean).
    """
    validate_pose(ds, context="clean")
    for step in steps:
        match step:
            case ConfidenceMask(threshold=t):
                ds = filter_by_confidence(ds, p_cutoff=t)
            case RemoveJumps():
                ds = remove_jumps(ds, max_speed_px_s=_jump_speed_px_s(ds, step), window_s=step.window_s)
            case Interpolate(max_gap_s=g):
                ds = interpolate_gaps(ds, max_gap_s=g)
            case Median(window_s=w):
                ds = filter_median(ds, window_s=w)
            case SavGol(window_s=w, order=o):
                ds = filter_savgol(ds, window_s=w, polyorder=o)
            case Kalman():
                ds = filter_kalman(ds, model=step.model, measurement_noise_px=step.measurement_noise_px,
                                   process_noise=step.process_noise, min_confidence=step.min_confidence,
                                   max_gap_s=step.max_gap_s, smooth=step.smooth)
            case _:
                raise TypeError(f"clean: not a cleaning step: {step!r} (see features.steps)")
    return append_history(ds, "clean", {"steps": [s.model_dump() for s in steps]})
