"""Place a protocol's arena in the image and compile its zones into a features ``ZoneSet``.

The arena model and the ``arena.json`` reader are :mod:`features.zones`
(:class:`~features.zones.ArenaPlacement`, :func:`~features.zones.read_arena`); this module
only decides *where the corners come from* for a protocol (``explicit``, ``arena_json``,
``tracked_corners``, ``pose_extent``) and turns the protocol's zones (written in
``arena_fraction``, ``mm`` or ``px``) into the :class:`~features.zones.ZoneSet` the
per-frame feature table uses.

A triangulated session (``space = x, y, z`` in mm) has no image: its arena lies on the
floor (:func:`features.threed.resolve_floor`: the cohort's ``floor`` column, recorded in
the pose's ``attrs["floor_spec"]``, else the floor fitted to the paws), and
:func:`locate_arena_3d` places it there: the placement's "pixels" are millimetres in the
floor frame (:func:`features.threed.to_floor_frame`), so the compiled zones are the floor
zones :func:`features.threed.compute_feature_table_3d` takes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from features.zones import ArenaError, ArenaPlacement, Circle, Polygon, ZoneSet, read_arena
from protocols.schema import Arena, BorderZone, CircleZone, PolygonZone, Protocol

logger = logging.getLogger(__name__)

__all__ = ["ArenaError", "ArenaPlacement", "FloorPlacement", "arena_file", "locate_arena", "locate_arena_3d",
           "triangulate_arena", "compile_zones", "zones_px"]

#: A 3D arena corner may lie this far (mm) from the floor before the mismatch is logged as a warning.
CORNER_OFF_FLOOR_MM = 10.0


@dataclass(frozen=True)
class FloorPlacement(ArenaPlacement):
    """An arena on the floor of a 3D pose: ``corners_px`` are floor-frame mm, ``floor`` says
    which floor (:attr:`features.threed.Floor.how`)."""

    floor: str = ""


def arena_file(arena: Arena, pose_path: Path) -> Path:
    """The ``arena.json`` of a session: ``arena.arena_json`` beside the pose file, ``{stem}``
    replaced by the pose file's stem (up to its first dot)."""
    return pose_path.parent / arena.arena_json.format(stem=pose_path.name.split(".")[0])


def locate_arena(arena: Arena, ds: xr.Dataset, pose_path: Path | None = None) -> ArenaPlacement:
    """Find the arena's corners for one session.

    Parameters
    ----------
    arena
        The protocol's arena section.
    ds
        The session's pose (used for tracked corners and the pose-extent fallback).
    pose_path
        The pose file; ``arena.json`` is looked up beside it.

    Raises
    ------
    ArenaError
        Naming the missing file or keypoints.

    Notes
    -----
    A 3D pose (``space = 3``) goes to :func:`locate_arena_3d`.
    """
    if ds.sizes.get("space") == 3:
        return locate_arena_3d(arena, ds, pose_path)
    if arena.source == "arena_json":
        if pose_path is None:
            raise ArenaError("arena source 'arena_json' needs the pose file's folder")
        f = arena_file(arena, pose_path)
        if not f.is_file():
            raise ArenaError(
                f"arena file {f} not found (protocol arena.source is 'arena_json'; write it, "
                "or use source 'explicit' / 'tracked_corners')"
            )
        return read_arena(f, arena.width_mm, arena.height_mm)
    if arena.source == "explicit":
        corners = np.asarray(arena.corners_px, float)
    elif arena.source == "tracked_corners":
        names = list(arena.corner_keypoints or [])
        missing = [n for n in names if n not in ds.coords["keypoint"].values]
        if missing:
            raise ArenaError(f"arena corner keypoint(s) {missing} not in the pose file")
        pos = ds["position"].sel(keypoint=names).isel(individual=0)  # (time, space, keypoint)
        corners = np.nanmedian(pos.values, axis=0).T[:, :2]
        if not np.isfinite(corners).all():
            raise ArenaError(f"arena corner keypoints {names} are never tracked")
    else:  # pose_extent
        pos = ds["position"].isel(individual=0).values  # (time, space, keypoint)
        x, y = pos[:, 0].ravel(), pos[:, 1].ravel()
        if not np.isfinite(x).any():
            raise ArenaError("arena source 'pose_extent' but no keypoint is ever tracked")
        x0, x1, y0, y1 = np.nanmin(x), np.nanmax(x), np.nanmin(y), np.nanmax(y)
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    return ArenaPlacement(corners, arena.width_mm, arena.height_mm)


def locate_arena_3d(arena: Arena, ds: xr.Dataset, pose_path: Path | None = None,
                    floor: object | None = None) -> FloorPlacement:
    """Place the arena on the floor of a 3D pose (mm); the placement's "pixels" are floor mm.

    Parameters
    ----------
    arena
        The protocol's arena section. Its sources in 3D: ``arena_json`` (the file beside
        the pose holds ``corners_mm``: the arena floor's 4 corners tl, tr, br, bl as 3D
        points in the pose's world, mm), ``tracked_corners`` (the corner keypoints' median
        3D positions), ``pose_extent`` (the smallest rectangle around every keypoint's floor
        projection, its long side along the arena's longer one: biased inwards, for quick
        looks). ``explicit`` corners are image pixels: refused.
    ds
        The 3D pose (mm).
    pose_path
        The pose file (``arena.json`` beside it).
    floor
        A :class:`features.threed.Floor` or spec; default :func:`features.threed.resolve_floor`
        (``attrs["floor_spec"]``, else fitted to the paws).

    Returns
    -------
    ArenaPlacement
        ``corners_px`` are the corners in the floor frame (mm; :func:`features.threed.to_floor_frame`'s
        x, y), so ``px_per_mm`` is the measured arena size over the protocol's (about 1).

    Raises
    ------
    ArenaError
        A source without 3D corners (naming the file and what it holds), or no floor.
    """
    from features.threed import FloorError, floor_axes, resolve_floor

    try:
        fl = resolve_floor(ds, floor)  # type: ignore[arg-type]
    except (FloorError, ValueError) as exc:
        raise ArenaError(f"3D arena: no floor to draw it on ({exc})") from exc
    axes = floor_axes(fl)
    if arena.source == "explicit":
        raise ArenaError("arena source 'explicit' gives image pixels (corners_px) but this pose is 3D (mm): give the "
                         "floor corners in an arena.json ('corners_mm', world mm) or use 'tracked_corners'")
    if arena.source == "arena_json":
        if pose_path is None:
            raise ArenaError("arena source 'arena_json' needs the pose file's folder")
        f = arena_file(arena, pose_path)
        if not f.is_file():
            raise ArenaError(f"arena file {f} not found (protocol arena.source is 'arena_json'; a 3D session needs "
                             "'corners_mm': the arena floor's corners tl, tr, br, bl in the pose's world, mm)")
        try:
            data = json.loads(f.read_text())
        except ValueError as exc:
            raise ArenaError(f"{f}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict) or "corners_mm" not in data:
            has = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ArenaError(f"{f}: a 3D (triangulated) session needs 'corners_mm' (4 world points x, y, z in mm, "
                             f"tl, tr, br, bl); the file has {has} (pixels of one camera are not on the 3D floor; "
                             "triangulate each corner from the cameras' views)")
        world = np.asarray(data["corners_mm"], float)
        if world.shape != (4, 3) or not np.isfinite(world).all():
            raise ArenaError(f"{f}: 'corners_mm' must be 4 finite (x, y, z) points in mm, got shape {world.shape}")
        what = f"{f.name} corners_mm"
    elif arena.source == "tracked_corners":
        names = list(arena.corner_keypoints or [])
        missing = [n for n in names if n not in ds.coords["keypoint"].values]
        if missing:
            raise ArenaError(f"arena corner keypoint(s) {missing} not in the pose file")
        pos = ds["position"].sel(keypoint=names).isel(individual=0).transpose("time", "keypoint", "space").values
        world = np.nanmedian(pos, axis=0)
        if not np.isfinite(world).all():
            raise ArenaError(f"arena corner keypoints {names} are never tracked")
        what = f"tracked corners {names}"
    else:  # pose_extent
        return _extent_on_floor(arena, ds, axes, fl.how)
    heights = world @ axes[2] - fl.offset_mm
    worst = float(np.max(np.abs(heights)))
    if worst > CORNER_OFF_FLOOR_MM:
        logger.warning("3D arena: the %s lie %s mm from the floor (%s): is the floor or the corners' world right?",
                       what, np.round(heights, 1).tolist(), fl.how)
    corners = world @ axes[:2].T
    placement = FloorPlacement(corners, arena.width_mm, arena.height_mm, floor=fl.how)
    logger.info("3D arena from %s: on the floor, %.0f x %.0f mm measured (protocol %.0f x %.0f), corners %.1f mm "
                "off the floor at most", what, *_sides(corners), arena.width_mm, arena.height_mm, worst)
    return placement


#: The 8 ways one camera's 4 arena corners may correspond to another's (4 rotations, either direction).
_CORNER_ORDERS = [np.roll(np.arange(4), k) for k in range(4)] + [np.roll(np.arange(4)[::-1], k) for k in range(4)]


def triangulate_arena(cameras: list, views: dict[str, np.ndarray], *, max_error_px: float = 10.0) -> np.ndarray:
    """The arena floor's 4 corners in the world (mm) from their pixels in two or more calibrated cameras.

    Parameters
    ----------
    cameras
        The calibrated cameras (:func:`pose.threed.cameras.load_calibration`).
    views
        ``camera name -> (4, 2)`` corner pixels in that camera's image (its arena.json's
        ``corners_px``, :func:`features.zones.arena_corners`), each in that image's own
        tl, tr, br, bl order: cameras on different sides see different corners at their
        top-left, so each view's order is matched to the first one's (the rotation or
        reflection whose triangulation reprojects best).

    Returns
    -------
    numpy.ndarray
        ``(4, 3)`` world mm, in the first view's order: the ``corners_mm`` of a 3D session's
        arena.json (:func:`locate_arena_3d`).

    Raises
    ------
    ArenaError
        Fewer than two views, a camera not in the calibration, or corners that do not
        triangulate (reprojection error over ``max_error_px`` in some view: another arena, a
        wrong calibration), naming the view.
    """
    from pose.threed.cameras import select_cameras
    from pose.threed.triangulation import reprojection_errors, triangulate_points

    if len(views) < 2:
        raise ArenaError(f"triangulating the arena needs its corners in two or more cameras, got {list(views)}")
    names = list(views)
    try:
        cams = select_cameras(cameras, names, context="arena corners")
    except ValueError as exc:
        raise ArenaError(str(exc)) from exc
    px = [np.asarray(views[n], float) for n in names]
    for n, p in zip(names, px, strict=True):
        if p.shape != (4, 2) or not np.isfinite(p).all():
            raise ArenaError(f"arena corners of camera {n!r} must be 4 finite (x, y) pixels, got shape {p.shape}")
    for i in range(1, len(px)):
        errs = [float(np.mean(reprojection_errors([cams[0], cams[i]],
                                                  triangulate_points([cams[0], cams[i]], np.stack([px[0], px[i][o]])),
                                                  np.stack([px[0], px[i][o]]))))
                for o in _CORNER_ORDERS]
        px[i] = px[i][_CORNER_ORDERS[int(np.argmin(np.nan_to_num(errs, nan=np.inf)))]]  # NaN: behind a camera
    obs = np.stack(px)
    world = triangulate_points(cams, obs)
    err = reprojection_errors(cams, world, obs)  # (C, 4)
    worst = np.nanmax(err, axis=1)
    bad = [f"{n} {e:.1f} px" for n, e in zip(names, worst, strict=True) if not e <= max_error_px]
    if bad:
        raise ArenaError(f"the arena corners do not triangulate (reprojection error {', '.join(bad)}; at most "
                         f"{max_error_px:g} px): another arena in some view, or a wrong calibration")
    logger.info("arena corners triangulated from %s: reprojection error at most %s px", names,
                np.round(worst, 2).tolist())
    return world


def _sides(c: np.ndarray) -> tuple[float, float]:
    return (float(np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3])) / 2,
            float(np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1])) / 2)


def _extent_on_floor(arena: Arena, ds: xr.Dataset, axes: np.ndarray, floor_how: str) -> FloorPlacement:
    """The smallest rectangle around all keypoints' floor projections (pose_extent in 3D)."""
    import cv2

    pos = ds["position"].isel(individual=0).transpose("time", "keypoint", "space").values.reshape(-1, 3)
    pos = pos[np.isfinite(pos).all(1)]
    if len(pos) < 3:
        raise ArenaError("arena source 'pose_extent' but no keypoint is ever tracked")
    xy = (pos @ axes[:2].T).astype(np.float32)
    (cx, cy), (w, h), angle = cv2.minAreaRect(xy)
    u = np.array([np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))])
    if (w >= h) != (arena.width_mm >= arena.height_mm):  # the long side along the arena's long side
        u, w, h = np.array([-u[1], u[0]]), h, w
    if u[0] < 0:
        u = -u
    v = np.array([-u[1], u[0]])
    c = np.array([cx, cy])
    corners = np.stack([c - u * w / 2 + v * h / 2, c + u * w / 2 + v * h / 2, c + u * w / 2 - v * h / 2,
                        c - u * w / 2 - v * h / 2])
    logger.warning("3D arena from the pose extent (%.0f x %.0f mm on the floor): biased inwards, for quick looks", w, h)
    return FloorPlacement(corners, arena.width_mm, arena.height_mm, floor=floor_how)


def compile_zones(protocol: Protocol, placement: ArenaPlacement | None) -> ZoneSet:
    """The protocol's zones in pixels, as a :class:`features.zones.ZoneSet`.

    A border zone (e.g. ``wall``) becomes the arena polygon with a hole: the floor farther
    than ``margin_mm`` from every wall. On a 3D pose's :class:`FloorPlacement` the zones
    come out in floor mm, and a zone in ``px`` is refused (a 3D session has no image).
    """
    out: list[Polygon | Circle] = []
    for z in protocol.zones:
        if isinstance(placement, FloorPlacement) and not isinstance(z, BorderZone) and z.units == "px":
            raise ArenaError(f"zone {z.name!r} is in image pixels but the session is 3D (mm on the floor): "
                             "write it in 'mm' or 'arena_fraction'")
        needs_arena = isinstance(z, BorderZone) or z.units != "px"
        if needs_arena and placement is None:
            raise ArenaError(f"zone {z.name!r} is in arena units but no arena was located")
        match z:
            case PolygonZone(units="px"):
                out.append(Polygon(name=z.name, vertices=[tuple(p) for p in z.points]))
            case PolygonZone(units="mm"):
                px = placement.mm_to_px(np.asarray(z.points, float))
                out.append(Polygon(name=z.name, vertices=[tuple(p) for p in px.tolist()]))
            case PolygonZone():
                px = placement.to_px(np.asarray(z.points, float))
                out.append(Polygon(name=z.name, vertices=[tuple(p) for p in px.tolist()]))
            case CircleZone(units="px"):
                out.append(Circle(name=z.name, centre=tuple(z.centre), radius=z.radius))
            case CircleZone(units="mm"):
                centre = placement.mm_to_px(np.asarray(z.centre, float))[0]
                out.append(Circle(name=z.name, centre=tuple(centre.tolist()),
                                  radius=float(z.radius * placement.px_per_mm)))
            case CircleZone():
                centre = placement.to_px(np.asarray(z.centre, float))[0]
                out.append(Circle(name=z.name, centre=tuple(centre.tolist()),
                                  radius=float(z.radius * placement.width_mm * placement.px_per_mm)))
            case BorderZone():
                mu, mv = z.margin_mm / placement.width_mm, z.margin_mm / placement.height_mm
                inner = placement.to_px(np.array([[mu, mv], [1 - mu, mv], [1 - mu, 1 - mv], [mu, 1 - mv]]))
                out.append(Polygon(name=z.name, vertices=[tuple(p) for p in placement.corners_px.tolist()],
                                   holes=[[tuple(p) for p in inner.tolist()]]))
    return ZoneSet(zones=out)


def zones_px(protocol: Protocol, placement: ArenaPlacement | None) -> dict[str, Polygon | Circle]:
    """The compiled zones by name (:func:`compile_zones` as a mapping)."""
    return {z.name: z for z in compile_zones(protocol, placement).zones}
