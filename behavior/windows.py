"""Temporal context as a scikit-learn transformer: centred rolling statistics of each feature.

A frame's behaviour depends on what happens around it. :class:`TemporalWindowFeatures`
turns a ``(n_frames, n_features)`` table whose rows are consecutive frames into
``(n_frames, n_features * n_windows * n_stats)`` rolling statistics (mean, std, min, max
over centred windows of several lengths), to be put in a ``Pipeline`` before a classifier.

Notes
-----
Rows must be in time order, one session after another. A window that reaches across the
junction of two concatenated sessions mixes them for its half-width only; build features per
session (:func:`window_features`) when that matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

Stat = Literal["mean", "std", "min", "max"]


def window_features(
    X: np.ndarray,
    windows_frames: Sequence[int],
    stats: Sequence[Stat] = ("mean", "std", "min", "max"),
    feature_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Centred rolling statistics of every column of ``X`` (rows = consecutive frames).

    Parameters
    ----------
    X
        Shape ``(n_frames, n_features)``; NaN is ignored inside a window.
    windows_frames
        Window lengths in frames (1 = the raw value, only "mean" is kept for it).
    stats
        Statistics per window.
    feature_names
        Input names (default ``x0, x1, ...``).

    Returns
    -------
    pandas.DataFrame
        Columns ``<feature>__<stat><window>``; partial windows at the ends use the frames
        available (``min_periods=1``); a std over a single value is 0.
    """
    X = np.asarray(X, dtype=float)
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=names)
    cols = {}
    for w in windows_frames:
        w = int(w)
        if w <= 1:
            for n in names:
                cols[f"{n}__raw"] = df[n].to_numpy()
            continue
        roll = df.rolling(w, center=True, min_periods=1)
        for stat in stats:
            vals = getattr(roll, stat)()
            if stat == "std":
                vals = vals.fillna(0.0)
            for n in names:
                cols[f"{n}__{stat}{w}"] = vals[n].to_numpy()
    return pd.DataFrame(cols)


class TemporalWindowFeatures(TransformerMixin, BaseEstimator):
    """Rolling mean / std / min / max of each feature over centred windows.

    Parameters
    ----------
    windows_frames
        Window lengths in frames; 1 keeps the raw features. Default ``(1, 5, 15, 45)``:
        at 30 fps about the frame, 0.17 s, 0.5 s and 1.5 s.
    stats
        Statistics computed for every window longer than one frame.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when fitted on a DataFrame with string columns
    feature_names_out_ : list of str
    """

    def __init__(self, windows_frames: Sequence[int] = (1, 5, 15, 45),
                 stats: Sequence[Stat] = ("mean", "std", "min", "max")) -> None:
        self.windows_frames = windows_frames
        self.stats = stats

    def fit(self, X, y=None):
        """Record the input width and output names; returns self."""
        X = validate_data(self, X, ensure_all_finite="allow-nan", reset=True)
        bad = [s for s in self.stats if s not in ("mean", "std", "min", "max")]
        if bad:
            raise ValueError(f"unknown stats {bad}; use mean, std, min, max")
        if not len(self.windows_frames) or min(int(w) for w in self.windows_frames) < 1:
            raise ValueError(f"windows_frames must be positive integers, got {self.windows_frames}")
        names = (list(self.feature_names_in_) if hasattr(self, "feature_names_in_")
                 else [f"x{i}" for i in range(X.shape[1])])
        self.feature_names_out_ = list(window_features(X[:1], self.windows_frames, self.stats, names).columns)
        return self

    def transform(self, X):
        """Rolling statistics, shape ``(n_frames, len(feature_names_out_))``."""
        check_is_fitted(self, "feature_names_out_")
        X = validate_data(self, X, ensure_all_finite="allow-nan", reset=False)
        names = (list(self.feature_names_in_) if hasattr(self, "feature_names_in_")
                 else [f"x{i}" for i in range(X.shape[1])])
        return window_features(X, self.windows_frames, self.stats, names).to_numpy()

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "feature_names_out_")
        return np.asarray(self.feature_names_out_, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
