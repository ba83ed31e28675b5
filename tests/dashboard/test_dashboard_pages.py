"""Every dashboard page renders in Streamlit's AppTest on a small results folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.data import ROOT_ENV

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
_spec = importlib.util.spec_from_file_location("dashboard_fixtures", Path(__file__).with_name("dashboard_fixtures.py"))
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixtures.make_results_root(tmp_path_factory.mktemp("dash"))


def _app(root: Path, monkeypatch: pytest.MonkeyPatch, page: str | None = None) -> AppTest:
    monkeypatch.setenv(ROOT_ENV, str(root))
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    if page is not None:
        at.switch_page(f"pages/{page}")
        at.run()
        assert not at.exception, at.exception
    return at


def _text(at: AppTest) -> str:
    parts = [e.value for e in at.title] + [e.value for e in at.markdown] + [e.value for e in at.caption]
    parts += [str(e.label) + " " + str(e.value) for e in at.metric]
    parts += [e.value for e in at.info] + [e.value for e in at.warning]
    return "\n".join(map(str, parts))


def test_overview(root: Path, monkeypatch: pytest.MonkeyPatch):
    at = _app(root, monkeypatch)
    txt = _text(at)
    assert "Cohort overview" in txt and "open_field" in txt
    assert at.sidebar.selectbox[0].value == "results"  # the one results folder under the root
    assert {m.label: m.value for m in at.metric}["Animals analysed"] == "4"
    df = at.dataframe[1].value
    assert set(df["subject_id"]) == {"cont01", "cont02", "trea01", "trea02"}
    assert "centre_time_pct" in df.columns


def test_animal_qc_slider(root: Path, monkeypatch: pytest.MonkeyPatch):
    at = _app(root, monkeypatch, "animal_qc.py")
    assert "Animal QC" in _text(at)
    assert at.selectbox(key="qc_animal").value == "cont01_1"
    at.slider(key="qc_frame").set_value(250).run()
    assert not at.exception
    assert at.slider(key="qc_frame").max == 499
    assert "keypoints drawn on the arena outline" in _text(at)  # no video in this cohort
    at.selectbox(key="qc_animal").set_value("trea02_1").run()
    assert not at.exception and "group **treated**" in _text(at)


def test_ethogram(root: Path, monkeypatch: pytest.MonkeyPatch):
    at = _app(root, monkeypatch, "ethogram.py")
    assert "Ethogram" in _text(at)
    states = at.multiselect(key="eth_states").value
    assert {"rearing", "in_centre"} <= set(states)
    table = at.dataframe[0].value
    assert len(table) == 4 * len(states)


def test_endpoints(root: Path, monkeypatch: pytest.MonkeyPatch):
    at = _app(root, monkeypatch, "endpoints.py")
    txt = _text(at)
    assert "Endpoints by group" in txt and "Welch t-test" in txt and "Hedges g" in txt
    at.selectbox(key="ep_endpoint").set_value("centre_time_pct").run()
    assert not at.exception
    tests = at.dataframe[0].value
    assert "p_holm" in tests.columns and "mean_speed_mm_s" in set(tests["endpoint"])


def test_validation(root: Path, monkeypatch: pytest.MonkeyPatch):
    at = _app(root, monkeypatch, "validation.py")
    assert "Validation against human scoring" in _text(at)
    at.selectbox(key="val_file").set_value("data/human_rearing.csv").run()
    at.button(key="val_go").click().run()
    assert not at.exception
    kappa = at.dataframe[0].value
    assert list(kappa["subject_id"]) == ["cont01", "trea01"]
    assert (kappa["kappa"] < 1).all() and (kappa["kappa"] > 0).all()
    at.button(key="val_report").click().run()
    assert not at.exception
    assert "Validation against human scoring" in (root / "results" / "report.html").read_text()


def test_run_page_and_refusal(root: Path, monkeypatch: pytest.MonkeyPatch):
    at = _app(root, monkeypatch, "run.py")
    assert "Run a protocol" in _text(at)
    assert "data/cohort.csv" in at.selectbox(key="run_cohort").options
    at.text_input(key="run_out").set_value("../outside").run()
    at.button(key="run_start").click().run()
    assert not at.exception
    assert any("refusing path with '..'" in e.value for e in at.error)
    assert not (root.parent / "outside").exists()


def test_run_page_starts_a_background_job_with_progress(root: Path, monkeypatch: pytest.MonkeyPatch):
    import time

    at = _app(root, monkeypatch, "run.py")
    at.text_input(key="run_out").set_value("bg_results").run()
    at.number_input(key="run_workers").set_value(0).run()
    at.button(key="run_start").click().run()
    assert not at.exception
    proc = at.session_state["run_proc"]
    bar = at.get("progress")[0]
    assert "of 4 animals finished" in bar.proto.text  # the fragment shows the job's progress
    proc.wait(timeout=180)
    time.sleep(0.2)
    at.run()
    texts = [str(e.value) for e in at.caption]
    assert any("finished with exit code 0" in t for t in texts), texts
    assert (root / "bg_results" / "report.html").is_file()
    assert len(list((root / "bg_results" / "animals").glob("*/done"))) == 4


def test_labelling_page(root: Path, monkeypatch: pytest.MonkeyPatch):
    at = _app(root, monkeypatch, "labelling.py")
    txt = _text(at)
    assert "Labelling & training" in txt and "No pose project" in txt
    assert "ethopose pose train" in txt


def test_labelling_page_shows_a_project_inside_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import cv2
    import numpy as np
    import yaml

    folder = tmp_path / "proj" / "labeled-data" / "vid1"
    folder.mkdir(parents=True)
    (tmp_path / "proj" / "config.yaml").write_text(yaml.safe_dump(
        {"Task": "t", "scorer": "me", "bodyparts": ["snout", "tail_base"], "skeleton": [], "iteration": 0,
         "video_sets": {}}))
    cv2.imwrite(str(folder / "img000.png"), np.full((60, 80, 3), 128, np.uint8))
    at = _app(tmp_path, monkeypatch, "labelling.py")
    assert at.selectbox(key="lab_project").value == "proj"
    assert any("Labelling" in t.value and "proj" in t.value for t in at.title)


def test_empty_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    at = _app(tmp_path, monkeypatch)
    assert "No 'ethopose run' results" in _text(at)
