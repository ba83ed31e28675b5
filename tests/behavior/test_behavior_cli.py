"""``ethopose behavior`` commands end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from behavior.cli import app
from tests.conftest import shared_path

runner = CliRunner()


def test_freezing_and_agreement_demo1(tmp_path):
    d = shared_path("behaviordepot-freezing", "demo1")
    out = tmp_path / "freezing.csv"
    res = runner.invoke(app, ["freezing", str(d / "demo1_tracking.csv"), "--fps", "50",
                              "--px-per-cm", "32", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "speed window" in res.output and "enter < 10.00 mm/s" in res.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["frame", "time_s", "freezing"] and len(table) == 6000
    assert set(table.freezing.unique()) <= {0, 1}
    np.testing.assert_allclose(table.time_s, table.frame / 50)
    res = runner.invoke(app, ["agreement", str(d / "hB_demo1_manual_annotations.mat"), str(out),
                              "--behavior", "freezing", "--fps", "50"])
    assert res.exit_code == 0, res.output
    kappa = float(res.output.split("Cohen's kappa")[1].split()[0])
    assert kappa >= 0.86  # 0.882 measured
    assert "95 % CI" in res.output


def test_icc_command_prints_pingouin_numbers(tmp_path):
    pg = pytest.importorskip("pingouin")
    df = pg.read_dataset("icc")
    p = tmp_path / "icc.csv"
    df.to_csv(p, index=False)
    res = runner.invoke(app, ["icc", str(p), "--subject", "Wine", "--rater", "Judge", "--value", "Scores"])
    assert res.exit_code == 0, res.output
    ref = pg.intraclass_corr(df, targets="Wine", raters="Judge", ratings="Scores")
    for line, value in zip(res.output.splitlines()[2:], ref["ICC"], strict=True):
        assert float(line.split()[1]) == pytest.approx(value, abs=1e-4)
    res = runner.invoke(app, ["icc", str(p), "--subject", "Wine", "--rater", "Nope", "--value", "Scores"])
    assert res.exit_code != 0 and "'Nope' not in the table" in res.output


def test_agreement_refuses_different_lengths(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.DataFrame({"freezing": [0, 1, 1, 0]}).to_csv(a, index=False)
    pd.DataFrame({"freezing": [0, 1, 1]}).to_csv(b, index=False)
    res = runner.invoke(app, ["agreement", str(a), str(b)])
    assert res.exit_code != 0 and "has 3" in res.output


@pytest.fixture
def one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def test_train_predict_on_virtual_mouse(tmp_path, one_thread):
    synth = pytest.importorskip("pose.synthetic")
    import pose.io

    files = []
    for seed in (0, 1):
        truth = synth.simulate_open_field(60, fps=30, seed=seed)
        pf = tmp_path / f"s{seed}.nc"
        pose.io.save(truth.pose, pf)
        lf = tmp_path / f"s{seed}_labels.csv"
        pd.DataFrame({"groom": (truth.states == "groom").astype(int)}).to_csv(lf, index=False)
        files.append((pf, lf))
    model = tmp_path / "groom.joblib"
    res = runner.invoke(app, ["train", str(files[0][0]), str(files[1][0]), "-l", str(files[0][1]),
                              "-l", str(files[1][1]), "-b", "groom", "--max-iter", "20",
                              "--out", str(model)])
    assert res.exit_code == 0, res.output
    assert "test_groups" in res.output and model.exists()
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["predict", str(model), str(files[1][0]), "--out", str(out)])
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["frame", "time_s", "groom"] and len(pred) == 1800
    # a pose file with other keypoints is refused with the feature names
    ds = pose.io.load(files[1][0])
    other = tmp_path / "other.nc"
    pose.io.save(ds.drop_sel(keypoint=["left_forepaw"]), other)
    res = runner.invoke(app, ["predict", str(model), str(other), "--out", str(out)])
    assert res.exit_code != 0 and "left_forepaw" in res.output


def test_freezing_multi_animal_refuses_or_analyses_each(tmp_path):
    import pose.io
    from pose.dataset import from_numpy

    rng = np.random.default_rng(0)
    kps = ["snout", "left_ear", "right_ear", "body_center", "tail_base"]
    body = np.array([[130, 200], [115, 192], [115, 208], [100, 200], [70, 200]], float).T  # (space, kp)
    still = body[None, :, :, None] + rng.normal(0, 0.5, (600, 2, 5, 1))
    walker = still + (np.arange(600) * 2.0)[:, None, None, None]  # 60 px/s = 19 mm/s at 3.2 px/mm
    ds = from_numpy(np.concatenate([still, walker], axis=-1), keypoints=kps,
                    individuals=["mouse_a", "mouse_b"], fps=30)
    pf = tmp_path / "two.nc"
    pose.io.save(ds, pf)
    out = tmp_path / "fz.csv"
    res = runner.invoke(app, ["freezing", str(pf), "--px-per-mm", "3.2", "--out", str(out)])
    assert res.exit_code != 0
    msg = " ".join(res.output.replace("│", " ").split())  # rich wraps the message in a box
    assert "2 individuals ['mouse_a', 'mouse_b']" in msg and "--individual all" in msg
    res = runner.invoke(app, ["freezing", str(pf), "--px-per-mm", "3.2", "--individual", "all",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["individual", "frame", "time_s", "freezing"]
    per = table.groupby("individual").freezing.mean()
    assert per["mouse_a"] > 0.95 and per["mouse_b"] == 0.0
    res = runner.invoke(app, ["states", str(pf), "--px-per-cm", "32", "--individual", "mouse_b",
                              "--out", str(tmp_path / "st.csv")])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "st.csv")) == 600
