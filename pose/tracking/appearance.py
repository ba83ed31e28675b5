"""Appearance of each animal from the video: the colour under its keypoints.

:func:`sample_appearance` reads the video frame by frame and, for every instance of a pose
Dataset, takes the median CIE Lab colour (OpenCV's 8-bit scale) of small patches at its
centroid and halfway from it to each confident keypoint (points on the body). Two coats (black and agouti) differ by tens of units; one coat by
about the frame-to-frame noise, and :func:`pose.tracking.track_identities` then ignores it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
import xarray as xr

from pose.dataset import frame_numbers, validate_pose
from pose.tracking.core import estimate_body_size_px

log = logging.getLogger(__name__)


def sample_appearance(video: str | os.PathLike, ds: xr.Dataset, *, min_confidence: float = 0.5,
                      patch_px: int | None = None) -> np.ndarray:
    """(time, individual, 3) median Lab colour on each instance's body (see the module).

    Parameters
    ----------
    video
        The video the poses were measured on (row ``t`` of ``ds`` is its frame
        ``frame_numbers(ds)[t]``).
    ds
        Pose Dataset (instances in any order).
    min_confidence
        Keypoints below this confidence are not sampled (NaN confidence counts as sure).
    patch_px
        Side of the square patch averaged at each keypoint (default: 6 % of the body size,
        odd, at least 3; logged).

    Returns
    -------
    numpy.ndarray
        NaN where an instance has no confident keypoint inside the image.

    Raises
    ------
    ValueError
        When the video cannot be opened or ends before a frame the Dataset needs.
    """
    validate_pose(ds, context="sample_appearance")
    video = Path(video)
    pos = ds["position"].values[:, :2]
    conf = ds["confidence"].values
    if patch_px is None:
        patch_px = max(3, int(round(0.06 * estimate_body_size_px(pos))) | 1)
        log.info("appearance: %d px patches (6 %% of the body size)", patch_px)
    frames = frame_numbers(ds)
    out = np.full((pos.shape[0], pos.shape[3], 3), np.nan)
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise ValueError(f"{video}: cannot open the video")
    ok_kp = ~np.isnan(pos).any(axis=1) & ~(conf < min_confidence)  # (time, K, I)
    current, image = -1, None
    try:
        for t, f in enumerate(frames):
            while current < f:
                ok, image = cap.read()
                if not ok:
                    raise ValueError(f"{video}: the video ends at frame {current + 1}; the pose "
                                     f"Dataset needs frame {f} (row {t})")
                current += 1
            lab = cv2.blur(cv2.cvtColor(image, cv2.COLOR_BGR2LAB), (patch_px, patch_px)).astype(float)
            h, w = lab.shape[:2]
            for i in range(pos.shape[3]):
                k = ok_kp[t, :, i]
                if not k.any():
                    continue
                # the centroid and the midpoints toward each keypoint lie on the body, where
                # the keypoints themselves (ears, paws, tail, snout) often do not show the coat
                pts = pos[t, :, k, i]  # (n, 2)
                c = pts.mean(axis=0)
                pts = np.vstack([c[None], 0.5 * (pts + c[None])])
                x = np.rint(pts[:, 0]).astype(int)
                y = np.rint(pts[:, 1]).astype(int)
                inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
                if inside.any():
                    out[t, i] = np.median(lab[y[inside], x[inside]], axis=0)
    finally:
        cap.release()
    return out
