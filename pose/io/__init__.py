"""Pose file formats behind one pair of functions: :func:`load` and :func:`save`.

The format follows the file name:

=====================  =====================================================
suffix                 format (module)
=====================  =====================================================
``.csv``               DeepLabCut csv, predictions or labels (:mod:`pose.io.dlc`)
``.h5`` / ``.hdf5``    DeepLabCut pandas HDF (:mod:`pose.io.dlc`); read also
                       sniffs SLEAP analysis files saved under a plain ``.h5``
``.analysis.h5``       SLEAP analysis HDF5 (:mod:`pose.io.sleap`)
``.slp``               SLEAP labels/predictions (:mod:`pose.io.sleap`)
``.nc``                NetCDF, ethopose's full-fidelity format (:mod:`pose.io.netcdf`)
``.nwb``               NWB with ndx-pose (:mod:`pose.io.nwb`; pose only, see
                       :func:`pose.io.nwb.write_nwb` for bouts, features, subject)
=====================  =====================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import xarray as xr

from pose.dataset import validate_pose
from pose.io import dlc, netcdf, sleap
from pose.io.errors import PoseFileError, UnknownFormatError

Format = Literal["dlc", "sleap_slp", "sleap_analysis", "netcdf", "nwb"]

__all__ = ["PoseFileError", "UnknownFormatError", "detect_format", "dlc", "load", "netcdf", "save", "sleap"]


def detect_format(path: str | os.PathLike, *, for_reading: bool = True) -> Format:
    """Name the pose format of ``path`` from its suffix (and, for ``.h5``, its content).

    Raises
    ------
    UnknownFormatError
        For a suffix that is not a pose format.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".analysis.h5"):
        return "sleap_analysis"
    suffix = path.suffix.lower()
    if suffix == ".slp":
        return "sleap_slp"
    if suffix == ".nc":
        return "netcdf"
    if suffix == ".nwb":
        return "nwb"
    if suffix == ".csv":
        return "dlc"
    if suffix in (".h5", ".hdf5"):
        if for_reading and path.is_file() and sleap.is_analysis_h5(path):
            return "sleap_analysis"
        return "dlc"
    raise UnknownFormatError(
        path,
        f"unknown pose file suffix {path.suffix!r}; use .csv or .h5 (DeepLabCut), "
        ".slp or .analysis.h5 (SLEAP), .nc (NetCDF) or .nwb (NWB)",
    )


def load(path: str | os.PathLike, *, fps: float | None = None) -> xr.Dataset:
    """Load a pose file as a pose Dataset (see :mod:`pose.dataset`).

    Parameters
    ----------
    path
        DeepLabCut ``.h5``/``.csv``, SLEAP ``.slp``/``.analysis.h5`` or NetCDF ``.nc``.
    fps
        Frame rate. When given, ``time`` is in seconds (overrides the file's own fps).

    Returns
    -------
    xarray.Dataset
        ``position`` (time, space, keypoint, individual), ``confidence``
        (time, keypoint, individual) and attrs (``source_file``, ``fps``, ...).

    Raises
    ------
    PoseFileError
        Missing file, unknown suffix, or content that is not the expected format; the
        message names the file and the row / field at fault.

    Notes
    -----
    ``confidence`` is not comparable across tools: DeepLabCut's ``likelihood`` is a
    sigmoid output in [0, 1], SLEAP's point score is a confidence-map peak value that can
    exceed 1 (clipped to 1 here); human labels have NaN. Tune confidence cut-offs per tool.
    """
    path = Path(path)
    fmt = detect_format(path)
    if not path.is_file():
        raise PoseFileError(path, "file not found")
    if fmt == "dlc":
        return dlc.read_dlc(path, fps=fps)
    if fmt == "sleap_slp":
        return sleap.read_slp(path, fps=fps)
    if fmt == "sleap_analysis":
        return sleap.read_analysis_h5(path, fps=fps)
    if fmt == "nwb":
        from pose.io import nwb

        return nwb.read_nwb(path, fps=fps)
    return netcdf.read_netcdf(path, fps=fps)


def save(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Save a pose Dataset; the format follows the suffix of ``path`` (see the table).

    The write is atomic (a temporary file renamed onto ``path``). Returns the path.
    """
    path = Path(path)
    fmt = detect_format(path, for_reading=False)
    validate_pose(ds, context=str(path))
    if fmt == "dlc":
        return dlc.write_dlc(ds, path)
    if fmt == "sleap_slp":
        return sleap.write_slp(ds, path)
    if fmt == "sleap_analysis":
        return sleap.write_analysis_h5(ds, path)
    if fmt == "nwb":
        from pose.io import nwb

        return nwb.write_nwb(ds, path)
    return netcdf.write_netcdf(ds, path)
