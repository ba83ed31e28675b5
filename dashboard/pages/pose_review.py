"""Review a pose file: the identities of several animals (swap suspects, swap, undo) and 3D trajectories.

Any pose file under the root (``ethopose pose track`` / ``triangulate`` output, DeepLabCut,
SLEAP). Several individuals: the swap-suspect table, a frame viewer that jumps to a suspect
with every animal in its identity's colour, "swap A and B from this frame on" written into
the file (NetCDF) with an undo, and each identity's path. A 3D pose: the path in mm and the
height above the floor (:mod:`dashboard.threed_view`).
"""

from __future__ import annotations

import logging

import numpy as np
import streamlit as st

from dashboard.data import get_root, open_pose_file, pose_files, pose_video, video_reader
from dashboard.frames import SliderFrame, arena_canvas, encode_jpeg
from dashboard.identities import (
    correctable,
    corrections,
    draw_identities,
    identity_key_html,
    identity_tracks,
    identity_trajectory_figure,
    suspect_table,
    swap_in_place,
    swap_pair,
    undo_depth,
    undo_last,
)
from dashboard.paths import resolve_inside
from dashboard.threed_section import show_3d

st.title("Pose file review")
root = get_root()
files = pose_files(root)
if not files:
    st.info("No pose file (.nc, .h5, .slp) under the dashboard root.")
    st.stop()
if st.session_state.get("pr_file") not in files:
    st.session_state["pr_file"] = files[0]
rel = st.selectbox("Pose file", files, key="pr_file")
path = resolve_inside(root, rel)
ds = open_pose_file(root, rel)
names = [str(i) for i in ds["individual"].values]
kps = [str(k) for k in ds["keypoint"].values]
fps = ds.attrs.get("fps")
st.caption(f"{ds.sizes['time']} frames" + (f" at {fps:g} fps" if fps else " (no frame rate)")
           + f" · {len(names)} individual(s): {', '.join(names)} · {len(kps)} keypoints · space "
           + ", ".join(map(str, ds["space"].values)))
message = st.session_state.pop("pr_message", None)
if message:
    {"ok": st.success, "error": st.error}[message[0]](message[1])

if int(ds.sizes["space"]) == 3:
    show_3d(ds, key="pr3d")
if len(names) < 2:
    if int(ds.sizes["space"]) != 3:
        st.info("One animal in 2D: nothing to review here (its tracking quality is on the Animal QC page "
                "once `ethopose run` has analysed it).")
    st.stop()

# ----------------------------------------------------------------------------------- identities
from pose.dataset import frame_numbers  # noqa: E402
from pose.tracking import summarize_identity_quality  # noqa: E402

st.header("Identities")
frames = frame_numbers(ds)
n_rows = len(frames)
table = suspect_table(ds)
quality = summarize_identity_quality(ds)
verdict = quality["identity_quality"]
counts = table["kind"].value_counts().to_dict()
summary = (f"{len(table)} swap suspects (" + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")"
           if len(table) else "no swap suspect")
{"ok": st.success, "unreliable": st.error}.get(verdict, st.info)(
    f"Identity confidence **{verdict}**: {quality['identity_reason']} · {summary} to review (a swap between "
    "two confident tracks, e.g. after a crossing, shows as a jump here, not as a low confidence)")


def _row_of(frame_number: int) -> int:
    return int(np.clip(np.searchsorted(frames, int(frame_number)), 0, n_rows - 1))


frame_at = SliderFrame(st.session_state, "pr_frame", n_rows)  # a stale slider echo never undoes a jump


#: the suspects as the list shows them; a pick is kept as its label, so a table that changed (after a
#: swap or an undo) never turns an old pick into another row
labels = [f"frame {r.frame} ({r.time_s:.2f} s) · {r.individuals} · {r.reason}" for r in table.itertuples()]
row_of_label = {label: i for i, label in enumerate(labels)}


def _go_to_suspect() -> None:
    i = row_of_label.get(st.session_state.get("pr_suspect"))
    if i is None:
        return
    row = table.iloc[i]
    frame_at.go(_row_of(row["frame"]))
    st.session_state["pr_a"], st.session_state["pr_b"] = swap_pair(row, names)


def _step_suspect(direction: int) -> None:
    current = int(frames[frame_at.current()])
    cand = np.flatnonzero(table["frame"].to_numpy() > current) if direction > 0 else \
        np.flatnonzero(table["frame"].to_numpy() < current)
    if len(cand):
        st.session_state["pr_suspect"] = labels[int(cand[0] if direction > 0 else cand[-1])]
        _go_to_suspect()


st.dataframe(table.drop(columns="kind"), hide_index=True, key="pr_table",
             column_config={"time_s": st.column_config.NumberColumn("time (s)", format="%.2f"),
                            "margin": st.column_config.NumberColumn("margin", format="%.2f",
                                                                    help="lowest identity confidence over the event")})
if st.session_state.get("pr_suspect") not in row_of_label:
    st.session_state["pr_suspect"] = None
c_pick, c_prev, c_next = st.columns([6, 2, 2], vertical_alignment="bottom")
c_pick.selectbox("Go to suspect", labels, key="pr_suspect", placeholder="pick a suspect", on_change=_go_to_suspect)
c_prev.button("Previous suspect", icon=":material/skip_previous:", key="pr_prev", on_click=_step_suspect, args=(-1,))
c_next.button("Next suspect", icon=":material/skip_next:", key="pr_next", on_click=_step_suspect, args=(1,))

frame_at.draw()
row = st.slider("Frame (row)", 0, n_rows - 1, key="pr_frame")
frame_no = int(frames[row])
cutoff = st.number_input("Confidence cut-off (drawing only)", 0.0, 1.0, 0.5, 0.05, key="pr_cutoff",
                         help="keypoints below it are drawn as crosses; DeepLabCut and SLEAP scores differ")
pos = ds["position"].transpose("time", "space", "keypoint", "individual").values
conf = ds["confidence"].transpose("time", "keypoint", "individual").values
tracks = identity_tracks(ds)
left, right = st.columns(2)
with left:
    video = pose_video(root, path, ds.attrs.get("video_path"))
    rgb = None
    if video is not None:
        reader = video_reader(video)
        try:
            rgb = reader.read(frame_no) if reader is not None else None
        except (IndexError, OSError, ValueError):
            logging.getLogger("dashboard").exception("cannot read frame %d of %s", frame_no, video)
    if rgb is None:
        st.caption("No readable video inside the dashboard root for this file: keypoints drawn on a plain canvas.")
        rgb = arena_canvas(None, pos[:, :2].transpose(1, 0, 2, 3).reshape(2, -1))
    st.image(encode_jpeg(draw_identities(rgb, pos[row, :2], conf[row], cutoff)),
             caption=f"frame {frame_no} (t = {float(ds['time'].values[row]):.2f} s)", width="stretch")
    st.markdown(identity_key_html(names), unsafe_allow_html=True)
with right:
    st.plotly_chart(identity_trajectory_figure(tracks, names, row), key="pr_traj")
    st.caption("each identity's centroid path (one colour per identity): a swap shows as a path jumping to the "
               "other animal's; large dots: this frame")

st.subheader("Correct")
if not correctable(path):
    st.info(f"{path.suffix} files are reviewed read-only: identities are corrected in NetCDF files, which keep "
            "the history (`ethopose pose track FILE --out tracked.nc`).")
else:
    c_a, c_b = st.columns(2)
    for k, default in (("pr_a", names[0]), ("pr_b", names[1])):
        if st.session_state.get(k) not in names:
            st.session_state[k] = default
    a = c_a.selectbox("Identity A", names, key="pr_a")
    b = c_b.selectbox("Identity B", names, key="pr_b")

    def _swap() -> None:
        try:
            swap_in_place(path, a, b, frame_no)
        except (ValueError, OSError) as exc:
            logging.getLogger("dashboard").exception("swap in %s failed", path)
            st.session_state["pr_message"] = ("error", f"Not swapped: {str(exc).replace(str(root), '<root>')}")
            return
        st.session_state["pr_message"] = ("ok", f"Swapped {a} and {b} from frame {frame_no} on; written to {rel} "
                                                "(recorded in its history)")

    def _undo() -> None:
        done = undo_last(path)
        st.session_state["pr_message"] = ("ok", f"Undone: {rel} is back as before its last correction") if done \
            else ("error", "Nothing to undo")

    c_go, c_undo = st.columns(2)
    c_go.button(f"Swap {a} and {b} from frame {frame_no} on", icon=":material/swap_horiz:", key="pr_swap",
                on_click=_swap, disabled=a == b, type="primary")
    depth = undo_depth(path)
    c_undo.button("Undo last correction", icon=":material/undo:", key="pr_undo", on_click=_undo, disabled=depth == 0,
                  help=f"{depth} correction(s) can be undone")
    done = corrections(ds)
    if len(done):
        st.caption("Corrections recorded in the file's history:")
        st.dataframe(done, hide_index=True, key="pr_done")
