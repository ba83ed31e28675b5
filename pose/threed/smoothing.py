"""RTS Kalman smoothing of triangulated 3D tracks, with settings taken from the data.

Noise in each camera's 2D points adds speed: ``|v + e|`` is on average larger than ``|v|``
(about +10 % for a walking mouse seen by 3 cameras with 1 px noise). This module smooths
each keypoint's x, y and z with a constant-velocity Kalman model and a Rauch-Tung-Striebel
pass (:mod:`pose.kalman`), where

- the measurement variance of every point is its own triangulation uncertainty
  (``position_std`` of :func:`pose.threed.triangulation.triangulate_poses`: the 2D noise
  estimated from the reprojection residuals, propagated through the cameras' geometry), so
  a point seen by fewer or worse-placed cameras counts less;
- the process noise (the std of the white-noise acceleration, mm/s^2) is the maximum
  likelihood value of the filter's innovations on this track
  (:func:`pose.kalman.estimate_process_noise`), one per keypoint: a fast-moving keypoint
  gets a larger one and is smoothed less.

Both are logged with their reason and can be overridden.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import xarray as xr

from pose.dataset import append_history
from pose.kalman import estimate_process_noise, kalman_smooth

logger = logging.getLogger(__name__)

__all__ = ["SmoothingInputError", "smooth_points3d"]


class SmoothingInputError(ValueError):
    """A 3D Dataset the smoother cannot use (no per-point uncertainty, not 3D)."""


def smooth_points3d(
    ds: xr.Dataset,
    *,
    process_noise_mm_s2: float | Mapping[str, float] | None = None,
    noise_scale: float = 1.0,
    max_time_constant_s: float = 0.25,
) -> xr.Dataset:
    """Kalman (RTS) smoothing of a triangulated 3D pose Dataset.

    Parameters
    ----------
    ds
        Output of :func:`pose.threed.triangulation.triangulate_poses`: ``position``
        (time, space = x y z, keypoint, individual) in mm and ``position_std`` (same dims, mm).
    process_noise_mm_s2
        White-noise acceleration std of the constant-velocity model (mm/s^2; per frame^2
        without fps), one value or ``{keypoint: value}``. Default: the maximum-likelihood
        value per keypoint (logged).
    noise_scale
        Multiplies ``position_std`` (the measurement std). 1 trusts the triangulation's
        own estimate.
    max_time_constant_s
        Floor on the fitted process noise: the smoother's time constant
        ``sqrt(measurement std / process noise)`` stays below this (a keypoint that hardly
        moves in the whole recording would otherwise be fitted by one straight line).
        The floor is logged when it binds; a given ``process_noise_mm_s2`` is used as is.

    Returns
    -------
    xarray.Dataset
        A copy with smoothed ``position`` (NaN where the input was NaN: gaps are not
        filled), ``position_raw`` (the input positions), ``process_noise`` (keypoint;
        mm/s^2) and a history entry with the settings and why.

    Raises
    ------
    SmoothingInputError
        Without ``position_std``, or not 3D.
    """
    if "position_std" not in ds or ds.sizes.get("space") != 3:
        raise SmoothingInputError(
            f"{ds.attrs.get('source_file', 'the 3D Dataset')}: smoothing needs 3D positions with a "
            "'position_std' per point (written by `ethopose pose triangulate`); this Dataset has "
            f"space={ds.sizes.get('space')} and variables {sorted(ds.data_vars)}")
    fps = ds.attrs.get("fps")
    dt = 1.0 / float(fps) if fps else 1.0
    if not fps:
        logger.warning("3D smoothing: no fps; time step = 1 frame, process noise in mm/frame^2, the "
                       "time-constant floor taken at 30 fps")
    tau = max_time_constant_s if fps else max_time_constant_s * 30.0  # in the time step's unit
    pos = ds["position"].transpose("time", "space", "keypoint", "individual").values
    std = ds["position_std"].transpose("time", "space", "keypoint", "individual").values * noise_scale
    out = np.full_like(pos, np.nan)
    chosen = {}
    floored: list[str] = []
    keypoints = [str(k) for k in ds.keypoint.values]
    for k, name in enumerate(keypoints):
        z = pos[:, :, k, :].reshape(pos.shape[0], -1)
        r = std[:, :, k, :].reshape(pos.shape[0], -1) ** 2
        bad = ~np.isfinite(r) | (r <= 0)
        z = np.where(bad, np.nan, z)  # a point without an uncertainty is treated as missing
        r = np.where(bad, 1.0, r)
        if not np.isfinite(z).any():
            chosen[name] = float("nan")
            continue
        if process_noise_mm_s2 is None:
            q = estimate_process_noise(z, r, dt, order=2)
            floor = float(np.sqrt(np.median(r[np.isfinite(z)]))) / tau**2
            if q < floor:
                logger.info("3D smoothing: %s: maximum-likelihood process noise %.3g < %.3g mm/s^2, the floor "
                            "that keeps the smoothing time constant under %.2f s; using the floor",
                            name, q, floor, tau)
                floored.append(name)
                q = floor
        elif isinstance(process_noise_mm_s2, Mapping):
            q = float(process_noise_mm_s2[name])
        else:
            q = float(process_noise_mm_s2)
        chosen[name] = q
        sm = kalman_smooth(z, r, dt=dt, order=2, process_noise=q)
        out[:, :, k, :] = np.where(np.isfinite(z), sm, np.nan).reshape(pos.shape[0], 3, -1)
    how = "given" if process_noise_mm_s2 is not None else "maximum likelihood of the innovations"
    med_std = float(np.nanmedian(std))
    logger.info("3D smoothing: constant-velocity RTS Kalman; measurement std = each point's triangulation "
                "uncertainty (median %.2f mm, x%.2f); process noise (%s) per keypoint: %s mm/s^2; "
                "override with process_noise_mm_s2", med_std, noise_scale, how,
                ", ".join(f"{k} {v:.0f}" for k, v in chosen.items()))
    res = ds.copy()
    res["position_raw"] = ds["position"].copy()
    res["position"] = (("time", "space", "keypoint", "individual"), out)
    res["position"] = res["position"].transpose(*ds["position"].dims)
    res["position"].attrs = dict(ds["position"].attrs)
    res["process_noise"] = (("keypoint",), np.array([chosen[k] for k in keypoints]),
                            {"units": "mm/s^2" if fps else "mm/frame^2",
                             "long_name": f"white-noise acceleration std ({how})"})
    return append_history(res, "smooth_points3d", {
        "model": "constant-velocity RTS Kalman", "process_noise": chosen, "process_noise_from": how,
        "floored_keypoints": floored, "max_time_constant_s": max_time_constant_s,
        "measurement_std": f"position_std x {noise_scale}", "median_measurement_std_mm": med_std})
