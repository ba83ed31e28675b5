"""Labelling and training: the labelling page of a pose project inside the root, and how to train."""

from __future__ import annotations

import streamlit as st

from dashboard.data import get_root
from dashboard.paths import resolve_inside
from dashboard.refine_link import pose_projects

st.title("Labelling & training")
root = get_root()
projects = pose_projects(root)
tab_label, tab_train = st.tabs(["Label frames", "Train a model"])
with tab_label:
    if not projects:
        st.info("No pose project (a folder with config.yaml and labeled-data/) inside the root. "
                "Create one with `ethopose pose` commands, or start the dashboard on the project.")
    else:
        if st.session_state.get("lab_project") not in projects:
            st.session_state.pop("lab_project", None)
        project = st.selectbox("Project", projects, key="lab_project")
        if "lab_message_from_qc" in st.session_state:
            st.success(st.session_state.pop("lab_message_from_qc") + ": the model's predictions are drawn to "
                       "correct (diamonds; crosses where its confidence is below the cut-off). Place each body part, "
                       "then retrain (`ethopose pose train`).")
        try:
            from dashboard.labelling.page import show
        except ImportError:
            st.warning("The labelling page is not installed in this version.")
        else:
            show(resolve_inside(root, project))
with tab_train:
    st.markdown(
        "Train and evaluate a pose model on the labelled frames, then analyse the cohort's videos:\n\n"
        "```bash\n"
        "ethopose pose --help            # project, frames, train, evaluate, analyze\n"
        "ethopose pose train PROJECT     # writes a model folder\n"
        "ethopose run open_field cohort.csv --out results --model MODEL_DIR\n"
        "```\n"
        "A cohort row with `video_path` (and no `pose_path`) is analysed with `--model`."
    )
