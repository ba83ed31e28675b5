"""``ethopose run`` on triangulated 3D sessions: the arena and zones in mm on the floor, endpoints in mm
checked against the virtual mouse's truth, in a level world and in a tilted one (a calibration's world)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from protocols.schema import load_protocol

SECONDS, FPS, SEED = 30.0, 30.0, 5
ARENA_MM = 400.0
#: Tilt of the second session's world (Rodrigues vector, translation mm): z is not up there.
TILT_RVEC, TILT_T = np.array([0.9, -0.4, 0.3]), np.array([120.0, -40.0, 600.0])
#: Arena floor corners tl, tr, br, bl in the virtual mouse's world (the top view's top-left is y = 400).
CORNERS = np.array([[0.0, ARENA_MM, 0.0], [ARENA_MM, ARENA_MM, 0.0], [ARENA_MM, 0.0, 0.0], [0.0, 0.0, 0.0]])


def _tilt(ds, r: np.ndarray):
    pos = np.einsum("ij,tjkn->tikn", r, ds.position.values) + TILT_T[None, :, None, None]
    return ds.assign(position=(ds.position.dims, pos, ds.position.attrs))


def _true_endpoints(truth, rear: np.ndarray) -> dict[str, float]:
    """The open-field endpoints on the exact 3D body-centre track (no filtering)."""
    from behavior.bouts import bouts_from_vector

    b = truth.position.sel(keypoint="body_center").values[:, :, 0]  # (time, xyz) mm
    inside = (b[:, :2] > 0.25 * ARENA_MM).all(1) & (b[:, :2] < 0.75 * ARENA_MM).all(1)
    wall = (b[:, :2] < 50).any(1) | (b[:, :2] > ARENA_MM - 50).any(1)
    return {"distance_mm": float(np.linalg.norm(np.diff(b, axis=0), axis=1).sum()),
            "centre_time_pct": 100 * float(inside.mean()), "thigmotaxis_pct": 100 * float(wall.mean()),
            "centre_entries": float(((~inside[:-1]) & inside[1:]).sum()),
            "rearing_count": float(len(bouts_from_vector(rear > 0.5, fps=FPS)))}


@pytest.fixture(scope="module")
def cohort3d(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float], object]:
    """Two 3D sessions of one virtual mouse (3 cameras, 1 px noise, triangulated and Kalman-smoothed as
    ``ethopose pose triangulate`` writes them): ``level`` (world z up, cohort floor ``z=0``; its arena.json
    triangulated by ``ethopose arena-3d`` from each camera's arena.json, corners clicked with 0.5 px noise,
    each in its own image's order) and ``tilted`` (floor fitted to the paws; the true corners); the cohort
    csv; the truth."""
    from pose.io import save
    from pose.synthetic.multicam import lift_to_3d, make_rig, project_poses
    from pose.synthetic.openfield import simulate_open_field
    from pose.threed.cameras import rodrigues
    from pose.threed.smoothing import smooth_points3d
    from pose.threed.triangulation import triangulate_poses

    sim = simulate_open_field(SECONDS, fps=FPS, seed=SEED)
    truth = lift_to_3d(sim)
    cams = make_rig(3, seed=SEED)
    tri, _ = triangulate_poses(project_poses(truth, cams, noise_px=1.0, seed=SEED + 1), cams)
    points = smooth_points3d(tri)
    d = tmp_path_factory.mktemp("three_d")
    r = rodrigues(TILT_RVEC)
    for name, ds, corners in (("level", points, CORNERS), ("tilted", _tilt(points, r), CORNERS @ r.T + TILT_T)):
        (d / name).mkdir()
        save(ds, d / name / "points3d.nc")
        (d / name / "arena.json").write_text(json.dumps({"corners_mm": corners.tolist()}))
    _triangulate_arena_files(cams, d / "level")
    (d / "cohort.csv").write_text("subject_id,group,pose_path,floor\n"
                                  "level,a,level/points3d.nc,z=0\ntilted,b,tilted/points3d.nc,\n")
    return d, _true_endpoints(truth, np.asarray(sim.posture["rear"])), points


def _triangulate_arena_files(cams: list, folder: Path) -> None:
    """Each camera's arena.json (the true corners projected, 0.5 px noise, starting at the corner nearest its
    image's top-left), then ``ethopose arena-3d`` writes ``folder/arena.json``."""
    from typer.testing import CliRunner

    from ethopose.cli import app
    from pose.threed.cameras import save_calibration

    rng = np.random.default_rng(SEED)
    views = []
    for cam in cams:
        uv = cam.project(CORNERS) + rng.normal(0, 0.5, (4, 2))
        uv = np.roll(uv, -int(np.argmin(uv.sum(1))), axis=0)
        (folder / f"{cam.name}.arena.json").write_text(json.dumps({"corners_px": uv.tolist()}))
        views.append(f"{cam.name}={folder / f'{cam.name}.arena.json'}")
    save_calibration(cams, folder / "calibration.toml")
    res = CliRunner().invoke(app, ["arena-3d", *views, "--calibration", str(folder / "calibration.toml"),
                                   "--out", str(folder / "arena.json")])
    assert res.exit_code == 0, res.output


def test_arena_corners_triangulated_from_the_cameras(cohort3d, tmp_path) -> None:
    from typer.testing import CliRunner

    from ethopose.cli import app

    d, _, _ = cohort3d
    got = np.asarray(json.loads((d / "level" / "arena.json").read_text())["corners_mm"])
    # the true corners in the first camera's image order, within 3 mm (0.5 px clicks)
    err = np.linalg.norm(got[:, None] - CORNERS[None], axis=-1)
    assert err.min(1).max() < 3.0 and len(set(err.argmin(1))) == 4
    order = err.argmin(1)
    assert any(np.array_equal(order, np.roll(o, k)) for o in (np.arange(4), np.arange(4)[::-1]) for k in range(4))
    # a view of another arena (shifted 40 px in one of three cameras) does not triangulate; bad arguments are named
    other = json.loads((d / "level" / "cam1.arena.json").read_text())
    (tmp_path / "cam1.arena.json").write_text(json.dumps({"corners_px": (np.asarray(other["corners_px"]) + 40).tolist()}))
    views = [f"cam0={d / 'level' / 'cam0.arena.json'}", f"cam1={tmp_path / 'cam1.arena.json'}",
             f"cam2={d / 'level' / 'cam2.arena.json'}"]
    cli = ["--calibration", str(d / "level" / "calibration.toml"), "--out", str(tmp_path / "arena.json")]
    res = CliRunner().invoke(app, ["arena-3d", *views, *cli])
    assert res.exit_code == 2 and "the arena corners do not triangulate" in res.output, res.output
    res = CliRunner().invoke(app, ["arena-3d", "cam0", f"cam1={tmp_path / 'cam1.arena.json'}", *cli])
    assert res.exit_code == 2 and "CAMERA=ARENA_JSON, got ['cam0']" in res.output
    res = CliRunner().invoke(app, ["arena-3d", views[0], f"cam9={tmp_path / 'cam1.arena.json'}", *cli])
    assert res.exit_code == 2 and "camera(s) ['cam9'] not in the calibration" in res.output
    assert not (tmp_path / "arena.json").exists()


@pytest.fixture(scope="module")
def run3d(cohort3d):
    from protocols.batch import run_cohort

    d, _, _ = cohort3d
    return run_cohort("open_field", d / "cohort.csv", d / "out", n_workers=0, progress=False)


def test_open_field_protocol_on_3d_sessions_matches_the_virtual_mouse(cohort3d, run3d) -> None:
    _, truth, _ = cohort3d
    assert run3d.failed == {} and sorted(run3d.processed) == ["level_1", "tilted_1"]
    table = run3d.endpoints.set_index("subject_id")
    for who in ("level", "tilted"):
        ep = table.loc[who]
        # stated tolerances: path within 2 % of the true 3D path, zone times within 1 point, counts within 1
        assert ep["distance_mm"] == pytest.approx(truth["distance_mm"], rel=0.02), who
        assert abs(ep["centre_time_pct"] - truth["centre_time_pct"]) < 1.0, who
        assert abs(ep["thigmotaxis_pct"] - truth["thigmotaxis_pct"]) < 1.0, who
        assert abs(ep["centre_entries"] - truth["centre_entries"]) <= 1, who
        assert abs(ep["rearing_count"] - truth["rearing_count"]) <= 1, who
        assert ep["quality_flag"] == "ok" and ep["qc_flag"] == "ok"
    assert truth["centre_time_pct"] > 5 and truth["rearing_count"] >= 2  # the session tests both
    # the tilted world (floor fitted to the paws) gives the level world's numbers
    lv, tl = table.loc["level"], table.loc["tilted"]
    assert tl["distance_mm"] == pytest.approx(lv["distance_mm"], rel=1e-3)
    for col in ("centre_time_pct", "thigmotaxis_pct", "rearing_time_s"):
        assert tl[col] == pytest.approx(lv[col], abs=0.5), col


def test_3d_results_folder_geometry_frames_and_report(cohort3d, run3d) -> None:
    d, _, _ = cohort3d
    for who, floor in (("level", "given: the plane z = 0"), ("tilted", "stance points")):
        folder = d / "out" / "animals" / f"{who}_1"
        geo = json.loads((folder / "geometry.json").read_text())
        assert geo["units"] == "floor_mm" and floor in geo["floor"] and "arena_corners_px" not in geo
        c = np.asarray(geo["arena_corners_floor_mm"])
        np.testing.assert_allclose(np.linalg.norm(np.diff(np.vstack([c, c[:1]]), axis=0), axis=1), ARENA_MM, atol=1.0)
        frames = pd.read_parquet(folder / "frames.parquet")
        assert {"floor_x_mm", "height_mm", "in_centre", "in_wall", "rearing"} <= set(frames.columns)
        assert floor in frames.attrs["floor"]
    page = run3d.report_path.read_text()
    assert "<h2>3D trajectories</h2>" in page and "given: the plane z = 0" in page and "stance points" in page
    done = json.loads((d / "out" / "animals" / "level_1" / "done").read_text())
    assert done["fingerprint"]["cohort_row"]["floor"] == "z=0"  # a changed floor redoes the animal


def test_3d_arena_sources_agree_and_bad_geometry_is_refused(cohort3d, tmp_path, caplog) -> None:
    from features.zones import ArenaError
    from protocols.geometry import compile_zones, locate_arena_3d
    from protocols.schema import Arena

    _, _, points = cohort3d
    ds = points.assign_attrs(floor_spec="z=0")
    (tmp_path / "arena.json").write_text(json.dumps({"corners_mm": CORNERS.tolist()}))
    from_file = locate_arena_3d(Arena(shape="rectangle", width_mm=400, height_mm=400), ds, tmp_path / "p.nc")
    np.testing.assert_allclose(from_file.corners_px, CORNERS[:, :2], atol=1e-6)  # z = 0 floor: world x, y
    assert from_file.px_per_mm == pytest.approx(1.0)
    # corners in another world than the pose's (here 60 mm above its floor) are drawn, with a warning
    (tmp_path / "arena.json").write_text(json.dumps({"corners_mm": (CORNERS + [0, 0, 60]).tolist()}))
    locate_arena_3d(Arena(shape="rectangle", width_mm=400, height_mm=400), ds, tmp_path / "p.nc")
    assert "corners_mm lie [60.0, 60.0, 60.0, 60.0] mm from the floor" in caplog.text
    # tracked corner keypoints (median 3D positions) give the same placement
    pos = np.concatenate([ds.position.values, np.broadcast_to(CORNERS.T[None, :, :, None], (ds.sizes["time"], 3, 4, 1))
                          + np.random.default_rng(0).normal(0, 0.5, (ds.sizes["time"], 3, 4, 1))], axis=2)
    names = ["c_tl", "c_tr", "c_br", "c_bl"]
    import xarray as xr

    with_corners = xr.Dataset({"position": (ds.position.dims, pos)}, coords={
        "time": ds.time, "space": ds.space, "keypoint": [*ds.keypoint.values, *names], "individual": ds.individual},
        attrs=ds.attrs)
    tracked = locate_arena_3d(Arena(shape="rectangle", width_mm=400, height_mm=400, source="tracked_corners",
                                    corner_keypoints=names), with_corners)
    np.testing.assert_allclose(tracked.corners_px, CORNERS[:, :2], atol=0.2)
    # the pose extent: a rectangle around every keypoint's floor projection, inside the arena, nearly its size
    extent = locate_arena_3d(Arena(shape="rectangle", width_mm=400, height_mm=400, source="pose_extent"), ds)
    assert (extent.corners_px > -5).all() and (extent.corners_px < ARENA_MM + 5).all()
    assert 300 < extent.px_per_mm * 400 < 405
    # refused: image pixels for a 3D session
    (tmp_path / "arena.json").write_text(json.dumps({"corners_px": [[0, 0], [1, 0], [1, 1], [0, 1]]}))
    with pytest.raises(ArenaError, match=r"arena.json: a 3D \(triangulated\) session needs 'corners_mm'"):
        locate_arena_3d(Arena(shape="rectangle", width_mm=400, height_mm=400), ds, tmp_path / "p.nc")
    with pytest.raises(ArenaError, match="'explicit' gives image pixels"):
        locate_arena_3d(Arena(shape="rectangle", width_mm=400, height_mm=400, source="explicit",
                              corners_px=[(0, 0), (1, 0), (1, 1), (0, 1)]), ds)
    proto = load_protocol("three_chamber")
    px = proto.model_copy(update={"zones": [z.model_copy(update={"units": "px"}) for z in proto.zones
                                            if getattr(z, "units", None)][:1]})
    with pytest.raises(ArenaError, match="is in image pixels but the session is 3D"):
        compile_zones(px, from_file)


def test_cohort_floor_column_is_checked(cohort3d, tmp_path) -> None:
    from protocols.animal import process_animal
    from protocols.batch import CohortError, read_cohort

    d, _, _ = cohort3d
    (tmp_path / "bad.csv").write_text(f"subject_id,group,pose_path,floor\nm1,a,{d}/level/points3d.nc,flat\n"
                                      f"m2,a,{d}/level/points3d.nc,board:nope.toml\n")
    with pytest.raises(CohortError) as err:
        read_cohort(tmp_path / "bad.csv")
    assert "bad.csv line 2, column 'floor': --floor 'flat': not a floor" in str(err.value)
    assert "line 3, column 'floor': calibration file not found" in str(err.value)
    # a floor for a 2D pose fails that animal, naming the file
    from pose.io import save
    from pose.synthetic.openfield import simulate_open_field

    save(simulate_open_field(2.0, fps=15, seed=1).pose, tmp_path / "flat.nc")
    row = {"key": "m3_1", "subject_id": "m3", "group": "a", "sex": "", "session": "1", "dose": np.nan,
           "pose_path": str(tmp_path / "flat.nc"), "video_path": "", "floor": "z=0"}
    res = process_animal(row, load_protocol("open_field"), str(tmp_path / "out"))
    assert res["status"] == "failed" and "flat.nc: the cohort's floor column ('z=0') is for 3D" in res["error"]


def test_gait_protocol_on_the_3d_gait_mouse() -> None:
    """The gait protocol (scale source pose_attrs) on a triangulated walk: mm without any px_per_mm."""
    from pose.synthetic.multicam import make_rig, project_poses, simulate_gait_3d
    from pose.threed.triangulation import triangulate_poses
    from protocols.endpoints import analyse_session

    points, truth = simulate_gait_3d(3.0, fps=100, seed=2)
    cams = make_rig(3, seed=2)
    tri, _ = triangulate_poses(project_poses(points, cams, noise_px=1.0, seed=3), cams)
    ep = analyse_session(tri, load_protocol("gait")).endpoints
    assert ep["stride_length_mm"] == pytest.approx(truth.stride_length_mm, rel=0.01)
    assert ep["cadence_hz"] == pytest.approx(truth.cadence_hz, rel=0.01)
    assert ep["duty_factor"] == pytest.approx(truth.duty_factor, abs=0.02)
    assert ep["speed_mm_s"] == pytest.approx(truth.speed_mm_s, rel=0.01) and ep["n_strides"] >= 8


def _lifted_session(folder: Path, xy_mm: np.ndarray, size_mm: tuple[float, float], fps: float = 10.0) -> str:
    """A 3D session in the tilted world from top-view tracks ``(time, 2, keypoint)`` in mm (snout, body
    centre, tail base at heights 14, 28, 16 mm), its arena.json (the arena floor's corners, world mm), and
    the floor as a cohort would give it (the plane through the world's origin with the tilted up)."""
    from pose.dataset import from_numpy
    from pose.io import save
    from pose.threed.cameras import rodrigues

    r = rodrigues(TILT_RVEC)
    z = np.broadcast_to(np.array([14.0, 28.0, 16.0])[None, None], (len(xy_mm), 1, 3))
    level = np.concatenate([xy_mm, z], axis=1)[..., None]  # (time, space, keypoint, individual)
    ds = from_numpy(level, np.ones((len(xy_mm), 3, 1)), keypoints=["snout", "body_center", "tail_base"], fps=fps)
    save(_tilt(ds, r), folder / "points3d.nc")
    w, h = size_mm
    corners = np.array([[0.0, 0, 0], [w, 0, 0], [w, h, 0], [0, h, 0]]) @ r.T + TILT_T
    (folder / "arena.json").write_text(json.dumps({"corners_mm": corners.tolist()}))
    n = r @ [0.0, 0.0, 1.0]
    return f"point={','.join(map(str, TILT_T))};normal={','.join(map(str, n))}"


def _analyse_3d(folder: Path, protocol_name: str, floor: str) -> dict:
    import yaml

    from pose.io import load
    from protocols.animal import set_floor
    from protocols.endpoints import analyse_session
    from protocols.schema import parse_protocol, protocol_yaml

    data = yaml.safe_load(protocol_yaml(load_protocol(protocol_name)))
    data["filters"] = []
    ds = load(folder / "points3d.nc")
    set_floor(ds, {"floor": floor}, folder / "points3d.nc")
    return analyse_session(ds, parse_protocol(data), pose_path=folder / "points3d.nc").endpoints


def test_maze_and_three_chamber_known_answers_on_3d_sessions(tmp_path) -> None:
    """The 2D known-answer tracks of the elevated plus maze and the three-chamber test
    (tests/protocols/test_protocols_endpoints.py), lifted into a tilted 3D world: the same endpoints,
    the snout's floor projection giving the head dips and the sniffing."""
    # elevated plus maze, 750 mm: open arms along y = 375, closed arms along x = 375
    c = 375.0
    xy = np.r_[np.c_[np.linspace(100, 300, 40), np.full(40, c)], np.full((10, 2), c),
               np.c_[np.full(60, c), np.linspace(300, 100, 60)]]
    pos = np.stack([xy + [10, 0], xy, xy - [10, 0]], axis=-1)  # (time, 2, keypoint)
    pos[10:15, 1, 0] = c + 60  # head dips over the open arm's edge twice
    pos[25:30, 1, 0] = c - 60
    (tmp_path / "epm").mkdir()
    ep = _analyse_3d(tmp_path / "epm", "elevated_plus_maze", _lifted_session(tmp_path / "epm", pos, (750, 750)))
    assert ep["open_arm_time_pct"] == pytest.approx(40.0, abs=1.5)
    assert ep["open_arm_entries"] == 0 and ep["closed_arm_entries"] == 1 and ep["head_dips"] == 2
    # three chambers, 600 x 400 mm: 6 s at the stranger's cup, 2 s in the middle, 2 s at the object's
    xy = np.r_[np.tile([100.0, 200.0], (60, 1)), np.tile([300.0, 200.0], (20, 1)), np.tile([500.0, 200.0], (20, 1))]
    pos = np.stack([xy + [10, 0], xy, xy - [10, 0]], axis=-1)
    (tmp_path / "three").mkdir()
    ep = _analyse_3d(tmp_path / "three", "three_chamber", _lifted_session(tmp_path / "three", pos, (600, 400)))
    assert ep["social_time_s"] == pytest.approx(6.0) and ep["object_time_s"] == pytest.approx(2.0)
    assert ep["sociability_index"] == pytest.approx(0.5) and ep["social_chamber_time_pct"] == pytest.approx(60.0)
