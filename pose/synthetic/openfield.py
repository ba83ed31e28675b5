"""Open-field virtual mouse: a behaviour state machine driving a kinematic body (no rendering).

The mouse is a chain of rigid segments (tail base - body centre - neck - snout) with ears,
four paws and a tail, moving in a square arena seen from above. A semi-Markov state machine
picks behaviour bouts (walk, run, turn, rear, groom, freeze, explore_wall) with realistic
durations and speeds; each state drives speed, steering and posture. Everything is pure
numpy and deterministic for a seed.

Coordinates are image pixels (x right, y down): ``px = arena_origin_px + mm * px_per_mm``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pose.dataset import append_history, from_numpy

logger = logging.getLogger(__name__)

KEYPOINTS: tuple[str, ...] = (
    "snout",
    "left_ear",
    "right_ear",
    "neck",
    "body_center",
    "tail_base",
    "tail_tip",
    "left_forepaw",
    "right_forepaw",
    "left_hindpaw",
    "right_hindpaw",
)
STATES: tuple[str, ...] = ("walk", "run", "turn", "rear", "groom", "freeze", "explore_wall")
SKELETON: tuple[tuple[str, str], ...] = (
    ("snout", "left_ear"),
    ("snout", "right_ear"),
    ("left_ear", "neck"),
    ("right_ear", "neck"),
    ("neck", "body_center"),
    ("body_center", "tail_base"),
    ("tail_base", "tail_tip"),
    ("neck", "left_forepaw"),
    ("neck", "right_forepaw"),
    ("tail_base", "left_hindpaw"),
    ("tail_base", "right_hindpaw"),
)
SYMMETRY: tuple[tuple[str, str], ...] = (
    ("left_ear", "right_ear"),
    ("left_forepaw", "right_forepaw"),
    ("left_hindpaw", "right_hindpaw"),
)

# Body geometry of an adult mouse, mm (snout to tail base 93 mm, tail 85 mm).
HEAD_MM = 22.0  # neck -> snout
FRONT_MM = 33.0  # body centre -> neck
BACK_MM = 38.0  # body centre -> tail base
TAIL_MM = 85.0
EAR_FORWARD_MM, EAR_SIDE_MM = 5.0, 9.0
FORE_BACK_MM, FORE_SIDE_MM = 6.0, 12.0  # forepaws: behind the neck, to the side
HIND_FORWARD_MM, HIND_SIDE_MM = 12.0, 14.5  # hind paws: in front of the tail base

# Per-state bout medians (s), speed ranges (mm/s, before speed_scale) and transitions.
_BOUT_MEDIAN_S = {"walk": 1.6, "run": 0.9, "turn": 0.8, "rear": 1.5, "groom": 3.0,
                  "freeze": 1.5, "explore_wall": 2.5}
_SPEED_MM_S = {"walk": (50.0, 120.0), "run": (220.0, 320.0), "turn": (10.0, 40.0),
               "explore_wall": (60.0, 110.0), "rear": (4.0, 12.0)}  # rear: slow lean/shuffle
_TRANSITIONS = {
    "walk": {"run": 0.12, "turn": 0.22, "rear": 0.1, "groom": 0.06, "freeze": 0.08,
             "explore_wall": 0.3},
    "run": {"walk": 0.5, "turn": 0.2, "freeze": 0.15, "explore_wall": 0.15},
    "turn": {"walk": 0.5, "run": 0.1, "rear": 0.08, "explore_wall": 0.22, "freeze": 0.05,
             "groom": 0.05},
    "rear": {"walk": 0.45, "turn": 0.35, "groom": 0.1, "explore_wall": 0.1},
    "groom": {"walk": 0.5, "turn": 0.35, "rear": 0.15},
    "freeze": {"walk": 0.5, "turn": 0.3, "run": 0.1, "rear": 0.1},
    "explore_wall": {"walk": 0.35, "rear": 0.22, "turn": 0.25, "run": 0.1, "freeze": 0.08},
}


# Braking into a freeze: a real mouse decelerates to rest over ~0.1-0.3 s (it does not stop
# from full speed in one frame). When a freeze bout starts, the speed and the turning rate decay
# with this time constant (s) until the speed falls below _REST_MM_S, then the body is held
# rigidly. From walking speeds (50-120 mm/s) that takes 0.19-0.25 s, from a run (220-320 mm/s)
# 0.28-0.30 s, from a turn (10-40 mm/s) 0.10-0.18 s; the peak deceleration v/tau is 0.8-2 m/s^2
# from a walk. The braking frames keep the label of the bout before the freeze: freezing is the
# absence of all movement except respiration, so the truth's freeze starts on the first frame
# at rest, where a human scorer puts it (on demo1 the head has slowed to 8-12 mm/s within
# 0.06 s of the human's onset); the freeze's drawn duration (_BOUT_MEDIAN_S) is its time at
# rest, the braking comes before it. Braking draws no random numbers: a session's body path
# and states are unchanged up to its first freeze; after it the path has moved on by the braking
# distance (v * tau: 1-19 mm) and the later bouts by the braking time, so position-dependent
# choices (wall steering, rearing near a wall) can differ from there on. The keypoint noise
# (0.08 mm sd), drawn after the path from the same generator, is drawn anew.
_BRAKE_TAU_S = 0.06
_REST_MM_S = 2.0  # at rest: the glide left, v * tau, is 0.12 mm

# Open-field paws alternate in a trot (the mouse's usual gait in an open field).
_TROT_PHASE = {"left_forepaw": 0.0, "right_forepaw": 0.5, "left_hindpaw": 0.5,
               "right_hindpaw": 0.0}
_OF_DUTY = 0.6


@dataclass(frozen=True)
class OpenFieldTruth:
    """Exact ground truth of a simulated open-field session.

    Attributes
    ----------
    pose
        Pose Dataset (px), keypoints :data:`KEYPOINTS`, one individual ``"mouse"``,
        confidence 1.0, attrs ``px_per_mm`` and ``source_software="ethopose.synthetic"``.
    states
        Behaviour state per frame (str array of length ``n_frames``), one of :data:`STATES`.
    arena
        Arena geometry in px: ``shape``, ``centre_px``, ``size_px``, ``size_mm``,
        ``bounds_px`` (x0, y0, x1, y1), ``px_per_mm`` and ``zones`` (``center``: the
        central square of ``center_fraction`` of the side; ``periphery``: the rest).
    posture
        Extra per-frame variables the renderer uses: ``rear`` and ``groom`` (0..1 blends),
        ``speed_mm_s`` (body-centre speed of the kinematic model).
    """

    pose: xr.Dataset
    states: np.ndarray
    arena: dict[str, Any]
    posture: dict[str, np.ndarray] = field(default_factory=dict)


def _unit(angle: np.ndarray | float) -> np.ndarray:
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1)


def _wrap(angle: float) -> float:
    return (angle + np.pi) % (2 * np.pi) - np.pi


_NORMALS = (np.pi, 0.0, -np.pi / 2, np.pi / 2)  # outward normals: left, right, top, bottom


def _wall_steer(x: float, y: float, theta: float, v: float, L: float, margin: float,
                hug: bool = False) -> tuple[float, float]:
    """Steering away from walls ahead of the snout: (angular velocity rad/s, urgency 0..1).

    Urgency grows smoothly as the look-ahead point nears or crosses a wall; the caller lets
    the wall steering override the other steering and slows down in proportion. A mouse
    hugging the wall (``hug``) looks less far ahead, so it can run along it.
    """
    look = FRONT_MM + HEAD_MM + (5.0 if hug else 15 + 0.3 * v)
    ax, ay = x + look * np.cos(theta), y + look * np.sin(theta)
    scale, edge = (5.0, margin + 2) if hug else (9.0, margin + 5)
    px = np.exp((edge - ax) / scale) - np.exp((ax - (L - edge)) / scale)
    py = np.exp((edge - ay) / scale) - np.exp((ay - (L - edge)) / scale)
    mag = float(np.hypot(px, py))
    if mag < 1e-3:
        return 0.0, 0.0
    # turn toward the inward push; facing a wall or a corner head-on, toward the centre
    err = _wrap(np.arctan2(py, px) - theta)
    if abs(err) > 2.0:
        to_c = _wrap(np.arctan2(L / 2 - y, L / 2 - x) - theta)
        err = abs(err) * (1.0 if to_c >= 0 else -1.0)
    urgency = min(1.0, mag)
    return float(np.clip(4.0 * np.clip(err, -1.5, 1.5), -6.0, 6.0) * urgency), urgency


def _contain_trunk(x: float, y: float, theta: float, L: float, margin: float
                   ) -> tuple[float, float]:
    """Shift the body centre so that snout and tail base stay inside the walls."""
    c, s = np.cos(theta), np.sin(theta)
    front, back = FRONT_MM + HEAD_MM, BACK_MM + 8
    xs = (x + front * c, x - back * c)
    ys = (y + front * s, y - back * s)
    x += max(0.0, margin + 8 - min(xs)) - max(0.0, max(xs) - (L - margin - 8))
    y += max(0.0, margin + 8 - min(ys)) - max(0.0, max(ys) - (L - margin - 8))
    return float(x), float(y)


def _arena_geometry(
    size_mm: float, px_per_mm: float, image_size_px: tuple[int, int], center_fraction: float
) -> dict[str, Any]:
    size_px = size_mm * px_per_mm
    cx, cy = image_size_px[0] / 2.0, image_size_px[1] / 2.0
    x0, y0 = cx - size_px / 2, cy - size_px / 2
    half_c = size_px * center_fraction / 2

    def square(h: float) -> list[list[float]]:
        return [[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h]]

    return {
        "shape": "square",
        "centre_px": [cx, cy],
        "size_px": size_px,
        "size_mm": size_mm,
        "bounds_px": [x0, y0, x0 + size_px, y0 + size_px],
        "px_per_mm": px_per_mm,
        "image_size_px": list(image_size_px),
        "center_fraction": center_fraction,
        "zones": {
            "arena": {"type": "polygon", "vertices_px": square(size_px / 2)},
            "center": {"type": "polygon", "vertices_px": square(half_c)},
            "periphery": {"type": "polygon", "vertices_px": square(size_px / 2),
                          "holes_px": [square(half_c)]},
        },
    }


def _choose_next(state: str, rng: np.random.Generator, center_preference: float,
                 near_wall: bool) -> str:
    weights = dict(_TRANSITIONS[state])
    if "explore_wall" in weights:
        weights["explore_wall"] *= 2.0 * (1.0 - center_preference)
    if "rear" in weights and near_wall:
        weights["rear"] *= 2.0
    names = list(weights)
    p = np.array([weights[n] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _bout_s(state: str, rng: np.random.Generator) -> float:
    return float(np.clip(_BOUT_MEDIAN_S[state] * np.exp(0.5 * rng.standard_normal()), 0.5, 5.0))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sd: float, tau_frames: float
                  ) -> np.ndarray:
    """Stationary AR(1) noise along axis 0 with standard deviation ``sd``."""
    a = np.exp(-1.0 / max(tau_frames, 1e-6))
    e = rng.standard_normal(shape) * sd * np.sqrt(1 - a * a)
    out = np.empty(shape)
    out[0] = rng.standard_normal(shape[1:]) * sd
    for i in range(1, shape[0]):
        out[i] = a * out[i - 1] + e[i]
    return out


def simulate_open_field(
    seconds: float,
    fps: float = 30.0,
    seed: int = 0,
    *,
    arena_size_mm: float = 400.0,
    px_per_mm: float = 1.1,
    image_size_px: tuple[int, int] = (640, 480),
    speed_scale: float = 1.0,
    center_preference: float = 0.3,
    center_fraction: float = 0.5,
) -> OpenFieldTruth:
    """Simulate a mouse exploring a square open field, top view, without rendering.

    Parameters
    ----------
    seconds, fps
        Session length and frame rate; ``round(seconds * fps)`` frames.
    seed
        Random seed; the same seed gives identical arrays.
    arena_size_mm
        Side of the square arena (mm); default 400 mm (a 40 cm open field).
    px_per_mm
        Spatial calibration; the arena is ``arena_size_mm * px_per_mm`` px wide, centred
        in an image of ``image_size_px`` = (width, height).
    speed_scale
        Multiplies the state speeds (walk 50-120, run 220-320, wall exploration 60-110,
        turning 10-40, rearing lean 4-12 mm/s). Use it to build a cohort with a known speed
        difference. Freezing and grooming stay still.
    center_preference
        In [0, 1]. 0: strong thigmotaxis (many wall-following bouts, steering toward the
        walls); 1: the mouse seeks the centre. Default 0.3 (a typical mouse).
    center_fraction
        Side of the central zone as a fraction of the arena side (0.5: the central 25 %).

    Returns
    -------
    OpenFieldTruth

    Raises
    ------
    ValueError
        For a non-positive duration, frame rate or scale, or a preference outside [0, 1].

    Notes
    -----
    A freeze is entered by braking: the speed decays with a 0.06 s time constant until the body
    is at rest (0.1-0.3 s from turning, walking or running speeds). The braking frames keep the
    label of the bout before; ``states`` says ``"freeze"`` from the first frame at rest, for the
    freeze's drawn duration.
    """
    if seconds <= 0 or fps <= 0:
        raise ValueError(f"seconds and fps must be positive, got seconds={seconds}, fps={fps}")
    if not 0.0 <= center_preference <= 1.0:
        raise ValueError(f"center_preference must be in [0, 1], got {center_preference}")
    if speed_scale <= 0 or px_per_mm <= 0 or arena_size_mm < 150:
        raise ValueError(
            f"speed_scale and px_per_mm must be positive and arena_size_mm >= 150, got "
            f"speed_scale={speed_scale}, px_per_mm={px_per_mm}, arena_size_mm={arena_size_mm}"
        )
    arena = _arena_geometry(arena_size_mm, px_per_mm, image_size_px, center_fraction)
    if arena["bounds_px"][0] < 0 or arena["bounds_px"][1] < 0:
        raise ValueError(
            f"arena of {arena['size_px']:.0f} px does not fit in image {image_size_px}; "
            "lower px_per_mm or arena_size_mm"
        )
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    dt = 1.0 / fps
    L = arena_size_mm
    margin = 6.0  # mm kept between any body point and the wall

    out = {k: np.zeros(n) for k in ("x", "y", "theta", "v", "omega", "bend", "head", "rear",
                                    "groom", "tail")}
    states = np.empty(n, dtype=object)
    x, y = L / 2 + rng.uniform(-L / 4, L / 4, 2)
    theta = rng.uniform(-np.pi, np.pi)
    v = omega_w = bend = head = rear = groom = tail = 0.0
    state, remaining = "walk", _bout_s("walk", rng)
    v_target, omega_turn = rng.uniform(*_SPEED_MM_S["walk"]) * speed_scale, 0.0
    wall_dir = 1.0
    t_state = 0.0
    before = state  # the bout before the current one (labels a freeze's braking frames)
    for i in range(n):
        if remaining <= 0:
            near = min(x, y, L - x, L - y) < 50
            before = state
            state = _choose_next(state, rng, center_preference, near)
            remaining, t_state = _bout_s(state, rng), 0.0
            lo_hi = _SPEED_MM_S.get(state)
            v_target = rng.uniform(*lo_hi) * speed_scale if lo_hi else 0.0
            omega_turn = rng.choice([-1, 1]) * np.deg2rad(rng.uniform(90, 200))
            wall_dir = float(rng.choice([-1.0, 1.0]))
        states[i] = state
        gliding = False
        if state == "freeze":  # brake to rest (see _BRAKE_TAU_S), then rigid: only noise moves
            brake = np.exp(-dt / _BRAKE_TAU_S)
            v, omega = v * brake, omega * brake
            if abs(v) < _REST_MM_S:
                v = omega = 0.0
            else:  # still gliding to a stop: the previous bout's label, posture held, and the
                # freeze's drawn duration (its time at rest) not yet started
                gliding = True
                states[i] = before
                theta = _wrap(theta + omega * dt)
                x += v * np.cos(theta) * dt
                y += v * np.sin(theta) * dt
        else:
            sigma = {"walk": 50.0, "run": 25.0, "explore_wall": 20.0}.get(state, 15.0)
            a = np.exp(-dt / 0.5)
            omega_w = a * omega_w + np.deg2rad(sigma) * np.sqrt(1 - a * a) * rng.standard_normal()
            tau_v = 0.15 if v_target > v else 0.1
            v += (v_target - v) * (1 - np.exp(-dt / tau_v))
            omega = omega_w
            if state == "turn":
                omega += omega_turn
            elif state in ("walk", "run"):
                to_c = np.arctan2(L / 2 - y, L / 2 - x)
                omega += 3.0 * (center_preference - 0.3) * np.sin(_wrap(to_c - theta))
            elif state == "explore_wall":
                # the wall nearest a point ahead, so that the mouse turns corners smoothly
                hx, hy = x + 45.0 * np.cos(theta), y + 45.0 * np.sin(theta)
                k = int(np.argmin([hx, L - hx, hy, L - hy]))
                dists = np.array([x, L - x, y, L - y])
                normal = _NORMALS[k]  # outward normal of the nearest wall
                if t_state == 0.0:  # circulate in the direction the mouse already faces
                    wall_dir = 1.0 if np.sin(_wrap(theta - normal)) >= 0 else -1.0
                tangent = normal + wall_dir * np.pi / 2
                err = dists[k] - 18.0  # keep the body centre ~18 mm from the wall (flank at it)
                desired = tangent - wall_dir * np.clip(err / 30.0, -0.5, 0.5)
                omega += 3.0 * np.sin(_wrap(desired - theta))
            w_omega, urgency = _wall_steer(x, y, theta, v, L, margin, state == "explore_wall")
            omega = (1.0 - urgency) * omega + w_omega
            v *= 1.0 - 0.04 * urgency  # slow down while turning away from a wall
            omega = float(np.clip(omega, -np.deg2rad(400), np.deg2rad(400)))
            theta = _wrap(theta + omega * dt)
            x += v * np.cos(theta) * dt
            y += v * np.sin(theta) * dt
            # posture variables relax toward their state targets
            k_fast = 1 - np.exp(-dt / 0.15)
            bend += (np.clip(omega * 0.12, -0.45, 0.45) - bend) * k_fast
            rear += ((1.0 if state == "rear" else 0.0) - rear) * (1 - np.exp(-dt / 0.2))
            groom += ((1.0 if state == "groom" else 0.0) - groom) * (1 - np.exp(-dt / 0.2))
            if state == "groom":
                head_target = np.deg2rad(12) * np.sin(2 * np.pi * 4.0 * t_state)
            else:
                head_target = 0.6 * bend + np.deg2rad(8) * np.sin(2 * np.pi * 0.7 * (i * dt) + seed)
            head += (head_target - head) * (1 - np.exp(-dt / 0.06))
            tail += (np.clip(-omega * 0.35, -1.0, 1.0) - tail) * (1 - np.exp(-dt / 0.3))
        # hard containment of the trunk (the look-ahead steering makes this rare)
        x, y = _contain_trunk(x, y, theta, L, margin)
        for key, val in (("x", x), ("y", y), ("theta", theta), ("v", v), ("omega", omega),
                         ("bend", bend), ("head", head), ("rear", rear), ("groom", groom),
                         ("tail", tail)):
            out[key][i] = val
        if not gliding:
            remaining -= dt
            t_state += dt

    kp_mm, step_phase = _keypoints_mm(out, dt, rng)
    kp_mm = _contain(kp_mm, L, margin)
    kp_mm += _smooth_noise(rng, kp_mm.shape, 0.08, tau_frames=0.3 * fps)
    origin = np.array(arena["bounds_px"][:2])
    position = kp_mm * px_per_mm + origin[None, :, None]
    ds = from_numpy(
        position[..., None],
        np.ones((n, len(KEYPOINTS), 1)),
        keypoints=list(KEYPOINTS),
        individuals=["mouse"],
        fps=fps,
        source_software="ethopose.synthetic",
        px_per_mm=px_per_mm,
    )
    ds = append_history(ds, "simulate_open_field", {
        "seconds": seconds, "fps": fps, "seed": seed, "arena_size_mm": arena_size_mm,
        "px_per_mm": px_per_mm, "speed_scale": speed_scale,
        "center_preference": center_preference})
    posture = {"rear": out["rear"], "groom": out["groom"], "speed_mm_s": out["v"],
               "step_phase": step_phase}
    return OpenFieldTruth(pose=ds, states=states.astype(str), arena=arena, posture=posture)


def _keypoints_mm(s: dict[str, np.ndarray], dt: float, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (time, space, keypoint) in mm and the step phase, from the body state."""
    n = s["x"].size
    r, g = s["rear"], s["groom"]
    th, bend = s["theta"], s["bend"]
    bc = np.stack([s["x"], s["y"]], axis=-1)
    # rearing foreshortens the body (snout moves toward the body centre); grooming curls it
    back = BACK_MM * (1 - 0.2 * r - 0.05 * g)
    front = FRONT_MM * (1 - 0.45 * r - 0.15 * g)
    headl = HEAD_MM * (1 - 0.55 * r - 0.3 * g)
    tail_base = bc - back[:, None] * _unit(th - 0.5 * bend)
    neck = bc + front[:, None] * _unit(th + 0.5 * bend)
    head_ang = th + 1.2 * bend + s["head"]
    snout = neck + headl[:, None] * _unit(head_ang)
    fwd, left = _unit(head_ang), _unit(head_ang - np.pi / 2)  # y down: -90 deg is the left
    ear_l = neck + EAR_FORWARD_MM * fwd + EAR_SIDE_MM * left
    ear_r = neck + EAR_FORWARD_MM * fwd - EAR_SIDE_MM * left
    tail_ang = th + np.pi + s["tail"] + 0.15 * np.sin(2 * np.pi * 0.4 * np.arange(n) * dt)
    tail_tip = tail_base + TAIL_MM * _unit(tail_ang - 0.5 * bend)

    # locomotor paws: trot-like alternation, phase advanced by distance travelled
    v = np.abs(s["v"]) + 20.0 * np.abs(s["omega"])
    stride = 25.0 + 0.15 * np.abs(s["v"])
    phase = np.cumsum(v * dt / stride)
    duty = _OF_DUTY

    def swing_offset(ph: np.ndarray) -> np.ndarray:
        p = ph % 1.0
        amp = duty * stride
        stance = amp * (0.5 - p / duty)
        u = np.clip((p - duty) / (1 - duty), 0, 1)
        swing = amp * (-0.5 + (10 * u**3 - 15 * u**4 + 6 * u**5))
        return np.where(p < duty, stance, swing)

    axis_f, left_b = _unit(th + 0.5 * bend), _unit(th - np.pi / 2)
    axis_b = _unit(th - 0.5 * bend)
    paws = {}
    for name, base, ax, fwd_mm, side in (
        ("left_forepaw", neck, axis_f, -FORE_BACK_MM, FORE_SIDE_MM),
        ("right_forepaw", neck, axis_f, -FORE_BACK_MM, -FORE_SIDE_MM),
        ("left_hindpaw", tail_base, axis_b, HIND_FORWARD_MM, HIND_SIDE_MM),
        ("right_hindpaw", tail_base, axis_b, HIND_FORWARD_MM, -HIND_SIDE_MM),
    ):
        ph0 = _TROT_PHASE[name]
        off = fwd_mm + swing_offset(phase + ph0)
        paws[name] = base + off[:, None] * ax + side * left_b
    # rearing: forepaws up at the chest; grooming: forepaws at the snout, stroking
    t = np.arange(n) * dt
    for name, sgn in (("left_forepaw", 1.0), ("right_forepaw", -1.0)):
        rear_pos = neck + 0.35 * (snout - neck) + sgn * 8.0 * left
        stroke = 3.0 * np.sin(2 * np.pi * 5.0 * t + (0 if sgn > 0 else 1.0))
        groom_pos = snout - (6.0 + stroke)[:, None] * fwd + sgn * 5.0 * left
        w_r = r[:, None]
        w_g = (g * (1 - r))[:, None]
        paws[name] = (1 - w_r - w_g) * paws[name] + w_r * rear_pos + w_g * groom_pos
    for name in ("left_hindpaw", "right_hindpaw"):  # hind paws spread a little when rearing
        paws[name] = paws[name] + 0.25 * r[:, None] * (paws[name] - tail_base)
    pts = {"snout": snout, "left_ear": ear_l, "right_ear": ear_r, "neck": neck,
           "body_center": bc, "tail_base": tail_base, "tail_tip": tail_tip, **paws}
    return np.stack([pts[k] for k in KEYPOINTS], axis=-1), phase  # (time, space, keypoint)


def _contain(kp: np.ndarray, L: float, margin: float) -> np.ndarray:
    """Translate the body back inside the walls where any trunk point crosses them.

    The tail tip is clipped on its own (a tail bends along the wall).
    """
    kp = kp.copy()
    tail = KEYPOINTS.index("tail_tip")
    trunk = [i for i in range(len(KEYPOINTS)) if i != tail]
    lo = kp[:, :, trunk].min(axis=2)
    hi = kp[:, :, trunk].max(axis=2)
    shift = np.maximum(0, margin - lo) - np.maximum(0, hi - (L - margin))
    kp += shift[:, :, None]
    kp[:, :, tail] = np.clip(kp[:, :, tail], margin / 2, L - margin / 2)
    return kp


def open_field_step_events(truth: OpenFieldTruth) -> pd.DataFrame:
    """Touch-down and toe-off times of each paw in an open-field session.

    A paw touches down when its step phase wraps to 0 and lifts off at the duty factor
    (0.6); times are interpolated between frames. Steps are only reported while the mouse
    locomotes (not rearing or grooming, which move the forepaws off the ground).

    Returns
    -------
    pandas.DataFrame
        Columns ``paw``, ``stride``, ``touch_down_s``, ``toe_off_s`` (NaN at the edges).
    """
    fps = float(truth.pose.attrs["fps"])
    phase = truth.posture["step_phase"]
    busy = (truth.posture["rear"] > 0.1) | (truth.posture["groom"] > 0.1)
    frames = np.arange(phase.size)
    rows = []
    for paw, ph0 in _TROT_PHASE.items():
        cum = phase + ph0
        td_f = np.interp(np.arange(np.ceil(cum[0]), np.floor(cum[-1]) + 1), cum, frames)
        to_f = np.interp(np.arange(np.ceil(cum[0] - _OF_DUTY), np.floor(cum[-1] - _OF_DUTY) + 1)
                         + _OF_DUTY, cum, frames)
        stride = 0
        for td in td_f:
            later = to_f[to_f > td]
            to = later[0] if later.size else np.nan
            if busy[int(td)] or (np.isfinite(to) and busy[int(to)]):
                continue
            rows.append({"paw": paw, "stride": stride, "touch_down_s": td / fps,
                         "toe_off_s": to / fps})
            stride += 1
    return pd.DataFrame(rows, columns=["paw", "stride", "touch_down_s", "toe_off_s"])
