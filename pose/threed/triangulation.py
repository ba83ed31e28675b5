"""Triangulation of 2D poses from calibrated cameras into a 3D pose Dataset (mm).

Each camera's pixels are undistorted to normalised coordinates, then a linear (DLT)
triangulation weighted by confidence solves for each point. With three or more cameras,
a point whose reprojection error in a used camera exceeds a threshold is re-solved from
the camera subset that agrees best (RANSAC over camera pairs: the pair whose 3D point
has most cameras within the threshold, then all those cameras together), so one wrong
camera (a swapped or mislabelled keypoint) does not pull the point away.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from pose.dataset import append_history, from_numpy, validate_pose
from pose.threed.cameras import Camera
from pose.threed.uncertainty import estimate_noise_px, point_covariance

logger = logging.getLogger(__name__)


class TriangulationInputError(ValueError):
    """2D poses that cannot be triangulated together; the message names the file and camera."""


def _dlt(rays: np.ndarray, proj: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted DLT. rays (C, N, 2) normalised, proj (C, 3, 4), w (C, N) -> (N, 3); NaN if < 2 views."""
    ok = (w > 0) & np.isfinite(rays).all(-1)
    w = np.where(ok, w, 0.0)
    r = np.where(ok[..., None], rays, 0.0)
    rows_x = r[..., 0:1] * proj[:, None, 2, :] - proj[:, None, 0, :]  # (C, N, 4)
    rows_y = r[..., 1:2] * proj[:, None, 2, :] - proj[:, None, 1, :]
    a = np.concatenate([rows_x * w[..., None], rows_y * w[..., None]], axis=0)  # (2C, N, 4)
    ata = np.einsum("cni,cnj->nij", a, a)
    _, vec = np.linalg.eigh(ata)
    x = vec[:, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        pts = x[:, :3] / x[:, 3:4]
    pts[ok.sum(0) < 2] = np.nan
    return pts


def triangulate_points(cameras: Sequence[Camera], points2d: np.ndarray, weights: np.ndarray | None = None
                       ) -> np.ndarray:
    """Linear triangulation of pixel observations.

    Parameters
    ----------
    cameras
        ``C`` calibrated cameras.
    points2d
        ``(C, N, 2)`` pixels (distorted, as in the images); NaN where unseen.
    weights
        ``(C, N)`` non-negative weights (e.g. confidence); 0 drops an observation.
        Default 1.

    Returns
    -------
    numpy.ndarray
        ``(N, 3)`` world points (mm); NaN where fewer than two cameras saw the point.
    """
    points2d = np.asarray(points2d, dtype=float)
    if weights is None:
        weights = np.ones(points2d.shape[:2])
    rays = np.stack([cam.undistort(points2d[i]) for i, cam in enumerate(cameras)])
    proj = np.stack([cam.extrinsic_matrix for cam in cameras])
    return _dlt(rays, proj, np.asarray(weights, dtype=float))


def reprojection_errors(cameras: Sequence[Camera], points3d: np.ndarray, points2d: np.ndarray) -> np.ndarray:
    """``(C, N)`` pixel distance between each camera's observation and the reprojected point."""
    proj = np.stack([cam.project(points3d) for cam in cameras])
    return np.linalg.norm(proj - points2d, axis=-1)


@dataclass
class Triangulation:
    """Result of :func:`triangulate_robust`.

    Attributes
    ----------
    points3d
        ``(N, 3)`` mm.
    error_px
        ``(N,)`` mean reprojection error over the cameras used (px).
    used
        ``(C, N)`` bool: the cameras each point was triangulated from.
    threshold_px
        The reprojection-error cut-off applied.
    """

    points3d: np.ndarray
    error_px: np.ndarray
    used: np.ndarray
    threshold_px: float


def default_threshold_px(errors: np.ndarray, cameras: Sequence[Camera]) -> float:
    """Outlier cut-off from the data: 4x the median all-camera error, at least 0.5 % of the image diagonal."""
    finite = errors[np.isfinite(errors)]
    med = float(np.median(finite)) if finite.size else 0.0
    diag = float(np.median([np.hypot(*c.size) for c in cameras]))
    return max(4.0 * med, 0.005 * diag)


def triangulate_robust(
    cameras: Sequence[Camera],
    points2d: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    threshold_px: float | None = None,
) -> Triangulation:
    """Triangulate, then re-solve points a camera disagrees with from the best camera subset.

    Parameters
    ----------
    cameras, points2d, weights
        As :func:`triangulate_points`.
    threshold_px
        A used camera whose reprojection error exceeds this is an outlier for that point.
        Default :func:`default_threshold_px` (logged). Only with three or more cameras.

    Returns
    -------
    Triangulation
    """
    points2d = np.asarray(points2d, dtype=float)
    n_cam, n_pts = points2d.shape[:2]
    w = np.ones((n_cam, n_pts)) if weights is None else np.asarray(weights, dtype=float).copy()
    seen = (w > 0) & np.isfinite(points2d).all(-1)
    rays = np.stack([cam.undistort(points2d[i]) for i, cam in enumerate(cameras)])
    proj = np.stack([cam.extrinsic_matrix for cam in cameras])
    pts = _dlt(rays, proj, w)
    err = np.where(seen, reprojection_errors(cameras, pts, points2d), np.nan)
    if threshold_px is None:
        threshold_px = default_threshold_px(err, cameras)
        logger.info("triangulation: outlier cut-off %.2f px (4x the median reprojection error, "
                    "at least 0.5 %% of the image diagonal); override with threshold_px", threshold_px)
    used = seen.copy()
    if n_cam >= 3:
        bad = np.flatnonzero(np.nanmax(np.where(seen, err, 0.0), axis=0) > threshold_px)
        if bad.size:
            best_n = np.zeros(bad.size, int)
            best_err = np.full(bad.size, np.inf)
            best_inl = np.zeros((n_cam, bad.size), bool)
            for a, b in itertools.combinations(range(n_cam), 2):
                wp = np.zeros((n_cam, bad.size))
                wp[[a, b]] = w[[a, b]][:, bad]
                cand = _dlt(rays[:, bad], proj, wp)
                e = np.where(seen[:, bad], reprojection_errors(cameras, cand, points2d[:, bad]), np.inf)
                inl = e <= threshold_px
                n_in = inl.sum(0)
                med = np.full(bad.size, np.inf)
                some = n_in > 0
                if some.any():
                    med[some] = np.nanmedian(np.where(inl[:, some], e[:, some], np.nan), axis=0)
                better = (n_in > best_n) | ((n_in == best_n) & (med < best_err))
                best_n = np.where(better, n_in, best_n)
                best_err = np.where(better, med, best_err)
                best_inl[:, better] = inl[:, better]
            fix = best_n >= 2
            idx = bad[fix]
            w_in = np.where(best_inl[:, fix], w[:, idx], 0.0)
            pts[idx] = _dlt(rays[:, idx], proj, w_in)
            used[:, idx] = best_inl[:, fix]
            logger.info("triangulation: %d of %d points re-solved without an outlying camera",
                        int(fix.sum()), n_pts)
    err = np.where(used, reprojection_errors(cameras, pts, points2d), np.nan)
    n_used = used.sum(0)
    mean_err = np.where(n_used > 0, np.where(used, err, 0.0).sum(0) / np.maximum(n_used, 1), np.nan)
    return Triangulation(pts, mean_err, used, float(threshold_px))


def _check_poses(poses: Mapping[str, xr.Dataset]) -> tuple[list[str], int]:
    names = list(poses)
    first = poses[names[0]]
    src = {n: poses[n].attrs.get("source_file") or n for n in names}
    for n in names:
        validate_pose(poses[n], context=f"{src[n]} (camera {n!r})")
        ds = poses[n]
        if ds.sizes["space"] != 2:
            raise TriangulationInputError(f"{src[n]} (camera {n!r}): expected 2D pixel positions")
        if ds.sizes["time"] != first.sizes["time"]:
            raise TriangulationInputError(
                f"{src[n]} (camera {n!r}) has {ds.sizes['time']} frames but {src[names[0]]} "
                f"(camera {names[0]!r}) has {first.sizes['time']}: the cameras must be synchronised "
                "frame for frame (trim the videos to the same frames)"
            )
        if list(ds.keypoint.values) != list(first.keypoint.values):
            raise TriangulationInputError(
                f"{src[n]} (camera {n!r}): keypoints {list(ds.keypoint.values)} differ from "
                f"{src[names[0]]}'s {list(first.keypoint.values)}"
            )
        if ds.sizes["individual"] != first.sizes["individual"]:
            raise TriangulationInputError(
                f"{src[n]} (camera {n!r}) has {ds.sizes['individual']} individuals, "
                f"{src[names[0]]} has {first.sizes['individual']}"
            )
    return names, first.sizes["time"]


def _position_std(cameras: Sequence[Camera], pos2d: np.ndarray, tri: Triangulation,
                  shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-keypoint 2D noise (px, from the residuals) and per-point, per-axis 3D std (mm)."""
    n_time, n_kp, n_ind = shape
    res = np.where(tri.used, reprojection_errors(cameras, tri.points3d, pos2d) ** 2, 0.0).sum(0)
    n_used = tri.used.sum(0)
    res_k = res.reshape(shape).transpose(1, 0, 2).reshape(n_kp, -1)
    used_k = n_used.reshape(shape).transpose(1, 0, 2).reshape(n_kp, -1)
    noise = np.array([estimate_noise_px(res_k[k], used_k[k]) for k in range(n_kp)])
    if np.isnan(noise).any() and np.isfinite(noise).any():  # keypoints never seen twice: the median of the rest
        noise = np.where(np.isnan(noise), np.nanmedian(noise), noise)
    per_point = np.broadcast_to(noise[None, :, None], shape).reshape(-1)
    cov = point_covariance(cameras, tri.points3d, tri.used, per_point)
    std = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))  # (N, 3)
    return noise, std.reshape(shape + (3,)).transpose(0, 3, 1, 2)


def triangulate_poses(
    poses: Mapping[str, xr.Dataset],
    cameras: Sequence[Camera],
    *,
    min_confidence: float = 0.0,
    threshold_px: float | None = None,
) -> tuple[xr.Dataset, dict[str, xr.Dataset]]:
    """Triangulate synchronised 2D poses (one Dataset per camera) into a 3D pose Dataset.

    Parameters
    ----------
    poses
        ``{camera name: 2D pose Dataset}``, same frames, keypoints and individuals.
    cameras
        The calibrated cameras, in the same order as ``poses``.
    min_confidence
        Observations with a lower confidence are not used (NaN confidence, e.g. human
        labels, counts as certain).
    threshold_px
        Reprojection-error cut-off for the camera-subset search (default from the data).

    Returns
    -------
    points3d, reprojected
        The 3D Dataset: ``position`` (time, space = x y z, keypoint, individual) in mm,
        ``confidence`` (mean of the cameras used), ``reprojection_error`` (px, mean over
        the cameras used), ``position_std`` (time, space, keypoint, individual; mm: the
        1-sigma uncertainty of each coordinate propagated from ``noise_px``, the 2D noise
        per keypoint estimated from the residuals, through the cameras' geometry, see
        :mod:`pose.threed.uncertainty`), ``n_cameras`` and ``camera_used`` (time, camera, keypoint,
        individual); attrs ``cameras``, ``length_unit = "mm"``. ``reprojected``: per
        camera, a 2D pose Dataset of the 3D points projected back into that camera.

    Raises
    ------
    TriangulationInputError
        Mismatched frame counts, keypoints or individuals (naming file and camera).
    """
    names, n_time = _check_poses(poses)
    if [c.name for c in cameras] != names:
        raise TriangulationInputError(f"cameras {[c.name for c in cameras]} do not match pose files {names}")
    first = poses[names[0]]
    n_kp, n_ind = first.sizes["keypoint"], first.sizes["individual"]
    pos2d = np.stack([poses[n]["position"].transpose("time", "keypoint", "individual", "space").values
                      for n in names]).reshape(len(names), -1, 2)
    conf = np.stack([poses[n]["confidence"].transpose("time", "keypoint", "individual").values
                     for n in names]).reshape(len(names), -1)
    weight = np.where(np.isnan(conf), 1.0, conf)
    weight = np.where(weight >= min_confidence, np.maximum(weight, 1e-6), 0.0)
    tri = triangulate_robust(cameras, pos2d, weight, threshold_px=threshold_px)
    shape = (n_time, n_kp, n_ind)
    position = tri.points3d.reshape(shape + (3,)).transpose(0, 3, 1, 2)
    c_used = tri.used & np.isfinite(conf)
    conf3 = np.where(c_used.any(0), np.where(c_used, conf, 0.0).sum(0) / np.maximum(c_used.sum(0), 1),
                     np.nan).reshape(shape)
    fps = first.attrs.get("fps")
    frames = None if fps else first["time"].values.astype(int)
    ds = from_numpy(position, np.clip(conf3, 0, 1), keypoints=list(first.keypoint.values),
                    individuals=list(first.individual.values), fps=fps,
                    source_software="ethopose.threed", frame_index=frames)
    if fps:
        ds = ds.assign_coords(time=first["time"].values)
    ds["position"].attrs["units"] = "mm"  # speeds and distances computed from it say mm
    dims3 = ("time", "keypoint", "individual")
    noise_px, std = _position_std(cameras, pos2d, tri, shape)
    ds["position_std"] = (("time", "space", "keypoint", "individual"), std,
                          {"units": "mm", "long_name": "1-sigma 3D uncertainty per axis from the 2D noise "
                           "(noise_px) and the cameras' geometry"})
    ds["noise_px"] = (("keypoint",), noise_px, {"units": "px", "long_name": "2D noise std estimated from the "
                                                "reprojection residuals"})
    ds["reprojection_error"] = (dims3, tri.error_px.reshape(shape), {"units": "px"})
    ds["n_cameras"] = (dims3, tri.used.sum(0).reshape(shape).astype(np.int16))
    ds["camera_used"] = (("time", "camera", "keypoint", "individual"),
                         tri.used.reshape((len(names),) + shape).transpose(1, 0, 2, 3).astype(np.int8))
    ds = ds.assign_coords(camera=names)
    ds.attrs.update({"cameras": names, "length_unit": "mm", "threshold_px": tri.threshold_px,
                     "source_files": {n: str(poses[n].attrs.get("source_file")) for n in names}})
    ds = append_history(ds, "triangulate", {"cameras": names, "min_confidence": min_confidence,
                                            "threshold_px": tri.threshold_px})
    return ds, reproject_points3d(ds, cameras, poses)


def reproject_points3d(points3d: xr.Dataset, cameras: Sequence[Camera],
                       like: Mapping[str, xr.Dataset] | None = None) -> dict[str, xr.Dataset]:
    """Each camera's 2D pose Dataset (px) of a 3D pose Dataset's points projected into it.

    Parameters
    ----------
    points3d
        ``position`` (time, space = x y z, keypoint, individual) in mm.
    cameras
        The cameras to project into.
    like
        ``{camera name: 2D pose Dataset}`` whose coordinates and attrs the outputs copy
        (e.g. the 2D poses that were triangulated); default: from ``points3d``.

    Returns
    -------
    dict
        ``{camera name: Dataset}`` with ``position`` (time, space = x y, keypoint,
        individual) and ``confidence`` (the 3D point's, 1 where it has none; NaN where
        the point is missing).
    """
    if points3d.sizes.get("space") != 3:
        raise TriangulationInputError(f"reprojection needs 3D points, got space={points3d.sizes.get('space')}")
    pts = points3d["position"].transpose("time", "keypoint", "individual", "space").values
    conf3 = points3d["confidence"].transpose("time", "keypoint", "individual").values
    out = {}
    for cam in cameras:
        uv = cam.project(pts.reshape(-1, 3)).reshape(pts.shape[:-1] + (2,)).transpose(0, 3, 1, 2)
        conf = np.where(np.isfinite(uv[:, 0]), np.nan_to_num(conf3, nan=1.0), np.nan)
        if like is not None and cam.name in like:
            rep = like[cam.name].copy()
            rep["position"] = (("time", "space", "keypoint", "individual"), uv)
            rep["position"] = rep["position"].transpose(*like[cam.name]["position"].dims)
            rep["confidence"] = (("time", "keypoint", "individual"), conf)
            rep["confidence"] = rep["confidence"].transpose(*like[cam.name]["confidence"].dims)
            rep.attrs = dict(rep.attrs)
        else:
            rep = from_numpy(uv, conf, keypoints=list(points3d.keypoint.values),
                             individuals=list(points3d.individual.values), fps=points3d.attrs.get("fps"),
                             source_software="ethopose.threed")
            rep = rep.assign_coords(time=points3d["time"].values)
        out[cam.name] = append_history(rep, "reproject_3d", {"camera": cam.name})
    return out
