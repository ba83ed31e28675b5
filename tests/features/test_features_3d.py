"""Features on 3D poses (space = x, y, z in mm): the same functions, checked against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from features.filters import filter_savgol
from features.kinematics import (
    compute_distance_travelled,
    compute_joint_angle,
    compute_pairwise_distance,
    compute_speed,
)
from pose.dataset import from_numpy

FPS = 50.0


def _helix_pose() -> tuple:
    """Keypoint a on a helix (radius 30 mm, 1 turn/s, rising 20 mm/s); b 10 mm above a; c 10 mm
    beside a along x: the angle b-a-c is 90 degrees, |ab| = 10 mm."""
    t = np.arange(200) / FPS
    a = np.stack([30 * np.cos(2 * np.pi * t), 30 * np.sin(2 * np.pi * t), 20 * t], axis=1)
    b = a + [0, 0, 10]
    c = a + [10, 0, 0]
    pos = np.stack([a, b, c], axis=-1)  # (time, space, keypoint)
    return from_numpy(pos, keypoints=["a", "b", "c"], fps=FPS), t


def test_speed_on_a_helix() -> None:
    ds, _ = _helix_pose()
    speed = compute_speed(ds.position.sel(keypoint="a")).values.ravel()
    # central differences see the chord: the horizontal speed times sin(w dt) / (w dt)
    w_dt = 2 * np.pi / FPS
    expected = np.hypot(2 * np.pi * 30 * np.sin(w_dt) / w_dt, 20)  # mm/s
    np.testing.assert_allclose(speed[2:-2], expected, rtol=1e-9)
    assert expected == pytest.approx(np.hypot(2 * np.pi * 30, 20), rel=3e-3)


def test_distance_travelled_and_pairwise_distance_in_3d() -> None:
    ds, t = _helix_pose()
    total = float(compute_distance_travelled(ds.position.sel(keypoint="a")).values.ravel()[0])
    assert total == pytest.approx(np.hypot(2 * np.pi * 30, 20) * t[-1], rel=2e-3)
    np.testing.assert_allclose(compute_pairwise_distance(ds, "a", "b").values, 10.0)


def test_joint_angle_uses_all_three_axes() -> None:
    ds, _ = _helix_pose()
    np.testing.assert_allclose(np.abs(compute_joint_angle(ds, "b", "a", "c").values), 90.0, atol=1e-9)
    # c moved out of the x-y plane by 10 mm: 45 degrees, seen only with z
    pos = ds.position.values.copy()
    pos[:, :, 2] = pos[:, :, 0] + np.array([10.0, 0, 10.0])[:, None]
    tilted = ds.assign(position=(ds.position.dims, pos))
    np.testing.assert_allclose(np.abs(compute_joint_angle(tilted, "b", "a", "c").values), 45.0, atol=1e-9)


def test_savgol_filter_smooths_each_3d_axis() -> None:
    ds, _ = _helix_pose()
    noisy = ds.position.values + np.random.default_rng(0).normal(0, 1.0, ds.position.shape)
    smooth = filter_savgol(ds.assign(position=(ds.position.dims, noisy)), window_s=0.2)
    assert list(smooth.space.values) == ["x", "y", "z"]
    err_raw = np.abs(noisy - ds.position.values)[10:-10].mean()
    err_smooth = np.abs(smooth.position.values - ds.position.values)[10:-10].mean()
    assert err_smooth < 0.5 * err_raw


def test_hull_area_refuses_3d_clearly_heading_is_on_the_floor() -> None:
    from features.kinematics import compute_heading, compute_hull_area

    ds, _ = _helix_pose()
    with pytest.raises(ValueError, match="compute_hull_area: got 3D positions"):
        compute_hull_area(ds)
    # c lies 10 mm along +x of a: heading 0 on the z = 0 floor, as the flat pose's
    np.testing.assert_allclose(compute_heading(ds, "a", "c", floor="z=0").values, 0.0, atol=1e-12)
    np.testing.assert_allclose(compute_heading(ds.sel(space=["x", "y"]), "a", "c").values, 0.0, atol=1e-12)
    # b is straight above a: no direction on the floor (atan2(0, 0) = 0, not an error)
    assert np.isfinite(compute_heading(ds, "a", "b", floor="z=0").values).all()


def test_triangulated_units_are_mm() -> None:
    from pose.synthetic.multicam import lift_to_3d, make_rig, project_poses
    from pose.synthetic.openfield import simulate_open_field
    from pose.threed.triangulation import triangulate_poses

    cams = make_rig(2, seed=1)
    ds, _ = triangulate_poses(project_poses(lift_to_3d(simulate_open_field(0.5, fps=30, seed=1)), cams), cams)
    assert compute_speed(ds.position).attrs["units"] == "mm/s"
    assert compute_pairwise_distance(ds, "snout", "tail_base").attrs["units"] == "mm"


#: The tilted world of :func:`triangulated_session` (Rodrigues vector, translation mm).
TILT_RVEC, TILT_T = np.array([0.9, -0.4, 0.3]), np.array([120.0, -40.0, 600.0])


@pytest.fixture(scope="module")
def triangulated_session():
    """The virtual mouse (rears, lifts its paws) seen by 3 cameras with 1 px noise, triangulated and smoothed,
    then moved into a tilted world (as a calibration's first camera would put it): z is not up there."""
    from pose.synthetic.multicam import lift_to_3d, make_rig, project_poses
    from pose.synthetic.openfield import simulate_open_field
    from pose.threed.cameras import rodrigues
    from pose.threed.smoothing import smooth_points3d
    from pose.threed.triangulation import triangulate_poses

    sim = simulate_open_field(40.0, fps=30, seed=20)
    truth = lift_to_3d(sim)
    cams = make_rig(3, seed=22)
    ds, _ = triangulate_poses(project_poses(truth, cams, noise_px=1.0, seed=23), cams)
    ds = smooth_points3d(ds)
    r, t = rodrigues(TILT_RVEC), TILT_T
    pos = np.einsum("ij,tjkn->tikn", r, ds.position.values) + t[None, :, None, None]
    tilted = ds.assign(position=(ds.position.dims, pos, ds.position.attrs))
    return truth, tilted, np.asarray(sim.posture["rear"]) > 0.9


def test_feature_table_on_a_triangulated_pose_matches_the_truth(triangulated_session) -> None:
    from features.table import compute_feature_table, summarize_session
    from features.threed import estimate_floor

    truth, ds, rearing = triangulated_session
    floor = estimate_floor(ds)
    table = compute_feature_table(ds)  # dispatches to features.threed for space = 3
    assert table.attrs["length_unit"] == "mm" and table.attrs["floor"] == floor.how
    assert {"heading_rad", "angular_velocity_rad_s", "body_length_mm"} <= set(table) and "x_px" not in table
    # heights above the floor found from the animal itself (the world's z is tilted away)
    z_true = truth.position.sel(space="z", individual="mouse")
    snout_err = table["snout_height_mm"].to_numpy() - z_true.sel(keypoint="snout").values
    assert np.nanmedian(np.abs(snout_err)) < 1.5
    assert abs(np.nanmedian(table["height_mm"].to_numpy() - z_true.sel(keypoint="body_center").values)) < 1.5
    assert rearing.sum() > 30
    assert np.nanmedian(table["snout_height_mm"].to_numpy()[rearing]) > 55  # rearing: snout 14 + 62 mm
    assert np.nanmedian(table["snout_height_mm"].to_numpy()[~rearing]) < 20
    # speed and path in mm from all three axes, against the truth's
    speed_true = compute_speed(truth.position.sel(keypoint="body_center")).values.ravel()
    ok = np.isfinite(speed_true) & np.isfinite(table["speed_mm_s"].to_numpy())
    assert table["speed_mm_s"].to_numpy()[ok].mean() / speed_true[ok].mean() == pytest.approx(1.0, abs=0.02)
    path_true = float(compute_distance_travelled(truth.position.sel(keypoint="body_center")).values.ravel()[0])
    summary = summarize_session(table)
    assert float(summary["distance_mm"].iloc[0]) == pytest.approx(path_true, rel=0.03)
    assert float(summary["mean_speed_mm_s"].iloc[0]) == pytest.approx(speed_true[ok].mean(), rel=0.02)


def test_heading_on_the_floor_matches_the_virtual_mouse(triangulated_session) -> None:
    """The body axis projected onto the floor fitted in the tilted world, against the truth's top-view heading
    (world x, y with z up): equal up to the constant angle between the two frames' x axes, which the tilt gives."""
    from features.kinematics import compute_heading
    from features.threed import estimate_floor, floor_axes
    from pose.threed.cameras import rodrigues

    truth, ds, rearing = triangulated_session
    v = (truth.position.sel(keypoint="snout") - truth.position.sel(keypoint="tail_base")).values[:, :, 0]
    true_heading = np.arctan2(v[:, 1], v[:, 0])
    e1 = rodrigues(TILT_RVEC).T @ floor_axes(estimate_floor(ds))[0]  # the floor frame's x, in the truth's world
    offset = np.arctan2(e1[1], e1[0])
    err = np.degrees(np.abs(np.angle(np.exp(1j * (compute_heading(ds).values[:, 0] - true_heading + offset)))))
    # measured: median 0.28 deg, 95th percentile 0.82 deg, max 4.2 deg; rearing frames alike
    assert np.median(err) < 0.6 and np.percentile(err, 95) < 2.0 and err.max() < 8.0
    assert np.percentile(err[rearing], 95) < 2.0
    # a known answer in a tilted plane: the axis at angle theta on the floor, plus any vertical part
    from features.threed import Floor

    floor = Floor(normal=rodrigues(TILT_RVEC) @ [0.0, 0.0, 1.0], offset_mm=5.0, how="test")
    e = floor_axes(floor)
    theta = np.linspace(-3.0, 3.0, ds.sizes["time"])
    axis = np.cos(theta)[:, None] * e[0] + np.sin(theta)[:, None] * e[1] + 30.0 * np.sin(5 * theta)[:, None] * e[2]
    pos = ds.position.values.copy()
    tail = list(ds.keypoint.values).index("tail_base")
    pos[:, :, list(ds.keypoint.values).index("snout"), 0] = pos[:, :, tail, 0] + 20 * axis
    known = ds.assign(position=(ds.position.dims, pos, ds.position.attrs))
    np.testing.assert_allclose(compute_heading(known, floor=floor).values[:, 0], theta, atol=1e-9)


def test_3d_table_says_when_there_is_no_floor(triangulated_session, caplog) -> None:
    from features.table import compute_feature_table
    from features.threed import FloorError, estimate_floor

    _, ds, _ = triangulated_session
    with pytest.raises(ValueError, match="zones of a 3D pose must be a features.zones.ZoneSet in floor mm"):
        compute_feature_table(ds, zones=object())  # type: ignore[arg-type]
    still = ds.isel(time=slice(0, 60))  # a mouse that stays on one spot (noise only)
    jitter = np.random.default_rng(5).normal(0, 0.5, still.position.shape)
    still = still.assign(position=(still.position.dims, ds.position.values[:1] + jitter, ds.position.attrs))
    # standing on its four paws it still defines the floor; with the paws unseen it does not
    assert "paws' stance points" in estimate_floor(still).how
    paws = [k for k in still.keypoint.values if "paw" in str(k)]
    still = still.assign(position=still.position.where(~still.keypoint.isin(paws)))
    with pytest.raises(FloorError, match="the animal hardly moves.*no paw keypoint|the animal hardly moves"):
        estimate_floor(still)
    table = compute_feature_table(still)
    assert "height_mm" not in table and "speed_mm_s" in table
    assert table.attrs["floor"].startswith("no floor")
    assert "without heights" in caplog.text


def test_cli_features_compute_on_points3d(triangulated_session, tmp_path) -> None:
    import pandas as pd
    from typer.testing import CliRunner

    from ethopose.cli import app
    from pose import io as pio

    _, ds, _ = triangulated_session
    pio.save(ds, tmp_path / "points3d.nc")
    result = CliRunner().invoke(app, ["features", "compute", str(tmp_path / "points3d.nc"), "--out",
                                      str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "t.csv")
    assert {"speed_mm_s", "distance_mm", "height_mm", "snout_height_mm", "z_mm"} <= set(table.columns)
    assert "distance_mm" in pd.read_csv(tmp_path / "t.summary.csv").columns
