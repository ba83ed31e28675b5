"""Calibration refinement on the animal's own points: a nudged camera is found again, held-out frames improve."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from typer.testing import CliRunner

from pose import io as pio
from pose.synthetic.multicam import lift_to_3d, make_rig, project_poses
from pose.synthetic.openfield import simulate_open_field
from pose.threed.cameras import load_calibration, rodrigues, rotation_vector, save_calibration
from pose.threed.refine import (
    RefinementError,
    label_reprojection_px,
    refine_calibration,
    select_cameras_to_refine,
)


def _nudge(cam, shift_mm: float, angle_deg: float, seed: int):
    """The camera moved by shift_mm and turned by angle_deg (a knocked tripod)."""
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=3)
    turn = rodrigues(np.deg2rad(angle_deg) * axis / np.linalg.norm(axis))
    r = turn @ cam.rotation_matrix
    d = rng.normal(size=3)
    centre = cam.centre + shift_mm * d / np.linalg.norm(d)
    return dataclasses.replace(cam, rotation=rotation_vector(r), translation=-r @ centre)


@pytest.fixture(scope="module")
def nudged():
    truth = lift_to_3d(simulate_open_field(12.0, fps=30, seed=11))
    rig = make_rig(3, seed=12)
    poses = project_poses(truth, rig, noise_px=0.5, seed=13)
    p2 = np.stack([poses[c.name].position.transpose("time", "keypoint", "individual", "space").values[..., 0, :]
                   for c in rig])  # (C, T, K, 2)
    board_rig = [rig[0], rig[1], _nudge(rig[2], 8.0, 1.5, seed=14)]
    return truth, rig, board_rig, p2, poses


def test_a_nudged_camera_is_found_again_and_held_out_frames_improve(nudged) -> None:
    _, rig, board_rig, p2, _ = nudged
    c, t = p2.shape[:2]
    fit, test = np.arange(t) < t // 2, np.arange(t) >= t // 2
    before = label_reprojection_px(board_rig, p2[:, test].reshape(c, -1, 2))
    assert before["cam2"] > 2.5 and before["cam0"] > 2.5  # the nudge shows, spread over the cameras
    # the pair that agrees (cam0 + cam1) is the gauge; the nudged camera is the one to refine
    assert select_cameras_to_refine(board_rig, p2[:, fit].reshape(c, -1, 2)) == ["cam2"]
    ref = refine_calibration(board_rig, p2[:, fit].reshape(c, -1, 2))
    assert ref.refined == ["cam2"]
    # the true camera is recovered (the two fixed cameras pin the world and its scale)
    cam = ref.cameras[2]
    assert np.linalg.norm(cam.centre - rig[2].centre) < 1.0  # mm, against an 8 mm nudge
    turn = rodrigues(cam.rotation) @ rig[2].rotation_matrix.T
    assert np.degrees(np.linalg.norm(rotation_vector(turn))) < 0.1  # against 1.5 deg
    assert ref.changes["cam2"]["moved_mm"] == pytest.approx(8.0, abs=1.0)
    # on frames it never saw, every camera's labels reproject at the noise level again
    after = label_reprojection_px(ref.cameras, p2[:, test].reshape(c, -1, 2))
    truth_rig = label_reprojection_px(rig, p2[:, test].reshape(c, -1, 2))
    for name in after:
        assert after[name] <= truth_rig[name] * 1.1 + 0.05, (name, after, truth_rig)
    assert "cam2: moved" in ref.summary()


def test_focal_length_refinement_and_the_all_camera_gauge(nudged) -> None:
    _, rig, _, p2, _ = nudged
    c = p2.shape[0]
    k = rig[1].matrix.copy()
    k[:2, :2] *= 1.03  # a 3 % wrong focal length
    wrong = [rig[0], dataclasses.replace(rig[1], matrix=k), rig[2]]
    ref = refine_calibration(wrong, p2.reshape(c, -1, 2), refine=["cam1"], intrinsics="focal")
    # focal length and distance trade off for an animal small against its distance: within 0.6 %
    assert ref.changes["cam1"]["focal_pct"] == pytest.approx(100 * (1 / 1.03 - 1), abs=0.6)
    truth_rig = label_reprojection_px(rig, p2.reshape(c, -1, 2))
    assert ref.median_px_after["cam1"] <= 1.1 * truth_rig["cam1"] + 0.05
    # every camera free: the first camera's pose and the rig's scale are pinned, nothing drifts
    ref_all = refine_calibration(rig, p2.reshape(c, -1, 2), refine=["cam0", "cam1", "cam2"])
    assert ref_all.changes["cam0"]["moved_mm"] == pytest.approx(0.0, abs=1e-9)
    assert max(ch["moved_mm"] for ch in ref_all.changes.values()) < 2.0


def test_bad_refinement_input_names_the_camera(nudged) -> None:
    _, rig, _, p2, _ = nudged
    c = p2.shape[0]
    with pytest.raises(RefinementError, match="'camX'"):
        refine_calibration(rig, p2.reshape(c, -1, 2), refine=["camX"])
    few = np.full_like(p2.reshape(c, -1, 2), np.nan)
    few[:, :5] = p2.reshape(c, -1, 2)[:, :5]
    with pytest.raises(RefinementError, match="only 5 points"):
        refine_calibration(rig, few, refine=["cam2"])


def test_cli_refine_calibration(nudged, tmp_path) -> None:
    from ethopose.cli import app

    _, rig, board_rig, _, poses = nudged
    save_calibration(board_rig, tmp_path / "calibration.toml")
    files = [str(pio.save(ds, tmp_path / f"session_{name}.h5")) for name, ds in poses.items()]
    out = tmp_path / "refined.toml"
    result = CliRunner().invoke(app, ["pose", "refine-calibration", "--calibration", str(tmp_path / "calibration.toml"),
                                      *files, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "cam2: moved" in result.output and "held-out" in result.output
    cams, meta = load_calibration(out)
    assert np.linalg.norm(cams[2].centre - rig[2].centre) < 1.0
    assert meta["refined"]["cameras"] == ["cam2"]
