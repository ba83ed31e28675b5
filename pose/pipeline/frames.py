"""Pick frames of a video to label, as DeepLabCut does (torch-free).

``uniform``: evenly spaced frames between ``start`` and ``stop`` (fractions of the video).
``kmeans``: frames are downsampled (30 px wide, grey), clustered with mini-batch k-means into
``n_frames`` clusters, and the frame nearest each cluster centre is kept, so the selection
covers the video's different appearances (postures, positions).

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
    method: Literal["uniform", "kmeans"] = "kmeans",
    start: float = 0.0,
    stop: float = 1.0,
    seed: int = 0,
    max_candidates: int = 1000,
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
    """
    if not 0.0 <= start < stop <= 1.0:
        raise ValueError(f"need 0 <= start < stop <= 1, got start={start}, stop={stop}")
    if method not in ("uniform", "kmeans"):
        raise ValueError(f"method must be 'uniform' or 'kmeans', got {method!r}")
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
    from sklearn.cluster import MiniBatchKMeans

    if len(candidates) <= n_frames:
        return candidates
    x = np.array(feats)
    x -= x.mean(axis=0)
    km = MiniBatchKMeans(n_clusters=n_frames, random_state=seed, n_init=3, batch_size=256).fit(x)
    picked = []
    for c in range(n_frames):
        members = np.flatnonzero(km.labels_ == c)
        if members.size:
            d = ((x[members] - km.cluster_centers_[c]) ** 2).sum(axis=1)
            picked.append(candidates[members[d.argmin()]])
    return sorted(set(picked))


def extract_frames(
    video: str | Path,
    out_dir: str | Path,
    n_frames: int,
    *,
    method: Literal["uniform", "kmeans"] = "kmeans",
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
