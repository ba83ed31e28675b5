"""Gait: step cycles of each paw from its trajectory (swing vs stance), and gait summaries.

A paw is in **stance** when it is still relative to the ground (on a treadmill: moving with
the belt) and in **swing** when it moves. :func:`detect_step_cycles` finds each swing by the
paw's frame-to-frame speed with two adaptive thresholds (hysteresis), then widens it to the
steps where the paw is not at rest: toe-off is the first step the paw leaves rest and
touch-down the last step before it is at rest again, each placed at the middle of that
frame interval (the event happened somewhere inside it). A cycle runs from one toe-off
through touch-down to the next toe-off, as AutoGaitA and most hand-scoring protocols define
it.

Thresholds are relative, not tuned to one recording: with ``v_stance`` the median speed of
the slow half of the valid steps and ``v_swing`` the median speed of the fastest
``swing_quantile`` share of them, ``low = v_stance + low_fraction * (v_swing - v_stance)``
and ``high = v_stance + high_fraction * (v_swing - v_stance)``. A swing must reach ``high``,
last ``min_swing_s`` and cover ``min_stride_fraction`` of the median swing displacement; a
stance must last ``min_stance_s``. "At rest" is below the tracking noise of the stance steps
(median + 3 robust SD of their speeds), capped at ``rest_fraction`` of the way to the swing
speed: on clean tracks the events are found within the frame they happen in, so stance and
duty factor are unbiased. Tracking noise is measured (lower quartile of the second
differences, i.e. in the still stance frames) and the positions are smoothed with a
Gaussian just wide enough to bring the speed noise to ``speed_noise_fraction`` of the swing
speed (none on a clean track), so the noise does not hide the start and end of the swing
(see :func:`detect_step_cycles`, Notes; ``python3 bench/gait_events.py`` for the spread).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from features import filters
from features.kinematics import find_keypoint
from pose.dataset import validate_pose

logger = logging.getLogger(__name__)

__all__ = ["detect_step_cycles", "summarize_gait", "compute_paw_angle", "stance_paw_angles", "find_keypoint",
           "CYCLE_COLUMNS"]

CYCLE_COLUMNS = [
    "paw", "cycle", "swing_start_s", "swing_end_s", "stance_end_s", "stride_length",
    "stride_time_s", "cadence_hz", "swing_s", "stance_s", "duty_factor", "speed", "length_unit",
]


def _rest_threshold(v: np.ndarray, still: np.ndarray, v_stance: float, span: float, rest_fraction: float) -> float:
    """Speed below which a paw is at rest: the stance steps' noise level, at most
    ``rest_fraction`` of the way from the stance to the swing speed."""
    s = v[still]
    if s.size < 5:
        return v_stance + rest_fraction * span
    med = float(np.median(s))
    noise = med + 3.0 * 1.4826 * float(np.median(np.abs(s - med)))
    return float(min(v_stance + rest_fraction * span, max(noise, v_stance + 1e-6 * span)))


def _position_noise_px(xy: np.ndarray) -> float:
    """Tracking noise SD (px) from the lower quartile of |second differences| (white noise: 6 sigma^2
    per axis); the lower quartile lies in the stance frames (duty factor >= 0.5), where the paw is
    still, so the swings' own accelerations do not count as noise (0 on a clean track)."""
    d2 = np.diff(xy, n=2, axis=0)
    d2 = d2[np.isfinite(d2).all(axis=1)]
    if len(d2) < 10:
        return 0.0
    q25 = np.quantile(np.abs(d2), 0.25, axis=0)  # |N(0, 6 s^2)| lower quartile = 0.3186 sqrt(6) s
    return float(np.mean(q25) / (0.3186 * np.sqrt(6.0)))


def _smoothing_s(xy: np.ndarray, fps: float, noise_px: float, min_swing_s: float,
                 speed_noise_fraction: float = 0.02) -> float:
    """Gaussian SD (s) that brings the speed noise to ``speed_noise_fraction`` of the swing speed."""
    if noise_px <= 0:
        return 0.0
    v = np.linalg.norm(np.diff(xy, axis=0), axis=1) * fps
    v = v[np.isfinite(v)]
    if len(v) < 10:
        return 0.0
    v_swing = float(np.quantile(v, 0.9))
    if v_swing <= 0:
        return 0.0
    # speed noise of a Gaussian-smoothed derivative: sigma * sqrt(1 / (4 sqrt(pi) s^3 fps))
    target = speed_noise_fraction * v_swing
    s = (noise_px ** 2 / (target ** 2 * 4 * np.sqrt(np.pi) * fps)) ** (1 / 3)
    return float(min(s, 0.5 * min_swing_s))


def _nan_gaussian(xy: np.ndarray, sd_frames: float) -> np.ndarray:
    """Gaussian smoothing along time that ignores NaN (normalised convolution), NaN kept."""
    from scipy.ndimage import gaussian_filter1d

    ok = np.isfinite(xy).all(axis=1)
    w = gaussian_filter1d(ok.astype(float), sd_frames, mode="nearest")
    out = np.full_like(xy, np.nan)
    for k in range(xy.shape[1]):
        num = gaussian_filter1d(np.where(ok, xy[:, k], 0.0), sd_frames, mode="nearest")
        out[ok, k] = num[ok] / w[ok]
    return out


def _crossing(t_mid: np.ndarray, v: np.ndarray, i: int, thr: float) -> float:
    """Sub-frame time where v crosses thr between step midpoints i and i+1 (linear)."""
    a, b = v[i], v[i + 1]
    if not (np.isfinite(a) and np.isfinite(b)) or a == b:
        return float(0.5 * (t_mid[i] + t_mid[i + 1]))
    w = np.clip((thr - a) / (b - a), 0.0, 1.0)
    return float(t_mid[i] + w * (t_mid[i + 1] - t_mid[i]))


def _interp_xy(t: np.ndarray, xy: np.ndarray, tq: float) -> np.ndarray:
    return np.array([np.interp(tq, t, xy[:, 0]), np.interp(tq, t, xy[:, 1])])


def detect_step_cycles(
    ds: xr.Dataset,
    paw: str,
    *,
    individual: str | int = 0,
    p_cutoff: float = 0.5,
    max_gap_s: float = 0.05,
    belt_speed_px_s: float = 0.0,
    low_fraction: float = 0.2,
    high_fraction: float = 0.4,
    rest_fraction: float = 0.05,
    swing_quantile: float = 0.2,
    min_swing_s: float = 0.03,
    min_stance_s: float = 0.03,
    min_stride_fraction: float = 0.3,
    smooth_s: float | None = None,
    speed_noise_fraction: float = 0.02,
    events: Literal["onset", "visible"] = "onset",
    units: str = "px",
    floor: object | None = None,
) -> pd.DataFrame:
    """Step cycles of one paw.

    Parameters
    ----------
    ds
        Pose Dataset with fps (time in seconds).
    paw
        Keypoint name of the paw (matched modulo surrounding whitespace, e.g. DeepLabCut's
        ``"Hind paw tao "``).
    individual
        Individual name or index.
    p_cutoff
        Samples below this confidence are dropped; gaps up to ``max_gap_s`` are interpolated,
        longer gaps split the recording (no cycle spans them).
    max_gap_s
        Longest gap bridged by linear interpolation (seconds).
    belt_speed_px_s
        Treadmill belt velocity along +x in px/s (negative when the belt runs toward -x):
        the paw's velocity relative to the belt is used, so a paw standing on the belt is in
        stance. 0 for over-ground walking.
    low_fraction, high_fraction
        Hysteresis thresholds as fractions between the stance and swing speed levels.
    rest_fraction
        Highest "at rest" speed, as a fraction between the stance and swing speed levels
        (the rest level is the stance steps' noise level when that is lower).
    swing_quantile
        Share of fastest steps whose median defines the swing speed level.
    min_swing_s, min_stance_s
        Shortest swing and stance phases kept (shorter ones are merged into their
        neighbours).
    min_stride_fraction
        A swing must move the paw by at least this fraction of the median swing
        displacement (removes tracking jitter mistaken for steps).
    smooth_s
        Gaussian SD (seconds) of the position smoothing before the speed is taken; None
        derives it from the measured tracking noise (0 on a clean track; at most half of
        ``min_swing_s``). Ignored with ``events="visible"``.
    speed_noise_fraction
        With ``smooth_s=None``: the smoothing brings the speed noise down to this fraction of
        the swing speed (90th percentile of the step speeds).
    events
        ``"onset"``: the movement's start and end (unbiased on the truth); ``"visible"``: the
        earlier threshold rule, closer to human marks (see Notes).
    units
        Name of the length unit of ``position`` (reported in ``length_unit``; a 3D pose
        reports its own, mm).
    floor
        3D pose only: the floor (a :class:`features.threed.Floor` or a spec such as
        ``"z=0"``); default estimated from the animal (:func:`features.threed.estimate_floor`).
        See Notes.

    Returns
    -------
    pandas.DataFrame
        One row per complete cycle (toe-off, touch-down, next toe-off) with columns
        :data:`CYCLE_COLUMNS`: times in seconds at sub-frame precision, ``stride_length``
        (displacement over the cycle relative to the ground/belt), ``stride_time_s``,
        ``cadence_hz`` = 1 / stride time, ``swing_s``, ``stance_s``, ``duty_factor`` =
        stance / stride time, ``speed`` = stride length / stride time.

    Notes
    -----
    ``events="onset"`` (default): the times are the middles of the frame intervals in which
    the paw leaves / reaches rest, so each is within half a frame of the truth on a clean track
    (virtual mouse: duty factor exact to 0.001 at 50-200 fps). A paw starts and ends its swing
    slowly, so tracking noise would hide the first and last steps of a swing (toe-off seen late,
    touch-down early, stance too long): the noise is measured and the speed smoothed to match
    (the log says how much). Measured by ``bench/gait_events.py``: with 0.5-2 px noise at
    50-200 fps over a walk and two trots, worst duty factor error 0.052 (0.220 with the
    ``"visible"`` rule). Human scorers mark the first frame the paw is *seen* off / on the
    ground: on the AutoGaitA beam runs that is 2-3 frames after the onset (toe-off median
    -25 ms, touch-down -15 ms, 8/10 cycles within 50 ms; duty factor -0.027 vs the marks on
    average; at 50 fps -30 / -10 ms, 6/10, -0.052). To compare with hand-marked cycles use
    ``events="visible"``.

    ``events="visible"``: the earlier rule, kept unchanged for comparison with hand-marked
    cycles: toe-off where the speed (seen at the later frame of each step) crosses the low
    threshold, touch-down where it falls below ``rest_fraction``; no smoothing. Within 6 / 12
    ms (median) of the beam's hand marks (10/10 cycles; at 50 fps 7 / 7 ms), but biased on the
    truth (duty factor +0.04..+0.07
    on the exact virtual mouse, up to +0.10 with 1 px noise, -0.22 with 2 px at 200 fps).

    **3D pose** (space = x, y, z in mm, e.g. ``ethopose pose triangulate``): the paw is
    taken in the floor's frame (:func:`features.threed.to_floor_frame`); its speed is the 3D
    speed over the ground (the lift counts, so the swing's first and last steps stand out of
    the noise), stride length is the displacement along the floor, ``belt_speed_px_s`` is
    in mm/s along the floor's x. Contact is judged from the paw's height above the floor: a
    "stance" whose median height is above the paws' contact level (the stance height plus 3
    robust SD of it, at least a quarter of the way to the median swing peak) is a still paw
    in the air (held up while rearing or grooming), not a step, and its cycles are dropped
    (logged). Extra columns: ``swing_height`` (highest point of the swing) and
    ``stance_height`` (median height in stance) above the floor (see
    :mod:`features.gait_threed`).

    With ``belt_speed_px_s=0`` on a recording where the paws cycle but make no progress over
    the ground (a treadmill, or a camera panning with the animal), stride length, speed and
    the phase durations cannot be measured: they are NaN and a warning says why.
    """
    validate_pose(ds, require_fps=True, context="detect_step_cycles")
    fps = float(ds.attrs["fps"])
    kp = find_keypoint(ds, paw)
    ind = ds["individual"].values[individual] if isinstance(individual, int) else individual
    one = ds.sel(keypoint=[kp], individual=[ind])
    one = filters.clean(one, [filters.ConfidenceMask(threshold=p_cutoff), filters.Interpolate(max_gap_s=max_gap_s)])
    xy = one["position"].values[:, :2, 0, 0]  # (T, 2)
    in_3d = ds.sizes.get("space") == 3
    if in_3d:  # floor frame: x, y on the floor, height; speed over the ground in 3D
        from features.gait_threed import paw_in_floor_frame

        xy, units = paw_in_floor_frame(ds, one, floor)
    t = np.asarray(one["time"].values, float)
    empty = pd.DataFrame(columns=CYCLE_COLUMNS)
    if len(t) < 4:
        return empty
    noise_px = _position_noise_px(xy)
    smooth_s = _smoothing_s(xy, fps, noise_px, min_swing_s, speed_noise_fraction) if smooth_s is None else float(smooth_s)
    if events not in ("onset", "visible"):
        raise ValueError(f"detect_step_cycles: events must be 'onset' or 'visible', not {events!r}")
    if events == "visible":
        smooth_s = 0.0  # the rule human scorers are compared with, as it was measured (no smoothing)
    if smooth_s > 0:
        xy = _nan_gaussian(xy, smooth_s * fps)
    logger.info("detect_step_cycles: paw %r tracking noise %.2f px -> speed smoothed over %.1f ms "
                "(Gaussian SD; 0 on a clean track, override with smooth_s)", kp, noise_px, 1000 * smooth_s)
    step = np.diff(xy, axis=0)
    step[:, 0] -= belt_speed_px_s / fps
    v = np.linalg.norm(step, axis=1) * fps  # px/s of step i -> i+1
    t_mid = 0.5 * (t[1:] + t[:-1])  # a step's speed is its average over the frame interval
    valid = np.isfinite(v)
    if valid.sum() < 10:
        logger.warning("detect_step_cycles: paw %r has fewer than 10 valid steps", kp)
        return empty
    vv = np.sort(v[valid])
    v_stance = float(np.median(vv[: max(1, len(vv) // 2)]))
    v_swing = float(np.median(vv[-max(1, int(len(vv) * swing_quantile)):]))
    span = v_swing - v_stance
    if span <= 0:
        return empty
    low, high = v_stance + low_fraction * span, v_stance + high_fraction * span
    moving = _hysteresis(v, low, high)
    moving = _clean_phases(moving, valid, int(round(min_swing_s * fps)), int(round(min_stance_s * fps)))
    rest = _rest_threshold(v, valid & ~moving, v_stance, span, rest_fraction)
    n_settle = max(1, int(round(min_stance_s * fps)))

    # swing segments = runs of moving steps; each bounded by valid stance on both sides
    d = np.diff(np.concatenate(([0], moving.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)  # step indices
    swings = []
    for a, b in zip(starts, stops, strict=True):
        if a == 0 or b >= len(v) or not (valid[a - 1] and valid[b]):
            continue  # begins/ends at a gap or at the edge: event time unknown
        if not valid[a:b].all():
            continue
        if events == "onset":
            t_ev = _onset_events(v, valid, t_mid, a, b, rest, n_settle)
        else:
            t_ev = _visible_events(v, valid, t[1:], a, b, low, v_stance + rest_fraction * span, n_settle)
        if t_ev is None:
            continue
        t_off, t_on = t_ev
        disp = np.linalg.norm(xy[b] - xy[a]) if np.isfinite(xy[[a, b]]).all() else np.nan
        swings.append((a, b, t_off, t_on, disp))
    if not swings:
        return empty
    med_disp = float(np.nanmedian([s[4] for s in swings]))
    swings = [s for s in swings if np.isfinite(s[4]) and s[4] >= min_stride_fraction * med_disp]

    rows = []
    for k in range(len(swings) - 1):
        a, b, t_off, t_on, _ = swings[k]
        a2, _, t_off2, _, _ = swings[k + 1]
        if not valid[b:a2].all():
            # a tracking gap in stance: keep the cycle only if the paw did not move across it
            seg = xy[b:a2 + 1]
            seg = seg[np.isfinite(seg).all(axis=1)]
            if len(seg) < 2 or np.linalg.norm(seg - seg[0], axis=1).max() > min_stride_fraction * med_disp:
                continue
        p0, p1 = _interp_xy(t, xy, t_off), _interp_xy(t, xy, t_off2)
        disp = p1 - p0  # on the floor (x, y) for a 3D pose
        disp[0] -= belt_speed_px_s * (t_off2 - t_off)
        stride = float(np.hypot(*disp))
        st = t_off2 - t_off
        rows.append({
            "paw": kp.strip(), "cycle": len(rows) + 1, "swing_start_s": t_off, "swing_end_s": t_on,
            "stance_end_s": t_off2, "stride_length": stride, "stride_time_s": st,
            "cadence_hz": 1.0 / st, "swing_s": t_on - t_off, "stance_s": t_off2 - t_on,
            "duty_factor": (t_off2 - t_on) / st, "speed": stride / st, "length_unit": units,
        })
    out = pd.DataFrame(rows, columns=CYCLE_COLUMNS)
    if in_3d:
        from features.gait_threed import gate_by_contact

        out = gate_by_contact(out, t, xy[:, 2], kp)
    if len(out) and belt_speed_px_s == 0.0 and out["stride_length"].median() < 0.1 * med_disp:
        logger.warning(
            "detect_step_cycles: paw %r swings %.3g %s per step but makes %.3g %s of progress per stride: "
            "the camera moves with the animal or it walks on a treadmill; give belt_speed_px_s. "
            "Stride length, speed, swing/stance durations and duty factor set to NaN",
            kp, med_disp, units, float(out["stride_length"].median()), units)
        out[["stride_length", "speed", "swing_s", "stance_s", "duty_factor"]] = np.nan
    return out


def _onset_events(v, valid, t_mid, a, b, rest, n_settle):
    """Toe-off / touch-down of the swing on steps a..b-1: the first step the paw leaves rest
    (searched back from the swing) and the last one before it is at rest again (searched
    forward), both within ``n_settle`` steps, each at the middle of its frame interval."""
    i = a
    while i > max(0, a - n_settle) and valid[i - 1] and v[i - 1] > rest:
        i -= 1
    j = b - 1
    while j < min(b - 1 + n_settle, len(v) - 1) and valid[j + 1] and v[j + 1] > rest:
        j += 1
    if i == 0 or j >= len(v) - 1:
        return None
    return float(t_mid[i]), float(t_mid[j])


def _visible_events(v, valid, t_seen, a, b, low, rest, n_settle):
    """The rule before the onset events (``events="visible"``): toe-off where the speed, seen at the later frame
    of each step (``t_seen``), crosses ``low``; touch-down where it falls below ``rest``
    within ``n_settle`` steps after the swing."""
    t_off = _crossing(t_seen, v, a - 1, low)
    j = b
    while j < min(b + n_settle, len(v) - 1) and valid[j] and v[j] > rest:
        j += 1
    return t_off, _crossing(t_seen, v, j - 1, rest if j > b else low)


def _hysteresis(v: np.ndarray, low: float, high: float) -> np.ndarray:
    """True on runs above ``low`` that reach ``high`` somewhere (NaN = not moving)."""
    above_low = np.where(np.isfinite(v), v > low, False)
    above_high = np.where(np.isfinite(v), v > high, False)
    d = np.diff(np.concatenate(([0], above_low.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    out = np.zeros_like(above_low)
    for a, b in zip(starts, stops, strict=True):
        if above_high[a:b].any():
            out[a:b] = True
    return out


def _clean_phases(moving: np.ndarray, valid: np.ndarray, min_swing: int, min_stance: int) -> np.ndarray:
    """Merge stance gaps shorter than ``min_stance`` between swings, then drop short swings."""
    x = moving.copy()
    d = np.diff(np.concatenate(([0], x.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    for a, b in zip(stops[:-1], starts[1:], strict=True):
        if b - a < min_stance and valid[a:b].all():
            x[a:b] = True
    d = np.diff(np.concatenate(([0], x.astype(np.int8), [0])))
    for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
        if b - a < min_swing:
            x[a:b] = False
    return x


def _pairs(paws: Sequence[str]) -> list[tuple[str, str]]:
    """Left/right pairs among paw names (``left_x``/``right_x``, ``Left X``/``Right X``, ``lx``/``rx``)."""
    out = []
    low = {p.lower(): p for p in paws}
    for p in paws:
        pl = p.lower()
        for a, b in (("left", "right"), ("l_", "r_"), ("l", "r")):
            if pl.startswith(a) and (b + pl[len(a):]) in low:
                out.append((p, low[b + pl[len(a):]]))
                break
    return out


def summarize_gait(
    cycles: pd.DataFrame, ds: xr.Dataset | None = None, *, reference_paw: str | None = None,
    floor: object | None = None,
) -> dict[str, pd.DataFrame]:
    """Gait summary from the cycles of several paws (``pd.concat`` of :func:`detect_step_cycles`).

    Returns
    -------
    dict
        ``per_paw``: mean/median stride length, stride time, cadence, duty factor, speed and
        the number of cycles per paw. ``symmetry``: for each left/right pair, the symmetry
        index ``SI = 200 * (L - R) / (L + R)`` (%) of stride length, stride time, duty factor
        and swing time (0 = symmetric). ``phase``: inter-limb phase of each paw relative to
        ``reference_paw`` (default: the first paw): the mean circular position, in [0, 1),
        of the paw's toe-offs within the reference paw's cycles (0.5 = alternating).
        ``base_of_support`` (when ``ds`` is given and both sides of a pair are visible): the
        median distance between the left and right paw, perpendicular to the direction of
        travel, over frames where both are in stance, in the cycles' ``length_unit`` (mm
        when the cycles were converted to mm: the pose's px are divided by its
        ``px_per_mm``; px otherwise). On a 3D pose it is measured on the floor
        (``floor`` as in :func:`detect_step_cycles`), in mm.
    """
    out: dict[str, pd.DataFrame] = {}
    if cycles.empty:
        return {"per_paw": pd.DataFrame(), "symmetry": pd.DataFrame(), "phase": pd.DataFrame(),
                "base_of_support": pd.DataFrame()}
    metrics = ["stride_length", "stride_time_s", "cadence_hz", "swing_s", "stance_s", "duty_factor", "speed"]
    g = cycles.groupby("paw")
    per = g[metrics].mean().add_prefix("mean_")
    per = per.join(g[["stride_length", "stride_time_s"]].median().add_prefix("median_"))
    per["n_cycles"] = g.size()
    out["per_paw"] = per.reset_index()
    paws = list(per.index)
    sym_rows = []
    for left, right in _pairs(paws):
        row = {"left": left, "right": right}
        for m in ("stride_length", "stride_time_s", "duty_factor", "swing_s"):
            lv, rv = per.loc[left, f"mean_{m}"], per.loc[right, f"mean_{m}"]
            row[f"si_{m}"] = 200.0 * (lv - rv) / (lv + rv) if (lv + rv) else np.nan
        sym_rows.append(row)
    out["symmetry"] = pd.DataFrame(sym_rows)
    ref = reference_paw or paws[0]
    ref_c = cycles[cycles.paw == ref].sort_values("swing_start_s")
    ph_rows = []
    for p in paws:
        toe = cycles[cycles.paw == p].swing_start_s.to_numpy()
        phases = []
        for s, e in zip(ref_c.swing_start_s, ref_c.stance_end_s, strict=True):
            inside = toe[(toe >= s) & (toe < e)]
            phases.extend(((inside - s) / (e - s)).tolist())
        if phases:
            ang = 2 * np.pi * np.asarray(phases)
            mean = np.arctan2(np.sin(ang).mean(), np.cos(ang).mean()) / (2 * np.pi) % 1.0
            r = float(np.hypot(np.sin(ang).mean(), np.cos(ang).mean()))
        else:
            mean, r = np.nan, np.nan
        ph_rows.append({"paw": p, "reference": ref, "phase": mean, "phase_concentration": r, "n": len(phases)})
    out["phase"] = pd.DataFrame(ph_rows)
    if ds is not None and ds.sizes.get("space") == 3:  # on the floor: x, y of the floor frame (mm)
        from features.threed import resolve_floor, to_floor_frame

        ds = to_floor_frame(ds, resolve_floor(ds, floor))  # type: ignore[arg-type]
    out["base_of_support"] = _base_of_support(cycles, ds, paws) if ds is not None else pd.DataFrame()
    return out


def _stance_mask(cycles: pd.DataFrame, paw: str, t: np.ndarray) -> np.ndarray:
    m = np.zeros(len(t), bool)
    for a, b in zip(cycles.loc[cycles.paw == paw, "swing_end_s"], cycles.loc[cycles.paw == paw, "stance_end_s"], strict=True):
        m |= (t >= a) & (t <= b)
    return m


def _length_scale(cycles: pd.DataFrame, ds: xr.Dataset) -> tuple[float, str]:
    """Divisor from ``ds`` position units (px) to the cycles' length unit, and that unit."""
    unit = str(cycles["length_unit"].iloc[0]) if "length_unit" in cycles and len(cycles) else "px"
    if unit == "px" or unit == ds["position"].attrs.get("units"):
        return 1.0, unit
    ppm = ds.attrs.get("px_per_mm")
    if unit != "mm" or not ppm:
        raise ValueError(f"summarize_gait: cycles are in {unit!r} but the pose has no px_per_mm to convert "
                         "its positions (px) into the same unit")
    return float(ppm), "mm"


def _base_of_support(cycles: pd.DataFrame, ds: xr.Dataset, paws: list[str]) -> pd.DataFrame:
    """Median left-right distance perpendicular to travel, in the cycles' length unit."""
    scale, unit = _length_scale(cycles, ds)
    t = np.asarray(ds["time"].values, float)
    rows = []
    for left, right in _pairs(paws):
        pl = ds["position"].sel(keypoint=find_keypoint(ds, left)).values[:, :2, 0]
        pr = ds["position"].sel(keypoint=find_keypoint(ds, right)).values[:, :2, 0]
        both = _stance_mask(cycles, left, t) & _stance_mask(cycles, right, t)
        both &= np.isfinite(pl).all(1) & np.isfinite(pr).all(1)
        mid = 0.5 * (pl + pr)
        fin = np.isfinite(mid).all(1)
        if both.sum() < 2 or fin.sum() < 2:
            continue
        travel = mid[fin][-1] - mid[fin][0]
        n = np.linalg.norm(travel)
        direction = travel / n if n > 0 else np.array([1.0, 0.0])
        perp = np.array([-direction[1], direction[0]])
        width = np.abs((pl[both] - pr[both]) @ perp)
        rows.append({"left": left, "right": right, "base_of_support": float(np.median(width)) / scale,
                     "length_unit": unit, "n_frames": int(both.sum())})
    return pd.DataFrame(rows)


def compute_paw_angle(
    ds: xr.Dataset, heel: str, toe: str, *, body_from: str = "tail_base", body_to: str = "snout"
) -> xr.DataArray:
    """Signed angle (deg, (-180, 180]) of the paw axis ``heel -> toe`` relative to the body
    axis ``body_from -> body_to`` (time, individual), in image coordinates (bottom view).
    Positive = rotated clockwise on screen (y down). NaN where a keypoint is missing."""
    validate_pose(ds, context="compute_paw_angle")
    pos = ds["position"]

    def vec(a: str, b: str) -> xr.DataArray:
        return pos.sel(keypoint=find_keypoint(ds, b), drop=True) - pos.sel(keypoint=find_keypoint(ds, a), drop=True)

    p, b = vec(heel, toe), vec(body_from, body_to)
    ang = np.arctan2(p.sel(space="y"), p.sel(space="x")) - np.arctan2(b.sel(space="y"), b.sel(space="x"))
    out = np.degrees((ang + np.pi) % (2 * np.pi) - np.pi).drop_vars("space", errors="ignore")
    out = out.where(out != -180.0, 180.0)
    out.name = "paw_angle"
    out.attrs = {"units": "deg", "heel": heel, "toe": toe}
    return out


def stance_paw_angles(cycles: pd.DataFrame, paw_angle: xr.DataArray, paw: str, *, individual: int = 0) -> pd.Series:
    """Median paw angle (deg) over each stance (``swing_end_s`` .. ``stance_end_s``) of
    ``paw``'s cycles; NaN for a stance without a visible paw axis."""
    t = np.asarray(paw_angle["time"].values, float)
    a = paw_angle.isel(individual=individual).values
    c = cycles[cycles.paw == paw]
    vals = [np.nanmedian(a[(t >= s) & (t <= e)]) if np.isfinite(a[(t >= s) & (t <= e)]).any() else np.nan
            for s, e in zip(c.swing_end_s, c.stance_end_s, strict=True)]
    return pd.Series(vals, index=c.index, name="paw_angle_deg")
