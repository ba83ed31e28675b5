"""Rule-based behaviour states with thresholds in physical units (mm, mm/s, s).

Each ``detect_*`` function takes an **already-clean** pose Dataset (low-confidence points
masked, short gaps interpolated: :func:`features.filters.clean`, which the CLI and the
protocols call once; the rules do not filter again), positions in px and ``px_per_mm``
in its attrs (or passed), and returns a named boolean ``DataArray`` ``(time,)`` for one
individual. On a file with several individuals pass ``individual=``: the rules refuse to
guess (the error names the individuals).

Keypoints are found by role (head, body, forepaws, tail base) from common DeepLabCut,
SLEAP and ethopose names (``Nose``/``snout``, ``Left Ear``/``left_ear``,
``Mid-Back``/``body_center``, ``Tailbase``/``tail_base``...), or passed explicitly
(:func:`pose.keypoints.select_keypoints`). Speeds are the least-squares slope of a
centroid's track over a short window (:func:`behavior.noise.slope_speed`).

- freezing: :func:`behavior.freezing.detect_freezing` (self-calibrating to the recording's
  frame rate, calibration and tracking noise; its docstring has the methods sentence);
- immobility, locomotion: body-centroid speed below / above a threshold (here);
- rearing, grooming: posture rules, :mod:`behavior.posture`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import xarray as xr

from behavior.bouts import filter_bouts
from behavior.freezing import (
    FreezingCalibration,
    calibrate_freezing,
    detect_freezing,
    freezing_from_speeds,
)
from behavior.posture import body_length_ratio, detect_grooming, detect_rearing
from behavior.roles import (
    _below,
    _fps,
    _px_per_cm,
    _result,
    centroid_speed_mm_s,
    clean_pose,
    extend_bouts,
    resolve_px_per_mm,
    select_individual,
    speed_for_threshold,
)
from pose.dataset import validate_pose
from pose.keypoints import select_keypoints

__all__ = [
    "FreezingCalibration", "body_length_ratio", "calibrate_freezing", "centroid_speed_mm_s",
    "clean_pose", "detect_freezing", "detect_grooming", "detect_immobility", "detect_locomotion",
    "detect_rearing", "detect_states", "extend_bouts", "freezing_from_speeds",
    "resolve_px_per_mm", "select_individual", "select_keypoints", "_px_per_cm",
]

logger = logging.getLogger(__name__)


def detect_immobility(
    ds: xr.Dataset,
    *,
    max_speed_mm_s: float = 10.0,
    window_s: float | None = None,
    min_bout_s: float = 1.0,
    merge_gap_s: float = 0.25,
    px_per_mm: float | None = None,
    body_keypoints: Sequence[str] | None = None,
    individual: str | int | None = None,
) -> xr.DataArray:
    """Immobility: the body centroid slower than ``max_speed_mm_s`` for >= ``min_bout_s``.

    Unlike freezing the head may move (sniffing, looking around, grooming). Clean pose in.
    """
    validate_pose(ds, require_fps=True, context="detect_immobility")
    fps = _fps(ds)
    ppm = resolve_px_per_mm(ds, px_per_mm)
    one = select_individual(ds, individual)
    body = select_keypoints(one, "body", body_keypoints)
    bs, info = speed_for_threshold(one, body, px_per_mm=ppm, threshold_mm_s=max_speed_mm_s,
                                   window_s=window_s)
    out = filter_bouts(_below(bs, max_speed_mm_s), fps=fps, min_bout_s=min_bout_s,
                       merge_gap_s=merge_gap_s)
    return _result(out, one, "immobility", {"max_speed_mm_s": max_speed_mm_s, **info,
                                             "min_bout_s": min_bout_s, "px_per_mm": ppm})


def detect_locomotion(
    ds: xr.Dataset,
    *,
    min_speed_mm_s: float = 30.0,
    window_s: float | None = None,
    min_bout_s: float = 0.3,
    merge_gap_s: float = 0.2,
    px_per_mm: float | None = None,
    body_keypoints: Sequence[str] | None = None,
    individual: str | int | None = None,
) -> xr.DataArray:
    """Locomotion: body centroid faster than ``min_speed_mm_s`` (default 30 mm/s). Clean pose in.

    Notes
    -----
    Mice walk at about 50-150 mm/s; turning in place and postural adjustments move the body
    centre at 10-30 mm/s, so 30 mm/s separates translation from those.
    """
    validate_pose(ds, require_fps=True, context="detect_locomotion")
    fps = _fps(ds)
    ppm = resolve_px_per_mm(ds, px_per_mm)
    one = select_individual(ds, individual)
    body = select_keypoints(one, "body", body_keypoints)
    bs, info = speed_for_threshold(one, body, px_per_mm=ppm, threshold_mm_s=min_speed_mm_s,
                                   window_s=window_s)
    fast = np.isfinite(bs) & (bs > min_speed_mm_s)
    out = filter_bouts(fast, fps=fps, min_bout_s=min_bout_s, merge_gap_s=merge_gap_s)
    return _result(out, one, "locomotion", {"min_speed_mm_s": min_speed_mm_s, **info,
                                             "min_bout_s": min_bout_s, "px_per_mm": ppm})


def detect_states(
    ds: xr.Dataset, *, px_per_mm: float | None = None, individual: str | int | None = None
) -> xr.Dataset:
    """All rule-based states with their defaults, as one Dataset of boolean ``(time,)`` vars.

    A state whose keypoints the pose lacks is left out (logged). Clean pose in.
    """
    out = {
        "freezing": detect_freezing(ds, px_per_mm=px_per_mm, individual=individual),
        "immobility": detect_immobility(ds, px_per_mm=px_per_mm, individual=individual),
        "locomotion": detect_locomotion(ds, px_per_mm=px_per_mm, individual=individual),
    }
    for name, fn in (("rearing", detect_rearing), ("grooming", detect_grooming)):
        try:
            out[name] = fn(ds, px_per_mm=px_per_mm, individual=individual)
        except ValueError as err:
            logger.warning("%s not detected: %s", name, err)
    return xr.Dataset(out)
