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


def _figures(at: AppTest) -> dict[str, dict]:
    """The plotly figures of the page, by widget key (their JSON spec)."""
    import json

    out = {}
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        out[el.proto.id.split("-")[-1] if not el.key else el.key] = spec
        out.setdefault("_all", []).append(spec)
    return out


def test_endpoints(root: Path, monkeypatch: pytest.MonkeyPatch):
    at = _app(root, monkeypatch, "endpoints.py")
    txt = _text(at)
    assert "Endpoints by group" in txt and "Welch t-test" in txt and "Hedges g" in txt
    at.selectbox(key="ep_endpoint").set_value("centre_time_pct").run()
    assert not at.exception
    tests = next(d.value for d in at.dataframe if "p_holm" in d.value.columns)
    assert "mean_speed_mm_s" in set(tests["endpoint"])
    row = tests.set_index("endpoint").loc["centre_time_pct"]
    assert row["name"] == "Centre time (%)"
    assert f"Holm {row['p_holm']:.3g}" in row["p (corrected)"] and f"BH {row['p_bh']:.3g}" in row["p (corrected)"]
    assert any(f"Holm {row['p_holm']:.3g}" in c.value for c in at.caption)  # beside the raw p on the card
    fig = _figures(at)["_all"][0]
    assert fig["layout"]["yaxis"]["title"]["text"] == "Centre time (%)"
    assert fig["layout"]["xaxis"]["title"]["text"] == "Group"
    colours = [t["marker"]["color"] for t in fig["data"] if t["type"] == "scatter"]
    assert colours == ["#0072B2", "#E69F00"]  # Okabe-Ito, two distinct hues
    assert any("control: n = 2" in c.value and "treated: n = 2" in c.value for c in at.caption)


def test_endpoints_two_way_and_time_bins(root: Path, monkeypatch: pytest.MonkeyPatch):
    import base64

    import numpy as np
    import pandas as pd

    at = _app(root, monkeypatch, "endpoints.py")
    at.selectbox(key="ep_endpoint").set_value("distance_mm").run()
    assert not at.exception
    assert "Group × sex" in [h.value for h in at.subheader]
    # one F and one M per group: the two-way ANOVA is refused, naming the cells
    assert any("Two-way ANOVA not run" in i.value and "control x F: n = 1" in i.value for i in at.info)
    assert at.number_input(key="ep_bin_s").value == 5.0  # 20 s sessions: quarters
    figs = _figures(at)
    def values(v) -> np.ndarray:  # a list, or plotly's typed array {"dtype": "f8", "bdata": base64}
        if isinstance(v, dict) and "bdata" in v:
            return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).astype(float)
        return np.asarray(v, float)

    course = figs["ep_time_course"]
    means = {t["name"]: values(t["y"]) for t in course["data"] if t.get("mode") == "lines+markers"}
    table = pd.read_csv(root / "results" / "endpoints.csv")
    for g, m in means.items():  # the bins add up to each animal's session distance, so do the group means
        assert len(m) == 4 and m.sum() == pytest.approx(table.loc[table["group"] == g, "distance_mm"].mean(), rel=1e-9)
    per_bin = next(d.value for d in at.dataframe if "p (Holm, BH across bins)" in d.value.columns)
    assert list(per_bin["bin"]) == [1, 2, 3, 4] and list(per_bin["to (s)"]) == [5.0, 10.0, 15.0, 20.0]
    assert per_bin["test"].str.contains("Welch").all()
    at.number_input(key="ep_bin_s").set_value(10.0).run()
    assert not at.exception and len(next(d.value for d in at.dataframe if "to (s)" in d.value.columns)) == 2


def test_validation(root: Path, monkeypatch: pytest.MonkeyPatch):
    import numpy as np

    at = _app(root, monkeypatch, "validation.py")
    assert "Validation against human scoring" in _text(at)
    at.selectbox(key="val_file").set_value("data/human_rearing.csv").run()
    at.button(key="val_go").click().run()
    assert not at.exception
    kappa = at.dataframe[0].value
    assert list(kappa["subject_id"]) == ["cont01", "trea01"]
    assert (kappa["kappa"] < 1).all() and (kappa["kappa"] > 0).all()
    scatter, ba = _figures(at)["_all"]
    assert scatter["layout"]["xaxis"]["title"]["text"] == "Rearing time (%), human"
    identity = scatter["data"][0]
    assert identity["x"] == identity["y"]  # the identity line y = x
    d = (kappa["ethopose_pct"] - kappa["human_pct"]).to_numpy(float)  # independent: the table's own numbers
    lines = sorted(sh["y0"] for sh in ba["layout"]["shapes"] if sh["type"] == "line" and sh["y0"] != 0)
    sd = d.std(ddof=1)
    np.testing.assert_allclose(lines, [d.mean() - 1.96 * sd, d.mean(), d.mean() + 1.96 * sd], rtol=1e-9)
    at.button(key="val_report").click().run()
    assert not at.exception
    assert "Validation against human scoring" in (root / "results" / "report.html").read_text()


def test_run_page_and_refusal(root: Path, monkeypatch: pytest.MonkeyPatch):
    at = _app(root, monkeypatch, "run.py")
    assert "Run a protocol" in _text(at)
    assert at.selectbox(key="run_cohort").options == ["data/cohort.csv"]  # not the scoring or result csvs
    default = at.text_input(key="run_out").value
    assert default.startswith("results_") and not (root / default).exists()  # a new, empty folder
    assert at.selectbox(key="run_model").options == ["(none)"]
    at.text_input(key="run_out").set_value("../outside").run()
    at.button(key="run_start").click().run()
    assert not at.exception
    assert any("refusing path with '..'" in e.value for e in at.error)
    assert not (root.parent / "outside").exists()
    at.text_input(key="run_out").set_value("results").run()  # the existing results: refused unless resuming
    at.button(key="run_start").click().run()
    assert any("already holds files" in e.value for e in at.error) and "run_job" not in at.session_state


def test_run_page_video_cohort_needs_a_model(root: Path, monkeypatch: pytest.MonkeyPatch):
    (root / "vids").mkdir(exist_ok=True)
    (root / "vids" / "m1.mp4").write_bytes(b"not really a video")
    (root / "vids" / "cohort_video.csv").write_text("subject_id,group,video_path\nm1,control,m1.mp4\n")
    at = _app(root, monkeypatch, "run.py")
    at.selectbox(key="run_cohort").set_value("vids/cohort_video.csv").run()
    at.button(key="run_start").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("a video needs a pose model (--model MODEL_DIR)" in e and "line 2" in e for e in errors), errors
    assert "run_job" not in at.session_state


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
    assert any("Finished: 4 animals" in str(e.value) for e in at.success), [e.value for e in at.success]
    assert (root / "bg_results" / "report.html").is_file()
    assert len(list((root / "bg_results" / "animals").glob("*/done"))) == 4
    assert at.text_input(key="run_out").value.startswith("results_")  # the next run: a new folder again


def test_run_page_cancel_stops_the_run(root: Path, monkeypatch: pytest.MonkeyPatch):
    at = _app(root, monkeypatch, "run.py")
    at.text_input(key="run_out").set_value("cancelled_results").run()
    at.number_input(key="run_workers").set_value(0).run()
    at.button(key="run_start").click().run()
    proc = at.session_state["run_proc"]
    at.button(key="run_cancel").click().run()
    assert proc.wait(timeout=30) != 0
    at.run()
    assert any("Cancelled" in w.value for w in at.warning), [w.value for w in at.warning]
    assert len(list((root / "cancelled_results" / "animals").glob("*/done"))) < 4


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


def test_animal_qc_shows_a_3d_pose_in_3d(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An animal whose pose has z (mm): the 3D path and the height over time instead of an x-y view."""
    import json
    import shutil

    from pose.io import load, save
    from pose.synthetic.multicam import lift_to_3d
    from pose.synthetic.openfield import simulate_open_field

    copy = tmp_path / "root3d"
    # only the fixture's own results folder: the run-page tests add others to the shared root,
    # and the page would open one of those instead
    shutil.copytree(root, copy, ignore=lambda d, names: [n for n in names if Path(d) == root and n != "results"
                                                         and (root / n / "run.json").is_file()])
    pose3d = lift_to_3d(simulate_open_field(20.0, fps=25.0, seed=1))  # 500 frames at 25 fps, like cont01's
    save(pose3d, copy / "results" / "animals" / "cont01_1" / "pose.nc")
    at = _app(copy, monkeypatch, "animal_qc.py")
    assert at.selectbox(key="qc_animal").value == "cont01_1"
    figs = {json.loads(e.proto.spec)["layout"].get("meta"): json.loads(e.proto.spec) for e in at.get("plotly_chart")}
    assert "trajectory_3d" in figs and "height" in figs and "trajectory" not in figs  # no 2D x-y path
    scene = figs["trajectory_3d"]["layout"]["scene"]
    assert scene["aspectmode"] == "data" and scene["zaxis"]["title"]["text"] == "z (mm)"
    assert any("Floor occupancy is binned in image pixels" in c.value for c in at.caption)
    assert not at.get("image")  # no frame picture drawn from x and y alone
    at.slider(key="qc3d_frame").set_value(250).run()
    assert not at.exception
    height = json.loads(next(e for e in at.get("plotly_chart") if json.loads(e.proto.spec)["layout"].get("meta")
                             == "height").proto.spec)
    assert height["layout"]["shapes"][0]["x0"] == pytest.approx(float(load(copy / "results" / "animals" / "cont01_1"
                                                                             / "pose.nc")["time"].values[250]))
