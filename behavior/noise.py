"""What a recording says about its own tracking noise, and speeds that know about it.

Freezing is a speed below a threshold, but a pose estimator's jitter alone has a speed:
1 px of jitter at 50 fps is ~50 px/s frame to frame. Whether a still mouse reads as still
depends on the jitter (px), the calibration (px/mm), the frame rate and the speed
estimator's window. This module measures the jitter from the recording itself and gives
the speed that noise alone reaches, so a rule can set its window and threshold from it.

Speed estimator
---------------
The velocity at frame ``t`` is the slope of a straight line fitted by least squares to the
positions in the window ``t-h .. t+h`` (``n = 2h + 1`` frames; a Savitzky-Golay
differentiator), NaN-aware: missing frames are left out of the fit, and the velocity is
NaN when fewer than ``h + 1`` frames of the window are known. For white jitter of standard
deviation ``sigma`` px per coordinate, each velocity coordinate then has standard deviation
``sigma * fps / sqrt(S2)`` with ``S2 = h (h + 1) (2h + 1) / 3``, and the speed of a still
point is Rayleigh distributed: it exceeds ``sigma_v * sqrt(-2 ln(1 - q))`` in a fraction
``1 - q`` of frames.

Jitter estimate
---------------
The high-frequency residual of a track, ``x - SG5(x)`` (Savitzky-Golay smooth, 5 frames,
order 2), keeps smooth motion out and white jitter in: for white noise its standard deviation
is ``sigma * sqrt(1 - 17/35)``. ``sigma`` is estimated robustly (1.4826 x the median absolute
residual, x and y pooled, divided by that factor) on the still-looking half of the frames
(the slower half by body speed; for the head, those where the head is in its own slower half
too), so paw swings, fast turns and a grooming head do not count as noise.

Groups of keypoints
-------------------
A rule's "head" or "body" motion is the mean of its keypoints' slope velocities over the
keypoints known in that frame (:func:`role_velocity`; at least half of them), and its jitter
the robust sd of their SG5 residuals averaged the same way (:func:`role_jitter`), so the
noise model describes exactly the quantity the threshold is applied to.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from scipy import ndimage

logger = logging.getLogger(__name__)

#: residual sd of a 5-frame, order-2 Savitzky-Golay smooth on unit white noise
_SG5 = np.array([-3.0, 12.0, 17.0, 12.0, -3.0]) / 35.0
_SG5_RESIDUAL_FACTOR = float(np.sqrt(1.0 - 17.0 / 35.0))
_MAD_TO_SD = 1.482602218505602
#: confidence bins of the per-confidence jitter report
CONFIDENCE_BINS: tuple[float, ...] = (0.0, 0.5, 0.9, 0.99, 1.0000001)


def half_width_for(window_s: float, fps: float) -> int:
    """Half-width ``h >= 1`` of the shortest ``2h+1``-frame window lasting at least ``window_s``."""
    return max(1, int(np.ceil((window_s * fps - 1) / 2 - 1e-9)))


def slope_s2(half_width: int) -> float:
    """``sum(j**2, j=-h..h)``: the denominator of the least-squares slope over ``2h+1`` frames."""
    h = int(half_width)
    return h * (h + 1) * (2 * h + 1) / 3.0


def slope_velocity(xy: np.ndarray, *, fps: float, half_width: int) -> np.ndarray:
    """Velocity (units/s) as the least-squares slope over ``2 * half_width + 1`` frames.

    Parameters
    ----------
    xy
        Shape ``(n_frames, ...)``, time on axis 0 (e.g. ``(time, space)``); NaN = missing.
    fps
        Frame rate.
    half_width
        ``h >= 1``; the window is ``2h + 1`` frames.

    Returns
    -------
    numpy.ndarray
        Same shape; NaN where fewer than ``h + 1`` frames of the window are known.
    """
    h = int(half_width)
    if h < 1:
        raise ValueError(f"half_width must be >= 1, got {half_width}")
    x = np.asarray(xy, dtype=float)
    valid = np.isfinite(x)
    xv = np.where(valid, x, 0.0)
    w = valid.astype(float)
    j = np.arange(-h, h + 1, dtype=float)
    ones = np.ones_like(j)

    def corr(a: np.ndarray, k: np.ndarray) -> np.ndarray:
        return ndimage.correlate1d(a, k, axis=0, mode="constant", cval=0.0)

    s0, s1, s2 = corr(w, ones), corr(w, j), corr(w, j * j)
    sx, sjx = corr(xv, ones), corr(xv, j)
    den = s0 * s2 - s1 * s1
    ok = (s0 >= h + 1) & (den > 1e-9)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (s0 * sjx - s1 * sx) / den
    return np.where(ok, slope * fps, np.nan)


def slope_speed(xy: np.ndarray, *, fps: float, half_width: int) -> np.ndarray:
    """Speed ``|v|`` (units/s) of a ``(n_frames, 2)`` track from :func:`slope_velocity`."""
    v = slope_velocity(xy, fps=fps, half_width=half_width)
    return np.sqrt(np.sum(v * v, axis=-1))


def noise_speed(sigma: float, *, fps: float, half_width: int, quantile: float = 0.99) -> float:
    """Speed that white jitter ``sigma`` (per coordinate) alone exceeds in ``1 - quantile`` of frames."""
    sigma_v = float(sigma) * fps / np.sqrt(slope_s2(half_width))
    return float(sigma_v * np.sqrt(-2.0 * np.log1p(-quantile)))


def _residual(x: np.ndarray) -> np.ndarray:
    """``x - SG5(x)`` along axis 0; NaN where the 5-frame window is not fully known."""
    x = np.asarray(x, dtype=float)
    smooth = ndimage.correlate1d(x, _SG5, axis=0, mode="nearest")
    ok = ndimage.correlate1d(np.isfinite(x).astype(float), np.ones(5), axis=0, mode="constant") == 5
    return np.where(ok, x - smooth, np.nan)


def _robust_sd(r: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, int]:
    """``sigma`` from SG5 residuals ``(n_frames, ...)``: 1.4826 MAD / sqrt(18/35); frames in ``mask``."""
    r = np.asarray(r, dtype=float)
    if mask is not None:
        r = r[np.asarray(mask, bool)]
    r = r[np.isfinite(r)]
    if r.size < 20:
        return float("nan"), int(r.size)
    mad = np.median(np.abs(r - np.median(r)))
    return float(_MAD_TO_SD * mad / _SG5_RESIDUAL_FACTOR), int(r.size)


def residual_jitter(x: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, int]:
    """Robust jitter sd (per coordinate) of ``(n_frames, 2)`` tracks and the samples used.

    See the module Notes: residual of a 5-frame Savitzky-Golay smooth, MAD, corrected for
    the smooth's own share of white noise. ``mask`` (n_frames,) selects the frames used.
    """
    return _robust_sd(_residual(x), mask)


def _min_known(n_keypoints: int) -> int:
    """A role's motion is defined where at least half its keypoints are known."""
    return max(1, int(np.ceil(n_keypoints / 2)))


def _mean_over_known(a: np.ndarray, min_known: int) -> np.ndarray:
    """Mean over the last axis of ``(time, space, keypoint)`` values that are finite in every
    space coordinate; NaN where fewer than ``min_known`` keypoints are."""
    known = np.isfinite(a).all(axis=1, keepdims=True)
    n = known.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(known, a, 0.0).sum(axis=2) / n
    return np.where(n >= min_known, m, np.nan)


def role_velocity(xyk: np.ndarray, *, fps: float, half_width: int) -> np.ndarray:
    """Velocity ``(time, 2)`` of a group of keypoints: mean of their slope velocities.

    Parameters
    ----------
    xyk
        ``(time, space, keypoint)`` positions (space: x, y first); NaN = unknown.
    fps, half_width
        As :func:`slope_velocity` (each keypoint's own least-squares slope).

    Returns
    -------
    numpy.ndarray
        ``(time, 2)``; the velocity of the keypoints' centroid where all are known, and the
        mean over the known ones where some are not (at least half of them; else NaN).

    Notes
    -----
    Averaging velocities (not positions) means a keypoint that drops out does not make the
    group jump (a centroid over a changing subset would), and one occluded keypoint does not
    make the whole group unknown. Its jitter is :func:`role_jitter`'s, same average.
    """
    x = np.asarray(xyk, dtype=float)[:, :2]
    v = slope_velocity(x, fps=fps, half_width=half_width)
    return _mean_over_known(v, _min_known(x.shape[2]))


def role_speed(xyk: np.ndarray, *, fps: float, half_width: int) -> np.ndarray:
    """Speed ``(time,)`` of :func:`role_velocity` (units/s)."""
    v = role_velocity(xyk, fps=fps, half_width=half_width)
    return np.sqrt(np.sum(v * v, axis=-1))


def role_jitter(xyk: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, int]:
    """Jitter sd (px, per coordinate) of :func:`role_velocity`'s average, from the track itself.

    The SG5 residual of each keypoint, averaged over the known keypoints exactly as
    :func:`role_velocity` averages their velocities (both are linear in the positions, so
    the white-noise part of the average has this sd: ``sigma / sqrt(n)`` for ``n``
    independent keypoints, ``sigma`` when their jitter moves together), then the robust sd.
    """
    x = np.asarray(xyk, dtype=float)[:, :2]
    r = _mean_over_known(_residual(x), _min_known(x.shape[2]))
    return _robust_sd(r, mask)


def _track(pos: xr.DataArray, keypoints: Sequence[str]) -> np.ndarray:
    """``(time, 2, keypoint)`` positions of ``keypoints`` (x, y)."""
    return pos.sel(keypoint=list(keypoints)).transpose("time", "space", "keypoint").values[:, :2]


def estimate_noise_floor(
    ds: xr.Dataset,
    roles: Mapping[str, Sequence[str]],
    *,
    individual: str | int = 0,
    still_fraction: float = 0.5,
) -> dict:
    """Tracking jitter (px) of each role's average and each keypoint, from the recording itself.

    Parameters
    ----------
    ds
        Pose Dataset (px), already cleaned.
    roles
        Role name -> keypoints whose centroid the rule uses, e.g.
        ``{"head": [...], "body": [...]}``; the last role decides which frames look still, and
        each other role's jitter is measured where it is slow too (see Notes).
        A role's jitter is that of the average :func:`role_velocity` takes (:func:`role_jitter`).
    individual
        Name or index of the individual.
    still_fraction
        Share of frames (the slowest by the last role's speed over 0.2 s) used; for another
        role, those of them that are also in its own slowest ``still_fraction``.

    Returns
    -------
    dict
        ``sigma_px`` (role -> jitter sd per coordinate), ``keypoint_sigma_px`` (keypoint ->
        sd), ``confidence_sigma_px`` (list of ``{"confidence", "sigma_px", "n"}`` over
        :data:`CONFIDENCE_BINS`, all keypoints pooled), ``n_still_frames``, ``method``.

    Notes
    -----
    Estimating on the average keeps the correlated part of the keypoints' jitter (a whole
    body shift): on BehaviorDEPOT demo1 the 3-point head average is as noisy as one keypoint.

    A head can move fast while the body rests (grooming, sniffing, scanning at 3-8 Hz); at a
    low frame rate that movement lies near the Nyquist frequency, where the 5-frame residual
    cannot tell it from jitter (at 15 fps the residual spans 0.33 s). So a role other than the
    last is measured only where it is in its own slower half as well. For white jitter the
    selection does not bias the estimate: the speed is an odd (slope) filter and the residual an
    even one of the same positions, uncorrelated, hence independent for Gaussian jitter. demo1
    resampled to 15 fps: head jitter 1.10 px (all body-still frames) -> 0.97 px; the 50 fps
    recording's 1.07 px implies 0.90 px after the resampling's interpolation.
    """
    one = ds.isel(individual=individual) if isinstance(individual, int) else ds.sel(individual=individual)
    pos = one.position
    fps = float(ds.attrs["fps"])
    last = list(roles)[-1]
    h = max(1, int(round(0.1 * fps)))
    sp = role_speed(_track(pos, roles[last]), fps=fps, half_width=h)
    fin = np.isfinite(sp)
    still = fin & (sp <= np.quantile(sp[fin], still_fraction)) if fin.any() else fin
    out: dict = {"sigma_px": {}, "keypoint_sigma_px": {}, "confidence_sigma_px": [],
                 "n_still_frames": int(still.sum()), "still_fraction": still_fraction,
                 "method": "1.4826*MAD of x - SG(5, order 2) residual / sqrt(18/35), slowest frames; "
                           "role: residuals averaged over its known keypoints"}
    for role, kps in roles.items():
        own = still
        if role != last:  # ... and where this role is slow itself (see Notes)
            sr = role_speed(_track(pos, kps), fps=fps, half_width=h)
            fr = np.isfinite(sr)
            if fr.any():
                own = still & fr & (sr <= np.quantile(sr[fr], still_fraction))
        out["sigma_px"][role] = role_jitter(_track(pos, kps), own)[0]
    kp_all = [str(k) for k in pos.coords["keypoint"].values]
    conf = one.confidence.transpose("time", "keypoint").values
    resid = []
    for i, k in enumerate(kp_all):
        xk = pos.sel(keypoint=k).transpose("time", "space").values[:, :2]
        out["keypoint_sigma_px"][k] = residual_jitter(xk, still)[0]
        resid.append((_residual(xk), conf[:, i]))
    for lo, hi in zip(CONFIDENCE_BINS[:-1], CONFIDENCE_BINS[1:], strict=True):
        rs = [r[still & (c >= lo) & (c < hi)] for r, c in resid]
        r = np.concatenate([x.ravel() for x in rs]) if rs else np.array([])
        sd, _ = _robust_sd(r)
        out["confidence_sigma_px"].append({"confidence": f"[{lo:g}, {min(hi, 1.0):g}]",
                                           "sigma_px": sd, "n": int(r.size)})
    return out


def choose_half_width(
    sigma_px: float,
    *,
    fps: float,
    px_per_mm: float,
    threshold_mm_s: float,
    min_window_s: float = 0.2,
    max_window_s: float = 0.5,
    quantile: float = 0.99,
    share: float = 0.5,
) -> tuple[int, float, str]:
    """Shortest speed window whose noise speed stays under ``share`` of a threshold.

    Returns
    -------
    (half_width, noise_speed_mm_s, reason)
        ``half_width`` h of the ``2h+1``-frame window (between ``min_window_s`` and
        ``max_window_s``), the speed jitter ``sigma_px`` alone exceeds in ``1 - quantile``
        of frames with it (mm/s), and a sentence saying why. ``share`` (default a half):
        the part of ``threshold_mm_s`` the noise speed may reach.
    """
    def hw(window_s: float) -> int:
        return half_width_for(window_s, fps)

    h_min, h_max = hw(min_window_s), max(hw(min_window_s), hw(max_window_s))
    sigma = float(sigma_px) if np.isfinite(sigma_px) else 0.0

    def v(h: int) -> float:
        return noise_speed(sigma, fps=fps, half_width=h, quantile=quantile) / px_per_mm

    h = next((k for k in range(h_min, h_max + 1) if v(k) <= share * threshold_mm_s), h_max)
    if h == h_min:
        reason = (f"speed window {(2 * h + 1) / fps:.3f} s: the tracking noise ({v(h):.2f} mm/s "
                  f"at {100 * quantile:g} %) is under {share:g} x the {threshold_mm_s:g} mm/s threshold.")
    else:
        reason = (f"speed window lengthened to {(2 * h + 1) / fps:.3f} s so that the tracking "
                  f"noise ({v(h):.2f} mm/s at {100 * quantile:g} %, {v(h_min):.2f} at "
                  f"{(2 * h_min + 1) / fps:.3f} s) stays under {share:g} x the {threshold_mm_s:g} mm/s "
                  "threshold" + ("." if v(h) <= share * threshold_mm_s else
                                 " as far as the longest window allows."))
    return h, v(h), reason
