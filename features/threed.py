"""Features of a triangulated 3D pose (space = x, y, z in mm): the floor, heights, the 3D feature table.

A triangulated world is the calibration's (the first camera, or a board): its z need not
point up. :func:`estimate_floor` finds the floor from the animal itself: the paws' stance
points span it (else the body centre's track, which walks on it); the other keypoints say
which side is up. The user may give it instead (:func:`floor_from_spec`: ``"z=0"``, a point
and a normal, or the calibration board's first view; :func:`resolve_floor` says which was
used and why). :func:`to_floor_frame` puts the pose in the floor's frame (x, y on the floor,
z = height), where the 2D floor features (zones, heading, gait) apply.
:func:`compute_height` gives each keypoint's height above the floor (rearing: the snout's
height). :func:`compute_feature_table_3d` is :func:`features.table.compute_feature_table`
for 3D poses (it dispatches here): speed, acceleration and distance in mm from all three
axes, world ``x_mm, y_mm, z_mm``, the floor position and heights, zones drawn on the floor
in mm, and the heading on the floor (:func:`compute_heading_3d`: the body axis projected
onto the floor). :func:`floor_view` is the pose seen straight from above, for the top-view
behaviour rules.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from features import kinematics as kin
from pose.dataset import append_history
from pose.keypoints import find_role, select_keypoints

logger = logging.getLogger(__name__)

__all__ = ["Floor", "FloorError", "estimate_floor", "half_sample_mode", "floor_from_spec", "floor_from_calibration",
           "resolve_floor", "FLOOR_SPEC_ATTR", "floor_axes", "to_floor_frame", "floor_view", "compute_heading_3d",
           "compute_height", "compute_feature_table_3d"]

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
    With paw keypoints (the usual case): the plane of the paws' stance points (a plane
    through all paw positions, refitted on those at or below its median height, as a paw is
    on the floor at least half of the time); up = away from the other keypoints; offset =
    the half-sample mode of the paw heights (:func:`half_sample_mode`). A still animal on
    its four paws defines a floor this way too. On the virtual 3-camera mouse (1 px noise)
    this tilts 0.06-0.08 deg from the truth, against 0.75-0.92 deg for the body track
    (rearing at the walls lifts the body centre), and heights are within 0.3-0.6 mm (median
    absolute error) against 1.2-1.4 mm.

    Without paws, or when they do not span a plane: the least principal axis of the
    body-centre track (all individuals; body-centre keypoint or the centroid); up = the
    side of the long tail of heights (rearing and a raised head reach far above the floor
    while nothing goes far below it); offset = the 1st percentile of all keypoints.
    """
    if ds.sizes.get("space") != 3:
        raise FloorError(f"a floor needs 3D positions; got space = {ds.sizes.get('space')}")
    paws = _paws(ds)
    if paws:
        try:
            floor = _floor_from_paws(ds, paws, min_planarity)
            logger.info("floor: %s", floor.how)
            return floor
        except FloorError as exc:
            why = f"the paws give none ({exc})"
    else:
        why = "no paw keypoint"
    try:
        floor = _floor_from_body_track(ds, min_planarity)
    except FloorError as exc:
        raise FloorError(f"{exc}; {why}") from exc
    floor = Floor(normal=floor.normal, offset_mm=floor.offset_mm, how=f"{floor.how} ({why})")
    logger.info("floor: %s", floor.how)
    return floor


def half_sample_mode(x: np.ndarray) -> float:
    """Robust mode of a sample (Bickel's half-sample mode): repeatedly keep the densest half.

    A paw's heights are a noisy peak at the floor (stance) plus a one-sided tail (swings,
    paws held up): the mode finds the peak without the tail's pull, and without the
    minimum's pull of noise (the lowest of several noisy paws is about one noise SD low).
    """
    v = np.sort(np.asarray(x, float)[np.isfinite(x)])
    if v.size == 0:
        return float("nan")
    while v.size > 3:
        h = (v.size + 1) // 2
        i = int(np.argmin(v[h - 1:] - v[: v.size - h + 1]))
        v = v[i:i + h]
    if v.size == 3:
        v = v[:2] if v[1] - v[0] < v[2] - v[1] else (v[1:] if v[2] - v[1] < v[1] - v[0] else v[1:2])
    return float(v.mean())


def _floor_from_paws(ds: xr.Dataset, paws: list[str], min_planarity: float) -> Floor:
    """The plane of the paws' stance points: a plane through all paw positions, refitted
    twice on the points at or below its median height (a paw is on the floor at least half
    of the time); up = away from the other keypoints."""
    pts = _points(ds, paws).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(1)]
    if len(pts) < 10:
        raise FloorError(f"only {len(pts)} paw positions are known")
    keep = pts
    for _ in range(3):
        centre = keep.mean(0)
        _, sv, vt = np.linalg.svd(keep - centre, full_matrices=False)
        sv = sv / np.sqrt(len(keep))
        normal = vt[2] / np.linalg.norm(vt[2])
        names = [str(k) for k in ds["keypoint"].values if str(k) not in paws]
        ho = _points(ds, names) @ normal if names else np.array([1.0])
        if np.nanmedian(ho) < float(centre @ normal):
            normal = -normal
        h = pts @ normal
        keep = pts[h <= np.median(h)]
    if sv[1] < min_planarity * max(sv[2], 1e-9):
        raise FloorError(f"the paws' stance points spread {sv[0]:.1f} / {sv[1]:.1f} / {sv[2]:.1f} mm: not a plane "
                         f"(need the second > {min_planarity:g}x the third)")
    offset = half_sample_mode(pts @ normal)
    how = (f"plane of the paws' stance points ({', '.join(paws)}; spread {sv[0]:.0f} / {sv[1]:.0f} / {sv[2]:.1f} "
           "mm); up = away from the other keypoints; floor = the most common paw height (half-sample mode)")
    return Floor(normal=normal, offset_mm=offset, how=how)


def _floor_from_body_track(ds: xr.Dataset, min_planarity: float) -> Floor:
    """:func:`estimate_floor` from the body-centre track (see its Notes)."""
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
            "yourself (--floor, e.g. 'z=0'; features.threed.floor_from_spec)")
    if sv[1] < min_planarity * max(sv[2], 1e-9):
        raise FloorError(
            f"the body track spreads {sv[0]:.1f} / {sv[1]:.1f} / {sv[2]:.1f} mm (std along its principal axes): "
            f"not a walk over a floor (need the second > {min_planarity:g}x the third); give the floor yourself "
            "(--floor, e.g. 'z=0'; features.threed.floor_from_spec)")
    normal = vt[2] / np.linalg.norm(vt[2])
    paws = _paws(ds)
    others = [k for k in names if k not in paws]
    h_all = pts @ normal
    if paws and others:
        hp, ho = _points(ds, paws) @ normal, _points(ds, others) @ normal
        if np.nanmedian(hp) > np.nanmedian(ho):
            normal, hp = -normal, -hp
        offset = half_sample_mode(hp)
        how = (f"plane of the {centre or 'centroid'} track (spread {sv[0]:.0f} / {sv[1]:.0f} / {sv[2]:.1f} mm); "
               f"up = away from the paws ({', '.join(paws)}); floor = the most common paw height")
    else:
        h = h_all[np.isfinite(h_all)]
        lo, med, hi = np.percentile(h, [1, 50, 99])
        if hi - med < med - lo:
            normal, h = -normal, -h
        offset = float(np.percentile(h, 1))
        how = (f"plane of the {centre or 'centroid'} track (spread {sv[0]:.0f} / {sv[1]:.0f} / {sv[2]:.1f} mm); "
               "no paw keypoint: up = the side of the long tail of heights; floor = the 1st percentile of all "
               "keypoints (heights are above the lowest points seen)")
    return Floor(normal=normal, offset_mm=offset, how=how)


def _unit(v: Sequence[float], what: str) -> np.ndarray:
    n = np.asarray(v, float)
    if n.shape != (3,) or not np.isfinite(n).all() or np.linalg.norm(n) == 0:
        raise ValueError(f"floor: the {what} must be 3 finite numbers, not all 0; got {list(v)}")
    return n / np.linalg.norm(n)


def _numbers(text: str, what: str, spec: str) -> list[float]:
    try:
        vals = [float(x) for x in text.replace(" ", "").strip("()[]").split(",")]
    except ValueError:
        vals = []
    if len(vals) != 3:
        raise ValueError(f"--floor {spec!r}: the {what} must be 3 numbers 'x,y,z', got {text!r}")
    return vals


def floor_from_spec(spec: str) -> Floor:
    """A floor given by the user.

    Parameters
    ----------
    spec
        ``"z=0"`` (or ``"y=12.5"``, ``"-z=0"``: the plane where that world axis has that
        value, up along +axis, or -axis with a leading ``-``); ``"point=X,Y,Z;normal=NX,NY,NZ"``
        (mm; the normal points up); ``"board:calibration.toml"`` (the plane of the
        calibration board's first view, :func:`floor_from_calibration`).

    Raises
    ------
    ValueError
        A spec in none of these forms (the message shows the forms).
    """
    text = spec.strip()
    forms = "'z=0', '-z=0', 'point=X,Y,Z;normal=NX,NY,NZ' or 'board:calibration.toml'"
    if text.startswith("board:") or text.startswith("board="):
        return floor_from_calibration(text[6:])
    axis = re.fullmatch(r"([+-]?)([xyz])\s*=\s*([-+0-9.eE]+)", text)
    if axis:
        sign = -1.0 if axis.group(1) == "-" else 1.0
        normal = np.zeros(3)
        normal["xyz".index(axis.group(2))] = sign
        try:
            value = float(axis.group(3))
        except ValueError:
            raise ValueError(f"--floor {spec!r}: {axis.group(3)!r} is not a number") from None
        return Floor(normal=normal, offset_mm=sign * value,
                     how=f"given: the plane {axis.group(2)} = {value:g} mm, up = {axis.group(1) or '+'}{axis.group(2)}")
    parts = dict(p.split("=", 1) for p in re.split(r"[;\s]+(?=point=|normal=)", text) if "=" in p)
    if set(parts) == {"point", "normal"}:
        point = np.asarray(_numbers(parts["point"], "point", spec))
        normal = _unit(_numbers(parts["normal"], "normal", spec), "normal")
        return Floor(normal=normal, offset_mm=float(point @ normal),
                     how=f"given: the plane through {point.round(2).tolist()} mm with up = {normal.round(4).tolist()}")
    raise ValueError(f"--floor {spec!r}: not a floor; give {forms}")


def floor_from_calibration(path: str | Path) -> Floor:
    """The plane of the calibration board in its first view, from ``calibration.toml``.

    ``ethopose pose calibrate`` writes ``[metadata.floor_board]`` (the board's centre and
    normal in the world, up = the cameras' side): lay the board flat on the arena floor in
    the first calibration image (or give ``--origin-frame``) and that plane is the floor.

    Raises
    ------
    ValueError
        The file has no board plane (e.g. written by another tool), naming the file.
    """
    from pose.threed.cameras import load_calibration

    _, meta = load_calibration(path)
    fb = meta.get("floor_board")
    if not isinstance(fb, dict) or not {"point_mm", "normal"} <= set(fb):
        raise ValueError(f"{path}: no [metadata.floor_board] table (the board's first view): calibrate with "
                         "'ethopose pose calibrate', or give the floor as 'z=0' or 'point=...;normal=...'")
    point = np.asarray(fb["point_mm"], float)
    normal = _unit(fb["normal"], f"normal in {path}")
    return Floor(normal=normal, offset_mm=float(point @ normal),
                 how=f"the calibration board's view {fb.get('view', '?')!r} in {Path(path).name} (centre "
                     f"{point.round(1).tolist()} mm, up = {normal.round(3).tolist()}, the cameras' side)")


#: Attribute of a 3D pose holding its floor as a :func:`floor_from_spec` string (e.g. the
#: cohort's ``floor`` column in ``ethopose run``); :func:`resolve_floor` uses it when no floor is given.
FLOOR_SPEC_ATTR = "floor_spec"


def resolve_floor(ds: xr.Dataset, floor: Floor | str | None = None) -> Floor:
    """The floor to use: ``floor`` as given (a :class:`Floor` or a :func:`floor_from_spec`
    string), else the pose's ``attrs["floor_spec"]`` (:data:`FLOOR_SPEC_ATTR`), else
    :func:`estimate_floor`. Logs which and why, and warns loudly when the animal's median
    keypoint lies below a given floor (its up is probably the wrong way)."""
    if floor is None:
        floor = ds.attrs.get(FLOOR_SPEC_ATTR) or None
    if floor is None:
        return estimate_floor(ds)
    out = floor_from_spec(floor) if isinstance(floor, str) else floor
    if ds.sizes.get("space") != 3:
        raise FloorError(f"a floor needs 3D positions; got space = {ds.sizes.get('space')}")
    h = _height_of(ds["position"], out).values
    med = float(np.nanmedian(h)) if np.isfinite(h).any() else np.nan
    if med < 0:
        logger.warning("floor %s: the animal's median keypoint is %.1f mm BELOW it: is up the wrong way round "
                       "(use '-z=...' or flip the normal)?", out.how, med)
    logger.info("floor: %s", out.how)
    return out


def floor_axes(floor: Floor) -> np.ndarray:
    """``(3, 3)`` rows ``e1, e2, up``: the floor's in-plane axes and its normal.

    ``e1`` is the world x axis projected onto the floor (y when x is nearly vertical),
    ``e2 = up x e1`` (right-handed), so on a ``z = 0`` floor the floor axes are the world's x, y.
    """
    n = _unit(floor.normal, "floor normal")
    ref = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = ref - (ref @ n) * n
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(n, e1), n])


def to_floor_frame(ds: xr.Dataset, floor: Floor) -> xr.Dataset:
    """The pose in the floor's frame: ``x, y`` on the floor (:func:`floor_axes`, mm) and
    ``z`` = height above it, so 2D floor features (zones, hull area) take
    ``.sel(space=["x", "y"])`` (:func:`floor_view`). Variables other than ``position`` and
    ``confidence`` are dropped; ``attrs["floor_spec"]`` becomes ``"z=0"``.
    """
    axes = floor_axes(floor)
    pos = ds["position"].transpose("time", "space", "keypoint", "individual").values
    new = np.einsum("ij,tjkn->tikn", axes, pos)
    new[:, 2] -= floor.offset_mm
    keep = [v for v in ("position", "confidence") if v in ds]
    out = ds[keep].copy()
    out["position"] = (("time", "space", "keypoint", "individual"), new, dict(ds["position"].attrs, units="mm"))
    out.attrs["floor"] = floor.how
    out.attrs[FLOOR_SPEC_ATTR] = "z=0"  # in its own frame the floor is z = 0, up +z
    return append_history(out, "to_floor_frame", {"normal": np.round(floor.normal, 6).tolist(),
                                                  "offset_mm": round(floor.offset_mm, 4)})


def floor_view(ds: xr.Dataset, floor: Floor | str | None = None) -> xr.Dataset:
    """The 3D pose seen straight from above: a 2D pose (``space = x, y`` on the floor, mm) for
    the top-view rules (:mod:`behavior.rules`: rearing by foreshortening, immobility...).

    :func:`to_floor_frame` (``floor`` default :func:`resolve_floor`) without the height, with
    ``px_per_mm = 1`` (its "pixels" are mm): an orthographic top view of the animal, whatever
    way the calibration's world axes point.
    """
    fl = resolve_floor(ds, floor)
    out = to_floor_frame(ds, fl).sel(space=["x", "y"])
    out.attrs["px_per_mm"] = 1.0
    out.attrs.pop(FLOOR_SPEC_ATTR, None)
    return out


def compute_heading_3d(ds: xr.Dataset, from_kp: str = "tail_base", to_kp: str = "snout", *,
                       floor: Floor | str | None = None) -> xr.DataArray:
    """Heading of a 3D pose: the body axis ``from_kp -> to_kp`` projected onto the floor, rad (time, individual).

    Parameters
    ----------
    ds
        3D pose Dataset (mm).
    from_kp, to_kp
        The body axis (default tail base to snout).
    floor
        The floor; default :func:`resolve_floor`.

    Returns
    -------
    xarray.DataArray
        ``atan2(v . e2, v . e1)`` of the axis ``v`` on the floor's axes :func:`floor_axes`
        (``e1`` = world x projected onto the floor), range (-pi, pi]: counter-clockwise seen
        from above (the floor's up toward the viewer). On a ``z = 0`` floor (up = +z) it is
        ``atan2(dy, dx)`` of the world x, y. NaN where either keypoint is unknown.

    Notes
    -----
    The image heading (:func:`features.kinematics.compute_heading` on a top view, y down)
    turns the other way: a top-view camera looking down sees the floor mirrored in y.
    Vertical motion does not change the heading; an axis standing almost upright (a full
    rear with the snout straight above the tail base) has a short projection and a noisy
    angle.
    """
    fl = resolve_floor(ds, floor)
    axes = floor_axes(fl)
    pos = ds["position"]
    v = pos.sel(keypoint=to_kp, drop=True) - pos.sel(keypoint=from_kp, drop=True)
    e = xr.DataArray(axes[:2], dims=["axis", "space"], coords={"space": pos["space"].values})
    on_floor = xr.dot(v, e, dim="space").where(v.notnull().all("space"))
    out = np.arctan2(on_floor.isel(axis=1, drop=True), on_floor.isel(axis=0, drop=True))
    out = out.transpose("time", ...)
    out.name = "heading"
    out.attrs = {"units": "rad", "from_keypoint": from_kp, "to_keypoint": to_kp,
                 "frame": "floor (counter-clockwise from the floor's x, seen from above)", "floor": fl.how}
    return out


def compute_height(ds: xr.Dataset, floor: Floor | None = None) -> xr.DataArray:
    """Height of every keypoint above the floor, mm (time, keypoint, individual).

    Parameters
    ----------
    ds
        3D pose Dataset (mm).
    floor
        The floor; default :func:`resolve_floor` (``attrs["floor_spec"]``, else :func:`estimate_floor`).
    """
    return _height_of(ds["position"], resolve_floor(ds, floor))


def _height_of(position: xr.DataArray, floor: Floor) -> xr.DataArray:
    normal = xr.DataArray(np.asarray(floor.normal, float), dims=["space"], coords={"space": position["space"].values})
    h = xr.dot(position, normal, dim="space").where(position.notnull().all("space")) - floor.offset_mm
    h.name = "height"
    h.attrs.update(units="mm", long_name="height above the floor")
    return h


def _floor_zone_columns(point: xr.DataArray, floor: Floor, zones: object, n_min: int,
                        prefix: str) -> dict[str, np.ndarray]:
    """``<prefix>in_<zone>`` ((time, individual) bool) of a point's floor projection, flicker removed."""
    from features import zones as zmod

    e = xr.DataArray(floor_axes(floor)[:2], dims=["axis", "space"], coords={"space": point["space"].values})
    xy = xr.dot(point, e, dim="space").transpose("time", "individual", "axis").values  # (time, individual, 2)
    occ = zmod.occupancy_from_xy(xy, zones)  # type: ignore[arg-type]
    return {f"{prefix}in_{z}": np.stack([zmod.clean_occupancy(occ[:, i, j], n_min) for i in range(occ.shape[1])], 1)
            for j, z in enumerate(zones.names)}  # type: ignore[attr-defined]


def compute_feature_table_3d(
    ds: xr.Dataset,
    zones: object | None = None,
    *,
    keypoint: str | None = None,
    families: Collection[str] | None = None,
    floor: Floor | str | None = None,
    min_dwell_s: float = 0.5,
    snout_zones: bool = False,
) -> pd.DataFrame:
    """Per-frame features of a 3D pose (mm), laid out as :func:`features.table.compute_feature_table`.

    Parameters
    ----------
    ds
        3D pose Dataset with fps, positions in mm (``ethopose pose triangulate``).
    zones
        Optional :class:`features.zones.ZoneSet` drawn **on the floor, in mm** of the floor
        frame (:func:`to_floor_frame`: on a ``z = 0`` floor, world x and y); adds
        ``in_<zone>`` from the reference point's floor projection. Needs a floor.
    keypoint
        Reference point (default: a body-centre keypoint, else the centroid).
    families
        ``speed``, ``distance``, ``heading``, ``keypoint_speeds``, ``zones`` (default: all
        but ``keypoint_speeds``). ``heading`` is on the floor (:func:`compute_heading_3d`) and
        needs a floor and snout and tail-base keypoints.
    floor
        A :class:`Floor` or a :func:`floor_from_spec` string (``"z=0"``...); default
        :func:`resolve_floor` (the pose's ``attrs["floor_spec"]``, else :func:`estimate_floor`).
        When none can be found the height and floor columns are
        left out, the reason is logged as a warning and kept in ``attrs["floor"]``.
    min_dwell_s
        Minimum zone visit/exit duration (flicker removal), as in the 2D table.
    snout_zones
        Also add the snout's world ``snout_x_mm, snout_y_mm, snout_z_mm`` and, with zones
        and a floor, ``snout_in_<zone>`` from its floor projection (sniffing, head dips).

    Returns
    -------
    pandas.DataFrame
        ``time_s, frame, individual, x_mm, y_mm, z_mm`` (world), ``floor_x_mm,
        floor_y_mm`` (on the floor) and ``height_mm`` (above it) of the reference point,
        ``snout_height_mm`` and ``max_height_mm`` (highest keypoint: rearing),
        ``speed_mm_s, acceleration_mm_s2`` (3D), ``distance_mm`` (cumulative 3D path),
        ``heading_rad, angular_velocity_rad_s`` (on the floor) and ``body_length_mm`` (3D
        snout to tail base), ``speed_<keypoint>_mm_s``, ``in_<zone>``, ``snout_x_mm, snout_y_mm,
        snout_z_mm, snout_in_<zone>`` (``snout_zones``). attrs
        ``length_unit = "mm"``, ``space = 3``, ``floor`` (which floor and why).
    """
    from features import zones as zmod
    from features.table import FAMILIES, reference_position, tidy_table

    if zones is not None and not isinstance(zones, zmod.ZoneSet):
        raise ValueError(f"zones of a 3D pose must be a features.zones.ZoneSet in floor mm, got {type(zones).__name__}")
    fam = set(FAMILIES) - {"keypoint_speeds"} if families is None else set(families)
    unknown = fam - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown feature families {sorted(unknown)}; known: {list(FAMILIES)}")
    ref, ref_name = reference_position(ds, keypoint)
    snout, tail = find_role(ds, "snout"), find_role(ds, "tail_base")
    cols: dict[str, np.ndarray] = {}

    def add(name: str, da: xr.DataArray) -> None:
        cols[name] = np.asarray(da.transpose("time", "individual").values, dtype=float)

    for axis in ("x", "y", "z"):
        add(f"{axis}_mm", ref.sel(space=axis, drop=True))
    try:
        floor = resolve_floor(ds, floor)
        floor_note = floor.how
    except FloorError as exc:
        if zones is not None and "zones" in fam:
            raise FloorError(f"zones on the floor need a floor: {exc}") from exc
        floor, floor_note = None, f"no floor: {exc}"
        logger.warning("3D features without heights: %s", exc)
    if floor is not None:
        h = compute_height(ds, floor)
        on_floor = xr.dot(ref, xr.DataArray(floor_axes(floor)[:2], dims=["axis", "space"],
                                            coords={"space": ref["space"].values}), dim="space")
        add("floor_x_mm", on_floor.isel(axis=0))
        add("floor_y_mm", on_floor.isel(axis=1))
        add("height_mm", _height_of(ref, floor))
        if snout:
            add("snout_height_mm", h.sel(keypoint=snout, drop=True))
        # numpy, not h.max(skipna=True): xarray hands that to numbagg, whose JIT compile costs ~3 s per process
        add("max_height_mm", xr.apply_ufunc(np.fmax.reduce, h, input_core_dims=[["keypoint"]], kwargs={"axis": -1}))
    if "speed" in fam:
        add("speed_mm_s", kin.compute_speed(ref))
        acc = kin.compute_acceleration(ref)
        add("acceleration_mm_s2", np.sqrt((acc**2).sum("space", skipna=False)))
    if "distance" in fam:
        add("distance_mm", kin.compute_distance_travelled(ref, cumulative=True))
    if "heading" in fam and snout and tail and floor is not None:
        head = compute_heading_3d(ds, tail, snout, floor=floor)
        add("heading_rad", head)
        add("angular_velocity_rad_s", kin.compute_angular_velocity(head))
        add("body_length_mm", kin.compute_body_length(ds, snout, tail))
    elif "heading" in fam and families is not None:
        logger.warning("3D features: no heading (%s)", "no floor" if floor is None else "no snout / tail-base keypoint")
    if "keypoint_speeds" in fam:
        speeds = kin.compute_speed(ds["position"])
        for k in ds["keypoint"].values:
            add(f"speed_{k}_mm_s", speeds.sel(keypoint=k, drop=True))
    n_min = max(1, int(round(min_dwell_s * float(ds.attrs["fps"]))))
    if zones is not None and "zones" in fam and floor is not None:
        cols.update(_floor_zone_columns(ref, floor, zones, n_min, ""))
    if snout_zones and snout:
        s = ds["position"].sel(keypoint=snout, drop=True)
        for axis in ("x", "y", "z"):
            add(f"snout_{axis}_mm", s.sel(space=axis, drop=True))
        if zones is not None and "zones" in fam and floor is not None:
            cols.update(_floor_zone_columns(s, floor, zones, n_min, "snout_"))
    table = tidy_table(ds, cols)
    table.attrs = {"reference_keypoint": ref_name, "length_unit": "mm", "px_per_mm": None,
                   "fps": float(ds.attrs["fps"]), "space": 3, "floor": floor_note}
    return table
