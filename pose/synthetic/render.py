"""Render the virtual mouse to a video folder with exact ground truth.

:func:`render_open_field` (top view, arena) and :func:`render_gait` (side view on a beam or
treadmill, or bottom view through a glass floor) simulate the kinematics, place the camera
(scale and rotation applied to the keypoints, so the truth stays exact), draw every frame,
add the nuisances and write the folder described in :mod:`pose.synthetic.outputs`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import xarray as xr

from pose.dataset import append_history
from pose.synthetic import outputs
from pose.synthetic.draw import PALETTES, draw_mouse_side, draw_mouse_top, make_fur_texture
from pose.synthetic.encode import VideoEncoder
from pose.synthetic.gait import simulate_gait
from pose.synthetic.nuisance import (
    NoiseBank,
    NuisanceConfig,
    apply_affine,
    camera_transform,
    draw_distractors,
    draw_occluders,
    flicker_gains,
    lighting_gain,
    motion_blur,
)
from pose.synthetic.openfield import (
    KEYPOINTS,
    SKELETON,
    SYMMETRY,
    open_field_step_events,
    simulate_open_field,
)

logger = logging.getLogger(__name__)

Coat = Literal["black", "agouti"]
ARENA_SIZE_MM = 400.0


@dataclass(frozen=True)
class RenderedSession:
    """A rendered synthetic session: where its files are and its truth (camera pixels).

    Attributes
    ----------
    out_dir, video_path
        The output folder and its ``video.mp4``.
    files
        Name -> path of every file written (``truth_nc``, ``truth_h5``, ``behavior``,
        ``gait_events``, ``arena``, ``config``, ``labels``).
    pose
        The ground-truth pose Dataset exactly as saved in ``truth.nc``.
    states
        Behaviour state per frame.
    scene
        The content of ``arena.json``.
    render_fps
        Frames drawn, degraded and encoded per second of wall time.
    render_cpu_fps
        The same per second of this process's CPU time (robust to a busy machine).
    """

    out_dir: Path
    video_path: Path
    files: dict[str, Path]
    pose: xr.Dataset
    states: np.ndarray
    scene: dict[str, Any]
    render_fps: float
    render_cpu_fps: float


def _fit_px_per_mm(cfg: NuisanceConfig, width: int, height: int, size_mm: float) -> float:
    """Calibration at which the arena plus walls fits the frame under any camera draw."""
    r = np.radians(cfg.rotation_deg)
    extent = (1 + cfg.scale_jitter) * (np.cos(r) + np.sin(r))
    return 0.90 * min(width, height) / (extent * size_mm)


def _arena_background(corners: np.ndarray, px_per_mm: float, width: int, height: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Top view of a square arena: bench outside, wall tops, textured floor, wall-base shadow."""
    bg = np.full((height, width, 3), (62, 66, 70), np.uint8)
    centre = corners.mean(axis=0)
    wall = centre + (corners - centre) * (1 + 2 * 12.0 * px_per_mm / np.ptp(corners[:, 0]))
    cv2.fillPoly(bg, [np.round(wall * 16).astype(np.int32)], (176, 178, 180), cv2.LINE_AA, 4)
    low = _periodic_noise(rng, height, width, 10.0)
    grain = rng.standard_normal((height, width)).astype(np.float32)
    floor = 212 + 2.0 * low + 2.0 * grain
    floor = np.clip(np.repeat(floor[..., None], 3, axis=2) + np.array([0, 1, -3]), 0, 255)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(corners * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    a = mask[..., None].astype(np.float32) / 255
    bg = (bg * (1 - a) + floor * a).astype(np.uint8)
    # soft shadow along the wall base
    edge = np.zeros((height, width), np.uint8)
    cv2.polylines(edge, [np.round(corners * 16).astype(np.int32)], True, 255,
                  max(2, int(4 * px_per_mm)), cv2.LINE_AA, 4)
    edge = cv2.GaussianBlur(edge, (0, 0), 3 * px_per_mm).astype(np.float32)[..., None] / 255
    return np.clip(bg * (1 - 0.35 * edge * a), 0, 255).astype(np.uint8)


def _render_loop(
    n_frames: int,
    fps: float,
    width: int,
    height: int,
    cfg: NuisanceConfig,
    rng: np.random.Generator,
    background: Callable[[int], np.ndarray],
    draw: Callable[[np.ndarray, int], tuple[int, int, int, int]],
    velocity_px: np.ndarray,
    occluder: tuple[np.ndarray, np.ndarray] | None,
    video_path: Path,
    keep: set[int],
) -> tuple[dict[int, np.ndarray], float, float]:
    """Draw, degrade and encode every frame.

    Returns the kept frames, the wall-clock fps and the CPU fps (frames per CPU second of
    this process, which does not depend on what else runs on the machine).
    """
    gain = lighting_gain(cfg, rng, width, height) if cfg.gradient_strength > 0 else None
    gain8 = None if gain is None else np.repeat(np.round(gain * 200)[..., None], 3, 2).astype(
        np.uint8)
    flicker = flicker_gains(cfg, rng, n_frames, fps)
    noise = NoiseBank(cfg, rng, width, height)
    kept: dict[int, np.ndarray] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    with VideoEncoder(video_path, fps, width, height, crf=cfg.crf) as enc:
        for i in range(n_frames):
            frame = background(i)
            x0, y0, x1, y1 = draw(frame, i)
            if cfg.exposure_fraction > 0 and x1 > x0:
                motion_blur(frame[y0:y1, x0:x1], velocity_px[i], cfg.exposure_fraction)
            if occluder is not None:
                cv2.copyTo(occluder[0], occluder[1], frame)
            if gain8 is not None:
                cv2.multiply(frame, gain8, dst=frame, scale=float(flicker[i]) / 200.0)
            elif cfg.flicker_amplitude > 0:
                cv2.convertScaleAbs(frame, dst=frame, alpha=float(flicker[i]))
            noise.apply(frame)
            if i in keep:
                kept[i] = frame.copy()
            enc.write(frame)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return kept, n_frames / max(wall, 1e-9), n_frames / max(cpu, 1e-9)


def _visible(pos: np.ndarray, width: int, height: int, occ_mask: np.ndarray | None) -> np.ndarray:
    """(time, keypoint) True where a keypoint is inside the image and not under an occluder."""
    x, y = pos[:, 0], pos[:, 1]
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    if occ_mask is not None:
        xi = np.clip(np.round(x).astype(int), 0, width - 1)
        yi = np.clip(np.round(y).astype(int), 0, height - 1)
        inside &= occ_mask[yi, xi] == 0
    return inside


def _label_frames(rng: np.random.Generator, n_frames: int, n_label: int) -> set[int]:
    n = min(max(int(n_label), 0), n_frames)
    return {int(i) for i in np.sort(rng.choice(n_frames, size=n, replace=False))}


def render_open_field(
    out_dir: str | os.PathLike,
    seconds: float = 60.0,
    seed: int = 0,
    width: int = 640,
    height: int = 480,
    fps: float = 30.0,
    nuisances: NuisanceConfig | None = None,
    n_label_frames: int = 20,
    *,
    speed_scale: float = 1.0,
    center_preference: float = 0.3,
    coat: Coat = "black",
) -> RenderedSession:
    """Render a top-view open-field session of the virtual mouse into ``out_dir``.

    Parameters
    ----------
    out_dir
        Output folder (created); the files are listed in :mod:`pose.synthetic.outputs`.
    seconds, seed, fps
        Session length, random seed (same seed -> identical truth), frame rate.
    width, height
        Frame size in px (even numbers).
    nuisances
        Camera noise, lighting, blur, compression, occluders, distractors and camera
        pose; default ``NuisanceConfig()`` (mild). ``NuisanceConfig.preset("none")`` is clean.
    n_label_frames
        Frames sampled for ``labeled-data`` (DeepLabCut layout).
    speed_scale, center_preference
        Passed to :func:`pose.synthetic.simulate_open_field`.
    coat
        ``"black"`` (C57BL/6 on a white floor) or ``"agouti"``.

    Returns
    -------
    RenderedSession
    """
    cfg = nuisances or NuisanceConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([int(seed), 1])
    m, scale, angle = camera_transform(cfg, rng, width, height)
    ppm = _fit_px_per_mm(cfg, width, height, ARENA_SIZE_MM)
    truth = simulate_open_field(seconds, fps, seed, arena_size_mm=ARENA_SIZE_MM, px_per_mm=ppm,
                                image_size_px=(width, height), speed_scale=speed_scale,
                                center_preference=center_preference)
    raw = truth.pose.position.values[..., 0]  # (time, space, keypoint)
    pos = np.moveaxis(apply_affine(np.moveaxis(raw, 1, 2), m), 2, 1)
    ppm_cam = ppm * scale
    n = pos.shape[0]
    arena = _camera_arena(truth.arena, m, scale, angle)
    corners = np.array(arena["zones"]["arena"]["vertices_px"])
    bg = _arena_background(corners, ppm_cam, width, height, rng)
    draw_distractors(cfg, rng, bg, corners, ppm_cam)
    occ = draw_occluders(cfg, rng, corners, width, height) if cfg.n_occluders else None
    texture = make_fur_texture(seed)
    palette = PALETTES[coat]
    rear = truth.posture["rear"]
    kp_index = {k: j for j, k in enumerate(KEYPOINTS)}

    def draw(frame: np.ndarray, i: int) -> tuple[int, int, int, int]:
        kp = {k: pos[i, :, j] for k, j in kp_index.items()}
        return draw_mouse_top(frame, kp, ppm_cam, texture, palette, rear=float(rear[i]))

    bc = pos[:, :, kp_index["body_center"]]
    vel = np.vstack([np.zeros((1, 2)), np.diff(bc, axis=0)])
    keep = _label_frames(rng, n, n_label_frames)
    video = out / "video.mp4"
    kept, render_fps, cpu_fps = _render_loop(n, fps, width, height, cfg, rng,
                                             lambda i: bg.copy(), draw, vel, occ, video, keep)
    ds = truth.pose.copy(deep=True)
    ds["position"].values[..., 0] = pos
    ds.attrs.update(px_per_mm=ppm_cam, video_path="video.mp4")
    ds = append_history(ds, "render_open_field", {
        "camera_scale": scale, "camera_rotation_deg": angle, "width": width, "height": height,
        "nuisances": cfg.model_dump(), "coat": coat})
    events = open_field_step_events(truth)
    files = _write_all(out, ds, truth.states, events, arena, kept, pos,
                       _visible(pos, width, height, None if occ is None else occ[1]),
                       task="synthetic_openfield", width=width, height=height,
                       n_label=n_label_frames, video=video)
    logger.info("rendered %d frames at %.0f fps (%.0f per CPU second) to %s", n, render_fps,
                cpu_fps, out)
    return RenderedSession(out, video, files, ds, truth.states, arena, render_fps, cpu_fps)


def _camera_arena(arena: dict[str, Any], m: np.ndarray, scale: float, angle: float
                  ) -> dict[str, Any]:
    """Arena geometry seen through the camera transform."""
    def tf(pts: Any) -> list[list[float]]:
        return apply_affine(np.asarray(pts, float), m).round(6).tolist()

    zones = {}
    for name, z in arena["zones"].items():
        zz = dict(z, vertices_px=tf(z["vertices_px"]))
        if "holes_px" in z:
            zz["holes_px"] = [tf(h) for h in z["holes_px"]]
        zones[name] = zz
    out = dict(arena, zones=zones, centre_px=tf([arena["centre_px"]])[0],
               size_px=arena["size_px"] * scale, px_per_mm=arena["px_per_mm"] * scale)
    out.pop("bounds_px", None)
    out["camera"] = {"scale": scale, "rotation_deg": angle, "matrix": m.round(9).tolist()}
    return out


def _write_all(out: Path, ds: xr.Dataset, states: np.ndarray, events: Any,
               scene: dict[str, Any], kept: dict[int, np.ndarray], pos: np.ndarray,
               visible: np.ndarray, *, task: str, width: int, height: int, n_label: int,
               video: Path) -> dict[str, Path]:
    side_view = "left_hip" in [str(k) for k in ds.keypoint.values]
    nc, h5 = outputs.write_truth(ds, out)
    keypoints = [str(k) for k in ds.keypoint.values]
    skeleton = [p for p in SKELETON if p[0] in keypoints and p[1] in keypoints]
    if "left_hip" in keypoints:
        skeleton += [("left_hip", "left_knee"), ("left_knee", "left_ankle"),
                     ("left_ankle", "left_hindpaw")]
    files = {
        "video": video, "truth_nc": nc, "truth_h5": h5,
        "behavior": outputs.write_behavior(states, float(ds.attrs["fps"]), out / "behavior.csv"),
        "gait_events": outputs.write_table(events, out / "gait_events.csv"),
        "arena": outputs.write_json(scene, out / "arena.json"),
        "labels": outputs.write_labeled_data(out, video.stem, kept, pos, visible, keypoints,
                                             pos.shape[0], float(ds.attrs["px_per_mm"])),
        "config": outputs.write_dlc_config(out, task, video, width, height, keypoints, skeleton,
                                           [] if side_view else SYMMETRY, n_label,
                                           top_view=not side_view),
    }
    return {name: path for name, path in files.items() if path is not None}


def render_gait(
    out_dir: str | os.PathLike,
    seconds: float = 10.0,
    seed: int = 0,
    width: int = 640,
    height: int = 360,
    fps: float = 100.0,
    nuisances: NuisanceConfig | None = None,
    n_label_frames: int = 20,
    *,
    gait: Literal["walk", "trot"] = "walk",
    speed_mm_s: float = 150.0,
    stride_length_mm: float = 60.0,
    view: Literal["side", "bottom"] = "side",
    treadmill: bool = False,
) -> RenderedSession:
    """Render a gait recording: side view on a beam (or treadmill belt), or bottom view.

    Overground (``treadmill=False``) the camera pans with the mouse at its speed
    (``arena.json`` gives ``camera_pan_px_per_s``): image x = runway x - pan * t. On a
    treadmill the camera is still and the belt moves. Parameters as in
    :func:`render_open_field` and :func:`pose.synthetic.simulate_gait`.

    Returns
    -------
    RenderedSession
        ``states`` holds the gait name for every frame.
    """
    cfg = nuisances or NuisanceConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([int(seed), 2])
    m, scale, angle = camera_transform(cfg, rng, width, height)
    ppm = 0.85 * width / 230.0 / (1 + cfg.scale_jitter)  # tail tip to snout fits the frame
    truth = simulate_gait(seconds, fps, seed, gait=gait, speed_mm_s=speed_mm_s,
                          stride_length_mm=stride_length_mm, view=view, treadmill=treadmill,
                          px_per_mm=ppm, image_size_px=(width, height))
    n = truth.pose.sizes["time"]
    t = np.arange(n) / fps
    shift_px = speed_mm_s * ppm * t  # camera pan (overground) or belt travel (treadmill)
    raw = truth.pose.position.values[..., 0].copy()
    if not treadmill:
        raw[:, 0, :] -= shift_px[:, None]
    raw[:, 0, :] += 32.0 * ppm  # the tail is long: centre tail tip to snout
    pos = np.moveaxis(apply_affine(np.moveaxis(raw, 1, 2), m), 2, 1)
    ppm_cam = ppm * scale
    keypoints = [str(k) for k in truth.pose.keypoint.values]
    kp_index = {k: j for j, k in enumerate(keypoints)}
    strip, period = _gait_strip(view, width, height, ppm, truth.scene, rng)
    region = np.array([[0, 0.3 * height], [width, 0.3 * height], [width, 0.9 * height],
                       [0, 0.9 * height]])
    occ = draw_occluders(cfg, rng, region, width, height) if cfg.n_occluders else None
    texture = make_fur_texture(seed)
    warp = cfg.rotation_deg > 0 or cfg.scale_jitter > 0

    def background(i: int) -> np.ndarray:
        off = int(round(shift_px[i])) % period
        frame = np.ascontiguousarray(strip[:, off:off + width])
        if treadmill and view == "side":  # only the belt moves under a still camera
            g0 = int(truth.scene["ground_y_px"])
            frame[:g0] = strip[:g0, :width]
        if warp:
            frame = cv2.warpAffine(frame, m, (width, height), borderMode=cv2.BORDER_REFLECT)
        return frame

    def draw(frame: np.ndarray, i: int) -> tuple[int, int, int, int]:
        kp = {k: pos[i, :, j] for k, j in kp_index.items()}
        if view == "side":
            return draw_mouse_side(frame, kp, ppm_cam, texture, PALETTES["black"])
        return draw_mouse_top(frame, kp, ppm_cam, texture, PALETTES["ventral"], shadow=False)

    bc = pos[:, :, kp_index["body_center"]]
    vel = np.vstack([np.zeros((1, 2)), np.diff(bc, axis=0)])
    keep = _label_frames(rng, n, n_label_frames)
    video = out / "video.mp4"
    kept, render_fps, cpu_fps = _render_loop(n, fps, width, height, cfg, rng, background, draw,
                                             vel, occ, video, keep)
    ds = truth.pose.copy(deep=True)
    ds["position"].values[..., 0] = pos
    ds.attrs.update(px_per_mm=ppm_cam, video_path="video.mp4")
    ds = append_history(ds, "render_gait", {
        "camera_scale": scale, "camera_rotation_deg": angle, "width": width, "height": height,
        "nuisances": cfg.model_dump()})
    scene = dict(truth.scene, px_per_mm=ppm_cam, image_size_px=[width, height],
                 camera={"scale": scale, "rotation_deg": angle, "matrix": m.round(9).tolist()},
                 camera_pan_px_per_s=0.0 if treadmill else speed_mm_s * ppm,
                 gait=gait, speed_mm_s=speed_mm_s, stride_length_mm=stride_length_mm,
                 cadence_hz=truth.cadence_hz, duty_factor=truth.duty_factor,
                 base_of_support_mm=truth.base_of_support_mm,
                 phase_offsets=truth.phase_offsets)
    states = np.full(n, gait)
    files = _write_all(out, ds, states, truth.events, scene, kept, pos,
                       _visible(pos, width, height, None if occ is None else occ[1]),
                       task=f"synthetic_gait_{view}", width=width, height=height,
                       n_label=n_label_frames, video=video)
    logger.info("rendered %d frames at %.0f fps (%.0f per CPU second) to %s", n, render_fps,
                cpu_fps, out)
    return RenderedSession(out, video, files, ds, states, scene, render_fps, cpu_fps)


def _periodic_noise(rng: np.random.Generator, height: int, width: int, sigma_px: float
                    ) -> np.ndarray:
    """Smooth noise (unit sd) that tiles seamlessly: low-pass filtered white noise via FFT."""
    white = rng.standard_normal((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    lowpass = np.exp(-2 * (np.pi * sigma_px) ** 2 * (fx**2 + fy**2))
    smooth = np.real(np.fft.ifft2(np.fft.fft2(white) * lowpass))
    return (smooth / (smooth.std() + 1e-9)).astype(np.float32)


def _gait_strip(view: str, width: int, height: int, ppm: float, scene: dict[str, Any],
                rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A background strip, periodic in x (period px), ``width + period`` wide."""
    period = int(round(100 * ppm))  # marks every 20 mm, texture repeats every 100 mm
    tile_w = period
    low = _periodic_noise(rng, height, tile_w, 8.0)
    grain = rng.standard_normal((height, tile_w)).astype(np.float32)
    tile = np.zeros((height, tile_w, 3), np.float32)
    if view == "side":
        g0 = int(scene["ground_y_px"])
        yy = np.arange(height, dtype=np.float32)[:, None]
        wall = 190 - 25 * (yy / height) + 4 * low + 2 * grain
        tile[:] = np.stack([wall + 6, wall + 2, wall - 4], axis=2)
        beam_h = int(round(12 * ppm))
        streak = np.mean([np.roll(grain[g0:g0 + beam_h], s, axis=1) for s in range(-6, 7)], 0)
        wood = 118 + 6 * low[g0:g0 + beam_h] + 12 * streak
        tile[g0:g0 + beam_h] = np.stack([wood * 0.55, wood * 0.8, wood * 1.05], axis=2)
        tile[g0 + beam_h:] = 55 + 3 * grain[g0 + beam_h:, :, None]
        for k in range(5):  # graduation marks on the beam
            x = int(k * period / 5)
            tile[g0 + 2:g0 + beam_h // 2, x:x + max(1, int(ppm))] = (40, 60, 80)
    else:
        mid = int(scene["midline_y_px"])
        tile[:] = (30 + 6 * low + 3 * grain)[..., None]
        for sgn in (-1, 1):  # corridor walls seen through the glass
            y = mid + sgn * int(30 * ppm)
            tile[min(y, y + sgn * 8 * int(ppm)):max(y, y + sgn * 8 * int(ppm))] = (95, 95, 100)
        for _ in range(3):  # smudges on the glass
            c = (int(rng.uniform(20 * ppm, tile_w - 20 * ppm)), int(rng.uniform(0, height)))
            cv2.circle(tile, c, int(rng.uniform(3, 9) * ppm), (45, 45, 48), -1, cv2.LINE_AA)
    tile = np.clip(tile, 0, 255).astype(np.uint8)
    reps = int(np.ceil((width + period) / tile_w)) + 1
    return np.tile(tile, (1, reps, 1))[:, : width + period], period
