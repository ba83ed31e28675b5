"""The labelling page of the dashboard (Streamlit): place, move and review body-part labels.

``show(project_dir)`` draws the page; ``app.py`` beside this module runs it on its own
(``ethopose label PROJECT``). All editing goes through :class:`~pose.refine.labels.LabelStore`,
which saves DeepLabCut's ``CollectedData_<scorer>.h5``/``.csv`` after every change.

Using it: pick the body part (sidebar, or its entry in the colour key under the frame; the
current one is ringed in white), click on the frame to place it (the next unlabelled body part
is then selected). Clicks are sub-pixel at any zoom (:mod:`dashboard.labelling.canvas`). To
move a label, drag it, or click it (its body part becomes current) and click where it goes.
Buttons (and keys): previous/next frame (←/→), not visible (N), clear (X), undo (U), zoom.
"Not visible" and "clear" on a placed label ask for confirmation (Enter = erase, Esc =
keep); every edit of the session can be undone. Model predictions to correct (from
``ethopose pose outliers``) are open diamonds, low-confidence ones small crosses; "accept
predictions" copies the confident ones into the labels. The label file is written back in
the layout it came in (:class:`~dashboard.labelling.store.LayoutKeepingStore`). A labelled
frame whose image is missing is shown as a message naming the file; its labels are kept.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

import cv2
import numpy as np
import streamlit as st

from dashboard.labelling.canvas import canvas_args, frame_source, label_canvas
from dashboard.labelling.figure import compute_view, draw_skeleton
from dashboard.labelling.store import LayoutKeepingStore, UndoHistory
from pose.refine.labels import LabelStore, ProjectInfo, read_project_info

ZOOMS = [1, 2, 4, 8]
_S = st.session_state


def _store() -> LabelStore:
    return _S["lab_store"]


@st.cache_data(show_spinner=False, max_entries=64)
def _read_rgb(path: str, mtime: float) -> np.ndarray:
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"{path}: cannot read image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_frame(info: ProjectInfo, image: str) -> np.ndarray:
    """RGB pixels of a project-relative image path."""
    path = info.project_dir / image
    return _read_rgb(str(path), path.stat().st_mtime if path.exists() else 0.0)


# ------------------------------------------------------------------ callbacks
def _next_open_keypoint(store: LabelStore, image: str, after: int) -> int:
    n = len(store.keypoints)
    i = store.index_of(image)
    for step in range(1, n + 1):
        k = (after + step) % n
        if not np.isfinite(store.xy[i, k, 0]) and not store.is_not_visible(image, store.keypoints[k]):
            return k
    return after


def _image() -> str:
    return _store().images[_S["lab_frame"]]


def _history() -> UndoHistory:
    return _S.setdefault("lab_history", UndoHistory())


def _place(x: float, y: float, k: int | None = None) -> None:
    store = _store()
    kp = _S["lab_kp"] if k is None else int(k)
    _history().record(store, _image(), [store.keypoints[kp]])
    store.set_point(_image(), store.keypoints[kp], x, y)
    if k is None:
        _S["lab_kp"] = _next_open_keypoint(store, _image(), kp)
    _S["lab_message"] = f"placed {store.keypoints[kp]} at ({x:.2f}, {y:.2f})"


def _on_canvas_event() -> None:
    """One event of the label canvas: click (place), move (drag a label) or select."""
    event = _S.get("lab_canvas") or {}
    seq = event.get("seq")
    if seq is None or seq == _S.get("lab_last_seq"):
        return
    _S["lab_last_seq"] = seq
    kind = event.get("kind")
    n = len(_store().keypoints)
    if kind == "select" and 0 <= int(event.get("k", -1)) < n:
        _S["lab_kp"] = int(event["k"])
    elif kind == "move" and 0 <= int(event.get("k", -1)) < n:
        _place(float(event["x"]), float(event["y"]), k=int(event["k"]))
        _S["lab_kp"] = int(event["k"])
    elif kind == "click":
        _place(float(event["x"]), float(event["y"]))


def _on_place_typed() -> None:
    _place(float(_S["lab_x"]), float(_S["lab_y"]))


def _erase(action: str, k: int) -> None:
    store = _store()
    name = store.keypoints[k]
    _history().record(store, _image(), [name])
    if action == "hidden":
        store.mark_not_visible(_image(), name)
        _S["lab_kp"] = _next_open_keypoint(store, _image(), k)
        _S["lab_message"] = f"{name} marked not visible (U: undo)"
    else:
        store.clear_point(_image(), name)
        _S["lab_message"] = f"{name} cleared (U: undo)"


def _ask_or_erase(action: str) -> None:
    """N / X: erase at once when nothing is placed, else ask for confirmation first."""
    store, k = _store(), _S["lab_kp"]
    if np.isfinite(store.xy[store.index_of(_image()), k]).all():
        _S["lab_confirm"] = (action, _image(), k)
    else:
        _erase(action, k)


def _on_not_visible() -> None:
    _ask_or_erase("hidden")


def _on_clear() -> None:
    _ask_or_erase("clear")


def _on_confirm(yes: bool) -> None:
    action, image, k = _S.pop("lab_confirm")
    if yes and image == _image():
        _erase(action, k)
    else:
        _S["lab_message"] = f"kept {_store().keypoints[k]}"


def _on_undo() -> None:
    step = _history().undo(_store())
    if step is None:
        _S["lab_message"] = "nothing to undo"
        return
    store = _store()
    e = step[0]
    if e.image in store.images:
        _S["lab_frame"] = store.images.index(e.image)
        _S["lab_kp"] = store.keypoints.index(e.keypoint)
    _S["lab_message"] = f"undid the last change of {', '.join(x.keypoint for x in step)}"


def _on_accept_machine() -> None:
    _history().record(_store(), _image(), list(_store().keypoints))
    n = _store().accept_machine(_image(), p_cutoff=_S.get("lab_pcut", 0.6))
    _S["lab_message"] = f"copied {n} predictions into the labels"


def _on_step(delta: int) -> None:
    n = len(_store().images)
    _S["lab_frame"] = int(np.clip(_S["lab_frame"] + delta, 0, n - 1))
    _S.pop("lab_confirm", None)
    _S["lab_kp"] = _next_open_keypoint(_store(), _image(), -1)


def _on_video_change() -> None:
    _S.pop("lab_store", None)
    _S.pop("lab_history", None)


# ------------------------------------------------------------------ views
def _open_store(info: ProjectInfo, video: str) -> LabelStore:
    store = _S.get("lab_store")
    if store is None or store.video != video or store.info.project_dir != info.project_dir:
        store = LayoutKeepingStore(info, video)
        _S["lab_store"] = store
        _S["lab_frame"] = 0
        _S["lab_kp"] = _next_open_keypoint(store, store.images[0], -1) if store.images else 0
    return store


def _keypoint_label(store: LabelStore, image: str, k: int) -> str:
    name = store.keypoints[k]
    x, y = store.xy[store.index_of(image), k]
    if np.isfinite(x):
        return f"● {name} ({x:.1f}, {y:.1f})"
    if store.is_not_visible(image, name):
        return f"× {name} (not visible)"
    return f"○ {name}"


def _confirm_box() -> None:
    action, image, k = _S["lab_confirm"]
    name = _store().keypoints[k]
    what = "mark it not visible" if action == "hidden" else "clear it"
    st.warning(f"**{name}** is placed on this frame: erase its label and {what}?")
    c1, c2, _ = st.columns([1, 1, 4])
    c1.button("Erase (Enter)", key="lab_btn_yes", on_click=_on_confirm, args=(True,), shortcut="enter", type="primary")
    c2.button("Keep (Esc)", key="lab_btn_no", on_click=_on_confirm, args=(False,), shortcut="escape")


def _label_view(info: ProjectInfo, store: LabelStore) -> None:
    image = _image()
    i = store.index_of(image)
    with st.sidebar:
        st.radio("Body part", range(len(store.keypoints)), key="lab_kp",
                 format_func=lambda k: _keypoint_label(store, image, k))
        c1, c2 = st.columns(2)
        c1.button("Not visible", key="lab_btn_hidden", on_click=_on_not_visible, shortcut="n")
        c2.button("Clear", key="lab_btn_clear", on_click=_on_clear, shortcut="x")
        st.button(f"Undo ({len(_history().steps)} change(s) this session)", key="lab_btn_undo", on_click=_on_undo,
                  shortcut="u", disabled=not _history().steps, help="undo the last change of this session (U)")
        zoom = st.segmented_control("Zoom", ZOOMS, default=1, key="lab_zoom",
                                    format_func=lambda z: f"{z}x") or 1
        with st.expander("Type coordinates"):
            st.number_input("x (px)", key="lab_x", value=0.0, step=0.1, format="%.2f")
            st.number_input("y (px)", key="lab_y", value=0.0, step=0.1, format="%.2f")
            st.button("Place", key="lab_btn_place", on_click=_on_place_typed)
        machine = store.machine_points(image)
        if machine is not None:
            _S.setdefault("lab_pcut", 0.6)  # or the QC page's cut-off, set when it sent the frames here
            st.slider("Low-confidence below", 0.0, 1.0, step=0.05, key="lab_pcut")
            st.button("Accept predictions", key="lab_btn_accept", on_click=_on_accept_machine)
    c1, c2, c3 = st.columns([1, 1, 4])
    c1.button("Previous", icon=":material/chevron_left:", key="lab_btn_prev", on_click=_on_step, args=(-1,), shortcut="left")
    c2.button("Next", icon=":material/chevron_right:", key="lab_btn_next", on_click=_on_step, args=(1,), shortcut="right")
    done = sum(store.n_done(img) == len(store.keypoints) for img in store.images)
    c3.markdown(f"**{Path(image).name}** — frame {i + 1} of {len(store.images)} · "
                f"{done} frames complete")
    if "lab_confirm" in _S:
        _confirm_box()
    message = _S.pop("lab_message", "")
    try:
        rgb = read_frame(info, image)
    except FileNotFoundError:
        n_placed = int(np.isfinite(store.xy[i, :, 0]).sum())
        st.error(f"The image **{image}** is missing from the project folder. Its {n_placed} label(s) are "
                 "kept in the label file; put the image back (or extract the frame again) to see and edit "
                 "them. Use Previous / Next to go on with the other frames.")
        return
    kp = _S["lab_kp"]
    center = store.xy[i, kp]
    if not np.isfinite(center).all() and machine is not None:
        center = machine[0][kp]
    view = compute_view(rgb.shape[1], rgb.shape[0], float(zoom), tuple(center))
    args = canvas_args(store.keypoints, store.xy[i], view, current=kp, zoom=float(zoom),
                       machine_xy=None if machine is None else machine[0],
                       machine_confidence=None if machine is None else machine[1],
                       p_cutoff=_S.get("lab_pcut", 0.6), skeleton=info.skeleton, message=message)
    label_canvas(_frame_uri(info, image, view), args, key="lab_canvas", on_change=_on_canvas_event)
    st.caption(f"click to place **{store.keypoints[kp]}** (sub-pixel) · drag a label to move it · "
               f"labels saved to {store.h5_path.name}")


def _frame_uri(info: ProjectInfo, image: str, view) -> str:
    path = info.project_dir / image
    return _frame_uri_cached(str(path), path.stat().st_mtime, (view.x0, view.y0, view.x1, view.y1))


@st.cache_data(show_spinner=False, max_entries=64)
def _frame_uri_cached(path: str, mtime: float, box: tuple[int, int, int, int]) -> str:
    from dashboard.labelling.figure import View

    return frame_source(_read_rgb(path, mtime), View(*box))


def _check_view(info: ProjectInfo, store: LabelStore) -> None:
    rows = [k for k, img in enumerate(store.images) if np.isfinite(store.xy[k]).any()]
    st.write(f"{len(rows)} labelled frames in {store.video}")
    if not rows:
        return
    per_page = 6
    pages = (len(rows) + per_page - 1) // per_page
    page = st.number_input("Page", 1, pages, 1, key="lab_check_page") - 1
    cols = st.columns(3)
    for j, k in enumerate(rows[page * per_page:(page + 1) * per_page]):
        img = store.images[k]
        try:
            drawn = draw_skeleton(read_frame(info, img), store.xy[k], store.keypoints, info.skeleton)
        except FileNotFoundError:
            cols[j % 3].error(f"{Path(img).name}: image missing from the project folder (labels kept)")
            continue
        cols[j % 3].image(drawn, caption=Path(img).name, width="stretch")


def _import_writers() -> None:
    for name in ("tables", "dask.array"):  # the HDF5 writer; xarray imports dask on first use
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _warm_up_h5_writer() -> None:
    """Import what the first save needs in the background (0.3 s per save after, not 4-5 s)."""
    if not _WARM:
        _WARM.append(threading.Thread(target=_import_writers, daemon=True))
        _WARM[0].start()


_WARM: list[threading.Thread] = []


def show(project_dir: Path) -> None:
    """Draw the labelling page for the project in ``project_dir``."""
    _warm_up_h5_writer()
    project_dir = Path(project_dir)
    try:
        info = read_project_info(project_dir)
    except (FileNotFoundError, ValueError) as err:
        st.error(str(err))
        return
    st.title(f"Labelling · {project_dir.name}")
    videos = info.videos
    if not videos:
        st.warning(f"No folders under {project_dir / 'labeled-data'}: extract frames first "
                   "(ethopose pose extract-frames).")
        return
    if _S.get("lab_video") not in videos:  # another project's folder (or one set by the QC page that is gone)
        _S.pop("lab_video", None)
    video = st.sidebar.selectbox("Video", videos, key="lab_video", on_change=_on_video_change)
    store = _open_store(info, video)
    if not store.images:
        st.warning(f"{store.folder} holds no images to label.")
        return
    mode = st.sidebar.radio("View", ["Label", "Check labels"], key="lab_mode", horizontal=True)
    if mode == "Label":
        _label_view(info, store)
    else:
        _check_view(info, store)
