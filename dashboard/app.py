"""The ethopose dashboard: a Streamlit multipage app over one root folder.

Run ``ethopose dashboard DIR`` (or ``streamlit run dashboard/app.py -- DIR``). ``DIR`` is a
results folder written by ``ethopose run``, or a folder holding several of them and pose
projects; the dashboard never reads or writes outside it (:mod:`dashboard.paths`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from dashboard.data import friendly_error, get_root, results_selector

st.set_page_config(page_title="ethopose", layout="wide")
root = get_root()
PAGES = Path(__file__).resolve().parent / "pages"

pages = {
    "Results": [
        st.Page(PAGES / "overview.py", title="Cohort overview", icon=":material/groups:", default=True),
        st.Page(PAGES / "animal_qc.py", title="Animal QC", icon=":material/pets:"),
        st.Page(PAGES / "ethogram.py", title="Ethogram", icon=":material/timeline:"),
        st.Page(PAGES / "endpoints.py", title="Endpoints by group", icon=":material/bar_chart:"),
        st.Page(PAGES / "validation.py", title="Validation", icon=":material/fact_check:"),
        st.Page(PAGES / "pose_review.py", title="Pose file review", icon=":material/swap_horiz:"),
    ],
    "Work": [
        st.Page(PAGES / "run.py", title="Run a protocol", icon=":material/play_arrow:"),
        st.Page(PAGES / "labelling.py", title="Labelling & training", icon=":material/edit:"),
    ],
}
nav = st.navigation(pages)

with st.sidebar:
    st.caption(f"Root: `{root}`")
    results_selector(root)

try:
    nav.run()
except Exception as exc:  # noqa: BLE001 - shown without traceback or server paths; logged in full
    logging.getLogger("dashboard").exception("page %s failed", nav.title)
    st.error(friendly_error(exc))
