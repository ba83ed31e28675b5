"""``ethopose export-nwb``: one NWB file per session of a results folder, read back equal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pynwb")

from pose.io import load  # noqa: E402
from pose.io.nwb import read_nwb_intervals  # noqa: E402
from protocols.batch import run_cohort  # noqa: E402
from protocols.synthetic_cohort import write_synthetic_cohort  # noqa: E402


def test_export_results_round_trip(tmp_path):
    from nwbinspector import Importance, inspect_nwbfile
    from pynwb import NWBHDF5IO
    from typer.testing import CliRunner

    from ethopose.cli import app

    cohort = write_synthetic_cohort(tmp_path / "c", n_per_group=1, seconds=20, seed=2)
    run_cohort("open_field", cohort, tmp_path / "out", n_workers=0)
    r = CliRunner().invoke(app, ["export-nwb", str(tmp_path / "out"), "--out", str(tmp_path / "nwb")])
    assert r.exit_code == 0, r.output
    files = sorted((tmp_path / "nwb").glob("*.nwb"))
    assert [f.stem for f in files] == sorted(p.name for p in (tmp_path / "out" / "animals").iterdir())
    for f in files:
        folder = tmp_path / "out" / "animals" / f.stem
        pose = load(folder / "pose.nc")
        back = load(f)
        np.testing.assert_array_equal(back.position.values, pose.position.values)
        frames = pd.read_parquet(folder / "frames.parquet")
        bouts = read_nwb_intervals(f)
        fps = pose.attrs["fps"]
        for col in ("in_centre", "rearing"):
            v = np.zeros(len(frames), bool)
            for a, b in bouts[col]:
                v[int(round(a * fps)):int(round(b * fps))] = True
            np.testing.assert_array_equal(v, frames[col].to_numpy())
        with NWBHDF5IO(str(f), "r") as io:
            nwb = io.read()
            ends = nwb.processing["behavior"]["endpoints"].to_dataframe().iloc[0]
            table = pd.read_csv(tmp_path / "out" / "endpoints.csv").set_index("subject_id")
            assert ends["distance_mm"] == pytest.approx(table.loc[nwb.subject.subject_id, "distance_mm"])
            assert nwb.subject.sex in ("M", "F", "U", "O")
        bad = [m for m in inspect_nwbfile(nwbfile_path=str(f))
               if m.importance in (Importance.CRITICAL, Importance.ERROR)]
        assert bad == []
    # the model's training frames: a labelled project and a model whose split trains on 2 of 3 frames
    from pose.io.nwb import read_nwb_training
    from pose.pipeline.project import create_project
    from pose.pipeline.split import Split
    from pose.synthetic.openfield import simulate_open_field
    from pose.synthetic.outputs import write_labeled_data

    tr = simulate_open_field(2, seed=5)
    kps = [str(k) for k in tr.pose["keypoint"].values]
    proj = create_project(tmp_path / "proj", bodyparts=kps, scorer="Jane Doe")
    position = tr.pose["position"].values[..., 0]
    visible = np.ones(position.shape[::2], bool)
    visible[7, kps.index("tail_tip")] = False
    img = np.zeros((48, 64, 3), np.uint8)
    write_labeled_data(proj.root, "v1", {0: img, 7: img, 20: img}, position, visible, kps, len(position), 1.1)
    model = tmp_path / "model"
    model.mkdir()
    from pose.pipeline.project import load_labels
    images = load_labels(proj).images
    Split(train=images[:2], test=images[2:], rule="test-frames").save(model / "split.json")
    r = CliRunner().invoke(app, ["export-nwb", str(tmp_path / "out"), "--out", str(tmp_path / "nwb2"),
                                 "--project", str(proj.root), "--model", str(model)])
    assert r.exit_code == 0, r.output
    for f in sorted((tmp_path / "nwb2").glob("*.nwb")):
        back = read_nwb_training(f)
        assert back.images == images[:2] and back.annotator == "Jane Doe"
        frames = [0, 7]
        expect = position[frames].transpose(0, 2, 1)  # (frame, keypoint, space)
        expect[1, kps.index("tail_tip")] = np.nan
        np.testing.assert_allclose(back.keypoints, expect, rtol=1e-6)
        assert [m for m in inspect_nwbfile(nwbfile_path=str(f))
                if m.importance in (Importance.CRITICAL, Importance.ERROR)] == []


def test_export_refuses_a_folder_that_is_not_results(tmp_path):
    from typer.testing import CliRunner

    from ethopose.cli import app

    r = CliRunner().invoke(app, ["export-nwb", str(tmp_path), "--out", str(tmp_path / "nwb")])
    assert r.exit_code == 2 and "not an 'ethopose run' results folder" in r.output
