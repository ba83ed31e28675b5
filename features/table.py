"""One tidy per-frame feature table and a per-session summary.

:func:`compute_feature_table` gives one row per frame and individual with the standard
features (position of a reference point, speed, acceleration, heading, angular velocity, body
length, cumulative distance, zone occupancy). Column names carry their units
(``speed_mm_s`` when ``px_per_mm`` is known, ``speed_px_s`` otherwise).
:func:`summarize_session` reduces it to one row per individual (distance, mean speed, time
moving, time in zones, entries, latencies).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from features import kinematics as kin
from features import zones as zmod
from pose.dataset import frame_numbers, validate_pose
from pose.keypoints import find_keypoint, find_role

logger = logging.getLogger(__name__)

__all__ = ["compute_feature_table", "summarize_session", "reference_position"]

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


def compute_feature_table(
    ds: xr.Dataset,
    zones: zmod.ZoneSet | None = None,
    *,
    keypoint: str | None = None,
    px_per_mm: float | None = None,
    min_dwell_s: float = 0.5,
) -> pd.DataFrame:
    """Per-frame features of every individual as a tidy table.

    Parameters
    ----------
    ds
        Pose Dataset with fps (clean/smooth it first: speeds from raw tracking are noisy).
    zones
        Optional zones; adds ``in_<zone>`` (bool, after flicker removal with ``min_dwell_s``).
    keypoint
        Reference point for position, speed and zones (default: a body-centre keypoint, else
        the centroid of the visible keypoints).
    px_per_mm
        Calibration (default ``ds.attrs["px_per_mm"]``); lengths in mm when known.
    min_dwell_s
        Minimum dwell time for zone occupancy.

    Returns
    -------
    pandas.DataFrame
        Columns ``time_s, frame, individual, x_<u>, y_<u>, speed_<u>_s, acceleration_<u>_s2,
        distance_<u>`` (cumulative), and when snout and tail base exist ``heading_rad,
        angular_velocity_rad_s, body_length_<u>``; then ``in_<zone>`` columns. ``<u>`` is
        ``mm`` or ``px``.
    """
    validate_pose(ds, require_fps=True, context="compute_feature_table")
    ppm = px_per_mm if px_per_mm is not None else ds.attrs.get("px_per_mm")
    unit = "mm" if ppm else "px"
    scale = 1.0 / ppm if ppm else 1.0
    ref, ref_name = reference_position(ds, keypoint)
    n_t, inds = ds.sizes["time"], [str(i) for i in ds["individual"].values]
    cols: dict[str, np.ndarray] = {}

    def add(name: str, da: xr.DataArray) -> None:
        cols[name] = np.asarray(da.transpose("time", "individual").values, dtype=float)

    add(f"x_{unit}", ref.sel(space="x", drop=True) * scale)
    add(f"y_{unit}", ref.sel(space="y", drop=True) * scale)
    add(f"speed_{unit}_s", kin.compute_speed(ref) * scale)
    acc = kin.compute_acceleration(ref)
    add(f"acceleration_{unit}_s2", np.sqrt((acc**2).sum("space", skipna=False)) * scale)
    add(f"distance_{unit}", kin.compute_distance_travelled(ref, cumulative=True) * scale)
    snout, tail = find_role(ds, "snout"), find_role(ds, "tail_base")
    if snout and tail:
        head = kin.compute_heading(ds, tail, snout)
        add("heading_rad", head)
        add("angular_velocity_rad_s", kin.compute_angular_velocity(head))
        add(f"body_length_{unit}", kin.compute_body_length(ds, snout, tail) * scale)
    if zones is not None:
        xy = ref.transpose("time", "individual", "space").values[..., :2]
        occ = zmod.occupancy_from_xy(xy, zones)
        n_min = max(1, int(round(min_dwell_s * float(ds.attrs["fps"]))))
        for z in zones.names:
            m = occ[:, :, zones.names.index(z)]
            cols[f"in_{z}"] = np.stack([zmod.clean_occupancy(m[:, i], n_min) for i in range(m.shape[1])], 1)
    table = pd.DataFrame({
        "time_s": np.tile(np.asarray(ds["time"].values, float), len(inds)),
        "frame": np.tile(frame_numbers(ds), len(inds)),
        "individual": np.repeat(inds, n_t),
    })
    for name, arr in cols.items():
        table[name] = arr.T.reshape(-1)
    table.attrs = {"reference_keypoint": ref_name, "length_unit": unit, "px_per_mm": ppm,
                   "fps": float(ds.attrs["fps"])}
    return table


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
        ``individual, duration_s, distance_<u>, mean_speed_<u>_s, time_moving_s,
        fraction_moving``, and per zone ``time_in_<zone>_s, entries_<zone>,
        latency_<zone>_s`` (latency 0 when in the zone at the first frame, NaN if never;
        an initial visit is not an entry).
    """
    unit = table.attrs.get("length_unit") or ("mm" if "speed_mm_s" in table else "px")
    fps = table.attrs.get("fps") or 1.0 / float(np.median(np.diff(np.unique(table.time_s))))
    moving_speed = 20.0 if moving_speed is None else moving_speed
    zone_cols = [c for c in table.columns if c.startswith("in_")]
    rows = []
    for ind, g in table.groupby("individual", sort=False):
        sp = g[f"speed_{unit}_s"].to_numpy()
        row = {"individual": ind, "duration_s": len(g) / fps,
               f"distance_{unit}": float(np.nanmax(g[f"distance_{unit}"])) if len(g) else 0.0,
               f"mean_speed_{unit}_s": float(np.nanmean(sp)) if np.isfinite(sp).any() else np.nan,
               "time_moving_s": float(np.sum(sp > moving_speed)) / fps}
        row["fraction_moving"] = row["time_moving_s"] / row["duration_s"]
        t = g.time_s.to_numpy()
        for c in zone_cols:
            z = c[3:]
            x = g[c].to_numpy(bool)
            row[f"time_in_{z}_s"] = float(x.sum()) / fps
            d = np.diff(np.concatenate(([0], x.astype(np.int8))))
            starts = np.flatnonzero(d == 1)
            row[f"entries_{z}"] = int((starts > 0).sum())
            row[f"latency_{z}_s"] = float(t[starts[0]] - t[0]) if starts.size else np.nan
        if zone_bouts is not None and not zone_bouts.empty:
            for z, b in zone_bouts[zone_bouts.individual == ind].groupby("zone"):
                row[f"entries_{z}"] = int(b.is_entry.sum())
        rows.append(row)
    return pd.DataFrame(rows)
