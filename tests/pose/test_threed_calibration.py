"""Calibration: boards, the synthetic rig (exact truth), dlc-stereo against Bouguet, sleap-anipose ChArUco."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from pose.synthetic.multicam import make_rig, render_board_views
from pose.threed.board import Board, BoardFileError, board_from_dict, detect_board, load_board
from pose.threed.calibration import calibrate_cameras
from pose.threed.cameras import load_calibration, rodrigues
from pose.threed.sources import CalibrationInputError, detect_all, group_by_camera
from tests.conftest import shared_path

CHECKER = Board(kind="checkerboard", board_x=9, board_y=6, square_length=20.0)


@pytest.fixture(scope="module")
def synthetic_views():
    rig = make_rig(2, seed=1)
    return rig, render_board_views(CHECKER, rig, n_views=7, seed=2)


def test_board_files(tmp_path: Path) -> None:
    charuco = board_from_dict({"board_x": 8, "board_y": 11, "square_length": 24.0, "marker_length": 18.75,
                               "marker_bits": 4, "dict_size": 1000})
    assert charuco.kind == "charuco" and charuco.n_corners == 70
    assert charuco.object_points().shape == (70, 3)
    anipose = board_from_dict({"calibration": {"board_type": "checkerboard", "board_size": [9, 6],
                                               "board_square_side_length": 30}})
    assert anipose == Board(kind="checkerboard", board_x=9, board_y=6, square_length=30)
    np.testing.assert_allclose(anipose.object_points()[10], [30, 30, 0])
    bad = tmp_path / "board.toml"
    bad.write_text("board_x = 8\nboard_y = 11\nsquare_length = 24.0\nmarker_length = 30.0\n")
    with pytest.raises(BoardFileError, match=r"(?s)board.toml: invalid board: .*marker_length 30.0 must be smaller"):
        load_board(bad)


def test_rendered_board_corners_are_detected_where_projected(synthetic_views) -> None:
    rig, views = synthetic_views
    errs, n_seen, n_found = [], 0, 0
    for cam in rig:
        for key, img in views.images[cam.name].items():
            if img is None:
                continue
            n_seen += 1
            det = detect_board(img, CHECKER)
            if det is None:
                continue
            n_found += 1
            r, t = views.poses[key]
            truth = cam.project(CHECKER.object_points() @ rodrigues(r).T + t)
            errs.append(np.linalg.norm(det.image_points - truth[det.ids], axis=1))
    errs = np.concatenate(errs)
    assert n_found >= 0.75 * n_seen >= 8
    assert np.median(errs) < 0.25 and errs.max() < 2.0  # the same corner order in every view


@pytest.mark.slow
def test_synthetic_calibration_recovers_the_rig() -> None:
    rig = make_rig(2, seed=1)
    views = render_board_views(CHECKER, rig, n_views=12, seed=2)
    dets = {c.name: {k: d for k, img in views.images[c.name].items()
                     if img is not None and (d := detect_board(img, CHECKER)) is not None} for c in rig}
    res = calibrate_cameras(dets, CHECKER, {c.name: c.size for c in rig})
    for est, true in zip(res.cameras, rig, strict=True):
        assert res.rms_px[est.name] < 0.4
        assert est.matrix[0, 0] == pytest.approx(true.matrix[0, 0], rel=0.01)
        np.testing.assert_allclose(est.matrix[:2, 2], true.matrix[:2, 2], atol=8)
    # relative pose of camera 1 to camera 0 (the calibrated world is camera 0)
    r_rel = rig[1].rotation_matrix @ rig[0].rotation_matrix.T
    t_rel = rig[1].translation - r_rel @ rig[0].translation
    angle = np.degrees(np.arccos(np.clip((np.trace(res.cameras[1].rotation_matrix.T @ r_rel) - 1) / 2, -1, 1)))
    assert angle < 1.0
    assert np.linalg.norm(res.cameras[1].translation - t_rel) < 0.02 * np.linalg.norm(t_rel)


def test_board_never_detected_names_the_camera(tmp_path: Path) -> None:
    for cam in ("left", "right"):
        for i in range(3):
            cv2.imwrite(str(tmp_path / f"{cam}{i:02d}.png"), np.full((120, 160), 128, np.uint8))
    sources = group_by_camera([str(tmp_path)])
    assert sorted(sources) == ["left", "right"]
    with pytest.raises(CalibrationInputError, match=r"camera 'left': the checkerboard board \(9x6\) was never detected in 3"):
        detect_all(sources, CHECKER)


def test_dlc_stereo_matches_bouguet(tmp_path: Path) -> None:
    """The 14 stereo pairs: focal within 1 %, principal point within 5 px of Bouguet, RMS <= 0.3 px."""
    from scipy.io import loadmat

    from ethopose.cli import app

    folder = shared_path("dlc-stereo")
    (tmp_path / "board.toml").write_text("board_x = 9\nboard_y = 6\nsquare_length = 30.0\n")
    out = tmp_path / "calibration.toml"
    result = CliRunner().invoke(app, ["pose", "calibrate", str(folder), "--board", str(tmp_path / "board.toml"),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    cams, meta = load_calibration(out)
    assert [c.name for c in cams] == ["left", "right"]
    for cam in cams:
        ref = loadmat(folder / f"Calib_Results_{cam.name}.mat")
        np.testing.assert_allclose(cam.matrix[[0, 1], [0, 1]], ref["fc"].ravel(), rtol=0.01)
        np.testing.assert_allclose(cam.matrix[:2, 2], ref["cc"].ravel(), atol=5)
        assert meta["rms_px"][cam.name] <= 0.3
    # the baseline of the rig is one physical length in both cameras' views: ~100 mm
    assert np.linalg.norm(cams[1].translation) == pytest.approx(100, rel=0.05)
    assert (tmp_path / "calibration_corners.png").is_file()
    assert (tmp_path / "calibration_report.json").is_file()


@pytest.fixture(scope="module")
def sleap_anipose():
    from pose import io as pio

    folder = shared_path("sleap-anipose-session")
    names = ["back", "mid", "side", "top"]
    board = load_board(folder / "board.toml")
    sources = group_by_camera([str(folder / n / "calibration_images") for n in names], cameras=names)
    dets, _, sizes, _ = detect_all(sources, board)
    res = calibrate_cameras(dets, board, sizes)
    poses = {n: pio.load(folder / n / f"minimal_{n}_proofread.slp") for n in names}
    return names, res, poses


def _median_reproj(names, res, poses, camera: str, used_only: bool = False) -> float:
    from pose.threed.triangulation import triangulate_poses

    ds, reprojected = triangulate_poses(poses, [c for n in names for c in res.cameras if c.name == n])
    err = np.linalg.norm(reprojected[camera].position.values - poses[camera].position.values, axis=1)
    if used_only:
        err = err[ds["camera_used"].sel(camera=camera).values > 0]
    return float(np.nanmedian(err))


@pytest.mark.slow
def test_sleap_anipose_charuco_calibration_and_labels(sleap_anipose) -> None:
    """4 cameras, real ChArUco images: RMS <= 1 px per camera; mid and top labels reproject within 3 px."""
    from pose.threed.triangulation import triangulate_points

    names, res, poses = sleap_anipose
    assert all(res.rms_px[n] <= 1.0 for n in names), res.rms_px
    for n in ("mid", "top"):
        assert _median_reproj(names, res, poses, n) <= 3.0, n
    # the back camera's error is its label quality: its confident labels lie near the mid+top
    # 3D points, its unconfident ones far (bench/results/calibration_3d.md, "label quality")
    by = {c.name: c for c in res.cameras}
    p = {n: poses[n].position.transpose("time", "keypoint", "individual", "space").values.reshape(-1, 2)
         for n in names}
    ref = triangulate_points([by["mid"], by["top"]], np.stack([p["mid"], p["top"]]))
    err = np.linalg.norm(by["back"].project(ref) - p["back"], axis=1)
    conf = poses["back"].confidence.values.ravel()
    assert np.nanmedian(err[conf >= 0.6]) < 5.0 and np.nanmedian(err[conf < 0.4]) > 15.0


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 14: back and side labels reproject at ~9 px. Their error is a "
                   "constant offset per keypoint (one offset per keypoint leaves 1.9 / 3.8 px on held-out frames, a "
                   "smooth field of image position 6.2 / 10.6 px): label convention or systematic prediction error, "
                   "not camera geometry. Refining the calibration on the labels (pose.threed.refine, aniposelib) "
                   "misses 3 px on held-out frames and breaks the board fit (bench/results/calibration_3d.md (f))")
def test_sleap_anipose_labels_reproject_within_3px_in_every_camera(sleap_anipose) -> None:
    names, res, poses = sleap_anipose
    assert all(_median_reproj(names, res, poses, n) <= 3.0 for n in names)
