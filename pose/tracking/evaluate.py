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
                     present: np.ndarray | None = None, with_switch_frames: bool = False) -> dict[str, float]:
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
        ``switches_per_10_min`` when the truth has a frame rate; with
        ``with_switch_frames`` also ``switch_rows`` (:func:`identity_switch_frames`).
    """
    mm = _motmetrics()
    acc, max_distance_px, _ = _accumulate(truth, tracked, max_distance_px, present)
    names = ["idf1", "mota", "num_switches", "num_frames", "num_objects", "num_false_positives",
             "num_misses"]
    summary = mm.metrics.create().compute(acc, metrics=names, name="tracking")
    out = {k: float(summary[k].iloc[0]) for k in names}
    out["max_distance_px"] = float(max_distance_px)
    fps = truth.attrs.get("fps")
    if fps:
        minutes = truth.sizes["time"] / fps / 60.0
        out["switches_per_10_min"] = out["num_switches"] / minutes * 10.0
    if with_switch_frames:
        out["switch_rows"] = identity_switch_frames(truth, tracked, accumulator=acc)
    return out


def _motmetrics():
    try:
        import motmetrics as mm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("identity metrics need motmetrics: pip install motmetrics") from exc
    return mm


def _accumulate(truth: xr.Dataset, tracked: xr.Dataset, max_distance_px: float | None,
                present: np.ndarray | None):
    """The motmetrics accumulator of ``tracked`` against ``truth`` (frame ids = row indices)."""
    mm = _motmetrics()
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
    return acc, float(max_distance_px), gt


def identity_switch_frames(truth: xr.Dataset, tracked: xr.Dataset, *, max_distance_px: float | None = None,
                           present: np.ndarray | None = None, accumulator=None) -> np.ndarray:
    """Row indices of the frames where motmetrics counts an identity switch (one entry per
    switch; arguments as :func:`identity_metrics`, or its motmetrics ``accumulator``)."""
    acc = accumulator if accumulator is not None else _accumulate(truth, tracked, max_distance_px, present)[0]
    ev = acc.mot_events
    return ev.index.get_level_values("FrameId")[ev["Type"].values == "SWITCH"].to_numpy(dtype=int)


def suspects_cover(switch_rows: np.ndarray, suspects, frames: np.ndarray, margin_frames: int = 0) -> float:
    """Fraction of identity switches (row indices) inside a swap-suspect event (its
    ``start_frame``..``end_frame``, widened by ``margin_frames``); NaN without switches.
    ``frames`` maps rows to frame numbers (:func:`pose.dataset.frame_numbers`)."""
    if len(switch_rows) == 0:
        return float("nan")
    f = np.asarray(frames)[np.asarray(switch_rows)]
    lo = suspects["start_frame"].to_numpy()[None] - margin_frames
    hi = suspects["end_frame"].to_numpy()[None] + margin_frames
    return float(((f[:, None] >= lo) & (f[:, None] <= hi)).any(axis=1).mean())
