"""pose.io.h5check: an HDF5 file that hangs or crashes the HDF5 library is refused, not fatal."""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from pose.io import h5check
from pose.io.errors import PoseFileError

# Stand-ins for the HDF5 C library misbehaving on a damaged file (the real cases are in
# the fuzz test): a probe that never answers, and one that dies by SIGSEGV.
HANG = """
import json, sys, time
print(json.dumps(["ready", "", ""]), flush=True)
for line in sys.stdin:
    time.sleep(3600)
"""
CRASH = """
import json, os, signal, sys
print(json.dumps(["ready", "", ""]), flush=True)
for line in sys.stdin:
    os.kill(os.getpid(), signal.SIGSEGV)
"""


@pytest.fixture
def h5_file(tmp_path: Path) -> Path:
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as fh:
        fh["data"] = np.arange(10.0)
    return path


def _child_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> h5check._ProbeChild:
    script = tmp_path / "probe.py"
    script.write_text(code + "\ndef serve():\n    pass\n")
    monkeypatch.setattr(h5check, "_PROBE_SCRIPT", script)
    child = h5check._ProbeChild()
    monkeypatch.setattr(h5check, "_CHILD", child)
    return child


def test_hang_is_a_pose_file_error_within_the_time_limit(tmp_path, monkeypatch, h5_file) -> None:
    child = _child_running(tmp_path, monkeypatch, HANG)
    monkeypatch.setattr(h5check, "PROBE_TIMEOUT_MIN_S", 1.0)
    t0 = time.perf_counter()
    with pytest.raises(PoseFileError, match=r"x\.h5: damaged HDF5 file: the HDF5 library did not finish reading it in 1 s"):
        h5check.check_hdf5(h5_file)
    assert time.perf_counter() - t0 < 30
    assert child.proc is None  # the stuck child was killed


def test_crash_is_a_pose_file_error(tmp_path, monkeypatch, h5_file) -> None:
    _child_running(tmp_path, monkeypatch, CRASH)
    with pytest.raises(PoseFileError, match=r"x\.h5: .*crashed the HDF5 library \(signal 11\)"):
        h5check.check_hdf5(h5_file)


def test_real_probe_names_the_damaged_dataset(tmp_path: Path, h5_file: Path) -> None:
    h5check.check_hdf5(h5_file)  # clean
    big = tmp_path / "big.h5"
    with h5py.File(big, "w") as fh:  # a shape no 1 MiB file can hold, uncompressed
        fh.create_dataset("tracks", shape=(1 << 20, 1 << 10), dtype="f8")
    with pytest.raises(PoseFileError, match=r"big\.h5: damaged HDF5 file at /tracks: shape \(1048576, 1024\) would need 8192\.0 MiB"):
        h5check.check_hdf5(big)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    with pytest.raises(PoseFileError, match=r"bad\.h5: damaged HDF5 file at /: "):
        h5check.check_hdf5(bad)
