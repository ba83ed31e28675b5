"""SLEAP pose files (work in progress)."""

from __future__ import annotations

import os
from pathlib import Path

import h5py


def is_analysis_h5(path: str | os.PathLike) -> bool:
    """True when ``path`` is a SLEAP analysis HDF5 file (has ``tracks`` and ``node_names``)."""
    try:
        with h5py.File(Path(path), "r") as fh:
            return isinstance(fh.get("tracks"), h5py.Dataset) and "node_names" in fh
    except OSError:
        return False


def read_slp(path, *, fps=None):
    raise NotImplementedError


read_analysis_h5 = write_slp = write_analysis_h5 = read_slp
