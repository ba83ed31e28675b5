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


def test_floor_plane_features_refuse_3d_clearly() -> None:
    from features.kinematics import compute_heading, compute_hull_area

    ds, _ = _helix_pose()
    with pytest.raises(ValueError, match=r"compute_heading: got 3D positions .* ds.sel\(space=\['x', 'y'\]\)"):
        compute_heading(ds, "a", "c")
    with pytest.raises(ValueError, match="compute_hull_area: got 3D positions"):
        compute_hull_area(ds)
    flat = ds.sel(space=["x", "y"])  # the explicit way when z is vertical: c lies along +x of a
    np.testing.assert_allclose(compute_heading(flat, "a", "c").values, 0.0, atol=1e-12)


def test_triangulated_units_are_mm() -> None:
    from pose.synthetic.multicam import lift_to_3d, make_rig, project_poses
    from pose.synthetic.openfield import simulate_open_field
    from pose.threed.triangulation import triangulate_poses

    cams = make_rig(2, seed=1)
    ds, _ = triangulate_poses(project_poses(lift_to_3d(simulate_open_field(0.5, fps=30, seed=1)), cams), cams)
    assert compute_speed(ds.position).attrs["units"] == "mm/s"
    assert compute_pairwise_distance(ds, "snout", "tail_base").attrs["units"] == "mm"
