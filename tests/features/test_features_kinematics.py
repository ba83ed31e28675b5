"""Kinematics: known answers and equality with movement 0.15."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from features import kinematics as kin
from pose.dataset import from_numpy

FPS = 25.0


def _line_ds(n=100, vx=3.0, vy=4.0):
    """Individual 0 moves at (vx, vy) px/frame: speed 5 px/frame = 125 px/s."""
    t = np.arange(n)
    pos = np.zeros((n, 2, 2, 1))
    pos[:, 0, 0, 0] = vx * t
    pos[:, 1, 0, 0] = vy * t
    pos[:, 0, 1, 0] = vx * t - 10
    pos[:, 1, 1, 0] = vy * t
    return from_numpy(pos, keypoints=["snout", "tail_base"], fps=FPS, px_per_mm=2.5)


def test_constant_velocity_exact_speed():
    ds = _line_ds()
    v = kin.compute_velocity(ds.position)
    np.testing.assert_allclose(v.sel(space="x").values[:, 0], 75.0)
    sp = kin.compute_speed(ds.position)
    assert sp.name == "speed" and sp.attrs["units"] == "px/s"
    np.testing.assert_allclose(sp.values, 125.0)
    np.testing.assert_allclose(kin.compute_acceleration(ds.position).values, 0.0, atol=1e-9)
    mm = kin.to_mm(sp, ds=ds)
    assert mm.attrs["units"] == "mm/s"
    np.testing.assert_allclose(mm.values, 50.0)
    d = kin.compute_distance_travelled(ds.position.sel(keypoint="snout"))
    np.testing.assert_allclose(d.values, 5.0 * 99)
    cum = kin.compute_distance_travelled(ds.position.sel(keypoint="snout"), cumulative=True)
    np.testing.assert_allclose(cum.values[:, 0], 5.0 * np.arange(100))
    with pytest.raises(ValueError, match="units 'rad'"):
        kin.to_mm(xr.DataArray([1.0], attrs={"units": "rad"}), 2.0)
    with pytest.raises(ValueError, match="px_per_mm"):
        kin.to_mm(sp)


def test_distance_travelled_skips_nan_steps():
    ds = _line_ds(10)
    pos = ds.position.values.copy()
    pos[4] = np.nan
    d = kin.compute_distance_travelled(from_numpy(pos, fps=FPS).position)
    np.testing.assert_allclose(d.values[0], 5.0 * 7)  # steps 3->4 and 4->5 unknown


def test_equals_movement():
    from movement.kinematics import compute_acceleration, compute_speed, compute_velocity

    rng = np.random.default_rng(0)
    pos = np.cumsum(rng.normal(size=(200, 2, 3, 2)), axis=0)
    pos[50:53, :, 1] = np.nan
    ds = from_numpy(pos, fps=30.0)
    plural = ds.position.rename(keypoint="keypoints", individual="individuals")
    for ours, theirs in ((kin.compute_velocity, compute_velocity),
                         (kin.compute_speed, compute_speed),
                         (kin.compute_acceleration, compute_acceleration)):
        np.testing.assert_allclose(ours(ds.position).values, theirs(plural).values,
                                   rtol=1e-12, atol=1e-9, equal_nan=True)


def test_circle_angular_velocity_and_heading():
    n, omega, r = 500, 2.0, 100.0  # rad/s
    t = np.arange(n) / FPS
    theta = omega * t
    pos = np.zeros((n, 2, 3, 1))
    pos[:, 0, 0, 0] = r * np.cos(theta)  # snout on the circle
    pos[:, 1, 0, 0] = r * np.sin(theta)
    ds = from_numpy(pos, keypoints=["snout", "tail_base", "body_center"], fps=FPS)
    head = kin.compute_heading(ds, "tail_base", "snout")
    assert head.attrs["units"] == "rad"
    np.testing.assert_allclose(np.cos(head.values[:, 0]), np.cos(theta), atol=1e-12)
    av = kin.compute_angular_velocity(head)
    np.testing.assert_allclose(av.values, omega, rtol=1e-9)
    assert av.attrs["units"] == "rad/s"
    # egocentric: snout ends on +x at distance r
    ego = kin.egocentric_align(ds, centre="tail_base")
    np.testing.assert_allclose(ego.position.sel(keypoint="snout", space="x").values, r, atol=1e-9)
    np.testing.assert_allclose(ego.position.sel(keypoint="snout", space="y").values, 0.0, atol=1e-9)
    assert ego.attrs["history"][-1]["op"] == "egocentric_align"


def test_joint_angle_right_angle_and_distances():
    pos = np.zeros((3, 2, 3, 1))
    pos[:, :, 0, 0] = [10.0, 0.0]   # a
    pos[:, :, 1, 0] = [0.0, 0.0]    # vertex
    pos[:, :, 2, 0] = [0.0, -7.0]   # b
    pos[2, :, 2, 0] = [-5.0, 0.0]   # straight
    ds = from_numpy(pos, keypoints=["hip", "knee", "ankle"], fps=FPS)
    ang = kin.compute_joint_angle(ds, "hip", "knee", "ankle")
    np.testing.assert_allclose(ang.values[:, 0], [90.0, 90.0, 180.0])
    d = kin.compute_pairwise_distance(ds, "hip", "ankle")
    np.testing.assert_allclose(d.values[0, 0], np.hypot(10, 7))
    with pytest.raises(KeyError, match="elbow"):
        kin.compute_pairwise_distance(ds, "hip", "elbow")
    # names modulo trailing whitespace
    ds2 = ds.assign_coords(keypoint=["hip ", "knee ", "ankle "])
    np.testing.assert_allclose(kin.compute_joint_angle(ds2, "hip", "knee", "ankle").values[0, 0], 90.0)


def test_hull_area_and_body_length():
    sq = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [5, 5], [5, 0]], float)  # interior + edge point
    pos = np.repeat(sq.T[None, :, :, None], 4, axis=0)
    pos[1, :, 2:4] = np.nan  # 2 corners left + 2 extra points: triangle (0,0),(10,0),(5,5) + (5,0)
    pos[2, :, 1:] = np.nan  # one point: NaN
    pos[3, :, :, 0] = np.array([[0, 0], [1, 1], [2, 2], [3, 3], [4, 4], [5, 5]], float).T  # collinear
    names = ["snout", "a", "tail_base", "b", "c", "d"]
    ds = from_numpy(pos, keypoints=names, fps=FPS)
    area = kin.compute_hull_area(ds).values[:, 0]
    np.testing.assert_allclose(area[[0, 1, 3]], [100.0, 25.0, 0.0])
    assert np.isnan(area[2])
    bl = kin.compute_body_length(ds)
    np.testing.assert_allclose(bl.values[0, 0], np.hypot(10, 10))


def test_calibration_helpers():
    assert kin.calibrate_px_per_mm((0, 0), (30, 40), 10.0) == 5.0
    assert kin.px_per_mm_from_arena(800, 400) == 2.0
    with pytest.raises(ValueError, match="distance_mm"):
        kin.calibrate_px_per_mm((0, 0), (1, 1), 0)
    with pytest.raises(TypeError, match="DataArray"):
        kin.compute_speed(np.zeros((3, 2)))
