"""The virtual mice, social: two or three mice in one arena with exact identities and interactions.

:func:`simulate_social` moves several virtual mice (the body of
:mod:`pose.synthetic.openfield`) in one square arena. Each mouse runs a small social state
machine: ``explore``, ``rest``, ``approach`` (walk to a point of another mouse: its snout,
flank or tail base), ``contact`` (both mice stay nose-to-body for 1-4 s), ``follow`` /
``lead`` (one mouse walks away, the other trails its tail base), ``cross`` (a mouse runs
straight over a resting one: the bodies overlap in the top view). Bodies repel each other
except while crossing. The truth holds the exact pose of every mouse (``mouse_0``...) and
a tidy table of interaction bouts (kind, actor, target, frames).

:func:`simulate_detections` turns the truth into what a multi-animal pose network would
output: keypoint noise, confidence dropouts with wrong peaks, missing instances, occlusion
of the lower mouse and part-grouping errors in contact, and the instance order shuffled
per frame. :func:`render_social` draws the mice (same or different coats) to a video with
the truth, and labels in the DeepLabCut multi-animal layout.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
import yaml
from pydantic import BaseModel, ConfigDict, Field

from pose.atomic import write_text_atomic
from pose.dataset import append_history, from_numpy
from pose.synthetic import outputs
from pose.synthetic.draw import PALETTES, draw_mouse_top, make_fur_texture
from pose.synthetic.nuisance import NuisanceConfig, apply_affine, camera_transform, draw_occluders
from pose.synthetic.openfield import (
    BACK_MM,
    FRONT_MM,
    HEAD_MM,
    KEYPOINTS,
    SKELETON,
    SYMMETRY,
    _arena_geometry,
    _contain,
    _contain_trunk,
    _keypoints_mm,
    _smooth_noise,
    _wall_steer,
    _wrap,
)
from pose.synthetic.render import (
    _arena_background,
    _camera_arena,
    _fit_px_per_mm,
    _label_frames,
    _render_loop,
    _visible,
)

logger = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("explore", "rest", "approach", "contact", "follow", "lead", "cross")
INTERACTIONS: tuple[str, ...] = ("approach", "contact", "follow", "cross")
INTERACTION_COLUMNS = ["kind", "actor", "target", "start_frame", "end_frame", "start_s", "end_s", "point"]
_TARGET_POINTS = ("snout", "body_center", "tail_base")  # nose-nose, flank, anogenital
_MIN_CENTRE_MM = 32.0  # body centres closer than this overlap (trunk ~30 mm wide)
Coat = Literal["black", "agouti"]


@dataclass(frozen=True)
class SocialTruth:
    """Exact truth of a simulated social session.

    Attributes
    ----------
    pose
        Pose Dataset (px), keypoints :data:`pose.synthetic.openfield.KEYPOINTS`,
        individuals ``mouse_0``..., confidence 1, attrs ``px_per_mm``, ``fps``.
    modes
        (time, individual) str array, one of :data:`MODES`.
    interactions
        One row per bout: ``kind`` (:data:`INTERACTIONS`), ``actor``, ``target``,
        ``start_frame``, ``end_frame`` (inclusive), ``start_s``, ``end_s``, ``point``
        (approach and contact: the target's ``snout`` = nose-nose, ``tail_base`` =
        nose-anogenital or ``body_center`` = flank; empty otherwise).
    arena
        Arena geometry (as :class:`pose.synthetic.OpenFieldTruth`).
    """

    pose: xr.Dataset
    modes: np.ndarray
    interactions: pd.DataFrame
    arena: dict[str, Any]


def _snout(m: dict[str, float]) -> np.ndarray:
    return np.array([m["x"], m["y"]]) + (FRONT_MM + HEAD_MM) * np.array([np.cos(m["theta"]), np.sin(m["theta"])])


def _point(m: dict[str, float], name: str) -> np.ndarray:
    c = np.array([m["x"], m["y"]])
    u = np.array([np.cos(m["theta"]), np.sin(m["theta"])])
    return {"snout": c + (FRONT_MM + HEAD_MM) * u, "tail_base": c - BACK_MM * u,
            "body_center": c + 16.0 * np.array([-u[1], u[0]])}[name]


def _steer_to(m: dict[str, float], p: np.ndarray, gain: float = 4.0) -> float:
    err = _wrap(float(np.arctan2(p[1] - m["y"], p[0] - m["x"])) - m["theta"])
    return float(np.clip(gain * err, -8.0, 8.0))


def simulate_social(
    seconds: float,
    fps: float = 30.0,
    seed: int = 0,
    *,
    n_animals: int = 2,
    sociability: float = 0.7,
    arena_size_mm: float = 400.0,
    px_per_mm: float = 1.1,
    image_size_px: tuple[int, int] = (640, 480),
) -> SocialTruth:
    """Simulate ``n_animals`` mice interacting in a square arena, top view, no rendering.

    Parameters
    ----------
    seconds, fps, seed
        Length, frame rate, random seed (same seed -> identical arrays).
    n_animals
        2 or more (3 in the benchmarks).
    sociability
        In [0, 1]: how often an exploring mouse starts an interaction (0.7: a contact every
        few seconds per mouse, "frequent close contacts").
    arena_size_mm, px_per_mm, image_size_px
        As :func:`pose.synthetic.simulate_open_field`.

    Returns
    -------
    SocialTruth

    Raises
    ------
    ValueError
        For fewer than 2 animals, a sociability outside [0, 1] or a bad duration.
    """
    if n_animals < 2:
        raise ValueError(f"simulate_social needs at least 2 animals, got n_animals={n_animals}")
    if not 0.0 <= sociability <= 1.0:
        raise ValueError(f"sociability must be in [0, 1], got {sociability}")
    if seconds <= 0 or fps <= 0:
        raise ValueError(f"seconds and fps must be positive, got seconds={seconds}, fps={fps}")
    arena = _arena_geometry(arena_size_mm, px_per_mm, image_size_px, 0.5)
    rng = np.random.default_rng([int(seed), 7])
    n, dt, L, margin = int(round(seconds * fps)), 1.0 / fps, arena_size_mm, 6.0
    keys = ("x", "y", "theta", "v", "omega", "bend", "head", "rear", "groom", "tail")
    rec = [{k: np.zeros(n) for k in keys} for _ in range(n_animals)]
    modes = np.empty((n, n_animals), dtype=object)
    mice: list[dict[str, Any]] = []
    for i in range(n_animals):
        ang = 2 * np.pi * i / n_animals + rng.uniform(-0.3, 0.3)
        mice.append({"x": L / 2 + 0.25 * L * np.cos(ang), "y": L / 2 + 0.25 * L * np.sin(ang),
                     "theta": rng.uniform(-np.pi, np.pi), "v": 0.0, "w": 0.0, "bend": 0.0,
                     "head": 0.0, "tail": 0.0, "mode": "explore", "target": -1, "left": 2.0,
                     "vt": 80.0, "point": "snout", "t0": 0, "aux": 0.0})
    bouts: list[dict[str, Any]] = []

    def start(i: int, mode: str, t: int, target: int = -1, left: float = 2.0) -> None:
        m = mice[i]
        if m["mode"] in INTERACTIONS and m["target"] >= 0 and t > m["t0"]:
            bouts.append({"kind": m["mode"], "actor": i, "target": m["target"],
                          "start_frame": m["t0"], "end_frame": t - 1,
                          "point": m["point"] if m["mode"] in ("approach", "contact") else ""})
        m.update(mode=mode, target=target, left=left, t0=t)
        m["vt"] = {"explore": rng.uniform(50, 130), "rest": 0.0, "approach": rng.uniform(150, 220),
                   "contact": 0.0, "follow": 0.0, "lead": rng.uniform(90, 150),
                   "cross": rng.uniform(180, 260)}[mode]
        if mode != "contact":  # contact keeps the point the approach aimed at
            m["point"] = str(rng.choice(_TARGET_POINTS))

    for t in range(n):
        for i, m in enumerate(mice):  # mode transitions
            m["left"] -= dt
            busy = {j for j, o in enumerate(mice) if o["mode"] in ("contact", "cross", "follow", "lead")}
            if m["mode"] == "approach":
                o = mice[m["target"]]
                if np.linalg.norm(_snout(m) - _point(o, m["point"])) < 18.0:
                    start(i, "contact", t, m["target"], rng.uniform(1.0, 4.0))
                    if o["mode"] not in ("contact", "cross"):
                        start(m["target"], "rest", t, -1, mice[i]["left"])
                elif m["left"] <= 0:
                    start(i, "explore", t)
            elif m["mode"] == "contact" and np.linalg.norm(
                    _snout(m) - _point(mice[m["target"]], m["point"])) > 60.0:
                start(i, "explore", t, -1, rng.uniform(1.5, 4.0))  # the other walked off
            elif m["left"] <= 0:
                if m["mode"] == "contact" and rng.random() < 0.45 and m["target"] not in busy - {i}:
                    j = m["target"]
                    start(j, "lead", t, -1, rng.uniform(2.0, 5.0))
                    start(i, "follow", t, j, mice[j]["left"])
                    mice[j]["theta"] = _wrap(mice[j]["theta"] + rng.uniform(-0.6, 0.6))
                    continue
                others = [j for j in range(n_animals) if j != i and j not in busy
                          and np.hypot(mice[j]["x"] - m["x"], mice[j]["y"] - m["y"]) > 120.0]
                u = rng.random()
                if m["mode"] == "explore" and others and u < 0.6 * sociability:
                    start(i, "approach", t, int(rng.choice(others)), 6.0)
                elif m["mode"] == "explore" and others and u < 0.8 * sociability:
                    j = int(rng.choice(others))
                    start(i, "cross", t, j, 4.0)
                    start(j, "rest", t, -1, 4.0)
                    m["aux"] = 0.0
                elif u < 0.9 and m["mode"] != "rest":
                    start(i, "rest", t, -1, rng.uniform(0.8, 2.5))
                else:
                    start(i, "explore", t, -1, rng.uniform(1.5, 4.0))
        new = []
        for m in mice:  # steering
            mode, o = m["mode"], mice[m["target"]] if m["target"] >= 0 else None
            a = np.exp(-dt / 0.5)
            m["w"] = a * m["w"] + np.deg2rad(45.0) * np.sqrt(1 - a * a) * rng.standard_normal()
            omega, vt = m["w"], m["vt"]
            if mode == "approach":
                omega = _steer_to(m, _point(o, m["point"]))
            elif mode == "contact":
                d = np.linalg.norm(_snout(m) - _point(o, m["point"]))
                omega = 0.5 * _steer_to(m, _point(o, m["point"]), 2.0)
                vt = float(np.clip(2.0 * (d - 6.0), 0.0, 40.0))
            elif mode == "follow":  # pure pursuit of the leader's tail base, ~20 mm behind it
                goal = _point(o, "tail_base")
                d = float(np.linalg.norm(_snout(m) - goal))
                omega = _steer_to(m, goal, 5.0)
                vt = float(np.clip(o["v"] + 2.0 * (d - 20.0), 0.0, 300.0))
            elif mode == "cross":
                if m["aux"] == 0.0 and np.hypot(o["x"] - m["x"], o["y"] - m["y"]) > 60.0:
                    omega = _steer_to(m, np.array([o["x"], o["y"]]), 6.0)
                else:
                    m["aux"] += m["v"] * dt  # passed close: run straight on, over the other
                    omega = 0.0
                    if m["aux"] > 120.0:
                        m["left"] = 0.0
            elif mode in ("rest", "lead"):
                omega = 0.3 * m["w"] if mode == "rest" else m["w"]
            w_wall, urgency = _wall_steer(m["x"], m["y"], m["theta"], m["v"], L, margin)
            if mode != "cross" or m["aux"] == 0.0:
                omega = (1.0 - urgency) * omega + w_wall
            omega = float(np.clip(omega, -np.deg2rad(400), np.deg2rad(400)))
            m["v"] += (vt - m["v"]) * (1 - np.exp(-dt / 0.15))
            theta = _wrap(m["theta"] + omega * dt)
            new.append([m["x"] + m["v"] * np.cos(theta) * dt, m["y"] + m["v"] * np.sin(theta) * dt,
                        theta, omega])
        for i, j in ((a, b) for a in range(n_animals) for b in range(a + 1, n_animals)):
            crossing = {mice[i]["mode"], mice[j]["mode"]} & {"cross"} and (
                mice[i]["target"] == j or mice[j]["target"] == i)
            d = np.hypot(new[i][0] - new[j][0], new[i][1] - new[j][1])
            if not crossing and 1e-6 < d < _MIN_CENTRE_MM:  # bodies repel: push apart
                push = 0.5 * (_MIN_CENTRE_MM - d) / d
                dx, dy = new[i][0] - new[j][0], new[i][1] - new[j][1]
                new[i][0] += push * dx
                new[i][1] += push * dy
                new[j][0] -= push * dx
                new[j][1] -= push * dy
        for i, m in enumerate(mice):
            x, y = _contain_trunk(new[i][0], new[i][1], new[i][2], L, margin)
            omega = new[i][3]
            m.update(x=x, y=y, theta=new[i][2])
            k = 1 - np.exp(-dt / 0.15)
            m["bend"] += (np.clip(omega * 0.12, -0.45, 0.45) - m["bend"]) * k
            head_t = 0.6 * m["bend"] + np.deg2rad(8) * np.sin(2 * np.pi * 0.7 * t * dt + i)
            m["head"] += (head_t - m["head"]) * (1 - np.exp(-dt / 0.06))
            m["tail"] += (np.clip(-omega * 0.35, -1.0, 1.0) - m["tail"]) * (1 - np.exp(-dt / 0.3))
            for key, val in (("x", x), ("y", y), ("theta", m["theta"]), ("v", m["v"]),
                             ("omega", omega), ("bend", m["bend"]), ("head", m["head"]),
                             ("tail", m["tail"])):
                rec[i][key][t] = val
            modes[t, i] = m["mode"]
    for i in range(n_animals):
        start(i, "explore", n)
    kp = []
    for i in range(n_animals):
        k_mm, _ = _keypoints_mm(rec[i], dt, rng)
        k_mm = _contain(k_mm, L, margin) + _smooth_noise(rng, k_mm.shape, 0.08, 0.3 * fps)
        kp.append(k_mm)
    origin = np.array(arena["bounds_px"][:2])
    position = np.stack(kp, axis=-1) * px_per_mm + origin[None, :, None, None]
    names = [f"mouse_{i}" for i in range(n_animals)]
    ds = from_numpy(position, np.ones((n, len(KEYPOINTS), n_animals)), keypoints=list(KEYPOINTS),
                    individuals=names, fps=fps, source_software="ethopose.synthetic",
                    px_per_mm=px_per_mm)
    ds = append_history(ds, "simulate_social", {"seconds": seconds, "fps": fps, "seed": seed,
                                                "n_animals": n_animals, "sociability": sociability,
                                                "arena_size_mm": arena_size_mm, "px_per_mm": px_per_mm})
    table = pd.DataFrame(bouts, columns=INTERACTION_COLUMNS[:5] + ["point"])
    table["actor"] = [names[i] for i in table["actor"]]
    table["target"] = [names[i] for i in table["target"]]
    table["start_s"] = table["start_frame"] / fps
    table["end_s"] = (table["end_frame"] + 1) / fps
    table = table[INTERACTION_COLUMNS].sort_values(["start_frame", "actor"], kind="stable").reset_index(drop=True)
    return SocialTruth(pose=ds, modes=modes.astype(str), interactions=table, arena=arena)


class DetectionNoise(BaseModel):
    """How :func:`simulate_detections` degrades the truth (a pose network's typical errors).

    Attributes
    ----------
    noise_px
        Keypoint position noise, std in px.
    dropout
        Probability that a keypoint is a dropout in a frame: confidence 0-0.3 and the
        position either missing or a wrong peak (off by ~0.3 body length).
    missing_instance
        Per animal and frame, probability that a run (mean 4 frames) without the instance starts.
    part_mix
        In close contact, probability that a keypoint is taken from the other animal.
    occlusion
        When two bodies overlap, probability that each keypoint of the lower one is missing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    noise_px: float = Field(2.0, ge=0)
    dropout: float = Field(0.05, ge=0, le=1)
    missing_instance: float = Field(0.005, ge=0, le=1)
    part_mix: float = Field(0.03, ge=0, le=1)
    occlusion: float = Field(0.5, ge=0, le=1)

    @classmethod
    def preset(cls, level: Literal["low", "medium", "high"]) -> DetectionNoise:
        """``low`` (1 px, 2 % dropouts), ``medium`` (default: 2 px, 5 %), ``high`` (4 px, 12 %)."""
        return {"low": cls(noise_px=1.0, dropout=0.02, missing_instance=0.002, part_mix=0.01),
                "medium": cls(),
                "high": cls(noise_px=4.0, dropout=0.12, missing_instance=0.01, part_mix=0.08,
                            occlusion=0.7)}[level]


def simulate_detections(truth: xr.Dataset, noise: DetectionNoise | None = None, seed: int = 0,
                        *, shuffle: bool = True) -> tuple[xr.Dataset, np.ndarray]:
    """What a multi-animal pose network would output for ``truth``, identities removed.

    Parameters
    ----------
    truth
        Pose Dataset with the true individuals (e.g. :attr:`SocialTruth.pose`).
    noise
        :class:`DetectionNoise` (default ``medium``).
    seed
        Random seed.
    shuffle
        Shuffle the instance order in every frame (no identity information left).

    Returns
    -------
    (xarray.Dataset, numpy.ndarray)
        Detections with individuals ``instance_0``... and, per frame and instance, the
        index of the true individual it came from (time, individual).
    """
    noise = noise or DetectionNoise()
    rng = np.random.default_rng([int(seed), 11])
    pos = truth["position"].values.copy()
    n_t, _, n_k, n_i = pos.shape
    body = float(np.nanmedian(np.linalg.norm(pos[:, :, 0] - pos[:, :, KEYPOINTS.index("tail_base")], axis=1))) \
        if "snout" in truth.keypoint.values else 50.0
    centre = np.nanmean(pos, axis=2)  # (time, 2, I)
    conf = np.clip(rng.beta(20.0, 1.5, size=(n_t, n_k, n_i)), 0, 1)
    pos += rng.normal(0.0, noise.noise_px, pos.shape)
    for i in range(n_i):  # close contacts: part-grouping errors and occlusion of the lower mouse
        for j in range(n_i):
            if i == j:
                continue
            d = np.linalg.norm(centre[:, :, i] - centre[:, :, j], axis=1)
            close = d < 1.2 * body
            mix = close[:, None] & (rng.random((n_t, n_k)) < noise.part_mix)
            pos[:, :, :, i] = np.where(mix[:, None], truth["position"].values[:, :, :, j]
                                       + rng.normal(0, noise.noise_px, (n_t, 2, n_k)), pos[:, :, :, i])
            conf[:, :, i] = np.where(mix, rng.uniform(0.3, 0.7, (n_t, n_k)), conf[:, :, i])
            if i > j:  # the higher index lies under the other one
                hidden = (d < 0.5 * body)[:, None] & (rng.random((n_t, n_k)) < noise.occlusion)
                pos[:, :, :, i] = np.where(hidden[:, None], np.nan, pos[:, :, :, i])
    drop = rng.random((n_t, n_k, n_i)) < noise.dropout
    wrong = drop & (rng.random(drop.shape) < 0.5)
    conf = np.where(drop, rng.uniform(0.0, 0.3, drop.shape), conf)
    offset = rng.normal(0.0, 0.3 * body, pos.shape)
    pos = np.where(wrong[:, None], pos + offset, pos)
    pos = np.where((drop & ~wrong)[:, None], np.nan, pos)
    starts = rng.random((n_t, n_i)) < noise.missing_instance
    for t, i in zip(*np.nonzero(starts), strict=True):
        pos[t: t + int(rng.geometric(0.25)), :, :, i] = np.nan
    conf = np.where(np.isnan(pos).any(axis=1), np.nan, conf)
    source = np.tile(np.arange(n_i), (n_t, 1))
    if shuffle:
        source = np.argsort(rng.random((n_t, n_i)), axis=1)
        pos = np.take_along_axis(pos, source[:, None, None, :], axis=3)
        conf = np.take_along_axis(conf, source[:, None, :], axis=2)
    out = from_numpy(pos, conf, keypoints=[str(k) for k in truth.keypoint.values],
                     individuals=[f"instance_{i}" for i in range(n_i)], fps=truth.attrs.get("fps"),
                     source_software="ethopose.synthetic.detections",
                     px_per_mm=truth.attrs.get("px_per_mm"), video_path=truth.attrs.get("video_path"))
    out.attrs["history"] = list(truth.attrs.get("history", []))
    out = append_history(out, "simulate_detections", {**noise.model_dump(), "seed": seed,
                                                      "shuffle": shuffle})
    return out, source


def detected_individuals(detections: xr.Dataset, source: np.ndarray, min_keypoints: int = 2) -> np.ndarray:
    """(time, true individual) bool: the animals with an instance of at least ``min_keypoints``
    finite keypoints among ``detections`` (``source`` from :func:`simulate_detections`)."""
    n_kp = (~np.isnan(detections["position"].values).any(axis=1)).sum(axis=1)  # (time, instance)
    out = np.zeros(source.shape, dtype=bool)
    rows = np.repeat(np.arange(source.shape[0])[:, None], source.shape[1], axis=1)
    out[rows, source] = n_kp >= min_keypoints
    return out


@dataclass(frozen=True)
class SocialSession:
    """A rendered social session: ``out_dir``, ``video_path``, ``files`` (name -> path),
    the truth in camera pixels (``pose``, ``interactions``, ``modes``), ``scene`` (arena.json)
    and the render speed (``render_fps`` wall, ``render_cpu_fps`` per CPU second)."""

    out_dir: Path
    video_path: Path
    files: dict[str, Path]
    pose: xr.Dataset
    modes: np.ndarray
    interactions: pd.DataFrame
    scene: dict[str, Any]
    render_fps: float
    render_cpu_fps: float


def render_social(
    out_dir: str | os.PathLike,
    seconds: float = 30.0,
    seed: int = 0,
    *,
    n_animals: int = 2,
    coats: tuple[Coat, ...] | None = None,
    width: int = 640,
    height: int = 480,
    fps: float = 30.0,
    nuisances: NuisanceConfig | None = None,
    n_label_frames: int = 20,
    sociability: float = 0.7,
) -> SocialSession:
    """Render a social session of ``n_animals`` virtual mice into ``out_dir``.

    Writes ``video.mp4``, ``truth.nc`` / ``truth.h5`` (multi-animal DeepLabCut layout, one
    individual per mouse), ``interactions.csv``, ``behavior.csv`` (frame, time_s,
    individual, mode), ``arena.json``, a multi-animal DeepLabCut ``config.yaml`` and
    ``labeled-data/video/CollectedData_synthetic.h5/.csv`` + images.

    Parameters
    ----------
    coats
        One coat per mouse (``"black"``, ``"agouti"``); default all black (same coat).
    Others
        As :func:`simulate_social` and :func:`pose.synthetic.render_open_field`.
    """
    coats = tuple(coats or ("black",) * n_animals)
    if len(coats) != n_animals:
        raise ValueError(f"{len(coats)} coats for {n_animals} animals")
    cfg = nuisances or NuisanceConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([int(seed), 3])
    m, scale, angle = camera_transform(cfg, rng, width, height)
    ppm = _fit_px_per_mm(cfg, width, height, 400.0)
    truth = simulate_social(seconds, fps, seed, n_animals=n_animals, sociability=sociability,
                            px_per_mm=ppm, image_size_px=(width, height))
    raw = truth.pose.position.values  # (time, space, keypoint, individual)
    pos = np.stack([np.moveaxis(apply_affine(np.moveaxis(raw[..., i], 1, 2), m), 2, 1)
                    for i in range(n_animals)], axis=-1)
    ppm_cam, n = ppm * scale, pos.shape[0]
    arena = _camera_arena(truth.arena, m, scale, angle)
    corners = np.array(arena["zones"]["arena"]["vertices_px"])
    bg = _arena_background(corners, ppm_cam, width, height, rng)
    occ = draw_occluders(cfg, rng, corners, width, height) if cfg.n_occluders else None
    textures = [make_fur_texture(seed * 10 + i) for i in range(n_animals)]
    bc = pos[:, :, KEYPOINTS.index("body_center")]  # (time, 2, individual)
    vel = np.concatenate([np.zeros((1, 2, n_animals)), np.diff(bc, axis=0)])
    fastest = np.argmax(np.linalg.norm(vel, axis=1), axis=1)
    crossing = truth.modes == "cross"

    def draw(frame: np.ndarray, i: int) -> tuple[int, int, int, int]:
        order = sorted(range(n_animals), key=lambda a: (crossing[i, a], -a))  # the crosser on top
        boxes = {}
        for a in order:
            kp = {k: pos[i, :, j, a] for j, k in enumerate(KEYPOINTS)}
            boxes[a] = draw_mouse_top(frame, kp, ppm_cam, textures[a], PALETTES[coats[a]])
        return boxes[int(fastest[i])]

    keep = _label_frames(rng, n, n_label_frames)
    video = out / "video.mp4"
    blur_vel = vel[np.arange(n), :, fastest]
    kept, render_fps, cpu_fps = _render_loop(n, fps, width, height, cfg, rng, lambda i: bg.copy(),
                                             draw, blur_vel, occ, video, keep)
    ds = truth.pose.copy(deep=True)
    ds["position"].values[:] = pos
    ds.attrs.update(px_per_mm=ppm_cam, video_path="video.mp4")
    ds = append_history(ds, "render_social", {"camera_scale": scale, "camera_rotation_deg": angle,
                                              "width": width, "height": height, "coats": list(coats),
                                              "nuisances": cfg.model_dump()})
    files = {"video": video}
    files["truth_nc"], files["truth_h5"] = outputs.write_truth(ds, out)
    files["interactions"] = outputs.write_table(truth.interactions, out / "interactions.csv")
    names = [str(x) for x in ds.individual.values]
    behav = pd.DataFrame({"frame": np.repeat(np.arange(n), n_animals),
                          "time_s": np.repeat(np.arange(n) / fps, n_animals),
                          "individual": np.tile(names, n), "mode": truth.modes.reshape(-1)})
    files["behavior"] = outputs.write_table(behav, out / "behavior.csv")
    files["arena"] = outputs.write_json({**arena, "coats": list(coats)}, out / "arena.json")
    occ_mask = None if occ is None else occ[1]
    visible = np.stack([_visible(pos[..., a], width, height, occ_mask) for a in range(n_animals)], -1)
    lab = outputs.write_labeled_data(out, video.stem, kept, pos, visible, list(KEYPOINTS), n, ppm_cam,
                                     individuals=names)  # the multi-animal layout
    if lab is not None:
        files["labels"] = lab
    files["config"] = _write_multi_config(out, video, width, height, names, n_label_frames)
    logger.info("rendered %d frames of %d mice at %.0f fps (%.0f per CPU second) to %s", n,
                n_animals, render_fps, cpu_fps, out)
    return SocialSession(out, video, files, ds, truth.modes, truth.interactions, arena,
                         render_fps, cpu_fps)


def _write_multi_config(out_dir: Path, video: Path, width: int, height: int, names: list[str],
                        n_label: int) -> Path:
    """DeepLabCut multi-animal ``config.yaml`` (the single-animal one, made multi-animal)."""
    path = outputs.write_dlc_config(out_dir, "synthetic_social", video, width, height,
                                    list(KEYPOINTS), list(SKELETON), SYMMETRY, n_label)
    cfg = yaml.safe_load(path.read_text())
    cfg.update(multianimalproject=True, individuals=names, uniquebodyparts=[],
               multianimalbodyparts=list(KEYPOINTS), bodyparts="MULTI!")
    return write_text_atomic(path, yaml.safe_dump(cfg, sort_keys=False))
