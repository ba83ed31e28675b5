"""Features of a triangulated 3D pose (space = x, y, z in mm): the floor, heights, the 3D feature table.

A triangulated world is the calibration's (the first camera, or a board): its z need not
point up. :func:`estimate_floor` finds the floor from the animal itself: the body centre
walks on it, so its track spans a plane whose normal is the track's least principal axis;
the paws (or else the lowest keypoints) say which side is up and where the floor lies.
:func:`compute_height` gives each keypoint's height above that floor (rearing: the snout's
height). :func:`compute_feature_table_3d` is :func:`features.table.compute_feature_table`
for 3D poses (it dispatches here): speed, acceleration and distance in mm from all three
axes, world ``x_mm, y_mm, z_mm`` and heights. 2D-only families (heading, zones in image
pixels) are left out, or refused when asked for by name.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from features import kinematics as kin
from pose.keypoints import find_role, select_keypoints

logger = logging.getLogger(__name__)

__all__ = ["Floor", "FloorError", "estimate_floor", "compute_height", "compute_feature_table_3d"]

#: Minimum ratio of the body track's in-plane spread to its spread along the normal.
MIN_PLANARITY = 4.0


class FloorError(ValueError):
    """The floor cannot be found from the data (e.g. the animal hardly moves); says why."""


@dataclass(frozen=True)
class Floor:
    """A floor plane in the world of a 3D pose.

    Attributes
    ----------
    normal
        ``(3,)`` unit vector pointing up (away from the floor).
    offset_mm
        Height of the floor along ``normal``: a point ``p`` lies ``p @ normal - offset_mm``
        above it.
    how
        How it was found (printed with the features).
    """

    normal: np.ndarray
    offset_mm: float
    how: str


def _points(ds: xr.Dataset, keypoints: list[str]) -> np.ndarray:
    """``(time, keypoint, individual, 3)`` positions of ``keypoints``."""
    return ds["position"].sel(keypoint=keypoints).transpose("time", "keypoint", "individual", "space").values


def _paws(ds: xr.Dataset) -> list[str]:
    out: list[str] = []
    for role in ("hindpaws", "forepaws"):
        try:
            out += select_keypoints(ds, role)  # type: ignore[arg-type]
        except ValueError:
            pass
    return out


def estimate_floor(ds: xr.Dataset, *, min_planarity: float = MIN_PLANARITY) -> Floor:
    """The floor plane from the animal's own 3D track.

    Parameters
    ----------
    ds
        3D pose Dataset (mm).
    min_planarity
        The body track's second principal spread must exceed its least one by this factor,
        and half the animal's size (the animal must walk over the floor, not stay on one spot).

    Returns
    -------
    Floor

    Raises
    ------
    FloorError
        Not 3D, or a track too short or too compact to define a plane (naming its spreads).

    Notes
    -----
    Normal: least principal axis of the body-centre track (all individuals), from the
    body-centre keypoint or the centroid of the keypoints. Up: the side of the paws' median
    below the other keypoints' median (with no paw keypoint: the side of the long tail of
    heights, as rearing and a raised head reach far above the floor while nothing goes far
    below it). Offset: the median over frames of the lowest paw (at least one paw is on
    the floor in most frames; noise puts it about one noise std below the true floor),
    else the 1st percentile of all keypoints.
    """
    if ds.sizes.get("space") != 3:
        raise FloorError(f"a floor needs 3D positions; got space = {ds.sizes.get('space')}")
    centre = find_role(ds, "body_centre")
    track = (ds["position"].sel(keypoint=centre) if centre else ds["position"].mean("keypoint", skipna=True))
    xyz = track.transpose("time", "individual", "space").values.reshape(-1, 3)
    xyz = xyz[np.isfinite(xyz).all(1)]
    if len(xyz) < 10:
        raise FloorError(f"only {len(xyz)} frames with a known body position: cannot find the floor")
    _, sv, vt = np.linalg.svd(xyz - xyz.mean(0), full_matrices=False)
    sv = sv / np.sqrt(len(xyz))  # std along each principal axis, mm
    names = [str(k) for k in ds["keypoint"].values]
    pts = _points(ds, names)
    with warnings.catch_warnings():  # keypoints unseen in a frame
        warnings.simplefilter("ignore", RuntimeWarning)
        size = float(np.nanmedian(2 * np.linalg.norm(pts - np.nanmean(pts, axis=1, keepdims=True), axis=-1)))
    if not sv[1] >= 0.5 * size:
        raise FloorError(
            f"the body track spreads only {sv[0]:.1f} / {sv[1]:.1f} mm in its plane, against an animal of "
            f"~{size:.0f} mm: the animal hardly moves, so its track does not define a floor; give the floor "
            "yourself (features.threed.Floor)")
    if sv[1] < min_planarity * max(sv[2], 1e-9):
        raise FloorError(
            f"the body track spreads {sv[0]:.1f} / {sv[1]:.1f} / {sv[2]:.1f} mm (std along its principal axes): "
            f"not a walk over a floor (need the second > {min_planarity:g}x the third); give the floor yourself "
            "(features.threed.Floor)")
    normal = vt[2] / np.linalg.norm(vt[2])
    paws = _paws(ds)
    others = [k for k in names if k not in paws]
    h_all = pts @ normal
    if paws and others:
        hp, ho = _points(ds, paws) @ normal, _points(ds, others) @ normal
        if np.nanmedian(hp) > np.nanmedian(ho):
            normal, hp = -normal, -hp
        lowest = np.nanmin(hp.reshape(hp.shape[0], -1), axis=1)
        offset = float(np.nanmedian(lowest))
        how = (f"plane of the {centre or 'centroid'} track (spread {sv[0]:.0f} / {sv[1]:.0f} / {sv[2]:.1f} mm); "
               f"up = away from the paws ({', '.join(paws)}); floor = the median lowest paw")
    else:
        h = h_all[np.isfinite(h_all)]
        lo, med, hi = np.percentile(h, [1, 50, 99])
        if hi - med < med - lo:
            normal, h = -normal, -h
        offset = float(np.percentile(h, 1))
        how = (f"plane of the {centre or 'centroid'} track (spread {sv[0]:.0f} / {sv[1]:.0f} / {sv[2]:.1f} mm); "
               "no paw keypoint: up = the side of the long tail of heights; floor = the 1st percentile of all "
               "keypoints (heights are above the lowest points seen)")
    logger.info("floor: %s", how)
    return Floor(normal=normal, offset_mm=offset, how=how)


def compute_height(ds: xr.Dataset, floor: Floor | None = None) -> xr.DataArray:
    """Height of every keypoint above the floor, mm (time, keypoint, individual).

    Parameters
    ----------
    ds
        3D pose Dataset (mm).
    floor
        The floor; default :func:`estimate_floor`.
    """
    floor = estimate_floor(ds) if floor is None else floor
    return _height_of(ds["position"], floor)


def _height_of(position: xr.DataArray, floor: Floor) -> xr.DataArray:
    normal = xr.DataArray(np.asarray(floor.normal, float), dims=["space"], coords={"space": position["space"].values})
    h = xr.dot(position, normal, dim="space").where(position.notnull().all("space")) - floor.offset_mm
    h.name = "height"
    h.attrs.update(units="mm", long_name="height above the floor")
    return h


def compute_feature_table_3d(
    ds: xr.Dataset,
    zones: object | None = None,
    *,
    keypoint: str | None = None,
    families: Collection[str] | None = None,
    floor: Floor | None = None,
) -> pd.DataFrame:
    """Per-frame features of a 3D pose (mm), laid out as :func:`features.table.compute_feature_table`.

    Parameters
    ----------
    ds
        3D pose Dataset with fps, positions in mm (``ethopose pose triangulate``).
    zones
        Must be None: zones are drawn in image pixels.
    keypoint
        Reference point (default: a body-centre keypoint, else the centroid).
    families
        ``speed``, ``distance``, ``keypoint_speeds`` (``heading`` is 2D only and refused
        when named; by default it is left out, logged).
    floor
        Default :func:`estimate_floor`; when it cannot be found the height columns are
        left out and the reason is logged as a warning and kept in ``attrs["floor"]``.

    Returns
    -------
    pandas.DataFrame
        ``time_s, frame, individual, x_mm, y_mm, z_mm`` (world), ``height_mm`` (reference
        point above the floor), ``snout_height_mm`` and ``max_height_mm`` (highest
        keypoint: rearing), ``speed_mm_s, acceleration_mm_s2`` (3D), ``distance_mm``
        (cumulative 3D path), ``speed_<keypoint>_mm_s``. attrs ``length_unit = "mm"``,
        ``space = 3``, ``floor``.
    """
    from features.table import FAMILIES, reference_position, tidy_table

    if zones is not None:
        raise ValueError("zones are drawn in image pixels, a 3D pose is in world mm: compute zones on one "
                         "camera's 2D pose (or its reprojection, ethopose pose triangulate --reprojection-dir)")
    fam = set(FAMILIES) - {"keypoint_speeds", "heading", "zones"} if families is None else set(families)
    if families is None:
        logger.info("3D pose: heading and zones (2D image features) left out of the table")
    if "heading" in fam:
        kin._refuse_3d(ds, "heading", "heading is an angle in the image plane")
    unknown = fam - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown feature families {sorted(unknown)}; known: {list(FAMILIES)}")
    ref, ref_name = reference_position(ds, keypoint)
    cols: dict[str, np.ndarray] = {}

    def add(name: str, da: xr.DataArray) -> None:
        cols[name] = np.asarray(da.transpose("time", "individual").values, dtype=float)

    for axis in ("x", "y", "z"):
        add(f"{axis}_mm", ref.sel(space=axis, drop=True))
    try:
        floor = estimate_floor(ds) if floor is None else floor
        floor_note = floor.how
    except FloorError as exc:
        floor, floor_note = None, f"no floor: {exc}"
        logger.warning("3D features without heights: %s", exc)
    if floor is not None:
        h = compute_height(ds, floor)
        add("height_mm", _height_of(ref, floor))
        snout = find_role(ds, "snout")
        if snout:
            add("snout_height_mm", h.sel(keypoint=snout, drop=True))
        add("max_height_mm", h.max("keypoint", skipna=True))
    if "speed" in fam:
        add("speed_mm_s", kin.compute_speed(ref))
        acc = kin.compute_acceleration(ref)
        add("acceleration_mm_s2", np.sqrt((acc**2).sum("space", skipna=False)))
    if "distance" in fam:
        add("distance_mm", kin.compute_distance_travelled(ref, cumulative=True))
    if "keypoint_speeds" in fam:
        speeds = kin.compute_speed(ds["position"])
        for k in ds["keypoint"].values:
            add(f"speed_{k}_mm_s", speeds.sel(keypoint=k, drop=True))
    table = tidy_table(ds, cols)
    table.attrs = {"reference_keypoint": ref_name, "length_unit": "mm", "px_per_mm": None,
                   "fps": float(ds.attrs["fps"]), "space": 3, "floor": floor_note}
    return table
