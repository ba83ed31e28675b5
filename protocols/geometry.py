"""Place a protocol's arena in the image and turn its zones into pixel geometry.

The arena is located by its four corners in pixels (top-left, top-right, bottom-right,
bottom-left). Zone coordinates in ``arena_fraction`` (u, v in 0..1) or ``mm`` are mapped
to pixels bilinearly between those corners, which handles a shifted, rotated or slightly
tilted (perspective) arena.

``arena.json`` (one per video, beside the pose file) may hold any of:
``{"corners_px": [[x, y] x4]}``, ``{"bounds_px": [x0, y0, x1, y1]}`` (an axis-aligned
arena, as :mod:`pose.synthetic` writes it) or ``{"zones": {"arena": {"vertices_px": ...}}}``;
optionally ``px_per_mm``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from features.zones import Circle, Polygon
from protocols.schema import Arena, BorderZone, CircleZone, PolygonZone, Protocol


class ArenaError(ValueError):
    """The arena could not be located (missing arena.json, missing corner keypoints...)."""


@dataclass(frozen=True)
class ArenaPlacement:
    """The arena in image pixels: corners ``(4, 2)`` (tl, tr, br, bl) and its size in mm."""

    corners_px: np.ndarray
    width_mm: float
    height_mm: float
    px_per_mm_file: float | None = None

    @property
    def px_per_mm(self) -> float:
        """Mean scale from the four sides of the arena."""
        c = self.corners_px
        top, bottom = np.linalg.norm(c[1] - c[0]), np.linalg.norm(c[2] - c[3])
        left, right = np.linalg.norm(c[3] - c[0]), np.linalg.norm(c[2] - c[1])
        return float(((top + bottom) / 2 / self.width_mm + (left + right) / 2 / self.height_mm) / 2)

    def to_px(self, uv: np.ndarray) -> np.ndarray:
        """Map arena fractions ``(n, 2)`` (u along width, v along height) to pixels."""
        uv = np.atleast_2d(np.asarray(uv, float))
        u, v = uv[:, :1], uv[:, 1:2]
        tl, tr, br, bl = self.corners_px
        return (1 - u) * (1 - v) * tl + u * (1 - v) * tr + u * v * br + (1 - u) * v * bl


def _corners_from_json(data: dict[str, Any], source: str) -> np.ndarray:
    if "corners_px" in data:
        c = np.asarray(data["corners_px"], float)
    elif "bounds_px" in data:
        x0, y0, x1, y1 = map(float, data["bounds_px"])
        c = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    elif "arena" in data.get("zones", {}) and "vertices_px" in data["zones"]["arena"]:
        c = np.asarray(data["zones"]["arena"]["vertices_px"], float)
    else:
        raise ArenaError(f"{source}: no arena corners: expected 'corners_px', 'bounds_px' or zones.arena.vertices_px")
    if c.shape != (4, 2) or not np.isfinite(c).all():
        raise ArenaError(f"{source}: arena corners must be 4 finite (x, y) points, got shape {c.shape}")
    return c


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
    ppm_file = None
    if arena.source == "explicit":
        corners = np.asarray(arena.corners_px, float)
    elif arena.source == "arena_json":
        if pose_path is None:
            raise ArenaError("arena source 'arena_json' needs the pose file's folder")
        stem = pose_path.name.split(".")[0]
        f = pose_path.parent / arena.arena_json.format(stem=stem)
        if not f.is_file():
            raise ArenaError(
                f"arena file {f} not found (protocol arena.source is 'arena_json'; write it, "
                "or use source 'explicit' / 'tracked_corners')"
            )
        try:
            data = json.loads(f.read_text())
        except json.JSONDecodeError as exc:
            raise ArenaError(f"{f}: not valid JSON: {exc}") from None
        corners = _corners_from_json(data, str(f))
        ppm_file = data.get("px_per_mm")
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
        x0, x1 = np.nanmin(x), np.nanmax(x)
        y0, y1 = np.nanmin(y), np.nanmax(y)
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    return ArenaPlacement(corners, arena.width_mm, arena.height_mm,
                          None if ppm_file is None else float(ppm_file))


def zones_px(protocol: Protocol, placement: ArenaPlacement | None) -> dict[str, Polygon | Circle]:
    """Zones of ``protocol`` in pixels, as :mod:`features.zones` shapes.

    A border zone (e.g. ``wall``) becomes the arena polygon with a hole: the floor farther
    than ``margin_mm`` from every wall.
    """
    out: dict[str, Polygon | Circle] = {}
    for z in protocol.zones:
        needs_arena = isinstance(z, BorderZone) or z.units != "px"
        if needs_arena and placement is None:
            raise ArenaError(f"zone {z.name!r} is in arena units but no arena was located")
        if isinstance(z, PolygonZone):
            pts = np.asarray(z.points, float)
            if z.units == "mm":
                pts = pts / [placement.width_mm, placement.height_mm]
            px = pts if z.units == "px" else placement.to_px(pts)
            out[z.name] = Polygon(name=z.name, vertices=[tuple(p) for p in px.tolist()])
        elif isinstance(z, CircleZone):
            c = np.asarray(z.centre, float)
            if z.units == "px":
                centre, radius = c, z.radius
            elif z.units == "mm":
                centre = placement.to_px(c / [placement.width_mm, placement.height_mm])[0]
                radius = z.radius * placement.px_per_mm
            else:
                centre = placement.to_px(c)[0]
                radius = z.radius * placement.width_mm * placement.px_per_mm
            out[z.name] = Circle(name=z.name, centre=tuple(centre.tolist()), radius=float(radius))
        else:
            mu = z.margin_mm / placement.width_mm
            mv = z.margin_mm / placement.height_mm
            inner = placement.to_px(np.array([[mu, mv], [1 - mu, mv], [1 - mu, 1 - mv], [mu, 1 - mv]]))
            out[z.name] = Polygon(name=z.name, vertices=[tuple(p) for p in placement.corners_px.tolist()],
                                  holes=[[tuple(p) for p in inner.tolist()]])
    return out


def points_in_zone(xy: np.ndarray, zone: Polygon | Circle) -> np.ndarray:
    """Boolean ``(n,)``: which points ``(n, 2)`` lie in ``zone`` (NaN points are False)."""
    return np.asarray(zone.contains(np.asarray(xy, float)), bool)
