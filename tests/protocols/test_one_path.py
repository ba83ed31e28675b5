"""One path from pose to numbers: the demo, ``ethopose features compute`` and ``ethopose run``
report the same numbers for the same virtual-mouse session (issue 19, done-when)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from typer.testing import CliRunner

from ethopose.cli import app
from ethopose.demo import analyse_session as demo_analyse_session
from features.steps import ConfidenceMask, Interpolate, SavGol
from pose.io import load, save
from protocols.synthetic_cohort import write_synthetic_cohort

STEPS = [ConfidenceMask(threshold=0.5), Interpolate(max_gap_s=0.5), SavGol(window_s=0.2, order=2)]


def _noisy_session(tmp_path: Path) -> tuple[Path, Path, Path]:
    """One virtual mouse (60 s, 25 fps) with 1.5 px jitter and low-confidence bursts."""
    cohort = write_synthetic_cohort(tmp_path / "data", n_per_group=1, seconds=60.0, fps=25.0,
                                    groups={"control": {"speed_scale": 1.0, "center_preference": 0.4}}, seed=4)
    row = pd.read_csv(cohort).iloc[0]
    pose_path = Path(row["pose_path"])
    if not pose_path.is_absolute():
        pose_path = cohort.parent / pose_path
    ds = load(pose_path)
    rng = np.random.default_rng(0)
    ds["position"].values[:] += rng.normal(0, 1.5, ds["position"].shape)
    conf = ds["confidence"].values
    for start in rng.integers(0, ds.sizes["time"] - 20, 30):
        conf[start:start + rng.integers(2, 20)] = 0.1
    save(ds, pose_path)
    return cohort, pose_path, pose_path.parent / "arena.json"


def test_demo_features_compute_and_run_report_the_same_numbers(tmp_path: Path):
    cohort, pose_path, arena_json = _noisy_session(tmp_path)
    arena = json.loads(arena_json.read_text())

    # 1. the demo's path (steps and dwell time as the others below)
    (tmp_path / "demo").mkdir()
    demo = demo_analyse_session(load(pose_path), arena_json, tmp_path / "demo", steps=STEPS, min_dwell_s=0.0)
    demo_frames = pd.read_parquet(tmp_path / "demo" / "features.parquet")

    # 2. ethopose features compute (confidence 0.5, gaps 0.5 s, Savitzky-Golay 0.2 s)
    feat = tmp_path / "cli" / "features.parquet"
    feat.parent.mkdir()
    res = CliRunner().invoke(app, ["features", "compute", str(pose_path), "--zones", str(arena_json),
                                   "--p-cutoff", "0.5", "--max-gap-s", "0.5", "--smooth-s", "0.2",
                                   "--min-dwell-s", "0", "--out", str(feat)])
    assert res.exit_code == 0, res.output
    cli = pd.read_csv(tmp_path / "cli" / "features.summary.csv").iloc[0]
    cli_frames = pd.read_parquet(feat)

    # 3. ethopose run with a protocol whose geometry is the same arena (zones in px)
    protocol = {
        "name": "one_path", "assay": "open_field",
        "bodyparts": {"required": ["snout", "body_center", "tail_base"], "centre": "body_center"},
        "zones": [{"kind": "polygon", "name": "centre", "units": "px",
                   "points": arena["zones"]["center"]["vertices_px"]}],
        "scale": {"source": "pose_attrs"},
        "filters": [s.model_dump() for s in STEPS],
        "endpoints": ["distance_mm", "mean_speed_mm_s", "centre_time_pct", "centre_entries",
                      "latency_to_centre_s"],
    }
    (tmp_path / "one_path.yaml").write_text(yaml.safe_dump(protocol))
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(tmp_path / "one_path.yaml"), str(cohort), "--out", str(out),
                                   "--workers", "0", "--no-report"])
    assert res.exit_code == 0, res.output
    run = pd.read_csv(out / "endpoints.csv").iloc[0]
    run_frames = pd.read_parquet(next((out / "animals").glob("*/frames.parquet")))

    shared = {  # demo / features compute summary name -> ethopose run endpoint name
        "distance_mm": "distance_mm", "mean_speed_mm_s": "mean_speed_mm_s",
        "time_in_centre_pct": "centre_time_pct", "entries_centre": "centre_entries",
        "latency_centre_s": "latency_to_centre_s",
    }
    for ours, theirs in shared.items():
        assert demo["summary"][ours] == cli[ours] == run[theirs], (ours, demo["summary"][ours], cli[ours], run[theirs])
    assert 0 < run["centre_time_pct"] < 100 and run["centre_entries"] > 0 and run["distance_mm"] > 1000
    for col in ("x_px", "y_px", "speed_mm_s", "distance_mm", "in_centre"):
        np.testing.assert_array_equal(demo_frames[col].to_numpy(), cli_frames[col].to_numpy(), err_msg=col)
        np.testing.assert_array_equal(demo_frames[col].to_numpy(), run_frames[col].to_numpy(), err_msg=col)
    assert run["quality_flag"] in ("ok", "low_coverage") and 80 < run["coverage_pct"] < 100
