"""Per-animal quality control: frame with keypoints, trajectory, occupancy, confidence per keypoint."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard.data import (
    get_root,
    open_animal,
    open_pose,
    open_results,
    read_video_frame,
    require_animals,
    require_results,
    video_inside_root,
)
from dashboard.qc_figures import (
    confidence_cutoff,
    confidence_figure,
    occupancy_figure,
    trajectory_figure,
)
from dashboard.qc_table import worst_frames
from protocols.report import occupancy_histogram

st.title("Animal QC")
root = get_root()
rel = require_results(root)
keys = require_animals(root, rel)
key = st.selectbox("Animal", keys, key="qc_animal")
animal = open_animal(root, rel, key)
pose = open_pose(root, animal)
pos, conf, kps, t = pose["position"], pose["confidence"], pose["keypoints"], pose["time"]
cutoff = confidence_cutoff(open_results(root, rel).protocol)
st.caption(f"group **{animal.group}** · {len(t)} frames at {animal.fps:g} fps · "
           + " · ".join(f"{k} = {v:.3g}" for k, v in animal.endpoints.items()))
flag = str(animal.quality.get("qc_flag", "") or "")
if flag:
    reasons = str(animal.quality.get("qc_reasons", "") or "") or "all tracking measures within limits"
    {"ok": st.success, "warn": st.warning}.get(flag, st.error)(f"Tracking QC: **{flag}** — {reasons}")

worst = worst_frames(conf, cutoff, kps)


def _go_to_worst() -> None:
    st.session_state["qc_frame"] = int(st.session_state["qc_worst_pick"])


with st.expander("Worst frames (most keypoints below the cut-off)", expanded=bool(st.session_state.pop("qc_worst", False))):
    st.dataframe(worst.assign(time_s=t[worst["frame"].to_numpy()]), hide_index=True)
    st.selectbox("Go to frame", worst["frame"].tolist(), key="qc_worst_pick", index=None,
                 placeholder="pick a frame", on_change=_go_to_worst)
if st.session_state.get("qc_frame", 0) > len(t) - 1:
    st.session_state["qc_frame"] = 0
frame = st.slider("Frame", 0, len(t) - 1, key="qc_frame")
left, right = st.columns(2)
with left:
    st.subheader("Frame")
    video = video_inside_root(root, animal, pose)
    fig = go.Figure()
    image = read_video_frame(str(video), frame) if video is not None else None
    if image is not None:
        fig.add_trace(go.Image(z=image))
    else:
        corners = animal.geometry.get("arena_corners_px")
        if corners:
            c = np.asarray(corners + corners[:1])
            fig.add_trace(go.Scatter(x=c[:, 0], y=c[:, 1], mode="lines", line={"color": "grey"}, name="arena"))
        st.caption("No video inside the dashboard root for this animal: keypoints drawn on the arena outline.")
    xy = pos[frame]
    fig.add_trace(go.Scatter(x=xy[0], y=xy[1], mode="markers+text", text=kps, textposition="top center",
                             marker={"size": 9, "color": conf[frame], "colorscale": "Viridis", "cmin": 0, "cmax": 1,
                                     "showscale": True, "colorbar": {"title": "conf."}}, name="keypoints"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x")
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      title=f"frame {frame} (t = {t[frame]:.2f} s)", showlegend=False)
    st.plotly_chart(fig, key="qc_frame_fig")
with right:
    st.subheader("Trajectory")
    st.plotly_chart(trajectory_figure(animal.frames, animal.geometry, frame), key="qc_traj")
left, right = st.columns(2)
with left:
    st.subheader("Occupancy")
    st.plotly_chart(occupancy_figure(*occupancy_histogram(animal.frames, animal.geometry)), key="qc_heat")
with right:
    st.subheader("Confidence per keypoint")
    st.plotly_chart(confidence_figure(t, conf, kps, cutoff, frame), key="qc_conf")
    st.caption(f"cut-off {cutoff:g} (dashed red); mean confidence {np.nanmean(conf):.3f}; "
               f"NaN positions after filtering: {np.isnan(pos[:, 0]).mean() * 100:.1f} %")
