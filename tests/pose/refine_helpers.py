"""Helpers for the refinement and labelling tests (not a test module): a tiny project."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

BODYPARTS = ["snout", "left_ear", "right_ear", "tail_base"]


def make_project(root: Path, *, n_images: int = 3, video: str = "vidA", size=(160, 120)) -> Path:
    """Write ``config.yaml`` and ``labeled-data/<video>/img000..png`` (grey gradients)."""
    project = root / "proj"
    folder = project / "labeled-data" / video
    folder.mkdir(parents=True)
    cfg = {
        "Task": "test",
        "scorer": "tester",
        "bodyparts": BODYPARTS,
        "skeleton": [["snout", "left_ear"], ["snout", "right_ear"], ["left_ear", "tail_base"]],
        "iteration": 0,
        "video_sets": {},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(cfg))
    w, h = size
    for i in range(n_images):
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
        img[..., 1] = 40 * i
        cv2.imwrite(str(folder / f"img{i:03d}.png"), img)
    return project


def make_predictions(n_frames: int = 600, n_bad: int = 30, seed: int = 0, fps: float = 30.0):
    """Smooth trajectories of 5 body parts with one-frame glitches on known frames.

    Returns ``(ds, bad_frames, error_px)``: the predictions Dataset, the sorted glitched
    frames and the per-frame largest error (px) against the clean trajectories. Glitches
    are 25-60 px and get a lowered confidence on half of them (as real mistakes often do).
    """
    from pose.dataset import from_numpy

    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)
    clean = np.zeros((n_frames, 2, 5, 1))
    for k in range(5):
        clean[:, 0, k, 0] = 160 + 90 * np.sin(t / 35 + k) + 4 * k
        clean[:, 1, k, 0] = 120 + 70 * np.cos(t / 50 + 0.5 * k)
    pos = clean + rng.normal(0, 0.7, clean.shape)
    conf = np.clip(rng.normal(0.93, 0.03, (n_frames, 5, 1)), 0, 1)
    bad = np.sort(rng.choice(np.arange(2, n_frames - 2), n_bad, replace=False))
    for i, b in enumerate(bad):
        k = rng.integers(5)
        angle = rng.uniform(0, 2 * np.pi)
        pos[b, :, k, 0] += rng.uniform(25, 60) * np.array([np.cos(angle), np.sin(angle)])
        if i % 2 == 0:
            conf[b, k, 0] = rng.uniform(0.05, 0.4)
    err = np.linalg.norm(pos - clean, axis=1).max(axis=(1, 2))
    ds = from_numpy(pos, conf, keypoints=BODYPARTS + ["body_center"], fps=fps)
    return ds, bad, err


def write_video(path: Path, n_frames: int, size=(64, 48), fps: float = 30.0) -> Path:
    """A small video whose frames differ (a moving bright square over three backgrounds)."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(n_frames):
        img = np.full((h, w, 3), (i * 3 // n_frames) * 80, np.uint8)
        x = int(5 + (w - 15) * (i % 50) / 50)
        img[10:20, x:x + 10] = 255
        writer.write(img)
    writer.release()
    return path
