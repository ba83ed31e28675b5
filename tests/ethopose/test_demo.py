"""``ethopose demo`` (the README's first command), shortened: every layer runs end to end.

About 40 s on a 2-core machine: 8 s of rendered video, 3 epochs of pose training (a fixed
amount of work, not a wall-clock budget, so a slow machine gets the same model), a cohort of
8 mice with 10-s sessions.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")


def test_demo_runs_every_layer_and_writes_its_summary(tmp_path):
    from ethopose.cli import app

    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--out", str(out), "--seconds", "8", "--train-minutes", "10", "--train-epochs", "3",
                                   "--cohort-seconds", "10", "--workers", "0"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    pose = summary["pose_model"]
    assert pose["frames_analysed"] == 240  # 8 s at 30 fps: every frame of the video analysed
    # 3 epochs from the offline ImageNet weights already track the mouse (arena 640 px wide)
    assert pose["median_error_px"] < 40 and 0 < pose["pck10"] <= 1
    assert set(summary["behaviour_kappa"]) == {"freezing", "locomotion", "rearing", "grooming"}
    # the labelled frames: posture-stratified, counted by true state; half from still-body frames
    labels = summary["labels"]
    assert labels["method"] == "posture" and labels["n_frames"] == sum(labels["true_states"].values()) > 60
    # a state that is not reliable says so, and why (never a bare number)
    for sc in summary["behaviour_agreement"].values():
        if sc["verdict"] != "ok":
            assert sc["reason"] and f"UNRELIABLE: {sc['reason']}" in res.output
    assert set(summary["behaviour_kappa_exact_pose"]) == set(summary["behaviour_kappa"])
    assert summary["cohort"]["processed"] == 8 and summary["cohort"]["failed"] == 0
    endpoints = pd.read_csv(out / "results" / "endpoints.csv")
    assert len(endpoints) == 8 and endpoints["distance_mm"].gt(0).all()
    assert (out / "results" / "report.html").stat().st_size > 1000
    assert (out / "summary.md").read_text().startswith("# ethopose demo summary")
    assert f"summary: {out / 'summary.md'}" in res.output
