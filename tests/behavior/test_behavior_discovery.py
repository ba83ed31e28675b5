"""Unsupervised discovery: clusters of well-separated synthetic behaviours, summaries, seeds."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("umap")
pytest.importorskip("hdbscan")

from behavior.discovery import (  # noqa: E402
    BehaviorDiscovery,
    cluster_bouts,
    cluster_usage,
    example_clips,
    score_against_truth,
    transition_matrix,
)


def _toy(n_bouts=60, seed=0):
    """Three 'behaviours' with distinct feature means, in bouts of 20-60 frames."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, (3, 8))
    X, y = [], []
    for _ in range(n_bouts):
        s = rng.integers(3)
        n = rng.integers(20, 60)
        X.append(centres[s] + rng.normal(0, 1, (n, 8)))
        y += [s] * n
    return np.concatenate(X), np.array(y)


def test_discovery_recovers_states_and_is_reproducible():
    X, y = _toy()
    m = BehaviorDiscovery(fit_subsample=1200, n_neighbors=15, random_state=0).fit(X)
    assert m.labels_.shape == (len(X),) and m.n_clusters_ >= 3
    s = score_against_truth(m.labels_, y)
    assert s["ari"] > 0.9 and s["v_measure"] > 0.9
    m2 = BehaviorDiscovery(fit_subsample=1200, n_neighbors=15, random_state=0).fit(X)
    np.testing.assert_array_equal(m.labels_, m2.labels_)
    # the fitted classifier reproduces the labels of the training frames
    new = m.predict(X[:500])
    np.testing.assert_array_equal(new, m.labels_[:500])
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:10, :5])


def test_summaries_known_answer():
    lab = np.array([0, 0, 0, 1, 1, 0, 0, 2, 2, 2, 2, 2])
    u = cluster_usage(lab, fps=2)
    assert u.cluster.tolist() == [0, 2, 1] and u.seconds.tolist() == [2.5, 2.5, 1.0]
    b = cluster_bouts(lab, fps=2).set_index("cluster")
    assert b.loc[0, "n_bouts"] == 2 and b.loc[0, "mean_duration_s"] == 1.25
    t = transition_matrix(lab)
    assert t.loc[0, 1] == 0.5 and t.loc[0, 2] == 0.5 and t.loc[1, 0] == 1.0 and t.loc[2].sum() == 0
    clips = example_clips(lab, fps=2, n_per_cluster=1, min_duration_s=0.5, pad_s=0.5)
    row = clips.set_index("cluster").loc[2]
    assert (row.bout_start_frame, row.bout_end_frame, row.clip_start_frame, row.clip_end_frame) == (7, 12, 6, 12)
