"""Labelling and training: the labelling page of a pose project inside the root, and how to train."""

from __future__ import annotations

import streamlit as st

from dashboard.data import get_root
from dashboard.paths import resolve_inside

st.title("Labelling & training")
root = get_root()
projects = sorted({str(p.parent.relative_to(root)) for p in root.glob("*/config.yaml")}
                  | ({"."} if (root / "config.yaml").is_file() else set()))
tab_label, tab_train = st.tabs(["Label frames", "Train a model"])
with tab_label:
    if not projects:
        st.info("No pose project (a folder with config.yaml and labeled-data/) inside the root. "
                "Create one with `ethopose pose` commands, or start the dashboard on the project.")
    else:
        project = st.selectbox("Project", projects, key="lab_project")
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
