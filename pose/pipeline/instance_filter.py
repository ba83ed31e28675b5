"""Which top-down instances to keep: the confidence floor and the unsure-instance rule.

With a known animal count, :class:`pose.pipeline.topdown.TopDownPredictor` takes the strongest
centroid peaks of every frame, however weak (so that a second animal in contact, whose peak
is faint, is still cropped). In a frame where two animals merge into one peak, the second
"strongest" peak can lie on anything: on the second virtual pair it lay on a fixed background
blob 2.5 body lengths from both mice in 2,180 of 18,000 frames (its peak score median 0.18,
its instance's median keypoint confidence 0.53; true animals' peaks: 1st percentile 0.72).
The frame then held its full count, so :meth:`~pose.pipeline.topdown.TopDownPredictor.propagate_instances`
never looked for the missing animal, and the tracker handed a coasting identity to the blob.

The rule (:func:`drop_unsure_instances`): an instance from a weak peak (score under
:data:`SURE_PEAK`) is kept only when the instance model is as confident of it as of the
animals the centroid model is sure of: at least the :data:`FLOOR_PERCENTILE` th percentile
of their median keypoint confidence (:func:`confidence_floor`, measured on the video itself).
The same floor decides which propagated crops are kept.
"""

from __future__ import annotations

import warnings

import numpy as np

SURE_PEAK = 0.5  # a centroid peak this strong is an animal (true peaks: 1st percentile 0.72 on the virtual pairs)
FLOOR_PERCENTILE = 5.0  # of the sure instances' median keypoint confidence


def instance_confidence(xy: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Median keypoint confidence of each instance over its finite keypoints.

    Parameters
    ----------
    xy, conf
        ``(T, P, K, 2)`` keypoints (NaN = none) and ``(T, P, K)`` confidences.

    Returns
    -------
    ``(T, P)``, NaN for an empty slot.
    """
    with warnings.catch_warnings():  # an empty slot's median is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(np.where(np.isfinite(xy).all(axis=-1), conf, np.nan), axis=-1)


def confidence_floor(xy: np.ndarray, conf: np.ndarray, score: np.ndarray | None = None) -> tuple[float, str]:
    """The least median keypoint confidence an unsure instance needs, and why.

    The :data:`FLOOR_PERCENTILE` th percentile of the instances whose centroid peak is sure
    (``score >= SURE_PEAK``); of every instance when no scores are given or none is sure.

    Parameters
    ----------
    xy, conf
        As in :func:`instance_confidence`.
    score
        ``(T, P)`` centroid peak scores (0 for an instance from a propagated crop), or None.

    Returns
    -------
    The floor (NaN when no instance is found) and a one-line reason.
    """
    med = instance_confidence(xy, conf)
    found = np.isfinite(med)
    sure = found & (score >= SURE_PEAK) if score is not None else found
    basis = f"the instances from centroid peaks >= {SURE_PEAK}"
    if not sure.any():
        sure, basis = found, "all instances (no sure centroid peak)"
    if not sure.any():
        return float("nan"), "no instance found"
    floor = float(np.percentile(med[sure], FLOOR_PERCENTILE))
    return floor, f"{FLOOR_PERCENTILE:g}th percentile of the median keypoint confidence of {basis} ({int(sure.sum())})"


def drop_unsure_instances(xy: np.ndarray, conf: np.ndarray, score: np.ndarray, floor: float) -> int:
    """In place: empty every instance from a weak centroid peak (``score < SURE_PEAK``) whose
    median keypoint confidence is under ``floor`` (:func:`confidence_floor`).

    Parameters
    ----------
    xy, conf
        ``(T, P, K, 2)`` keypoints and ``(T, P, K)`` confidences; emptied slots become NaN / 0.
    score
        ``(T, P)`` centroid peak scores; emptied slots become 0.

    Returns
    -------
    The number of instances emptied.
    """
    if not np.isfinite(floor):
        return 0
    med = instance_confidence(xy, conf)
    drop = np.isfinite(med) & (score < SURE_PEAK) & (med < floor)
    xy[drop] = np.nan
    conf[drop] = 0.0
    score[drop] = 0.0
    return int(drop.sum())
