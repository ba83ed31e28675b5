"""pose.atomic: fsync before rename, an atomic .bak, and stale temporaries removed."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import pose.atomic as atomic
from pose.atomic import atomic_path, remove_stale_temps, write_text_atomic

ATOMIC_FILE = Path(atomic.__file__)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_fsync_of_file_then_rename_then_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the fsynced descriptors")
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "out.txt"
    write_text_atomic(target, "hello")
    kinds = [e[0] for e in events]
    assert kinds == ["fsync", "replace", "fsync"], events
    tmp_name = events[1][1]
    assert events[0][1] == tmp_name  # the temporary file itself was flushed before the rename
    assert events[2][1] == str(tmp_path)  # then the folder, so the rename is durable
    assert target.read_text() == "hello"


def test_bak_copy_killed_midway_leaves_old_bak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "labels.h5"
    bak = tmp_path / "labels.h5.bak"
    for text in ("v1", "v2"):
        with atomic_path(target, backup=True) as tmp:
            tmp.write_text(text)
    assert bak.read_text() == "v1"

    def half_copy(src, dst, *args, **kwargs):
        Path(dst).write_bytes(Path(src).read_bytes()[:1])  # a kill after one byte
        raise KeyboardInterrupt("killed mid-copy")

    monkeypatch.setattr(shutil, "copyfile", half_copy)
    with pytest.raises(KeyboardInterrupt), atomic_path(target, backup=True) as tmp:
        tmp.write_text("v3")
    monkeypatch.undo()
    assert bak.read_text() == "v1"  # the previous .bak, complete
    assert target.read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.h5", "labels.h5.bak"]


DRILL = r"""
import importlib.util, sys, hashlib
spec = importlib.util.spec_from_file_location("atomic_under_test", sys.argv[1])
atomic = importlib.util.module_from_spec(spec); spec.loader.exec_module(atomic)
target, n_bytes = sys.argv[2], int(sys.argv[3])
version = 0
while True:
    version += 1
    body = bytes([version % 251]) * n_bytes
    with atomic.atomic_path(target, backup=True) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(hashlib.sha256(body).digest() + body)
    print(version, flush=True)
"""


def _intact(path: Path) -> bool:
    data = path.read_bytes()
    return len(data) > 32 and hashlib.sha256(data[32:]).digest() == data[:32]


@pytest.mark.slow
def test_kill_drill_bak_and_target_always_complete(tmp_path: Path) -> None:
    """SIGKILL a saving process at random moments: target and .bak are always whole files,
    and the next save removes the temporaries the killed writers left."""
    rng = np.random.default_rng(3)
    target = tmp_path / "CollectedData_me.h5"
    n_kills, leftovers_seen = 8, 0
    for _ in range(n_kills):
        proc = subprocess.Popen([sys.executable, "-c", DRILL, str(ATOMIC_FILE), str(target), str(8 << 20)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline()  # at least one save done
        time.sleep(float(rng.uniform(0.0, 0.15)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _intact(target)
        bak = target.with_name(target.name + ".bak")
        assert not bak.exists() or _intact(bak)
        leftovers_seen += sum(".tmp" in p.name for p in tmp_path.iterdir())
    write_text_atomic(tmp_path / "other.txt", "x")  # any save in the folder cleans up
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []
    print(f"temporaries left by {n_kills} kills: {leftovers_seen}")


def test_stale_temps_of_dead_writers_are_removed(tmp_path: Path) -> None:
    host = atomic._HOST
    dead, live = _dead_pid(), os.getpid()
    names = {
        "dead": f".pose.ep{dead}h{host}.abcd1234.tmp.nc",
        "dead_nested": f"..CollectedData_me.ep{dead}h{host}.abcd1234.tmp.ep{dead}h{host}.zz_x9876.tmp.h5",
        "dead_bak": f".CollectedData_me.h5.bak.ep{dead}h{host}.q1w2e3r4.tmp",
        "live": f".pose.ep{live}h{host}.abcd1234.tmp.nc",
        "other_host": f".pose.ep{dead}h{'0' * 8 if host != '0' * 8 else '1' * 8}.abcd1234.tmp.nc",
        "legacy_old": ".CollectedData_me.k3j2h1g0.tmp.h5",
        "legacy_new": ".CollectedData_me.a1b2c3d4.tmp.h5",
        "not_a_temp": "pose.nc",
    }
    for name in names.values():
        (tmp_path / name).write_text("x")
    old = time.time() - 2 * atomic.LEGACY_TEMP_MAX_AGE_S
    os.utime(tmp_path / names["legacy_old"], (old, old))
    removed = {p.name for p in remove_stale_temps(tmp_path)}
    assert removed == {names[k] for k in ("dead", "dead_nested", "dead_bak", "legacy_old")}
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {names[k] for k in ("live", "other_host", "legacy_new", "not_a_temp")}


def test_temp_names_carry_pid_and_are_removed_on_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "a.csv") as tmp:
        assert f".ep{os.getpid()}h{atomic._HOST}." in tmp.name and tmp.name.endswith(".tmp.csv")
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []
