"""Identity metrics of a tracked pose Dataset against the truth, with ``motmetrics``.

IDF1, identity switches and MOTA are computed by ``motmetrics`` (a well-kept
implementation of the CLEAR-MOT and identity metrics) on the instances' centroids, not by
hand; ``motmetrics`` is imported when called (``pip install motmetrics``, the test extra).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pose.tracking.core import estimate_body_size_px, instance_centroids


def identity_metrics(truth: xr.Dataset, tracked: xr.Dataset, *, max_distance_px: float | None = None,
                     present: np.ndarray | None = None) -> dict[str, float]:
    """IDF1, MOTA, identity switches and counts of ``tracked`` against ``truth``.

    Parameters
    ----------
    truth, tracked
        Pose Datasets with the same rows (frames); ``truth``'s individuals are the true
        identities, ``tracked``'s the tracks.
    max_distance_px
        A track matches a true animal in a frame when their centroids are closer than this
        (default: half the truth's body size).
    present
        Optional (time, truth individual) bool: the true animals that count in each frame
        (e.g. those the pose estimator detected, so that the metrics measure the identity
        assignment and not the detector's misses). Default: every animal with a position.

    Returns
    -------
    dict
        ``idf1``, ``mota``, ``num_switches``, ``num_frames``, ``num_objects``,
        ``num_false_positives``, ``num_misses``, ``max_distance_px``, and
        ``switches_per_10_min`` when the truth has a frame rate.
    """
    try:
        import motmetrics as mm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("identity_metrics needs motmetrics: pip install motmetrics") from exc
    if truth.sizes["time"] != tracked.sizes["time"]:
        raise ValueError(f"truth has {truth.sizes['time']} frames, tracked {tracked.sizes['time']}")
    if max_distance_px is None:
        max_distance_px = 0.5 * estimate_body_size_px(truth["position"].values[:, :2])
    gt = instance_centroids(truth["position"].values[:, :2], truth["confidence"].values)
    hy = instance_centroids(tracked["position"].values[:, :2], tracked["confidence"].values)
    acc = mm.MOTAccumulator(auto_id=True)
    for t in range(gt.shape[0]):
        ok = np.isfinite(gt[t]).all(axis=0)
        g = np.flatnonzero(ok if present is None else ok & present[t])
        h = np.flatnonzero(np.isfinite(hy[t]).all(axis=0))
        dist = mm.distances.norm2squared_matrix(gt[t][:, g].T, hy[t][:, h].T, max_d2=max_distance_px**2)
        acc.update(g.tolist(), h.tolist(), dist)
    names = ["idf1", "mota", "num_switches", "num_frames", "num_objects", "num_false_positives",
             "num_misses"]
    summary = mm.metrics.create().compute(acc, metrics=names, name="tracking")
    out = {k: float(summary[k].iloc[0]) for k in names}
    out["max_distance_px"] = float(max_distance_px)
    fps = truth.attrs.get("fps")
    if fps:
        minutes = gt.shape[0] / fps / 60.0
        out["switches_per_10_min"] = out["num_switches"] / minutes * 10.0
    return out
