"""Pictures for the labelling page, without Streamlit: body-part colours, zoom views, overlays.

:func:`compute_view` gives the crop shown at a zoom (the clickable frame itself is the
component in :mod:`dashboard.labelling.canvas`); :func:`draw_skeleton` renders labels and
skeleton onto a frame (the "check labels" view); :func:`keypoint_colour` is the colour key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (128, 0, 0), (170, 255, 195),
]


def keypoint_colour(k: int) -> tuple[int, int, int]:
    """RGB colour of body part number ``k`` (stable across views)."""
    return PALETTE[k % len(PALETTE)]


@dataclass(frozen=True)
class View:
    """The part of the frame shown: pixel bounds ``[x0, x1) x [y0, y1)``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def compute_view(width: int, height: int, zoom: float, center_xy: tuple[float, float] | None) -> View:
    """Crop of a ``width x height`` frame at magnification ``zoom`` around ``center_xy``."""
    if zoom < 1:
        raise ValueError(f"zoom must be >= 1, got {zoom}")
    w, h = max(8, int(round(width / zoom))), max(8, int(round(height / zoom)))
    w, h = min(w, width), min(h, height)
    cx, cy = center_xy if center_xy is not None and np.all(np.isfinite(center_xy)) else (width / 2, height / 2)
    x0 = int(np.clip(round(cx - w / 2), 0, width - w))
    y0 = int(np.clip(round(cy - h / 2), 0, height - h))
    return View(x0, y0, x0 + w, y0 + h)


def draw_skeleton(
    image: np.ndarray,
    xy: np.ndarray,
    keypoints: Sequence[str],
    skeleton: Sequence[tuple[str, str]] = (),
    *,
    radius_px: int = 4,
) -> np.ndarray:
    """Draw labelled points (one colour per body part) and skeleton lines on a copy of ``image``."""
    out = image.copy()
    names = list(keypoints)
    for a, b in skeleton:
        if a in names and b in names:
            pa, pb = xy[names.index(a)], xy[names.index(b)]
            if np.isfinite(pa).all() and np.isfinite(pb).all():
                cv2.line(out, tuple(int(round(v)) for v in pa), tuple(int(round(v)) for v in pb),
                         (255, 255, 255), 1, cv2.LINE_AA)
    for k, p in enumerate(xy):
        if np.isfinite(p).all():
            centre = tuple(int(round(v)) for v in p)
            cv2.circle(out, centre, radius_px, keypoint_colour(k), -1, cv2.LINE_AA)
            cv2.circle(out, centre, radius_px, (0, 0, 0), 1, cv2.LINE_AA)
    return out
