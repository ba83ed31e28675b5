"""Gait, angles and zones on 3D poses (mm): the same functions as in 2D, checked against the virtual mouse's truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.gait import detect_step_cycles, summarize_gait
from pose.synthetic.multicam import (
    make_rig,
    match_true_cycles,
    open_field_true_cycles,
    project_poses,
    simulate_gait_3d,
)
from pose.threed.cameras import rodrigues
from pose.threed.triangulation import triangulate_poses

PAWS = ["left_hindpaw", "right_hindpaw", "left_forepaw", "right_forepaw"]


def _cycles(ds, **kw) -> pd.DataFrame:
    return pd.concat([detect_step_cycles(ds, p, **kw) for p in PAWS], ignore_index=True)


def _rotated(ds, rvec=(0.9, -0.4, 0.3), t=(120.0, -40.0, 600.0)):
    """The same pose in a tilted world (as a calibration's first camera would put it)."""
    r = rodrigues(np.array(rvec))
    pos = np.einsum("ij,tjkn->tikn", r, ds.position.values) + np.array(t)[None, :, None, None]
    return ds.assign(position=(ds.position.dims, pos, ds.position.attrs))


@pytest.fixture(scope="module")
def walk():
    """The 3D gait mouse (walk: stride 60 mm, duty 0.65, 100 fps), exact and through 3 cameras at 1 px."""
    ds, truth = simulate_gait_3d(2.0, 100.0, seed=1)
    cams = make_rig(3, seed=1)
    tri, _ = triangulate_poses(project_poses(ds, cams, noise_px=1.0, seed=11), cams)
    return ds, tri, truth


def test_exact_3d_walk_gives_the_true_gait_and_paw_heights(walk) -> None:
    ds, _, truth = walk
    cyc = _cycles(ds, floor="z=0")
    assert len(cyc) >= 12 and (cyc["length_unit"] == "mm").all()
    assert cyc["stride_length"].to_numpy() == pytest.approx(truth.stride_length_mm, rel=1e-3)
    assert cyc["duty_factor"].to_numpy() == pytest.approx(truth.duty_factor, abs=0.01)
    assert cyc["cadence_hz"].median() == pytest.approx(truth.cadence_hz, rel=0.01)
    peak = cyc.groupby(cyc["paw"].str.contains("hind"))["swing_height"].median()
    assert peak[True] == pytest.approx(8.0, abs=0.1) and peak[False] == pytest.approx(6.0, abs=0.1)  # lift, mm
    np.testing.assert_allclose(cyc["stance_height"], 0.0, atol=1e-9)


def test_triangulated_walk_in_a_tilted_world_matches_the_truth(walk) -> None:
    """1 px noise, 3 cameras, the world tilted away and the floor found from the paws: stride within 2 %,
    duty factor within 0.03, paw lift within 1 mm, base of support on the floor within 1.5 mm."""
    ds, tri, truth = walk
    tilted = _rotated(tri)
    cyc = _cycles(tilted)
    assert len(cyc) >= 12
    assert cyc["stride_length"].median() == pytest.approx(truth.stride_length_mm, rel=0.02)
    assert cyc["duty_factor"].mean() == pytest.approx(truth.duty_factor, abs=0.03)
    hind = cyc[cyc["paw"].str.contains("hind")]
    assert hind["swing_height"].median() == pytest.approx(8.0, abs=1.0)
    assert np.abs(cyc["stance_height"]).median() < 1.0
    bos = summarize_gait(cyc, tilted)["base_of_support"].set_index("left")["base_of_support"]
    assert bos["left_hindpaw"] == pytest.approx(truth.base_of_support_mm["hind"], abs=1.5)
    assert bos["left_forepaw"] == pytest.approx(truth.base_of_support_mm["fore"], abs=1.5)
    # the world's own x, y (tilted) would be a different, wrong gait: the floor frame is what makes it right
    flat = _cycles(tilted.sel(space=["x", "y"]))
    assert abs(flat["stride_length"].median() / truth.stride_length_mm - 1) > 0.1


def test_a_paw_held_up_is_not_a_stance_in_3d(walk) -> None:
    """The left forepaw raised 25 mm and held still for 0.5 s: seen from above (x, y) it stands, in 3D it is off
    the floor, and no 3D cycle has its stance there."""
    ds, _, _ = walk
    t = ds.time.values
    held = (t > 0.8) & (t < 1.3)
    pos = ds.position.values.copy()
    k = list(ds.keypoint.values).index("left_forepaw")
    i0 = np.flatnonzero(held)[0]
    ramp = np.clip(np.minimum(t - 0.8, 1.3 - t) / 0.05, 0, 1)
    pos[held, :2, k] = pos[i0, :2, k]
    pos[:, 2, k] += (25.0 * ramp * held)[:, None]
    up = ds.assign(position=(ds.position.dims, pos, ds.position.attrs))
    cyc3 = detect_step_cycles(up, "left_forepaw", floor="z=0")
    cyc2 = detect_step_cycles(up.sel(space=["x", "y"]), "left_forepaw")

    def stands_in_the_air(c: pd.DataFrame) -> bool:
        return bool(((c["swing_end_s"] < 1.25) & (c["stance_end_s"] > 0.85)).any())

    assert stands_in_the_air(cyc2) and not stands_in_the_air(cyc3)
    assert (cyc3["stance_height"].abs() < 1e-6).all()


@pytest.fixture(scope="module")
def open_field():
    """The open-field virtual mouse (trots, turns, rears) through 3 cameras, 1 px noise, 30 fps, with its true
    step cycles: toe-off, touch-down, next toe-off, and the stride on the floor from the true paw track."""
    from pose.synthetic.multicam import lift_to_3d
    from pose.synthetic.openfield import simulate_open_field

    sim = simulate_open_field(40.0, fps=30, seed=3)
    truth = lift_to_3d(sim)
    cams = make_rig(3, seed=5)
    tri, _ = triangulate_poses(project_poses(truth, cams, noise_px=1.0, seed=6), cams)
    return truth, tri, open_field_true_cycles(sim, truth), np.asarray(sim.posture["rear"])


def test_open_field_mouse_strides_and_stance_against_the_truth(open_field) -> None:
    """Detected cycles matched to true ones (both toe-offs within 1.5 frames): stride length within 2 % (median and
    mean), duty factor within 0.06 of the truth (30 fps: half a frame is 0.04 of a 12-frame cycle)."""
    _, tri, true_cycles, _ = open_field
    cyc = _cycles(tri)
    m = match_true_cycles(cyc, true_cycles)
    assert len(m) > 0.6 * len(true_cycles)
    assert np.median(m[:, 0] / m[:, 1]) == pytest.approx(1.0, abs=0.02)
    assert m[:, 0].mean() / m[:, 1].mean() == pytest.approx(1.0, abs=0.02)
    assert abs(np.mean(m[:, 2] - m[:, 3])) < 0.06


def test_open_field_rearing_forepaws_make_no_3d_steps(open_field) -> None:
    """While the mouse rears its forepaws are up at its chest (40 mm): no kept forepaw stance lies in a rear."""
    truth, tri, _, rear = open_field
    t = truth.time.values

    def stances_in_a_rear(c: pd.DataFrame) -> int:
        n = 0
        for a, b in zip(c["swing_end_s"], c["stance_end_s"], strict=True):
            in_stance = (t >= a) & (t <= b)
            n += int(in_stance.any() and np.median(rear[in_stance]) >= 0.5)
        return n

    for paw in ("left_forepaw", "right_forepaw"):
        c = detect_step_cycles(tri, paw)
        assert stances_in_a_rear(c) == 0 and c["stance_height"].median() < 1.5
        assert stances_in_a_rear(detect_step_cycles(tri.sel(space=["x", "y"]), paw)) >= 2  # the top view is fooled


def test_joint_angles_and_distances_are_rotation_invariant_and_match_the_truth(open_field) -> None:
    from features.kinematics import compute_joint_angle, compute_pairwise_distance

    truth, tri, _, _ = open_field
    tilted = _rotated(tri)
    a_tri = compute_joint_angle(tri, "snout", "neck", "tail_base").values
    np.testing.assert_allclose(compute_joint_angle(tilted, "snout", "neck", "tail_base").values, a_tri, atol=1e-9)
    np.testing.assert_allclose(compute_pairwise_distance(tilted, "snout", "tail_base").values,
                               compute_pairwise_distance(tri, "snout", "tail_base").values, rtol=1e-9)
    a_true = compute_joint_angle(truth, "snout", "neck", "tail_base").values
    assert np.nanmedian(np.abs(a_tri - a_true)) < 4.0  # degrees (the head is ~15 mm: 0.6 mm noise is ~2.5 deg)
    # rearing bends the body in the vertical plane: the 3D angle sees it, the top view does not
    rear_angle_3d = compute_joint_angle(truth, "snout", "neck", "tail_base").values.ravel()
    rear_angle_2d = compute_joint_angle(truth.sel(space=["x", "y"]), "snout", "neck", "tail_base").values.ravel()
    assert np.nanmax(np.abs(rear_angle_3d - rear_angle_2d)) > 20


def test_zones_on_the_floor_agree_with_the_top_view_truth(open_field) -> None:
    """Centre-zone occupancy from the triangulated body centre's floor projection vs the truth's x, y."""
    from features.table import compute_feature_table
    from features.zones import ZoneSet, compute_occupancy, open_field_zones

    truth, tri, _, _ = open_field
    zones = open_field_zones([0.0, 0.0, 400.0, 400.0], center_fraction=0.5)
    assert isinstance(zones, ZoneSet)
    occ_true = compute_occupancy(truth.sel(space=["x", "y"]), zones).sel(zone="centre").values.ravel()
    occ_3d = compute_occupancy(tri, zones).sel(zone="centre").values.ravel()  # floor found from the paws
    assert occ_true.mean() > 0.05
    assert (occ_3d == occ_true).mean() > 0.98
    table = compute_feature_table(tri, zones, min_dwell_s=0.0)
    assert (table["in_centre"].to_numpy() == occ_true).mean() > 0.98
    np.testing.assert_allclose(table["floor_x_mm"], tri.position.sel(keypoint="body_center", space="x").values.ravel(),
                               atol=1.5)


def test_floor_specs_known_answers_and_bad_input() -> None:
    from features.threed import floor_from_spec, to_floor_frame
    from pose.dataset import from_numpy

    f = floor_from_spec("z=0")
    assert f.normal.tolist() == [0, 0, 1] and f.offset_mm == 0 and "z = 0" in f.how
    down = floor_from_spec("-z=5")  # a world whose z points down (a camera's): up is -z, the floor at z = 5
    assert down.normal.tolist() == [0, 0, -1] and down.offset_mm == -5
    tilted = floor_from_spec("point=1,2,3;normal=0,1,1")
    n = np.array([0.0, 1.0, 1.0]) / np.sqrt(2)
    np.testing.assert_allclose(tilted.normal, n)
    # a point 10 mm above the tilted plane, 4 mm along the floor's x from the plane's point
    p = np.array([1.0, 2.0, 3.0]) + 10 * n + 4 * np.array([1.0, 0, 0])
    ds = from_numpy(np.stack([p, p + [0, 0, 0]], axis=0)[..., None], keypoints=["a"], fps=10.0)
    on = to_floor_frame(ds, tilted).position.values[0, :, 0, 0]
    assert on[2] == pytest.approx(10.0, abs=1e-9)
    np.testing.assert_allclose(to_floor_frame(ds, floor_from_spec("z=0")).position.values[0, :, 0, 0], p, atol=1e-12)
    for bad, msg in (("floor", "not a floor; give 'z=0'"), ("point=1,2;normal=0,0,1", "point must be 3 numbers"),
                     ("point=0,0,0;normal=0,0,0", "normal must be 3 finite numbers")):
        with pytest.raises(ValueError, match=msg):
            floor_from_spec(bad)


def test_floor_from_the_calibration_boards_first_view(tmp_path) -> None:
    """A board lying face up on z = 0 in the first view: its plane is written to calibration.toml and read back
    as the floor, up on the cameras' side."""
    from features.threed import floor_from_spec
    from pose.threed.calibration import CalibrationResult
    from pose.threed.cameras import rotation_vector, save_calibration

    cams = make_rig(3, seed=2)
    face_up = rodrigues(np.array([0, 0, 0.7])) @ rodrigues(np.array([np.pi, 0, 0]))  # board z (into it) points down
    res = CalibrationResult(cams, {}, {}, {}, {}, {}, board_poses={"000": (rotation_vector(face_up), np.array([50.0, 60, 0])),
                                                                  "001": (np.array([0.3, 0, 0]), np.array([0, 0, 90.0]))})
    meta = res.metadata()
    assert meta["floor_board"]["view"] == "000"
    save_calibration(cams, tmp_path / "calibration.toml", meta)
    floor = floor_from_spec(f"board:{tmp_path / 'calibration.toml'}")
    np.testing.assert_allclose(floor.normal, [0, 0, 1], atol=1e-12)
    assert floor.offset_mm == pytest.approx(0.0, abs=1e-9) and "'000'" in floor.how
    save_calibration(cams, tmp_path / "other.toml", {})
    with pytest.raises(ValueError, match=r"other.toml: no \[metadata.floor_board\]"):
        floor_from_spec(f"board:{tmp_path / 'other.toml'}")


def test_cli_floor_option_prints_the_floor_and_gait_on_points3d(walk, tmp_path) -> None:
    from typer.testing import CliRunner

    from ethopose.cli import app
    from pose import io as pio

    _, tri, truth = walk
    pio.save(tri, tmp_path / "points3d.nc")
    run = CliRunner().invoke
    r = run(app, ["features", "compute", str(tmp_path / "points3d.nc"), "--out", str(tmp_path / "t.csv"),
                  "--floor", "z=0"])
    assert r.exit_code == 0, r.output
    assert "floor: given: the plane z = 0 mm" in r.output
    table = pd.read_csv(tmp_path / "t.csv")
    assert table["height_mm"].median() == pytest.approx(24.0, abs=1.5)  # the body centre, 24 mm up
    r = run(app, ["features", "compute", str(tmp_path / "points3d.nc"), "--out", str(tmp_path / "t.csv"),
                  "--floor", "flat"])
    assert r.exit_code == 1 and "not a floor" in r.output
    r = run(app, ["features", "gait", str(tmp_path / "points3d.nc"), "--out", str(tmp_path / "steps.csv")])
    assert r.exit_code == 0, r.output
    assert "floor: plane of the paws' stance points" in r.output
    steps = pd.read_csv(tmp_path / "steps.csv")
    assert steps["stride_length"].median() == pytest.approx(truth.stride_length_mm, rel=0.02)
    assert {"swing_height", "stance_height"} <= set(steps.columns) and (steps["length_unit"] == "mm").all()
