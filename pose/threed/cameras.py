"""Pinhole cameras with OpenCV distortion, and anipose's ``calibration.toml`` read/write.

A :class:`Camera` maps world points (mm) to pixels: ``x_cam = R @ X + t`` (``R`` from the
Rodrigues vector ``rotation``), then the pinhole ``matrix`` and the OpenCV distortion
``k1 k2 p1 p2 k3``. The file layout is anipose's (also aniposelib's and sleap-anipose's)::

    [cam_0]
    name = "back"
    size = [1280, 1024]          # width, height in px
    matrix = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
    distortions = [k1, k2, p1, p2, k3]
    rotation = [rx, ry, rz]      # Rodrigues, world -> camera
    translation = [tx, ty, tz]   # mm

    [metadata]
    ...
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pose.atomic import write_text_atomic

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


class CalibrationFileError(ValueError):
    """A calibration file is missing, malformed or lacks a field; the message names the file."""


def rodrigues(rvec: np.ndarray) -> np.ndarray:
    """Rotation matrices from Rodrigues vectors.

    Parameters
    ----------
    rvec
        ``(..., 3)`` axis * angle (radians).

    Returns
    -------
    numpy.ndarray
        ``(..., 3, 3)`` rotation matrices (same result as ``cv2.Rodrigues``).
    """
    rvec = np.asarray(rvec, dtype=float)
    theta = np.linalg.norm(rvec, axis=-1, keepdims=True)
    small = theta < 1e-12
    k = rvec / np.where(small, 1.0, theta)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    kmat = np.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], axis=-1).reshape(rvec.shape[:-1] + (3, 3))
    th = theta[..., None]
    eye = np.broadcast_to(np.eye(3), kmat.shape)
    return eye + np.sin(th) * kmat + (1 - np.cos(th)) * (kmat @ kmat)


def rotation_vector(rmat: np.ndarray) -> np.ndarray:
    """Rodrigues vector ``(3,)`` of a rotation matrix ``(3, 3)`` (inverse of :func:`rodrigues`)."""
    import cv2

    return cv2.Rodrigues(np.asarray(rmat, dtype=float))[0].ravel()


def distort_normalized(xy: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Apply OpenCV's ``k1 k2 p1 p2 k3`` distortion to normalised coordinates ``(..., 2)``."""
    d = np.zeros(5)
    dist = np.asarray(dist, dtype=float).ravel()
    d[: min(5, dist.size)] = dist[:5]
    k1, k2, p1, p2, k3 = d
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd, yd], axis=-1)


@dataclass(frozen=True)
class Camera:
    """One calibrated camera.

    Attributes
    ----------
    name
        Camera name (matched to pose files by file name).
    size
        Image ``(width, height)`` in px.
    matrix
        ``(3, 3)`` intrinsic matrix (px).
    distortions
        ``(5,)`` OpenCV ``k1 k2 p1 p2 k3``.
    rotation
        ``(3,)`` Rodrigues vector, world to camera.
    translation
        ``(3,)`` world to camera, in world units (mm).
    """

    name: str
    size: tuple[int, int]
    matrix: np.ndarray
    distortions: np.ndarray = field(default_factory=lambda: np.zeros(5))
    rotation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        object.__setattr__(self, "matrix", np.asarray(self.matrix, dtype=float).reshape(3, 3))
        dist = np.zeros(5)
        d = np.asarray(self.distortions, dtype=float).ravel()
        dist[: min(5, d.size)] = d[:5]
        object.__setattr__(self, "distortions", dist)
        object.__setattr__(self, "rotation", np.asarray(self.rotation, dtype=float).reshape(3))
        object.__setattr__(self, "translation", np.asarray(self.translation, dtype=float).reshape(3))
        object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))

    @property
    def rotation_matrix(self) -> np.ndarray:
        """``(3, 3)`` world-to-camera rotation."""
        return rodrigues(self.rotation)

    @property
    def extrinsic_matrix(self) -> np.ndarray:
        """``(3, 4)`` ``[R | t]``: world to camera coordinates."""
        return np.hstack([self.rotation_matrix, self.translation[:, None]])

    @property
    def centre(self) -> np.ndarray:
        """Camera centre in world coordinates ``(3,)`` (mm)."""
        return -self.rotation_matrix.T @ self.translation

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project world points ``(..., 3)`` (mm) to pixels ``(..., 2)``, distortion included.

        Points behind the camera (depth <= 0) give NaN.
        """
        pts = np.asarray(points, dtype=float)
        cam = pts @ self.rotation_matrix.T + self.translation
        z = cam[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = cam[..., :2] / np.where(z > 0, z, np.nan)[..., None]
        xy = distort_normalized(xy, self.distortions)
        k = self.matrix
        u = k[0, 0] * xy[..., 0] + k[0, 1] * xy[..., 1] + k[0, 2]
        v = k[1, 1] * xy[..., 1] + k[1, 2]
        return np.stack([u, v], axis=-1)

    def undistort(self, pixels: np.ndarray) -> np.ndarray:
        """Normalised, undistorted image coordinates ``(..., 2)`` of pixels ``(..., 2)``.

        NaN stays NaN. Iterated by OpenCV to 1e-12 (100 iterations at most).
        """
        import cv2

        px = np.asarray(pixels, dtype=float)
        flat = px.reshape(-1, 2)
        out = np.full_like(flat, np.nan)
        ok = np.isfinite(flat).all(axis=1)
        if ok.any():
            crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
            src = flat[ok].reshape(-1, 1, 2)
            if hasattr(cv2, "undistortPointsIter"):  # OpenCV 4.x
                und = cv2.undistortPointsIter(src, self.matrix, self.distortions, None, None, crit)
            else:  # OpenCV >= 5: undistortPoints takes the criteria
                und = cv2.undistortPoints(src, self.matrix, self.distortions, None, None, None, crit)
            out[ok] = und.reshape(-1, 2)
        return out.reshape(px.shape)


def _camera_from_table(table: Mapping[str, Any], key: str, path: Path) -> Camera:
    missing = [f for f in ("name", "size", "matrix") if f not in table]
    if missing:
        raise CalibrationFileError(f"{path}: [{key}] lacks field(s) {missing}")
    try:
        return Camera(
            name=str(table["name"]),
            size=tuple(table["size"]),  # type: ignore[arg-type]
            matrix=np.asarray(table["matrix"], dtype=float),
            distortions=np.asarray(table.get("distortions", np.zeros(5)), dtype=float),
            rotation=np.asarray(table.get("rotation", np.zeros(3)), dtype=float),
            translation=np.asarray(table.get("translation", np.zeros(3)), dtype=float),
        )
    except (ValueError, TypeError) as exc:
        raise CalibrationFileError(f"{path}: [{key}] (camera {table.get('name')!r}): {exc}") from exc


def load_calibration(path: str | os.PathLike) -> tuple[list[Camera], dict[str, Any]]:
    """Read an anipose ``calibration.toml``.

    Returns
    -------
    cameras, metadata
        The cameras in file order (``cam_0``, ``cam_1`` ...) and the ``[metadata]`` table.

    Raises
    ------
    CalibrationFileError
        Missing file, invalid TOML, no camera, a camera without name/size/matrix, or
        duplicate camera names; the message names the file and the table.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationFileError(f"{path}: calibration file not found")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationFileError(f"{path}: not a valid TOML file: {exc}") from exc
    keys = [k for k in data if k != "metadata" and isinstance(data[k], dict)]
    keys.sort(key=lambda k: (int(k[4:]) if k.startswith("cam_") and k[4:].isdigit() else 10**9, k))
    cameras = [_camera_from_table(data[k], k, path) for k in keys]
    if not cameras:
        raise CalibrationFileError(f"{path}: no camera tables ([cam_0], [cam_1], ...)")
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise CalibrationFileError(f"{path}: duplicate camera names {names}")
    return cameras, dict(data.get("metadata", {}))


def _toml_value(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_table(name: str, table: Mapping[str, Any]) -> list[str]:
    lines = [f"[{name}]"]
    subtables = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            subtables.append((f"{name}.{key}", value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    lines.append("")
    for sub_name, sub in subtables:
        lines += _toml_table(sub_name, sub)
    return lines


def save_calibration(
    cameras: Sequence[Camera], path: str | os.PathLike, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write cameras (and a ``[metadata]`` table) as anipose's ``calibration.toml``, atomically.

    Floats are written with full precision (``repr``), so :func:`load_calibration` gives
    back the same numbers bit for bit.
    """
    lines: list[str] = []
    for i, cam in enumerate(cameras):
        lines += _toml_table(f"cam_{i}", {
            "name": cam.name,
            "size": list(cam.size),
            "matrix": cam.matrix,
            "distortions": cam.distortions,
            "rotation": cam.rotation,
            "translation": cam.translation,
        })
    lines += _toml_table("metadata", dict(metadata or {}))
    return write_text_atomic(path, "\n".join(lines))


def select_cameras(cameras: Sequence[Camera], names: Sequence[str], *, context: str = "") -> list[Camera]:
    """The cameras called ``names``, in that order.

    Raises
    ------
    CalibrationFileError
        Naming each missing camera and the cameras the calibration has.
    """
    by_name = {c.name: c for c in cameras}
    missing = [n for n in names if n not in by_name]
    if missing:
        where = f"{context}: " if context else ""
        raise CalibrationFileError(
            f"{where}camera(s) {missing} not in the calibration (it has {sorted(by_name)})"
        )
    return [by_name[n] for n in names]
