"""Unsupervised behaviour discovery, B-SOiD style, fast enough for 100k frames on 2 cores.

Recipe (:class:`BehaviorDiscovery`): pose features (egocentric distances, angles, speeds,
smoothed ~0.1 s; see :mod:`behavior.pose_features`) -> standardise -> (optional PCA) -> UMAP to a
low-dimensional embedding -> HDBSCAN clusters ("syllables") -> a fast classifier trained on
the clustered frames (k-nearest neighbours in the standardised feature space) labels every
frame, and new data.

The speed comes from clustering a random subsample (``fit_subsample`` frames; B-SOiD
embeds every frame) with a smaller neighbourhood (``n_neighbors`` 30 instead of 60); the
classifier then labels the rest. ``bench/discovery.py`` times it against B-SOiD's
own recipe in the same run.

Summaries: :func:`cluster_usage`, :func:`cluster_bouts`, :func:`transition_matrix`,
:func:`example_clips`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted, validate_data

logger = logging.getLogger(__name__)

NOISE = -1


class BehaviorDiscovery(ClusterMixin, BaseEstimator):
    """Find behaviour clusters in per-frame pose features (UMAP + HDBSCAN + classifier).

    Parameters
    ----------
    n_components
        UMAP embedding dimension (B-SOiD: 3).
    n_neighbors
        UMAP neighbourhood size (B-SOiD: 60; default 30).
    min_cluster_fraction
        HDBSCAN ``min_cluster_size`` as a fraction of the clustered frames (B-SOiD sweeps
        0.5-1 %; default 1 %).
    fit_subsample
        Embed and cluster at most this many frames (random, seeded); the classifier labels
        the others. None embeds all frames.
    pca_variance
        Keep the principal components explaining this share of the variance before UMAP
        (default None: no PCA; with 24 features PCA saved little time and cost agreement
        with the true states on the virtual mouse).
    random_state
        Seed for the subsample, UMAP and the classifier.

    Attributes
    ----------
    labels_ : ndarray (n_frames,)
        Cluster of every frame of the training data (from the classifier; no noise).
    n_clusters_ : int
    subsample_index_ : ndarray
        Frames that were embedded.
    embedding_ : ndarray (n_subsample, n_components)
    cluster_labels_ : ndarray (n_subsample,)
        HDBSCAN labels of the embedded frames (-1 = noise).
    scaler_, pca_, umap_, classifier_
        Fitted steps.
    """

    def __init__(
        self,
        n_components: int = 3,
        n_neighbors: int = 30,
        min_cluster_fraction: float = 0.01,
        fit_subsample: int | None = 20_000,
        pca_variance: float | None = None,
        random_state: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_cluster_fraction = min_cluster_fraction
        self.fit_subsample = fit_subsample
        self.pca_variance = pca_variance
        self.random_state = random_state

    def _reduce(self, X: np.ndarray) -> np.ndarray:
        Z = self.scaler_.transform(X)
        return self.pca_.transform(Z) if self.pca_ is not None else Z

    def fit(self, X, y=None):
        """Cluster the frames of ``X`` (n_frames, n_features); NaN rows are filled by column medians."""
        import hdbscan
        import umap
        from sklearn.decomposition import PCA
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.preprocessing import StandardScaler

        X = validate_data(self, X, ensure_all_finite="allow-nan", reset=True, ensure_min_samples=10)
        X = self._fill(X, fit=True)
        rng = np.random.default_rng(self.random_state)
        n = X.shape[0]
        if self.fit_subsample is not None and n > self.fit_subsample:
            idx = np.sort(rng.choice(n, size=int(self.fit_subsample), replace=False))
        else:
            idx = np.arange(n)
        self.subsample_index_ = idx
        self.scaler_ = StandardScaler().fit(X[idx])
        self.pca_ = None
        if self.pca_variance is not None:
            self.pca_ = PCA(n_components=float(self.pca_variance), svd_solver="full",
                            random_state=self.random_state).fit(self.scaler_.transform(X[idx]))
        Z = self._reduce(X)
        seed = None if self.random_state is None else int(self.random_state)
        n_neighbors = int(min(self.n_neighbors, idx.size - 1))
        self.umap_ = umap.UMAP(n_neighbors=n_neighbors, n_components=self.n_components, min_dist=0.0,
                               random_state=seed, n_jobs=1 if seed is not None else -1)
        self.embedding_ = self.umap_.fit_transform(Z[idx])
        min_size = max(5, int(round(self.min_cluster_fraction * idx.size)))
        self.cluster_labels_ = hdbscan.HDBSCAN(min_cluster_size=min_size, min_samples=None).fit_predict(
            self.embedding_)
        good = self.cluster_labels_ != NOISE
        found = np.unique(self.cluster_labels_[good])
        if found.size < 2:
            logger.warning("HDBSCAN found %d cluster(s); everything is one syllable", found.size)
            self.classifier_ = None
            self.labels_ = np.zeros(n, dtype=int)
            self.n_clusters_ = 1
            return self
        self.classifier_ = KNeighborsClassifier(n_neighbors=15)
        self.classifier_.fit(Z[idx][good], self.cluster_labels_[good])
        self.labels_ = self.classifier_.predict(Z).astype(int)
        self.n_clusters_ = int(found.size)
        return self

    def _fill(self, X: np.ndarray, *, fit: bool) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if fit:
            med = np.nanmedian(X, axis=0)
            self.fill_values_ = np.where(np.isfinite(med), med, 0.0)
        nan = np.isnan(X)
        if nan.any():
            X = np.where(nan, self.fill_values_[None, :], X)
        return X

    def predict(self, X):
        """Cluster of each frame of new data (the classifier trained on the clusters)."""
        check_is_fitted(self, "labels_")
        X = validate_data(self, X, ensure_all_finite="allow-nan", reset=False)
        X = self._fill(X, fit=False)
        if self.classifier_ is None:
            return np.zeros(X.shape[0], dtype=int)
        return self.classifier_.predict(self._reduce(X)).astype(int)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = self.random_state is None
        return tags


def cluster_usage(labels: np.ndarray, *, fps: float | None = None) -> pd.DataFrame:
    """Frames (and seconds) and share of the session per cluster, most used first."""
    lab, counts = np.unique(np.asarray(labels), return_counts=True)
    out = pd.DataFrame({"cluster": lab, "n_frames": counts, "fraction": counts / counts.sum()})
    if fps:
        out["seconds"] = counts / fps
    return out.sort_values("n_frames", ascending=False, ignore_index=True)


def _runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [labels.size]])
    return starts, ends, labels[starts]


def cluster_bouts(labels: np.ndarray, *, fps: float) -> pd.DataFrame:
    """Bout statistics per cluster: number of bouts, mean / median duration (s), bouts per minute."""
    starts, ends, lab = _runs(labels)
    dur = (ends - starts) / fps
    total_min = len(labels) / fps / 60
    df = pd.DataFrame({"cluster": lab, "duration_s": dur})
    g = df.groupby("cluster")["duration_s"]
    out = pd.DataFrame({"n_bouts": g.size(), "mean_duration_s": g.mean(),
                        "median_duration_s": g.median()})
    out["bouts_per_min"] = out["n_bouts"] / total_min
    return out.reset_index()


def transition_matrix(labels: np.ndarray, *, normalize: bool = True) -> pd.DataFrame:
    """Transitions between consecutive bouts (self-transitions excluded); rows sum to 1."""
    _, _, lab = _runs(labels)
    names = np.unique(np.asarray(labels))
    index = {v: i for i, v in enumerate(names.tolist())}
    m = np.zeros((names.size, names.size))
    for a, b in zip(lab[:-1], lab[1:], strict=True):
        m[index[a], index[b]] += 1
    if normalize:
        rows = m.sum(axis=1, keepdims=True)
        m = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    return pd.DataFrame(m, index=pd.Index(names, name="from"), columns=pd.Index(names, name="to"))


def example_clips(
    labels: np.ndarray, *, fps: float, n_per_cluster: int = 3, min_duration_s: float = 0.3,
    pad_s: float = 0.5,
) -> pd.DataFrame:
    """Frame ranges of example bouts per cluster (the longest ones), padded for context.

    Returns ``cluster``, ``bout_start_frame``, ``bout_end_frame`` (exclusive),
    ``clip_start_frame``, ``clip_end_frame`` (clip = bout +- ``pad_s``, clipped to the data).
    """
    starts, ends, lab = _runs(labels)
    pad = int(round(pad_s * fps))
    rows = []
    for c in np.unique(lab):
        sel = np.flatnonzero((lab == c) & ((ends - starts) >= min_duration_s * fps))
        sel = sel[np.argsort(-(ends[sel] - starts[sel]), kind="stable")][:n_per_cluster]
        for i in sel:
            rows.append({"cluster": c, "bout_start_frame": int(starts[i]), "bout_end_frame": int(ends[i]),
                         "clip_start_frame": int(max(0, starts[i] - pad)),
                         "clip_end_frame": int(min(len(labels), ends[i] + pad))})
    return pd.DataFrame(rows, columns=["cluster", "bout_start_frame", "bout_end_frame",
                                       "clip_start_frame", "clip_end_frame"])


def score_against_truth(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Adjusted Rand index and V-measure (homogeneity, completeness) against true states."""
    from sklearn.metrics import adjusted_rand_score, homogeneity_completeness_v_measure

    h, c, v = homogeneity_completeness_v_measure(truth, labels)
    return {"ari": float(adjusted_rand_score(truth, labels)), "v_measure": float(v),
            "homogeneity": float(h), "completeness": float(c)}
