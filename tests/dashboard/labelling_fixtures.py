"""A tiny DeepLabCut-style project for the labelling tests (a helper, not a test module)."""

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
