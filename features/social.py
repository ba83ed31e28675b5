"""Social features of a multi-animal pose Dataset: distances, contact / approach / following bouts.

Pure functions on a pose Dataset with several individuals (identities already consistent,
e.g. after :func:`pose.tracking.track_identities`):

- :func:`compute_social_distances`: ``nose_nose``, ``nose_tail_base`` (the individual's
  nose to the other's tail base) and ``body_body`` (body centres) distances, DataArrays
  (time, individual, other), mm when ``px_per_mm`` is known (px otherwise).
- :func:`derive_social_thresholds`: the physical thresholds, from the animals' body length
  where not given (printed with the reason).
- :func:`detect_social_bouts`: tidy table of ``contact``, ``approach`` and ``following`` bouts.
- :func:`compute_time_near` and :func:`summarize_social`: per pair, session numbers.

Body parts are found by role (:func:`pose.keypoints.find_role`): snout/nose, tail base,
body centre (the centroid of all keypoints when the file has none).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field

from pose.dataset import frame_numbers, validate_pose
from pose.keypoints import KeypointRoleError, find_role
from pose.tracking import estimate_body_size_px, instance_centroids

logger = logging.getLogger(__name__)

__all__ = ["SocialThresholds", "BOUT_COLUMNS", "compute_social_distances", "compute_body_length_px",
           "derive_social_thresholds", "detect_social_bouts", "compute_time_near", "summarize_social"]

BOUT_COLUMNS = ["kind", "individual", "other", "start_frame", "end_frame", "start_s", "end_s",
                "duration_s"]


class SocialThresholds(BaseModel):
    """Thresholds of the social bouts (lengths in the Dataset's unit: mm when ``px_per_mm``
    is known, else px). ``None`` = derived from the body length ``L`` (see each field).

    Attributes
    ----------
    contact_mm
        The nose is within this of the other's body (any keypoint or its spine); 0.25 L.
    near_mm
        Body centres closer than this count as "near"; 1 L.
    approach_speed_mm_s
        Closing speed of the individual toward the other for an approach; 0.5 L/s.
    approach_range_mm
        Approaches start within this body-centre distance; 3 L.
    follow_distance_mm
        Nose to the other's tail base for following; 1.5 L.
    moving_speed_mm_s
        Both animals move faster than this while following; 0.5 L/s.
    min_bout_s
        Shortest bout kept (0.2 s); gaps shorter than ``max_gap_s`` (0.1 s) are bridged.
    smooth_s
        Speeds are averaged over this window (0.2 s).
    """

    model_config = ConfigDict(extra="forbid")

    contact_mm: float | None = Field(None, gt=0)
    near_mm: float | None = Field(None, gt=0)
    approach_speed_mm_s: float | None = Field(None, gt=0)
    approach_range_mm: float | None = Field(None, gt=0)
    follow_distance_mm: float | None = Field(None, gt=0)
    moving_speed_mm_s: float | None = Field(None, gt=0)
    min_bout_s: float = Field(0.2, ge=0)
    max_gap_s: float = Field(0.1, ge=0)
    smooth_s: float = Field(0.2, ge=0)


def _unit_scale(ds: xr.Dataset) -> tuple[float, str]:
    ppm = ds.attrs.get("px_per_mm")
    return (float(ppm), "mm") if ppm else (1.0, "px")


def _points(ds: xr.Dataset, role: str) -> np.ndarray | None:
    """(time, 2, individual) of the role's keypoint, px; None when the file has none."""
    name = find_role(ds, role)  # type: ignore[arg-type]
    return None if name is None else ds["position"].sel(keypoint=name).values[:, :2]


def _centres(ds: xr.Dataset) -> np.ndarray:
    c = _points(ds, "body_centre")
    if c is None or np.isnan(c).all():
        c = instance_centroids(ds["position"].values[:, :2], ds["confidence"].values)
    return c


def _pair_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(time, individual, other) distance from a[..., i] to b[..., j]; NaN on the diagonal."""
    d = np.linalg.norm(a[:, :, :, None] - b[:, :, None, :], axis=1)
    n = d.shape[1]
    d[:, np.arange(n), np.arange(n)] = np.nan
    return d


def _wrap(ds: xr.Dataset, values: np.ndarray, name: str, unit: str, what: str) -> xr.DataArray:
    ind = [str(i) for i in ds.individual.values]
    return xr.DataArray(values, dims=("time", "individual", "other"),
                        coords={"time": ds.time.values, "individual": ind, "other": ind},
                        name=name, attrs={"units": unit, "long_name": what})


def _require_multi(ds: xr.Dataset, where: str) -> None:
    validate_pose(ds, context=where)
    if ds.sizes["individual"] < 2:
        raise ValueError(f"{where}: social features need 2 or more individuals, the Dataset has "
                         f"{ds.sizes['individual']} ({list(map(str, ds.individual.values))}); "
                         "animals stored as keypoint prefixes: pose.tracking.split_prefixed_individuals")


def compute_social_distances(ds: xr.Dataset) -> xr.Dataset:
    """Inter-animal distances (time, individual, other).

    Returns
    -------
    xarray.Dataset
        ``nose_nose`` (the individual's nose to the other's nose), ``nose_tail_base``
        (the individual's nose to the other's tail base; not symmetric) and ``body_body``
        (body centres), in mm when ``attrs["px_per_mm"]`` is set, else px (``units`` attr).
        A variable whose body part the file lacks is left out (logged).
    """
    _require_multi(ds, "compute_social_distances")
    scale, unit = _unit_scale(ds)
    nose, tail = _points(ds, "snout"), _points(ds, "tail_base")
    out = {"body_body": _wrap(ds, _pair_distance(_centres(ds), _centres(ds)) / scale, "body_body",
                              unit, "distance between body centres")}
    if nose is not None:
        out["nose_nose"] = _wrap(ds, _pair_distance(nose, nose) / scale, "nose_nose", unit,
                                 "the individual's nose to the other's nose")
        if tail is not None:
            out["nose_tail_base"] = _wrap(ds, _pair_distance(nose, tail) / scale, "nose_tail_base",
                                          unit, "the individual's nose to the other's tail base")
    missing = {"snout": nose is None, "tail_base": tail is None}
    if any(missing.values()):
        logger.info("social distances: no %s keypoint; its distances are left out",
                    [k for k, v in missing.items() if v])
    return xr.Dataset(out)


def compute_body_length_px(ds: xr.Dataset) -> tuple[float, str]:
    """Median snout-to-tail-base length over all animals and frames (px), with how it was found
    (twice the keypoints' radius of gyration when the file has no snout or tail base)."""
    nose, tail = _points(ds, "snout"), _points(ds, "tail_base")
    if nose is not None and tail is not None:
        d = np.linalg.norm(nose - tail, axis=1)
        if np.isfinite(d).any():
            return float(np.nanmedian(d)), "median snout-to-tail-base length"
    return estimate_body_size_px(ds["position"].values[:, :2]), "2 x radius of gyration (no snout/tail base)"


def derive_social_thresholds(ds: xr.Dataset, thresholds: SocialThresholds | None = None
                             ) -> tuple[SocialThresholds, dict[str, str]]:
    """Fill the unset thresholds from the body length ``L`` of the animals in ``ds``.

    Returns the complete thresholds (in the Dataset's unit, mm or px) and the reason of each;
    both are logged.
    """
    t = thresholds or SocialThresholds()
    scale, unit = _unit_scale(ds)
    body_px, how = compute_body_length_px(ds)
    L = body_px / scale
    rules = {"contact_mm": 0.25, "near_mm": 1.0, "approach_speed_mm_s": 0.5,
             "approach_range_mm": 3.0, "follow_distance_mm": 1.5, "moving_speed_mm_s": 0.5}
    values, reasons = t.model_dump(), {}
    for key, factor in rules.items():
        if values[key] is None:
            values[key] = factor * L
            reasons[key] = f"{factor:g} x body length ({L:.1f} {unit}, {how})"
        else:
            reasons[key] = "given"
    done = SocialThresholds(**values)
    for key in rules:
        logger.info("social threshold %s = %.3g %s%s (%s)", key, values[key], unit,
                    "/s" if key.endswith("_s") else "", reasons[key])
    if unit == "px":
        logger.warning("social thresholds are in px: the Dataset has no px_per_mm")
    return done, reasons


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving mean along axis 0 over ``n`` frames, ignoring NaN."""
    if n <= 1:
        return x
    kernel = np.ones(n)
    ok = np.isfinite(x)
    num = np.apply_along_axis(lambda v: np.convolve(v, kernel, "same"), 0, np.where(ok, x, 0.0))
    den = np.apply_along_axis(lambda v: np.convolve(v, kernel, "same"), 0, ok.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, num / den, np.nan)


def _bouts(mask: np.ndarray, min_frames: int, max_gap: int) -> list[tuple[int, int]]:
    """(start, end inclusive) runs of True, gaps up to ``max_gap`` bridged, short runs dropped."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    runs = list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist(), strict=True))
    merged: list[list[int]] = []
    for s, e in runs:
        if merged and s - merged[-1][1] - 1 <= max_gap:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged if e - s + 1 >= min_frames]


def _spine_distance(p: np.ndarray, spine: list[np.ndarray]) -> np.ndarray:
    """Distance (time,) from points p (time, 2) to the polyline through spine points."""
    best = np.full(p.shape[0], np.inf)
    for a, b in zip(spine[:-1], spine[1:], strict=True):
        ab = b - a
        with np.errstate(invalid="ignore", divide="ignore"):
            u = np.clip(np.sum((p - a) * ab, axis=1) / np.sum(ab * ab, axis=1), 0, 1)
        d = np.linalg.norm(p - (a + u[:, None] * ab), axis=1)
        best = np.fmin(best, d)
    return np.where(np.isfinite(best), best, np.nan)


def detect_social_bouts(ds: xr.Dataset, thresholds: SocialThresholds | None = None) -> pd.DataFrame:
    """Contact, approach and following bouts of every ordered pair (individual -> other).

    - ``contact``: the individual's nose within ``contact_mm`` of the other's body (its
      nearest keypoint or its spine snout - body centre - tail base).
    - ``nose_nose`` / ``nose_anogenital``: the individual's nose within ``contact_mm`` of
      the other's nose / tail base (kinds of contact; a frame can be both).
    - ``approach``: body centres within ``approach_range_mm``, the individual's velocity
      toward the other above ``approach_speed_mm_s``, and the individual faces the other
      (within 60 degrees); ends at contact.
    - ``following``: the individual's nose within ``follow_distance_mm`` of the other's tail
      base, both moving faster than ``moving_speed_mm_s``, headings within 45 degrees, and
      the individual behind the other.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BOUT_COLUMNS` (frames inclusive; times in s), sorted by start.

    Raises
    ------
    PoseValidationError
        Without a frame rate. ValueError with fewer than 2 individuals or no nose keypoint.
    """
    _require_multi(ds, "detect_social_bouts")
    validate_pose(ds, require_fps=True, context="detect_social_bouts")
    t, _ = derive_social_thresholds(ds, thresholds)
    fps = float(ds.attrs["fps"])
    scale, _ = _unit_scale(ds)
    pos = ds["position"].values[:, :2] / scale
    nose = _points(ds, "snout")
    if nose is None:
        raise KeypointRoleError(f"detect_social_bouts: no nose/snout keypoint among "
                                f"{[str(k) for k in ds.keypoint.values]}")
    nose = nose / scale
    tail = _points(ds, "tail_base")
    tail = None if tail is None else tail / scale
    centre = _centres(ds) / scale
    n_s = max(1, int(round(t.smooth_s * fps)))
    vel = _smooth(np.gradient(centre, 1.0 / fps, axis=0), n_s)  # (time, 2, I)
    speed = np.linalg.norm(vel, axis=1)
    head = nose - (tail if tail is not None else centre)
    frames = frame_numbers(ds)
    names = [str(i) for i in ds.individual.values]
    min_f, gap_f = max(1, int(round(t.min_bout_s * fps))), int(round(t.max_gap_s * fps))
    rows: list[dict] = []
    for i in range(len(names)):
        for j in range(len(names)):
            if i == j:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                to_kp = np.nanmin(np.linalg.norm(pos[:, :, :, j] - nose[:, :, i, None], axis=1), axis=1)
            spine = [p for p in (_points(ds, "snout"), _points(ds, "body_centre"), _points(ds, "tail_base"))
                     if p is not None]
            near_body = to_kp
            if len(spine) >= 2:
                near_body = np.fmin(to_kp, _spine_distance(nose[:, :, i], [p[:, :, j] / scale for p in spine]))
            contact = near_body < t.contact_mm
            rel = centre[:, :, j] - centre[:, :, i]
            dist = np.linalg.norm(rel, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                u = rel / dist[:, None]
                closing = np.sum(vel[:, :, i] * u, axis=1)
                hn = head[:, :, i] / np.linalg.norm(head[:, :, i], axis=1)[:, None]
                hj = head[:, :, j] / np.linalg.norm(head[:, :, j], axis=1)[:, None]
                facing = np.sum(hn * u, axis=1) > np.cos(np.deg2rad(60))
                aligned = np.sum(hn * hj, axis=1) > np.cos(np.deg2rad(45))
                behind = np.sum(hj * u, axis=1) > 0
            approach = (dist < t.approach_range_mm) & (closing > t.approach_speed_mm_s) & facing & ~contact
            follow = np.zeros_like(contact)
            if tail is not None:
                to_tail = np.linalg.norm(nose[:, :, i] - tail[:, :, j], axis=1)
                follow = ((to_tail < t.follow_distance_mm) & (speed[:, i] > t.moving_speed_mm_s)
                          & (speed[:, j] > t.moving_speed_mm_s) & aligned & behind)
            nn = np.linalg.norm(nose[:, :, i] - nose[:, :, j], axis=1) < t.contact_mm
            ag = (np.linalg.norm(nose[:, :, i] - tail[:, :, j], axis=1) < t.contact_mm
                  if tail is not None else np.zeros_like(contact))
            for kind, mask in (("contact", contact), ("nose_nose", nn), ("nose_anogenital", ag),
                               ("approach", approach), ("following", follow)):
                for s, e in _bouts(np.nan_to_num(mask).astype(bool), min_f, gap_f):
                    rows.append({"kind": kind, "individual": names[i], "other": names[j],
                                 "start_frame": int(frames[s]), "end_frame": int(frames[e]),
                                 "start_s": frames[s] / fps, "end_s": (frames[e] + 1) / fps,
                                 "duration_s": (frames[e] - frames[s] + 1) / fps})
    out = pd.DataFrame(rows, columns=BOUT_COLUMNS)
    return out.sort_values(["start_frame", "kind", "individual"], kind="stable").reset_index(drop=True)


def compute_time_near(ds: xr.Dataset, near_mm: float | None = None) -> pd.DataFrame:
    """Time each pair spends near each other (body centres closer than ``near_mm``).

    Returns
    -------
    pandas.DataFrame
        ``individual``, ``other``, ``time_near_s``, ``fraction_near`` (of the frames where
        both are tracked), ``n_frames_valid``, ``near_threshold`` and its ``units``.
    """
    _require_multi(ds, "compute_time_near")
    validate_pose(ds, require_fps=True, context="compute_time_near")
    t, _ = derive_social_thresholds(ds, SocialThresholds(near_mm=near_mm))
    d = compute_social_distances(ds)["body_body"]
    _, unit = _unit_scale(ds)
    rows = []
    for a in d.individual.values:
        for b in d.other.values:
            if a == b:
                continue
            v = d.sel(individual=a, other=b).values
            ok = np.isfinite(v)
            near = int(np.sum(v[ok] < t.near_mm))
            rows.append({"individual": str(a), "other": str(b),
                         "time_near_s": near / float(ds.attrs["fps"]),
                         "fraction_near": near / ok.sum() if ok.any() else np.nan,
                         "n_frames_valid": int(ok.sum()), "near_threshold": t.near_mm, "units": unit})
    return pd.DataFrame(rows)


def summarize_social(ds: xr.Dataset, thresholds: SocialThresholds | None = None) -> pd.DataFrame:
    """Per ordered pair: contact time and bouts, approaches, following time, time near and the
    median body-centre distance (one row per individual -> other)."""
    t, _ = derive_social_thresholds(ds, thresholds)
    bouts = detect_social_bouts(ds, t)
    near = compute_time_near(ds, t.near_mm).set_index(["individual", "other"])
    dist = compute_social_distances(ds)["body_body"]
    rows = []
    for (a, b), r in near.iterrows():
        sel = bouts[(bouts.individual == a) & (bouts.other == b)]
        by = {k: sel[sel.kind == k] for k in ("contact", "nose_nose", "nose_anogenital", "approach",
                                              "following")}
        rows.append({"individual": a, "other": b,
                     "contact_time_s": float(by["contact"].duration_s.sum()),
                     "n_contacts": len(by["contact"]),
                     "nose_nose_time_s": float(by["nose_nose"].duration_s.sum()),
                     "n_nose_nose": len(by["nose_nose"]),
                     "nose_anogenital_time_s": float(by["nose_anogenital"].duration_s.sum()),
                     "n_nose_anogenital": len(by["nose_anogenital"]),
                     "n_approaches": len(by["approach"]), "n_following": len(by["following"]),
                     "following_time_s": float(by["following"].duration_s.sum()),
                     "time_near_s": r.time_near_s, "fraction_near": r.fraction_near,
                     f"median_distance_{r.units}": float(np.nanmedian(dist.sel(individual=a, other=b).values))})
    return pd.DataFrame(rows)
