"""Per-animal endpoints of each assay, computed from one session's pose.

:func:`analyse_session` runs one protocol over one pose Dataset: body-part aliases, the
protocol's filters (``features.filters``), scale, arena and zones
(:mod:`protocols.geometry`), a per-frame table (centre position, speed, zone membership,
rule-based behaviours from ``behavior.rules``), and then the assay's endpoint function:

- :func:`open_field_endpoints`, :func:`elevated_plus_maze_endpoints`,
  :func:`three_chamber_endpoints`, :func:`gait_endpoints`, :func:`fear_conditioning_endpoints`.

For gait, the per-frame table also gets ``stance_<paw>`` columns, so the ethogram of a gait
session is its footfall (Hildebrand) diagram.

Each endpoint function is pure: it takes the per-frame table (and for gait the pose) and
returns ``{endpoint name: float}`` in the units its name says.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from behavior.bouts import bouts_from_vector
from features.zones import Circle, Polygon
from pose.dataset import append_history, validate_pose
from protocols.geometry import ArenaPlacement, locate_arena, points_in_zone, zones_px
from protocols.schema import BEHAVIOUR_RULES, Protocol

logger = logging.getLogger(__name__)


class SessionError(ValueError):
    """A session cannot be analysed with this protocol (missing body part, no scale...)."""


@dataclass
class SessionResult:
    """What one session gives: endpoints, the per-frame table, the cleaned pose, geometry."""

    endpoints: dict[str, float]
    frames: pd.DataFrame
    pose: xr.Dataset
    zones: dict[str, Polygon | Circle] = field(default_factory=dict)
    arena_corners_px: np.ndarray | None = None
    px_per_mm: float | None = None


def _norm(name: str) -> str:
    return re.sub(r"[\s\-_]+", "_", str(name).strip().lower())


def apply_aliases(ds: xr.Dataset, protocol: Protocol) -> xr.Dataset:
    """Rename keypoints to the protocol's names (case/space-insensitive alias lookup).

    Raises
    ------
    SessionError
        When a required body part is missing, listing the available ones.
    """
    required = protocol.bodyparts.required
    lookup = {_norm(k): v for k, v in protocol.bodyparts.aliases.items()}
    lookup.update({_norm(r): r for r in required})
    names = [str(k) for k in ds.coords["keypoint"].values]
    new = []
    for n in names:
        target = lookup.get(_norm(n), n)
        new.append(target if target not in new else n)
    out = ds.assign_coords(keypoint=new)
    missing = [r for r in required if r not in new]
    if missing:
        raise SessionError(
            f"required body part(s) {missing} not in the pose file (has {names}); "
            "add an alias to the protocol's bodyparts.aliases"
        )
    return out


def apply_filters(ds: xr.Dataset, protocol: Protocol) -> xr.Dataset:
    """Run the protocol's filter steps in order (each records itself in the history)."""
    from features import filters as F

    for step in protocol.filters:
        if step.step == "confidence":
            ds = F.filter_by_confidence(ds, p_cutoff=step.p_cutoff)
        elif step.step == "jumps":
            ds = F.remove_jumps(ds, max_speed_px_s=step.max_speed_px_s)
        elif step.step == "interpolate":
            ds = F.interpolate_gaps(ds, max_gap_s=step.max_gap_s)
        elif step.step == "median":
            ds = F.filter_median(ds, window_s=step.window_s)
        elif step.step == "savgol":
            ds = F.filter_savgol(ds, window_s=step.window_s, polyorder=step.polyorder)
    return ds


def resolve_scale(protocol: Protocol, ds: xr.Dataset, placement: ArenaPlacement | None) -> float:
    """Pixels per mm from the protocol's scale source."""
    src = protocol.scale.source
    if src == "explicit":
        return float(protocol.scale.px_per_mm)  # type: ignore[arg-type]
    if src == "pose_attrs":
        ppm = ds.attrs.get("px_per_mm")
        if not ppm:
            raise SessionError("scale source 'pose_attrs' but the pose file has no px_per_mm attribute")
        return float(ppm)
    assert placement is not None  # checked by the schema (arena_size needs an arena)
    return placement.px_per_mm


def _speed_and_path_mm(xy: np.ndarray, time_s: np.ndarray, px_per_mm: float) -> tuple[np.ndarray, np.ndarray]:
    from features.kinematics import compute_distance_travelled, compute_speed

    pos = xr.DataArray(xy, dims=("time", "space"), coords={"time": time_s, "space": ["x", "y"]})
    speed = np.asarray(compute_speed(pos).values, float) / px_per_mm
    path = np.asarray(compute_distance_travelled(pos, cumulative=True).values, float) / px_per_mm
    return speed, path


def _behaviours(ds: xr.Dataset, protocol: Protocol) -> dict[str, np.ndarray]:
    if not protocol.behaviours:
        return {}
    from behavior import rules

    out = {}
    for b in protocol.behaviours:
        func = getattr(rules, BEHAVIOUR_RULES[b.rule])
        v = func(ds, **b.thresholds)
        if isinstance(v, xr.DataArray) and "individual" in v.dims:
            v = v.isel(individual=0)
        out[b.name] = np.asarray(v, dtype=float) > 0.5
    return out


def session_frames(
    ds: xr.Dataset, protocol: Protocol, zones: dict[str, Polygon | Circle], px_per_mm: float
) -> pd.DataFrame:
    """Per-frame table of the first individual.

    Columns: ``time_s``, ``x_px``, ``y_px`` (the protocol's centre keypoint),
    ``snout_x_px``/``snout_y_px`` when a snout exists, ``speed_mm_s``, ``path_mm``
    (cumulative distance; steps across NaN gaps are not counted), one boolean
    ``in_<zone>`` per zone (and ``snout_in_<zone>`` for circles), and one boolean column
    per behaviour.
    """
    fps = float(ds.attrs["fps"])
    one = ds.isel(individual=0)
    c = one["position"].sel(keypoint=protocol.bodyparts.centre).transpose("time", "space").values[:, :2]
    t = np.arange(c.shape[0]) / fps if ds.attrs.get("time_unit") != "seconds" else ds["time"].values
    frames = pd.DataFrame({"time_s": np.asarray(t, float), "x_px": c[:, 0], "y_px": c[:, 1]})
    if "snout" in one.coords["keypoint"].values:
        s = one["position"].sel(keypoint="snout").transpose("time", "space").values[:, :2]
        frames["snout_x_px"], frames["snout_y_px"] = s[:, 0], s[:, 1]
    frames["speed_mm_s"], frames["path_mm"] = _speed_and_path_mm(c, frames["time_s"].to_numpy(), px_per_mm)
    for name, z in zones.items():
        frames[f"in_{name}"] = points_in_zone(c, z)
        if z.type == "circle" and "snout_x_px" in frames:
            frames[f"snout_in_{name}"] = points_in_zone(frames[["snout_x_px", "snout_y_px"]].to_numpy(), z)
    for name, v in _behaviours(ds, protocol).items():
        frames[name] = v[: len(frames)]
    return frames


def _pct(mask: np.ndarray, valid: np.ndarray) -> float:
    n = int(valid.sum())
    return float(100.0 * (mask & valid).sum() / n) if n else float("nan")


def _entries(mask: np.ndarray) -> int:
    m = np.asarray(mask, bool)
    return int(((~m[:-1]) & m[1:]).sum()) if m.size > 1 else 0


def _distance_mm(frames: pd.DataFrame) -> float:
    return float(frames["path_mm"].iloc[-1]) if len(frames) else float("nan")


def _bout_stats(mask: np.ndarray, fps: float) -> tuple[int, float]:
    b = bouts_from_vector(np.asarray(mask, bool), fps=fps)
    return int(len(b)), float(b["duration_s"].sum()) if len(b) else 0.0


def open_field_endpoints(frames: pd.DataFrame, fps: float) -> dict[str, float]:
    """Open-field endpoints from the per-frame table.

    ``centre_time_pct`` and ``thigmotaxis_pct`` are percentages of tracked frames;
    ``latency_to_centre_s`` is NaN when the animal never enters; ``centre_entries`` counts
    outside->inside transitions (a session starting inside does not count as an entry).
    """
    valid = frames[["x_px", "y_px"]].notna().all(axis=1).to_numpy()
    out = {"distance_mm": _distance_mm(frames),
           "mean_speed_mm_s": float(np.nanmean(frames["speed_mm_s"]))}
    if "in_centre" in frames:
        c = frames["in_centre"].to_numpy(bool)
        out["centre_time_pct"] = _pct(c, valid)
        out["centre_entries"] = float(_entries(c))
        first = np.flatnonzero(c)
        out["latency_to_centre_s"] = float(frames["time_s"].iloc[first[0]] - frames["time_s"].iloc[0]) if first.size else float("nan")
    if "in_wall" in frames:
        out["thigmotaxis_pct"] = _pct(frames["in_wall"].to_numpy(bool), valid)
    if "rearing" in frames:
        out["rearing_count"], out["rearing_time_s"] = map(float, _bout_stats(frames["rearing"].to_numpy(bool), fps))
    if "immobility" in frames:
        out["immobile_time_pct"] = _pct(frames["immobility"].to_numpy(bool), valid)
    return out


def elevated_plus_maze_endpoints(frames: pd.DataFrame, zones: dict[str, Polygon | Circle]) -> dict[str, float]:
    """EPM endpoints: open-arm time % (of time in any arm), entries %, head dips.

    A head dip is an onset of the snout outside every maze zone while the body centre is on
    an open arm or the centre square.
    """
    valid = frames[["x_px", "y_px"]].notna().all(axis=1).to_numpy()
    open_ = np.zeros(len(frames), bool)
    closed = np.zeros(len(frames), bool)
    n_open_entries = n_closed_entries = 0
    for name in zones:
        m = frames[f"in_{name}"].to_numpy(bool)
        if name.startswith("open_arm"):
            open_ |= m
            n_open_entries += _entries(m)
        elif name.startswith("closed_arm"):
            closed |= m
            n_closed_entries += _entries(m)
    arm_frames = int(((open_ | closed) & valid).sum())
    out = {"open_arm_time_pct": float(100 * (open_ & valid).sum() / arm_frames) if arm_frames else float("nan"),
           "open_arm_entries": float(n_open_entries), "closed_arm_entries": float(n_closed_entries),
           "distance_mm": _distance_mm(frames)}
    total = n_open_entries + n_closed_entries
    out["open_arm_entries_pct"] = float(100 * n_open_entries / total) if total else float("nan")
    if "snout_x_px" in frames:
        snout = frames[["snout_x_px", "snout_y_px"]].to_numpy(float)
        on_maze = np.zeros(len(frames), bool)
        for z in zones.values():
            on_maze |= points_in_zone(snout, z)
        centre_ok = open_ | frames.get("in_centre", pd.Series(False, index=frames.index)).to_numpy(bool)
        dip = (~on_maze) & np.isfinite(snout).all(axis=1) & centre_ok
        out["head_dips"] = float(_entries(np.r_[False, dip]))
    return out


def three_chamber_endpoints(frames: pd.DataFrame, fps: float) -> dict[str, float]:
    """Sociability: time sniffing the stranger vs the object; index ``(S - O) / (S + O)``.

    Sniffing is the snout inside the cup's circle (``snout_in_<zone>``; the centre
    keypoint when the pose has no snout).
    """
    valid = frames[["x_px", "y_px"]].notna().all(axis=1).to_numpy()

    def sniff(zone: str) -> float:
        col = f"snout_in_{zone}" if f"snout_in_{zone}" in frames else f"in_{zone}"
        return float(frames[col].sum() / fps)

    social, obj = sniff("social_sniff"), sniff("object_sniff")
    tot = social + obj
    return {"social_time_s": social, "object_time_s": obj,
            "sociability_index": float((social - obj) / tot) if tot > 0 else float("nan"),
            "social_chamber_time_pct": _pct(frames["in_social_chamber"].to_numpy(bool), valid),
            "object_chamber_time_pct": _pct(frames["in_object_chamber"].to_numpy(bool), valid),
            "distance_mm": _distance_mm(frames)}


def gait_cycles(ds: xr.Dataset, protocol: Protocol) -> pd.DataFrame:
    """Step cycles of the protocol's paws (:func:`features.gait.detect_step_cycles`), stacked."""
    from features.gait import detect_step_cycles

    assert protocol.gait is not None
    cycles = [detect_step_cycles(ds, paw).assign(paw=paw) for paw in protocol.gait.paws]
    cycles = [c for c in cycles if len(c)]
    return pd.concat(cycles, ignore_index=True) if cycles else pd.DataFrame()


def stance_columns(cycles: pd.DataFrame, time_s: np.ndarray, paws: list[str]) -> dict[str, np.ndarray]:
    """Boolean ``stance_<paw>`` per frame: from touch-down to the next toe-off of a cycle."""
    out = {}
    for paw in paws:
        v = np.zeros(time_s.size, bool)
        sub = cycles[cycles["paw"] == paw] if len(cycles) else cycles
        for on, off in zip(sub.get("swing_end_s", []), sub.get("stance_end_s", []), strict=True):
            v |= (time_s >= on) & (time_s < off)
        out[f"stance_{paw}"] = v
    return out


def gait_endpoints(cycles: pd.DataFrame, protocol: Protocol, px_per_mm: float) -> dict[str, float]:
    """Gait endpoints from the step cycles of :func:`gait_cycles`.

    Stride length (mm), cadence (Hz), duty factor and speed (mm/s) are means over all
    complete cycles of all listed paws; ``symmetry_index`` is ``2 |L - R| / (L + R)`` of
    the mean stride lengths of the first two paws (0 = symmetric; features.gait reports
    the signed ``200 (L - R) / (L + R)`` %).
    """
    assert protocol.gait is not None
    nan = float("nan")
    if cycles.empty:
        return {"stride_length_mm": nan, "cadence_hz": nan, "duty_factor": nan, "speed_mm_s": nan,
                "n_strides": 0.0, "symmetry_index": nan}
    out = {"stride_length_mm": float(cycles["stride_length"].mean() / px_per_mm),
           "cadence_hz": float(cycles["cadence_hz"].mean()), "duty_factor": float(cycles["duty_factor"].mean()),
           "speed_mm_s": float(cycles["speed"].mean() / px_per_mm), "n_strides": float(len(cycles))}
    paws = protocol.gait.paws[:2]
    lens = [float(cycles.loc[cycles.paw == p, "stride_length"].mean()) for p in paws]
    out["symmetry_index"] = (float(2 * abs(lens[0] - lens[1]) / (lens[0] + lens[1]))
                             if len(lens) == 2 and np.all(np.isfinite(lens)) else nan)
    return out


def fear_conditioning_endpoints(frames: pd.DataFrame, protocol: Protocol, fps: float) -> dict[str, float]:
    """Percent time freezing over the session, per epoch/cue (``freezing_pct_<epoch>``), bouts."""
    f = frames["freezing"].to_numpy(bool)
    t = frames["time_s"].to_numpy()
    valid = frames[["x_px", "y_px"]].notna().all(axis=1).to_numpy() | f
    out = {"freezing_pct": _pct(f, valid), "freezing_bouts": float(_bout_stats(f, fps)[0])}
    for e in protocol.epochs:
        inside = (t >= e.start_s) & (t < e.stop_s)
        out[f"freezing_pct_{e.name}"] = _pct(f, valid & inside) if inside.any() else float("nan")
    return out


def analyse_session(
    ds: xr.Dataset, protocol: Protocol, *, pose_path: Path | None = None
) -> SessionResult:
    """Run ``protocol`` over one session's pose.

    Parameters
    ----------
    ds
        Pose Dataset with ``fps`` set; the first individual is analysed.
    protocol
        A loaded protocol.
    pose_path
        The pose file (to find ``arena.json`` beside it).

    Returns
    -------
    SessionResult
        Endpoints named as in :data:`protocols.schema.ENDPOINTS` (``freezing_pct_per_epoch``
        expands to one ``freezing_pct_<epoch>`` per epoch).

    Raises
    ------
    SessionError, protocols.geometry.ArenaError, pose.dataset.PoseValidationError
    """
    validate_pose(ds, require_fps=True, context=str(pose_path or "session"))
    if ds.sizes["individual"] > 1:
        logger.warning("%s: %d individuals; analysing the first (%s)", pose_path,
                       ds.sizes["individual"], ds.coords["individual"].values[0])
    fps = float(ds.attrs["fps"])
    if ds.sizes["time"] / fps < protocol.min_session_s:
        raise SessionError(f"session is {ds.sizes['time'] / fps:.1f} s, protocol needs {protocol.min_session_s} s")
    ds = apply_aliases(ds, protocol)
    ds = apply_filters(ds, protocol)
    placement = locate_arena(protocol.arena, ds, pose_path) if protocol.arena is not None else None
    px_per_mm = resolve_scale(protocol, ds, placement)
    zones = zones_px(protocol, placement)
    ds.attrs["px_per_mm"] = px_per_mm
    frames = session_frames(ds, protocol, zones, px_per_mm)
    if protocol.assay == "open_field":
        ep = open_field_endpoints(frames, fps)
    elif protocol.assay == "elevated_plus_maze":
        ep = elevated_plus_maze_endpoints(frames, zones)
    elif protocol.assay == "three_chamber":
        ep = three_chamber_endpoints(frames, fps)
    elif protocol.assay == "gait":
        cycles = gait_cycles(ds, protocol)
        ep = gait_endpoints(cycles, protocol, px_per_mm)
        for col, v in stance_columns(cycles, frames["time_s"].to_numpy(), protocol.gait.paws).items():
            frames[col] = v
    else:
        ep = fear_conditioning_endpoints(frames, protocol, fps)
    wanted = set(protocol.endpoints)
    keep = {k: v for k, v in ep.items()
            if k in wanted or (k.startswith("freezing_pct_") and "freezing_pct_per_epoch" in wanted)}
    ds = append_history(ds, "protocols.analyse_session",
                        {"protocol": protocol.name, "assay": protocol.assay, "px_per_mm": px_per_mm})
    return SessionResult(keep, frames, ds, zones,
                         None if placement is None else placement.corners_px, px_per_mm)
