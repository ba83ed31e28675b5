"""The one pose data structure: an ``xarray.Dataset`` in the layout of ``movement``.

Every layer of ethopose takes and returns this Dataset. It is laid out as the
``movement`` package lays out its pose datasets (release 0.17 and later, singular
dimension names), so ``movement``'s own functions work on it:

- ``position``: float, dims ``(time, space, keypoint, individual)``, pixels
  (image coordinates, x to the right, y down). NaN where a body part is unknown;
  finite values beyond +-1e6 (``MAX_ABS_POSITION``) and inf are refused.
- ``confidence``: float in [0, 1], dims ``(time, keypoint, individual)``, NaN where
  the source gave no confidence (e.g. human labels).
- coordinates: ``time`` in seconds when ``fps`` is known (frame / fps), otherwise
  frame numbers; ``space`` = ``["x", "y"]`` (or ``["x", "y", "z"]``); ``keypoint``
  and ``individual`` names.
- attrs: ``fps`` (float or None), ``time_unit`` ("seconds" or "frames"),
  ``source_software``, ``source_file``, ``video_path``, ``px_per_mm`` (float or
  None), ``ds_type`` = "poses", and ``history``: a list of provenance records
  ``{op, params, version, time}`` that every processing step appends to.

Use :func:`from_numpy` to build one, :func:`validate_pose` at the edge of every
layer, and :func:`append_history` to record an operation.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from pose._version import __version__

DIMS_POSITION = ("time", "space", "keypoint", "individual")
DIMS_CONFIDENCE = ("time", "keypoint", "individual")
# |position| above this (px, or mm for 3-D) is not a physical coordinate: a damaged file
# or an overflow. Largest real frames are ~1e4 px wide.
MAX_ABS_POSITION = 1e6


class PoseValidationError(ValueError):
    """A Dataset does not follow the ethopose / movement pose layout."""


def from_numpy(
    position: np.ndarray,
    confidence: np.ndarray | None = None,
    *,
    keypoints: Sequence[str] | None = None,
    individuals: Sequence[str] | None = None,
    fps: float | None = None,
    source_software: str | None = None,
    source_file: str | None = None,
    video_path: str | None = None,
    px_per_mm: float | None = None,
    frame_index: Sequence[int] | None = None,
) -> xr.Dataset:
    """Build a pose Dataset from numpy arrays.

    Parameters
    ----------
    position
        Array of shape ``(n_time, n_space, n_keypoint, n_individual)`` in pixels.
        A 3-D array ``(n_time, n_space, n_keypoint)`` is taken as one individual.
    confidence
        Array of shape ``(n_time, n_keypoint, n_individual)`` in [0, 1] (or 2-D for
        one individual). ``None`` gives NaN (unknown) everywhere.
    keypoints, individuals
        Names; default ``keypoint_0...`` and ``individual_0...``.
    fps
        Frames per second. When given, the ``time`` coordinate is in seconds.
    source_software, source_file, video_path
        Where the data came from.
    px_per_mm
        Spatial calibration, or None when unknown.
    frame_index
        Frame numbers of the rows (default ``0..n_time-1``). With ``fps`` the time
        coordinate is ``frame_index / fps``.

    Returns
    -------
    xarray.Dataset
        A validated pose Dataset.

    Raises
    ------
    PoseValidationError
        If the shapes do not agree, naming the array and the mismatching axis.
    """
    position = np.asarray(position, dtype=float)
    if position.ndim == 3:
        position = position[..., np.newaxis]
    if position.ndim != 4:
        raise PoseValidationError(
            f"position must have 4 dims {DIMS_POSITION}, got shape {position.shape}"
        )
    n_time, n_space, n_kp, n_ind = position.shape
    if n_space not in (2, 3):
        raise PoseValidationError(f"position 'space' axis must have 2 or 3 entries, got {n_space}")
    if confidence is None:
        confidence = np.full((n_time, n_kp, n_ind), np.nan)
    confidence = np.asarray(confidence, dtype=float)
    if confidence.ndim == 2:
        confidence = confidence[..., np.newaxis]
    if confidence.shape != (n_time, n_kp, n_ind):
        raise PoseValidationError(
            f"confidence shape {confidence.shape} does not match position: expected "
            f"(time={n_time}, keypoint={n_kp}, individual={n_ind})"
        )
    keypoints = list(keypoints) if keypoints is not None else [f"keypoint_{i}" for i in range(n_kp)]
    individuals = (
        list(individuals) if individuals is not None else [f"individual_{i}" for i in range(n_ind)]
    )
    if len(keypoints) != n_kp:
        raise PoseValidationError(f"{len(keypoints)} keypoint names for {n_kp} keypoints in position")
    if len(individuals) != n_ind:
        raise PoseValidationError(
            f"{len(individuals)} individual names for {n_ind} individuals in position"
        )
    for kind, names in (("keypoint", keypoints), ("individual", individuals)):
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise PoseValidationError(f"duplicate {kind} names: {dup}")
    frames = np.arange(n_time) if frame_index is None else np.asarray(frame_index)
    if frames.shape != (n_time,):
        raise PoseValidationError(f"frame_index has {frames.shape} entries for {n_time} frames")
    if fps is not None:
        fps = float(fps)
        if not np.isfinite(fps) or fps <= 0:
            raise PoseValidationError(f"fps must be a positive number, got {fps}")
        time = frames / fps
        time_unit = "seconds"
    else:
        time = frames
        time_unit = "frames"
    space = ["x", "y", "z"][:n_space]
    ds = xr.Dataset(
        data_vars={
            "position": (DIMS_POSITION, position),
            "confidence": (DIMS_CONFIDENCE, confidence),
        },
        coords={
            "time": time,
            "space": space,
            "keypoint": keypoints,
            "individual": individuals,
        },
        attrs={
            "ds_type": "poses",
            "source_software": source_software,
            "source_file": source_file,
            "video_path": video_path,
            "fps": fps,
            "time_unit": time_unit,
            "px_per_mm": None if px_per_mm is None else float(px_per_mm),
            "history": [],
        },
    )
    validate_pose(ds)
    return ds


def validate_pose(ds: Any, *, require_fps: bool = False, context: str = "") -> xr.Dataset:
    """Check that ``ds`` is a pose Dataset; return it unchanged.

    Call this where data enters a layer. The error names what is wrong (the missing
    variable or dimension, the bad value) and, when given, ``context`` (e.g. the file).

    Parameters
    ----------
    ds
        The object to check.
    require_fps
        Also require ``attrs["fps"]`` to be a positive number.
    context
        Prefix for error messages, e.g. a file path.

    Raises
    ------
    PoseValidationError
    """
    where = f"{context}: " if context else ""
    if not isinstance(ds, xr.Dataset):
        raise PoseValidationError(f"{where}expected an xarray.Dataset, got {type(ds).__name__}")
    for var, dims in (("position", DIMS_POSITION), ("confidence", DIMS_CONFIDENCE)):
        if var not in ds.data_vars:
            raise PoseValidationError(
                f"{where}pose Dataset has no '{var}' variable (has: {sorted(ds.data_vars)})"
            )
        missing = [d for d in dims if d not in ds[var].dims]
        if missing:
            legacy = {"keypoints": "keypoint", "individuals": "individual"}
            hint = ""
            if any(d in ds[var].dims for d in legacy):
                hint = " (plural dims found: use pose.dataset.rename_legacy_dims)"
            raise PoseValidationError(
                f"{where}'{var}' is missing dimension(s) {missing}; has {ds[var].dims}{hint}"
            )
        if tuple(ds[var].dims) != dims:
            raise PoseValidationError(
                f"{where}'{var}' dims must be ordered {dims}, got {tuple(ds[var].dims)}"
            )
    if not np.issubdtype(ds["position"].dtype, np.floating):
        raise PoseValidationError(f"{where}'position' must be float, got {ds['position'].dtype}")
    space = [str(s) for s in ds.coords["space"].values] if "space" in ds.coords else []
    if space not in (["x", "y"], ["x", "y", "z"]):
        raise PoseValidationError(f"{where}'space' coordinate must be ['x','y'(,'z')], got {space}")
    conf = ds["confidence"].values
    finite = conf[np.isfinite(conf)]
    if finite.size and (finite.min() < -1e-9 or finite.max() > 1 + 1e-9):
        raise PoseValidationError(
            f"{where}'confidence' must lie in [0, 1] (NaN = unknown); found range "
            f"[{finite.min():.3g}, {finite.max():.3g}]"
        )
    _check_position_range(ds, where)
    fps = ds.attrs.get("fps")
    if fps is not None and (not _is_real(fps) or not np.isfinite(fps) or fps <= 0):
        raise PoseValidationError(f"{where}attrs['fps'] must be positive or None, got {fps!r}")
    if require_fps and fps is None:
        raise PoseValidationError(
            f"{where}this step needs the frame rate: attrs['fps'] is not set (pass --fps)"
        )
    ppm = ds.attrs.get("px_per_mm")
    if ppm is not None and (not _is_real(ppm) or not np.isfinite(ppm) or ppm <= 0):
        raise PoseValidationError(f"{where}attrs['px_per_mm'] must be positive or None, got {ppm!r}")
    if not isinstance(ds.attrs.get("history", []), list):
        raise PoseValidationError(f"{where}attrs['history'] must be a list")
    return ds


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_position_range(ds: xr.Dataset, where: str) -> None:
    """Refuse non-physical coordinates (inf, or beyond MAX_ABS_POSITION), naming the first."""
    pos = np.asarray(ds["position"].values)
    with np.errstate(invalid="ignore"):
        bad = np.isinf(pos) | (np.abs(pos) > MAX_ABS_POSITION)
    if not bad.any():
        return
    t, s, k, i = (int(v[0]) for v in np.nonzero(bad))
    try:
        frame = int(frame_numbers(ds)[t])
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        frame = t
    names = {d: [str(v) for v in ds.coords[d].values] if d in ds.coords else None for d in DIMS_POSITION[1:]}
    space = names["space"][s] if names["space"] else s
    keypoint = names["keypoint"][k] if names["keypoint"] else k
    individual = names["individual"][i] if names["individual"] else i
    raise PoseValidationError(
        f"{where}'position' {space} = {pos[t, s, k, i]:.4g} at frame {frame}, keypoint {keypoint!r}, "
        f"individual {individual!r}: beyond +-{MAX_ABS_POSITION:.0e} (not a physical image "
        f"coordinate; {int(bad.sum())} such value(s))"
    )


def rename_legacy_dims(ds: xr.Dataset) -> xr.Dataset:
    """Rename movement's pre-0.17 plural dims (``keypoints``, ``individuals``) to singular."""
    mapping = {k: v for k, v in {"keypoints": "keypoint", "individuals": "individual"}.items() if k in ds.dims}
    return ds.rename(mapping) if mapping else ds


def append_history(ds: xr.Dataset, op: str, params: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Return ``ds`` with one provenance record appended to ``attrs["history"]``.

    The record is ``{"op", "params", "version", "time"}``; ``params`` must be
    JSON-serialisable (numpy scalars and arrays are converted). The input is not
    modified: attrs are copied.
    """
    record = {
        "op": op,
        "params": json.loads(json.dumps(dict(params or {}), default=_jsonable)),
        "version": __version__,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    out = ds.copy()
    out.attrs = dict(ds.attrs)
    out.attrs["history"] = list(ds.attrs.get("history", [])) + [record]
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def frame_numbers(ds: xr.Dataset) -> np.ndarray:
    """Integer frame numbers of the rows of ``ds`` (``round(time * fps)`` when in seconds)."""
    t = ds.coords["time"].values
    if ds.attrs.get("time_unit") == "seconds" and ds.attrs.get("fps"):
        return np.rint(t * ds.attrs["fps"]).astype(int)
    return np.asarray(t).astype(int)
