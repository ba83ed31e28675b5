"""Kinematics of pose trajectories: velocity, speed, acceleration, angles, distances, shape.

Functions take ``position`` (a DataArray with ``time`` and ``space``, usually
``ds.position``) or the whole pose Dataset when they need keypoint names, and return named
DataArrays whose ``attrs["units"]`` state the unit (``px``, ``mm``, ``px/s``, ``rad``,
``rad/s``...). Derivatives follow :func:`numpy.gradient` over the ``time`` coordinate
(second-order central differences, first-order at the ends), which is what movement's
``compute_velocity`` does through ``xarray.DataArray.differentiate``. Convert lengths to mm
with :func:`to_mm` (``px_per_mm`` from ``attrs``, :func:`calibrate_px_per_mm` or
:func:`px_per_mm_from_arena`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import xarray as xr

from pose.dataset import append_history, validate_pose
from pose.keypoints import find_keypoint

logger = logging.getLogger(__name__)

__all__ = [
    "compute_velocity", "compute_speed", "compute_acceleration", "compute_heading",
    "compute_angular_velocity", "compute_joint_angle", "compute_pairwise_distance",
    "compute_body_length", "compute_hull_area", "compute_distance_travelled",
    "egocentric_align", "calibrate_px_per_mm", "px_per_mm_from_arena", "to_mm", "find_keypoint",
]


def _length_unit(da: xr.DataArray) -> str:
    return str(da.attrs.get("units", "px"))


def _time_unit(da: xr.DataArray) -> str:
    tu = da.attrs.get("time_unit")
    if tu is None and "time" in da.coords:
        tu = "s" if np.issubdtype(da["time"].dtype, np.floating) else "frame"
    return "s" if tu in ("s", "seconds") else "frame"


def _check_position(position: xr.DataArray, name: str) -> None:
    if not isinstance(position, xr.DataArray):
        raise TypeError(f"{name}: expected an xarray.DataArray (e.g. ds.position), got {type(position).__name__}")
    for dim in ("time", "space"):
        if dim not in position.dims:
            raise ValueError(f"{name}: position must have a '{dim}' dimension, has {position.dims}")


def _derivative(da: xr.DataArray, order: int) -> xr.DataArray:
    axis = da.dims.index("time")
    t = np.asarray(da["time"].values, dtype=float)
    vals = np.asarray(da.values, dtype=float)
    for _ in range(order):
        vals = np.gradient(vals, t, axis=axis) if vals.shape[axis] > 1 else np.full_like(vals, np.nan)
    return da.copy(data=vals)


def compute_velocity(position: xr.DataArray) -> xr.DataArray:
    """Velocity vector (time, space, ...) in ``<length unit>/s`` (or per frame without fps).

    Equals movement's ``compute_velocity``: :func:`numpy.gradient` over the time coordinate.
    """
    _check_position(position, "compute_velocity")
    out = _derivative(position, 1)
    out.name = "velocity"
    out.attrs = {"units": f"{_length_unit(position)}/{_time_unit(position)}"}
    return out


def compute_acceleration(position: xr.DataArray) -> xr.DataArray:
    """Acceleration vector (gradient of the gradient), in ``<length unit>/s^2``."""
    _check_position(position, "compute_acceleration")
    out = _derivative(position, 2)
    out.name = "acceleration"
    out.attrs = {"units": f"{_length_unit(position)}/{_time_unit(position)}^2"}
    return out


def compute_speed(position: xr.DataArray) -> xr.DataArray:
    """Speed: Euclidean norm of the velocity over ``space`` (dims as position minus space)."""
    vel = compute_velocity(position)
    out = np.sqrt((vel**2).sum("space", skipna=False))
    out.name = "speed"
    out.attrs = {"units": vel.attrs["units"]}
    return out


def _kp(ds: xr.Dataset, name: str) -> xr.DataArray:
    return ds["position"].sel(keypoint=find_keypoint(ds, name), drop=True)


def compute_heading(ds: xr.Dataset, from_kp: str = "tail_base", to_kp: str = "snout", *,
                    floor: object | None = None) -> xr.DataArray:
    """Angle of the body axis ``from_kp -> to_kp`` in radians (time, individual).

    The angle is ``atan2(dy, dx)`` in image coordinates (x right, y down), so with y down a
    positive angle turns clockwise on screen. Range (-pi, pi].

    On a 3D pose (mm) it is the angle of the body axis projected onto the floor
    (:func:`features.threed.compute_heading_3d`; ``floor`` a :class:`features.threed.Floor`
    or spec, default :func:`features.threed.resolve_floor`), measured from the floor
    frame's x axis, counter-clockwise seen from above.
    """
    validate_pose(ds, context="compute_heading")
    if ds.sizes.get("space") == 3:
        from features.threed import compute_heading_3d

        return compute_heading_3d(ds, find_keypoint(ds, from_kp), find_keypoint(ds, to_kp), floor=floor)
    v = _kp(ds, to_kp) - _kp(ds, from_kp)
    out = np.arctan2(v.sel(space="y", drop=True), v.sel(space="x", drop=True))
    out.name = "heading"
    out.attrs = {"units": "rad", "from_keypoint": from_kp, "to_keypoint": to_kp}
    return out


def _refuse_3d(ds: xr.Dataset, name: str, why: str) -> None:
    """A clear error for a 2-D-only feature given 3D positions (a calibrated world need not have z up)."""
    if ds.sizes.get("space") == 3:
        raise ValueError(
            f"{name}: got 3D positions (space = x, y, z) but {why}; a triangulated world's z is not "
            "necessarily vertical. If it is (e.g. the calibration's origin board lay on the floor), pass "
            "ds.sel(space=['x', 'y']) explicitly")


def compute_angular_velocity(angle: xr.DataArray) -> xr.DataArray:
    """Time derivative of an angle (rad) after unwrapping, in rad/s (NaN gaps are kept)."""
    if "time" not in angle.dims:
        raise ValueError(f"compute_angular_velocity: angle needs a 'time' dim, has {angle.dims}")
    axis = angle.dims.index("time")
    vals = np.asarray(angle.values, dtype=float)
    nan = np.isnan(vals)
    filled = _ffill(vals, axis)
    unwrapped = np.unwrap(np.where(np.isnan(filled), 0.0, filled), axis=axis)
    unwrapped[nan] = np.nan
    t = np.asarray(angle["time"].values, dtype=float)
    out = angle.copy(data=np.gradient(unwrapped, t, axis=axis))
    out.name = "angular_velocity"
    out.attrs = {"units": f"rad/{_time_unit(angle)}"}
    return out


def _ffill(vals: np.ndarray, axis: int) -> np.ndarray:
    v = np.moveaxis(vals, axis, 0)
    idx = np.where(~np.isnan(v), np.arange(v.shape[0]).reshape((-1,) + (1,) * (v.ndim - 1)), 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = np.take_along_axis(v, idx, axis=0)
    return np.moveaxis(out, 0, axis)


def compute_joint_angle(ds: xr.Dataset, a: str, vertex: str, b: str, *, degrees: bool = True) -> xr.DataArray:
    """Inner angle at ``vertex`` between the segments to ``a`` and ``b`` (0..180 deg or 0..pi)."""
    validate_pose(ds, context="compute_joint_angle")
    u = _kp(ds, a) - _kp(ds, vertex)
    w = _kp(ds, b) - _kp(ds, vertex)
    dot = (u * w).sum("space", skipna=False)
    cross = u.sel(space="x", drop=True) * w.sel(space="y", drop=True) - u.sel(space="y", drop=True) * w.sel(space="x", drop=True)
    if ds.sizes["space"] == 3:
        cr = np.cross(u.transpose(..., "space").values, w.transpose(..., "space").values)
        cross = dot.copy(data=np.linalg.norm(cr, axis=-1))
    ang = np.arctan2(np.abs(cross), dot)
    out = np.degrees(ang) if degrees else ang
    out.name = f"angle_{vertex}"
    out.attrs = {"units": "deg" if degrees else "rad", "keypoints": [a, vertex, b]}
    return out


def compute_pairwise_distance(ds: xr.Dataset, kp_a: str, kp_b: str) -> xr.DataArray:
    """Euclidean distance between two keypoints of each individual (time, individual), px."""
    validate_pose(ds, context="compute_pairwise_distance")
    d = np.sqrt(((_kp(ds, kp_a) - _kp(ds, kp_b)) ** 2).sum("space", skipna=False))
    d.name = f"distance_{kp_a}_{kp_b}"
    d.attrs = {"units": _length_unit(ds["position"])}
    return d


def compute_body_length(ds: xr.Dataset, snout: str = "snout", tail_base: str = "tail_base") -> xr.DataArray:
    """Snout to tail-base distance (time, individual), px."""
    out = compute_pairwise_distance(ds, snout, tail_base)
    out.name = "body_length"
    return out


def compute_hull_area(ds: xr.Dataset, keypoints: Sequence[str] | None = None) -> xr.DataArray:
    """Area of the convex hull of the visible keypoints, px^2 (time, individual).

    NaN where fewer than 3 keypoints are visible. Vectorised over frames: a directed pair
    ``i -> j`` is a hull edge when every other visible point lies on its left (or on the
    line, but not strictly inside the segment); the shoelace sum over hull edges is the area.
    O(K^3) per frame for K keypoints, processed in chunks of frames.
    """
    validate_pose(ds, context="compute_hull_area")
    _refuse_3d(ds, "compute_hull_area", "the hull area is a 2-D area")
    pos = ds["position"]
    if keypoints is not None:
        pos = pos.sel(keypoint=list(keypoints))
    arr = pos.transpose("time", "individual", "keypoint", "space").values[..., :2]
    n_t, n_i, n_k = arr.shape[:3]
    flat = arr.reshape(n_t * n_i, n_k, 2)
    area = np.full(n_t * n_i, np.nan)
    off = ~np.eye(n_k, dtype=bool)
    chunk = max(1, 2_000_000 // max(n_k**3, 1))
    for a in range(0, flat.shape[0], chunk):
        p = flat[a:a + chunk]
        vis = ~np.isnan(p).any(axis=-1)  # (n, K)
        q = np.where(vis[..., None], p, 0.0)
        e = q[:, None, :, :] - q[:, :, None, :]  # e[n, i, j] = p_j - p_i
        r = q[:, None, :, :] - q[:, :, None, :]  # r[n, i, k] = p_k - p_i
        cross = e[:, :, :, None, 0] * r[:, :, None, :, 1] - e[:, :, :, None, 1] * r[:, :, None, :, 0]
        dot = e[:, :, :, None, 0] * r[:, :, None, :, 0] + e[:, :, :, None, 1] * r[:, :, None, :, 1]
        elen2 = (e**2).sum(-1)[..., None]
        scale = 1e-9 * (np.abs(q).max(axis=(1, 2))[:, None, None, None] ** 2 + 1.0)
        inside_seg = (np.abs(cross) <= scale) & (dot > 0) & (dot < elen2)
        ok = (cross >= -scale) & ~inside_seg  # (n, i, j, k)
        ok |= ~vis[:, None, None, :]
        ok[:, np.arange(n_k), :, np.arange(n_k)] = True  # k == i
        ok[:, :, np.arange(n_k), np.arange(n_k)] = True  # k == j
        edge = ok.all(axis=-1) & off & vis[:, :, None] & vis[:, None, :]
        shoelace = q[:, :, None, 0] * q[:, None, :, 1] - q[:, None, :, 0] * q[:, :, None, 1]
        ar = 0.5 * np.abs(np.where(edge, shoelace, 0.0).sum(axis=(1, 2)))
        ar[vis.sum(axis=1) < 3] = np.nan
        area[a:a + chunk] = ar
    return xr.DataArray(area.reshape(n_t, n_i), dims=("time", "individual"),
                        coords={"time": ds["time"], "individual": ds["individual"]},
                        name="hull_area", attrs={"units": "px^2"})


def compute_distance_travelled(position: xr.DataArray, *, cumulative: bool = False) -> xr.DataArray:
    """Path length: sum of frame-to-frame step lengths, skipping steps with a NaN end.

    Parameters
    ----------
    position
        (time, space, ...) positions.
    cumulative
        Return the running total per frame (time, ...) instead of the total.

    Notes
    -----
    Steps across a gap are not counted (the path during the gap is unknown); interpolate
    gaps first to count them as straight lines.
    """
    _check_position(position, "compute_distance_travelled")
    step = np.sqrt((position.diff("time") ** 2).sum("space", skipna=False))
    step = step.fillna(0.0)
    unit = _length_unit(position)
    if cumulative:
        cum = step.cumsum("time")
        first = xr.zeros_like(position.isel(time=[0]).isel(space=0, drop=True))
        out = xr.concat([first, cum], dim="time").assign_coords(time=position["time"])
    else:
        out = step.sum("time")
    out.name = "distance_travelled"
    out.attrs = {"units": unit}
    return out


def egocentric_align(
    ds: xr.Dataset, *, centre: str = "body_center", front: str = "snout", back: str = "tail_base"
) -> xr.Dataset:
    """Translate each frame so ``centre`` is at the origin and rotate the ``back -> front``
    axis onto +x. Returns a pose Dataset (history records the step); frames where the axis is
    unknown are NaN.
    """
    validate_pose(ds, context="egocentric_align")
    if ds.sizes["space"] != 2:
        raise ValueError("egocentric_align needs 2-D positions")
    heading = compute_heading(ds, back, front).values  # (T, I)
    c = _kp(ds, centre).transpose("time", "space", "individual").values  # (T, 2, I)
    pos = ds["position"].values - c[:, :, None, :]
    cos, sin = np.cos(-heading)[:, None, :], np.sin(-heading)[:, None, :]
    x, y = pos[:, 0], pos[:, 1]
    rot = np.stack([cos * x - sin * y, sin * x + cos * y], axis=1)
    out = ds.copy()
    out["position"] = (ds["position"].dims, rot)
    return append_history(out, "egocentric_align", {"centre": centre, "front": front, "back": back})


def calibrate_px_per_mm(p1: Sequence[float], p2: Sequence[float], distance_mm: float) -> float:
    """Pixels per mm from two image points ``distance_mm`` apart."""
    if distance_mm <= 0:
        raise ValueError(f"distance_mm must be positive, got {distance_mm}")
    d = float(np.hypot(*(np.asarray(p2, float)[:2] - np.asarray(p1, float)[:2])))
    if d == 0:
        raise ValueError("calibration points are identical")
    return d / distance_mm


def px_per_mm_from_arena(arena_size_px: float, arena_size_mm: float) -> float:
    """Pixels per mm from the arena's side (or diameter) measured in the image and in reality."""
    if arena_size_px <= 0 or arena_size_mm <= 0:
        raise ValueError("arena sizes must be positive")
    return float(arena_size_px) / float(arena_size_mm)


_LENGTH_POWER = {"px": 1, "px^2": 2}


def to_mm(da: xr.DataArray, px_per_mm: float | None = None, *, ds: xr.Dataset | None = None) -> xr.DataArray:
    """Convert a DataArray in px-based units (``px``, ``px/s``, ``px/s^2``, ``px^2``) to mm.

    ``px_per_mm`` defaults to ``ds.attrs["px_per_mm"]``. Angles and unitless arrays raise.
    """
    if px_per_mm is None and ds is not None:
        px_per_mm = ds.attrs.get("px_per_mm")
    if px_per_mm is None or not px_per_mm > 0:
        raise ValueError("to_mm needs px_per_mm (argument, or attrs['px_per_mm'] of ds)")
    unit = str(da.attrs.get("units", "px"))
    head, _, rest = unit.partition("/")
    if head not in _LENGTH_POWER:
        raise ValueError(f"cannot convert units {unit!r} to mm")
    power = _LENGTH_POWER[head]
    out = da / px_per_mm**power
    out.name = da.name
    out.attrs = dict(da.attrs)
    out.attrs["units"] = head.replace("px", "mm") + (f"/{rest}" if rest else "")
    return out
