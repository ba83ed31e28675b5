"""Known-answer tests of the gait virtual mouse: step cycles, events and stride truth."""

from __future__ import annotations

import numpy as np
import pytest

from pose.dataset import validate_pose
from pose.synthetic import simulate_gait
from pose.synthetic.gait import PAWS


def _paw_speed_mm_s(truth, paw):
    ds = truth.pose
    xy = ds.position.sel(keypoint=paw, individual="mouse").values
    return np.linalg.norm(np.gradient(xy, axis=0), axis=1) * ds.attrs["fps"] / ds.attrs["px_per_mm"]


def _in_stance(truth, paw, t, pad_s=0.0):
    ev = truth.events[truth.events.paw == paw]
    td = ev.touch_down_s.fillna(-np.inf).to_numpy()
    to = ev.toe_off_s.fillna(np.inf).to_numpy()
    return np.any((t[:, None] > td + pad_s) & (t[:, None] < to - pad_s), axis=1)


@pytest.mark.parametrize("gait", ["walk", "trot"])
@pytest.mark.parametrize("view", ["side", "bottom"])
def test_paws_still_in_stance_and_moving_in_swing(gait, view):
    truth = simulate_gait(4, fps=100, seed=2, gait=gait, view=view, speed_mm_s=150,
                          stride_length_mm=60)
    validate_pose(truth.pose, require_fps=True)
    t = truth.pose.time.values
    for paw in PAWS:
        speed = _paw_speed_mm_s(truth, paw)
        stance = _in_stance(truth, paw, t, pad_s=0.011)
        swing = ~_in_stance(truth, paw, t, pad_s=-0.011)
        assert stance.sum() > 50 and swing.sum() > 30
        assert np.max(speed[stance]) < 1e-6
        # a paw swings one stride in (1 - duty) of the stride period with a minimum-jerk
        # profile: peak forward speed 1.875 * v / (1 - duty)
        x = truth.pose.position.sel(keypoint=paw, individual="mouse", space="x").values
        vx = np.gradient(x) * 100 / truth.pose.attrs["px_per_mm"]
        assert np.min(vx[swing]) > 0
        assert np.max(vx[swing]) == pytest.approx(1.875 * 150 / (1 - truth.duty_factor), rel=0.05)


def test_stride_length_cadence_and_events_match_parameters():
    truth = simulate_gait(10, fps=100, seed=0, gait="walk", speed_mm_s=180,
                          stride_length_mm=72, duty_factor=0.7)
    assert truth.cadence_hz == pytest.approx(2.5)
    assert truth.duty_factor == 0.7
    ppm = truth.pose.attrs["px_per_mm"]
    for paw in PAWS:
        ev = truth.events[truth.events.paw == paw].dropna()
        td = ev.touch_down_s.to_numpy()
        assert np.diff(td) == pytest.approx(1 / 2.5)
        assert (ev.toe_off_s - ev.touch_down_s).to_numpy() == pytest.approx(0.7 / 2.5)
        # stride length measured from the paw's landing places
        x = truth.pose.position.sel(keypoint=paw, individual="mouse", space="x").values
        frames = np.ceil(td * 100).astype(int)  # first frame of each stance
        frames = frames[frames < x.size]
        assert np.diff(x[frames]) / ppm == pytest.approx(72.0)
    # lateral-sequence walk: LF lands a quarter stride after LH, RH half, RF three quarters
    first = truth.events.dropna().groupby("paw").touch_down_s.min()
    lag = ((first - first["left_hindpaw"]) * truth.cadence_hz) % 1.0
    assert lag["left_forepaw"] == pytest.approx(0.25)
    assert lag["right_hindpaw"] == pytest.approx(0.5)
    assert lag["right_forepaw"] == pytest.approx(0.75)


def test_trot_diagonal_pairs_in_phase_and_base_of_support():
    truth = simulate_gait(3, gait="trot", view="bottom", seed=5)
    ev = truth.events.dropna()
    first = ev.groupby("paw").touch_down_s.min()
    lag = ((first - first["left_hindpaw"]) * truth.cadence_hz) % 1.0
    assert lag["right_forepaw"] == pytest.approx(0.0, abs=1e-9) or lag[
        "right_forepaw"
    ] == pytest.approx(1.0)
    assert lag["left_forepaw"] == pytest.approx(0.5)
    ds = truth.pose.sel(individual="mouse", space="y")
    ppm = truth.pose.attrs["px_per_mm"]
    hind = float(np.median(ds.position.sel(keypoint="right_hindpaw") - ds.position.sel(
        keypoint="left_hindpaw"))) / ppm
    assert hind == pytest.approx(truth.base_of_support_mm["hind"])


def test_treadmill_keeps_body_in_place_and_seed_is_deterministic():
    a = simulate_gait(2, seed=4, treadmill=True)
    b = simulate_gait(2, seed=4, treadmill=True)
    np.testing.assert_array_equal(a.pose.position.values, b.pose.position.values)
    bc = a.pose.position.sel(keypoint="body_center", individual="mouse", space="x").values
    assert np.ptp(bc) < 1e-9
    # on the belt a stance paw moves backward at the belt speed
    t = a.pose.time.values
    x = a.pose.position.sel(keypoint="left_hindpaw", individual="mouse", space="x").values
    vx = np.gradient(x) * 100 / a.pose.attrs["px_per_mm"]
    stance = _in_stance(a, "left_hindpaw", t, pad_s=0.011)
    assert vx[stance] == pytest.approx(-150.0)


def test_side_view_limb_chain_has_fixed_segment_lengths():
    truth = simulate_gait(2, view="side")
    ds = truth.pose.sel(individual="mouse")
    ppm = truth.pose.attrs["px_per_mm"]
    hip, knee = (ds.position.sel(keypoint=k).values for k in ("left_hip", "left_knee"))
    thigh = np.linalg.norm(knee - hip, axis=1) / ppm
    assert thigh == pytest.approx(13.0, rel=1e-6)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="gait must be"):
        simulate_gait(1, gait="gallop")
    with pytest.raises(ValueError, match="duty_factor"):
        simulate_gait(1, duty_factor=1.2)
    with pytest.raises(ValueError, match="speed_mm_s"):
        simulate_gait(1, speed_mm_s=0)
