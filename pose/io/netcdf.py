"""NetCDF: ethopose's own full-fidelity pose format (xarray + the h5netcdf engine).

Everything in the Dataset survives a round trip: all variables (``position``,
``confidence`` and any extra ones), all coordinates (``image`` for labelled data
included) and all attrs.

Format notes
------------
NetCDF attributes can only hold strings and numbers. Attrs of other types (``None``,
booleans, lists such as ``history``, dicts) are stored as JSON strings, and their names
are listed in the attribute ``ethopose_json_attrs`` so that :func:`read_netcdf` decodes
exactly those back. Other tools (``xarray.open_dataset``, ``ncdump``) still see ``fps``,
``source_software`` etc. as plain attributes.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pose.atomic import atomic_path
from pose.dataset import PoseValidationError, _jsonable, frame_numbers, validate_pose
from pose.io.errors import PoseFileError
from pose.io.h5check import check_hdf5

log = logging.getLogger(__name__)

ENGINE = "h5netcdf"
JSON_ATTRS_KEY = "ethopose_json_attrs"


def _encode_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    json_names = []
    for key, value in attrs.items():
        if isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)
        ):
            out[key] = value
        else:
            out[key] = json.dumps(value, default=_jsonable)
            json_names.append(key)
    out[JSON_ATTRS_KEY] = json.dumps(json_names)
    return out


def _decode_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    attrs = dict(attrs)
    names = json.loads(attrs.pop(JSON_ATTRS_KEY, "[]"))
    for key in names:
        if key in attrs:
            attrs[key] = json.loads(attrs[key])
    for key, value in attrs.items():
        if isinstance(value, np.generic):
            attrs[key] = value.item()
    return attrs


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a pose Dataset to NetCDF (``.nc``), atomically.

    Parameters
    ----------
    ds
        Pose Dataset; extra variables and coordinates are kept.
    path
        Target file.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    validate_pose(ds, context=str(path))
    out = ds.copy()
    out.attrs = _encode_attrs(ds.attrs)
    for name in list(out.variables):
        var = out[name]
        if var.attrs:
            out[name].attrs = _encode_attrs(var.attrs)
        if var.dtype == object:
            out[name] = var.astype(str)
    with atomic_path(path) as tmp:
        out.to_netcdf(tmp, engine=ENGINE)
    log.debug("wrote NetCDF %s", path)
    return path


def read_netcdf(path: str | os.PathLike, *, fps: float | None = None) -> xr.Dataset:
    """Read a pose Dataset written by :func:`write_netcdf` (or by ``movement``).

    Parameters
    ----------
    path
        ``.nc`` file.
    fps
        When given, overrides ``attrs["fps"]`` and puts ``time`` in seconds.

    Returns
    -------
    xarray.Dataset
        Loaded into memory (the file is closed).

    Raises
    ------
    PoseFileError
        If the file is missing, not NetCDF/HDF5, or not a pose Dataset.
    """
    path = Path(path)
    if not path.is_file():
        raise PoseFileError(path, "file not found")
    check_hdf5(path, what="NetCDF (HDF5)")
    try:
        ds = xr.load_dataset(path, engine=ENGINE)
    except Exception as exc:  # h5netcdf/h5py raise OSError, RuntimeError, KeyError... on damage
        raise PoseFileError(path, f"not a readable NetCDF (HDF5) file: {type(exc).__name__}: {exc}") from exc
    name = "<global>"
    try:
        ds.attrs = _decode_attrs(ds.attrs)
        for name in list(ds.variables):
            if ds[name].attrs:
                ds[name].attrs = _decode_attrs(ds[name].attrs)
    except (ValueError, TypeError, AttributeError) as exc:  # json errors are ValueErrors
        raise PoseFileError(path, f"attributes of {name!r}: damaged JSON ({exc})") from exc
    legacy = {k: v for k, v in {"keypoints": "keypoint", "individuals": "individual"}.items() if k in ds.dims}
    if legacy:
        ds = ds.rename(legacy)
    ds.attrs.setdefault("history", [])
    ds.attrs.setdefault("source_file", str(path))
    try:
        validate_pose(ds, context=str(path))
    except PoseValidationError as exc:
        raise PoseFileError(path, f"not a pose Dataset: {exc}") from exc
    if fps is not None:
        frames = frame_numbers(ds)
        ds = ds.assign_coords(time=frames / float(fps))
        ds.attrs["fps"] = float(fps)
        ds.attrs["time_unit"] = "seconds"
    return ds
