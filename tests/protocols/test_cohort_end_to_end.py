"""Acceptance: a synthetic cohort of 8 virtual mice through ``ethopose run``.

Two groups of 4 with a built-in difference: treated mice have ``speed_scale`` 1.5 and
``center_preference`` 0.6 (control 1.0 and 0.2). The run is killed after the first animals
finish and restarted: finished animals are not redone, and the report finds the difference
with the right sign and the effect size measured on the exact simulated tracks
(``truth.csv``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from ethopose.cli import app
from protocols.stats import compare_groups
from protocols.synthetic_cohort import write_synthetic_cohort

GROUPS = {
    "control": {"speed_scale": 1.0, "center_preference": 0.2, "dose": 0.0},
    "treated": {"speed_scale": 1.5, "center_preference": 0.6, "dose": 1.0},
}


def _done(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "animals").glob("*/done")}


def test_cohort_kill_restart_and_effect_sizes(tmp_path: Path):
    data, out = tmp_path / "data", tmp_path / "results"
    cohort = write_synthetic_cohort(data, n_per_group=4, seconds=60.0, fps=25.0, groups=GROUPS, seed=0)
    assert len(pd.read_csv(cohort)) == 8

    # 1. start the run serially in a separate process and kill it after the first animals
    proc = subprocess.Popen(
        [sys.executable, "-m", "ethopose", "run", "open_field", str(cohort), "--out", str(out),
         "--workers", "0", "--no-report"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while len(_done(out)) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    before = _done(out)
    assert 3 <= len(before) < 8, f"kill came too late or too early: {sorted(before)}"
    # written as the run goes: the killed run's tables hold exactly the animals it finished
    partial = pd.read_csv(out / "endpoints.csv")
    listed = set(partial["subject_id"] + "_1")
    assert listed <= set(before) and len(listed) >= len(before) - 1  # the kill may fall between the two writes
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    # 2. restart through the CLI, with the local dask cluster
    res = CliRunner().invoke(app, ["run", "open_field", str(cohort), "--out", str(out), "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert f"{8 - len(before)} animals analysed, {len(before)} already done, 0 failed" in res.output
    after = _done(out)
    assert len(after) == 8
    assert all(after[k] == before[k] for k in before), "a finished animal was redone"
    run = json.loads((out / "run.json").read_text())
    assert sorted(run["skipped"]) == sorted(before)
    assert not list((out / "animals").glob(".tmp-*"))

    # 3. the difference is found with the right sign and the truth's effect size
    table = pd.read_csv(out / "endpoints.csv")
    tests = pd.read_csv(out / "group_tests.csv").set_index("endpoint")
    truth = compare_groups(pd.read_csv(data / "truth.csv"), reference="control").set_index("endpoint")
    for ours, true in (("mean_speed_mm_s", "true_mean_speed_mm_s"), ("centre_time_pct", "true_centre_time_pct")):
        g, g_true = tests.loc[ours, "effect_size"], truth.loc[true, "effect_size"]
        assert tests.loc[ours, "effect_size_name"] == "Hedges g"
        assert g > 0.8 and g_true > 0.8, (ours, g, g_true)  # treated > control, a large effect
        assert abs(g - g_true) < 0.2 * abs(g_true) + 0.2, (ours, g, g_true)
    speed = table.groupby("group")["mean_speed_mm_s"].mean()
    assert 1.2 < speed["treated"] / speed["control"] < 1.8  # speed_scale 1.5
    assert tests.loc["centre_time_pct", "p"] < 0.05
    html = (out / "report.html").read_text()
    assert "Hedges g" in html and "mean_speed_mm_s" in html and "data:image/png;base64," in html
    assert "Pose history of cont01_1" in html
