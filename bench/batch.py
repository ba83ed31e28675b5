"""Batch phenotyping throughput: serial vs a local dask cluster, and the cost of a resume.

Runs the open-field protocol over a synthetic cohort (``protocols.synthetic_cohort``)
three ways in the same run and prints wall times and ratios against the serial baseline:

- serial (``n_workers=0``, no dask),
- local dask cluster (``n_workers=N`` processes; includes the cluster start-up),
- resume of a finished run (every animal skipped; tables, statistics and report rebuilt).

Usage: ``python bench/batch.py [--animals 8] [--seconds 60] [--workers 2]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--animals", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from protocols.batch import run_cohort
    from protocols.synthetic_cohort import write_synthetic_cohort

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cohort = write_synthetic_cohort(tmp_path / "data", n_per_group=args.animals // 2,
                                        seconds=args.seconds, fps=25.0)
        rows = []
        for label, workers, out in (("serial (no dask)", 0, "serial"),
                                    (f"dask LocalCluster, {args.workers} processes", args.workers, "dask"),
                                    ("resume (all done)", 0, "serial")):
            t0 = time.perf_counter()
            res = run_cohort("open_field", cohort, tmp_path / out, n_workers=workers, progress=False)
            rows.append((label, time.perf_counter() - t0, len(res.processed), len(res.skipped)))
    base = rows[0][1]
    print(f"open field, {args.animals} animals x {args.seconds:g} s at 25 fps, {os.cpu_count()} CPUs")
    print(f"{'mode':<38}{'wall s':>9}{'ratio':>8}{'run':>6}{'skip':>6}")
    for label, wall, n_run, n_skip in rows:
        print(f"{label:<38}{wall:>9.1f}{wall / base:>8.2f}{n_run:>6}{n_skip:>6}")


if __name__ == "__main__":
    main()
