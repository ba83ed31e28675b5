"""Shared pieces of the behaviour rules: keypoint roles, calibration, one individual, speeds.

The rules (:mod:`behavior.rules`, :mod:`behavior.freezing`, :mod:`behavior.posture`) take a
clean pose Dataset (px, ``fps`` and ``px_per_mm`` in attrs) and work in mm and mm/s.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy import ndimage

from behavior.noise import slope_speed

logger = logging.getLogger(__name__)


def resolve_px_per_mm(ds: xr.Dataset, px_per_mm: float | None = None) -> float:
    """Calibration (px/mm): ``px_per_mm`` when given, else ``attrs["px_per_mm"]``."""
    if px_per_mm is not None:
        if not np.isfinite(px_per_mm) or px_per_mm <= 0:
            raise ValueError(f"px_per_mm must be positive, got {px_per_mm}")
        return float(px_per_mm)
    ppm = ds.attrs.get("px_per_mm")
    if ppm is None or not np.isfinite(float(ppm)) or float(ppm) <= 0:
        raise ValueError(
            "thresholds are in mm/s but the pose data has no spatial calibration: pass "
            "px_per_mm (CLI: --px-per-cm 32 or --px-per-mm 3.2) or set attrs['px_per_mm']"
        )
    return float(ppm)


def _px_per_cm(ds: xr.Dataset, px_per_cm: float | None) -> float:
    """Calibration in px/cm (kept for :mod:`behavior.pose_features`; rules use mm)."""
    return 10.0 * resolve_px_per_mm(ds, None if px_per_cm is None else px_per_cm / 10.0)


def clean_pose(
    ds: xr.Dataset, *, p_cutoff: float = 0.6, max_gap_s: float | None = 1.0, smooth_s: float = 0.2
) -> xr.Dataset:
    """Confidence mask, gap interpolation, Savitzky-Golay smooth (for callers without a clean step).

    The rules do not call this: they take a clean Dataset. Kept for
    :mod:`behavior.pose_features` and scripts; it is :func:`features.filters.clean` with
    those three steps.
    """
    from features.filters import clean
    from features.steps import ConfidenceMask, Interpolate, SavGol

    steps = [ConfidenceMask(threshold=p_cutoff), Interpolate(max_gap_s=max_gap_s)]
    if smooth_s and smooth_s > 0:
        steps.append(SavGol(window_s=smooth_s, order=2))
    return clean(ds, steps)


def select_individual(ds: xr.Dataset, individual: str | int | None = None) -> xr.Dataset:
    """One individual of ``ds`` (individual dim kept, length 1).

    Raises
    ------
    ValueError
        ``individual=None`` on a file with several individuals (names them and says how to
        pick one), or an unknown name.
    """
    names = [str(i) for i in ds.coords["individual"].values]
    if individual is None:
        if len(names) > 1:
            raise ValueError(
                f"the pose data has {len(names)} individuals {names}: the rules analyse one at a "
                "time; pass individual=NAME (CLI: --individual NAME, or --individual all for each)"
            )
        return ds.isel(individual=[0])
    if isinstance(individual, (int, np.integer)):
        if not -len(names) <= int(individual) < len(names):
            raise ValueError(f"individual index {individual} out of range for {names}")
        return ds.isel(individual=[int(individual)])
    if str(individual) not in names:
        raise ValueError(f"individual {individual!r} not in the pose data (has {names})")
    return ds.sel(individual=[str(individual)])


def _fps(ds: xr.Dataset) -> float:
    fps = ds.attrs.get("fps")
    if fps is None:
        raise ValueError("behaviour rules need the frame rate: attrs['fps'] is not set (pass --fps)")
    return float(fps)


def _warn_if_raw(ds: xr.Dataset, context: str) -> None:
    ops = [h.get("op") for h in ds.attrs.get("history", []) if isinstance(h, dict)]
    if not any(op in ("clean", "filter_by_confidence", "filter_kalman", "interpolate_gaps") for op in ops):
        logger.info("%s: the pose has no cleaning step in its history; the rules expect a clean "
                    "pose (features.filters.clean): low-confidence points count as positions", context)


def half_width_frames(window_s: float, fps: float) -> int:
    """Half-width ``h`` (frames, >= 1) of the shortest ``2h+1``-frame window >= ``window_s``."""
    from behavior.noise import half_width_for

    return half_width_for(window_s, fps)


def centroid_track(ds: xr.Dataset, keypoints: Sequence[str]) -> np.ndarray:
    """``(time, 2)`` mean position (px) of ``keypoints`` of the (single) individual of ``ds``.

    NaN in a frame where any of them is unknown (a centroid over a changing subset of points
    would jump); a keypoint unknown in more than half the frames is left out (logged).
    """
    pos = ds.position.isel(individual=0).sel(keypoint=list(keypoints)).transpose("time", "space", "keypoint")
    xy = pos.values[:, :2]
    known = np.isfinite(xy).all(axis=1).mean(axis=0)
    keep = known >= 0.5
    if not keep.any():
        keep = known == known.max()
    if not keep.all():
        logger.info("centroid: %s left out (known in %s of frames)",
                    [k for k, m in zip(keypoints, keep, strict=True) if not m], known[~keep].round(2))
    return xy[:, :, keep].mean(axis=2)


def centroid_speed_mm_s(
    ds: xr.Dataset, keypoints: Sequence[str], *, px_per_mm: float, window_s: float = 0.2,
    individual: str | int | None = None,
) -> xr.DataArray:
    """Speed (mm/s) of the mean position of ``keypoints``: slope over ``window_s``, dims ``(time,)``."""
    one = select_individual(ds, individual)
    fps = _fps(ds)
    sp = slope_speed(centroid_track(one, keypoints), fps=fps, half_width=half_width_frames(window_s, fps))
    return xr.DataArray(sp / px_per_mm, dims=("time",), coords={"time": ds.coords["time"].values},
                        name="speed_mm_s", attrs={"units": "mm/s", "window_s": window_s})


def extend_bouts(core: np.ndarray, permissive: np.ndarray) -> np.ndarray:
    """Hysteresis: grow each run of ``core`` over the contiguous run of ``permissive`` around it."""
    lab, _ = ndimage.label(permissive | core)
    keep = np.unique(lab[core])
    keep = keep[keep > 0]
    return np.isin(lab, keep)


def _attr(v: object) -> object:
    if v is None:
        return "None"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    if isinstance(v, dict):
        return json.dumps(v, default=float)
    return v


def _result(values: np.ndarray, ds: xr.Dataset, name: str, params: dict) -> xr.DataArray:
    ind = str(ds.coords["individual"].values[0])
    return xr.DataArray(
        values.astype(bool), dims=("time",), coords={"time": ds.coords["time"].values},
        name=name, attrs={"rule": name, "individual": ind, **{k: _attr(v) for k, v in params.items()}},
    )


def _below(speed: xr.DataArray | np.ndarray, threshold: float) -> np.ndarray:
    v = np.asarray(getattr(speed, "values", speed), dtype=float)
    return np.isfinite(v) & (v < threshold)


def speed_for_threshold(
    one: xr.Dataset, keypoints: Sequence[str], *, px_per_mm: float, threshold_mm_s: float,
    window_s: float | None = None,
) -> tuple[np.ndarray, dict]:
    """Centroid speed (mm/s) with a window chosen so its noise stays under half ``threshold_mm_s``.

    ``window_s`` fixes the window instead. Returns the speed ``(time,)`` and a dict
    (``window_s``, ``noise_sigma_px``, ``noise_speed_mm_s``, ``reason``) for the result's attrs.
    """
    from behavior.noise import choose_half_width, estimate_noise_floor, noise_speed

    fps = _fps(one)
    xy = centroid_track(one, keypoints)
    sigma = float(estimate_noise_floor(one, {"centroid": list(keypoints)})["sigma_px"]["centroid"])
    if window_s is None:
        h, v, reason = choose_half_width(sigma, fps=fps, px_per_mm=px_per_mm, threshold_mm_s=threshold_mm_s)
    else:
        h = half_width_frames(window_s, fps)
        v = noise_speed(sigma if np.isfinite(sigma) else 0.0, fps=fps, half_width=h) / px_per_mm
        reason = f"speed window {window_s:g} s given."
    info = {"window_s": (2 * h + 1) / fps, "noise_sigma_px": sigma, "noise_speed_mm_s": v, "reason": reason}
    return slope_speed(xy, fps=fps, half_width=h) / px_per_mm, info


def clean_for_rules(ds: xr.Dataset, *, p_cutoff: float = 0.6, max_gap_s: float | None = 1.0) -> xr.Dataset:
    """The cleaning the behaviour CLI applies once before the rules: confidence mask, gap fill.

    ``p_cutoff`` (DeepLabCut's default pcutoff 0.6) masks points the network did not see;
    gaps up to ``max_gap_s`` are interpolated. No smoothing: the rules' speed window is the
    smoothing. Uses :func:`features.filters.clean` (the one cleaning function).
    """
    from features.filters import clean
    from features.steps import ConfidenceMask, Interpolate

    return clean(ds, [ConfidenceMask(threshold=p_cutoff), Interpolate(max_gap_s=max_gap_s)])
