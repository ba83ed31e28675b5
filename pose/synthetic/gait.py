"""Gait virtual mouse: per-limb step cycles of a walk or a trot, exact events (no rendering).

Each paw alternates stance (fixed on the ground) and swing (moves forward one stride with
a minimum-jerk profile, lifting off the ground in side view). The body moves at constant
speed, so stride length = speed / cadence. Touch-down and toe-off times are exact (sub-frame).

Coordinates are image pixels of a long runway (x along the walking direction, y down),
``px = origin_px + mm * px_per_mm``; in side view y is height above the beam (up = smaller
y); in bottom view y is the lateral position, shown as seen from above through the glass
floor (the mouse's left at smaller y, as rigs that flip the bottom camera show it). With
``treadmill=True`` the body stays in place and stance paws move backward with the belt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from pose.dataset import append_history, from_numpy
from pose.synthetic.openfield import KEYPOINTS

logger = logging.getLogger(__name__)

PAWS: tuple[str, ...] = ("left_hindpaw", "left_forepaw", "right_hindpaw", "right_forepaw")
LIMB_KEYPOINTS: tuple[str, ...] = ("left_hip", "left_knee", "left_ankle")
# Phase of touch-down within the stride, relative to the left hind paw.
PHASE_OFFSETS: dict[str, dict[str, float]] = {
    "walk": {"left_hindpaw": 0.0, "left_forepaw": 0.25, "right_hindpaw": 0.5,
             "right_forepaw": 0.75},  # lateral sequence
    "trot": {"left_hindpaw": 0.0, "right_forepaw": 0.0, "right_hindpaw": 0.5,
             "left_forepaw": 0.5},  # diagonal pairs in phase
}
DEFAULT_DUTY = {"walk": 0.65, "trot": 0.5}

# Side-view geometry (mm; x forward from the body centre, z height above the beam).
_SIDE_MM = {
    "snout": (55.0, 14.0), "left_ear": (36.0, 30.0), "right_ear": (33.0, 31.0),
    "neck": (30.0, 22.0), "body_center": (0.0, 24.0), "tail_base": (-38.0, 16.0),
}
_HIP_X_MM, _HIP_Z_MM = -28.0, 20.0
_SHOULDER_X_MM = 22.0
_THIGH_MM, _SHANK_MM = 13.0, 15.0
_LIFT_MM = {"fore": 6.0, "hind": 8.0}
# Bottom-view lateral offsets (mm, + = the mouse's right).
_BASE_OF_SUPPORT_MM = {"fore": 18.0, "hind": 26.0}
_TAIL_MM = 85.0


@dataclass(frozen=True)
class GaitTruth:
    """Exact ground truth of a simulated gait recording.

    Attributes
    ----------
    pose
        Pose Dataset (px) with :data:`pose.synthetic.KEYPOINTS` (+ ``left_hip``,
        ``left_knee``, ``left_ankle`` in side view), one individual ``"mouse"``.
    events
        One row per stance phase and paw: ``paw``, ``stride`` (index), ``touch_down_s``,
        ``toe_off_s`` (exact, sub-frame; NaN when outside the recording), ``stance_s``,
        ``swing_s``.
    stride_length_mm, cadence_hz, duty_factor, speed_mm_s
        The gait parameters (stride length = speed / cadence).
    base_of_support_mm
        Lateral distance between left and right paws, ``{"fore": ..., "hind": ...}``.
    phase_offsets
        Touch-down phase of each paw relative to the left hind paw.
    scene
        What the renderer needs: ``view``, ``treadmill``, ``px_per_mm``, ``ground_y_px``
        (side view), ``midline_y_px`` (bottom view), ``image_size_px``.
    """

    pose: xr.Dataset
    events: pd.DataFrame
    stride_length_mm: float
    cadence_hz: float
    duty_factor: float
    speed_mm_s: float
    base_of_support_mm: dict[str, float]
    phase_offsets: dict[str, float]
    scene: dict[str, Any] = field(default_factory=dict)


def _min_jerk(u: np.ndarray) -> np.ndarray:
    return 10 * u**3 - 15 * u**4 + 6 * u**5


def simulate_gait(
    seconds: float,
    fps: float = 100.0,
    seed: int = 0,
    *,
    gait: Literal["walk", "trot"] = "walk",
    speed_mm_s: float = 150.0,
    stride_length_mm: float = 60.0,
    duty_factor: float | None = None,
    view: Literal["side", "bottom"] = "side",
    treadmill: bool = False,
    px_per_mm: float = 2.5,
    image_size_px: tuple[int, int] = (640, 360),
) -> GaitTruth:
    """Simulate a mouse walking or trotting at constant speed, with exact step events.

    Parameters
    ----------
    seconds, fps
        Recording length and frame rate (gait rigs film at 100+ fps).
    seed
        Sets the initial phase of the step cycle and the tail sway; same seed, same arrays.
    gait
        ``"walk"`` (lateral sequence: LH 0, LF 0.25, RH 0.5, RF 0.75) or ``"trot"``
        (diagonal pairs LH+RF and RH+LF in phase, half a stride apart).
    speed_mm_s, stride_length_mm
        Body speed and stride length; cadence = speed / stride length.
    duty_factor
        Fraction of the stride a paw is in stance; default 0.65 (walk), 0.5 (trot).
    view
        ``"side"`` (beam seen from the left side; adds hip/knee/ankle of the left hind
        limb) or ``"bottom"`` (seen from below a glass floor).
    treadmill
        When True the body stays in place and stance paws move backward at the belt speed.
    px_per_mm, image_size_px
        Calibration, and the image the first frame is centred in.

    Returns
    -------
    GaitTruth

    Raises
    ------
    ValueError
        For a non-positive speed, stride, duration or frame rate, a duty factor outside
        (0, 1) or an unknown gait or view.
    """
    if gait not in PHASE_OFFSETS:
        raise ValueError(f"gait must be one of {sorted(PHASE_OFFSETS)}, got {gait!r}")
    if view not in ("side", "bottom"):
        raise ValueError(f"view must be 'side' or 'bottom', got {view!r}")
    duty = DEFAULT_DUTY[gait] if duty_factor is None else float(duty_factor)
    if not 0.0 < duty < 1.0:
        raise ValueError(f"duty_factor must be in (0, 1), got {duty}")
    for name, val in (("seconds", seconds), ("fps", fps), ("speed_mm_s", speed_mm_s),
                      ("stride_length_mm", stride_length_mm), ("px_per_mm", px_per_mm)):
        if not val > 0:
            raise ValueError(f"{name} must be positive, got {val}")
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    t = np.arange(n) / fps
    v, S = float(speed_mm_s), float(stride_length_mm)
    T = S / v  # stride period (s)
    t0 = rng.uniform(0, T)  # time of the left hind paw's first touch-down
    sway_phase = rng.uniform(0, 2 * np.pi)
    offsets = PHASE_OFFSETS[gait]
    body_x = v * t  # body-centre position along the runway (mm)

    paw_x, paw_lift, rows = {}, {}, []
    for paw in PAWS:
        limb = "hind" if "hind" in paw else "fore"
        anchor = _HIP_X_MM - 2.0 if limb == "hind" else _SHOULDER_X_MM + 2.0
        cyc = (t - t0) / T - offsets[paw]
        k = np.floor(cyc)
        p = cyc - k
        # touch-down place of stance k: the stance is centred under the hip / shoulder
        td_time = t0 + (k + offsets[paw]) * T
        x_td = v * td_time + anchor + v * duty * T / 2
        u = np.clip((p - duty) / (1 - duty), 0.0, 1.0)
        paw_x[paw] = np.where(p < duty, x_td, x_td + S * _min_jerk(u))
        paw_lift[paw] = np.where(p < duty, 0.0, _LIFT_MM[limb] * np.sin(np.pi * u) ** 2)
        k_lo = int(np.floor((0 - t0) / T - offsets[paw])) - 1
        k_hi = int(np.floor((seconds - t0) / T - offsets[paw])) + 1
        for kk in range(k_lo, k_hi + 1):
            td = t0 + (kk + offsets[paw]) * T
            to = td + duty * T
            if to < 0 or td > seconds:
                continue
            rows.append({
                "paw": paw, "stride": kk,
                "touch_down_s": td if 0 <= td <= seconds else np.nan,
                "toe_off_s": to if 0 <= to <= seconds else np.nan,
                "stance_s": duty * T, "swing_s": (1 - duty) * T,
            })
    events = pd.DataFrame(rows).sort_values(["paw", "stride"], ignore_index=True)
    events["stride"] -= events.groupby("paw")["stride"].transform("min")

    sway = np.sin(2 * np.pi * t / T + sway_phase)
    bob = 0.8 * np.sin(4 * np.pi * t / T + sway_phase)  # body bobs twice per stride
    pts_mm: dict[str, np.ndarray] = {}  # (time, 2): along-runway x and (height | lateral)
    if view == "side":
        for name, (dx, z) in _SIDE_MM.items():
            pts_mm[name] = np.stack([body_x + dx, z + bob * (z > 10)], axis=-1)
        tail_z = 6.0 + 2.0 * sway
        pts_mm["tail_tip"] = np.stack([body_x - 38.0 - 0.97 * _TAIL_MM, tail_z], axis=-1)
        for paw in PAWS:
            pts_mm[paw] = np.stack([paw_x[paw], paw_lift[paw]], axis=-1)
        hip = np.stack([body_x + _HIP_X_MM, _HIP_Z_MM + 0.5 * bob], axis=-1)
        ankle = pts_mm["left_hindpaw"] + np.array([-8.0, 6.0])
        pts_mm.update(left_hip=hip, left_ankle=ankle, left_knee=_knee(hip, ankle))
        keypoints = list(KEYPOINTS) + list(LIMB_KEYPOINTS)
    else:
        lat = 1.5 * sway  # the trunk sways sideways with the stride
        for name in ("snout", "neck", "body_center", "tail_base"):
            pts_mm[name] = np.stack([body_x + _SIDE_MM[name][0], lat], axis=-1)
        for name, sgn in (("left_ear", -1.0), ("right_ear", 1.0)):
            pts_mm[name] = np.stack([body_x + 34.0, lat + sgn * 9.0], axis=-1)
        pts_mm["tail_tip"] = np.stack([body_x - 38.0 - _TAIL_MM, -6.0 * sway], axis=-1)
        for paw in PAWS:
            limb = "hind" if "hind" in paw else "fore"
            sgn = -1.0 if paw.startswith("left") else 1.0
            y = np.full(n, sgn * _BASE_OF_SUPPORT_MM[limb] / 2)
            pts_mm[paw] = np.stack([paw_x[paw], y], axis=-1)
        keypoints = list(KEYPOINTS)
    w, h = image_size_px
    if view == "side":
        origin = np.array([w / 2.0, 0.78 * h])
        sign = np.array([1.0, -1.0])  # height up = smaller y
    else:
        origin = np.array([w / 2.0, h / 2.0])
        sign = np.array([1.0, 1.0])
    position = np.stack([origin + sign * pts_mm[k] * px_per_mm for k in keypoints], axis=-1)
    if treadmill:
        position[:, 0, :] -= (body_x * px_per_mm)[:, None]
    ds = from_numpy(
        position[..., None],
        np.ones((n, len(keypoints), 1)),
        keypoints=keypoints,
        individuals=["mouse"],
        fps=fps,
        source_software="ethopose.synthetic",
        px_per_mm=px_per_mm,
    )
    params = {"seconds": seconds, "fps": fps, "seed": seed, "gait": gait,
              "speed_mm_s": v, "stride_length_mm": S, "duty_factor": duty, "view": view,
              "treadmill": treadmill, "px_per_mm": px_per_mm}
    ds = append_history(ds, "simulate_gait", params)
    scene = {"view": view, "treadmill": treadmill, "px_per_mm": px_per_mm,
             "image_size_px": [w, h], "ground_y_px": float(origin[1]) if view == "side" else None,
             "midline_y_px": float(origin[1]) if view == "bottom" else None,
             "speed_px_s": v * px_per_mm}
    return GaitTruth(
        pose=ds, events=events, stride_length_mm=S, cadence_hz=v / S, duty_factor=duty,
        speed_mm_s=v, base_of_support_mm=dict(_BASE_OF_SUPPORT_MM),
        phase_offsets=dict(offsets), scene=scene,
    )


def _knee(hip: np.ndarray, ankle: np.ndarray) -> np.ndarray:
    """Knee (mm) by two-link inverse kinematics, the knee pointing forward (mouse hind limb)."""
    d = ankle - hip
    norm = np.maximum(np.linalg.norm(d, axis=-1), 1e-9)
    unit = d / norm[:, None]
    dist = np.clip(norm, abs(_THIGH_MM - _SHANK_MM), _THIGH_MM + _SHANK_MM)  # reachable
    a = (_THIGH_MM**2 - _SHANK_MM**2 + dist**2) / (2 * dist)
    hgt = np.sqrt(np.clip(_THIGH_MM**2 - a**2, 0, None))
    perp = np.stack([-unit[:, 1], unit[:, 0]], axis=-1)  # unit rotated +90 deg (x fwd, z up)
    perp *= np.sign(perp[:, :1] + 1e-12)  # choose the forward-pointing solution
    return hip + a[:, None] * unit + hgt[:, None] * perp
