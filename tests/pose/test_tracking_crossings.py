"""Crossings bridged as a whole (pose.tracking.crossings): known-answer links, and the
virtual mice's simulated detections scored by motmetrics."""

from __future__ import annotations

import numpy as np
import pytest

from pose.tracking.crossings import find_episodes, link_cost, resolve_episodes
from pose.tracking.links import Links

FPS = 30.0


def _stick(centre: np.ndarray, heading: float) -> np.ndarray:
    """(5, 2) keypoints of a 60 px stick animal centred on ``centre``, nose first."""
    u = np.array([np.cos(heading), np.sin(heading)])
    return np.stack([centre + f * 30.0 * u for f in (1.0, 0.5, 0.0, -0.5, -1.0)])


def _links(src: np.ndarray, pos: np.ndarray, margin: np.ndarray) -> Links:
    n_t, n = src.shape
    cent = np.full((n_t, n, 2), np.nan)
    for t in range(n_t):
        for k in range(n):
            if src[t, k] >= 0:
                cent[t, k] = pos[t, src[t, k]].mean(axis=0)
    return Links(source=src, margin=margin, innovation=np.zeros((n_t, n)),
                 reacquired=np.zeros((n_t, n), dtype=bool), centroid=cent)


def _lone_instance_follows_the_wrong_animal():
    """Animal A (heading +x) walks right along y = 100; B (heading +y) walks down along
    x = 150 and meets A. Frames 15-24 hold one instance: A's pose up to 19, B's from 20.
    The tracker's links follow that instance: track 0 is A, then B from frame 20 on (the
    swap); track 1 is B, then A from 25."""
    n_t = 40
    t = np.arange(n_t)
    a = np.stack([100 + 2.0 * t, np.full(n_t, 100.0)], axis=1)
    b = np.stack([np.full(n_t, 150.0), 20 + 2.0 * t], axis=1)
    pos = np.full((n_t, 2, 5, 2), np.nan)
    for i in range(n_t):
        pos[i, 0], pos[i, 1] = _stick(a[i], 0.0), _stick(b[i], np.pi / 2)
    pos[15:20, 1] = np.nan  # one instance, on A ...
    pos[20:25, 0] = pos[20:25, 1]  # ... then on B (held in instance 0)
    pos[20:25, 1] = np.nan
    src = np.zeros((n_t, 2), dtype=int)
    src[:, 0], src[:, 1] = 0, 1
    src[15:25, 1] = -1
    src[25:] = [1, 0]  # the swap: track 0 leaves on B
    margin = np.full((n_t, 2), 0.9)
    margin[15:25, 1] = np.nan
    return pos, src, margin


def test_episodes_are_the_unsure_runs_between_sure_frames() -> None:
    matched = np.ones((30, 2), dtype=bool)
    margin = np.full((30, 2), 0.9)
    matched[5:8, 1] = False  # a track without an instance
    margin[12, :] = 0.1  # an unsure assignment
    margin[14, :] = 0.1  # 1 sure frame (13) between: absorbed into one episode
    matched[28:, 0] = False  # unsure to the end
    assert find_episodes(matched, margin, 0.25) == [(4, 8), (11, 15), (27, 30)]
    assert find_episodes(matched, margin, 0.25, min_clear=1) == [(4, 8), (11, 13), (13, 15), (27, 30)]


def test_link_cost_carries_poses_by_their_velocity() -> None:
    pa = np.stack([_stick(np.array([0.0, 0.0]), 0.0), _stick(np.array([0.0, 50.0]), 0.0)])
    va = np.array([[2.0, 0.0], [0.0, 0.0]])
    pb = pa + np.array([[[20.0, 0.0]], [[0.0, 0.0]]])  # animal 0 moved 10 frames x 2 px
    cost = link_cost(pa, va, pb, va, 10)
    assert cost[0, 0] == pytest.approx(0.0) and cost[1, 1] == pytest.approx(0.0)
    assert cost[0, 1] > 50 and cost[1, 0] > 50


def test_a_lone_instance_that_changes_animal_is_bridged_and_relabelled() -> None:
    pos, src, margin = _lone_instance_follows_the_wrong_animal()
    weight = np.where(np.isfinite(pos).all(axis=3), 0.9, 0.0)
    out, summary = resolve_episodes(_links(src, pos, margin), pos, weight, fps=FPS, gate_px=60.0,
                                    max_coast_frames=30, low_margin=0.25)
    assert summary.n_episodes == 1 and summary.n_bridged == 1
    assert summary.relabelled_at == (20,)  # where the lone instance moves onto B
    assert summary.confidence[0] > 0.5
    np.testing.assert_array_equal(out.source[:15], src[:15])  # before: untouched
    np.testing.assert_array_equal(out.source[15:20], [[0, -1]] * 5)  # A's instance, track 0
    np.testing.assert_array_equal(out.source[20:25], [[-1, 0]] * 5)  # B's instance, track 1
    np.testing.assert_array_equal(out.source[25:], [[0, 1]] * 15)  # identities as before
    assert np.isnan(out.centroid[20:25, 0]).all() and np.isfinite(out.centroid[20:25, 1]).all()


def test_an_unsure_bridge_leaves_the_trackers_identities() -> None:
    pos, src, margin = _lone_instance_follows_the_wrong_animal()
    pos[:, 1] = pos[:, 0]  # both animals the same pose in the same place: nothing to go by
    pos[15:25, 1] = np.nan
    weight = np.where(np.isfinite(pos).all(axis=3), 0.9, 0.0)
    out, summary = resolve_episodes(_links(src, pos, margin), pos, weight, fps=FPS, gate_px=60.0,
                                    max_coast_frames=30, low_margin=0.25)
    assert summary.relabelled_at == () and summary.confidence[0] < 0.25
    np.testing.assert_array_equal(out.source, src)
    assert np.nanmax(out.margin[15:25]) < 0.25  # the episode's frames carry its low confidence


def test_an_episode_longer_than_the_coasting_horizon_is_not_bridged() -> None:
    pos, src, margin = _lone_instance_follows_the_wrong_animal()
    weight = np.where(np.isfinite(pos).all(axis=3), 0.9, 0.0)
    out, summary = resolve_episodes(_links(src, pos, margin), pos, weight, fps=FPS, gate_px=60.0,
                                    max_coast_frames=9, low_margin=0.25)
    assert summary.n_bridged == 0
    np.testing.assert_array_equal(out.source, src)


def test_track_identities_reports_and_records_the_bridging() -> None:
    from pose.dataset import from_numpy
    from pose.tracking import TrackingConfig, track_identities

    pos, _, _ = _lone_instance_follows_the_wrong_animal()
    ds = from_numpy(pos.transpose(0, 3, 2, 1), np.where(np.isnan(pos[..., 0]), np.nan, 0.9).transpose(0, 2, 1),
                    fps=FPS)
    result = track_identities(ds, TrackingConfig(n_animals=2))
    assert result.episodes is not None and result.episodes.n_bridged >= 1
    params = result.pose.attrs["history"][-1]["params"]
    assert params["bridged_runs"] == result.episodes.n_bridged
    assert params["identities_exchanged_at_rows"] == list(result.episodes.relabelled_at)
    off = track_identities(ds, TrackingConfig(n_animals=2, bridge_episodes=False))
    assert off.episodes is None and "bridged_runs" not in off.pose.attrs["history"][-1]["params"]


@pytest.mark.slow
def test_bridging_removes_switches_on_the_virtual_mice_at_high_noise() -> None:
    """Simulated detections of 2 same-coat mice (high noise: lone and partial instances in
    contacts), 6 sessions of 2 minutes: bridging removes at least a third of the frame loop's
    switches in total (measured 23 -> 10) and adds none at medium noise."""
    pytest.importorskip("motmetrics")
    from pose.synthetic.social import (
        DetectionNoise,
        detected_individuals,
        simulate_detections,
        simulate_social,
    )
    from pose.tracking import TrackingConfig, identity_metrics, track_identities

    totals = {False: 0, True: 0}
    for level in ("medium", "high"):
        for seed in range(6) if level == "high" else (0, 1):
            truth = simulate_social(120, seed=seed, n_animals=2)
            det, source = simulate_detections(truth.pose, DetectionNoise.preset(level), seed=seed)
            present = detected_individuals(det, source)
            for bridge in (False, True):
                tracked = track_identities(det, TrackingConfig(n_animals=2, bridge_episodes=bridge)).pose
                m = identity_metrics(truth.pose, tracked, present=present)
                if level == "medium":
                    assert m["num_switches"] == 0
                else:
                    totals[bridge] += m["num_switches"]
    assert totals[True] <= 2 / 3 * totals[False]
