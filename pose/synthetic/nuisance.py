"""Nuisances that make a synthetic video a real test: camera, lighting, blur, compression, clutter.

:class:`NuisanceConfig` is validated once (pydantic, unknown keys refused). The camera
(scale and rotation) is applied to the keypoints *before* drawing, so the truth stays exact;
lighting, noise and blur are applied to the drawn pixels; occluders are drawn over the mouse
and distractors into the background.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Level = Literal["none", "mild", "heavy"]


class NuisanceConfig(BaseModel):
    """What degrades the rendered video, and how much.

    Attributes
    ----------
    noise_sd
        Camera noise, standard deviation in grey levels (0-255).
    gradient_strength
        Lighting falls off by up to this fraction across the frame (vignette + tilt).
    flicker_amplitude
        Frame-to-frame relative brightness change (mains flicker + slow drift).
    exposure_fraction
        Fraction of the frame interval the shutter is open: motion blur length =
        speed * exposure_fraction / fps. 0 disables blur.
    crf
        H.264 constant rate factor of ``video.mp4`` (18 nearly lossless, 23 default,
        35 heavy artefacts).
    n_occluders
        Static objects drawn over the mouse (a cable, a bar).
    n_distractors
        Dark objects on the floor (pellets, a block) that look a little like a mouse.
    scale_jitter
        The camera zoom is drawn from ``1 +- scale_jitter``.
    rotation_deg
        The camera rotation is drawn from ``+- rotation_deg``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    noise_sd: float = Field(3.0, ge=0, le=40)
    gradient_strength: float = Field(0.2, ge=0, le=0.8)
    flicker_amplitude: float = Field(0.02, ge=0, le=0.3)
    exposure_fraction: float = Field(0.5, ge=0, le=1)
    crf: int = Field(23, ge=0, le=51)
    n_occluders: int = Field(1, ge=0, le=5)
    n_distractors: int = Field(2, ge=0, le=10)
    scale_jitter: float = Field(0.05, ge=0, le=0.3)
    rotation_deg: float = Field(4.0, ge=0, le=30)

    @classmethod
    def preset(cls, level: Level) -> NuisanceConfig:
        """``"none"`` (clean), ``"mild"`` (the default) or ``"heavy"``."""
        if level == "none":
            return cls(noise_sd=0, gradient_strength=0, flicker_amplitude=0,
                       exposure_fraction=0, crf=18, n_occluders=0, n_distractors=0,
                       scale_jitter=0, rotation_deg=0)
        if level == "mild":
            return cls()
        if level == "heavy":
            return cls(noise_sd=9, gradient_strength=0.45, flicker_amplitude=0.07,
                       exposure_fraction=1.0, crf=33, n_occluders=2, n_distractors=5,
                       scale_jitter=0.12, rotation_deg=10)
        raise ValueError(f"nuisance level must be 'none', 'mild' or 'heavy', got {level!r}")


def camera_transform(cfg: NuisanceConfig, rng: np.random.Generator, width: int, height: int
                     ) -> tuple[np.ndarray, float, float]:
    """A similarity transform about the image centre: (2x3 matrix, scale, angle in degrees)."""
    scale = 1.0 + rng.uniform(-cfg.scale_jitter, cfg.scale_jitter)
    angle = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg)
    m = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, scale)
    return m, float(scale), float(angle)


def apply_affine(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to points (..., 2) -> (..., 2)."""
    return points @ m[:, :2].T + m[:, 2]


def lighting_gain(cfg: NuisanceConfig, rng: np.random.Generator, width: int, height: int
                  ) -> np.ndarray:
    """Static multiplicative lighting map (H, W) float32 in (0, 1]: vignette plus a tilt."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = width * rng.uniform(0.35, 0.65), height * rng.uniform(0.35, 0.65)
    r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (0.25 * (width**2 + height**2))
    ang = rng.uniform(0, 2 * np.pi)
    tilt = (np.cos(ang) * (xx / width - 0.5) + np.sin(ang) * (yy / height - 0.5)) + 0.5
    falloff = 0.6 * r2 + 0.4 * np.clip(tilt, 0, 1)
    return (1.0 - cfg.gradient_strength * falloff / max(float(falloff.max()), 1e-6)).astype(
        np.float32
    )


def flicker_gains(cfg: NuisanceConfig, rng: np.random.Generator, n_frames: int, fps: float
                  ) -> np.ndarray:
    """Per-frame brightness gain: aliased mains flicker, random jitter and a slow drift."""
    t = np.arange(n_frames) / fps
    a = cfg.flicker_amplitude
    alias_hz = rng.uniform(0.5, 3.0)
    return (1.0 + 0.5 * a * np.sin(2 * np.pi * alias_hz * t + rng.uniform(0, 6.3))
            + 0.35 * a * rng.standard_normal(n_frames)
            + 0.5 * a * np.sin(2 * np.pi * t / 40.0 + rng.uniform(0, 6.3))).astype(np.float32)


class NoiseBank:
    """Pre-drawn camera noise frames (uint8 positive and negative parts), cycled cheaply."""

    def __init__(self, cfg: NuisanceConfig, rng: np.random.Generator, width: int, height: int,
                 n_bank: int = 12) -> None:
        self.enabled = cfg.noise_sd > 0
        self._pos: list[np.ndarray] = []
        self._neg: list[np.ndarray] = []
        if not self.enabled:
            return
        for _ in range(n_bank):
            # luminance noise plus a little colour noise, like a real sensor
            lum = rng.standard_normal((height, width, 1)).astype(np.float32) * cfg.noise_sd
            col = rng.standard_normal((height, width, 3)).astype(np.float32) * (cfg.noise_sd * 0.4)
            z = lum + col
            self._pos.append(np.clip(z, 0, 255).astype(np.uint8))
            self._neg.append(np.clip(-z, 0, 255).astype(np.uint8))
        self._rng = rng

    def apply(self, frame: np.ndarray) -> None:
        """Add one noise frame to ``frame`` in place (saturating)."""
        if not self.enabled:
            return
        i = int(self._rng.integers(len(self._pos)))
        cv2.add(frame, self._pos[i], dst=frame)
        cv2.subtract(frame, self._neg[i], dst=frame)


def motion_blur(roi: np.ndarray, velocity_px_per_frame: np.ndarray, exposure_fraction: float
                ) -> None:
    """Blur ``roi`` in place along the motion during the exposure (a line kernel)."""
    d = np.asarray(velocity_px_per_frame, dtype=float) * exposure_fraction
    length = float(np.hypot(*d))
    if length < 1.0 or roi.size == 0:
        return
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    u = d / length * (length / 2)
    cv2.line(kernel, (int(round(c - u[0])), int(round(c - u[1]))),
             (int(round(c + u[0])), int(round(c + u[1]))), 1.0, 1, cv2.LINE_AA)
    kernel /= kernel.sum()
    cv2.filter2D(roi, -1, kernel, dst=roi, borderType=cv2.BORDER_REPLICATE)


def draw_occluders(cfg: NuisanceConfig, rng: np.random.Generator, region: np.ndarray,
                   width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Static occluders: (BGR layer, uint8 mask) drawn over the mouse.

    ``region`` (k, 2) is the polygon (px) the occluders cross (the arena or the beam).
    """
    layer = np.zeros((height, width, 3), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    lo, hi = region.min(axis=0), region.max(axis=0)
    for i in range(cfg.n_occluders):
        if i % 2 == 0:  # a cable hanging across: a thick dark curve
            xs = np.sort(rng.uniform(lo[0], hi[0], 2))
            y = rng.uniform(lo[1], hi[1])
            pts = np.stack([np.linspace(xs[0] - 60, xs[1] + 60, 12),
                            y + 25 * np.sin(np.linspace(0, rng.uniform(2, 5), 12))], axis=1)
            thick = int(rng.integers(5, 10))
            for img, col in ((layer, (38, 40, 45)), (mask, 255)):
                cv2.polylines(img, [np.round(pts).astype(np.int32)], False, col, thick,
                              cv2.LINE_AA)
        else:  # a bar or post seen from above (e.g. a lever, a nozzle)
            c = rng.uniform(lo, hi)
            size = rng.uniform(20, 45, 2)
            box = cv2.boxPoints(((float(c[0]), float(c[1])), (float(size[0]), float(size[1])),
                                 float(rng.uniform(0, 180))))
            for img, col in ((layer, (150, 150, 160)), (mask, 255)):
                cv2.fillPoly(img, [np.round(box).astype(np.int32)], col, cv2.LINE_AA)
    return layer, mask


def draw_distractors(cfg: NuisanceConfig, rng: np.random.Generator, image: np.ndarray,
                     region: np.ndarray, px_per_mm: float) -> None:
    """Dark clutter on the floor, in place: food pellets, droppings and a small block."""
    lo, hi = region.min(axis=0), region.max(axis=0)
    for i in range(cfg.n_distractors):
        c = rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo))
        if i == 0:
            size = rng.uniform(18, 30, 2) * px_per_mm
            box = cv2.boxPoints(((float(c[0]), float(c[1])), (float(size[0]), float(size[1])),
                                 float(rng.uniform(0, 180))))
            cv2.fillPoly(image, [np.round(box).astype(np.int32)], (60, 62, 70), cv2.LINE_AA)
        else:
            axes = (int(rng.uniform(3, 6) * px_per_mm), int(rng.uniform(2, 4) * px_per_mm))
            cv2.ellipse(image, (int(c[0]), int(c[1])), axes, float(rng.uniform(0, 180)), 0, 360,
                        (45, 50, 60), -1, cv2.LINE_AA)
