"""Place a protocol's arena in the image and compile its zones into a features ``ZoneSet``.

The arena model and the ``arena.json`` reader are :mod:`features.zones`
(:class:`~features.zones.ArenaPlacement`, :func:`~features.zones.read_arena`); this module
only decides *where the corners come from* for a protocol (``explicit``, ``arena_json``,
``tracked_corners``, ``pose_extent``) and turns the protocol's zones (written in
``arena_fraction``, ``mm`` or ``px``) into the :class:`~features.zones.ZoneSet` the
per-frame feature table uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from features.zones import ArenaError, ArenaPlacement, Circle, Polygon, ZoneSet, read_arena
from protocols.schema import Arena, BorderZone, CircleZone, PolygonZone, Protocol

__all__ = ["ArenaError", "ArenaPlacement", "arena_file", "locate_arena", "compile_zones", "zones_px"]


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
    """
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


def compile_zones(protocol: Protocol, placement: ArenaPlacement | None) -> ZoneSet:
    """The protocol's zones in pixels, as a :class:`features.zones.ZoneSet`.

    A border zone (e.g. ``wall``) becomes the arena polygon with a hole: the floor farther
    than ``margin_mm`` from every wall.
    """
    out: list[Polygon | Circle] = []
    for z in protocol.zones:
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
