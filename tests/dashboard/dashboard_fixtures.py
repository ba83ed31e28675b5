"""A small results folder for the dashboard tests (4 synthetic mice, 20 s each)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd


def _add_badly_tracked(data: Path, cohort: Path) -> None:
    """A fifth control mouse ('bad01'): cont02's pose with 60 % of the frames at confidence 0.05."""
    from pose.io import load, save

    (data / "bad01").mkdir()
    shutil.copy(data / "cont02" / "arena.json", data / "bad01" / "arena.json")
    ds = load(data / "cont02" / "pose.nc")
    conf = ds["confidence"].values.copy()
    rng = np.random.default_rng(7)
    conf[rng.random(conf.shape[0]) < 0.6] = 0.05
    ds["confidence"].values[...] = conf
    save(ds, data / "bad01" / "pose.nc")
    with cohort.open("a") as f:
        f.write("bad01,control,0.0,M,1,bad01/pose.nc\n")


def make_results_root(root: Path, *, bad_animal: bool = False) -> Path:
    """Write a synthetic cohort under ``root/data`` and its results under ``root/results``.

    ``bad_animal`` adds a badly tracked fifth mouse (its QC flag fails, so it is left out of
    the group statistics and the groups keep two animals each).
    """
    from protocols.batch import run_cohort
    from protocols.synthetic_cohort import write_synthetic_cohort

    cohort = write_synthetic_cohort(root / "data", n_per_group=2, seconds=20.0, fps=25.0)
    if bad_animal:
        _add_badly_tracked(root / "data", cohort)
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
