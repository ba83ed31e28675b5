"""Outlier scores find injected errors, beat random picking, and k-means spreads the picks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from pose.dataset import from_numpy
from pose.refine.outliers import (
    compute_outlier_scores,
    detect_outlier_frames,
    score_ensemble,
    score_fit,
    score_jump,
    score_uncertain,
    select_diverse_frames,
)

_spec = importlib.util.spec_from_file_location("refine_helpers", Path(__file__).with_name("refine_helpers.py"))
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


@pytest.fixture(scope="module")
def glitchy():
    return helpers.make_predictions()


def _precision(selected: np.ndarray, error_px: np.ndarray, bound_px: float = 10.0) -> float:
    return float(np.mean(error_px[selected] > bound_px)) if len(selected) else 0.0


def test_jump_and_fit_find_every_large_glitch(glitchy) -> None:
    ds, bad, err = glitchy
    for scores in (score_jump(ds), score_fit(ds)):
        found = detect_outlier_frames(scores, 15.0)
        assert set(bad) <= set(found), sorted(set(bad) - set(found))
        assert _precision(found, err) >= 0.9
    assert score_jump(ds).attrs["units"] == "px"


def test_jump_scores_the_glitched_frame_not_its_neighbours() -> None:
    pos = np.zeros((9, 2, 1, 1))
    pos[:, 0, 0, 0] = np.arange(9)  # 1 px per frame
    pos[4, 0, 0, 0] += 30
    s = score_jump(from_numpy(pos, np.ones((9, 1, 1)))).values
    assert s[4] == pytest.approx(29.0)
    assert s[3] == pytest.approx(1.0) and s[5] == pytest.approx(1.0)


def test_fit_is_robust_and_ignores_low_confidence_in_the_fit() -> None:
    t = np.arange(200.0)
    pos = np.zeros((200, 2, 1, 1))
    pos[:, 0, 0, 0] = 2.0 * t  # constant velocity: the Kalman fit is exact
    conf = np.ones((200, 1, 1))
    pos[100, 0, 0, 0] += 40.0  # confident glitch
    pos[150, 1, 0, 0] += 25.0  # low-confidence glitch
    conf[150] = 0.01
    s = score_fit(from_numpy(pos, conf)).values
    assert s[100] == pytest.approx(40.0, abs=1.0)
    assert s[150] == pytest.approx(25.0, abs=1.0)
    others = np.delete(s, [100, 150])
    assert others.max() < 1.0


def test_uncertain_and_ensemble(glitchy) -> None:
    ds, bad, err = glitchy
    found = detect_outlier_frames(score_uncertain(ds), 1 - 0.6)
    assert len(found) == len(bad) // 2  # half the glitches had their confidence lowered
    assert _precision(found, err) == 1.0
    other = ds.copy(deep=True)
    other["position"].values[40, 0, 2, 0] += 50
    spread = score_ensemble([ds, other])
    assert int(np.argmax(spread.values)) == 40
    assert spread.values[40] == pytest.approx(25.0)


def test_outlier_methods_beat_random_selection(glitchy) -> None:
    ds, bad, err = glitchy
    rng = np.random.default_rng(1)
    random_precision = np.mean([_precision(rng.choice(len(err), 20, replace=False), err)
                                for _ in range(200)])
    assert random_precision < 0.1  # 30 of 600 frames are bad
    for method in ("jump", "fit", "uncertain"):
        scores = compute_outlier_scores(ds, method)
        top = detect_outlier_frames(scores, -np.inf)[:10]
        assert _precision(top, err) >= 0.9 > random_precision * 5, method


def test_kmeans_selection_spreads_over_appearance() -> None:
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    group = np.repeat([0, 1, 2], 20)
    feats = centers[group] + rng.normal(0, 0.5, (60, 2))
    scores = np.where(group == 0, 10.0, 1.0) + rng.uniform(0, 1, 60)  # group 0 most suspicious
    candidates = np.arange(100, 160)
    picked = select_diverse_frames(candidates, scores, feats, 3)
    assert sorted(group[picked - 100]) == [0, 1, 2]
    top_only = select_diverse_frames(candidates, scores, None, 3)
    assert set(group[top_only - 100]) == {0}
    assert list(select_diverse_frames(candidates[:2], scores[:2], feats[:2], 5)) == [100, 101]


def test_bad_input_is_named(glitchy) -> None:
    ds, _, _ = glitchy
    with pytest.raises(ValueError, match="unknown outlier method 'wiggle'"):
        compute_outlier_scores(ds, "wiggle")
    with pytest.raises(ValueError, match="needs predictions of the same video by other models"):
        compute_outlier_scores(ds, "ensemble")
    with pytest.raises(ValueError, match="carry no confidence"):
        score_uncertain(from_numpy(np.zeros((5, 2, 1, 1))))
    with pytest.raises(ValueError, match="member 1 has shape"):
        score_ensemble([ds, ds.isel(time=slice(0, 10))])
    with pytest.raises(ValueError, match="n_frames must be positive"):
        select_diverse_frames(np.arange(3), np.ones(3), None, 0)
