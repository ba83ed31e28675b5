"""Triangulation of 2D poses: robustness to a wrong camera, Dataset layout, bad input, CLI."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pose import io as pio
from pose.synthetic.multicam import lift_to_3d, make_rig, project_poses
from pose.synthetic.openfield import simulate_open_field
from pose.threed.cameras import save_calibration
from pose.threed.triangulation import TriangulationInputError, triangulate_poses, triangulate_robust


@pytest.fixture(scope="module")
def session():
    truth = lift_to_3d(simulate_open_field(4.0, fps=30, seed=1))
    cams = make_rig(3, seed=1)
    return truth, cams, project_poses(truth, cams, noise_px=1.0, seed=2)


def test_a_wrong_camera_is_voted_out() -> None:
    cams = make_rig(4, seed=3)
    pts = np.random.default_rng(0).uniform([50, 50, 0], [350, 350, 80], (300, 3))
    obs = np.stack([c.project(pts) for c in cams])
    obs += np.random.default_rng(1).normal(0, 0.5, obs.shape)
    obs[2, :100] += 60.0  # camera 2 is wrong for the first 100 points (a swapped label)
    tri = triangulate_robust(cams, obs)
    err = np.linalg.norm(tri.points3d - pts, axis=1)
    assert np.median(err[:100]) < 1.0  # as good as the clean points
    assert not tri.used[2, :100].any() and tri.used[2, 100:].all()
    plain = triangulate_robust(cams, obs, threshold_px=1e9)  # no outlier rejection
    assert np.median(np.linalg.norm(plain.points3d[:100] - pts[:100], axis=1)) > 5.0


def test_triangulate_poses_layout_and_accuracy(session) -> None:
    truth, cams, poses = session
    ds, reprojected = triangulate_poses(poses, cams)
    assert list(ds.space.values) == ["x", "y", "z"] and ds.attrs["length_unit"] == "mm"
    assert ds.attrs["cameras"] == ["cam0", "cam1", "cam2"]
    assert ds["reprojection_error"].dims == ("time", "keypoint", "individual")
    assert ds["camera_used"].dims == ("time", "camera", "keypoint", "individual")
    err = np.linalg.norm(ds.position.values - truth.position.values, axis=1)
    assert np.nanmedian(err) < 1.5  # 1 px noise, 3 cameras
    assert 0.3 < np.nanmedian(ds["reprojection_error"].values) < 1.5
    # the reprojection lands on the noise-free projection better than the noisy input does
    clean = cams[0].project(truth.position.transpose("time", "keypoint", "individual", "space").values)
    rep = reprojected["cam0"].position.transpose("time", "keypoint", "individual", "space").values
    inp = poses["cam0"].position.transpose("time", "keypoint", "individual", "space").values
    assert np.nanmedian(np.linalg.norm(rep - clean, axis=-1)) < np.nanmedian(np.linalg.norm(inp - clean, axis=-1))


def test_mismatched_frames_and_keypoints_name_file_and_camera(session) -> None:
    _, cams, poses = session
    short = dict(poses)
    short["cam1"] = poses["cam1"].isel(time=slice(0, 100))
    with pytest.raises(TriangulationInputError, match=r"cam1.nc \(camera 'cam1'\) has 100 frames but cam0.nc"):
        triangulate_poses(short, cams)
    renamed = dict(poses)
    renamed["cam2"] = poses["cam2"].assign_coords(keypoint=[f"k{i}" for i in range(poses["cam2"].sizes["keypoint"])])
    with pytest.raises(TriangulationInputError, match=r"cam2.nc \(camera 'cam2'\): keypoints"):
        triangulate_poses(renamed, cams)


def test_cli_triangulate_round_trip(session, tmp_path: Path) -> None:
    from ethopose.cli import app

    truth, cams, poses = session
    save_calibration(cams, tmp_path / "calibration.toml")
    files = []
    for name, ds in poses.items():
        files.append(str(pio.save(ds, tmp_path / f"session_{name}.h5")))
    runner = CliRunner()
    out = tmp_path / "points3d.nc"
    args = ["pose", "triangulate", "--calibration", str(tmp_path / "calibration.toml"), *files,
            "--out", str(out), "--reprojection-dir", str(tmp_path / "rep")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    ds = pio.load(out)
    assert ds.sizes["space"] == 3 and ds.attrs["cameras"] == ["cam0", "cam1", "cam2"]
    assert np.nanmedian(np.linalg.norm(ds.position.values - truth.position.values, axis=1)) < 1.5
    assert (tmp_path / "rep" / "cam1_reprojected.h5").is_file()
    assert "position_raw" in ds and "process_noise" in ds  # smoothed by default, settings printed
    assert "maximum likelihood" in result.output and "2D noise per keypoint" in result.output
    raw = tmp_path / "raw.nc"
    result = runner.invoke(app, args[:-4] + ["--out", str(raw), "--no-smooth"])
    assert result.exit_code == 0, result.output
    ds_raw = pio.load(raw)
    assert "position_raw" not in ds_raw
    np.testing.assert_allclose(ds.position_raw.values, ds_raw.position.values, atol=1e-6)
    # a camera the calibration lacks: clear error naming the file and the cameras
    save_calibration(cams[:2], tmp_path / "two.toml")
    result = runner.invoke(app, ["pose", "triangulate", "--calibration", str(tmp_path / "two.toml"), *files,
                                 "--out", str(tmp_path / "x.nc")])
    assert result.exit_code != 0
    assert "session_cam2.h5" in result.output and "cam0" in result.output


def test_six_cameras_with_numeric_names(tmp_path: Path) -> None:
    """A converted 6-camera calibration whose cameras are called 1..6, files matched by name."""
    import dataclasses

    from ethopose.cli import app

    truth = lift_to_3d(simulate_open_field(3.0, fps=30, seed=4))
    cams = [dataclasses.replace(c, name=str(i + 1)) for i, c in enumerate(make_rig(6, seed=5))]
    text = save_calibration(cams, tmp_path / "c.toml").read_text()
    (tmp_path / "calibration.toml").write_text(re.sub(r'name = "(\d)"', r"name = \1", text))  # bare integers
    poses = project_poses(truth, cams, noise_px=1.0, seed=6)
    files = [str(pio.save(ds, tmp_path / f"mouse_cam{name}.h5")) for name, ds in poses.items()]
    out = tmp_path / "points3d.nc"
    result = CliRunner().invoke(app, ["pose", "triangulate", "--calibration", str(tmp_path / "calibration.toml"),
                                      *files, "--out", str(out), "--no-smooth"])
    assert result.exit_code == 0, result.output
    ds = pio.load(out)
    assert ds.attrs["cameras"] == ["1", "2", "3", "4", "5", "6"]
    err = np.linalg.norm(ds.position.values - truth.position.values, axis=1)
    assert np.nanmedian(err) < 1.0  # six cameras beat three
    assert float(np.nanmedian(ds["noise_px"].values)) == pytest.approx(1.0, rel=0.1)


def test_six_numbered_cameras_one_missing_for_a_stretch_and_one_at_random(tmp_path: Path) -> None:
    """The unseen 6-camera layout: cameras 1..6 (zero-padded file names), camera 3 sees nothing for a second,
    camera 5 misses 30 % of frames at random, camera 6 never sees the tail tip; the default (smoothed) path."""
    import dataclasses

    from ethopose.cli import app
    from features.kinematics import compute_speed

    truth = lift_to_3d(simulate_open_field(6.0, fps=30, seed=7))
    cams = [dataclasses.replace(c, name=str(i + 1)) for i, c in enumerate(make_rig(6, seed=8))]
    save_calibration(cams, tmp_path / "calibration.toml")
    poses = project_poses(truth, cams, noise_px=1.0, seed=9)
    gap = slice(60, 90)
    rng = np.random.default_rng(10)
    for name, ds in poses.items():
        pos, conf = ds.position.values.copy(), ds.confidence.values.copy()  # (time, space, keypoint, ind)
        if name == "3":
            pos[gap], conf[gap] = np.nan, np.nan
        if name == "5":
            lost = rng.random(len(pos)) < 0.3
            pos[lost], conf[lost] = np.nan, np.nan
        if name == "6":
            k = list(ds.keypoint.values).index("tail_tip")
            pos[:, :, k], conf[:, k] = np.nan, np.nan
        poses[name] = ds.assign(position=(ds.position.dims, pos), confidence=(ds.confidence.dims, conf))
    files = [str(pio.save(ds, tmp_path / f"mouse_cam0{name}.h5")) for name, ds in poses.items()]
    out = tmp_path / "points3d.nc"
    result = CliRunner().invoke(app, ["pose", "triangulate", "--calibration", str(tmp_path / "calibration.toml"),
                                      *files, "--out", str(out), "--fps", "30"])
    assert result.exit_code == 0, result.output
    ds = pio.load(out)
    assert ds.attrs["cameras"] == ["1", "2", "3", "4", "5", "6"]
    assert np.isfinite(ds.position.values).all()  # five cameras still see every point
    used = ds["camera_used"]
    assert int(used.sel(camera="3").isel(time=gap).sum()) == 0
    assert int(used.sel(camera="6", keypoint="tail_tip").sum()) == 0
    assert float(used.sel(camera="5").mean()) == pytest.approx(0.7, abs=0.06)
    err = np.linalg.norm(ds.position.values - truth.position.values, axis=1)
    assert np.nanmedian(err[gap]) < 1.0 and np.nanmedian(err) < 1.0
    speed_true = compute_speed(truth.position.sel(keypoint="body_center")).values
    speed = compute_speed(ds.position.sel(keypoint="body_center")).values
    assert abs(np.nanmean(speed) / np.nanmean(speed_true) - 1) <= 0.02
