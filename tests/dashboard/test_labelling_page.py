"""The labelling page driven by Streamlit's testing API: label, hide, step, close, reopen."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard.labelling.figure import GRID_TRACE, build_label_figure, compute_view, grid_step_px  # noqa: E402
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
    assert labels[0].startswith("● snout (42, 17)")
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


def test_figure_grid_maps_clicks_to_pixels() -> None:
    img = np.zeros((60, 80, 3), np.uint8)
    xy = np.array([[10.0, 20.0], [np.nan, np.nan]])
    fig = build_label_figure(img, ["a", "b"], xy, current=0,
                             machine_xy=np.array([[11.0, 21.0], [50.0, 60.0]]),
                             machine_confidence=np.array([0.9, 0.1]))
    grid = next(t for t in fig.data if t.name == GRID_TRACE)
    assert grid.x.min() == 0 and grid.x.max() == 79 and grid.y.max() == 59  # 1-px grid
    names = [t.name for t in fig.data]
    assert "prediction" in names and "prediction (low confidence)" in names
    view = compute_view(640, 480, 4, (630, 5))
    assert (view.x0, view.y0, view.x1, view.y1) == (480, 0, 640, 120)
    assert grid_step_px(compute_view(640, 480, 1, None)) == 6
    with pytest.raises(ValueError, match="zoom must be >= 1"):
        compute_view(640, 480, 0.5, None)


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
