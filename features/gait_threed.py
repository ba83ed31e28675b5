"""Gait on a 3D pose: the paw in the floor's frame, and floor contact from its height.

:func:`features.gait.detect_step_cycles` is the one step-cycle detector for 2D and 3D poses;
on a 3D pose it calls the two helpers here:

- :func:`paw_in_floor_frame`: the paw's track as ``x, y`` on the floor and its height
  above it (mm), so speed is taken over the ground in 3D and stride length along the floor;
- :func:`gate_by_contact`: each cycle's paw heights (``swing_height``, ``stance_height``)
  and the contact check: a stance off the floor is a paw held still in the air (rearing,
  grooming), not a step, and its cycle is dropped.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

logger = logging.getLogger(__name__)

__all__ = ["HEIGHT_COLUMNS", "paw_in_floor_frame", "gate_by_contact", "contact_threshold_mm"]

#: Columns :func:`gate_by_contact` adds to the step-cycle table of a 3D pose.
HEIGHT_COLUMNS = ["swing_height", "stance_height"]


def paw_in_floor_frame(ds: xr.Dataset, one: xr.Dataset, floor: object | None) -> tuple[np.ndarray, str]:
    """``(time, 3)`` track of the single paw in ``one`` in the floor frame (x, y on the floor,
    z = height above it) and its length unit.

    Parameters
    ----------
    ds
        The whole 3D pose (the floor is estimated from all its keypoints when not given).
    one
        The cleaned pose of one paw and one individual.
    floor
        A :class:`features.threed.Floor`, a spec string (``"z=0"``...) or None (estimated).
    """
    from features.threed import resolve_floor, to_floor_frame

    if any(h.get("op") == "smooth_points3d" for h in ds.attrs.get("history", []) if isinstance(h, dict)):
        logger.warning("gait on Kalman-smoothed 3D points: the smoothing rounds off the start and end of each swing "
                       "(virtual 3-camera mouse: duty factor 0.02-0.04 lower than on the raw points); triangulate "
                       "with --no-smooth for gait, detect_step_cycles smooths to the measured noise itself")
    fl = resolve_floor(ds, floor)  # type: ignore[arg-type]
    xyz = to_floor_frame(one, fl)["position"].transpose("time", "space", "keypoint", "individual").values[:, :, 0, 0]
    return xyz, str(ds["position"].attrs.get("units") or ds.attrs.get("length_unit") or "mm")


def _heights_in(t: np.ndarray, h: np.ndarray, a: float, b: float) -> np.ndarray:
    sel = h[(t >= a) & (t <= b)]
    return sel[np.isfinite(sel)]


def contact_threshold_mm(stance_heights: np.ndarray, swing_peaks: np.ndarray) -> tuple[float, float]:
    """Contact level and threshold (mm) of a paw, from the heights of its stance frames and
    the peaks of its swings: the level is the median stance height; the threshold is 3 robust
    SD above it, and at least a quarter of the way from the level to the median swing peak."""
    hs = stance_heights[np.isfinite(stance_heights)]
    if hs.size == 0:
        return np.nan, np.nan
    level = float(np.median(hs))
    sd = 1.4826 * float(np.median(np.abs(hs - level)))
    peaks = swing_peaks[np.isfinite(swing_peaks)]
    lift = float(np.median(peaks)) - level if peaks.size else 0.0
    return level, level + max(3.0 * sd, 0.25 * max(lift, 0.0))


def gate_by_contact(cycles: pd.DataFrame, t: np.ndarray, height: np.ndarray, paw: str) -> pd.DataFrame:
    """Add ``swing_height`` / ``stance_height`` to one paw's cycles and drop those not on the floor.

    A cycle is kept when its median stance height and its lowest heights within a frame of
    toe-off, touch-down and the next toe-off are all at or below the paw's contact threshold
    (:func:`contact_threshold_mm`); ``cycle`` is renumbered. The number dropped is logged.

    Parameters
    ----------
    cycles
        One paw's rows of :func:`features.gait.detect_step_cycles`.
    t, height
        The frame times (s) and the paw's height above the floor (mm) used for them.
    paw
        The paw's name (for the log).
    """
    out = cycles.copy()
    for c in HEIGHT_COLUMNS:
        out[c] = pd.Series(dtype=float)
    if out.empty:
        return out
    swing_peak, stance_med, stance_all = [], [], []
    for a, b, e in zip(out["swing_start_s"], out["swing_end_s"], out["stance_end_s"], strict=True):
        hs, hst = _heights_in(t, height, a, b), _heights_in(t, height, b, e)
        swing_peak.append(float(hs.max()) if hs.size else np.nan)
        stance_med.append(float(np.median(hst)) if hst.size else np.nan)
        stance_all.append(hst)
    out["swing_height"], out["stance_height"] = swing_peak, stance_med
    level, thr = contact_threshold_mm(np.concatenate(stance_all), np.asarray(swing_peak))
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 0.0

    def low_near(te: float) -> float:  # the lowest height within a frame of an event (events fall between frames)
        near = _heights_in(t, height, te - 1.01 * dt, te + 1.01 * dt)
        return float(near.min()) if near.size else np.nan

    h_ev = np.array([[low_near(te) for te in out[c]] for c in ("swing_start_s", "swing_end_s", "stance_end_s")])
    on_floor = ~(out["stance_height"].to_numpy() > thr) & ~(h_ev > thr).any(axis=0)  # unknown (NaN) is no evidence
    if not on_floor.all():
        logger.info("gait %s: %d of %d cycles dropped: the paw was off the floor (stance or an event above %.1f mm; "
                    "contact level %.1f mm): a paw held up (rearing, grooming) is not a step",
                    paw, int((~on_floor).sum()), len(out), thr, level)
    out = out[on_floor].reset_index(drop=True)
    out["cycle"] = np.arange(1, len(out) + 1)
    return out
