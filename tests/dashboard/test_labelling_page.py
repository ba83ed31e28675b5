"""The labelling page driven by Streamlit's testing API: label, hide, step, close, reopen."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard.labelling.canvas import canvas_args, frame_source  # noqa: E402
from dashboard.labelling.figure import compute_view  # noqa: E402
from pose.refine.labels import LabelStore, read_project_info  # noqa: E402

APP = Path(__file__).resolve().parents[2] / "dashboard" / "labelling" / "app.py"
_spec = importlib.util.spec_from_file_location(
    "refine_helpers", Path(__file__).resolve().parents[1] / "pose" / "refine_helpers.py"
)
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)


def _open(project: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ETHOPOSE_LABEL_PROJECT", str(project))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_label_hide_step_then_reopen_keeps_everything(tmp_path: Path, monkeypatch) -> None:
    project = fixtures.make_project(tmp_path)
    at = _open(project, monkeypatch)
    assert at.radio(key="lab_kp").value == 0  # snout first
    at.number_input(key="lab_x").set_value(42.0)
    at.number_input(key="lab_y").set_value(17.0)
    at.button(key="lab_btn_place").click().run()
    assert not at.exception, at.exception
    assert at.radio(key="lab_kp").value == 1  # moved on to left_ear
    at.button(key="lab_btn_hidden").click().run()  # left_ear not visible
    assert at.radio(key="lab_kp").value == 2
    at.button(key="lab_btn_next").click().run()
    at.number_input(key="lab_x").set_value(100.0)
    at.number_input(key="lab_y").set_value(60.0)
    at.button(key="lab_btn_place").click().run()
    assert not at.exception, at.exception
    assert "img001.png" in at.markdown[0].value

    # "close the tab": a brand-new session on the same project
    again = _open(project, monkeypatch)
    store = LabelStore(read_project_info(project), "vidA")
    assert store.point("img000.png", "snout") == (42.0, 17.0)
    assert store.is_not_visible("img000.png", "left_ear")
    assert store.point("img001.png", "snout") == (100.0, 60.0)
    labels = again.radio(key="lab_kp").options
    assert labels[0].startswith("● snout (42.0, 17.0)")
    assert "not visible" in labels[1]


def test_check_labels_view_renders_labelled_frames(tmp_path: Path, monkeypatch) -> None:
    project = fixtures.make_project(tmp_path)
    store = LabelStore(read_project_info(project), "vidA")
    store.set_point("img000.png", "snout", 10, 10)
    store.set_point("img000.png", "left_ear", 20, 12)
    at = _open(project, monkeypatch)
    at.radio(key="lab_mode").set_value("Check labels").run()
    assert not at.exception, at.exception
    assert "1 labelled frames" in at.markdown[0].value
    assert len(at.get("image")) == 1


def test_bad_project_shows_clear_error(tmp_path: Path, monkeypatch) -> None:
    at = _open(tmp_path / "missing", monkeypatch)
    assert "no config.yaml in project folder" in at.error[0].value


def test_canvas_args_and_views() -> None:
    xy = np.array([[10.25, 20.75], [np.nan, np.nan]])
    view = compute_view(640, 480, 4, (630, 5))
    assert (view.x0, view.y0, view.x1, view.y1) == (480, 0, 640, 120)
    args = canvas_args(["a", "b"], xy, view, current=0, machine_xy=np.array([[11.0, 21.0], [50.0, 60.0]]),
                       machine_confidence=np.array([0.9, 0.1]), skeleton=[("a", "b"), ("a", "zz")])
    assert args["view"] == [480, 0, 160, 120] and args["skeleton"] == [[0, 1]]
    kinds = [(p["kind"], p["k"], p["x"], p["y"]) for p in args["points"]]
    assert kinds == [("label", 0, 10.25, 20.75), ("machine", 0, 11.0, 21.0), ("machine_low", 1, 50.0, 60.0)]
    img = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    uri = frame_source(img, view)  # a small crop goes as PNG: every pixel exact
    import base64

    import cv2

    assert uri.startswith("data:image/png;base64,")
    back = cv2.imdecode(np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(back[..., ::-1], img[0:120, 480:640])
    assert frame_source(img, compute_view(640, 480, 1, None)).startswith("data:image/jpeg")
    with pytest.raises(ValueError, match="zoom must be >= 1"):
        compute_view(640, 480, 0.5, None)


def test_canvas_events_place_drag_select_exactly(tmp_path: Path, monkeypatch) -> None:
    """The label canvas's events (AppTest cannot click a custom component: its handler is fed
    the values the component sends; the real component is clicked in the browser test)."""
    from dashboard.labelling import page
    from dashboard.labelling.store import LayoutKeepingStore

    project = fixtures.make_project(tmp_path)
    state = {"lab_store": LayoutKeepingStore(read_project_info(project), "vidA"), "lab_frame": 0, "lab_kp": 0}
    monkeypatch.setattr(page, "_S", state)
    for seq, event in ((1, {"kind": "click", "x": 61.3, "y": 97.7}),
                       (1, {"kind": "click", "x": 61.3, "y": 97.7}),  # the same event again: once
                       (2, {"kind": "move", "k": 0, "x": 30.55, "y": 40.45}),
                       (3, {"kind": "select", "k": 3})):
        state["lab_canvas"] = {**event, "seq": seq}
        page._on_canvas_event()
    store = LabelStore(read_project_info(project), "vidA")
    assert store.point("img000.png", "snout") == (30.55, 40.45)  # clicked, then dragged: exact
    assert np.isnan(store.point("img000.png", "left_ear")[0])  # the repeated event placed nothing
    assert state["lab_kp"] == 3 and len(state["lab_history"].steps) == 2
    page._on_undo()
    assert LabelStore(read_project_info(project), "vidA").point("img000.png", "snout") == (61.3, 97.7)


def test_erase_asks_first_and_every_edit_undoes(tmp_path: Path, monkeypatch) -> None:
    project = fixtures.make_project(tmp_path)
    at = _open(project, monkeypatch)
    assert at.get("component_instance"), "the label canvas is not on the page"
    at.number_input(key="lab_x").set_value(30.55)
    at.number_input(key="lab_y").set_value(40.45)
    at.button(key="lab_btn_place").click().run()
    # N on a placed label asks first; Esc keeps it, Enter erases it, U undoes
    at.radio(key="lab_kp").set_value(0).run()
    at.button(key="lab_btn_hidden").click().run()
    assert "erase its label" in at.warning[0].value
    at.button(key="lab_btn_no").click().run()
    assert LabelStore(read_project_info(project), "vidA").point("img000.png", "snout") == (30.55, 40.45)
    at.button(key="lab_btn_hidden").click().run()
    at.button(key="lab_btn_yes").click().run()
    store = LabelStore(read_project_info(project), "vidA")
    assert store.is_not_visible("img000.png", "snout") and np.isnan(store.point("img000.png", "snout")[0])
    at.button(key="lab_btn_undo").click().run()
    store = LabelStore(read_project_info(project), "vidA")
    assert store.point("img000.png", "snout") == (30.55, 40.45) and not store.is_not_visible("img000.png", "snout")
    at.button(key="lab_btn_undo").click().run()  # the placement
    assert np.isnan(LabelStore(read_project_info(project), "vidA").point("img000.png", "snout")[0])
    assert not at.exception, at.exception


def test_missing_image_is_a_message_not_a_crash(tmp_path: Path, monkeypatch) -> None:
    project = fixtures.make_project(tmp_path)
    store = LabelStore(read_project_info(project), "vidA")
    store.set_point("img000.png", "snout", 12.5, 7.25)
    (project / "labeled-data" / "vidA" / "img000.png").unlink()
    at = _open(project, monkeypatch)
    assert "img001.png" in at.markdown[0].value  # images on disk first, the missing one last
    at.button(key="lab_btn_next").click().run()
    at.button(key="lab_btn_next").click().run()
    assert not at.exception, at.exception
    assert any("img000.png" in e.value and "missing" in e.value for e in at.error), [e.value for e in at.error]
    at.radio(key="lab_mode").set_value("Check labels").run()
    assert not at.exception, at.exception
    assert any("image missing" in e.value for e in at.error)


def test_label_file_layout_kept_as_it_came_in(tmp_path: Path, monkeypatch) -> None:
    """A DeepLabCut 2.1 file (one path column, Windows separators, its own body-part and row
    order) is written back in that layout; pandas reads both files the same way."""
    import pandas as pd

    project = fixtures.make_project(tmp_path)
    folder = project / "labeled-data" / "vidA"
    order = ["tail_base", "snout", "left_ear", "right_ear"]
    cols = pd.MultiIndex.from_product([["tester"], order, ["x", "y"]], names=["scorer", "bodyparts", "coords"])
    rows = ["labeled-data\\vidA\\img002.png", "labeled-data\\vidA\\img000.png"]
    before = pd.DataFrame(np.arange(16, dtype=float).reshape(2, 8) + 0.5, index=rows, columns=cols)
    before.to_hdf(folder / "CollectedData_tester.h5", key="df_with_missing", format="table", mode="w")
    before.to_csv(folder / "CollectedData_tester.csv")
    at = _open(project, monkeypatch)
    at.button(key="lab_btn_next").click().run()  # img001, not in the file yet
    at.number_input(key="lab_x").set_value(33.25)
    at.number_input(key="lab_y").set_value(44.75)
    at.button(key="lab_btn_place").click().run()
    assert not at.exception, at.exception
    after = pd.read_hdf(folder / "CollectedData_tester.h5", key="df_with_missing")
    assert list(after.index) == rows + ["labeled-data\\vidA\\img001.png"]
    assert after.columns.equals(before.columns)
    pd.testing.assert_frame_equal(after.iloc[:2], before)
    assert after.loc[rows[0]].notna().all() and (after.iloc[2][("tester", "snout", "x")] == 33.25)
    csv = pd.read_csv(folder / "CollectedData_tester.csv", header=[0, 1, 2], index_col=0)
    assert list(csv.index) == list(after.index) and list(csv.columns) == list(after.columns)


def test_label_command_serves_on_localhost(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from dashboard.labelling.cli import label, label_command

    project = fixtures.make_project(tmp_path)
    cmd = label_command(project, 8765, browser=False)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[-1] == str(project.resolve()) and cmd[-2] == "--"
    app = typer.Typer()
    app.command()(label)
    r = CliRunner().invoke(app, [str(tmp_path / "nowhere"), "--no-browser"])
    assert r.exit_code == 2 and "no config.yaml" in r.output


def test_refining_machine_labels_shown_and_accepted(tmp_path: Path, monkeypatch) -> None:
    from pose.refine.extract import extract_outlier_frames

    project = fixtures.make_project(tmp_path)
    ds, bad, _ = fixtures.make_predictions(n_frames=120, n_bad=8)
    ds = ds.isel(keypoint=slice(0, 4))
    video = fixtures.write_video(tmp_path / "session2.mp4", 120)
    res = extract_outlier_frames(project, ds, video, method="jump", n_frames=3, threshold=15)
    at = _open(project, monkeypatch)
    at.selectbox(key="lab_video").set_value("session2").run()
    assert not at.exception, at.exception
    at.slider(key="lab_pcut").set_value(0.5).run()
    at.button(key="lab_btn_accept").click().run()
    assert not at.exception, at.exception
    store = LabelStore(read_project_info(project), "session2")
    frame = int(res.frames[0])
    conf = ds["confidence"].values[frame, :, 0]
    for k in range(4):
        got = store.xy[store.index_of(res.images[0]), k]
        if conf[k] >= 0.5:
            np.testing.assert_allclose(got, ds["position"].values[frame, :, k, 0])
        else:  # low-confidence predictions are not taken
            assert np.isnan(got).all()
