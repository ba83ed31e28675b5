"""Per-animal quality control: frame with keypoints, trajectory, occupancy, confidence per keypoint."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.data import (
    frame_jpeg,
    get_root,
    identity_source,
    identity_source_rel,
    open_animal,
    open_pose,
    open_pose_file,
    open_results,
    require_animals,
    require_results,
    video_inside_root,
)
from dashboard.frames import SliderFrame, arena_canvas, colour_key_html, draw_keypoints, encode_jpeg
from dashboard.model_eval import find_evaluation, read_model_error
from dashboard.qc_figures import (
    confidence_cutoff,
    confidence_figure,
    occupancy_figure,
    trajectory_figure,
)
from dashboard.qc_table import worst_frames
from dashboard.relabel import relabel_section
from dashboard.threed_section import show_3d
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

res = open_results(root, rel)
evaluation = find_evaluation(root, res.root, res.run_info)
if evaluation is not None:
    try:
        model = read_model_error(evaluation)
    except ValueError as exc:
        st.error(f"Pose model evaluation unreadable: {exc}")
    else:
        def _fmt(v: float | None, pct: bool = True) -> str:
            return "–" if v is None else (f"{100 * v:.1f} % of the animal size" if pct else f"{v:.1f} px")

        text = (f"Pose model error (from {evaluation.parent.name}/{evaluation.name}): test "
                f"{_fmt(model.test_mean_px, pct=False)} = {_fmt(model.test_normalized_error)}, train "
                f"{_fmt(model.train_normalized_error)}")
        if model.failed:
            lines = [x.strip() for x in (model.warning or "").splitlines() if x.strip()]
            st.error(f"**Pose model FAILED** — {text}\n\n" + "  \n".join(lines[1:]))
        else:
            st.success(f"Pose model passed — {text}")

worst = worst_frames(conf, cutoff, kps)
video = video_inside_root(root, animal, pose)


def _go_to_worst() -> None:
    SliderFrame(st.session_state, "qc_frame", len(t)).go(st.session_state["qc_worst_pick"])


with st.expander("Worst frames (most keypoints below the cut-off)", expanded=bool(st.session_state.pop("qc_worst", False))):
    st.dataframe(worst.assign(time_s=t[worst["frame"].to_numpy()]), hide_index=True)
    st.selectbox("Go to frame", worst["frame"].tolist(), key="qc_worst_pick", index=None,
                 placeholder="pick a frame", on_change=_go_to_worst)
    relabel_section(root, animal, video, cutoff)
n_frames = len(t)
#: a frame every PLAY_INTERVAL_S while playing, advancing by a stride that keeps real time
PLAY_INTERVAL_S = 0.25
play_stride = max(1, int(round((animal.fps or 25.0) * PLAY_INTERVAL_S)))
frame_at = SliderFrame(st.session_state, "qc_frame", n_frames)


def _toggle_play() -> None:
    frame_at.current()
    if st.session_state.get("qc_playing", False) and "qc_shown_frame" in st.session_state:
        # pausing: stay on the frame last drawn, the one the user saw when clicking
        frame_at.go(st.session_state["qc_shown_frame"])
    st.session_state["qc_playing"] = not st.session_state.get("qc_playing", False)


def _step(delta: int) -> None:
    frame_at.go(frame_at.current() + delta)


playing = bool(st.session_state.get("qc_playing", False))
is_3d = pos.shape[1] == 3  # a triangulated pose (mm): no image frame, no floor occupancy in pixels


@st.fragment(run_every=PLAY_INTERVAL_S if playing else None)
def _player() -> None:
    """Frame controls, the frame (JPEG with keypoints drawn) and the trajectory; reruns alone."""
    at = frame_at.current()
    if st.session_state.get("qc_playing", False):
        if at >= n_frames - 1:
            # the end: a whole-page rerun, so the button offers Play again and the timer stops
            st.session_state["qc_playing"] = False
            st.rerun()
        at = min(at + play_stride, n_frames - 1)
    frame_at.draw(at)
    c_prev, c_next, c_slider = st.columns([2, 2, 9], vertical_alignment="bottom")
    c_prev.button("Prev", icon=":material/chevron_left:", key="qc_prev", on_click=_step, args=(-1,), help="previous frame (←)", shortcut="left")
    c_next.button("Next", icon=":material/chevron_right:", key="qc_next", on_click=_step, args=(1,), help="next frame (→)", shortcut="right")
    frame = c_slider.slider("Frame", 0, n_frames - 1, key="qc_frame")
    left, right = st.columns(2)
    with left:
        st.subheader("Frame")
        xy, cf = pos[frame], conf[frame]
        jpeg = None
        if video is not None:
            jpeg = frame_jpeg(str(video), video.stat().st_mtime, frame, xy, cf, tuple(kps), cutoff)
            if jpeg is None:
                st.warning(f"Frame {frame} of {video.name} cannot be decoded: keypoints drawn on the arena outline.")
        else:
            st.caption("No video inside the dashboard root for this animal: keypoints drawn on the arena outline.")
        if jpeg is None:
            canvas = arena_canvas(animal.geometry.get("arena_corners_px"), pos.transpose(1, 0, 2).reshape(2, -1))
            jpeg = encode_jpeg(draw_keypoints(canvas, xy, cf, kps, cutoff, labels=False))
        st.session_state["qc_shown_frame"] = frame
        st.image(jpeg, caption=f"frame {frame} (t = {t[frame]:.2f} s) · filled: confidence ≥ {cutoff:g}, "
                 f"crosses: below", width="stretch")
        st.markdown(colour_key_html(kps, cutoff), unsafe_allow_html=True)
    with right:
        st.subheader("Trajectory")
        st.plotly_chart(trajectory_figure(animal.frames, animal.geometry, frame), key="qc_traj")
        st.caption("path of the centre keypoint over the arena outline; dot: this frame")


source = identity_source(root, animal.meta)
if source is not None:
    n_ind, n_sus = source
    st.info(f"The pose file of this animal holds {n_ind} animals ({n_sus} identity swap suspects); the results "
            "analyse the first. Review and correct their identities, then re-run the protocol.")
    if st.button("Review identities", icon=":material/swap_horiz:", key="qc_identities"):
        st.session_state["pr_file"] = identity_source_rel(root, animal.meta)
        st.switch_page("pages/pose_review.py")
if is_3d:
    show_3d(open_pose_file(root, animal.folder / "pose.nc"), key="qc3d")
else:
    st.button("Pause" if playing else "Play", icon=":material/pause:" if playing else ":material/play_arrow:",
              key="qc_play", on_click=_toggle_play,
              help=f"plays {play_stride} frame(s) every {PLAY_INTERVAL_S:g} s (real time at {animal.fps:g} fps)")
    _player()
left, right = st.columns(2)
with left:
    st.subheader("Occupancy")
    if is_3d:
        st.caption("Floor occupancy is binned in image pixels: not drawn for a 3D pose (its path and heights are above).")
    else:
        st.plotly_chart(occupancy_figure(*occupancy_histogram(animal.frames, animal.geometry)), key="qc_heat")
        st.caption("% of tracked frames per floor bin; never-visited floor white")
with right:
    st.subheader("Confidence per keypoint")
    st.plotly_chart(confidence_figure(t, conf, kps, cutoff), key="qc_conf")
    st.caption(f"cut-off {cutoff:g} (dashed red); mean confidence {np.nanmean(conf):.3f}; "
               f"NaN positions after filtering: {np.isnan(pos[:, 0]).mean() * 100:.1f} %")
