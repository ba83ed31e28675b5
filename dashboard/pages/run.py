"""Run a protocol over a cohort in the background: live progress, cancel, errors in full.

Safe defaults: the output folder is a new, empty one (``results_<date>_<time>``); running into
a folder that already holds files needs an explicit "resume" (the same cohort and protocol
continue where they stopped), so one click never mixes a new run into old results. The cohort
choices are the csv files that look like cohort tables (``subject_id`` and ``pose_path`` or
``video_path`` columns). A cohort with videos needs a pose model folder (``--model``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.data import get_root, list_files
from dashboard.paths import PathOutsideRootError, cohort_paths_outside, resolve_inside
from protocols.batch import CohortError, read_cohort
from protocols.results import finished_animals, is_results_folder
from protocols.schema import builtin_protocols

#: the most of the log shown on the page (the whole file is in the output folder)
LOG_SHOWN_CHARS = 200_000


def looks_like_cohort(root: Path, path: Path) -> bool:
    """A csv whose header names ``subject_id`` and ``pose_path`` or ``video_path``, outside
    any results folder (``ethopose run`` keeps a copy of its cohort there)."""
    if any(is_results_folder(p) for p in path.parents if p == root or root in p.parents):
        return False
    try:
        cols = {str(c).strip() for c in pd.read_csv(path, nrows=0).columns}
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return False
    return "subject_id" in cols and bool({"pose_path", "video_path"} & cols)


def model_folders(root: Path) -> list[str]:
    """Pose model folders (holding ``model.json``) under the root."""
    return sorted(str(Path(f).parent) for f in list_files(root, ("model.json",), max_depth=4))


def new_output_name(root: Path) -> str:
    """``results_<YYYYmmdd_HHMMSS>``, a folder that does not exist yet."""
    base = time.strftime("results_%Y%m%d_%H%M%S")
    name, i = base, 1
    while (root / name).exists():
        name, i = f"{base}_{i}", i + 1
    return name


st.title("Run a protocol")
root = get_root()
st.markdown("Runs `ethopose run` in a separate process: the page stays responsive and shows the "
            "animals as they finish.")
protocols = builtin_protocols() + [f for f in list_files(root, (".yaml", ".yml")) if not f.endswith("protocol.yaml")]
protocol = st.selectbox("Protocol", protocols, key="run_protocol", index=protocols.index("open_field"))
cohorts = [f for f in list_files(root, (".csv",)) if looks_like_cohort(root, root / f)]
if not cohorts:
    st.info("No cohort csv under the root (columns subject_id, group, dose, sex, session, pose_path "
            "or video_path).")
    st.stop()
cohort = st.selectbox("Cohort table", cohorts, key="run_cohort")
models = model_folders(root)
model = st.selectbox("Pose model (--model, for cohort rows that give a video)", ["(none)"] + models, key="run_model",
                     help="a folder written by `ethopose pose train` (holds model.json)")
if "run_out" not in st.session_state or st.session_state.pop("run_started", False):
    st.session_state["run_out"] = new_output_name(root)  # the next run gets a new folder by default
out = st.text_input("Output folder (relative to the root; a new, empty one by default)", key="run_out")
resume = st.checkbox("Resume: continue an earlier run in this folder (same cohort and protocol)", key="run_resume")
workers = st.number_input("Worker processes", 0, 64, 2, key="run_workers")


def _start() -> None:
    """Check everything, then start ``ethopose run``; every problem is shown in full."""
    try:
        out_dir = resolve_inside(root, out)
        cohort_path = resolve_inside(root, cohort)
        proto_arg = protocol if protocol in builtin_protocols() else str(resolve_inside(root, protocol))
        model_dir = None if model == "(none)" else resolve_inside(root, model)
    except PathOutsideRootError as exc:
        st.error(str(exc))
        return
    if out_dir.exists() and any(out_dir.iterdir()) and not resume:
        st.error(f"The output folder '{out}' already holds files: choose a new folder, or tick "
                 "**Resume** to continue the earlier run in it.")
        return
    try:
        outside = cohort_paths_outside(root, cohort_path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        st.error(f"Cannot read the cohort table {cohort}: {type(exc).__name__}: {exc}")
        return
    if outside:
        st.error("Refused: the cohort table names files outside the dashboard root.\n\n"
                 + "\n".join(f"- {m}" for m in outside))
        return
    try:
        read_cohort(cohort_path, need_model=model_dir is not None)
    except CohortError as exc:
        st.error(f"The cohort table {cohort} has problems; nothing was started:\n\n```\n{exc}\n```")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "ethopose", "run", proto_arg, str(cohort_path), "--out", str(out_dir),
           "--workers", str(int(workers))] + (["--model", str(model_dir)] if model_dir is not None else [])
    with open(out_dir / "dashboard_run.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    st.session_state["run_job"] = {"pid": proc.pid, "out": str(out_dir), "cohort": str(cohort_path),
                                   "cancelled": False}
    st.session_state["run_proc"] = proc
    st.session_state["run_started"] = True


job = st.session_state.get("run_job")
running = job is not None and st.session_state["run_proc"].poll() is None
if st.button("Start", type="primary", key="run_start", disabled=running):
    _start()


def _cancel() -> None:
    job = st.session_state.get("run_job")
    proc = st.session_state.get("run_proc")
    if job and proc is not None and proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the run and its worker processes
        except ProcessLookupError:
            pass
        job["cancelled"] = True


@st.fragment(run_every="2s")
def _progress() -> None:
    job = st.session_state.get("run_job")
    if not job:
        return
    proc = st.session_state["run_proc"]
    n_total = len(pd.read_csv(job["cohort"]))
    n_done = len(finished_animals(Path(job["out"])))
    code = proc.poll()
    st.progress(min(n_done / max(n_total, 1), 1.0), text=f"{n_done} of {n_total} animals finished")
    log_file = Path(job["out"]) / "dashboard_run.log"
    log = log_file.read_text(errors="replace") if log_file.is_file() else ""
    where = Path(job["out"]).relative_to(root)
    if code is None:
        st.caption(f"running (pid {job['pid']}) into `{where}`...")
        st.button("Cancel run", key="run_cancel", on_click=_cancel)
        with st.expander("Log (live)"):
            st.code(log[-5000:] or "(empty)")
        return
    if job.get("cancelled"):
        st.warning(f"Cancelled; {n_done} animals had finished. Start again with **Resume** ticked and the "
                   f"output folder `{where}` to continue.")
    elif code == 0:
        st.success(f"Finished: {n_done} animals in `{where}` (pick it in the sidebar's results folder).")
    else:
        st.error(f"`ethopose run` stopped with exit code {code}"
                 + (" (some animals failed: see failures.csv)" if code == 1 else "") + ". Its output:")
    if code != 0:
        failures = Path(job["out"]) / "failures.csv"
        if failures.is_file():
            st.dataframe(pd.read_csv(failures), hide_index=True)
        st.code(log[-LOG_SHOWN_CHARS:] or "(no output)", language="text")
    else:
        with st.expander("Log"):
            st.code(log[-LOG_SHOWN_CHARS:] or "(empty)", language="text")


_progress()
