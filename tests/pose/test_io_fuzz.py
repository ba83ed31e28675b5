"""Damaged pose files: seeded byte mutations through ``pose.io.load`` in a child process.

Every mutated file must either load into a Dataset that passes ``validate_pose`` or raise
``PoseFileError``; a child killed by a signal (segfault), a child that does not answer in
time (hang) or any other exception type fails the test. One long-lived child (spawned,
memory-limited) loads file after file and is restarted only after a crash or a hang.

Sources: real files under ../shared/data (DeepLabCut h5/csv, DeepOF h5/csv/SLEAP, SLEAP
.slp/.analysis.h5) and files the project writes itself, so the test also runs without
the shared data. Run ``python tests/pose/test_io_fuzz.py --per-format 400`` for a report.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"  # as tests/conftest.py

CHILD_MEMORY_BYTES = 6 << 30  # a flipped shape must fail, not swap the shared machine
LOAD_TIMEOUT_S = 40.0  # above pose.io.h5check.PROBE_TIMEOUT_MIN_S: a probe that times out is a PoseFileError

REAL_FILES = {
    "dlc_h5": ["dlc-openfield/labeled-data/m4s1/CollectedData_Pranav.h5", "horse10-shadow/BrownHorseinShadow_gt.h5",
               "deepof-formats/test_madlc_topview_testDLC_h5_table_madlc.h5",
               "deepof-formats/test_single_topview_testDLC_h5_table.h5"],
    "dlc_csv": ["dlc-openfield/labeled-data/m4s1/CollectedData_Pranav.csv",
                "deepof-formats/test_madlc_topview_testDLC_csv_table_madlc.csv",
                "deepof-formats/test_single_topview_testDLC_csv_table.csv"],
    "slp": ["deepof-formats/test_single_topview_testDLC_sleap.slp", "sleap-anipose-session/top/minimal_top_proofread.slp"],
    "analysis_h5": ["deepof-formats/test_single_topview_testDLC_sleap.analysis.h5",
                    "sleap-anipose-session/top/minimal_top_proofread.analysis.h5"],
}
SUFFIX = {"dlc_h5": ".h5", "dlc_csv": ".csv", "slp": ".slp", "analysis_h5": ".analysis.h5", "nc": ".nc"}


def project_files(folder: Path) -> dict[str, list[Path]]:
    """Pose files written by ethopose itself, one or two per format."""
    import pose.io as pio
    from pose.dataset import from_numpy

    rng = np.random.default_rng(7)
    pos = rng.uniform(0, 600, size=(40, 2, 4, 2))
    pos[5, :, 1, 0] = np.nan
    conf = rng.uniform(0, 1, size=(40, 4, 2))
    ds = from_numpy(pos, conf, keypoints=["snout", "ear_l", "ear_r", "tail"], individuals=["m1", "m2"], fps=30)
    one = ds.isel(individual=[0])
    labels = from_numpy(pos[:8, :, :, :1], None, keypoints=["snout", "ear_l", "ear_r", "tail"])
    labels = labels.assign_coords(image=("time", np.array([f"labeled-data/v/img{i:03d}.png" for i in range(8)], dtype=object)))
    labels.attrs["dlc_index_layout"] = "multiindex"
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "dlc_h5": [pio.save(one, folder / "pred.h5"), pio.save(labels, folder / "CollectedData_me.h5"),
                   pio.save(ds, folder / "multi.h5")],
        "dlc_csv": [pio.save(one, folder / "pred.csv"), pio.save(ds, folder / "multi.csv")],
        "slp": [pio.save(ds, folder / "mice.slp")],
        "analysis_h5": [pio.save(ds, folder / "mice.analysis.h5")],
        "nc": [pio.save(ds, folder / "mice.nc")],
    }


def sources(folder: Path, *, with_shared: bool = True) -> dict[str, list[Path]]:
    out = project_files(folder)
    if with_shared and SHARED_DATA.is_dir():
        for fmt, rels in REAL_FILES.items():
            out[fmt] += [SHARED_DATA / r for r in rels if (SHARED_DATA / r).is_file()]
    return out


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One seeded damage: bit flips, truncation, or an overwritten byte range.

    Half of the offsets fall in the first tenth of the file (headers, HDF5 superblock and
    root objects), half anywhere.
    """
    buf = bytearray(data)
    n = len(buf)

    def offset() -> int:
        hi = max(1, n // 10) if rng.random() < 0.5 else n
        return int(rng.integers(0, hi))

    kind = str(rng.choice(["flip", "flip", "truncate", "overwrite", "zeros", "ones"]))
    if kind == "flip":
        for _ in range(int(rng.integers(1, 9))):
            buf[offset()] ^= 1 << int(rng.integers(0, 8))
    elif kind == "truncate":
        del buf[int(rng.integers(0, n)) :]
    else:
        start, length = offset(), int(rng.integers(1, 65))
        fill = {"overwrite": rng.integers(0, 256, size=length, dtype=np.uint8).tobytes(),
                "zeros": bytes(length), "ones": b"\xff" * length}[kind]
        buf[start : start + length] = fill[: max(0, n - start)]
    return kind, bytes(buf)


# The child: reads file paths on stdin, answers one JSON line per file on its own copy of
# stdout (library chatter goes to /dev/null). Started with ``python -c`` so that it needs
# nothing from the tests folder.
CHILD_CODE = r"""
import json, os, resource, sys, traceback, warnings
limit = int(sys.argv[1])
try:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
except (ValueError, OSError):
    pass
answer = os.fdopen(os.dup(1), "w")
devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, 1)
os.dup2(devnull, 2)
warnings.simplefilter("ignore")
import pose.io as pio
from pose.dataset import validate_pose
def send(*a):
    answer.write(json.dumps(a) + "\n"); answer.flush()
send("ready", "", "")
for line in sys.stdin:
    path = line.rstrip("\n")
    try:
        ds = pio.load(path)
        validate_pose(ds, context=path)
        send("ok", "", "")
    except pio.PoseFileError as exc:
        send("pose_error", str(exc)[:300], "")
    except BaseException as exc:
        send("foreign", f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:200]}",
             "".join(traceback.format_exception(exc))[-1500:])
"""


@dataclass
class Loader:
    """A reusable child process that loads one file at a time, with a time limit."""

    timeout_s: float = LOAD_TIMEOUT_S
    proc: subprocess.Popen | None = None
    restarts: int = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_CODE, str(CHILD_MEMORY_BYTES)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )
        if self._answer(120.0) is None:
            self.kill()
            raise RuntimeError("fuzz child did not start")

    def _answer(self, timeout_s: float) -> tuple[str, str, str] | None:
        """The child's answer; None on a time-out or when it died (then it is reaped)."""
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        if not line:  # end of output: the child is exiting; wait so its exit code is known
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            return None
        return tuple(json.loads(line))

    def load(self, path: Path) -> tuple[str, str, str]:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        try:
            self.proc.stdin.write(f"{path}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        answer = self._answer(self.timeout_s)
        if answer is not None:
            return answer
        if self.proc.poll() is None:
            self.kill()
            return ("hang", f"no answer in {self.timeout_s:.0f} s", "")
        code = self.proc.wait()
        self._close_pipes()
        self.proc = None
        self.restarts += 1
        if code < 0:
            return ("segfault", f"child killed by signal {-code}", "")
        return ("foreign", f"child exited with code {code}", "")

    def load_once(self, path: Path) -> tuple[str, str, str]:
        """Load in a fresh child of its own, then end it."""
        try:
            return self.load(path)
        finally:
            self.close()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self._close_pipes()
            self.proc = None
            self.restarts += 1

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


@dataclass
class Report:
    counts: dict[str, collections.Counter] = field(default_factory=dict)
    control: dict[str, str] = field(default_factory=dict)
    caught: collections.Counter = field(default_factory=collections.Counter)
    bad: list[tuple[str, str, int, str, str, str]] = field(default_factory=list)

    def add(self, fmt: str, src: Path, seed: int, kind: str, outcome: tuple[str, str, str]) -> None:
        self.counts.setdefault(fmt, collections.Counter())[outcome[0]] += 1
        if outcome[0] == "pose_error" and "HDF5 library" in outcome[1]:  # caught by the probe child
            self.caught[fmt] += 1
        if outcome[0] not in ("ok", "pose_error"):
            self.bad.append((fmt, src.name, seed, kind, outcome[0], outcome[1]))

    def total(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.counts.values())

    def text(self) -> str:
        lines = [f"{fmt:12s} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                 + (f" (of which HDF5 hang/crash caught by the probe child: {self.caught[fmt]})" if self.caught[fmt] else "")
                 for fmt, c in self.counts.items()]
        lines += [f"  BAD {f} {s} seed={seed} {k}: {o} {m}" for f, s, seed, k, o, m in self.bad[:40]]
        return "\n".join(lines)


def run_fuzz(per_format: int, *, seed: int = 0, folder: Path, formats: list[str] | None = None,
             timeout_s: float = LOAD_TIMEOUT_S, with_shared: bool = True) -> Report:
    """Mutate every source ``per_format`` times in total per format and load each result."""
    files = sources(folder / "src", with_shared=with_shared)
    report = Report()
    loader = Loader(timeout_s=timeout_s)
    work = folder / "mut"
    work.mkdir(parents=True, exist_ok=True)
    try:
        for fmt, paths in files.items():
            if formats and fmt not in formats:
                continue
            for src in paths:  # control: each source loads cleanly through the same child
                report.control[f"{fmt} {src.name}"] = loader.load(src)[0]
            for k in range(per_format):
                src = paths[k % len(paths)]
                case_seed = seed * 1_000_003 + k * 7919 + sum(map(ord, fmt + src.name))
                kind, data = mutate(src.read_bytes(), np.random.default_rng(case_seed))
                target = work / f"case_{fmt}_{k}{SUFFIX[fmt]}"
                target.write_bytes(data)
                outcome = loader.load(target)
                if outcome[0] == "hang":  # on a loaded machine, confirm with 3x the time
                    outcome = Loader(timeout_s=3 * timeout_s).load_once(target)
                report.add(fmt, src, case_seed, kind, outcome)
                target.unlink()
    finally:
        loader.close()
    return report


def _check(report: Report) -> None:
    print(report.text())
    assert report.control and set(report.control.values()) == {"ok"}, report.control
    assert report.total("segfault") == 0, report.text()
    assert report.total("hang") == 0, report.text()
    assert report.total("foreign") == 0, report.text()
    assert report.total("ok") + report.total("pose_error") > 0


DEFAULT_PER_FORMAT = 100  # ~23 s of CPU here in all (~12 s of it imports and the children); slow test: 400


def test_fuzz_default(tmp_path: Path) -> None:
    """Seeded mutations of each format (DLC h5/csv, SLEAP slp/analysis, NetCDF)."""
    report = run_fuzz(DEFAULT_PER_FORMAT, seed=1, folder=tmp_path)
    _check(report)
    assert all(sum(c.values()) == DEFAULT_PER_FORMAT for c in report.counts.values())


@pytest.mark.slow
def test_fuzz_full(tmp_path: Path) -> None:
    """>= 1,500 mutations of the real files (the issue's drill), and the project's own."""
    report = run_fuzz(400, seed=2, folder=tmp_path)
    _check(report)
    assert sum(sum(c.values()) for c in report.counts.values()) >= 1500


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-format", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--format", action="append", dest="formats")
    parser.add_argument("--timeout-s", type=float, default=LOAD_TIMEOUT_S)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="ethopose_fuzz_"))
    t0 = time.perf_counter()
    try:
        report = run_fuzz(args.per_format, seed=args.seed, folder=folder, formats=args.formats,
                          timeout_s=args.timeout_s)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(report.text())
    print(f"segfaults {report.total('segfault')}, hangs {report.total('hang')}, "
          f"foreign exceptions {report.total('foreign')}, loaded {report.total('ok')}, "
          f"PoseFileError {report.total('pose_error')}; {time.perf_counter() - t0:.0f} s wall, pid {os.getpid()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
