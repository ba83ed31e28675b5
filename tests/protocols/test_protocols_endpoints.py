"""Endpoints of each assay on tracks with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pose.dataset import from_numpy
from protocols.endpoints import SessionError, analyse_session
from protocols.geometry import ArenaError
from protocols.schema import load_protocol, parse_protocol, protocol_yaml

FPS = 10.0
PPM = 2.0  # px per mm; the 400 mm arena is 800 px


def _pose(body_xy: np.ndarray, *, snout_offset=(10.0, 0.0), names=("snout", "body_center", "tail_base"),
          fps: float = FPS) -> object:
    n = len(body_xy)
    pos = np.zeros((n, 2, 3, 1))
    pos[:, :, 1, 0] = body_xy
    pos[:, :, 0, 0] = body_xy + np.asarray(snout_offset)
    pos[:, :, 2, 0] = body_xy - np.asarray(snout_offset)
    return from_numpy(pos, np.ones((n, 3, 1)), keypoints=list(names), fps=fps, px_per_mm=PPM)


def _protocol(name: str, **changes):
    data = yaml.safe_load(protocol_yaml(load_protocol(name)))
    data.update(changes)
    return parse_protocol(data)


def _explicit_arena(name: str, w_mm: float, h_mm: float, **changes):
    arena = dict(yaml.safe_load(protocol_yaml(load_protocol(name)))["arena"])
    arena.update(source="explicit", corners_px=[[0, 0], [w_mm * PPM, 0], [w_mm * PPM, h_mm * PPM], [0, h_mm * PPM]])
    return _protocol(name, arena=arena, **{"filters": [], **changes})


def test_open_field_straight_line_known_answers():
    # body centre crosses the arena along its midline, 20 px/frame-second = 10 mm/s
    x = 20.0 + 20.0 * np.arange(381) / FPS  # 20 -> 780 px in 38 s
    ds = _pose(np.c_[x, np.full_like(x, 400.0)])
    p = _explicit_arena("open_field", 400, 400, behaviours=[], endpoints=[
        "distance_mm", "mean_speed_mm_s", "centre_time_pct", "centre_entries", "latency_to_centre_s",
        "thigmotaxis_pct"])
    ep = analyse_session(ds, p).endpoints
    assert ep["distance_mm"] == pytest.approx(380.0)
    assert ep["mean_speed_mm_s"] == pytest.approx(10.0)
    in_centre = (x >= 200) & (x <= 600)  # central 50 % of the side
    assert ep["centre_time_pct"] == pytest.approx(100 * in_centre.mean())
    assert ep["centre_entries"] == 1
    assert ep["latency_to_centre_s"] == pytest.approx(9.0)
    wall = (x <= 100) | (x >= 700)  # 50 mm margin; a zone boundary counts as inside
    assert ep["thigmotaxis_pct"] == pytest.approx(100 * wall.mean())


def test_open_field_arena_json_and_aliases(tmp_path: Path):
    x = np.linspace(100, 700, 200)
    ds = _pose(np.c_[x, x], names=("Nose", "centroid", "tailbase"))
    (tmp_path / "arena.json").write_text(json.dumps({"bounds_px": [0, 0, 800, 800]}))
    p = _protocol("open_field", behaviours=[], filters=[], endpoints=["centre_time_pct"])
    res = analyse_session(ds, p, pose_path=tmp_path / "m.nc")
    assert res.px_per_mm == pytest.approx(PPM)
    assert res.endpoints["centre_time_pct"] == pytest.approx(100 * ((x >= 200) & (x <= 600)).mean(), abs=0.6)
    with pytest.raises(ArenaError, match="arena file .*arena.json not found"):
        analyse_session(ds, p, pose_path=tmp_path / "sub" / "m.nc")
    bad = _pose(np.c_[x, x], names=("ear", "centroid", "tailbase"))
    with pytest.raises(SessionError, match=r"required body part\(s\) \['snout'\] not in the pose file"):
        analyse_session(bad, p, pose_path=tmp_path / "m.nc")


def test_elevated_plus_maze_arms_and_head_dips():
    # 750 mm maze at 2 px/mm; open arms along y = 375 mm, closed arms along x = 375 mm
    c = 375 * PPM
    t_open = np.linspace(100 * PPM, 300 * PPM, 40)  # on the left open arm, 4 s
    t_mid = np.full(10, c)  # centre square, 1 s
    t_closed = np.linspace(300 * PPM, 100 * PPM, 60)  # up the top closed arm, 6 s
    xy = np.r_[np.c_[t_open, np.full(40, c)], np.c_[t_mid, np.full(10, c)], np.c_[np.full(60, c), t_closed]]
    ds = _pose(xy)
    snout = ds["position"].values[:, :, 0, 0]
    snout[10:15, 1] = c + 60 * PPM  # head dips over the open arm's edge twice
    snout[25:30, 1] = c - 60 * PPM
    ds["position"].values[:, :, 0, 0] = snout
    p = _explicit_arena("elevated_plus_maze", 750, 750)
    ep = analyse_session(ds, p).endpoints
    assert ep["open_arm_time_pct"] == pytest.approx(100 * 40 / 100, abs=1.5)  # of time on any arm
    assert ep["open_arm_entries"] == 0 and ep["closed_arm_entries"] == 1  # starting on an arm is no entry
    assert ep["head_dips"] == 2


def test_three_chamber_sociability_index():
    social = np.tile([100 * PPM, 200 * PPM], (60, 1))  # snout 10 mm right of body: inside the 70 mm circle
    obj = np.tile([500 * PPM, 200 * PPM], (20, 1))
    middle = np.tile([300 * PPM, 200 * PPM], (20, 1))
    ds = _pose(np.r_[social, middle, obj])
    ep = analyse_session(ds, _explicit_arena("three_chamber", 600, 400)).endpoints
    assert ep["social_time_s"] == pytest.approx(6.0)
    assert ep["object_time_s"] == pytest.approx(2.0)
    assert ep["sociability_index"] == pytest.approx((6 - 2) / 8)
    assert ep["social_chamber_time_pct"] == pytest.approx(60.0)


def test_gait_on_virtual_mouse_matches_truth():
    from pose.synthetic.gait import simulate_gait

    tr = simulate_gait(4.0, fps=100, seed=0, speed_mm_s=150, stride_length_mm=60)
    res = analyse_session(tr.pose, load_protocol("gait"))
    ep = res.endpoints
    covered = res.frames["time_s"].between(0.5, 3.5)  # complete cycles cover the middle
    assert res.frames.loc[covered, "stance_left_hindpaw"].mean() == pytest.approx(ep["duty_factor"], abs=0.06)
    assert ep["stride_length_mm"] == pytest.approx(60.0, rel=0.02)
    assert ep["cadence_hz"] == pytest.approx(150 / 60, rel=0.02)
    assert ep["speed_mm_s"] == pytest.approx(150.0, rel=0.02)
    assert ep["symmetry_index"] == pytest.approx(0.0, abs=0.02)
    assert 0.5 < ep["duty_factor"] < 0.8 and ep["n_strides"] >= 10


def test_fear_conditioning_freezing_per_epoch():
    rng = np.random.default_rng(0)
    n = int(60 * FPS)
    xy = np.zeros((n, 2)) + 400.0
    moving = np.arange(n) >= 30 * FPS  # still for 30 s, then walks at 50 mm/s
    xy[moving, 0] += np.cumsum(np.full(moving.sum(), 50 * PPM / FPS))
    xy[moving, 1] += 30 * np.sin(np.arange(moving.sum()) / 7.0)
    xy += rng.normal(0, 0.05, xy.shape)
    p = _protocol("fear_conditioning", epochs=[{"name": "still", "start_s": 0, "stop_s": 30},
                                                {"name": "walk", "start_s": 30, "stop_s": 60, "kind": "cue"}])
    ep = analyse_session(_pose(xy), p).endpoints
    assert ep["freezing_pct_still"] > 90 and ep["freezing_pct_walk"] < 5
    assert ep["freezing_pct"] == pytest.approx((ep["freezing_pct_still"] + ep["freezing_pct_walk"]) / 2, abs=1)
    assert ep["freezing_bouts"] == 1


# --------------------------------------------------------------------------- quality (issue 17 item 3)


def _walker(n=600, seed=0):
    """A mouse wandering the 400 mm open field (2 px/mm) at ~50 mm/s, confidence 0.95."""
    rng = np.random.default_rng(seed)
    ang = np.cumsum(rng.normal(0, 0.2, n))
    step = 100.0 / FPS  # 100 px/s = 50 mm/s
    xy = np.empty((n, 2))
    xy[0] = (400, 400)
    for i in range(1, n):
        nxt = xy[i - 1] + step * np.array([np.cos(ang[i]), np.sin(ang[i])])
        if not ((60 < nxt) & (nxt < 740)).all():
            ang[i:] += np.pi
            nxt = xy[i - 1] - step * np.array([np.cos(ang[i - 1]), np.sin(ang[i - 1])])
        xy[i] = nxt
    ds = _pose(xy)
    ds["confidence"][:] = 0.95
    return ds


def _of_protocol():
    return _explicit_arena("open_field", 400, 400, behaviours=[], filters=[
        {"step": "confidence", "threshold": 0.5}, {"step": "interpolate", "max_gap_s": 0.5}])


def test_untracked_body_centre_gives_nan_and_a_flag_not_zero():
    ds = _walker()
    ds["position"].loc[{"keypoint": "body_center"}] = np.nan
    ep = analyse_session(ds, _of_protocol()).endpoints
    # before: distance_mm 0.0, centre_entries 0, status ok -> entered the statistics as zeros
    for e in ("distance_mm", "mean_speed_mm_s", "centre_time_pct", "centre_entries", "thigmotaxis_pct"):
        assert np.isnan(ep[e]), (e, ep[e])
    assert ep["coverage_pct"] == 0.0 and ep["quality_flag"] == "no_track"


def test_half_the_frames_below_cutoff_is_flagged_low_coverage():
    ds = _walker()
    good = analyse_session(ds, _of_protocol()).endpoints
    assert good["coverage_pct"] == 100.0 and good["quality_flag"] == "ok"
    ds["confidence"][300:] = 0.2  # the second half below the 0.5 cut-off
    half = analyse_session(ds, _of_protocol()).endpoints
    assert half["coverage_pct"] == pytest.approx(50.0)
    assert half["quality_flag"] == "low_coverage"
    assert half["distance_mm"] == pytest.approx(good["distance_mm"] / 2, rel=0.05)  # what the flag warns about
    # alternate low frames are gap-filled, but coverage counts measured frames only
    ds = _walker()
    ds["confidence"][::2] = 0.2
    assert analyse_session(ds, _of_protocol()).endpoints["coverage_pct"] == pytest.approx(50.0)


def test_endpoint_coverage_uses_the_endpoints_keypoints():
    ds = _walker()
    ds["confidence"].loc[{"keypoint": "snout"}] = 0.1  # snout never confident
    p = _explicit_arena("open_field", 400, 400, filters=[{"step": "confidence", "threshold": 0.5}],
                        endpoints=["distance_mm", "rearing_count"])
    ep = analyse_session(ds, p).endpoints
    assert ep["coverage_pct"] == 100.0 and ep["coverage_rearing_count_pct"] == 0.0
    assert np.isfinite(ep["distance_mm"]) and np.isnan(ep["rearing_count"])
    assert ep["quality_flag"] == "low_coverage"
