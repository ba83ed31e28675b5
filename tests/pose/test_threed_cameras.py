"""Cameras and anipose calibration files: known-answer projections, exact triangulation, TOML round-trip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pose.synthetic.multicam import make_rig
from pose.threed.cameras import (
    CalibrationFileError,
    Camera,
    load_calibration,
    rodrigues,
    save_calibration,
    select_cameras,
)
from pose.threed.triangulation import reprojection_errors, triangulate_points
from tests.conftest import shared_path


def test_rodrigues_matches_opencv() -> None:
    rng = np.random.default_rng(0)
    for rvec in rng.normal(0, 1.5, (20, 3)):
        np.testing.assert_allclose(rodrigues(rvec), cv2.Rodrigues(rvec)[0], atol=1e-12)
    np.testing.assert_allclose(rodrigues(np.zeros(3)), np.eye(3))


def test_projection_matches_opencv_with_distortion() -> None:
    cam = make_rig(3, seed=5)[1]
    pts = np.random.default_rng(1).uniform([0, 0, 0], [400, 400, 80], (200, 3))
    ref, _ = cv2.projectPoints(pts, cam.rotation, cam.translation, cam.matrix, cam.distortions)
    np.testing.assert_allclose(cam.project(pts), ref.reshape(-1, 2), atol=1e-9)


def test_pinhole_known_answer() -> None:
    cam = Camera("c", (640, 480), [[500, 0, 320], [0, 500, 240], [0, 0, 1]], translation=[0, 0, 1000])
    # a point 100 mm right of the axis at 1 m depth lands 50 px right of the principal point
    np.testing.assert_allclose(cam.project(np.array([100.0, 0, 0])), [370.0, 240.0])
    np.testing.assert_allclose(cam.centre, [0, 0, -1000])


def test_projected_points_triangulate_back_exactly() -> None:
    cams = make_rig(3, seed=2)
    pts = np.random.default_rng(3).uniform([20, 20, 0], [380, 380, 100], (500, 3))
    obs = np.stack([c.project(pts) for c in cams])
    back = triangulate_points(cams, obs)
    assert np.max(np.abs(back - pts)) < 1e-6
    assert reprojection_errors(cams, back, obs).max() < 1e-6
    two = triangulate_points(cams[:2], obs[:2])  # any two cameras suffice
    assert np.max(np.abs(two - pts)) < 1e-6


def test_calibration_toml_round_trip_is_exact(tmp_path: Path) -> None:
    cams = make_rig(4, seed=7)
    meta = {"software": "ethopose", "rms_px": {"cam0": 0.25}, "n_used": {"cam0": 12}}
    path = save_calibration(cams, tmp_path / "calibration.toml", meta)
    back, meta_back = load_calibration(path)
    assert [c.name for c in back] == [c.name for c in cams]
    for a, b in zip(cams, back, strict=True):
        assert a.size == b.size
        for field in ("matrix", "distortions", "rotation", "translation"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert meta_back == meta


def test_reads_sleap_anipose_reference_calibration(tmp_path: Path) -> None:
    path = shared_path("sleap-anipose-session", "calibration.toml")
    cams, _ = load_calibration(path)
    assert [c.name for c in cams] == ["back", "mid", "side", "top"]
    assert cams[0].size == (1280, 1024)
    assert cams[0].matrix[0, 0] == pytest.approx(769.8864926727645)
    assert cams[2].distortions[0] == pytest.approx(-0.2939343017698909)
    again, _ = load_calibration(save_calibration(cams, tmp_path / "c.toml"))
    np.testing.assert_array_equal(again[1].rotation, cams[1].rotation)


def test_bad_calibration_files_name_file_and_camera(tmp_path: Path) -> None:
    with pytest.raises(CalibrationFileError, match="not found"):
        load_calibration(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('[cam_0]\nname = "left"\nsize = [640, 480]\n')
    with pytest.raises(CalibrationFileError, match=r"bad.toml: \[cam_0\] lacks field\(s\) \['matrix'\]"):
        load_calibration(bad)
    cams = make_rig(2)
    with pytest.raises(CalibrationFileError, match=r"a.toml: camera\(s\) \['side'\] not in the calibration"):
        select_cameras(cams, ["cam0", "side"], context="a.toml")
