"""Zones (regions of interest): geometry, per-frame occupancy, entries, bouts and summaries.

Zones are pixel-space shapes (:class:`Polygon` with optional holes, :class:`Circle` with an
optional inner radius) collected in a named :class:`ZoneSet`, which may also define groups
(e.g. ``open_arms`` = both open arms of a plus maze). Builders give the standard assays:
:func:`open_field_zones`, :func:`epm_zones`, :func:`three_chamber_zones`.

Conventions (explicit, since assays report them):

- occupancy is decided for one keypoint per frame; a frame with an unknown position keeps
  the last known occupancy (frames before the first known position count as outside);
- :func:`detect_entries` removes flicker with a minimum dwell time: an excursion out of a
  zone shorter than ``min_dwell_s`` is ignored (the bout continues) and a visit shorter than
  ``min_dwell_s`` is not a bout;
- an animal already in a zone at the first frame starts a bout that is **not** an entry
  (``is_entry=False``); its latency to the zone is 0 s. ``entries`` counts bouts that start
  after the first frame.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field

from pose.dataset import validate_pose
from pose.keypoints import find_keypoint

logger = logging.getLogger(__name__)

__all__ = [
    "Polygon", "Circle", "ZoneSet", "open_field_zones", "epm_zones", "three_chamber_zones",
    "compute_occupancy", "detect_entries", "zone_summary", "load_zones", "save_zones",
    "zones_from_dict", "occupancy_from_xy", "clean_occupancy", "ZONE_NAME_ALIASES",
    "ArenaError", "ArenaPlacement", "arena_corners", "read_arena",
]

Point = tuple[float, float]


class Polygon(BaseModel):
    """A polygon zone in pixels (vertices in order), minus optional polygonal holes."""

    model_config = ConfigDict(extra="forbid")
    name: str
    type: Literal["polygon"] = "polygon"
    vertices: list[Point] = Field(min_length=3)
    holes: list[list[Point]] = Field(default_factory=list)

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """Bool per point of ``xy`` (n, 2); NaN points are outside. Boundary: inside."""
        from matplotlib.path import Path as MplPath

        ok = ~np.isnan(xy).any(axis=1)
        out = np.zeros(len(xy), dtype=bool)
        pts = xy[ok]
        inside = MplPath(np.asarray(self.vertices)).contains_points(pts, radius=1e-9) | \
            MplPath(np.asarray(self.vertices)).contains_points(pts, radius=-1e-9)
        for hole in self.holes:
            hp = MplPath(np.asarray(hole))
            inside &= ~(hp.contains_points(pts, radius=1e-9) & hp.contains_points(pts, radius=-1e-9))
        out[ok] = inside
        return out

    def area(self) -> float:
        """Area in px^2 (outer minus holes)."""
        def shoelace(v: Sequence[Point]) -> float:
            a = np.asarray(v, float)
            return 0.5 * abs(float(np.dot(a[:, 0], np.roll(a[:, 1], -1)) - np.dot(a[:, 1], np.roll(a[:, 0], -1))))
        return shoelace(self.vertices) - sum(shoelace(h) for h in self.holes)


class Circle(BaseModel):
    """A disc (or annulus with ``inner_radius`` > 0) zone in pixels."""

    model_config = ConfigDict(extra="forbid")
    name: str
    type: Literal["circle"] = "circle"
    centre: Point
    radius: float = Field(gt=0)
    inner_radius: float = Field(default=0.0, ge=0)

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """Bool per point of ``xy`` (n, 2); NaN points are outside."""
        d2 = (xy[:, 0] - self.centre[0]) ** 2 + (xy[:, 1] - self.centre[1]) ** 2
        with np.errstate(invalid="ignore"):
            inside = d2 <= self.radius**2
            if self.inner_radius > 0:
                inside &= d2 > self.inner_radius**2
        return inside

    def area(self) -> float:
        """Area in px^2."""
        return float(np.pi * (self.radius**2 - self.inner_radius**2))


class ZoneSet(BaseModel):
    """Named zones plus optional groups (a group is the union of member zones)."""

    model_config = ConfigDict(extra="forbid")
    zones: list[Polygon | Circle]
    groups: dict[str, list[str]] = Field(default_factory=dict)
    px_per_mm: float | None = None

    def model_post_init(self, __context: Any) -> None:
        names = [z.name for z in self.zones]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate zone names: {dup}")
        for g, members in self.groups.items():
            missing = [m for m in members if m not in names]
            if missing:
                raise ValueError(f"group {g!r} names unknown zones {missing} (zones: {names})")
            if g in names:
                raise ValueError(f"group name {g!r} is also a zone name")

    @property
    def names(self) -> list[str]:
        """Zone names followed by group names (the columns of occupancy)."""
        return [z.name for z in self.zones] + list(self.groups)

    def __getitem__(self, name: str) -> Polygon | Circle:
        for z in self.zones:
            if z.name == name:
                return z
        raise KeyError(f"no zone {name!r} (zones: {self.names})")

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """Bool matrix (n_points, n_names) for zones then groups."""
        cols = [z.contains(xy) for z in self.zones]
        idx = {z.name: i for i, z in enumerate(self.zones)}
        for members in self.groups.values():
            cols.append(np.any([cols[idx[m]] for m in members], axis=0))
        return np.stack(cols, axis=1) if cols else np.zeros((len(xy), 0), bool)


# --------------------------------------------------------------------------- builders


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def open_field_zones(
    bounds_px: tuple[float, float, float, float] | None = None,
    *,
    centre_px: Point | None = None,
    radius_px: float | None = None,
    center_fraction: float = 0.5,
) -> ZoneSet:
    """Open field: ``arena``, ``centre`` and ``periphery`` (= arena minus centre).

    Give a square/rectangular arena by ``bounds_px = (x0, y0, x1, y1)`` or a round one by
    ``centre_px`` and ``radius_px``. The centre has ``center_fraction`` of the arena's side
    (or radius), e.g. 0.5 = the central 25 % of a square arena's area.
    """
    if not 0 < center_fraction < 1:
        raise ValueError(f"center_fraction must be in (0, 1), got {center_fraction}")
    if bounds_px is not None:
        x0, y0, x1, y1 = map(float, bounds_px)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"bounds_px must be (x0, y0, x1, y1) with x1 > x0, y1 > y0, got {bounds_px}")
        cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        inner = _rect(cx - hx * center_fraction, cy - hy * center_fraction,
                      cx + hx * center_fraction, cy + hy * center_fraction)
        outer = _rect(x0, y0, x1, y1)
        return ZoneSet(zones=[Polygon(name="arena", vertices=outer), Polygon(name="centre", vertices=inner),
                              Polygon(name="periphery", vertices=outer, holes=[inner])])
    if centre_px is None or radius_px is None:
        raise ValueError("open_field_zones needs bounds_px, or centre_px and radius_px")
    r_in = radius_px * center_fraction
    return ZoneSet(zones=[Circle(name="arena", centre=centre_px, radius=radius_px),
                          Circle(name="centre", centre=centre_px, radius=r_in),
                          Circle(name="periphery", centre=centre_px, radius=radius_px, inner_radius=r_in)])


def epm_zones(
    centre_px: Point, arm_length_px: float, arm_width_px: float, *, open_axis: Literal["x", "y"] = "x"
) -> ZoneSet:
    """Elevated plus maze: ``centre`` square, ``open_arm_1/2``, ``closed_arm_1/2``; groups
    ``open_arms`` and ``closed_arms``. Open arms lie along ``open_axis`` (image axis)."""
    cx, cy = centre_px
    h, length = arm_width_px / 2, arm_length_px
    east, west = _rect(cx + h, cy - h, cx + h + length, cy + h), _rect(cx - h - length, cy - h, cx - h, cy + h)
    north, south = _rect(cx - h, cy - h - length, cx + h, cy - h), _rect(cx - h, cy + h, cx + h, cy + h + length)
    op, cl = ((east, west), (north, south)) if open_axis == "x" else ((north, south), (east, west))
    return ZoneSet(
        zones=[Polygon(name="centre", vertices=_rect(cx - h, cy - h, cx + h, cy + h)),
               Polygon(name="open_arm_1", vertices=op[0]), Polygon(name="open_arm_2", vertices=op[1]),
               Polygon(name="closed_arm_1", vertices=cl[0]), Polygon(name="closed_arm_2", vertices=cl[1])],
        groups={"open_arms": ["open_arm_1", "open_arm_2"], "closed_arms": ["closed_arm_1", "closed_arm_2"]},
    )


def three_chamber_zones(
    bounds_px: tuple[float, float, float, float],
    *,
    cup_radius_px: float,
    interaction_radius_px: float,
    cup_centres_px: tuple[Point, Point] | None = None,
) -> ZoneSet:
    """Three-chamber sociability box split in three equal chambers along x:
    ``left_chamber``, ``centre_chamber``, ``right_chamber`` and interaction annuli
    ``left_interaction``/``right_interaction`` (cup radius < r <= interaction radius) around
    the cups (default: centres of the side chambers)."""
    x0, y0, x1, y1 = map(float, bounds_px)
    w = (x1 - x0) / 3
    if interaction_radius_px <= cup_radius_px:
        raise ValueError("interaction_radius_px must be larger than cup_radius_px")
    if cup_centres_px is None:
        cy = (y0 + y1) / 2
        cup_centres_px = ((x0 + w / 2, cy), (x1 - w / 2, cy))
    return ZoneSet(zones=[
        Polygon(name="left_chamber", vertices=_rect(x0, y0, x0 + w, y1)),
        Polygon(name="centre_chamber", vertices=_rect(x0 + w, y0, x0 + 2 * w, y1)),
        Polygon(name="right_chamber", vertices=_rect(x0 + 2 * w, y0, x1, y1)),
        Circle(name="left_interaction", centre=cup_centres_px[0], radius=interaction_radius_px,
               inner_radius=cup_radius_px),
        Circle(name="right_interaction", centre=cup_centres_px[1], radius=interaction_radius_px,
               inner_radius=cup_radius_px),
    ])


# --------------------------------------------------------------------------- IO


def _zone_from_dict(name: str, d: dict[str, Any]) -> Polygon | Circle:
    kind = d.get("type", "polygon")
    if kind == "polygon":
        verts = d.get("vertices_px", d.get("vertices"))
        if verts is None:
            raise ValueError(f"zone {name!r}: polygon needs 'vertices' (or 'vertices_px')")
        holes = d.get("holes_px", d.get("holes", []))
        return Polygon(name=name, vertices=[tuple(v) for v in verts], holes=[[tuple(v) for v in h] for h in holes])
    if kind == "circle":
        centre = next((d[k] for k in ("centre_px", "center_px", "centre", "center") if k in d), None)
        radius = next((d[k] for k in ("radius_px", "radius") if k in d), None)
        if centre is None or radius is None:
            raise ValueError(f"zone {name!r}: circle needs 'centre' and 'radius'")
        inner = next((d[k] for k in ("inner_radius_px", "inner_radius") if k in d), 0.0)
        return Circle(name=name, centre=tuple(centre), radius=radius, inner_radius=inner)
    raise ValueError(f"zone {name!r}: unknown type {kind!r} (polygon or circle)")


#: Older zone names read as the one naming (British ``centre``, as the endpoints say).
ZONE_NAME_ALIASES: dict[str, str] = {"center": "centre", "center_chamber": "centre_chamber"}


def zones_from_dict(data: dict[str, Any], *, source: str = "zones") -> ZoneSet:
    """Build a :class:`ZoneSet` from ``{"zones": [{"name", "type", ...}]}`` or the synthetic
    arena layout ``{"zones": {name: {"type", "vertices_px", "holes_px"}}, "px_per_mm"}``
    (e.g. ``simulate_open_field(...).arena``). ``source`` prefixes error messages. Zone
    names in :data:`ZONE_NAME_ALIASES` (``center``) are renamed (``centre``)."""
    raw = data.get("zones") if isinstance(data, dict) else None
    if raw is None:
        raise ValueError(f"{source}: no 'zones' key")
    items = raw.items() if isinstance(raw, dict) else [(z.get("name"), z) for z in raw]
    zones = []
    for name, d in items:
        if not name:
            raise ValueError(f"{source}: every zone needs a 'name'")
        try:
            zones.append(_zone_from_dict(ZONE_NAME_ALIASES.get(str(name), str(name)), d))
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from e
    groups = {g: [ZONE_NAME_ALIASES.get(m, m) for m in members] for g, members in data.get("groups", {}).items()}
    return ZoneSet(zones=zones, groups=groups, px_per_mm=data.get("px_per_mm"))


def _read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ArenaError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ArenaError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def load_zones(path: str | Path) -> ZoneSet:
    """Read zones from a JSON file (layouts of :func:`zones_from_dict`, e.g. arena.json)."""
    return zones_from_dict(_read_json(path), source=str(path))


# --------------------------------------------------------------------------- arena


class ArenaError(ValueError):
    """The arena could not be located (missing or bad arena.json, untracked corners...)."""


@dataclass(frozen=True)
class ArenaPlacement:
    """The arena in image pixels: corners ``(4, 2)`` (tl, tr, br, bl) and its size in mm.

    Arena coordinates (fractions ``u, v`` in 0..1 along width and height, or mm from the
    top-left corner) map to pixels bilinearly between the corners, which handles a shifted,
    rotated or slightly tilted (perspective) arena.
    """

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

    def mm_to_px(self, xy_mm: np.ndarray) -> np.ndarray:
        """Map points in mm from the top-left corner ``(n, 2)`` to pixels."""
        return self.to_px(np.atleast_2d(np.asarray(xy_mm, float)) / [self.width_mm, self.height_mm])


def arena_corners(data: dict[str, Any], source: str = "arena") -> np.ndarray:
    """Arena corners ``(4, 2)`` (tl, tr, br, bl) from an arena mapping: ``corners_px``,
    ``bounds_px`` (x0, y0, x1, y1) or ``zones.arena.vertices_px`` (4 points).

    Raises
    ------
    ArenaError
        Naming ``source`` and the keys expected.
    """
    arena_zone = data.get("zones", {}).get("arena") if isinstance(data.get("zones"), dict) else None
    if "corners_px" in data:
        c = np.asarray(data["corners_px"], float)
    elif "bounds_px" in data:
        x0, y0, x1, y1 = map(float, data["bounds_px"])
        c = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    elif isinstance(arena_zone, dict) and "vertices_px" in arena_zone:
        c = np.asarray(arena_zone["vertices_px"], float)
    else:
        raise ArenaError(f"{source}: no arena corners: expected 'corners_px', 'bounds_px' or zones.arena.vertices_px")
    if c.shape != (4, 2) or not np.isfinite(c).all():
        raise ArenaError(f"{source}: arena corners must be 4 finite (x, y) points, got shape {c.shape}")
    return c


def read_arena(path: str | Path, width_mm: float, height_mm: float) -> ArenaPlacement:
    """Read an ``arena.json`` (the one reader of arena files) into an :class:`ArenaPlacement`.

    The file may hold ``corners_px``, ``bounds_px`` or ``zones.arena.vertices_px`` (see
    :func:`arena_corners`) and optionally ``px_per_mm``; its ``zones`` are read by
    :func:`load_zones`.
    """
    path = Path(path)
    if not path.is_file():
        raise ArenaError(f"arena file {path} not found")
    data = _read_json(path)
    ppm = data.get("px_per_mm")
    return ArenaPlacement(arena_corners(data, str(path)), float(width_mm), float(height_mm),
                          None if ppm is None else float(ppm))


def save_zones(zones: ZoneSet, path: str | Path) -> Path:
    """Write zones as generic JSON (atomically); :func:`load_zones` reads it back."""
    from pose.atomic import write_text_atomic

    return write_text_atomic(path, zones.model_dump_json(indent=2))


# --------------------------------------------------------------------------- occupancy


def compute_occupancy(ds: xr.Dataset, zones: ZoneSet, keypoint: str = "body_center", *,
                      floor: Any = None) -> xr.DataArray:
    """Per-frame zone occupancy of ``keypoint``: bool DataArray (time, individual, zone).

    Unknown positions keep the last known occupancy (outside before the first known one).
    On a 3D pose (mm) the zones are drawn on the floor, in mm of the floor frame
    (:func:`features.threed.to_floor_frame`; ``floor``: a Floor, a spec such as ``"z=0"``,
    default estimated from the animal), and the keypoint's floor projection is used.
    """
    validate_pose(ds, context="compute_occupancy")
    if ds.sizes.get("space") == 3:
        from features.threed import resolve_floor, to_floor_frame

        ds = to_floor_frame(ds, resolve_floor(ds, floor))
    kp = find_keypoint(ds, keypoint)
    xy = ds["position"].sel(keypoint=kp).transpose("time", "individual", "space").values[..., :2]
    occ = occupancy_from_xy(xy, zones)
    return xr.DataArray(occ, dims=("time", "individual", "zone"),
                        coords={"time": ds["time"], "individual": ds["individual"], "zone": zones.names},
                        name="occupancy", attrs={"keypoint": kp})


def occupancy_from_xy(xy: np.ndarray, zones: ZoneSet) -> np.ndarray:
    """Occupancy (time, individual, zone) from points (time, individual, 2); unknown points keep
    the last known occupancy (outside before the first known one)."""
    n_t, n_i = xy.shape[:2]
    occ = zones.contains(xy.reshape(-1, 2)).reshape(n_t, n_i, -1)
    known = ~np.isnan(xy).any(axis=-1)
    if not known.all():
        idx = np.where(known, np.arange(n_t)[:, None], -1)
        np.maximum.accumulate(idx, axis=0, out=idx)
        occ = np.take_along_axis(occ, np.maximum(idx, 0)[..., None], axis=0)
        occ[idx < 0] = False
    return occ


def _bouts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.diff(np.concatenate(([0], x.astype(np.int8), [0])))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def clean_occupancy(occ: np.ndarray, min_dwell_frames: int) -> np.ndarray:
    """Remove flicker from a 1-D bool vector: fill out-of-zone gaps shorter than
    ``min_dwell_frames`` between two visits, then drop visits shorter than it (a visit that
    runs off either end of the recording is kept if it is at least that long or touches
    the start)."""
    x = np.asarray(occ, bool).copy()
    if min_dwell_frames <= 1 or not x.any():
        return x
    starts, stops = _bouts(x)
    for a, b in zip(stops[:-1], starts[1:], strict=True):  # gaps between visits
        if b - a < min_dwell_frames:
            x[a:b] = True
    starts, stops = _bouts(x)
    for a, b in zip(starts, stops, strict=True):
        if b - a < min_dwell_frames and a != 0:
            x[a:b] = False
    return x


def detect_entries(
    occupancy: xr.DataArray, *, min_dwell_s: float = 0.5, fps: float | None = None
) -> pd.DataFrame:
    """Bout table of zone visits after flicker removal.

    Parameters
    ----------
    occupancy
        Output of :func:`compute_occupancy` (time, individual, zone).
    min_dwell_s
        Shortest visit, and shortest excursion that ends a visit, in seconds.
    fps
        Frame rate (default: from the ``time`` coordinate spacing).

    Returns
    -------
    pandas.DataFrame
        Columns ``individual, zone, start_s, end_s, duration_s, is_entry`` (``end_s``
        exclusive: time of the last frame + 1/fps). ``is_entry`` is False for a visit
        already in progress at the first frame.
    """
    t = np.asarray(occupancy["time"].values, float)
    if fps is None:
        fps = 1.0 / float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    n_min = max(1, int(round(min_dwell_s * fps)))
    rows = []
    for ind in occupancy["individual"].values:
        for zone in occupancy["zone"].values:
            x = clean_occupancy(occupancy.sel(individual=ind, zone=zone).values, n_min)
            starts, stops = _bouts(x)
            for a, b in zip(starts, stops, strict=True):
                rows.append({"individual": str(ind), "zone": str(zone), "start_s": t[a],
                             "end_s": t[b - 1] + 1.0 / fps, "duration_s": (b - a) / fps,
                             "is_entry": bool(a > 0)})
    return pd.DataFrame(rows, columns=["individual", "zone", "start_s", "end_s", "duration_s", "is_entry"])


def zone_summary(
    ds: xr.Dataset, zones: ZoneSet, *, keypoint: str = "body_center", min_dwell_s: float = 0.5
) -> pd.DataFrame:
    """Per individual and zone: ``time_in_zone_s``, ``fraction``, ``entries``, ``latency_s``
    (first visit start; 0 if in the zone at the first frame; NaN if never), ``n_bouts``,
    ``mean_bout_s``. Uses the flicker-cleaned occupancy of :func:`detect_entries`."""
    validate_pose(ds, require_fps=True, context="zone_summary")
    fps = float(ds.attrs["fps"])
    occ = compute_occupancy(ds, zones, keypoint)
    bouts = detect_entries(occ, min_dwell_s=min_dwell_s, fps=fps)
    n_t = ds.sizes["time"]
    t0 = float(ds["time"].values[0])
    rows = []
    for ind in occ["individual"].values:
        for zone in occ["zone"].values:
            b = bouts[(bouts.individual == str(ind)) & (bouts.zone == str(zone))]
            tin = float(b.duration_s.sum())
            rows.append({"individual": str(ind), "zone": str(zone), "time_in_zone_s": tin,
                         "fraction": tin / (n_t / fps), "entries": int(b.is_entry.sum()),
                         "latency_s": float(b.start_s.min() - t0) if len(b) else np.nan,
                         "n_bouts": len(b), "mean_bout_s": float(b.duration_s.mean()) if len(b) else np.nan})
    return pd.DataFrame(rows)
