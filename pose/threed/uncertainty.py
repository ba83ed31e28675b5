"""How uncertain each triangulated point is: 2D noise from the residuals, 3D covariance from the geometry.

A point seen by ``C`` cameras has ``2C`` pixel coordinates and 3 unknowns, so its squared
reprojection residuals carry ``2C - 3`` degrees of freedom of the 2D noise (none for two
cameras' *perpendicular* noise, one for the epipolar part). :func:`estimate_noise_px`
pools them over a keypoint's frames into one robust 2D noise std (px) per keypoint.
:func:`point_covariance` then propagates that noise through each camera's projection
Jacobian at the point (first order, the cameras used for that point):
``Cov = sigma^2 (sum_c J_c' J_c)^-1`` in mm^2, so a point seen by near-parallel cameras,
or far from them, gets a long error ellipse along the depth.

Notes
-----
The model is i.i.d. Gaussian 2D noise of the same std in every camera for one keypoint.
Errors shared by the cameras (a label placed on a different part of the body in each view)
are partly absorbed into the 3D point and then under-estimated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import chi2

from pose.threed.cameras import Camera

__all__ = ["estimate_noise_px", "point_covariance", "projection_jacobians"]


def estimate_noise_px(residual_sq: np.ndarray, n_used: np.ndarray) -> float:
    """Robust pooled 2D noise std (px) from per-point sums of squared reprojection residuals.

    Parameters
    ----------
    residual_sq
        ``(N,)`` sum over the cameras used of the squared pixel residual of each point.
    n_used
        ``(N,)`` number of cameras each point was triangulated from.

    Returns
    -------
    float
        ``sigma`` such that ``residual_sq / sigma^2 ~ chi2(2 n_used - 3)``: for each
        degrees-of-freedom group the median of ``residual_sq`` divided by the chi-square
        median (robust to outlying points), groups combined weighted by their size and
        degrees of freedom. NaN when no point was seen by two or more cameras.
    """
    residual_sq = np.asarray(residual_sq, dtype=float)
    dof = 2 * np.asarray(n_used, dtype=int) - 3
    ok = np.isfinite(residual_sq) & (dof >= 1)
    num = den = 0.0
    for k in np.unique(dof[ok]):
        s = residual_sq[ok & (dof == k)]
        var = float(np.median(s)) / float(chi2.median(k))
        num += var * s.size * k
        den += s.size * k
    return float(np.sqrt(num / den)) if den > 0 else float("nan")


def projection_jacobians(cameras: Sequence[Camera], points3d: np.ndarray, step_mm: float = 1e-3
                         ) -> np.ndarray:
    """``(C, N, 2, 3)`` d(pixel)/d(world mm) of each camera at each point (central differences,
    distortion included)."""
    points3d = np.asarray(points3d, dtype=float)
    jac = np.empty((len(cameras), points3d.shape[0], 2, 3))
    for i in range(3):
        dx = np.zeros(3)
        dx[i] = step_mm
        for c, cam in enumerate(cameras):
            jac[c, :, :, i] = (cam.project(points3d + dx) - cam.project(points3d - dx)) / (2 * step_mm)
    return jac


def point_covariance(cameras: Sequence[Camera], points3d: np.ndarray, used: np.ndarray,
                     noise_px: np.ndarray | float) -> np.ndarray:
    """First-order 3D covariance (mm^2) of triangulated points.

    Parameters
    ----------
    cameras
        The ``C`` cameras.
    points3d
        ``(N, 3)`` triangulated points (mm); NaN rows give NaN covariances.
    used
        ``(C, N)`` bool, the cameras each point was solved from.
    noise_px
        2D noise std (px), scalar or ``(N,)`` (e.g. per keypoint, broadcast to its points).

    Returns
    -------
    numpy.ndarray
        ``(N, 3, 3)``; NaN where fewer than two cameras were used or the geometry is degenerate.
    """
    points3d = np.asarray(points3d, dtype=float)
    n = points3d.shape[0]
    finite = np.isfinite(points3d).all(1)
    safe = np.where(finite[:, None], points3d, 0.0)
    jac = projection_jacobians(cameras, safe)
    w = (np.asarray(used, bool) & finite[None]).astype(float)
    info = np.einsum("cn,cnai,cnaj->nij", w, jac, jac)
    sigma2 = np.broadcast_to(np.asarray(noise_px, dtype=float) ** 2, (n,))
    out = np.full((n, 3, 3), np.nan)
    ok = (w.sum(0) >= 2) & np.isfinite(sigma2)
    if ok.any():
        cond = np.linalg.cond(info[ok])
        idx = np.flatnonzero(ok)[cond < 1e12]
        out[idx] = np.linalg.inv(info[idx]) * sigma2[idx, None, None]
    return out
