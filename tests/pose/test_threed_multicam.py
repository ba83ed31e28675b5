"""The virtual mouse in 3D, whole path: board images -> calibration -> noisy 2D poses -> 3D -> speed."""

from __future__ import annotations

import numpy as np
import pytest

from pose.synthetic.multicam import lift_to_3d, make_rig, project_poses, render_board_views
from pose.synthetic.openfield import simulate_open_field
from pose.threed.board import Board, detect_board
from pose.threed.calibration import calibrate_cameras
from pose.threed.cameras import rodrigues
from pose.threed.triangulation import triangulate_poses


def test_lifted_mouse_rears_and_stays_on_the_floor() -> None:
    truth = simulate_open_field(20.0, fps=30, seed=3)
    ds = lift_to_3d(truth)
    z = ds.position.sel(space="z", individual="mouse")
    rear = truth.posture["rear"] > 0.9
    assert rear.any()
    assert float(z.sel(keypoint="snout")[rear].mean()) > float(z.sel(keypoint="snout")[~rear].mean()) + 40
    assert float(z.sel(keypoint="left_hindpaw").min()) >= 0.0
    assert float(z.sel(keypoint="left_hindpaw").max()) <= 6.0 + 1e-9


def _run(kind: str, n_cameras: int, n_views: int, seconds: float):
    if kind == "checkerboard":
        board = Board(kind="checkerboard", board_x=9, board_y=6, square_length=20.0)
    else:
        board = Board(kind="charuco", board_x=8, board_y=6, square_length=25.0, marker_length=18.0, dict_size=50)
    rig = make_rig(n_cameras, seed=1)
    views = render_board_views(board, rig, n_views=n_views, seed=2)
    dets = {c.name: {k: d for k, img in views.images[c.name].items()
                     if img is not None and (d := detect_board(img, board)) is not None} for c in rig}
    origin = sorted(set.intersection(*(set(v) for v in dets.values())))[0]
    res = calibrate_cameras(dets, board, {c.name: c.size for c in rig}, origin_frame=origin)
    truth = lift_to_3d(simulate_open_field(seconds, fps=30, seed=3))
    poses = project_poses(truth, rig, noise_px=1.0, seed=4)
    ds, _ = triangulate_poses(poses, res.cameras)
    # calibrated world = the board at the origin frame; its true pose maps it to the truth's world
    r_b, t_b = rodrigues(views.poses[origin][0]), views.poses[origin][1]
    pos = np.einsum("ij,tjkn->tikn", r_b, ds.position.values) + t_b[None, :, None, None]
    return truth, ds.assign(position=(ds.position.dims, pos)), res, ds


def test_virtual_mouse_three_cameras_from_board_images() -> None:
    from features.filters import filter_savgol
    from features.kinematics import compute_speed
    from pose.threed.smoothing import smooth_points3d

    truth, ds, res, ds_calibrated = _run("checkerboard", 3, 12, 20.0)
    assert max(res.rms_px.values()) < 0.4
    for est, true in zip(res.cameras, make_rig(3, seed=1), strict=True):
        assert est.matrix[0, 0] == pytest.approx(true.matrix[0, 0], rel=0.01)
    err = np.linalg.norm(ds.position.values - truth.position.values, axis=1)
    assert np.nanmedian(err) <= 1.5  # mm, 1 px noise in each of 3 cameras
    speed_true = compute_speed(truth.position.sel(keypoint="body_center")).values
    raw = compute_speed(ds.position.sel(keypoint="body_center")).values
    ok = np.isfinite(raw) & np.isfinite(speed_true)
    assert raw[ok].mean() / speed_true[ok].mean() - 1 > 0.05  # noise adds speed to raw 3D points
    # the default path: Kalman smoothing with settings from the data (no window to choose),
    # in the calibration's own world (position_std is per axis of that frame; speed is rigid-invariant)
    speed = compute_speed(smooth_points3d(ds_calibrated).position.sel(keypoint="body_center")).values
    assert abs(speed[ok].mean() / speed_true[ok].mean() - 1) <= 0.02
    fast = ok & (speed_true > np.percentile(speed_true[ok], 90))
    assert abs(speed[fast].mean() / speed_true[fast].mean() - 1) <= 0.03
    smooth = filter_savgol(ds, window_s=0.5)  # the existing filters work on 3D too
    assert np.isfinite(smooth.position.values).mean() > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("kind, n_cameras", [("charuco", 2), ("charuco", 4), ("checkerboard", 4)])
def test_virtual_mouse_other_rigs(kind: str, n_cameras: int) -> None:
    truth, ds, res, _ = _run(kind, n_cameras, 20, 30.0)
    assert max(res.rms_px.values()) < 0.5
    err = np.linalg.norm(ds.position.values - truth.position.values, axis=1)
    assert np.nanmedian(err) <= (2.0 if n_cameras == 2 else 1.5)
