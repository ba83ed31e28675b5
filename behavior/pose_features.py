"""Per-frame pose features for classifiers and unsupervised discovery (egocentric, in cm).

Built from :mod:`features.kinematics` on a cleaned pose (:func:`behavior.rules.clean_pose`):
egocentric keypoint coordinates (body centre at the origin, tail base -> snout on +x),
keypoint speeds, heading angular velocity, and optionally all keypoint-pair distances (the
B-SOiD feature set). One row per frame; NaN where a keypoint is unknown.
"""

from __future__ import annotations

import logging
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from behavior.rules import _px_per_cm, clean_pose, select_keypoints
from pose.dataset import validate_pose

logger = logging.getLogger(__name__)

FeatureSet = Literal["egocentric", "distances", "all"]


def compute_pose_features(
    ds: xr.Dataset,
    *,
    feature_set: FeatureSet = "egocentric",
    smooth_s: float = 0.1,
    px_per_cm: float | None = None,
    p_cutoff: float = 0.6,
    individual: int = 0,
) -> pd.DataFrame:
    """Per-frame feature table of one animal.

    Parameters
    ----------
    ds
        Pose Dataset with fps and a calibration (or ``px_per_cm``).
    feature_set
        "egocentric": egocentric x/y of every keypoint, keypoint speeds, heading angular
        velocity, body length. "distances": keypoint-pair distances, keypoint speeds and
        angular velocity (B-SOiD). "all": both.
    smooth_s
        Savitzky-Golay smoothing of positions before the features (B-SOiD: ~0.1 s).
    px_per_cm, p_cutoff
        Calibration and confidence cutoff (see :func:`behavior.rules.clean_pose`).
    individual
        Index of the individual.

    Returns
    -------
    pandas.DataFrame
        ``(n_frames, n_features)``; lengths in cm, speeds in cm/s, angles in rad/s.
    """
    from features.kinematics import (
        compute_angular_velocity,
        compute_heading,
        compute_pairwise_distance,
        compute_speed,
        egocentric_align,
    )

    validate_pose(ds, require_fps=True, context="compute_pose_features")
    if feature_set not in ("egocentric", "distances", "all"):
        raise ValueError(f"feature_set must be 'egocentric', 'distances' or 'all', got {feature_set!r}")
    ppc = _px_per_cm(ds, px_per_cm)
    one = ds.isel(individual=[individual])
    clean = clean_pose(one, p_cutoff=p_cutoff, max_gap_s=None, smooth_s=smooth_s)
    kps = [str(k) for k in clean.coords["keypoint"].values]
    snout = select_keypoints(clean, "snout")[0]
    tail = select_keypoints(clean, "tail_base")[0]
    body = [k for k in select_keypoints(clean, "body") if k not in (tail,)]
    centre = body[0] if body else tail
    cols: dict[str, np.ndarray] = {}
    speed = compute_speed(clean.position).isel(individual=0).values / ppc  # (time, keypoint)
    for i, k in enumerate(kps):
        cols[f"speed_{k}"] = speed[:, i]
    heading = compute_heading(clean, tail, snout)
    cols["angular_velocity"] = compute_angular_velocity(heading).isel(individual=0).values
    if feature_set in ("egocentric", "all"):
        ego = egocentric_align(clean, centre=centre, front=snout, back=tail).position
        ego = ego.isel(individual=0).values / ppc  # (time, space, keypoint)
        for i, k in enumerate(kps):
            if k == centre:
                continue
            cols[f"ego_x_{k}"] = ego[:, 0, i]
            cols[f"ego_y_{k}"] = ego[:, 1, i]
        cols["body_length"] = compute_pairwise_distance(clean, snout, tail).isel(individual=0).values / ppc
    if feature_set in ("distances", "all"):
        for a, b in combinations(kps, 2):
            cols[f"dist_{a}_{b}"] = compute_pairwise_distance(clean, a, b).isel(individual=0).values / ppc
    out = pd.DataFrame(cols)
    out.index.name = "frame"
    return out
