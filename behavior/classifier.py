"""Supervised behaviour classifiers (scikit-learn contract) and their grouped evaluation.

:class:`BehaviorClassifier` = :class:`~behavior.windows.TemporalWindowFeatures` ->
``HistGradientBoostingClassifier`` (or ``RandomForestClassifier``) in a ``Pipeline``, with
class imbalance handled by class weights, a probability threshold and min-bout
post-processing of the predicted label sequence. Rows are frames in time order.

:func:`cross_validate_grouped` evaluates with folds grouped by video / animal (adjacent
frames are nearly identical: a frame-level random split leaks and inflates every score).
:func:`save_model` / :func:`load_model` write and read a model together with its feature
list and the ethopose version; predicting on a table with other features is refused.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from behavior.windows import TemporalWindowFeatures

logger = logging.getLogger(__name__)

ModelKind = Literal["hist_gradient_boosting", "random_forest"]


def smooth_label_runs(labels: np.ndarray, min_run: int) -> np.ndarray:
    """Relabel runs shorter than ``min_run`` frames with the label of the run before them.

    A short run at the very start takes the label of the run after it. Repeats until no
    short run is left (at most a few passes). Works on any label dtype.
    """
    labels = np.asarray(labels).copy()
    if min_run <= 1 or labels.size == 0:
        return labels
    for _ in range(10):
        change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [labels.size]])
        short = np.flatnonzero(ends - starts < min_run)
        if short.size == 0 or starts.size == 1:
            break
        for r in short:
            s, e = starts[r], ends[r]
            fill = labels[s - 1] if s > 0 else labels[e] if e < labels.size else labels[s]
            labels[s:e] = fill
    return labels


def _balanced_index(y: np.ndarray, rng: np.random.Generator, max_factor: int = 50) -> np.ndarray:
    """Row indices that oversample every class to the largest class's count (at most x max_factor)."""
    classes, counts = np.unique(y, return_counts=True)
    target = counts.max()
    parts = []
    for c, n in zip(classes, counts, strict=True):
        rows = np.flatnonzero(y == c)
        want = int(min(target, max_factor * n))
        reps, rest = divmod(want, n)
        parts.append(np.concatenate([np.tile(rows, reps), rng.choice(rows, rest, replace=False)]))
    return np.sort(np.concatenate(parts))


class BehaviorClassifier(ClassifierMixin, BaseEstimator):
    """Frame-wise behaviour classifier with temporal context.

    Parameters
    ----------
    windows_frames
        Rolling-window lengths (frames) of the temporal features; 1 keeps the raw ones.
    model
        "hist_gradient_boosting" (default) or "random_forest".
    class_weight
        "balanced" (default: rare behaviours weigh as much as common ones; for gradient
        boosting done by random oversampling of the rarer classes, at most x50), a dict
        ``{label: weight}``, or None.
    threshold
        Binary problems: the positive class is predicted where its probability is
        >= threshold. Multiclass: ignored (argmax).
    min_bout_frames
        Predicted runs shorter than this are merged into the preceding run.
    max_iter
        Boosting iterations (or number of trees for the random forest).
    learning_rate
        Boosting learning rate.
    random_state
        Seed of the model.

    Attributes
    ----------
    classes_, n_features_in_, n_iter_, pipeline_ (the fitted Pipeline), feature_names_in_
    (when fitted on a DataFrame).
    """

    def __init__(
        self,
        windows_frames: Sequence[int] = (1, 5, 15, 45),
        model: ModelKind = "hist_gradient_boosting",
        class_weight: Literal["balanced"] | dict | None = "balanced",
        threshold: float = 0.5,
        min_bout_frames: int = 1,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        random_state: int | None = None,
    ) -> None:
        self.windows_frames = windows_frames
        self.model = model
        self.class_weight = class_weight
        self.threshold = threshold
        self.min_bout_frames = min_bout_frames
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.random_state = random_state

    def _make_model(self):
        if self.model == "hist_gradient_boosting":
            from sklearn.ensemble import HistGradientBoostingClassifier

            return HistGradientBoostingClassifier(
                max_iter=self.max_iter, learning_rate=self.learning_rate,
                class_weight=self.class_weight, early_stopping=False,
                random_state=self.random_state)
        if self.model == "random_forest":
            from sklearn.ensemble import RandomForestClassifier

            return RandomForestClassifier(
                n_estimators=self.max_iter, class_weight=self.class_weight, min_samples_leaf=2,
                random_state=self.random_state, n_jobs=1)
        raise ValueError(f"model must be 'hist_gradient_boosting' or 'random_forest', got {self.model!r}")

    def fit(self, X, y, sample_weight=None):
        """Fit on frames ``X`` (n_frames, n_features) in time order and labels ``y``."""
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", reset=True)
        if not 0.0 < float(self.threshold) < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {self.threshold}")
        self.classes_ = unique_labels(y)
        if self.classes_.size < 2:
            raise ValueError(f"need at least 2 classes to fit, got 1 class: {self.classes_[0]!r}")
        windows = TemporalWindowFeatures(windows_frames=self.windows_frames).fit(X)
        Z = windows.transform(X)
        model = self._make_model()
        sw = None if sample_weight is None else _check_sample_weight(sample_weight, X)
        if self.model == "hist_gradient_boosting" and self.class_weight == "balanced":
            # balanced random oversampling: same effect as class weights, but keeps HGB on its
            # fast unweighted binning path (weighted binning is ~50x slower in sklearn 1.9)
            idx = _balanced_index(y, np.random.default_rng(self.random_state))
            Z, y, sw = Z[idx], y[idx], None if sw is None else sw[idx]
            model.set_params(class_weight=None)
        model.fit(Z, y, sample_weight=sw)
        self.pipeline_ = Pipeline([("windows", windows), ("model", model)])
        fitted = self.pipeline_.named_steps["model"]
        self.n_iter_ = int(getattr(fitted, "n_iter_", self.max_iter))
        return self

    def predict_proba(self, X):
        """Class probabilities per frame, shape ``(n_frames, n_classes)`` (order ``classes_``)."""
        check_is_fitted(self, "pipeline_")
        X = validate_data(self, X, ensure_all_finite="allow-nan", reset=False)
        return self.pipeline_.predict_proba(X)

    def predict(self, X):
        """Labels per frame after the threshold and min-bout post-processing."""
        proba = self.predict_proba(X)
        if self.classes_.size == 2:
            idx = (proba[:, 1] >= self.threshold).astype(int)
        else:
            idx = np.argmax(proba, axis=1)
        idx = smooth_label_runs(idx, int(self.min_bout_frames))
        return self.classes_[idx]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def permutation_importance_table(
    clf: BehaviorClassifier, X: pd.DataFrame | np.ndarray, y, *, n_repeats: int = 3,
    random_state: int = 0, scoring: str = "f1_macro",
) -> pd.DataFrame:
    """Permutation importance of each input feature (drop in ``scoring`` when shuffled).

    Shuffling a column destroys its temporal context too, which is the point: the whole
    input feature (with all its rolling windows) is scored.
    """
    from sklearn.inspection import permutation_importance

    names = list(X.columns) if isinstance(X, pd.DataFrame) else [f"x{i}" for i in range(np.shape(X)[1])]
    res = permutation_importance(clf, X, y, n_repeats=n_repeats, random_state=random_state,
                                 scoring=scoring)
    return (pd.DataFrame({"feature": names, "importance": res.importances_mean,
                          "std": res.importances_std})
            .sort_values("importance", ascending=False, ignore_index=True))


def cross_validate_grouped(
    clf: BehaviorClassifier,
    X: pd.DataFrame | np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    n_splits: int | None = None,
    fps: float | None = None,
    min_iou: float = 0.5,
) -> pd.DataFrame:
    """Grouped cross-validation: frame precision / recall / F1 and bout F1 per behaviour.

    Parameters
    ----------
    clf
        An unfitted classifier (cloned per fold).
    X, y
        Frames in time order, labels.
    groups
        Video / animal id per frame; no group is ever split between train and test.
    n_splits
        GroupKFold folds; None: leave one group out.

    Returns
    -------
    pandas.DataFrame
        One row per (fold, behaviour): ``fold``, ``test_groups``, ``behavior``,
        ``precision``, ``recall``, ``f1``, ``bout_f1``, ``n_true_frames``.
    """
    from sklearn.base import clone
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    from behavior.agreement import bout_f1, frame_scores

    y = np.asarray(y)
    groups = np.asarray(groups)
    if np.unique(groups).size < 2:
        raise ValueError("grouped cross-validation needs at least 2 groups (videos / animals)")
    splitter = LeaveOneGroupOut() if n_splits is None else GroupKFold(n_splits=n_splits)
    rows = []
    Xa = X if isinstance(X, pd.DataFrame) else np.asarray(X)
    for fold, (tr, te) in enumerate(splitter.split(Xa, y, groups)):
        model = clone(clf)
        take = (lambda idx: Xa.iloc[idx]) if isinstance(Xa, pd.DataFrame) else (lambda idx: Xa[idx])
        model.fit(take(tr), y[tr])
        pred = model.predict(take(te))
        for beh in model.classes_:
            t, p = y[te] == beh, pred == beh
            if model.classes_.size == 2 and beh == model.classes_[0]:
                continue  # binary: report the positive class only
            s = frame_scores(t, p)
            rows.append({"fold": fold, "test_groups": ",".join(map(str, np.unique(groups[te]))),
                         "behavior": beh, "precision": s["precision"], "recall": s["recall"],
                         "f1": s["f1"], "bout_f1": bout_f1(t, p, min_iou=min_iou),
                         "n_true_frames": int(t.sum())})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- persistence


class ModelMismatchError(ValueError):
    """Input features do not match the ones a saved model was trained on."""


def save_model(
    clf: BehaviorClassifier, path: str | os.PathLike, *, feature_names: Sequence[str],
    fps: float | None = None, notes: str = "",
) -> Path:
    """Write ``clf`` with its feature list, fps and versions (joblib, atomic). Returns the path."""
    import joblib
    import sklearn

    from pose._version import __version__
    from pose.atomic import atomic_path

    check_is_fitted(clf, "pipeline_")
    if len(feature_names) != clf.n_features_in_:
        raise ValueError(f"{len(feature_names)} feature names for a model of {clf.n_features_in_} features")
    payload = {"model": clf, "feature_names": list(map(str, feature_names)), "fps": fps,
               "ethopose_version": __version__, "sklearn_version": sklearn.__version__,
               "classes": [str(c) for c in clf.classes_], "notes": notes}
    with atomic_path(path) as tmp:
        joblib.dump(payload, tmp)
    return Path(path)


def load_model(path: str | os.PathLike) -> dict:
    """Read a model written by :func:`save_model` (a dict with ``model`` and metadata).

    A different ethopose or scikit-learn version is logged as a warning.
    """
    import joblib
    import sklearn

    from pose._version import __version__

    payload = joblib.load(path)
    if not isinstance(payload, dict) or "model" not in payload or "feature_names" not in payload:
        raise ModelMismatchError(f"{path}: not an ethopose behaviour model")
    if payload.get("ethopose_version") != __version__:
        logger.warning("%s was saved by ethopose %s, this is %s", path, payload.get("ethopose_version"), __version__)
    if payload.get("sklearn_version") != sklearn.__version__:
        logger.warning("%s was saved with scikit-learn %s, this is %s", path,
                       payload.get("sklearn_version"), sklearn.__version__)
    return payload


def predict_with_model(payload: dict, features: pd.DataFrame, *, fps: float | None = None) -> np.ndarray:
    """Predict with a loaded model after checking the feature columns (names and order) and fps."""
    expected = payload["feature_names"]
    got = [str(c) for c in features.columns]
    if got != expected:
        missing = [c for c in expected if c not in got]
        extra = [c for c in got if c not in expected]
        raise ModelMismatchError(
            f"features do not match the model: missing {missing[:10]}, unexpected {extra[:10]}"
            + ("" if missing or extra else " (same names, different order)")
        )
    model_fps = payload.get("fps")
    if model_fps is not None and fps is not None and abs(model_fps - fps) > 1e-6:
        raise ModelMismatchError(
            f"model trained at {model_fps:g} fps, data at {fps:g} fps: its temporal windows "
            "are in frames; resample the data or retrain"
        )
    return payload["model"].predict(features)
