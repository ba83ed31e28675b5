"""Run a protocol over a cohort in the background, with a live progress bar."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import streamlit as st

from dashboard.data import get_root, list_files
from dashboard.paths import PathOutsideRootError, cohort_paths_outside, resolve_inside
from protocols.results import finished_animals
from protocols.schema import builtin_protocols

st.title("Run a protocol")
root = get_root()
st.markdown("Runs `ethopose run` in a separate process: the page stays responsive and shows the "
            "animals as they finish. Re-running into the same folder resumes.")
protocols = builtin_protocols() + [f for f in list_files(root, (".yaml", ".yml")) if not f.endswith("protocol.yaml")]
protocol = st.selectbox("Protocol", protocols, key="run_protocol", index=protocols.index("open_field"))
cohorts = list_files(root, (".csv",))
if not cohorts:
    st.info("No cohort csv under the root (columns subject_id, group, dose, sex, session, pose_path).")
    st.stop()
cohort = st.selectbox("Cohort table", cohorts, key="run_cohort")
out = st.text_input("Output folder (relative to the root)", value="results", key="run_out")
workers = st.number_input("Worker processes", 0, 64, 2, key="run_workers")

if st.button("Start", type="primary", key="run_start"):
    try:
        out_dir = resolve_inside(root, out)
        cohort_path = resolve_inside(root, cohort)
        proto_arg = protocol if protocol in builtin_protocols() else str(resolve_inside(root, protocol))
    except PathOutsideRootError as exc:
        st.error(str(exc))
        st.stop()
    try:
        outside = cohort_paths_outside(root, cohort_path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        st.error(f"Cannot read the cohort table {cohort}: {type(exc).__name__}")
        st.stop()
    if outside:
        st.error("Refused: the cohort table names files outside the dashboard root.\n\n"
                 + "\n".join(f"- {m}" for m in outside))
        st.stop()
    out_dir.mkdir(parents=True, exist_ok=True)
    log = open(out_dir / "dashboard_run.log", "w")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [sys.executable, "-m", "ethopose", "run", proto_arg, str(cohort_path), "--out", str(out_dir),
         "--workers", str(int(workers))],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    st.session_state["run_job"] = {"pid": proc.pid, "out": str(out_dir), "cohort": str(cohort_path)}
    st.session_state["run_proc"] = proc


@st.fragment(run_every="2s")
def _progress() -> None:
    job = st.session_state.get("run_job")
    if not job:
        return
    from pathlib import Path

    n_total = len(pd.read_csv(job["cohort"]))
    n_done = len(finished_animals(Path(job["out"])))
    proc = st.session_state.get("run_proc")
    code = proc.poll() if proc is not None else None
    st.progress(min(n_done / max(n_total, 1), 1.0), text=f"{n_done} of {n_total} animals finished")
    if code is None:
        st.caption(f"running (pid {job['pid']})...")
    else:
        st.caption(f"finished with exit code {code}" + (" (some animals failed: see failures.csv)" if code == 1 else ""))
    log = Path(job["out"]) / "dashboard_run.log"
    if log.is_file():
        with st.expander("Log"):
            st.code(log.read_text()[-3000:] or "(empty)")


_progress()
