"""The virtual mouse in 3D: the open-field session seen by 2-4 calibrated cameras, with exact truth.

- :func:`lift_to_3d`: the open-field simulation (:mod:`pose.synthetic.openfield`) in world
  millimetres, with a height per keypoint; rearing raises the head, neck and forepaws.
  World: x right along the arena, y across it (right-handed), z up, origin at an arena corner.
- :func:`simulate_gait_3d`: the gait virtual mouse (walk or trot, exact step events) in
  world mm, paws lifting in swing.
- :func:`make_rig`: cameras around the arena looking at its centre from above, with known
  intrinsics, radial/tangential distortion and extrinsics.
- :func:`project_poses`: each camera's 2D pose = projected truth + Gaussian noise (px).
- :func:`render_board_views`: images of a checkerboard or ChArUco board in random poses
  over the arena, rendered exactly through each camera's distortion (per-pixel ray-plane
  intersection and ``cv2.remap`` of a drawn board), for calibration from images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from pose.dataset import append_history, from_numpy
from pose.synthetic.gait import GaitTruth, simulate_gait
from pose.synthetic.openfield import KEYPOINTS, OpenFieldTruth, open_field_step_events
from pose.threed.board import Board, board_image_offset_mm, draw_board
from pose.threed.cameras import Camera, rodrigues, rotation_vector

# Height above the floor (mm) of each keypoint of a mouse on all fours, and the extra height
# at a full rear (rear = 1).
HEIGHT_MM = {"snout": 14.0, "left_ear": 24.0, "right_ear": 24.0, "neck": 22.0, "body_center": 28.0,
             "tail_base": 16.0, "tail_tip": 2.0, "left_forepaw": 0.0, "right_forepaw": 0.0,
             "left_hindpaw": 0.0, "right_hindpaw": 0.0}
REAR_RISE_MM = {"snout": 62.0, "left_ear": 55.0, "right_ear": 55.0, "neck": 48.0, "body_center": 22.0,
                "tail_base": 0.0, "tail_tip": 0.0, "left_forepaw": 40.0, "right_forepaw": 40.0,
                "left_hindpaw": 0.0, "right_hindpaw": 0.0}


def lift_to_3d(truth: OpenFieldTruth) -> xr.Dataset:
    """The session's keypoints in world mm ``(time, space = x y z, keypoint, individual)``.

    Paws lift by up to 6 mm during swing (from the step phase); rearing raises the front
    of the body (:data:`REAR_RISE_MM`).
    """
    ds = truth.pose
    ppm = float(truth.arena["px_per_mm"])
    x0, y0 = truth.arena["bounds_px"][:2]
    size = float(truth.arena["size_mm"])
    pos = ds["position"].values[..., 0]  # (T, 2, K)
    x_mm = (pos[:, 0] - x0) / ppm
    y_mm = size - (pos[:, 1] - y0) / ppm  # image y runs down: flip for a right-handed world
    rear = np.asarray(truth.posture.get("rear", np.zeros(len(x_mm))))[:, None]
    base = np.array([HEIGHT_MM[k] for k in KEYPOINTS])[None]
    rise = np.array([REAR_RISE_MM[k] for k in KEYPOINTS])[None]
    z = base + rear * rise
    phase = np.asarray(truth.posture.get("step_phase", np.zeros(len(x_mm))))
    for i, k in enumerate(KEYPOINTS):
        if k.endswith("paw"):
            offset = 0.5 if k in ("right_forepaw", "left_hindpaw") else 0.0
            p = (phase + offset) % 1.0
            swing = np.clip((p - 0.6) / 0.4, 0, 1)
            lift = 6.0 * np.sin(np.pi * swing) * (1 - rear[:, 0] * (k.endswith("forepaw")))
            z[:, i] += lift
    position = np.stack([x_mm, y_mm, z], axis=1)[..., None]
    out = from_numpy(position, np.ones((len(x_mm), len(KEYPOINTS), 1)), keypoints=list(KEYPOINTS),
                     individuals=["mouse"], fps=ds.attrs["fps"], source_software="ethopose.synthetic")
    out.attrs["length_unit"] = "mm"
    return append_history(out, "lift_to_3d", {"px_per_mm": ppm, "arena_size_mm": size})


def simulate_gait_3d(seconds: float = 2.0, fps: float = 100.0, seed: int = 0, *, gait: str = "walk",
                     speed_mm_s: float = 150.0, stride_length_mm: float = 60.0, duty_factor: float | None = None,
                     start_mm: tuple[float, float] = (40.0, 200.0)) -> tuple[xr.Dataset, GaitTruth]:
    """The gait virtual mouse (:func:`pose.synthetic.gait.simulate_gait`) in world mm (z up).

    x runs along the walk, y to the mouse's left, z is the height above the floor (z = 0):
    the side view gives the heights (paws lift in swing), the bottom view the lateral
    positions, both from the same seed (same step events). The body centre starts at
    ``start_mm`` (x, y): the default walk stays inside :func:`make_rig`'s 400 mm arena.

    Returns
    -------
    points3d, truth
        The 3D pose (mm, fps) and the bottom view's :class:`~pose.synthetic.gait.GaitTruth`
        (exact events, stride length, duty factor, base of support).
    """
    kw = dict(gait=gait, speed_mm_s=speed_mm_s, stride_length_mm=stride_length_mm, duty_factor=duty_factor)
    side = simulate_gait(seconds, fps, seed, view="side", **kw)  # type: ignore[arg-type]
    bottom = simulate_gait(seconds, fps, seed, view="bottom", **kw)  # type: ignore[arg-type]
    keys = list(bottom.pose["keypoint"].values)
    ppm = bottom.scene["px_per_mm"]
    b = bottom.pose["position"].values[..., 0]  # (T, 2, K) px
    s = side.pose["position"].sel(keypoint=keys).values[..., 0]
    x0 = b[0, 0, keys.index("body_center")]
    x = start_mm[0] + (b[:, 0] - x0) / ppm
    y = start_mm[1] - (b[:, 1] - bottom.scene["midline_y_px"]) / ppm  # the mouse's right is +y in the bottom view
    z = (side.scene["ground_y_px"] - s[:, 1]) / ppm
    out = from_numpy(np.stack([x, y, z], axis=1)[..., None], np.ones((len(x), len(keys), 1)), keypoints=keys,
                     individuals=["mouse"], fps=fps, source_software="ethopose.synthetic")
    out["position"].attrs["units"] = "mm"
    out.attrs["length_unit"] = "mm"
    params = {"seconds": seconds, "fps": fps, "seed": seed, **kw, "start_mm": list(start_mm)}
    return append_history(out, "simulate_gait_3d", params), bottom


def look_at(centre: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera ``(rvec, tvec)`` of a camera at ``centre`` looking at ``target`` (z up)."""
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.stack([x, y, z])
    return rotation_vector(r), -r @ centre


def make_rig(n_cameras: int = 3, *, arena_size_mm: float = 400.0, image_size_px: tuple[int, int] = (800, 600),
             distance_mm: float = 750.0, elevation_deg: float = 50.0, seed: int = 0) -> list[Camera]:
    """Cameras evenly around the arena, ``elevation_deg`` above it, all seeing the whole floor.

    Each camera gets its own focal length (fits the arena), principal-point offset and
    distortion (k1 -0.05..-0.2, small k2, p1, p2), drawn from ``seed``.
    """
    if not 2 <= n_cameras <= 8:
        raise ValueError(f"n_cameras must be 2-8, got {n_cameras}")
    rng = np.random.default_rng(seed)
    target = np.array([arena_size_mm / 2, arena_size_mm / 2, 20.0])
    w, h = image_size_px
    cams = []
    for i in range(n_cameras):
        az = 2 * np.pi * i / n_cameras + rng.uniform(-0.2, 0.2) + 0.3
        el = np.deg2rad(elevation_deg + rng.uniform(-8, 8))
        d = distance_mm * rng.uniform(0.9, 1.1)
        centre = target + d * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        rvec, tvec = look_at(centre, target)
        f = 0.8 * min(w, h) * d / (arena_size_mm * 1.15)  # the arena's diagonal fills ~80 %
        f = f * rng.uniform(0.97, 1.03)
        k = np.array([[f, 0, (w - 1) / 2 + rng.uniform(-15, 15)], [0, f * rng.uniform(0.998, 1.002),
                      (h - 1) / 2 + rng.uniform(-15, 15)], [0, 0, 1]])
        dist = np.array([rng.uniform(-0.2, -0.05), rng.uniform(0.0, 0.05), rng.uniform(-1e-3, 1e-3),
                         rng.uniform(-1e-3, 1e-3), 0.0])
        cams.append(Camera(name=f"cam{i}", size=(w, h), matrix=k, distortions=dist, rotation=rvec,
                           translation=tvec))
    return cams


def project_poses(points3d: xr.Dataset, cameras: list[Camera], *, noise_px: float = 1.0, seed: int = 0
                  ) -> dict[str, xr.Dataset]:
    """Each camera's 2D pose (px): the truth projected, plus Gaussian noise of ``noise_px`` per axis.

    Points outside the image are NaN. Confidence is 1 where seen.
    """
    rng = np.random.default_rng(seed)
    pts = points3d["position"].transpose("time", "keypoint", "individual", "space").values
    out = {}
    for cam in cameras:
        uv = cam.project(pts) + rng.normal(0, noise_px, pts.shape[:-1] + (2,))
        w, h = cam.size
        inside = (uv[..., 0] >= 0) & (uv[..., 0] <= w - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= h - 1)
        uv[~inside] = np.nan
        ds = from_numpy(uv.transpose(0, 3, 1, 2), np.where(inside, 1.0, np.nan),
                        keypoints=list(points3d.keypoint.values), individuals=list(points3d.individual.values),
                        fps=points3d.attrs.get("fps"), source_software="ethopose.synthetic",
                        source_file=f"{cam.name}.nc")
        out[cam.name] = append_history(ds, "project_poses", {"camera": cam.name, "noise_px": noise_px})
    return out


@dataclass
class BoardViews:
    """Rendered board images. ``images[camera][key]``: grey uint8 or None where the board is not
    wholly visible; ``poses[key]``: board-to-world ``(rvec, tvec)``."""

    images: dict[str, dict[str, np.ndarray | None]]
    poses: dict[str, tuple[np.ndarray, np.ndarray]]


def _random_board_pose(board: Board, rng: np.random.Generator, arena_size_mm: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    obj = board.object_points()
    centre_board = (obj.min(0) + obj.max(0)) / 2
    tilt = rng.uniform(0, np.deg2rad(45))
    tilt_dir = rng.uniform(0, 2 * np.pi)
    spin = rng.uniform(0, 2 * np.pi)
    # printed face up: the board's z axis (OpenCV: into the board) points down
    r = (rodrigues(np.array([np.cos(tilt_dir), np.sin(tilt_dir), 0.0]) * tilt)
         @ rodrigues(np.array([0, 0, spin])) @ rodrigues(np.array([np.pi, 0, 0])))
    centre = np.array([arena_size_mm / 2, arena_size_mm / 2, 0.0]) + [rng.uniform(-130, 130), rng.uniform(-130, 130),
                                                                        rng.uniform(30, 150)]
    return rotation_vector(r), centre - r @ centre_board


def _render(cam: Camera, board: Board, board_img: np.ndarray, px_per_mm: float, offset_mm: float,
            rvec: np.ndarray, tvec: np.ndarray, rays: np.ndarray) -> np.ndarray:
    import cv2

    r_cb = cam.rotation_matrix @ rodrigues(rvec)  # board -> camera
    t_cb = cam.rotation_matrix @ tvec + cam.translation
    n, c = r_cb[:, 2], t_cb  # plane normal and a point, camera frame
    ray = np.concatenate([rays, np.ones(rays.shape[:-1] + (1,))], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (n @ c) / (ray @ n)
    hit = ray * s[..., None]
    local = (hit - c) @ r_cb  # board coordinates (mm)
    map_x = ((local[..., 0] + offset_mm) * px_per_mm - 0.5).astype(np.float32)
    map_y = ((local[..., 1] + offset_mm) * px_per_mm - 0.5).astype(np.float32)
    map_x[~(s > 0)] = -1e6
    img = cv2.remap(board_img, map_x, map_y, cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=110)
    return img


def render_board_views(board: Board, cameras: list[Camera], *, n_views: int = 15, arena_size_mm: float = 400.0,
                       noise_grey: float = 2.0, seed: int = 0) -> BoardViews:
    """Images of the board in ``n_views`` random poses, as each camera sees them (with distortion).

    A view where the board is not wholly inside a camera's image (or faces away) is None
    for that camera. Grey background, mild blur and sensor noise.
    """
    import cv2

    rng = np.random.default_rng(seed)
    px_per_mm = 8.0
    margin = board.square_length
    board_img = draw_board(board, px_per_mm, margin_mm=margin)
    offset = board_image_offset_mm(board, margin)
    rays = {}
    for cam in cameras:
        w, h = cam.size
        grid = np.stack(np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float)), axis=-1)
        rays[cam.name] = cam.undistort(grid)
    obj = board.object_points()
    images: dict[str, dict[str, np.ndarray | None]] = {c.name: {} for c in cameras}
    poses = {}
    for v in range(n_views):
        key = f"{v:03d}"
        rvec, tvec = _random_board_pose(board, rng, arena_size_mm)
        poses[key] = (rvec, tvec)
        corners_w = obj @ rodrigues(rvec).T + tvec
        normal = rodrigues(rvec)[:, 2]
        for cam in cameras:
            uv = cam.project(corners_w)
            w, h = cam.size
            facing = float(normal @ (cam.centre - corners_w.mean(0))) < 0
            m = 3 * board.square_length * cam.matrix[0, 0] / np.linalg.norm(cam.centre - corners_w.mean(0))
            inside = np.isfinite(uv).all() and (uv[:, 0].min() > m) and (uv[:, 1].min() > m) \
                and (uv[:, 0].max() < w - 1 - m) and (uv[:, 1].max() < h - 1 - m)
            if not (facing and inside):
                images[cam.name][key] = None
                continue
            img = _render(cam, board, board_img, px_per_mm, offset, rvec, tvec, rays[cam.name])
            img = cv2.GaussianBlur(img, (0, 0), 0.7)
            img = np.clip(img + rng.normal(0, noise_grey, img.shape), 0, 255).astype(np.uint8)
            images[cam.name][key] = img
    return BoardViews(images, poses)


def open_field_true_cycles(sim, truth: xr.Dataset) -> pd.DataFrame:
    """True step cycles of an open-field session, toe-off to next toe-off, for checking gait.

    Parameters
    ----------
    sim
        The :func:`pose.synthetic.openfield.simulate_open_field` result (its step events).
    truth
        Its exact pose in mm (:func:`lift_to_3d`): strides are measured on the floor (x, y).

    Returns
    -------
    pandas.DataFrame
        Columns ``paw``, ``t_off``, ``t_off2`` (s), ``stride`` (mm between the two toe-offs) and
        ``duty`` (stance share of the cycle).
    """
    t = truth.time.values
    rows = []
    for paw, g in open_field_step_events(sim).groupby("paw"):
        to, td = g["toe_off_s"].to_numpy(), g["touch_down_s"].to_numpy()
        xy = truth.position.sel(keypoint=paw).isel(individual=0).values[:, :2]
        for k in range(len(to) - 1):
            if np.isfinite(to[k]) and np.isfinite(to[k + 1]) and to[k] < td[k + 1] < to[k + 1]:
                d = [np.interp(to[k + 1], t, xy[:, i]) - np.interp(to[k], t, xy[:, i]) for i in (0, 1)]
                rows.append({"paw": paw, "t_off": to[k], "t_off2": to[k + 1], "stride": float(np.hypot(*d)),
                             "duty": (to[k + 1] - td[k + 1]) / (to[k + 1] - to[k])})
    return pd.DataFrame(rows, columns=["paw", "t_off", "t_off2", "stride", "duty"])


def match_true_cycles(detected: pd.DataFrame, true: pd.DataFrame, *, tol_s: float = 0.05) -> np.ndarray:
    """Detected step cycles (``features.gait.detect_step_cycles`` rows) matched to true ones
    (:func:`open_field_true_cycles`): both toe-offs within ``tol_s``.

    Returns
    -------
    numpy.ndarray
        ``(n_matched, 4)``: detected stride, true stride, detected duty factor, true duty factor.
    """
    matched = []
    for r in detected.itertuples():
        c = true[true["paw"] == r.paw]
        if c.empty:
            continue
        j = int(np.argmin(np.abs(c["t_off"].to_numpy() - r.swing_start_s)))
        if abs(c["t_off"].iloc[j] - r.swing_start_s) < tol_s and abs(c["t_off2"].iloc[j] - r.stance_end_s) < tol_s:
            matched.append((r.stride_length, c["stride"].iloc[j], r.duty_factor, c["duty"].iloc[j]))
    return np.array(matched, float).reshape(-1, 4)
