"""Image and device helpers shared by training, evaluation, export and inference (torch-free
at import).

- :func:`read_image` / :func:`resize`: RGB uint8 images at the network's input scale,
- :func:`to_scaled` / :func:`from_scaled`: original-image pixels <-> network pixels,
- :func:`network_batch`: frames -> the network's float32 ``(B, 3, H, W)`` input,
- :func:`resolve_device`: ``"auto"``/``"cpu"``/``"cuda"`` -> a ``torch.device`` (imports
  torch when called).

Pixel convention: pixel centres at integer coordinates, so that scaling by ``s`` maps
``x`` to ``(x + 0.5) * s - 0.5``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

# the network's input is padded to multiples of this (the backbone's largest stride)
INPUT_MULTIPLE = 32


def read_image(path: str | Path, scale: float = 1.0) -> np.ndarray:
    """Read an image as RGB uint8 ``(H, W, 3)``, resized by ``scale``; the error names the file."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return resize(img, scale)


def resize(img: np.ndarray, scale: float) -> np.ndarray:
    """``img`` resized by ``scale`` (area interpolation when shrinking, bilinear otherwise)."""
    if scale == 1.0:
        return img
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def to_scaled(xy: np.ndarray, scale: float) -> np.ndarray:
    """Original-image pixels to network pixels (pixel centres at integers)."""
    return (xy + 0.5) * scale - 0.5


def from_scaled(xy: np.ndarray, scale: float) -> np.ndarray:
    """Network pixels back to original-image pixels."""
    return (xy + 0.5) / scale - 0.5


def network_batch(frames: Sequence[np.ndarray] | np.ndarray, scale: float) -> np.ndarray:
    """RGB uint8 frames ``(B, H, W, 3)`` at the original resolution -> the network's input:
    float32 ``(B, 3, H', W')``, 0-255, resized by ``scale`` and padded (bottom/right, with
    :data:`pose.pipeline.augment.FILL_RGB`, as in training) to multiples of
    :data:`INPUT_MULTIPLE`. All frames must have the same size."""
    from pose.pipeline.augment import pad_to_multiple

    batch = np.stack([pad_to_multiple(resize(f, scale), INPUT_MULTIPLE) for f in frames])
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` (CUDA when torch sees one, else CPU), ``"cpu"`` or ``"cuda"`` -> torch device.

    Raises
    ------
    RuntimeError
        ``"cuda"`` asked for but torch sees no CUDA device.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA device")
    return torch.device(device)
