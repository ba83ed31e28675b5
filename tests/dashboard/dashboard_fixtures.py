"""A small results folder for the dashboard tests (4 synthetic mice, 20 s each)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def make_results_root(root: Path) -> Path:
    """Write a synthetic cohort under ``root/data`` and its results under ``root/results``."""
    from protocols.batch import run_cohort
    from protocols.synthetic_cohort import write_synthetic_cohort

    cohort = write_synthetic_cohort(root / "data", n_per_group=2, seconds=20.0, fps=25.0)
    run_cohort("open_field", cohort, root / "results", n_workers=0, progress=False)
    # per-frame human scoring of 'rearing' for the validation page: the results' own
    # vector with a few frames flipped
    rows = []
    for key in ("cont01_1", "trea01_1"):
        frames = pd.read_parquet(root / "results" / "animals" / key / "frames.parquet")
        v = frames["rearing"].to_numpy(int).copy()
        v[:10] = 1 - v[:10]
        rows += [{"subject_id": key.split("_")[0], "session": 1, "frame": i, "rearing": int(x)}
                 for i, x in enumerate(v)]
    pd.DataFrame(rows).to_csv(root / "data" / "human_rearing.csv", index=False)
    return root
