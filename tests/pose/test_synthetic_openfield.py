"""Known-answer tests of the open-field virtual mouse (kinematics only, no rendering)."""

from __future__ import annotations

import numpy as np
import pytest

from pose.dataset import validate_pose
from pose.synthetic import KEYPOINTS, STATES, simulate_open_field


@pytest.fixture(scope="module")
def truth():
    return simulate_open_field(240, fps=30, seed=3)


def _speed_mm_s(truth, keypoint="body_center"):
    ds = truth.pose
    xy = ds.position.sel(keypoint=keypoint, individual="mouse").values
    step = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    return np.r_[np.nan, step] * ds.attrs["fps"] / ds.attrs["px_per_mm"]


def _inside_bouts(states, name, trim):
    """Frames of state ``name`` at least ``trim`` frames from either end of their bout."""
    m = states == name
    out = np.zeros_like(m)
    edges = np.flatnonzero(np.diff(np.r_[0, m.astype(int), 0]))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        out[a + trim : b - trim] = True
    return out


def test_dataset_layout(truth):
    ds = validate_pose(truth.pose, require_fps=True)
    assert list(ds.keypoint.values) == list(KEYPOINTS)
    assert list(ds.individual.values) == ["mouse"]
    assert ds.sizes["time"] == 240 * 30
    assert ds.attrs["source_software"] == "ethopose.synthetic"
    assert ds.attrs["px_per_mm"] == pytest.approx(1.1)
    assert np.all(ds.confidence.values == 1.0)
    assert set(np.unique(truth.states)) <= set(STATES)
    assert len(truth.states) == ds.sizes["time"]
    assert set(np.unique(truth.states)) >= {"walk", "turn", "rear", "explore_wall"}


def test_same_seed_identical_other_seed_differs():
    a = simulate_open_field(5, seed=7)
    b = simulate_open_field(5, seed=7)
    c = simulate_open_field(5, seed=8)
    np.testing.assert_array_equal(a.pose.position.values, b.pose.position.values)
    np.testing.assert_array_equal(a.states, b.states)
    assert not np.allclose(a.pose.position.values, c.pose.position.values)


def test_states_have_their_kinematics(truth):
    speed = _speed_mm_s(truth)
    st = truth.states
    freeze = _inside_bouts(st, "freeze", 2)
    walk = _inside_bouts(st, "walk", 6)
    run = _inside_bouts(st, "run", 6)
    assert freeze.sum() > 30 and walk.sum() > 100 and run.sum() > 10
    assert np.nanmedian(speed[freeze]) < 3.0  # noise only
    assert 40 < np.nanmedian(speed[walk]) < 130  # walk ~5-12 cm/s
    assert np.nanmean(speed[run]) > 1.8 * np.nanmean(speed[walk])
    assert 180 < np.nanmedian(speed[run]) < 330
    assert np.nanmedian(speed[_inside_bouts(st, "groom", 8)]) < 5.0


def test_rearing_foreshortens_and_grooming_brings_paws_to_snout(truth):
    ds = truth.pose.sel(individual="mouse")
    ppm = ds.attrs["px_per_mm"]
    length = np.linalg.norm(
        ds.position.sel(keypoint="snout").values - ds.position.sel(keypoint="tail_base").values,
        axis=1,
    ) / ppm
    st = truth.states
    assert 85 < np.median(length[_inside_bouts(st, "walk", 6)]) < 100  # ~93 mm snout-tail base
    assert np.median(length[_inside_bouts(st, "rear", 10)]) < 0.75 * np.median(
        length[_inside_bouts(st, "walk", 6)]
    )
    groom = _inside_bouts(st, "groom", 10)
    paw_snout = np.linalg.norm(
        ds.position.sel(keypoint="left_forepaw").values - ds.position.sel(keypoint="snout").values,
        axis=1,
    ) / ppm
    assert np.median(paw_snout[groom]) < 15 < np.median(paw_snout[_inside_bouts(st, "walk", 6)])


def test_bout_durations_realistic(truth):
    st = truth.states
    change = np.r_[0, np.flatnonzero(st[1:] != st[:-1]) + 1, len(st)]
    dur_s = np.diff(change)[:-1] / 30.0  # the last bout is cut by the session end
    assert dur_s.min() >= 0.5 - 1e-9
    assert dur_s.max() <= 5.0 + 1 / 30


def test_freezes_are_entered_by_braking_and_labelled_from_rest(truth):
    """A freeze starts where the body comes to rest after a 0.1-0.3 s deceleration."""
    v = truth.posture["speed_mm_s"]
    st = truth.states
    fz = st == "freeze"
    assert np.all(v[fz] == 0.0)  # the truth's freeze: body at rest
    k = np.flatnonzero(fz[1:] & ~fz[:-1]) + 1  # freeze onsets
    brake = np.exp(-(1 / 30) / 0.06)
    braking_s, entry = [], []
    for on in k:
        j = on - 1
        while j > 0 and v[j] > 0 and v[j] == pytest.approx(v[j - 1] * brake, rel=1e-9):
            j -= 1  # back through the frames that decay by the braking factor
        braking_s.append((on - 1 - j) / 30.0)
        entry.append(v[j])
        assert 0 < v[on - 1] < 2.0 / brake  # the last moving frame is almost at rest
        assert st[on - 1] != "freeze" and st[j] == st[on - 1]  # braking keeps the bout's label
    entry, braking_s = np.array(entry), np.array(braking_s)
    walking = entry > 40
    assert walking.sum() >= 3
    assert np.all((braking_s[walking] >= 0.1) & (braking_s[walking] <= 0.32))
    # the keypoints slow down too: body-centre speed from the positions, last braking frame
    measured = _speed_mm_s(truth)
    assert np.median(measured[k[walking] - 1]) < 0.25 * np.median(entry[walking])


def test_mouse_stays_in_arena(truth):
    x0, y0, x1, y1 = truth.arena["bounds_px"]
    pos = truth.pose.position.values
    assert pos[:, 0].min() >= x0 and pos[:, 0].max() <= x1
    assert pos[:, 1].min() >= y0 and pos[:, 1].max() <= y1
    assert truth.arena["px_per_mm"] == pytest.approx(1.1)
    assert truth.arena["size_px"] == pytest.approx(400 * 1.1)


def _centre_fraction(t):
    cx, cy = t.arena["centre_px"]
    half = t.arena["size_px"] * t.arena["center_fraction"] / 2
    bc = t.pose.position.sel(keypoint="body_center", individual="mouse").values
    return float(np.mean((abs(bc[:, 0] - cx) < half) & (abs(bc[:, 1] - cy) < half)))


def test_speed_scale_and_center_preference_shift_the_measures():
    base = [simulate_open_field(90, seed=s) for s in range(3)]
    fast = [simulate_open_field(90, seed=s, speed_scale=1.5) for s in range(3)]
    bold = [simulate_open_field(90, seed=s, center_preference=0.95) for s in range(3)]
    shy = [simulate_open_field(90, seed=s, center_preference=0.0) for s in range(3)]
    moving = [np.nanmean(_speed_mm_s(t)[np.isin(t.states, ["walk", "run"])]) for t in base]
    moving_fast = [np.nanmean(_speed_mm_s(t)[np.isin(t.states, ["walk", "run"])]) for t in fast]
    assert np.mean(moving_fast) > 1.3 * np.mean(moving)
    assert np.mean([_centre_fraction(t) for t in bold]) > 2 * np.mean(
        [_centre_fraction(t) for t in shy]
    )


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="center_preference"):
        simulate_open_field(1, center_preference=1.5)
    with pytest.raises(ValueError, match="seconds and fps"):
        simulate_open_field(0)
    with pytest.raises(ValueError, match="does not fit"):
        simulate_open_field(1, px_per_mm=3.0)


def test_mouse_is_never_trapped_and_visits_the_whole_arena(truth):
    speed = _speed_mm_s(truth)
    moving = np.isin(truth.states, ["walk", "run", "explore_wall"])
    assert np.mean(speed[moving] < 20) < 0.02  # walking states really move (no corner traps)
    cx, cy = truth.arena["centre_px"]
    bc = truth.pose.position.sel(keypoint="body_center", individual="mouse").values
    quadrant = (bc[:, 0] > cx).astype(int) + 2 * (bc[:, 1] > cy)
    assert np.bincount(quadrant, minlength=4).min() > 0.05 * len(bc)
