"""Outlier extraction layout, machine labels, merge bookkeeping and the CLI commands."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pose.refine.extract import extract_outlier_frames, read_frames
from pose.refine.labels import LabelStore, read_project_info
from pose.refine.merge import merge_refined_labels
from pose.refine.state import load_state

_spec = importlib.util.spec_from_file_location("refine_helpers", Path(__file__).with_name("refine_helpers.py"))
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


@pytest.fixture()
def setup(tmp_path: Path):
    project = helpers.make_project(tmp_path)
    ds, bad, err = helpers.make_predictions(n_frames=150, n_bad=12)
    ds = ds.isel(keypoint=slice(0, 4))  # the project's 4 body parts
    video = helpers.write_video(tmp_path / "session2.mp4", 150)
    ds.attrs["model_dir"] = str(tmp_path / "model0")
    return project, ds, bad, video


def test_extraction_layout_and_machine_labels(setup) -> None:
    project, ds, bad, video = setup
    res = extract_outlier_frames(project, ds, video, method="jump", n_frames=5, threshold=15)
    folder = project / "labeled-data" / "session2"
    assert res.folder == folder and len(res.images) == 5
    assert set(res.frames) <= set(bad)
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert pngs == sorted(f"img{f:03d}.png" for f in res.frames)
    # the PNG is the video frame
    frame = read_frames(video, [int(res.frames[0])])[int(res.frames[0])]
    import cv2

    png = cv2.cvtColor(cv2.imread(str(folder / pngs[0])), cv2.COLOR_BGR2RGB)
    assert np.abs(png.astype(int) - frame.astype(int)).max() == 0
    machine = pd.read_hdf(folder / "machinelabels-iter0.h5")
    assert set(machine.columns.get_level_values("coords")) == {"x", "y", "likelihood"}
    row = machine.loc[("labeled-data", "session2", pngs[0])]
    f = int(res.frames[0])
    assert row[("machine", "snout", "x")] == pytest.approx(float(ds["position"].values[f, 0, 0, 0]))
    state = load_state(project)
    assert state.iteration == 0 and state.outliers[0].frames == sorted(int(x) for x in res.frames)
    assert state.outliers[0].method == "jump" and state.outliers[0].n_candidates >= 5
    # the label store shows them as machine labels to correct
    store = LabelStore(read_project_info(project), "session2")
    xy, conf = store.machine_points(res.images[0])
    assert xy[0, 0] == pytest.approx(float(ds["position"].values[f, 0, 0, 0]))


def test_merge_bookkeeping(setup, tmp_path: Path) -> None:
    project, ds, bad, video = setup
    with pytest.raises(ValueError, match="no outlier frames were extracted in iteration 0"):
        merge_refined_labels(project)
    res = extract_outlier_frames(project, ds, video, method="fit", n_frames=4, threshold=15)
    with pytest.raises(ValueError, match="4 extracted frame\\(s\\) of iteration 0 have no labels"):
        merge_refined_labels(project)
    info = read_project_info(project)
    store = LabelStore(info, "session2")
    store.set_point(res.images[0], "snout", 11, 12)  # a person corrected one frame
    model0 = tmp_path / "model0"
    model0.mkdir()
    (model0 / "split.json").write_text(json.dumps({"train": [], "test": ["labeled-data/vidA/img000.png"], "rule": "x"}))
    out = merge_refined_labels(project, model_dir=model0, accept_machine=True, p_cutoff=0.5)
    assert (out.iteration, out.new_iteration) == (0, 1)
    assert out.images == res.images and out.accepted_machine == res.images[1:]
    assert yaml.safe_load((project / "config.yaml").read_text())["iteration"] == 1
    assert out.test_frames_file.read_text().split() == ["labeled-data/vidA/img000.png"]
    again = LabelStore(info, "session2")
    assert again.point(res.images[0], "snout") == (11.0, 12.0)  # the person's label kept
    assert all(again.n_done(im) > 0 for im in res.images)
    state = load_state(project)
    assert state.iteration == 1 and state.merges[0].images == res.images and state.pending() == []
    # the next extraction belongs to iteration 1
    res2 = extract_outlier_frames(project, ds, video, method="uncertain", n_frames=2)
    assert res2.machine_labels.name == "machinelabels-iter1.h5"


def test_cli_outliers_and_merge(setup, tmp_path: Path) -> None:
    import typer

    from pose import io as pose_io
    from pose.refine.cli import merge, outliers

    project, ds, bad, video = setup
    preds = pose_io.save(ds, tmp_path / "preds.nc")
    app = typer.Typer()
    app.command("outliers")(outliers)
    app.command("merge")(merge)
    runner = CliRunner()
    r = runner.invoke(app, ["outliers", str(tmp_path / "model0"), str(video), "--method", "jump",
                            "--n-frames", "3", "--epsilon-px", "15", "--predictions", str(preds),
                            "--project", str(project)])
    assert r.exit_code == 0, r.output
    assert "extracted 3 to" in r.output
    r = runner.invoke(app, ["outliers", "m", str(video), "--method", "wiggle", "--project", str(project)])
    assert r.exit_code == 2 and "--method must be one of" in r.output
    r = runner.invoke(app, ["merge", str(project)])
    assert r.exit_code == 2 and "have no labels" in r.output
    r = runner.invoke(app, ["merge", str(project), "--accept-machine", "--p-cutoff", "0"])
    assert r.exit_code == 0, r.output
    assert "iteration 0 -> 1" in r.output and "next: ethopose pose train" in r.output
