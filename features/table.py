"""The one per-frame feature table, the reducers that turn it into session numbers.

:func:`compute_feature_table` gives one row per frame and individual with the standard
features (position of a reference point, speed, acceleration, heading, angular velocity, body
length, cumulative distance, zone occupancy). Column names carry their units
(``speed_mm_s`` when ``px_per_mm`` is known, ``speed_px_s`` otherwise); ``x_px``/``y_px``
(image coordinates) are always there. Every caller builds its session numbers from this
table and the reducers below: ``ethopose features compute`` (:func:`summarize_session`),
the demo, the protocols' endpoints (:mod:`protocols.endpoints`) and the behaviour
classifier's features (:mod:`behavior.pose_features`).

Reducers (pure, on columns of the table): :func:`valid_frames`, :func:`percent_of_valid`,
:func:`count_entries`, :func:`latency_s`, :func:`total_distance`, :func:`mean_speed`.
A number that cannot be computed (no valid frame) is NaN, never 0.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import numpy as np
import pandas as pd
import xarray as xr

from features import kinematics as kin
from features import zones as zmod
from pose.dataset import frame_numbers, validate_pose
from pose.keypoints import find_keypoint, find_role

logger = logging.getLogger(__name__)

__all__ = [
    "FAMILIES", "compute_feature_table", "summarize_session", "reference_position",
    "valid_frames", "percent_of_valid", "count_entries", "latency_s", "total_distance",
    "mean_speed",
]

#: Feature families of the table (``position`` columns are always there).
FAMILIES = ("speed", "distance", "heading", "zones", "keypoint_speeds")


def reference_position(ds: xr.Dataset, keypoint: str | None = None) -> tuple[xr.DataArray, str]:
    """Position (time, space, individual) of ``keypoint``, else of a body-centre keypoint,
    else the centroid of the visible keypoints; returns it and a description."""
    if keypoint is not None:
        name = find_keypoint(ds, keypoint)
        return ds["position"].sel(keypoint=name, drop=True), name
    name = find_role(ds, "body_centre")
    if name is not None:
        return ds["position"].sel(keypoint=name, drop=True), name
    return ds["position"].mean("keypoint", skipna=True), "centroid"


def _zone_columns(ref: xr.DataArray, zones: zmod.ZoneSet, n_min: int, prefix: str) -> dict[str, np.ndarray]:
    xy = ref.transpose("time", "individual", "space").values[..., :2]
    occ = zmod.occupancy_from_xy(xy, zones)
    out = {}
    for j, z in enumerate(zones.names):
        m = occ[:, :, j]
        out[f"{prefix}in_{z}"] = np.stack([zmod.clean_occupancy(m[:, i], n_min) for i in range(m.shape[1])], 1)
    return out


def compute_feature_table(
    ds: xr.Dataset,
    zones: zmod.ZoneSet | None = None,
    *,
    keypoint: str | None = None,
    px_per_mm: float | None = None,
    min_dwell_s: float = 0.5,
    families: Collection[str] | None = None,
    snout_zones: bool = False,
) -> pd.DataFrame:
    """Per-frame features of every individual as a tidy table.

    Parameters
    ----------
    ds
        Pose Dataset with fps (clean it first with :func:`features.filters.clean`: speeds
        from raw tracking are noisy).
    zones
        Optional zones (px); adds ``in_<zone>`` (bool, after flicker removal with
        ``min_dwell_s``). Occupancy at an unknown position keeps the last known one.
    keypoint
        Reference point for position, speed and zones (default: a body-centre keypoint, else
        the centroid of the visible keypoints).
    px_per_mm
        Calibration (default ``ds.attrs["px_per_mm"]``); lengths in mm when known.
    min_dwell_s
        Minimum dwell time for zone occupancy (0: raw per-frame occupancy).
    families
        Which of :data:`FAMILIES` to compute (default: all but ``keypoint_speeds``).
    snout_zones
        Also add ``snout_x_px``, ``snout_y_px`` and ``snout_in_<zone>`` (the snout role of
        :mod:`pose.keypoints`) when a snout keypoint exists.

    Returns
    -------
    pandas.DataFrame
        Columns ``time_s, frame, individual, x_px, y_px`` (and ``x_mm, y_mm`` when
        calibrated), ``speed_<u>_s, acceleration_<u>_s2`` (speed), ``distance_<u>``
        (cumulative; distance), ``heading_rad, angular_velocity_rad_s, body_length_<u>``
        when snout and tail base exist (heading), ``speed_<keypoint>_<u>_s`` per keypoint
        (keypoint_speeds), then ``in_<zone>`` (zones). ``<u>`` is ``mm`` or ``px``.
    """
    validate_pose(ds, require_fps=True, context="compute_feature_table")
    if ds.sizes.get("space") == 3:  # a triangulated pose (mm): its own table, features.threed
        from features.threed import compute_feature_table_3d

        return compute_feature_table_3d(ds, zones, keypoint=keypoint, families=families, min_dwell_s=min_dwell_s,
                                        snout_zones=snout_zones)
    fam = set(FAMILIES) - {"keypoint_speeds"} if families is None else set(families)
    unknown = fam - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown feature families {sorted(unknown)}; known: {list(FAMILIES)}")
    ppm = px_per_mm if px_per_mm is not None else ds.attrs.get("px_per_mm")
    unit = "mm" if ppm else "px"
    scale = 1.0 / ppm if ppm else 1.0
    ref, ref_name = reference_position(ds, keypoint)
    cols: dict[str, np.ndarray] = {}

    def add(name: str, da: xr.DataArray) -> None:
        cols[name] = np.asarray(da.transpose("time", "individual").values, dtype=float)

    add("x_px", ref.sel(space="x", drop=True))
    add("y_px", ref.sel(space="y", drop=True))
    if unit == "mm":
        add("x_mm", ref.sel(space="x", drop=True) * scale)
        add("y_mm", ref.sel(space="y", drop=True) * scale)
    if "speed" in fam:
        add(f"speed_{unit}_s", kin.compute_speed(ref) * scale)
        acc = kin.compute_acceleration(ref)
        add(f"acceleration_{unit}_s2", np.sqrt((acc**2).sum("space", skipna=False)) * scale)
    if "distance" in fam:
        add(f"distance_{unit}", kin.compute_distance_travelled(ref, cumulative=True) * scale)
    snout, tail = find_role(ds, "snout"), find_role(ds, "tail_base")
    if "heading" in fam and snout and tail:
        head = kin.compute_heading(ds, tail, snout)
        add("heading_rad", head)
        add("angular_velocity_rad_s", kin.compute_angular_velocity(head))
        add(f"body_length_{unit}", kin.compute_body_length(ds, snout, tail) * scale)
    if "keypoint_speeds" in fam:
        speeds = kin.compute_speed(ds["position"]) * scale  # (time, keypoint, individual)
        for k in ds["keypoint"].values:
            add(f"speed_{k}_{unit}_s", speeds.sel(keypoint=k, drop=True))
    n_min = max(1, int(round(min_dwell_s * float(ds.attrs["fps"]))))
    if zones is not None and "zones" in fam:
        cols.update(_zone_columns(ref, zones, n_min, ""))
    if snout_zones and snout:
        s = ds["position"].sel(keypoint=snout, drop=True)
        add("snout_x_px", s.sel(space="x", drop=True))
        add("snout_y_px", s.sel(space="y", drop=True))
        if zones is not None and "zones" in fam:
            cols.update(_zone_columns(s, zones, n_min, "snout_"))
    table = tidy_table(ds, cols)
    table.attrs = {"reference_keypoint": ref_name, "length_unit": unit, "px_per_mm": ppm,
                   "fps": float(ds.attrs["fps"])}
    return table


def tidy_table(ds: xr.Dataset, cols: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per frame and individual: ``time_s, frame, individual`` then ``cols`` ((time, individual) arrays)."""
    inds = [str(i) for i in ds["individual"].values]
    table = pd.DataFrame({
        "time_s": np.tile(np.asarray(ds["time"].values, float), len(inds)),
        "frame": np.tile(frame_numbers(ds), len(inds)),
        "individual": np.repeat(inds, ds.sizes["time"]),
    })
    for name, arr in cols.items():
        table[name] = arr.T.reshape(-1)
    return table


# --------------------------------------------------------------------------- reducers


def valid_frames(table: pd.DataFrame, prefix: str = "") -> np.ndarray:
    """Bool per row: the reference point (or ``prefix`` point, e.g. ``"snout_"``) is known."""
    cols = [f"{prefix}x_px", f"{prefix}y_px"]
    if cols[0] not in table and f"{prefix}x_mm" in table:  # a 3D table (features.threed) has no image columns
        cols = [f"{prefix}{a}_mm" for a in "xyz" if f"{prefix}{a}_mm" in table]
    return table[cols].notna().all(axis=1).to_numpy()


def percent_of_valid(mask: np.ndarray, valid: np.ndarray) -> float:
    """Percentage of the ``valid`` frames where ``mask`` holds (NaN without valid frames)."""
    n = int(np.sum(valid))
    return float(100.0 * np.sum(np.asarray(mask, bool) & valid) / n) if n else float("nan")


def count_entries(mask: np.ndarray) -> int:
    """Outside -> inside transitions (a session starting inside is not an entry)."""
    m = np.asarray(mask, bool)
    return int(((~m[:-1]) & m[1:]).sum()) if m.size > 1 else 0


def latency_s(mask: np.ndarray, time_s: np.ndarray) -> float:
    """Time from the first frame to the first frame where ``mask`` holds (0 if it holds at
    the start, NaN if never)."""
    first = np.flatnonzero(np.asarray(mask, bool))
    return float(time_s[first[0]] - time_s[0]) if first.size else float("nan")


def total_distance(table: pd.DataFrame, unit: str) -> float:
    """Path length of the reference point (last value of the cumulative ``distance_<u>``);
    NaN when no step between two known positions exists."""
    if len(table) < 2:
        return float("nan")
    ok = valid_frames(table)
    if not (ok[1:] & ok[:-1]).any():
        return float("nan")
    return float(np.nanmax(table[f"distance_{unit}"].to_numpy(float)))


def mean_speed(table: pd.DataFrame, unit: str) -> float:
    """Mean speed over the frames where it is known (NaN if none)."""
    sp = table[f"speed_{unit}_s"].to_numpy(float)
    return float(np.nanmean(sp)) if np.isfinite(sp).any() else float("nan")


def summarize_session(
    table: pd.DataFrame, *, moving_speed: float | None = None, zone_bouts: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per individual from a :func:`compute_feature_table` table.

    Parameters
    ----------
    table
        Per-frame feature table.
    moving_speed
        Speed above which the animal counts as moving, in the table's length unit per s
        (default: 20 mm/s, or 20 px/s without calibration).
    zone_bouts
        Optional output of :func:`features.zones.detect_entries` for entries/latencies;
        otherwise they are derived from the ``in_<zone>`` columns.

    Returns
    -------
    pandas.DataFrame
        ``individual, duration_s, distance_<u>, mean_speed_<u>_s,
        time_moving_s, fraction_moving``, and per zone ``time_in_<zone>_s,
        time_in_<zone>_pct`` (of the frames with a known position), ``entries_<zone>``,
        ``latency_<zone>_s`` (0 when in the zone at the first frame, NaN if never; an
        initial visit is not an entry). NaN where nothing is known (no 0 for an untracked
        animal).
    """
    unit = table.attrs.get("length_unit") or ("mm" if "speed_mm_s" in table else "px")
    fps = table.attrs.get("fps") or 1.0 / float(np.median(np.diff(np.unique(table.time_s))))
    moving_speed = 20.0 if moving_speed is None else moving_speed
    zone_cols = [c for c in table.columns if c.startswith("in_")]
    rows = []
    for ind, g in table.groupby("individual", sort=False):
        valid = valid_frames(g)
        sp = g[f"speed_{unit}_s"].to_numpy()
        row = {"individual": ind, "duration_s": len(g) / fps,
               f"distance_{unit}": total_distance(g, unit),
               f"mean_speed_{unit}_s": mean_speed(g, unit),
               "time_moving_s": float(np.sum(sp > moving_speed)) / fps if valid.any() else float("nan")}
        row["fraction_moving"] = row["time_moving_s"] / row["duration_s"]
        t = g.time_s.to_numpy()
        for c in zone_cols:
            z = c[3:]
            x = g[c].to_numpy(bool)
            row[f"time_in_{z}_s"] = float(x.sum()) / fps if valid.any() else float("nan")
            row[f"time_in_{z}_pct"] = percent_of_valid(x, valid)
            row[f"entries_{z}"] = count_entries(x) if valid.any() else float("nan")
            row[f"latency_{z}_s"] = latency_s(x, t)
        if zone_bouts is not None and not zone_bouts.empty:
            for z, b in zone_bouts[zone_bouts.individual == ind].groupby("zone"):
                row[f"entries_{z}"] = int(b.is_entry.sum())
        rows.append(row)
    return pd.DataFrame(rows)
