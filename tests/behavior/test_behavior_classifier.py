"""Supervised classifiers: scikit-learn contract, temporal windows, grouped CV, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from behavior.classifier import (
    BehaviorClassifier,
    ModelMismatchError,
    cross_validate_grouped,
    load_model,
    permutation_importance_table,
    predict_with_model,
    save_model,
    smooth_label_runs,
)
from behavior.windows import TemporalWindowFeatures, window_features

TEMPORAL = ("rows are frames in time order; a temporal-window feature of frame i depends on "
            "its neighbours, so reordering, subsetting or repeating rows changes the output "
            "by design")
EXPECTED_FAILED = {
    "TemporalWindowFeatures": {
        "check_methods_sample_order_invariance": TEMPORAL,
        "check_methods_subset_invariance": TEMPORAL,
    },
    "BehaviorClassifier": {
        "check_sample_weight_equivalence_on_dense_data": TEMPORAL + " (repeated rows widen the "
        "windows; HistGradientBoosting alone also fails it because of its binning)",
        "check_class_weight_classifiers": "make_blobs rows are i.i.d., not a time series: rolling "
        "features over shuffled rows are noise that a 1e7:1 class weighting overfits; "
        "passes with windows_frames=(1,) (tested below)",
    },
}


@pytest.fixture(autouse=True)
def _one_thread():
    """HistGradientBoosting's OpenMP threads thrash on a shared 2-core CI runner."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _expected(est):
    return EXPECTED_FAILED.get(type(est).__name__, {})


@parametrize_with_checks(
    [TemporalWindowFeatures(), BehaviorClassifier(max_iter=15, random_state=0)],
    expected_failed_checks=_expected,
)
def test_sklearn_contract(estimator, check):
    check(estimator)


@pytest.mark.slow
def test_class_weight_check_passes_without_windows():
    from sklearn.utils.estimator_checks import check_class_weight_classifiers

    check_class_weight_classifiers("BehaviorClassifier",
                                   BehaviorClassifier(windows_frames=(1,), max_iter=15, random_state=0))


def test_window_features_known_answer():
    x = np.arange(6, dtype=float)[:, None]
    f = window_features(x, [1, 3], stats=("mean", "min", "max", "std"), feature_names=["a"])
    assert list(f.columns) == ["a__raw", "a__mean3", "a__min3", "a__max3", "a__std3"]
    np.testing.assert_allclose(f["a__mean3"], [0.5, 1, 2, 3, 4, 4.5])
    np.testing.assert_allclose(f["a__min3"], [0, 0, 1, 2, 3, 4])
    np.testing.assert_allclose(f["a__std3"], [np.std([0, 1], ddof=1), 1, 1, 1, 1, np.std([4, 5], ddof=1)])
    with pytest.raises(ValueError, match="unknown stats"):
        TemporalWindowFeatures(stats=("median",)).fit(x)


def test_smooth_label_runs():
    lab = np.array(list("aaabaaaccbccc"))
    assert "".join(smooth_label_runs(lab, 2)) == "aaaaaaacccccc"
    assert "".join(smooth_label_runs(np.array(list("baaa")), 2)) == "aaaa"


def _sessions(n_sessions=4, n=900, seed=0):
    """Toy sessions: a behaviour visible only through the temporal variance of a feature."""
    rng = np.random.default_rng(seed)
    Xs, ys, gs = [], [], []
    for s in range(n_sessions):
        y = np.zeros(n, int)
        for start in rng.choice(n - 60, 5, replace=False):
            y[start:start + 40] = 1
        x0 = rng.normal(0, 1, n) * np.where(y == 1, 3.0, 0.5)    # "shaking" during the behaviour
        x1 = rng.normal(0, 1, n)                                 # noise
        Xs.append(np.c_[x0, x1])
        ys.append(y)
        gs.append(np.full(n, f"video{s}"))
    X = pd.DataFrame(np.concatenate(Xs), columns=["paw_speed", "noise"])
    return X, np.concatenate(ys), np.concatenate(gs)


def test_temporal_context_helps_and_grouped_cv():
    X, y, g = _sessions()
    clf = BehaviorClassifier(windows_frames=(1, 9, 31), max_iter=30, min_bout_frames=10, random_state=0)
    cv = cross_validate_grouped(clf, X, y, g)
    assert len(cv) == 4 and set(cv.test_groups) == {"video0", "video1", "video2", "video3"}
    assert cv.f1.mean() > 0.85 and cv.bout_f1.mean() > 0.7
    no_context = cross_validate_grouped(BehaviorClassifier(windows_frames=(1,), max_iter=30, random_state=0),
                                        X, y, g, n_splits=2)
    assert no_context.f1.mean() < cv.f1.mean() - 0.15
    with pytest.raises(ValueError, match="at least 2 groups"):
        cross_validate_grouped(clf, X, y, np.zeros(len(y)))


def test_importance_and_persistence(tmp_path):
    X, y, g = _sessions(n_sessions=2)
    clf = BehaviorClassifier(windows_frames=(1, 9, 31), max_iter=30, random_state=0).fit(X, y)
    imp = permutation_importance_table(clf, X.iloc[:900], y[:900], n_repeats=2)
    assert imp.feature.iloc[0] == "paw_speed" and imp.importance.iloc[0] > 0.3
    path = save_model(clf, tmp_path / "m.joblib", feature_names=list(X.columns), fps=30.0)
    payload = load_model(path)
    assert payload["feature_names"] == ["paw_speed", "noise"] and payload["ethopose_version"]
    np.testing.assert_array_equal(predict_with_model(payload, X, fps=30.0), clf.predict(X))
    with pytest.raises(ModelMismatchError, match=r"missing \['noise'\]"):
        predict_with_model(payload, X[["paw_speed"]])
    with pytest.raises(ModelMismatchError, match="different order"):
        predict_with_model(payload, X[["noise", "paw_speed"]])
    with pytest.raises(ModelMismatchError, match="trained at 30 fps, data at 50 fps"):
        predict_with_model(payload, X, fps=50.0)
    (tmp_path / "junk.joblib").write_bytes(b"")
    import joblib

    joblib.dump({"x": 1}, tmp_path / "junk.joblib")
    with pytest.raises(ModelMismatchError, match="not an ethopose behaviour model"):
        load_model(tmp_path / "junk.joblib")
