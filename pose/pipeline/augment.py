"""Label-preserving image augmentation for pose training (numpy + OpenCV, torch-free).

One random affine transform (rotation, scale, translation = crop, optional horizontal flip)
maps the source image to a fixed-size training crop and the keypoints with it; a horizontal
flip swaps left/right channels (``flip_pairs``). Photometric changes (brightness/contrast,
motion blur, noise, occlusion patches) leave keypoints unchanged. Randomness comes from a
``numpy.random.Generator`` passed in, so a sample is a pure function of (image, labels, seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

# ImageNet channel means (RGB, 0-1). The network subtracts them, so pixels of this colour are
# zero at its input, like the zero padding of its convolutions at the edges of a frame.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
# Fill for regions outside the image (training crops past the image edge, padding to a
# multiple of 32): the mean colour, so "outside" looks the same in training and inference.
# (A black fill taught the network that image edges are black; on real frames, whose edges
# are not, it then put false keypoints on arena corners near the edges of DeepLabCut's openfield
# frames. The fill alone did not remove them all: see the hard-negative mining in
# pose.pipeline.train.)
FILL_RGB = tuple(round(255 * m) for m in IMAGENET_MEAN)


class AugmentConfig(BaseModel):
    """Augmentation parameters (all probabilities in 0-1).

    Parameters
    ----------
    crop_px
        Side of the square training crop in network-input pixels (multiple of 32); None =
        chosen by training from the size of the labelled animals (:func:`auto_crop_px`).
    rotation_deg
        Maximum absolute rotation; 180 = any angle (top view). None = 180 here; training
        chooses it from the project (:mod:`pose.pipeline.recipe`).
    scale_range
        Range of the random zoom factor.
    flip_prob
        Probability of a horizontal flip (left/right channels swapped).
    centre_on_animal_prob
        Probability that the crop is centred near the labelled keypoints (else anywhere).
    hard_negative_prob
        For an image with mined false detections (``hard_points``, found during training by
        running the network on the full frame), probability that the crop is centred on one.
    random_crop
        False: the crop is centred on the image centre (no translation).
    """

    model_config = ConfigDict(extra="forbid")

    crop_px: int | None = Field(None, ge=32, multiple_of=32)
    rotation_deg: float | None = Field(None, ge=0, le=180)
    scale_range: tuple[float, float] = (0.75, 1.25)
    flip_prob: float = Field(0.5, ge=0, le=1)
    centre_on_animal_prob: float = Field(0.85, ge=0, le=1)
    hard_negative_prob: float = Field(
        0.25, ge=0, le=1, description="crops centred on a place the network wrongly fired (when mined)"
    )
    random_crop: bool = True
    brightness_contrast_prob: float = Field(0.5, ge=0, le=1)
    motion_blur_prob: float = Field(0.2, ge=0, le=1)
    noise_prob: float = Field(0.2, ge=0, le=1)
    occlusion_prob: float = Field(0.2, ge=0, le=1)


@dataclass(frozen=True)
class Sample:
    """An augmented training sample: image ``(H, W, 3)`` uint8 RGB, keypoints ``(K, 2)``."""

    image: np.ndarray
    keypoints: np.ndarray


def random_affine(
    image_hw: tuple[int, int],
    keypoints: np.ndarray,
    out_px: int,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    hard_points: np.ndarray | None = None,
) -> tuple[np.ndarray, bool]:
    """A random 2x3 affine matrix mapping the source image into the ``out_px`` crop.

    ``hard_points`` ``(M, 2)``: places in the image where the network detected a keypoint
    that is not there; crops are centred on them with probability ``cfg.hard_negative_prob``.
    Returns the matrix and whether it includes a horizontal flip.
    """
    h, w = image_hw
    vis = np.isfinite(keypoints).all(axis=1)
    if not cfg.random_crop:
        centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    elif hard_points is not None and len(hard_points) and rng.random() < cfg.hard_negative_prob:
        centre = hard_points[rng.integers(len(hard_points))] + rng.uniform(-0.25, 0.25, 2) * out_px
    elif vis.any() and rng.random() < cfg.centre_on_animal_prob:
        centre = keypoints[vis].mean(axis=0) + rng.uniform(-0.3, 0.3, 2) * out_px
    else:
        centre = rng.uniform([0, 0], [w - 1, h - 1])
    max_deg = 180.0 if cfg.rotation_deg is None else cfg.rotation_deg
    angle = math.radians(rng.uniform(-max_deg, max_deg))
    zoom = rng.uniform(*cfg.scale_range)
    flip = bool(rng.random() < cfg.flip_prob)
    c, s = math.cos(angle) * zoom, math.sin(angle) * zoom
    lin = np.array([[c, -s], [s, c]])
    if flip:
        lin = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ lin
    half = (out_px - 1) / 2.0
    shift = np.array([half, half]) - lin @ centre
    return np.hstack([lin, shift[:, None]]), flip


def auto_crop_px(keypoints: np.ndarray, image_hw: tuple[int, int], *, factor: float | None = None,
                 minimum: int = 160) -> int:
    """Training-crop side for labelled animals of this size (multiple of 32).

    ``factor`` (default: the recipe's :data:`pose.pipeline.recipe.CROP_FACTOR`) x the 90th percentile of the labelled keypoints' extent (bounding-box diagonal
    of the visible keypoints of a frame), so a rotated, zoomed, off-centre animal still fits,
    at least ``minimum`` and at most the image (rounded up to 32). Smaller crops train faster:
    a step costs in proportion to the crop's area (bench/results/pose_train_step_cost.md).

    Parameters
    ----------
    keypoints
        ``(n_frames, K, 2)`` labels in network pixels (NaN = invisible).
    image_hw
        Size of a training image (network pixels).
    """
    from pose.pipeline.recipe import CROP_FACTOR

    factor = CROP_FACTOR if factor is None else factor
    kps = np.asarray(keypoints, float)
    kps = kps[np.isfinite(kps).all(axis=2).any(axis=1)]  # frames with a visible keypoint
    extent = np.hypot(*(np.nanmax(kps, axis=1) - np.nanmin(kps, axis=1)).T)
    size = factor * float(np.percentile(extent, 90)) if extent.size else 0.0
    def ceil32(v: float) -> int:
        return int(math.ceil(v / 32.0) * 32)

    return max(32, min(ceil32(max(size, minimum)), ceil32(max(image_hw))))


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Transform ``(K, 2)`` points (NaN stays NaN)."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def augment_sample(
    image: np.ndarray,
    keypoints: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    flip_pairs: list[tuple[int, int]] | None = None,
    hard_points: np.ndarray | None = None,
) -> Sample:
    """Augment one labelled image.

    Parameters
    ----------
    image
        ``(H, W, 3)`` uint8 RGB.
    keypoints
        ``(K, 2)`` x, y in pixels of ``image``; NaN = invisible.
    flip_pairs
        Channel index pairs swapped when the sample is flipped.
    hard_points
        ``(M, 2)`` false detections to centre some crops on (see :func:`random_affine`).
    """
    out = cfg.crop_px
    if out is None:
        raise ValueError("AugmentConfig.crop_px is None: resolve it first (auto_crop_px)")
    matrix, flipped = random_affine(image.shape[:2], keypoints, out, cfg, rng, hard_points)
    img = cv2.warpAffine(
        image, matrix, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=FILL_RGB
    )
    outside = cv2.warpAffine(
        np.zeros(image.shape[:2], np.uint8), matrix, (out, out), flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT, borderValue=1,
    ).astype(bool)
    kps = apply_affine(keypoints, matrix)
    if flipped and flip_pairs:
        kps = kps.copy()
        for a, b in flip_pairs:
            kps[[a, b]] = kps[[b, a]]
    img = _photometric(img, cfg, rng)
    img[outside] = FILL_RGB  # photometric changes apply to the image, not to "outside"
    return Sample(image=img, keypoints=kps)


def _photometric(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    out = img.astype(np.float32)
    if rng.random() < cfg.brightness_contrast_prob:
        alpha = rng.uniform(0.7, 1.3)
        beta = rng.uniform(-30, 30)
        out = (out - out.mean()) * alpha + out.mean() + beta
    if rng.random() < cfg.motion_blur_prob:
        length = int(rng.integers(3, 10))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        kernel /= max(kernel.sum(), 1e-6)
        out = cv2.filter2D(out, -1, kernel)
    if rng.random() < cfg.noise_prob:
        out = out + rng.normal(0, rng.uniform(2, 10), out.shape).astype(np.float32)
    if rng.random() < cfg.occlusion_prob:
        h, w = out.shape[:2]
        for _ in range(int(rng.integers(1, 3))):
            ph, pw = (rng.uniform(0.05, 0.2, 2) * [h, w]).astype(int) + 1
            y0, x0 = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
            out[y0 : y0 + ph, x0 : x0 + pw] = rng.uniform(0, 255, 3)
    return np.clip(out, 0, 255).astype(np.uint8)


def pad_to_multiple(image: np.ndarray, multiple: int = 32) -> np.ndarray:
    """Pad ``(H, W, 3)`` on the bottom/right with :data:`FILL_RGB` to multiples of ``multiple``."""
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return image
    return cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=FILL_RGB)


def draw_keypoints(
    image: np.ndarray,
    keypoints: np.ndarray,
    *,
    names: list[str] | None = None,
    radius: int = 3,
    marker: int | None = None,
    skeleton: list[tuple[int, int]] | None = None,
) -> np.ndarray:
    """Draw keypoints (one colour per channel) on a copy of an RGB image.

    ``marker`` (an OpenCV marker type, e.g. ``cv2.MARKER_CROSS``) draws markers instead of
    filled circles, to tell two label sets apart (human vs predicted).
    """
    out = np.ascontiguousarray(image.copy())
    k = len(keypoints)
    colours = _palette(k)
    for a, b in skeleton or []:
        pa, pb = keypoints[a], keypoints[b]
        if np.isfinite(pa).all() and np.isfinite(pb).all():
            cv2.line(out, _pt(pa), _pt(pb), (200, 200, 200), 1, cv2.LINE_AA)
    for j, p in enumerate(keypoints):
        if not np.isfinite(p).all():
            continue
        if marker is None:
            cv2.circle(out, _pt(p), radius, colours[j], -1, cv2.LINE_AA)
        else:
            cv2.drawMarker(out, _pt(p), colours[j], marker, 2 * radius + 3, 1, cv2.LINE_AA)
        if names:
            cv2.putText(out, names[j][:8], _pt(p + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.3, colours[j], 1)
    return out


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def _palette(n: int) -> list[tuple[int, int, int]]:
    import matplotlib

    cmap = matplotlib.colormaps["jet"]
    return [tuple(int(255 * c) for c in cmap(i / max(n - 1, 1))[:3]) for i in range(n)]


def save_augmented_samples(
    images: list[np.ndarray],
    keypoints: np.ndarray,
    out_png: str | Path,
    *,
    cfg: AugmentConfig | None = None,
    flip_pairs: list[tuple[int, int]] | None = None,
    names: list[str] | None = None,
    n_samples: int = 8,
    seed: int = 0,
) -> Path:
    """Visual check: write a grid of labelled augmented samples to a PNG file.

    Parameters
    ----------
    images
        Source RGB images.
    keypoints
        ``(n_images, K, 2)`` labels.
    """
    from pose.atomic import atomic_path

    cfg = cfg or AugmentConfig()
    if cfg.crop_px is None:
        crop = auto_crop_px(np.asarray(keypoints, float), max((im.shape[:2] for im in images), key=lambda s: s[0] * s[1]))
        cfg = cfg.model_copy(update={"crop_px": crop})
    rng = np.random.default_rng(seed)
    tiles = []
    for i in range(n_samples):
        j = i % len(images)
        s = augment_sample(images[j], keypoints[j], cfg, rng, flip_pairs)
        tiles.append(draw_keypoints(s.image, s.keypoints, names=names))
    cols = min(4, n_samples)
    rows = math.ceil(n_samples / cols)
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (rows * cols - len(tiles))
    grid = np.vstack([np.hstack(tiles[r * cols : (r + 1) * cols]) for r in range(rows)])
    with atomic_path(out_png) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return Path(out_png)
