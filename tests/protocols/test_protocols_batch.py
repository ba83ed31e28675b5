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
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["scheduler"] == cluster.scheduler_address and run["n_workers"] == 1  # the workers that ran


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


# ----------------------------------------------------------------------------- issue 17 items
def _small_cohort(folder: Path, n: int = 1) -> Path:
    return write_synthetic_cohort(folder, n_per_group=n, seconds=10.0, fps=20.0)


def test_cohort_fps_never_overrides_the_files_fps(tmp_path: Path):
    from protocols.batch import FpsMismatchError, load_session_pose

    csv = _small_cohort(tmp_path / "d")
    rows = pd.read_csv(csv)
    rows["fps"] = [40.0, 20.1]  # x2 (refused) and 0.5 % off (the file's 20 fps is used)
    rows.to_csv(csv, index=False)
    res = run_cohort("open_field", csv, tmp_path / "out", n_workers=0, progress=False, report=False)
    assert list(res.failed) == ["cont01_1"] and res.processed == ["trea01_1"]
    assert "records 20 fps but the cohort's fps column says 40" in res.failed["cont01_1"]
    assert "x2" in pd.read_csv(tmp_path / "out" / "failures.csv")["error"].iloc[0]
    assert json.loads((tmp_path / "out" / "animals" / "trea01_1" / "endpoints.json").read_text())["fps"] == 20.0
    with pytest.raises(FpsMismatchError, match="records 20 fps"):
        load_session_pose(csv.parent / "cont01" / "pose.nc", 40.0)


@pytest.mark.shared_data
def test_cohort_fps_fills_in_a_file_without_fps():
    from protocols.batch import load_session_pose
    from tests.conftest import shared_path

    (f,) = shared_path("autogaita-beam").glob("PCCD3_Mouse14_*.csv")  # DeepLabCut csv: no fps
    assert load_session_pose(f, 100.0).attrs["fps"] == 100.0


def test_local_cluster_listens_on_loopback_only_and_a_shutdown_timeout_is_logged(cohort: Path, tmp_path: Path,
                                                                                 monkeypatch, caplog):
    import distributed
    import psutil

    listening: list[str] = []

    class Checked(distributed.LocalCluster):
        def close(self, *a, **k):
            procs = [psutil.Process()] + psutil.Process().children(recursive=True)
            for p in procs:
                for c in p.net_connections(kind="inet"):
                    if c.status == psutil.CONN_LISTEN:
                        listening.append(c.laddr.ip)
            super().close(*a, **k)
            raise TimeoutError("simulated: a worker took too long to shut down")

    monkeypatch.setattr(distributed, "LocalCluster", Checked)
    with caplog.at_level("WARNING", logger="protocols.cluster"):
        res = run_cohort("open_field", cohort, tmp_path / "out", n_workers=1, progress=False, report=False)
    assert sorted(res.processed) == ["cont01_1", "cont02_1", "trea01_1", "trea02_1"]
    assert listening and set(listening) <= {"127.0.0.1"}, listening  # scheduler, worker, nanny, dashboard
    assert "dask shutdown: TimeoutError" in caplog.text
    assert len(pd.read_csv(tmp_path / "out" / "endpoints.csv")) == 4
    assert json.loads((tmp_path / "out" / "run.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_external_scheduler_relative_out_and_worker_count(cohort: Path, tmp_path: Path, monkeypatch):
    """A real scheduler and worker (subprocesses, the worker in another working folder)."""
    import subprocess
    import sys
    import time

    wdir, cdir = tmp_path / "worker_cwd", tmp_path / "client_cwd"
    wdir.mkdir()
    cdir.mkdir()
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file", str(sched_file)],
                              cwd=wdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 60
        while not sched_file.is_file() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers",
                                       "1", "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                      cwd=wdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address) as c:
            c.wait_for_workers(1, timeout=60)
        monkeypatch.chdir(cdir)
        res = run_cohort("open_field", cohort, "rel_out", scheduler=address, progress=False, report=False)
    finally:
        for p in procs[::-1]:
            p.terminate()
            p.wait(timeout=30)
    assert sorted(res.processed) == ["cont01_1", "cont02_1", "trea01_1", "trea02_1"] and not res.failed
    assert res.out_dir == cdir / "rel_out"
    assert len(pd.read_csv(cdir / "rel_out" / "endpoints.csv")) == 4
    assert not (wdir / "rel_out").exists()  # nothing written under the worker's own folder
    run = json.loads((cdir / "rel_out" / "run.json").read_text())
    assert run["n_workers"] == 1 and run["scheduler"] == address and run["out_dir"] == str(cdir / "rel_out")
    assert not list((cdir / "rel_out").glob(".probe-*"))


def test_workers_on_another_file_system_stop_the_run_loudly(tmp_path: Path):
    from protocols.cluster import WorkerPathError, check_workers_can_write

    class OtherMachine:  # its workers write the probe on their own disk, not ours
        scheduler = type("S", (), {"address": "tcp://10.0.0.9:8786"})()

        def scheduler_info(self):
            return {"workers": {"tcp://10.0.0.9:4001": {}}}

        def run(self, func, out_dir, token):
            return {"tcp://10.0.0.9:4001": f"/elsewhere/.probe-{token}-1"}

    with pytest.raises(WorkerPathError, match=r"tcp://10\.0\.0\.9:4001.*does not see it"):
        check_workers_can_write(OtherMachine(), tmp_path)


def test_serial_run_survives_a_segfaulting_or_hanging_reader(cohort: Path, tmp_path: Path, monkeypatch):
    import os
    import signal
    import time

    import protocols.animal as A

    real = A.load_session_pose

    def hostile(path, fps):
        if "cont02" in str(path):
            import faulthandler

            faulthandler.disable()  # pytest's crash dump would only clutter the output
            os.kill(os.getpid(), signal.SIGSEGV)  # what PyTables does on some damaged h5 files
        if "trea01" in str(path):
            time.sleep(60)  # a hang in HDF5 C code
        return real(path, fps)

    monkeypatch.setattr(A, "load_session_pose", hostile)  # the forked reader inherits it
    monkeypatch.setattr(A, "READ_TIMEOUT_S", 3.0)
    out = tmp_path / "out"
    res = run_cohort("open_field", cohort, out, n_workers=0, progress=False, report=False)
    assert sorted(res.processed) == ["cont01_1", "trea02_1"]
    assert "crashed the reader (SIGSEGV)" in res.failed["cont02_1"] and "cont02" in res.failed["cont02_1"]
    assert "took more than 3 s" in res.failed["trea01_1"]
    assert sorted(pd.read_csv(out / "failures.csv")["subject_id"]) == ["cont02", "trea01"]
    assert len(pd.read_csv(out / "endpoints.csv")) == 2


def test_tables_are_written_as_the_run_goes(cohort: Path, tmp_path: Path, monkeypatch):
    """Even if the process dies on an animal (here: stopped after the second), the tables on
    disk list the animals finished so far and run.json names the one it was on."""
    import protocols.batch as B

    out = tmp_path / "out"
    seen: list[tuple[int, list[str]]] = []
    real = B.run_tasks

    def spy(rows, *a, **k):
        on_start = a[-1]

        def start(r):
            on_start(r)
            if r["key"] == "trea01_1":
                seen.append((len(pd.read_csv(out / "endpoints.csv")), json.loads((out / "run.json").read_text())))
                raise KeyboardInterrupt  # the process is gone here
        return real(rows, *a[:-1], start, **k)

    monkeypatch.setattr(B, "run_tasks", spy)
    with pytest.raises(KeyboardInterrupt):
        run_cohort("open_field", cohort, out, n_workers=0, progress=False, report=False)
    (n_rows, run), = seen
    assert n_rows == 2 and run["status"] == "running" and run["current"] == "trea01_1"
    assert sorted(run["processed"]) == ["cont01_1", "cont02_1"]


def test_truncated_video_and_frame_count_mismatch_warn(tmp_path: Path):
    import av
    import numpy as np

    from pose.io import load, save

    csv = _small_cohort(tmp_path / "d")  # 10 s at 20 fps: 200 frames
    d = csv.parent
    ds = load(d / "cont01" / "pose.nc")
    ds.attrs.update(video_truncated=True, n_frames_expected=500, n_frames_read=200)  # as pose analyze marks it
    save(ds, d / "cont01" / "pose2.nc")
    (d / "cont01" / "pose2.nc").replace(d / "cont01" / "pose.nc")
    with av.open(str(d / "trea01.mp4"), "w") as f:  # a video of 150 frames for a 200-frame pose file
        s = f.add_stream("mpeg4", rate=20)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for _ in range(150):
            f.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")))
        f.mux(s.encode())
    rows = pd.read_csv(csv)
    rows["video_path"] = ["", "trea01.mp4"]
    rows.to_csv(csv, index=False)
    res = run_cohort("open_field", csv, tmp_path / "out", n_workers=0, progress=False, report=False)
    assert sorted(res.processed) == ["cont01_1", "trea01_1"]
    # the video QC gate (on by default, qc.video: flag) checks the pose/video frame counts
    assert res.warned == {"cont01_1": "video truncated: 200 of 500 frames read",
                          "trea01_1": "video QC: frames_vs_pose: pose file 200 frames, video 150"}
    t = pd.read_csv(tmp_path / "out" / "endpoints.csv").set_index("subject_id")
    assert t["qc_flag"].to_dict() == {"cont01": "warn", "trea01": "fail"}
