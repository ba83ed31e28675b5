"""The labelling page of the dashboard (Streamlit): place, move and review body-part labels.

``show(project_dir)`` draws the page; ``app.py`` beside this module runs it on its own
(``ethopose label PROJECT``). All editing goes through :class:`~pose.refine.labels.LabelStore`,
which saves DeepLabCut's ``CollectedData_<scorer>.h5``/``.csv`` after every change.

Using it: pick the body part (sidebar; the current one is highlighted on the frame), click
on the frame to place it (the next unlabelled body part is then selected). To move a label,
click it (its body part becomes current) and click where it should go. A true mouse drag is
not available: Streamlit forwards plotly selections, not drags, in point-selection mode
(box selections are handled by ``_on_drag``: a box from a label moves it, any other box
zooms to it, for clients that send them).
Buttons (and keys): previous/next frame (←/→), not visible (N), clear (X), zoom. Model
predictions to correct (from ``ethopose pose outliers``) are open diamonds, low-confidence
ones small crosses; "accept predictions" copies the confident ones into the labels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import streamlit as st

from dashboard.labelling.figure import build_label_figure, compute_view, draw_skeleton, grid_step_px
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


def _place(x: float, y: float) -> None:
    store, kp = _store(), _S["lab_kp"]
    store.set_point(_image(), store.keypoints[kp], x, y)
    _S["lab_kp"] = _next_open_keypoint(store, _image(), kp)
    _S["lab_message"] = f"placed {store.keypoints[kp]} at ({x:.1f}, {y:.1f})"


def _selection(event) -> dict:
    if event is None:
        return {}
    sel = event.get("selection") if hasattr(event, "get") else getattr(event, "selection", None)
    return dict(sel or {})


def _on_canvas_select() -> None:
    key = f"lab_canvas_{_S['lab_canvas_n']}"
    sel = _selection(_S.get(key))
    _S["lab_canvas_n"] += 1  # a fresh chart next run: no stale selection
    boxes = sel.get("box") or []
    if boxes:
        _on_drag(boxes[0]["x"], boxes[0]["y"])
        return
    points = sel.get("points") or []
    if not points:
        return
    p = points[0]
    custom = p.get("customdata")
    custom = custom[0] if isinstance(custom, list) else custom
    x, y = float(p["x"]), float(p["y"])
    if custom is None or int(custom) < 0:  # a grid point: on top of another label?
        custom = _label_at(x, y)
    if custom is not None and int(custom) >= 0 and int(custom) != _S["lab_kp"]:
        _S["lab_kp"] = int(custom)  # clicked an existing label: make it current
        return
    _place(x, y)


def _label_at(x: float, y: float) -> int | None:
    """The placed body part within 1.5 grid steps of ``(x, y)``, if any (nearest)."""
    store = _store()
    labels = store.xy[store.index_of(_image())]
    d = np.hypot(labels[:, 0] - x, labels[:, 1] - y)
    d[~np.isfinite(d)] = np.inf
    k = int(np.argmin(d))
    return k if d[k] <= 1.5 * _S.get("lab_grid_step", 1) else None


def _on_drag(xs: list[float], ys: list[float]) -> None:
    """A drag (plotly box selection): from a label = move it; elsewhere = zoom to the box."""
    store = _store()
    i = store.index_of(_image())
    corners = np.array([(xs[a], ys[b]) for a in (0, 1) for b in (0, 1)], dtype=float)
    labels = store.xy[i]
    placed = np.flatnonzero(np.isfinite(labels[:, 0]))
    tol = max(4.0, 3.0 * _S.get("lab_grid_step", 1))
    if placed.size:
        d = np.linalg.norm(labels[placed][:, None, :] - corners[None], axis=-1)  # (label, corner)
        k, c = np.unravel_index(np.argmin(d), d.shape)
        if d[k, c] <= tol:
            target = corners[3 - c]  # the opposite corner is where the drag ended
            _S["lab_kp"] = int(placed[k])
            _place(float(target[0]), float(target[1]))
            _S["lab_kp"] = int(placed[k])
            return
    _S["lab_box"] = (min(xs), max(xs), min(ys), max(ys))


def _on_place_typed() -> None:
    _place(float(_S["lab_x"]), float(_S["lab_y"]))


def _on_not_visible() -> None:
    store, kp = _store(), _S["lab_kp"]
    store.mark_not_visible(_image(), store.keypoints[kp])
    _S["lab_kp"] = _next_open_keypoint(store, _image(), kp)
    _S["lab_message"] = f"{store.keypoints[kp]} marked not visible"


def _on_clear() -> None:
    store, kp = _store(), _S["lab_kp"]
    store.clear_point(_image(), store.keypoints[kp])
    _S["lab_message"] = f"{store.keypoints[kp]} cleared"


def _on_accept_machine() -> None:
    n = _store().accept_machine(_image(), p_cutoff=_S.get("lab_pcut", 0.6))
    _S["lab_message"] = f"copied {n} predictions into the labels"


def _on_reset_zoom() -> None:
    _S.pop("lab_box", None)


def _on_step(delta: int) -> None:
    n = len(_store().images)
    _S["lab_frame"] = int(np.clip(_S["lab_frame"] + delta, 0, n - 1))
    _S.pop("lab_box", None)
    _S["lab_kp"] = _next_open_keypoint(_store(), _image(), -1)
    _S["lab_canvas_n"] += 1


def _on_video_change() -> None:
    _S.pop("lab_store", None)


# ------------------------------------------------------------------ views
def _open_store(info: ProjectInfo, video: str) -> LabelStore:
    store = _S.get("lab_store")
    if store is None or store.video != video or store.info.project_dir != info.project_dir:
        store = LabelStore(info, video)
        _S["lab_store"] = store
        _S["lab_frame"] = 0
        _S["lab_kp"] = _next_open_keypoint(store, store.images[0], -1) if store.images else 0
        _S["lab_canvas_n"] = _S.get("lab_canvas_n", 0) + 1
    return store


def _keypoint_label(store: LabelStore, image: str, k: int) -> str:
    name = store.keypoints[k]
    x, y = store.xy[store.index_of(image), k]
    if np.isfinite(x):
        return f"● {name} ({x:.0f}, {y:.0f})"
    if store.is_not_visible(image, name):
        return f"⊘ {name} (not visible)"
    return f"○ {name}"


def _label_view(info: ProjectInfo, store: LabelStore) -> None:
    image = _image()
    i = store.index_of(image)
    with st.sidebar:
        st.radio("Body part", range(len(store.keypoints)), key="lab_kp",
                 format_func=lambda k: _keypoint_label(store, image, k))
        c1, c2 = st.columns(2)
        c1.button("Not visible", key="lab_btn_hidden", on_click=_on_not_visible, shortcut="n")
        c2.button("Clear", key="lab_btn_clear", on_click=_on_clear, shortcut="x")
        zoom = st.segmented_control("Zoom", ZOOMS, default=1, key="lab_zoom", on_change=_on_reset_zoom,
                                    format_func=lambda z: f"{z}x") or 1
        if "lab_box" in _S:
            st.button("Reset zoom", key="lab_btn_unzoom", on_click=_on_reset_zoom)
        with st.expander("Type coordinates"):
            st.number_input("x (px)", key="lab_x", value=0.0, step=1.0)
            st.number_input("y (px)", key="lab_y", value=0.0, step=1.0)
            st.button("Place", key="lab_btn_place", on_click=_on_place_typed)
        machine = store.machine_points(image)
        if machine is not None:
            st.slider("Low-confidence below", 0.0, 1.0, 0.6, 0.05, key="lab_pcut")
            st.button("Accept predictions", key="lab_btn_accept", on_click=_on_accept_machine)
    c1, c2, c3 = st.columns([1, 1, 4])
    c1.button("◀ Previous", key="lab_btn_prev", on_click=_on_step, args=(-1,), shortcut="left")
    c2.button("Next ▶", key="lab_btn_next", on_click=_on_step, args=(1,), shortcut="right")
    done = sum(store.n_done(img) == len(store.keypoints) for img in store.images)
    c3.markdown(f"**{Path(image).name}** — frame {i + 1} of {len(store.images)} · "
                f"{done} frames complete")
    if msg := _S.pop("lab_message", None):
        st.caption(msg)
    rgb = read_frame(info, image)
    kp = _S["lab_kp"]
    center = store.xy[i, kp]
    if not np.isfinite(center).all() and machine is not None:
        center = machine[0][kp]
    view = compute_view(rgb.shape[1], rgb.shape[0], float(zoom), tuple(center))
    if "lab_box" in _S:  # dragged a box on empty image: zoom to it
        x0, x1, y0, y1 = _S["lab_box"]
        box_zoom = max(1.0, min(rgb.shape[1] / max(x1 - x0, 8), rgb.shape[0] / max(y1 - y0, 8)))
        view = compute_view(rgb.shape[1], rgb.shape[0], box_zoom, ((x0 + x1) / 2, (y0 + y1) / 2))
    _S["lab_grid_step"] = grid_step_px(view)
    fig = build_label_figure(
        rgb, store.keypoints, store.xy[i], current=kp,
        machine_xy=None if machine is None else machine[0],
        machine_confidence=None if machine is None else machine[1],
        p_cutoff=_S.get("lab_pcut", 0.6), view=view, skeleton=info.skeleton,
    )
    st.plotly_chart(fig, key=f"lab_canvas_{_S['lab_canvas_n']}", on_select=_on_canvas_select,
                    selection_mode="points", config={"displayModeBar": False})
    st.caption(f"click to place **{store.keypoints[kp]}** · to move a label: click it, then click "
               f"where it goes · labels saved to {store.h5_path.name}")


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
        drawn = draw_skeleton(read_frame(info, img), store.xy[k], store.keypoints, info.skeleton)
        cols[j % 3].image(drawn, caption=Path(img).name, width="stretch")


def show(project_dir: Path) -> None:
    """Draw the labelling page for the project in ``project_dir``."""
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
