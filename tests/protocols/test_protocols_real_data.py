"""Real data: the fear-conditioning protocol on BehaviorDEPOT's demo, against human scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from protocols.batch import run_cohort
from protocols.validation import validate_against_human

pytestmark = pytest.mark.shared_data


def test_freezing_matches_human_scoring(shared_data: Path, tmp_path: Path):
    h5py = pytest.importorskip("h5py")
    demo = shared_data / "behaviordepot-freezing" / "demo1"
    if not (demo / "demo1_tracking.csv").is_file():
        pytest.skip(f"{demo} is absent")
    cohort = tmp_path / "cohort.csv"
    pd.DataFrame([{"subject_id": "demo1", "group": "fc", "session": 1, "fps": 50, "px_per_mm": 3.2,
                   "pose_path": str(demo / "demo1_tracking.csv")}]).to_csv(cohort, index=False)
    res = run_cohort("fear_conditioning", cohort, tmp_path / "out", n_workers=0, progress=False, report=False)
    assert res.processed == ["demo1_1"], res.failed
    with h5py.File(demo / "hB_demo1_manual_annotations.mat") as f:
        human = np.asarray(f["hBehavior/Freezing/Vector"]).ravel().astype(int)
    pd.DataFrame({"subject_id": "demo1", "session": 1, "frame": np.arange(human.size),
                  "freezing": human}).to_csv(tmp_path / "human.csv", index=False)
    val = validate_against_human(tmp_path / "out", res.endpoints, tmp_path / "human.csv")["frames"]
    row = val.iloc[0]
    # BehaviorDEPOT's own classifier reaches kappa 0.873 on this video (data README)
    assert row["kappa"] > 0.85, row
    assert row["n_frames"] == 6000
    assert res.endpoints["freezing_pct"].iloc[0] == pytest.approx(100 * human.mean(), abs=4)
    # the protocol's baseline epoch is 0-120 s = the whole 6000-frame video
    assert res.endpoints["freezing_pct_baseline"].iloc[0] == pytest.approx(res.endpoints["freezing_pct"].iloc[0])
