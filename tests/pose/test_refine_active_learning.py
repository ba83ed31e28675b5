"""The virtual-mouse active-learning loop (slow): outliers find errors, fixing them helps.

Runs ``bench/active_learning.py``'s ``run`` with small settings: train on session A,
select outlier frames of the domain-shifted session B, correct them from the exact truth,
merge, retrain from the previous model, and compare against the same number of random
frames and against no new frames.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "active_learning.py"


@pytest.mark.slow
def test_active_learning_loop_reduces_error_on_shifted_video(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("active_learning", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = argparse.Namespace(out=tmp_path / "al", seconds=10.0, width=320, height=240, n_label=40,
                              n_frames=20, method="uncertain", train_minutes=12.0,
                              retrain_minutes=4.0, scale=0.5, seed=0)
    s = bench.run(args)["summary"]
    table = s["error_on_B"]
    base = table["model 0 (A only)"]["mean_px"]
    refined = next(v for k, v in table.items() if "outlier" in k)["mean_px"]
    no_data = table["+ no new frames"]["mean_px"]
    assert refined < 0.8 * base, table
    assert refined < no_data, table  # the drop comes from the corrected frames, not extra training
    # with this small CPU budget model 0 errs by > 10 px on nearly every B frame, so the
    # precision comparison is saturated here; it is asserted on injected errors in
    # test_refine_outliers.py (precision >= 0.9 vs random < 0.1)
    precision = s["precision_err_gt10px"]
    assert max(precision[m]["precision"] for m in ("jump", "fit", "uncertain")) >= precision["random"]["precision"]
    assert s["merge"]["iteration"] == 1
