"""Per-animal quality control: frame with keypoints, confidence, trajectory, occupancy."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard.data import (
    get_root,
    open_animal,
    open_pose,
    read_video_frame,
    require_animals,
    require_results,
    video_inside_root,
)
from protocols.report import occupancy_histogram

st.title("Animal QC")
root = get_root()
rel = require_results(root)
keys = require_animals(root, rel)
key = st.selectbox("Animal", keys, key="qc_animal")
animal = open_animal(root, rel, key)
pose = open_pose(root, animal)
pos, conf, kps, t = pose["position"], pose["confidence"], pose["keypoints"], pose["time"]
st.caption(f"group **{animal.group}** · {len(t)} frames at {animal.fps:g} fps · "
           + " · ".join(f"{k} = {v:.3g}" for k, v in animal.endpoints.items()))

frame = st.slider("Frame", 0, len(t) - 1, 0, key="qc_frame")
left, right = st.columns([3, 2])
with left:
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
    fig.update_layout(height=460, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      title=f"frame {frame} (t = {t[frame]:.2f} s)", showlegend=False)
    st.plotly_chart(fig, key="qc_frame_fig")
with right:
    tab_c, tab_t, tab_h = st.tabs(["Confidence", "Trajectory", "Occupancy"])
    with tab_c:
        cf = go.Figure()
        for j, k in enumerate(kps):
            cf.add_trace(go.Scattergl(x=t, y=conf[:, j], mode="lines", name=k, line={"width": 1}))
        cf.add_vline(x=t[frame], line_dash="dot")
        cf.update_layout(height=400, yaxis_title="confidence", yaxis_range=[0, 1.05], xaxis_title="time (s)", margin={"t": 20})
        st.plotly_chart(cf, key="qc_conf")
        st.caption(f"mean confidence: {np.nanmean(conf):.3f}; NaN positions after filtering: "
                   f"{np.isnan(pos[:, 0]).mean() * 100:.1f} %")
    with tab_t:
        tf = go.Figure(go.Scattergl(x=animal.frames["x_px"], y=animal.frames["y_px"], mode="lines",
                                    line={"width": 1}, name="path"))
        tf.add_trace(go.Scatter(x=[animal.frames["x_px"].iloc[frame]], y=[animal.frames["y_px"].iloc[frame]],
                                mode="markers", marker={"size": 12, "color": "red"}, name="now"))
        tf.update_yaxes(autorange="reversed", scaleanchor="x")
        tf.update_layout(height=400, margin={"t": 20}, showlegend=False)
        st.plotly_chart(tf, key="qc_traj")
    with tab_h:
        h, xe, ye = occupancy_histogram(animal.frames, animal.geometry)
        hf = go.Figure(go.Heatmap(z=h.T, x=(xe[:-1] + xe[1:]) / 2, y=(ye[:-1] + ye[1:]) / 2,
                                  colorscale="Magma", colorbar={"title": "fraction"}))
        hf.update_yaxes(autorange="reversed", scaleanchor="x")
        hf.update_layout(height=400, margin={"t": 20})
        st.plotly_chart(hf, key="qc_heat")
