"""Per-animal endpoints of each assay, computed from one session's pose.

:func:`analyse_session` runs one protocol over one pose Dataset, through the same functions
``ethopose features compute`` and the demo use:

1. body-part aliases (protocol names), then the protocol's cleaning steps, once
   (:func:`features.filters.clean`);
2. arena, scale and zones: :mod:`protocols.geometry` compiles the protocol's geometry into a
   :class:`features.zones.ZoneSet`;
3. the per-frame table :func:`features.table.compute_feature_table` (the families the
   protocol asks for) plus one boolean column per behaviour (``behavior.rules``, on the
   already-clean pose);
4. the assay's endpoints, reduced from that table with the reducers of
   :mod:`features.table`: :func:`open_field_endpoints`, :func:`elevated_plus_maze_endpoints`,
   :func:`three_chamber_endpoints`, :func:`gait_endpoints`,
   :func:`fear_conditioning_endpoints`;
5. quality: ``coverage_pct`` (frames where the centre keypoint was tracked with confidence,
   before gap filling), ``coverage_<endpoint>_pct`` for endpoints that use other keypoints,
   NaN for an endpoint whose keypoints are never tracked, and ``quality_flag`` (``ok``,
   ``no_track``, ``low_coverage``) carried into ``endpoints.csv`` and the statistics.

For gait, the per-frame table also gets ``stance_<paw>`` columns, so the ethogram of a gait
session is its footfall (Hildebrand) diagram.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from behavior.bouts import bouts_from_vector
from features.filters import clean
from features.steps import ConfidenceMask
from features.table import (
    compute_feature_table,
    count_entries,
    latency_s,
    mean_speed,
    percent_of_valid,
    total_distance,
    valid_frames,
)
from features.zones import Circle, Polygon, ZoneSet
from pose.dataset import append_history, validate_pose
from pose.keypoints import find_role, normalise_name
from protocols.geometry import ArenaPlacement, compile_zones, locate_arena
from protocols.schema import (
    ENDPOINTS,
    ElevatedPlusMazeAssay,
    FearConditioningAssay,
    FreezingRule,
    GaitAssay,
    GroomingRule,
    ImmobilityRule,
    LocomotionRule,
    OpenFieldAssay,
    Protocol,
    RearingRule,
    ThreeChamberAssay,
)
from protocols.uncertainty import interval_columns

logger = logging.getLogger(__name__)

#: Endpoints computed from the snout (with the centre) rather than the centre alone.
SNOUT_ENDPOINTS = ("head_dips", "social_time_s", "object_time_s", "sociability_index")


class SessionError(ValueError):
    """A session cannot be analysed with this protocol (missing body part, no scale...)."""


@dataclass
class SessionResult:
    """What one session gives: endpoints (with coverage and ``quality_flag``), the
    per-frame table, the cleaned pose, geometry."""

    endpoints: dict[str, float | str]
    frames: pd.DataFrame
    pose: xr.Dataset
    zones: dict[str, Polygon | Circle] = field(default_factory=dict)
    arena_corners_px: np.ndarray | None = None
    px_per_mm: float | None = None


def apply_aliases(ds: xr.Dataset, protocol: Protocol) -> xr.Dataset:
    """Rename keypoints to the protocol's names (alias lookup modulo case, spaces, dashes
    and underscores: :func:`pose.keypoints.normalise_name`).

    Raises
    ------
    SessionError
        When a required body part is missing, listing the available ones.
    """
    required = protocol.bodyparts.required
    lookup = {normalise_name(k): v for k, v in protocol.bodyparts.aliases.items()}
    lookup.update({normalise_name(r): r for r in required})
    names = [str(k) for k in ds.coords["keypoint"].values]
    new: list[str] = []
    for n in names:
        target = lookup.get(normalise_name(n), n)
        new.append(target if target not in new else n)
    out = ds.assign_coords(keypoint=new)
    missing = [r for r in required if r not in new]
    if missing:
        raise SessionError(
            f"required body part(s) {missing} not in the pose file (has {names}); "
            "add an alias to the protocol's bodyparts.aliases"
        )
    return out


def resolve_scale(protocol: Protocol, ds: xr.Dataset, placement: ArenaPlacement | None) -> float:
    """Pixels per mm from the protocol's scale source (1 for a 3D pose: already in mm)."""
    if ds.sizes.get("space") == 3:  # triangulated: mm, whatever the scale source says
        return 1.0
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


def detect_behaviours(ds: xr.Dataset, protocol: Protocol) -> dict[str, np.ndarray]:
    """One boolean vector per protocol behaviour, from the already-clean one-animal pose."""
    if not protocol.behaviours:
        return {}
    from behavior import rules

    if ds.sizes.get("space") == 3:  # the top-view rules on the pose seen straight from above (mm)
        from features.threed import floor_view

        ds = floor_view(ds)

    out = {}
    for b in protocol.behaviours:
        match b:
            case FreezingRule():
                v = rules.detect_freezing(
                    ds, enter_speed_mm_s=b.enter_speed_mm_s, exit_speed_mm_s=b.exit_speed_mm_s,
                    window_s=b.window_s, min_bout_s=b.min_bout_s, merge_gap_s=b.merge_gap_s,
                    calibrate=b.calibrate, rearing_length_ratio=b.rearing_length_ratio,
                    grooming_paw_snout_mm=b.grooming_paw_snout_mm)
            case ImmobilityRule():
                v = rules.detect_immobility(ds, max_speed_mm_s=b.max_speed_mm_s, window_s=b.window_s,
                                            min_bout_s=b.min_bout_s, merge_gap_s=b.merge_gap_s)
            case LocomotionRule():
                v = rules.detect_locomotion(ds, min_speed_mm_s=b.min_speed_mm_s, window_s=b.window_s,
                                            min_bout_s=b.min_bout_s, merge_gap_s=b.merge_gap_s)
            case RearingRule():
                v = rules.detect_rearing(ds, max_length_ratio=b.max_length_ratio,
                                         max_body_speed_mm_s=b.max_body_speed_mm_s, smooth_s=b.smooth_s,
                                         min_bout_s=b.min_bout_s, merge_gap_s=b.merge_gap_s)
            case GroomingRule():
                v = rules.detect_grooming(ds, max_body_speed_mm_s=b.max_body_speed_mm_s,
                                          max_paw_snout_mm=b.max_paw_snout_mm,
                                          min_length_ratio=b.min_length_ratio, smooth_s=b.smooth_s,
                                          min_bout_s=b.min_bout_s, merge_gap_s=b.merge_gap_s)
        out[b.name] = np.asarray(v, dtype=float) > 0.5
    return out


def session_frames(ds: xr.Dataset, protocol: Protocol, zones: ZoneSet, px_per_mm: float) -> pd.DataFrame:
    """Per-frame table of the (one) individual: :func:`features.table.compute_feature_table`
    with the protocol's centre keypoint, zones, feature families and dwell time (columns
    ``time_s, frame, x_px, y_px, x_mm, y_mm, speed_mm_s, distance_mm, in_<zone>``,
    ``snout_x_px, snout_y_px, snout_in_<zone>`` when a snout exists), then one boolean column
    per behaviour."""
    families = [f for f in protocol.feature_families() if f != "gait"]
    frames = compute_feature_table(ds, zones, keypoint=protocol.bodyparts.centre, px_per_mm=px_per_mm,
                                   min_dwell_s=protocol.min_dwell_s, families=families, snout_zones=True)
    frames = frames.drop(columns="individual")  # one animal per session table
    for name, v in detect_behaviours(ds, protocol).items():
        frames[name] = v[: len(frames)]
    return frames


def _bout_stats(mask: np.ndarray, fps: float) -> tuple[int, float]:
    b = bouts_from_vector(np.asarray(mask, bool), fps=fps)
    return int(len(b)), float(b["duration_s"].sum()) if len(b) else 0.0


def _col(frames: pd.DataFrame, name: str) -> np.ndarray:
    return frames[name].to_numpy(bool) if name in frames else np.zeros(len(frames), bool)


def _has_snout(frames: pd.DataFrame) -> bool:
    """The table has the snout's position (image columns, or world mm of a 3D session)."""
    return "snout_x_px" in frames or "snout_x_mm" in frames


def open_field_endpoints(frames: pd.DataFrame, fps: float) -> dict[str, float]:
    """Open-field endpoints from the per-frame table.

    ``centre_time_pct`` and ``thigmotaxis_pct`` are percentages of tracked frames;
    ``latency_to_centre_s`` is NaN when the animal never enters; ``centre_entries`` counts
    outside->inside transitions (a session starting inside does not count as an entry).
    """
    valid = valid_frames(frames)
    out = {"distance_mm": total_distance(frames, "mm"), "mean_speed_mm_s": mean_speed(frames, "mm")}
    if "in_centre" in frames:
        c = frames["in_centre"].to_numpy(bool)
        out["centre_time_pct"] = percent_of_valid(c, valid)
        out["centre_entries"] = float(count_entries(c))
        out["latency_to_centre_s"] = latency_s(c, frames["time_s"].to_numpy())
    if "in_wall" in frames:
        out["thigmotaxis_pct"] = percent_of_valid(frames["in_wall"].to_numpy(bool), valid)
    if "rearing" in frames:
        out["rearing_count"], out["rearing_time_s"] = map(float, _bout_stats(frames["rearing"].to_numpy(bool), fps))
    if "immobility" in frames:
        out["immobile_time_pct"] = percent_of_valid(frames["immobility"].to_numpy(bool), valid)
    return out


def elevated_plus_maze_endpoints(frames: pd.DataFrame, zones: ZoneSet) -> dict[str, float]:
    """EPM endpoints: open-arm time % (of time in any arm), entries %, head dips.

    A head dip is an onset of the snout outside every maze zone while the body centre is on
    an open arm or the centre square.
    """
    valid = valid_frames(frames)
    open_ = np.zeros(len(frames), bool)
    closed = np.zeros(len(frames), bool)
    n_open_entries = n_closed_entries = 0
    for name in zones.names:
        m = frames[f"in_{name}"].to_numpy(bool)
        if name.startswith("open_arm"):
            open_ |= m
            n_open_entries += count_entries(m)
        elif name.startswith("closed_arm"):
            closed |= m
            n_closed_entries += count_entries(m)
    out = {"open_arm_time_pct": percent_of_valid(open_, valid & (open_ | closed)),
           "open_arm_entries": float(n_open_entries), "closed_arm_entries": float(n_closed_entries),
           "distance_mm": total_distance(frames, "mm")}
    total = n_open_entries + n_closed_entries
    out["open_arm_entries_pct"] = float(100 * n_open_entries / total) if total else float("nan")
    if _has_snout(frames):
        on_maze = np.zeros(len(frames), bool)
        for name in zones.names:
            on_maze |= _col(frames, f"snout_in_{name}")
        dip = (~on_maze) & valid_frames(frames, "snout_") & (open_ | _col(frames, "in_centre"))
        out["head_dips"] = float(count_entries(np.r_[False, dip]))
    return out


def three_chamber_endpoints(frames: pd.DataFrame, fps: float) -> dict[str, float]:
    """Sociability: time sniffing the stranger vs the object; index ``(S - O) / (S + O)``.

    Sniffing is the snout inside the cup's circle (``snout_in_<zone>`` at frames where the
    snout is tracked; the centre keypoint when the pose has no snout).
    """
    valid = valid_frames(frames)
    snout = _has_snout(frames)
    sniff_valid = valid_frames(frames, "snout_") if snout else valid

    def sniff(zone: str) -> float:
        col = f"snout_in_{zone}" if snout else f"in_{zone}"
        return float((_col(frames, col) & sniff_valid).sum() / fps)

    social, obj = sniff("social_sniff"), sniff("object_sniff")
    tot = social + obj
    return {"social_time_s": social, "object_time_s": obj,
            "sociability_index": float((social - obj) / tot) if tot > 0 else float("nan"),
            "social_chamber_time_pct": percent_of_valid(_col(frames, "in_social_chamber"), valid),
            "object_chamber_time_pct": percent_of_valid(_col(frames, "in_object_chamber"), valid),
            "distance_mm": total_distance(frames, "mm")}


def gait_cycles(ds: xr.Dataset, paws: list[str]) -> pd.DataFrame:
    """Step cycles of ``paws`` (:func:`features.gait.detect_step_cycles`), stacked."""
    from features.gait import detect_step_cycles

    cycles = [detect_step_cycles(ds, paw).assign(paw=paw) for paw in paws]
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


def gait_endpoints(cycles: pd.DataFrame, paws: list[str], px_per_mm: float) -> dict[str, float]:
    """Gait endpoints from the step cycles of :func:`gait_cycles`.

    Stride length (mm), cadence (Hz), duty factor and speed (mm/s) are means over all
    complete cycles of all listed paws; ``symmetry_index`` is ``2 |L - R| / (L + R)`` of
    the mean stride lengths of the first two paws (0 = symmetric; features.gait reports
    the signed ``200 (L - R) / (L + R)`` %).
    """
    nan = float("nan")
    if cycles.empty:
        return {"stride_length_mm": nan, "cadence_hz": nan, "duty_factor": nan, "speed_mm_s": nan,
                "n_strides": 0.0, "symmetry_index": nan}
    out = {"stride_length_mm": float(cycles["stride_length"].mean() / px_per_mm),
           "cadence_hz": float(cycles["cadence_hz"].mean()), "duty_factor": float(cycles["duty_factor"].mean()),
           "speed_mm_s": float(cycles["speed"].mean() / px_per_mm), "n_strides": float(len(cycles))}
    lens = [float(cycles.loc[cycles.paw == p, "stride_length"].mean()) for p in paws[:2]]
    out["symmetry_index"] = (float(2 * abs(lens[0] - lens[1]) / (lens[0] + lens[1]))
                             if len(lens) == 2 and np.all(np.isfinite(lens)) else nan)
    return out


def fear_conditioning_endpoints(frames: pd.DataFrame, spec: FearConditioningAssay, fps: float) -> dict[str, float]:
    """Percent time freezing over the session, per epoch/cue (``freezing_pct_<epoch>``), bouts."""
    f = frames["freezing"].to_numpy(bool)
    t = frames["time_s"].to_numpy()
    valid = valid_frames(frames) | f
    out = {"freezing_pct": percent_of_valid(f, valid), "freezing_bouts": float(_bout_stats(f, fps)[0])}
    for e in spec.epochs:
        inside = (t >= e.start_s) & (t < e.stop_s)
        out[f"freezing_pct_{e.name}"] = percent_of_valid(f, valid & inside) if inside.any() else float("nan")
    return out


# --------------------------------------------------------------------------- quality


def _tracked(raw: xr.Dataset, keypoints: list[str], threshold: float | None) -> np.ndarray:
    """Bool per frame: every keypoint has a finite position (and confidence >= threshold)."""
    pos = raw["position"].isel(individual=0).sel(keypoint=keypoints).values  # (time, space, kp)
    ok = np.isfinite(pos).all(axis=1)
    if threshold is not None:
        conf = raw["confidence"].isel(individual=0).sel(keypoint=keypoints).values
        ok &= ~(conf < threshold)  # NaN confidence (unknown) counts as tracked
    return ok.all(axis=1)


def _endpoint_keypoints(protocol: Protocol, endpoint: str, snout: str | None) -> list[str]:
    """The keypoints an endpoint is computed from (its coverage is theirs)."""
    if protocol.gait is not None and endpoint in ENDPOINTS["gait"]:
        return list(protocol.gait.paws)
    if endpoint in SNOUT_ENDPOINTS and snout:
        return [snout, protocol.bodyparts.centre]
    if endpoint.startswith(("rearing", "immobile", "freezing")):
        return list(protocol.bodyparts.required)
    return [protocol.bodyparts.centre]


def quality(raw: xr.Dataset, protocol: Protocol, endpoints: dict[str, float]) -> dict[str, float | str]:
    """Coverage per animal and per endpoint, NaN for endpoints never tracked, a flag.

    Parameters
    ----------
    raw
        The one-animal pose after aliasing, before cleaning (coverage counts measured frames,
        not gap-filled ones).
    protocol
        The protocol (its first confidence step sets the cut-off; ``min_coverage_pct``).
    endpoints
        The assay's endpoints; those whose keypoints are never tracked become NaN.

    Returns
    -------
    dict
        The endpoints, then ``coverage_pct`` (centre keypoint), ``coverage_<endpoint>_pct``
        for endpoints that use other keypoints, and ``quality_flag``: ``ok``, ``no_track``
        (the centre is never tracked) or ``low_coverage`` (some coverage below
        ``min_coverage_pct``).
    """
    cut = next((s.threshold for s in protocol.filters if isinstance(s, ConfidenceMask)), None)
    snout = find_role(raw, "snout")
    centre = [protocol.bodyparts.centre]
    n = raw.sizes["time"]
    cover: dict[tuple[str, ...], float] = {}
    out: dict[str, float | str] = dict(endpoints)
    quality_cols: dict[str, float] = {}
    for e in endpoints:
        kps = tuple(_endpoint_keypoints(protocol, e, snout))
        if kps not in cover:
            cover[kps] = float(100.0 * _tracked(raw, list(kps), cut).sum() / n) if n else float("nan")
        if not cover[kps] > 0:
            out[e] = float("nan")
        if list(kps) != centre:
            quality_cols[f"coverage_{e}_pct"] = cover[kps]
    centre_cov = cover.get(tuple(centre))
    if centre_cov is None:
        centre_cov = float(100.0 * _tracked(raw, centre, cut).sum() / n) if n else float("nan")
    out["coverage_pct"] = centre_cov
    out.update(quality_cols)
    lowest = min([centre_cov, *quality_cols.values()])
    if not centre_cov > 0:
        out["quality_flag"] = "no_track"
    elif lowest < protocol.min_coverage_pct:
        out["quality_flag"] = "low_coverage"
    else:
        out["quality_flag"] = "ok"
    if out["quality_flag"] != "ok":
        logger.warning("%s: coverage %.1f %% (lowest %.1f %%, minimum %.0f %%): flagged %s", protocol.name,
                       centre_cov, lowest, protocol.min_coverage_pct, out["quality_flag"])
    return out


# --------------------------------------------------------------------------- session


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
        expands to one ``freezing_pct_<epoch>`` per epoch), then the quality columns of
        :func:`quality`.

    Raises
    ------
    SessionError, features.zones.ArenaError, pose.dataset.PoseValidationError
    """
    validate_pose(ds, require_fps=True, context=str(pose_path or "session"))
    if protocol.assay == "social_interaction":  # two animals: protocols.social
        from protocols.social import analyse_social_session

        return analyse_social_session(ds, protocol, pose_path=pose_path)
    if ds.sizes["individual"] > 1:
        logger.warning("%s: %d individuals; analysing the first (%s)", pose_path,
                       ds.sizes["individual"], ds.coords["individual"].values[0])
    ds = ds.isel(individual=[0])
    fps = float(ds.attrs["fps"])
    if ds.sizes["time"] / fps < protocol.min_session_s:
        raise SessionError(f"session is {ds.sizes['time'] / fps:.1f} s, protocol needs {protocol.min_session_s} s")
    raw = apply_aliases(ds, protocol)
    ds = clean(raw, protocol.filters)
    placement = locate_arena(protocol.arena, ds, pose_path) if protocol.arena is not None else None
    px_per_mm = resolve_scale(protocol, ds, placement)
    zones = compile_zones(protocol, placement)
    ds.attrs["px_per_mm"] = px_per_mm
    frames = session_frames(ds, protocol, zones, px_per_mm)
    match protocol.assay_spec:
        case OpenFieldAssay():
            ep = open_field_endpoints(frames, fps)
        case ElevatedPlusMazeAssay():
            ep = elevated_plus_maze_endpoints(frames, zones)
        case ThreeChamberAssay():
            ep = three_chamber_endpoints(frames, fps)
        case GaitAssay(options=opt):
            cycles = gait_cycles(ds, opt.paws)
            ep = gait_endpoints(cycles, opt.paws, px_per_mm)
            for col, v in stance_columns(cycles, frames["time_s"].to_numpy(), opt.paws).items():
                frames[col] = v
        case FearConditioningAssay() as spec:
            ep = fear_conditioning_endpoints(frames, spec, fps)
    wanted = set(protocol.endpoints)
    keep = {k: v for k, v in ep.items()
            if k in wanted or (k.startswith("freezing_pct_") and "freezing_pct_per_epoch" in wanted)}
    keep = quality(raw, protocol, keep)
    if protocol.uncertainty is not None and ds.sizes.get("space") == 3:  # its bootstrap worlds are 2D tracks
        logger.warning("%s: pose-uncertainty intervals are not computed for a 3D pose", pose_path or "session")
    elif protocol.uncertainty is not None:  # pose-uncertainty intervals <endpoint>_lo / _hi
        keep.update(interval_columns(raw, protocol, zones, px_per_mm))
    ds = append_history(ds, "protocols.analyse_session",
                        {"protocol": protocol.name, "assay": protocol.assay, "px_per_mm": px_per_mm,
                         "coverage_pct": keep["coverage_pct"], "quality_flag": keep["quality_flag"]})
    return SessionResult(keep, frames, ds, {z.name: z for z in zones.zones},
                         None if placement is None else placement.corners_px, px_per_mm)
