"""Pick frames of a video to label, as DeepLabCut does (torch-free).

``uniform``: evenly spaced frames between ``start`` and ``stop`` (fractions of the video).
``kmeans``: frames are downsampled (30 px wide, grey), clustered with mini-batch k-means into
``n_frames`` clusters, and the frame nearest each cluster centre is kept, so the selection
covers the video's different appearances (postures, positions).
``posture``: stratified over motion and the animal's own shape rather than the whole frame
(:func:`posture_descriptors`): the frames where the animal's body is still get at least
``still_share`` of the labels, and each stratum (still, moving) is clustered with k-means on
an egocentric, position- and heading-free descriptor of the animal. DeepLabCut's k-means on
whole frames groups frames mostly by where the animal is and picks still postures in
proportion to their time (grooming and freezing, 10-20 % of a session, got 1-2 of 60
frames on the virtual mouse); a pose model then misplaces the limbs exactly there.

Videos are read with :class:`pose.video.VideoReader` (frame-accurate: frame ``i`` here is
frame ``i`` of ``ethopose pose analyze`` and of the pose Dataset's ``frame_index``;
OpenCV's seeking is not exact for every codec).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from pose.atomic import atomic_path
from pose.video import VideoReader

log = logging.getLogger(__name__)


def select_frames(
    video: str | Path,
    n_frames: int,
    *,
    method: Literal["uniform", "kmeans", "posture"] = "kmeans",
    start: float = 0.0,
    stop: float = 1.0,
    seed: int = 0,
    max_candidates: int = 1000,
    still_share: float = 0.5,
) -> list[int]:
    """Frame indices to label (sorted).

    Parameters
    ----------
    video
        Video file.
    n_frames
        How many frames to pick.
    start, stop
        Part of the video to pick from, as fractions of its length.
    max_candidates
        For k-means, at most this many evenly spaced frames are read and clustered.
    still_share
        For ``posture``: at least this share of the frames comes from still-body frames
        (or their share of the video, when larger).
    """
    if not 0.0 <= start < stop <= 1.0:
        raise ValueError(f"need 0 <= start < stop <= 1, got start={start}, stop={stop}")
    if method not in ("uniform", "kmeans", "posture"):
        raise ValueError(f"method must be 'uniform', 'kmeans' or 'posture', got {method!r}")
    if method == "posture":
        return select_posture_frames(video, n_frames, start=start, stop=stop, seed=seed,
                                     still_share=still_share, max_candidates=max_candidates)
    with VideoReader(video) as reader:
        total = reader.n_frames
        first, last = int(start * total), max(int(start * total) + 1, int(stop * total))
        n_frames = min(n_frames, last - first)
        if method == "uniform":
            return sorted({int(round(x)) for x in np.linspace(first, last - 1, n_frames)})
        candidates = list(range(first, last, max(1, (last - first) // max_candidates)))
        feats = []
        for i in candidates:  # increasing order: decoded forward, no seeking
            grey = cv2.cvtColor(reader.read(i), cv2.COLOR_RGB2GRAY)
            h, w = grey.shape
            small = cv2.resize(grey, (30, max(1, round(30 * h / w))), interpolation=cv2.INTER_AREA)
            feats.append(small.ravel().astype(np.float32))
    if len(candidates) <= n_frames:
        return candidates
    x = np.array(feats)
    x -= x.mean(axis=0)
    return sorted({candidates[j] for j in _kmeans_nearest(x, n_frames, seed)})


def _kmeans_nearest(x: np.ndarray, k: int, seed: int, *, fill: bool = False) -> list[int]:
    """Rows of ``x`` nearest each of ``k`` mini-batch k-means centres (all rows when k >= n).

    ``fill``: where identical rows leave fewer than ``k`` distinct picks, add evenly spaced
    rows not yet picked, so that exactly ``k`` come back.
    """
    from sklearn.cluster import MiniBatchKMeans

    if k <= 0:
        return []
    if len(x) <= k:
        return list(range(len(x)))
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=256).fit(x)
    picked = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if members.size:
            picked.append(int(members[((x[members] - km.cluster_centers_[c]) ** 2).sum(axis=1).argmin()]))
    picked = sorted(set(picked))
    if fill and len(picked) < k:
        rest = np.setdiff1d(np.arange(len(x)), picked)
        picked += [int(rest[j]) for j in np.linspace(0, len(rest) - 1, k - len(picked)).round().astype(int)]
    return picked


def posture_descriptors(frames_grey: np.ndarray, *, fps: float, lag_s: float = 0.1,
                        crop_cells: int = 16) -> dict[str, np.ndarray]:
    """Per-frame descriptors of the animal itself, free of its position and heading.

    The animal is the largest connected region that differs from the background (the
    per-pixel median of the frames; Otsu threshold on the difference). From it: its area
    and elongation (sqrt of the ratio of the second-moment eigenvalues), its centroid speed
    in body lengths per second over ``+-lag_s`` (a body length is the square root of the
    median area), the mean absolute frame difference inside it over ``+-lag_s`` (motion
    energy, grey levels), and a ``crop_cells`` x ``crop_cells`` crop of the difference
    image centred on the centroid and rotated to the body's long axis, folded to be the
    same under a half turn (sum and absolute difference with its 180-degree rotation).

    Parameters
    ----------
    frames_grey
        ``(time, height, width)`` uint8 frames, consecutive, at ``fps``.

    Returns
    -------
    dict
        ``crop (time, 2 * crop_cells**2)``, ``area``, ``elongation``, ``speed_bl_s``,
        ``motion`` (each ``(time,)``, NaN where no animal was found), ``body_length_px``.
    """
    f = np.asarray(frames_grey)
    n = len(f)
    bg = np.median(f[:: max(1, n // 100)], axis=0).astype(np.float32)
    diff = np.abs(f.astype(np.float32) - bg)
    sample = np.clip(diff[:: max(1, n // 50)], 0, 255).astype(np.uint8).reshape(-1, 1)
    thr, _ = cv2.threshold(sample, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    area, elong, angle = (np.full(n, np.nan) for _ in range(3))
    cent = np.full((n, 2), np.nan)
    masks: list[np.ndarray | None] = []
    for i in range(n):
        count, lab, stats, _ = cv2.connectedComponentsWithStats((diff[i] > thr).astype(np.uint8))
        if count < 2:
            masks.append(None)
            continue
        mask = (lab == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
        mo = cv2.moments(mask, True)
        a, b, c = mo["mu20"] / mo["m00"], mo["mu02"] / mo["m00"], mo["mu11"] / mo["m00"]
        root = np.sqrt(4 * c**2 + (a - b) ** 2) / 2
        area[i], elong[i] = mo["m00"], np.sqrt(((a + b) / 2 + root) / max((a + b) / 2 - root, 1e-6))
        angle[i] = 0.5 * np.degrees(np.arctan2(2 * c, a - b))
        cent[i] = mo["m10"] / mo["m00"], mo["m01"] / mo["m00"]
        masks.append(mask)
    length = float(np.sqrt(np.nanmedian(area))) if np.isfinite(area).any() else float("nan")
    side = max(crop_cells, int(round(3 * length))) if np.isfinite(length) else crop_cells
    crop = np.zeros((n, 2 * crop_cells**2), dtype=np.float32)
    lag = max(1, int(round(lag_s * fps)))
    speed, motion = np.full(n, np.nan), np.full(n, np.nan)
    speed[lag:n - lag] = np.hypot(*(cent[2 * lag:] - cent[:n - 2 * lag]).T) * fps / (2 * lag) / length
    kernel = np.ones((5, 5), np.uint8)
    for i, mask in enumerate(masks):
        if mask is None:
            continue
        m = cv2.getRotationMatrix2D((float(cent[i, 0]), float(cent[i, 1])), float(angle[i]), 1.0)
        m[:, 2] += [side / 2 - cent[i, 0], side / 2 - cent[i, 1]]
        c = cv2.resize(cv2.warpAffine(diff[i], m, (side, side)), (crop_cells, crop_cells),
                       interpolation=cv2.INTER_AREA)
        crop[i] = np.concatenate([(c + c[::-1, ::-1]).ravel(), np.abs(c - c[::-1, ::-1]).ravel()])
        if lag <= i < n - lag:
            near = cv2.dilate(mask, kernel).astype(bool)
            motion[i] = np.abs(f[i + lag].astype(np.float32) - f[i - lag])[near].mean()
    return {"crop": crop, "area": area / length**2, "elongation": elong, "speed_bl_s": speed,
            "motion": motion, "body_length_px": np.asarray(length)}


def select_posture_frames(
    video: str | Path, n_frames: int, *, start: float = 0.0, stop: float = 1.0, seed: int = 0,
    still_share: float = 0.5, still_speed_bl_s: float = 0.3, max_candidates: int = 3000, width_px: int = 320,
) -> list[int]:
    """Frames to label, stratified over body motion and clustered on the animal's posture.

    Consecutive frames (every frame, up to ``max_candidates``, else evenly spaced runs) are
    read at ``width_px`` wide, grey, and described by :func:`posture_descriptors`. Frames
    whose centroid moves slower than ``still_speed_bl_s`` body lengths per second are the
    still stratum; it gets ``max(still_share, its share of the frames)`` of ``n_frames``
    (at most all its frames), the moving stratum the rest. Within each, k-means (on the
    first 8 principal components of the egocentric crop, scaled to unit s.d. of the first,
    plus the z-scored area, elongation, log speed and log motion energy) picks the frame
    nearest each centre. Single-animal videos with a static camera and background.
    """
    from sklearn.decomposition import PCA

    if not 0.0 <= still_share <= 1.0:
        raise ValueError(f"still_share must be in [0, 1], got {still_share}")
    with VideoReader(video) as reader:
        total = reader.n_frames
        fps = reader.fps if np.isfinite(reader.fps) and reader.fps > 0 else 30.0
        first, last = int(start * total), max(int(start * total) + 1, int(stop * total))
        step = max(1, int(np.ceil((last - first) / max_candidates)))
        index = np.arange(first, last, step)
        grey = []
        for i in range(first, last):  # forward decode; keep every step-th frame
            rgb = reader.read(i)
            if (i - first) % step == 0:
                g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
                h, w = g.shape
                grey.append(cv2.resize(g, (width_px, max(1, round(width_px * h / w))),
                                       interpolation=cv2.INTER_AREA))
    n_frames = min(n_frames, len(index))
    d = posture_descriptors(np.stack(grey), fps=fps / step)
    found = np.isfinite(d["area"])
    if found.sum() < n_frames:  # no animal found in most frames: fall back to whole frames
        log.warning("posture frame selection: the animal was found in %d of %d frames; using k-means",
                    int(found.sum()), len(index))
        return select_frames(video, n_frames, method="kmeans", start=start, stop=stop, seed=seed)
    ok = np.flatnonzero(found)
    pcs = PCA(n_components=min(8, len(ok) - 1), random_state=seed).fit_transform(d["crop"][ok])
    pcs /= max(float(pcs[:, 0].std()), 1e-9)
    speed = d["speed_bl_s"][ok]
    known = np.flatnonzero(np.isfinite(speed))  # the ends (half the lag) take the nearest known speed
    speed = np.interp(np.arange(len(speed)), known, speed[known]) if known.size else np.zeros(len(speed))
    scalars = np.column_stack([d["area"][ok], d["elongation"][ok], np.log(speed + 1e-2),
                               np.log(np.nan_to_num(d["motion"][ok], nan=0.0) + 1.0)])
    scalars = (scalars - scalars.mean(axis=0)) / np.maximum(scalars.std(axis=0), 1e-9)
    x = np.column_stack([pcs, scalars])
    still = speed < still_speed_bl_s
    n_still = min(int(still.sum()), max(int(round(n_frames * still_share)),
                                        int(round(n_frames * still.mean()))))
    picked = []
    for members, k in ((np.flatnonzero(still), n_still), (np.flatnonzero(~still), n_frames - n_still)):
        picked += [int(index[ok[members[j]]]) for j in _kmeans_nearest(x[members], k, seed, fill=True)]
    log.info("posture frame selection: %d frames (%d from the %d still-body frames, < %.2g body "
             "lengths/s; %d from the %d moving ones)", len(set(picked)), n_still, int(still.sum()),
             still_speed_bl_s, n_frames - n_still, int((~still).sum()))
    return sorted(set(picked))


def extract_frames(
    video: str | Path,
    out_dir: str | Path,
    n_frames: int,
    *,
    method: Literal["uniform", "kmeans", "posture"] = "kmeans",
    start: float = 0.0,
    stop: float = 1.0,
    seed: int = 0,
) -> list[Path]:
    """Write the selected frames as PNG (``img<frame>.png``, zero-padded) to ``out_dir``."""
    frames = select_frames(video, n_frames, method=method, start=start, stop=stop, seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with VideoReader(video) as reader:
        digits = max(4, len(str(reader.n_frames)))
        for f in frames:
            path = out_dir / f"img{f:0{digits}d}.png"
            with atomic_path(path) as tmp:
                cv2.imwrite(str(tmp), cv2.cvtColor(reader.read(f), cv2.COLOR_RGB2BGR))
            written.append(path)
    return written


def render_labeled_video(
    video: str | Path,
    ds,
    out_path: str | Path,
    *,
    skeleton: list[list[str]] | None = None,
    pcutoff: float = 0.6,
) -> Path:
    """Draw a pose Dataset's keypoints (confidence >= ``pcutoff``) and skeleton over a video.

    Frames are matched by row order (the Dataset's rows are the video's frames from 0).
    """
    from pose.pipeline.augment import draw_keypoints

    kp_names = [str(k) for k in ds.coords["keypoint"].values]
    pos = ds["position"].values[:, :2]  # (t, 2, k, i)
    conf = ds["confidence"].values
    edges = [(kp_names.index(a), kp_names.index(b)) for a, b in (skeleton or [])
             if a in kp_names and b in kp_names]
    with VideoReader(video) as reader, atomic_path(out_path) as tmp:
        fps = reader.fps if np.isfinite(reader.fps) else 30.0
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (reader.width, reader.height))
        try:
            for first, batch in reader.iter_batches(32, stop=min(len(pos), reader.n_frames)):
                for t, rgb in enumerate(batch, start=first):
                    for i in range(pos.shape[3]):
                        xy = pos[t, :, :, i].T.copy()
                        xy[~(np.nan_to_num(conf[t, :, i], nan=1.0) >= pcutoff)] = np.nan
                        rgb = draw_keypoints(rgb, xy, radius=4, skeleton=edges)
                    writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return Path(out_path)
