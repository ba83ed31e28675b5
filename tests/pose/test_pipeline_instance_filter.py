"""The top-down instance filter: the confidence floor of the sure instances, the unsure-instance
rule, and what it lets :meth:`TopDownPredictor.propagate_instances` recover."""

from __future__ import annotations

import numpy as np

from pose.pipeline.instance_filter import (
    FLOOR_PERCENTILE,
    SURE_PEAK,
    confidence_floor,
    drop_unsure_instances,
    instance_confidence,
)


def _instances(rng, n_frames=200):
    """Two instances per frame: slot 0 a sure animal (peak 0.9, confidence 0.8-0.95), slot 1 a
    weak peak (0.2) on background (confidence 0.4-0.6) in every other frame, else a sure animal."""
    xy = rng.uniform(0, 100, (n_frames, 2, 4, 2))
    conf = np.empty((n_frames, 2, 4))
    conf[:, 0] = rng.uniform(0.8, 0.95, (n_frames, 1))
    ghost = np.arange(n_frames) % 2 == 1
    conf[:, 1] = np.where(ghost[:, None], rng.uniform(0.4, 0.6, (n_frames, 1)), rng.uniform(0.8, 0.95, (n_frames, 1)))
    score = np.where(np.stack([np.zeros(n_frames, bool), ghost], 1), 0.2, 0.9)
    return xy, conf, score, ghost


def test_instance_confidence_ignores_missing_keypoints_and_empty_slots():
    xy = np.zeros((1, 2, 3, 2))
    xy[0, 0, 2] = np.nan
    xy[0, 1] = np.nan
    conf = np.array([[[0.2, 0.4, 0.99], [0.9, 0.9, 0.9]]])
    med = instance_confidence(xy, conf)
    assert abs(med[0, 0] - 0.3) < 1e-12
    assert np.isnan(med[0, 1])


def test_floor_is_the_percentile_of_the_sure_instances_only():
    rng = np.random.default_rng(0)
    xy, conf, score, ghost = _instances(rng)
    floor, why = confidence_floor(xy, conf, score)
    sure = np.concatenate([conf[:, 0, 0], conf[~ghost, 1, 0]])
    assert floor == np.percentile(sure, FLOOR_PERCENTILE)
    assert 0.8 <= floor < 0.82 and str(SURE_PEAK) in why
    # without scores every instance counts, and the background pulls the floor down
    assert confidence_floor(xy, conf)[0] < 0.6
    # no sure peak at all: every instance, said so
    floor_all, why_all = confidence_floor(xy, conf, np.full_like(score, 0.1))
    assert floor_all == confidence_floor(xy, conf)[0] and "no sure" in why_all


def test_drop_unsure_instances_keeps_confident_weak_peaks_and_sure_peaks():
    xy = np.zeros((1, 4, 2, 2))
    conf = np.array([[[0.5, 0.5], [0.9, 0.9], [0.5, 0.5], [0.9, 0.9]]])
    score = np.array([[0.2, 0.2, 0.9, 0.9]])  # weak+unsure, weak+confident, sure+unsure, sure+confident
    assert drop_unsure_instances(xy, conf, score, floor=0.8) == 1
    assert np.isnan(xy[0, 0]).all() and conf[0, 0].max() == 0 and score[0, 0] == 0
    assert np.isfinite(xy[0, 1:]).all()
    assert drop_unsure_instances(xy, conf, score, floor=float("nan")) == 0


def test_a_background_instance_dropped_lets_propagation_find_the_missing_animal(tmp_path):
    """Frames 2-4: the second 'strongest' centroid peak lay on a background blob far from
    both disks (weak peak, low confidence), so the frames held two instances and nothing
    looked for B. Dropped by the rule, B is recovered from the crops at its previous place;
    the old all-instance floor would have kept the background instance and added nothing."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_pipeline_topdown import _propagation_case

    pred, xy, conf, video, b = _propagation_case(tmp_path, [True] * 6)
    score = np.where(np.isfinite(xy).all(axis=(-1, -2)), 0.9, 0.0)
    for t in (2, 3, 4):
        xy[t, 1], conf[t, 1], score[t, 1] = [60.0, 5.0], 0.5, 0.2
    keep = (xy.copy(), conf.copy())
    assert pred.propagate_instances(keep[0], keep[1], str(video), list(range(6))) == 0  # full count: nothing to do
    floor, _ = confidence_floor(xy, conf, score)
    assert drop_unsure_instances(xy, conf, score, floor) == 3
    added = pred.propagate_instances(xy, conf, str(video), list(range(6)), floor=floor)
    assert added == 3
    for t in (2, 3, 4):
        got = xy[t][np.argmin([np.nanmean(np.abs(i - b[t])) for i in xy[t]])]
        assert np.abs(got - b[t]).max() < 1.5, (t, xy[t], b[t])
