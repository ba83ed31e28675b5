"""The Animal QC page's way into the refinement loop: worst frames -> outlier extraction -> labelling.

One button extracts the animal's low-confidence frames into a pose project inside the root
(:func:`dashboard.refine_link.extract_for_labelling`) and opens the labelling page on them,
with the model's predictions drawn as machine labels to correct. What it needs and lacks
(a video, a project, matching body parts) is said on the page instead of a disabled button.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from dashboard.refine_link import extract_for_labelling, pose_projects, predictions_file
from protocols.results import AnimalResult


def _open_labelling(project: str, video_folder: str, cutoff: float) -> None:
    st.session_state["lab_project"] = project
    st.session_state["lab_pcut"] = float(cutoff)  # predictions below the QC cut-off drawn as crosses
    st.session_state["lab_video"] = video_folder
    st.session_state["lab_mode"] = "Label"
    for k in ("lab_store", "lab_history", "lab_frame"):
        st.session_state.pop(k, None)  # the labelling page reopens the folder with the new frames
    st.switch_page("pages/labelling.py")


def relabel_section(root: Path, animal: AnimalResult, video: Path | None, cutoff: float) -> None:
    """Under the worst-frames table: extract them for labelling and open the labelling page."""
    st.markdown("**Relabel them** — the frames with a body part below the cut-off, spread over "
                "appearance, go into a pose project with the model's predictions to correct "
                "(`ethopose pose outliers --method uncertain`); retrain after labelling.")
    projects = pose_projects(root)
    if video is None:
        st.caption("No video of this animal inside the dashboard root: its frames cannot be extracted.")
        return
    if not projects:
        st.caption("No pose project (a folder with config.yaml) inside the dashboard root to label them in: "
                   "create one with `ethopose pose` commands.")
        return
    c_proj, c_n, c_go = st.columns([3, 1, 2], vertical_alignment="bottom")
    project = c_proj.selectbox("Pose project", projects, key="qc_relabel_project")
    n_frames = c_n.number_input("Frames", 1, 100, 10, key="qc_relabel_n")
    if c_go.button("Extract and label", icon=":material/edit:", key="qc_relabel_go"):
        try:
            pred = predictions_file(root, animal.meta, animal.folder / "pose.nc")
            got = extract_for_labelling(root, project, video, pred, name=animal.key, cutoff=cutoff,
                                        n_frames=int(n_frames))
        except (ValueError, FileNotFoundError, OSError) as exc:
            logging.getLogger("dashboard").exception("extracting frames of %s failed", animal.key)
            st.error(f"Could not extract the frames: {str(exc).replace(str(root), '<root>')}")
            return
        if not len(got.frames):
            st.info(f"No frame of {animal.key} has a body part below the cut-off {cutoff:g}: nothing to relabel.")
            return
        st.session_state["lab_message_from_qc"] = (
            f"{len(got.frames)} frames of {animal.key} extracted ({got.n_candidates} candidates below {cutoff:g})")
        _open_labelling(project, got.folder.name, cutoff)
