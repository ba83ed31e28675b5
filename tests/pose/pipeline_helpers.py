"""Tiny synthetic DeepLabCut-style project for the pose-pipeline tests: bright blobs at known
positions on a dark background (one blob per body part, each a different size)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

BODYPARTS = ["left_spot", "right_spot", "centre"]


def make_blob_project(root: Path, n_frames: int = 12, size_px: int = 64, seed: int = 0,
                      nan_frame: int | None = None) -> tuple[Path, np.ndarray]:
    """Write ``root/config.yaml`` and ``labeled-data/vid/CollectedData_test.h5`` + PNGs.

    Returns the project folder and the true keypoints ``(n_frames, 3, 2)``.
    """
    import pose.io
    from pose.dataset import from_numpy

    rng = np.random.default_rng(seed)
    folder = root / "labeled-data" / "vid"
    folder.mkdir(parents=True)
    kps = rng.uniform(10, size_px - 11, (n_frames, len(BODYPARTS), 2))
    images = []
    for i in range(n_frames):
        img = np.full((size_px, size_px, 3), 20, np.uint8)
        for j, (x, y) in enumerate(kps[i]):
            # anti-aliased blob centred at a sub-pixel position; channel j brighter
            yy, xx = np.mgrid[0:size_px, 0:size_px]
            blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * (1.5 + j) ** 2))
            img[..., j] = np.maximum(img[..., j], (235 * blob).astype(np.uint8))
        name = f"labeled-data/vid/img{i:04d}.png"
        cv2.imwrite(str(root / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        images.append(name)
    labels = kps.copy()
    if nan_frame is not None:
        labels[nan_frame, 2] = np.nan
    ds = from_numpy(labels.transpose(0, 2, 1), keypoints=BODYPARTS, individuals=["individual_0"])
    ds = ds.assign_coords(image=("time", images))
    ds.attrs["scorer"] = "test"
    pose.io.save(ds, folder / "CollectedData_test.h5")
    cfg = {"Task": "blobs", "scorer": "test", "bodyparts": BODYPARTS, "skeleton": [["left_spot", "centre"]],
           "TrainingFraction": [0.75], "pcutoff": 0.1, "top_view": True}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    return root, kps


def make_random_model(model_dir: Path, n_keypoints: int = 3, seed: int = 0,
                      anchor_sigma_px: float | None = None) -> Path:
    """A model folder holding a random-initialised small network (no training): enough to
    compare inference code paths with each other. ``anchor_sigma_px``: with an anchor
    channel (random, non-zero weights). Returns the folder."""
    import torch

    from pose.pipeline.model import PoseNet
    from pose.pipeline.modeldir import ModelInfo

    torch.manual_seed(seed)
    names = BODYPARTS[:n_keypoints] if n_keypoints <= len(BODYPARTS) else [f"kp{i}" for i in range(n_keypoints)]
    net = PoseNet(len(names), backbone="efficientnet_lite0", stride=8, neck_channels=16, pretrained=False,
                  anchor_sigma_px=anchor_sigma_px)
    if anchor_sigma_px:
        with torch.no_grad():
            stem = net.backbone._conv_stem.weight
            stem[:, 3] = torch.randn_like(stem[:, 3]) * stem[:, :3].std()
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), model_dir / "weights.pt")
    ModelInfo(backbone="efficientnet_lite0", stride=8, neck_channels=16, names=names, bodyparts=names,
              individuals=["individual_0"], anchor_sigma_px=anchor_sigma_px).save(model_dir)
    return model_dir


def write_video(path: Path, frames: np.ndarray, fps: float = 25.0) -> Path:
    """Write RGB uint8 frames ``(T, H, W, 3)`` to a lossless-enough MJPG ``.avi`` with OpenCV."""
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
