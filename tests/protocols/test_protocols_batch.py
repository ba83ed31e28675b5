"""Cohort table validation, failure reporting, resuming, and the ethopose run CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ethopose.cli import app
from protocols.batch import CohortError, read_cohort, run_cohort
from protocols.synthetic_cohort import write_synthetic_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_cohort(tmp_path_factory.mktemp("coh"), n_per_group=2, seconds=15.0, fps=20.0)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_read_cohort_good(cohort: Path):
    t = read_cohort(cohort)
    assert list(t["key"]) == ["cont01_1", "cont02_1", "trea01_1", "trea02_1"]
    assert t["dose"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in t["pose_path"])


def test_read_cohort_errors_name_line_and_column(cohort: Path):
    d = cohort.parent
    with pytest.raises(CohortError, match=r"missing required column\(s\) \['group'\]"):
        read_cohort(_write(d / "a.csv", "subject_id,pose_path\nm1,cont01/pose.nc\n"))
    with pytest.raises(CohortError, match="needs a 'pose_path' or a 'video_path' column"):
        read_cohort(_write(d / "b.csv", "subject_id,group\nm1,a\n"))
    bad = _write(d / "c.csv", "subject_id,group,dose,pose_path\n"
                 "m1,a,1,cont01/pose.nc\nm2,a,lots,cont02/pose.nc\nm 3,b,1,missing.nc\nm1,a,1,cont01/pose.nc\n")
    with pytest.raises(CohortError) as err:
        read_cohort(bad)
    msg = str(err.value)
    assert "c.csv line 3, column 'dose': 'lots' is not a number" in msg
    assert "c.csv line 4, column 'subject_id': 'm 3' may only use" in msg
    assert "line 4, column 'pose_path': file not found" in msg
    assert "lines [2, 5]: subject/session 'm1_1' appears more than once" in msg
    with pytest.raises(CohortError, match="a video needs a pose model"):
        read_cohort(_write(d / "v.csv", "subject_id,group,video_path\nm1,a,cont01/pose.nc\n"))
    with pytest.raises(CohortError, match="line 2, column 'fps': must be positive, got -3"):
        read_cohort(_write(d / "f.csv", "subject_id,group,fps,pose_path\nm1,a,-3,cont01/pose.nc\n"))
    with pytest.raises(CohortError, match="cohort file not found"):
        read_cohort(d / "nope.csv")


def test_failure_reported_rest_finished_and_resume_skips(cohort: Path, tmp_path: Path):
    d = cohort.parent
    rows = pd.read_csv(cohort)
    (d / "broken.nc").write_text("not a netcdf file")
    rows.loc[len(rows)] = {"subject_id": "bad01", "group": "treated", "dose": 1.0, "sex": "F",
                           "session": 1, "pose_path": "broken.nc"}
    csv = d / "with_bad.csv"
    rows.to_csv(csv, index=False)
    out = tmp_path / "out"
    res = run_cohort("open_field", csv, out, n_workers=0, progress=False, report=False)
    assert sorted(res.processed) == ["cont01_1", "cont02_1", "trea01_1", "trea02_1"]
    assert list(res.failed) == ["bad01_1"]
    fails = pd.read_csv(out / "failures.csv")
    assert fails["subject_id"].tolist() == ["bad01"] and "broken.nc" in fails["error"].iloc[0]
    table = pd.read_csv(out / "endpoints.csv")
    assert len(table) == 4 and {"centre_time_pct", "rearing_count", "thigmotaxis_pct"} <= set(table.columns)
    assert len(pd.read_parquet(out / "endpoints.parquet")) == 4
    assert not (out / "animals" / "bad01_1").exists()

    # resume: nothing is redone, the failed animal is retried
    mtimes = {p.parent.name: p.stat().st_mtime_ns for p in (out / "animals").glob("*/done")}
    res2 = run_cohort("open_field", csv, out, n_workers=0, progress=False, report=False)
    assert res2.processed == [] and sorted(res2.skipped) == sorted(mtimes)
    assert list(res2.failed) == ["bad01_1"]
    assert {p.parent.name: p.stat().st_mtime_ns for p in (out / "animals").glob("*/done")} == mtimes

    # an interrupted animal (folder without its done marker) is redone
    (out / "animals" / "cont01_1" / "done").unlink()
    res3 = run_cohort("open_field", cohort, out, n_workers=0, progress=False, report=False)
    assert res3.processed == ["cont01_1"] and len(res3.skipped) == 3


def test_cli_run_report_and_errors(cohort: Path, tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "cli"
    r = runner.invoke(app, ["run", "open_field", str(cohort), "--out", str(out), "--workers", "0"])
    assert r.exit_code == 0, r.output
    assert "4 animals analysed, 0 already done, 0 failed" in r.output
    html = (out / "report.html").read_text()
    assert "ethopose report: open_field" in html and "Welch t-test" in html
    assert json.loads((out / "run.json").read_text())["n_workers"] == 0
    r = runner.invoke(app, ["run", "open_feld", str(cohort), "--out", str(out)])
    assert r.exit_code == 2 and "no protocol named 'open_feld'" in r.output
    r = runner.invoke(app, ["run", "open_field", str(tmp_path / "none.csv"), "--out", str(out)])
    assert r.exit_code == 2 and "cohort file not found" in r.output


def test_rebuild_report_with_human_endpoints(cohort: Path, tmp_path: Path):
    from protocols.report import rebuild_report

    out = tmp_path / "rep"
    run_cohort("open_field", cohort, out, n_workers=0, progress=False, report=False)
    table = pd.read_csv(out / "endpoints.csv")
    human = table[["subject_id", "session", "centre_time_pct"]].copy()
    human["centre_time_pct"] += [0.5, -0.5, 0.3, -0.2]
    human.to_csv(tmp_path / "human.csv", index=False)
    path = rebuild_report(out, human_scoring=tmp_path / "human.csv")
    html = path.read_text()
    assert "Validation against human scoring" in html and "icc2" in html


def test_gait_cohort_recovers_stride_length_per_group(tmp_path: Path):
    from pose.io import save
    from pose.synthetic.gait import simulate_gait

    rows = []
    for i, (group, stride) in enumerate((("short", 50.0), ("short", 50.0), ("long", 70.0), ("long", 70.0))):
        tr = simulate_gait(3.0, fps=100, seed=i, speed_mm_s=140, stride_length_mm=stride)
        save(tr.pose, tmp_path / f"g{i}.nc")
        rows.append({"subject_id": f"g{i}", "group": group, "dose": stride, "pose_path": f"g{i}.nc"})
    pd.DataFrame(rows).to_csv(tmp_path / "gait.csv", index=False)
    res = run_cohort("gait", tmp_path / "gait.csv", tmp_path / "out", n_workers=0, progress=False)
    assert not res.failed
    by_group = res.endpoints.groupby("group")["stride_length_mm"].mean()
    assert by_group["short"] == pytest.approx(50, rel=0.03) and by_group["long"] == pytest.approx(70, rel=0.03)
    cad = res.endpoints.set_index("subject_id")["cadence_hz"]
    assert cad["g0"] == pytest.approx(140 / 50, rel=0.03) and cad["g3"] == pytest.approx(140 / 70, rel=0.03)
    dr = pd.read_csv(tmp_path / "out" / "dose_response.csv").set_index("endpoint")
    assert dr.loc["stride_length_mm", "slope"] == pytest.approx(1.0, rel=0.05)  # mm of stride per mm of "dose"
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<h2>Gait</h2>" in html and "stride_length_mm" in html


def test_any_scheduler_address(cohort: Path, tmp_path: Path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster:
        res = run_cohort("open_field", cohort, tmp_path / "out", scheduler=cluster.scheduler_address,
                         progress=False, report=False)
    assert sorted(res.processed) == ["cont01_1", "cont02_1", "trea01_1", "trea02_1"] and not res.failed
    assert json.loads((tmp_path / "out" / "run.json").read_text())["scheduler"] == cluster.scheduler_address


def test_stale_temp_folders_of_killed_runs_are_removed(tmp_path):
    import os
    import subprocess
    import sys

    from protocols.batch import _remove_stale_temp_folders

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".tmp-m1-{dead.pid}"
    live = tmp_path / f".tmp-m2-{os.getpid()}"  # a run writing right now (this process)
    finished = tmp_path / "m3"
    for d in (stale, live, finished):
        d.mkdir()
        (d / "pose.nc").write_text("x")
    _remove_stale_temp_folders(tmp_path)
    assert not stale.exists() and live.exists() and finished.exists()
