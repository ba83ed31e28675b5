"""Per-frame pose features for classifiers and unsupervised discovery (egocentric, in mm).

Built from the one per-frame feature table (:func:`features.table.compute_feature_table`:
keypoint speeds, heading angular velocity, body length) on a pose cleaned once by
:func:`features.filters.clean`, plus egocentric keypoint coordinates (body centre at the
origin, tail base -> snout on +x) and optionally all keypoint-pair distances (the B-SOiD
feature set). One row per frame; NaN where a keypoint is unknown.
"""

from __future__ import annotations

import logging
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from pose.dataset import validate_pose
from pose.keypoints import KeypointRoleError, find_role, select_keypoints

logger = logging.getLogger(__name__)

FeatureSet = Literal["egocentric", "distances", "all"]


def _px_per_mm(ds: xr.Dataset, px_per_mm: float | None, px_per_cm: float | None) -> float:
    if px_per_mm is None and px_per_cm is not None:
        px_per_mm = px_per_cm / 10.0  # cm accepted at the edge, converted here
    ppm = px_per_mm if px_per_mm is not None else ds.attrs.get("px_per_mm")
    if ppm is None or not np.isfinite(float(ppm)) or float(ppm) <= 0:
        raise ValueError("pose features are in mm but the pose data has no spatial calibration: "
                         "pass px_per_mm (CLI: --px-per-cm 32) or set attrs['px_per_mm']")
    return float(ppm)


def compute_pose_features(
    ds: xr.Dataset,
    *,
    feature_set: FeatureSet = "egocentric",
    smooth_s: float = 0.1,
    px_per_mm: float | None = None,
    p_cutoff: float = 0.6,
    individual: int = 0,
    px_per_cm: float | None = None,
) -> pd.DataFrame:
    """Per-frame feature table of one animal.

    Parameters
    ----------
    ds
        Pose Dataset with fps and a calibration (or ``px_per_mm``).
    feature_set
        "egocentric": egocentric x/y of every keypoint, keypoint speeds, heading angular
        velocity, body length. "distances": keypoint-pair distances, keypoint speeds and
        angular velocity (B-SOiD). "all": both.
    smooth_s
        Savitzky-Golay smoothing of positions before the features (B-SOiD: ~0.1 s).
    px_per_mm, p_cutoff
        Calibration and confidence cut-off of the cleaning (every interior gap is filled).
    individual
        Index of the individual.
    px_per_cm
        Calibration in px/cm (converted to mm; ignored when ``px_per_mm`` is given).

    Returns
    -------
    pandas.DataFrame
        ``(n_frames, n_features)``; lengths in mm, speeds in mm/s, angles in rad/s. Column
        names: ``speed_<kp>``, ``angular_velocity``, ``ego_x_<kp>``, ``ego_y_<kp>``,
        ``body_length``, ``dist_<a>_<b>``.
    """
    from features.filters import clean
    from features.kinematics import compute_pairwise_distance, egocentric_align
    from features.steps import ConfidenceMask, Interpolate, SavGol
    from features.table import compute_feature_table

    validate_pose(ds, require_fps=True, context="compute_pose_features")
    if feature_set not in ("egocentric", "distances", "all"):
        raise ValueError(f"feature_set must be 'egocentric', 'distances' or 'all', got {feature_set!r}")
    ppm = _px_per_mm(ds, px_per_mm, px_per_cm)
    steps = [ConfidenceMask(threshold=p_cutoff), Interpolate(max_gap_s=None)]
    if smooth_s and smooth_s > 0:
        steps.append(SavGol(window_s=smooth_s, order=2))
    one = clean(ds.isel(individual=[individual]), steps)
    kps = [str(k) for k in one.coords["keypoint"].values]
    snout, tail = find_role(one, "snout"), find_role(one, "tail_base")
    if snout is None or tail is None:
        raise KeypointRoleError(f"pose features need a snout and a tail base keypoint (has {kps})")
    body = [k for k in select_keypoints(one, "body") if k != tail]
    centre = body[0] if body else tail
    table = compute_feature_table(one, keypoint=centre, px_per_mm=ppm, families=["heading", "keypoint_speeds"])
    cols: dict[str, np.ndarray] = {f"speed_{k}": table[f"speed_{k}_mm_s"].to_numpy() for k in kps}
    cols["angular_velocity"] = table["angular_velocity_rad_s"].to_numpy()
    if feature_set in ("egocentric", "all"):
        ego = egocentric_align(one, centre=centre, front=snout, back=tail).position
        ego = ego.isel(individual=0).values / ppm  # (time, space, keypoint)
        for i, k in enumerate(kps):
            if k == centre:
                continue
            cols[f"ego_x_{k}"] = ego[:, 0, i]
            cols[f"ego_y_{k}"] = ego[:, 1, i]
        cols["body_length"] = table["body_length_mm"].to_numpy()
    if feature_set in ("distances", "all"):
        for a, b in combinations(kps, 2):
            cols[f"dist_{a}_{b}"] = compute_pairwise_distance(one, a, b).isel(individual=0).values / ppm
    out = pd.DataFrame(cols)
    out.index.name = "frame"
    return out
