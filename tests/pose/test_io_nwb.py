"""NWB read/write (ndx-pose): round trips, nwbinspector, bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pynwb")
pytest.importorskip("ndx_pose")

from pose.dataset import from_numpy  # noqa: E402
from pose.io import load, save  # noqa: E402
from pose.io.errors import PoseFileError  # noqa: E402
from pose.io.nwb import (  # noqa: E402
    TrainingLabels,
    read_nwb_intervals,
    read_nwb_training,
    unit_from_name,
    write_nwb,
)
from pose.synthetic.openfield import simulate_open_field  # noqa: E402


def _inspect(path):
    from nwbinspector import Importance, inspect_nwbfile

    return [m for m in inspect_nwbfile(nwbfile_path=str(path))
            if m.importance in (Importance.CRITICAL, Importance.ERROR)]


def test_pose_bouts_and_provenance_round_trip(tmp_path):
    pose = simulate_open_field(seconds=4, fps=30, seed=3).pose
    pose.attrs["skeleton"] = [["snout", "left_ear"], ["snout", "right_ear"]]
    bouts = [(0.5, 1.25), (2.0, 3.0)]
    path = write_nwb(pose, tmp_path / "s.nwb", subject={"subject_id": "m7", "sex": "female", "group": "ctl"},
                     intervals={"rearing": bouts}, features={"speed_mm_s": np.arange(pose.sizes["time"]) * 0.5},
                     endpoints={"distance_mm": 123.5})
    back = load(path)
    np.testing.assert_array_equal(back.position.values, pose.position.values)
    np.testing.assert_array_equal(back.confidence.values, pose.confidence.values)
    assert list(back.keypoint.values) == list(pose.keypoint.values)
    np.testing.assert_allclose(back.time.values, pose.time.values)
    assert back.attrs["fps"] == 30.0 and back.attrs["px_per_mm"] == pose.attrs["px_per_mm"]
    assert [h["op"] for h in back.attrs["history"]][:-1] == [h["op"] for h in pose.attrs["history"]]
    assert back.attrs["history"][-1]["op"] == "read_nwb"
    assert read_nwb_intervals(path) == {"rearing": bouts}
    path2 = write_nwb(pose, tmp_path / "e.nwb", intervals={"grooming": []})
    assert read_nwb_intervals(path2) == {"grooming": []} and _inspect(path2) == []
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        assert f.subject.subject_id == "m7" and f.subject.sex == "F"
        beh = f.processing["behavior"]
        assert beh["speed_mm_s"].unit == "mm/s"
        np.testing.assert_allclose(beh["speed_mm_s"].data[:], np.arange(pose.sizes["time"]) * 0.5)
        assert beh["endpoints"].to_dataframe()["distance_mm"].iloc[0] == 123.5
        skel = f.processing["behavior"]["Skeletons"]["skeleton_mouse"]
        assert skel.edges[:].tolist() == [[0, 1], [0, 2]]
    assert _inspect(path) == []


def test_several_individuals_nan_and_3d_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(20, 3, 4, 2)) * 50
    pos[3, :, 1, 0] = np.nan
    conf = rng.uniform(size=(20, 4, 2))
    ds = from_numpy(pos, conf, keypoints=["a", "b", "c", "d"], individuals=["m1", "m2"], fps=50.0,
                    frame_index=np.arange(100, 120))
    back = load(save(ds, tmp_path / "m.nwb"))
    assert list(back.individual.values) == ["m1", "m2"] and list(back.space.values) == ["x", "y", "z"]
    np.testing.assert_array_equal(back.position.values, pos)
    np.testing.assert_allclose(back.time.values, np.arange(100, 120) / 50.0)


def test_convert_cli_nc_to_nwb(tmp_path):
    from typer.testing import CliRunner

    from ethopose.cli import app

    pose = simulate_open_field(seconds=2, fps=25, seed=1).pose
    save(pose, tmp_path / "x.nc")
    r = CliRunner().invoke(app, ["convert", str(tmp_path / "x.nc"), str(tmp_path / "x.nwb")])
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(load(tmp_path / "x.nwb").position.values, pose.position.values)


def test_bad_input_names_the_file(tmp_path):
    ds = from_numpy(np.zeros((5, 2, 1, 1)))  # no fps
    with pytest.raises(PoseFileError, match=r"nofps\.nwb.*frame rate"):
        write_nwb(ds, tmp_path / "nofps.nwb")
    junk = tmp_path / "junk.nwb"
    junk.write_bytes(b"not an hdf5 file")
    with pytest.raises(PoseFileError, match="junk.nwb"):
        load(junk)
    ds = from_numpy(np.zeros((5, 2, 1, 1)), fps=10)
    with pytest.raises(PoseFileError, match="feature 'v' has 3 values, the pose 5 frames"):
        write_nwb(ds, tmp_path / "f.nwb", features={"v": [1, 2, 3]})


def test_units_from_column_names():
    assert unit_from_name("speed_mm_s") == "mm/s"
    assert unit_from_name("path_mm") == "mm"
    assert unit_from_name("x_px") == "pixels"
    assert unit_from_name("centre_time_pct") == "percent"
    assert unit_from_name("heading") == "n.a."


def test_training_frames_as_pose_training_round_trip(tmp_path):
    pose = simulate_open_field(seconds=2, fps=30, seed=1).pose
    kps = [str(k) for k in pose["keypoint"].values]
    rng = np.random.default_rng(0)
    lab = TrainingLabels(images=["labeled-data/v1/img0003.png", "labeled-data/v1/img0010.png"],
                         keypoints=rng.uniform(0, 600, (2, 3, 2)), names=["snout", "tail_base", "not_in_pose"],
                         annotator="Jane Doe")
    lab.keypoints[1, 1] = np.nan  # tail base not visible in the second frame
    path = write_nwb(pose, tmp_path / "t.nwb", training=lab)
    back = read_nwb_training(path)
    assert back.images == lab.images and back.names == kps and back.annotator == "Jane Doe"
    np.testing.assert_array_equal(back.keypoints[:, kps.index("snout")], lab.keypoints[:, 0])
    np.testing.assert_array_equal(back.keypoints[:, kps.index("tail_base")], lab.keypoints[:, 1])
    assert np.isnan(back.keypoints[:, kps.index("neck")]).all()  # not labelled
    np.testing.assert_array_equal(load(path).position.values, pose.position.values)  # pose still reads back
    assert _inspect(path) == []
    assert read_nwb_training(write_nwb(pose, tmp_path / "none.nwb")) is None
    with pytest.raises(ValueError, match="do not match 2 images x 2 names"):
        write_nwb(pose, tmp_path / "bad.nwb", training=TrainingLabels(lab.images, lab.keypoints, ["a", "b"]))
