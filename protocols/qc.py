"""Tracking quality per animal: a flag (ok / warn / fail) with its reasons, and exclusion.

:func:`tracking_qc` measures, on the pose as loaded (before the protocol's filters):

- ``low_confidence_pct``: share of (frame, required keypoint) samples below the confidence
  cut-off or missing;
- ``jumps_per_min``: frame-to-frame moves of the centre keypoint faster than a jump speed
  (the protocol's ``jumps`` filter, else ``max_body_lengths_s`` body lengths per second,
  the body length being the median snout-to-tail-base distance);
- ``interpolated_pct``: share of frames whose centre position was filled in by the
  protocol's filters (missing or low-confidence before, finite after).

Each is compared with the protocol's :class:`QCRules` (``qc:`` in the YAML): above its
maximum the animal is ``fail``, above ``warn_fraction`` of it ``warn``. The coverage flag of
:func:`protocols.endpoints.quality` (``quality_flag`` other than ``ok``: the centre never or
too rarely tracked) makes it ``fail``; other problems found on the way (a truncated video, a
pose file whose frame count is not the video's) add a ``warn``. Animals whose flag is in ``QCRules.exclude`` are left out of the group statistics;
the endpoint table keeps them with ``qc_flag``/``qc_reasons``, ``exclusions.csv`` and the
report list them with the reasons.

- ``swap_suspects_per_min`` (files with several individuals): runs of frames where the
  analysed individual (the first) is in a swap-suspect event of
  :func:`pose.tracking.review.detect_swap_suspects` (a crossing with another track, or
  low identity confidence) while its identity confidence is below ``low_identity_confidence``;
  a file without identity confidence counts every crossing, and can only warn.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field

Flag = Literal["ok", "warn", "fail"]
_ORDER = {"ok": 0, "warn": 1, "fail": 2}


class QCRules(BaseModel):
    """Tracking-quality limits and what to exclude from the statistics (``qc:`` in a protocol).

    A measure above its ``max_`` value fails the animal; above ``warn_fraction`` of it, warns.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_low_confidence_pct: float = Field(20.0, gt=0, le=100, description="% samples below the cut-off")
    max_jumps_per_min: float = Field(10.0, gt=0, description="centre jumps per minute")
    max_interpolated_pct: float = Field(20.0, gt=0, le=100, description="% frames filled in by the filters")
    max_swap_suspects_per_min: float = Field(2.0, gt=0, description="identity-swap suspects per minute")
    low_identity_confidence: float = Field(0.25, ge=0, le=1, description="identity confidence of a suspect")
    warn_fraction: float = Field(0.5, gt=0, le=1)
    p_cutoff: float | None = Field(None, ge=0, le=1, description="None: the protocol's confidence filter, else 0.5")
    max_body_lengths_s: float = Field(
        15.0, gt=0, description="jump speed in body lengths per second when the protocol has no jumps filter")
    exclude: list[Literal["warn", "fail"]] = Field(
        default_factory=lambda: ["fail"], description="flags left out of the group statistics")
    video: Literal["off", "flag", "refuse"] = Field(
        "flag", description="video QC gate (pose.qc.check_video) of a cohort row's video: off; flag "
        "(a failing video fails the animal's qc_flag, its numbers are still computed); refuse "
        "(a failing video is not analysed)")


def worst(flags: list[str]) -> Flag:
    """The worst of several flags (``ok`` < ``warn`` < ``fail``)."""
    return max(flags, key=lambda f: _ORDER[f], default="ok")  # type: ignore[return-value]


def _centre(ds: xr.Dataset, centre: str) -> np.ndarray:
    return ds["position"].sel(keypoint=centre).isel(individual=0).transpose("time", "space").values[:, :2]


def _body_length_px(ds: xr.Dataset) -> float:
    kps = [str(k) for k in ds.coords["keypoint"].values]
    if "snout" not in kps or "tail_base" not in kps:
        return float("nan")
    one = ds["position"].isel(individual=0)
    d = np.linalg.norm((one.sel(keypoint="snout") - one.sel(keypoint="tail_base")).transpose("time", "space").values[:, :2],
                       axis=1)
    return float(np.nanmedian(d)) if np.isfinite(d).any() else float("nan")


def tracking_qc(
    raw: xr.Dataset,
    cleaned: xr.Dataset,
    *,
    required: list[str],
    centre: str,
    rules: QCRules,
    p_cutoff: float | None = None,
    jump_speed_px_s: float | None = None,
    extra_warnings: list[str] | None = None,
    extra_failures: list[str] | None = None,
    coverage_flag: str | None = None,
) -> dict[str, object]:
    """Tracking-quality measures and flag of one animal.

    Parameters
    ----------
    raw
        The pose as loaded, keypoints renamed to the protocol's names (``fps`` set).
    cleaned
        The same pose after the protocol's filters.
    required, centre
        The protocol's required keypoints and its centre keypoint.
    rules
        Limits.
    p_cutoff, jump_speed_px_s
        From the protocol's filters (``None``: ``rules.p_cutoff`` or 0.5; body lengths).
    extra_warnings
        Problems found elsewhere (truncated video...), each making the flag at least ``warn``.
    extra_failures
        Problems found elsewhere that fail the animal (a video failing the video QC gate).
    coverage_flag
        ``quality_flag`` of the endpoints (:func:`protocols.endpoints.quality`); anything but
        ``ok`` fails the animal.

    Returns
    -------
    dict
        ``low_confidence_pct, jumps_per_min, interpolated_pct, jump_speed_px_s``
        (floats), ``qc_flag`` (ok / warn / fail) and ``qc_reasons`` (``"; "``-joined, ``""``
        when ok).
    """
    fps = float(raw.attrs["fps"])
    cut = rules.p_cutoff if rules.p_cutoff is not None else (0.5 if p_cutoff is None else p_cutoff)
    one = raw.isel(individual=0).sel(keypoint=required)
    pos_ok = np.isfinite(one["position"].transpose("time", "keypoint", "space").values[..., :2]).all(axis=-1)
    conf = one["confidence"].transpose("time", "keypoint").values
    good = pos_ok & ~(np.nan_to_num(conf, nan=1.0) < cut)  # human labels have NaN confidence
    low_pct = float(100.0 * (1.0 - good.mean())) if good.size else 100.0

    c_raw = _centre(raw, centre)
    c_conf = raw["confidence"].sel(keypoint=centre).isel(individual=0).values
    raw_ok = np.isfinite(c_raw).all(axis=1) & ~(np.nan_to_num(c_conf, nan=1.0) < cut)
    c_clean = _centre(cleaned, centre)
    clean_ok = np.isfinite(c_clean).all(axis=1)
    n = max(len(clean_ok), 1)
    interp_pct = float(100.0 * (clean_ok & ~raw_ok[: len(clean_ok)]).sum() / n)

    if jump_speed_px_s is None:
        jump_speed_px_s = rules.max_body_lengths_s * _body_length_px(raw)
    xy = np.where(raw_ok[:, None], c_raw, np.nan)
    speed = np.linalg.norm(np.diff(xy, axis=0), axis=1) * fps
    minutes = len(xy) / fps / 60.0
    jumps = float(np.sum(speed > jump_speed_px_s) / minutes) if np.isfinite(jump_speed_px_s) and minutes > 0 else float("nan")

    swaps = _swap_suspects_per_min(raw, rules.low_identity_confidence, minutes)
    flags: list[str] = []
    reasons: list[str] = []
    if np.isfinite(swaps) and "identity_confidence" not in raw and swaps > rules.max_swap_suspects_per_min:
        # untracked identities: each crossing may be a swap, but none is known to be one
        flags.append("warn")
        reasons.append(f"{swaps:.1f} crossings/min with another animal and no identity confidence to rule out "
                       "swaps (warn)")
        swaps_checked = float("nan")
    else:
        swaps_checked = swaps
    for name, value, limit, unit in (
        ("identity-swap suspects", swaps_checked, rules.max_swap_suspects_per_min, "/min"),
        ("low confidence", low_pct, rules.max_low_confidence_pct, " %"),
        ("jumps", jumps, rules.max_jumps_per_min, "/min"),
        ("interpolated", interp_pct, rules.max_interpolated_pct, " %"),
    ):
        if not np.isfinite(value):
            continue
        if value > limit:
            flags.append("fail")
            reasons.append(f"{name} {value:.1f}{unit} > {limit:g}{unit}")
        elif value > rules.warn_fraction * limit:
            flags.append("warn")
            reasons.append(f"{name} {value:.1f}{unit} > {rules.warn_fraction * limit:g}{unit} (warn)")
    if coverage_flag not in (None, "ok"):
        flags.append("fail")
        reasons.append(f"coverage: {coverage_flag}")
    for w in extra_warnings or []:
        flags.append("warn")
        reasons.append(w)
    for f in extra_failures or []:
        flags.append("fail")
        reasons.append(f)
    return {"low_confidence_pct": low_pct, "jumps_per_min": jumps, "interpolated_pct": interp_pct,
            "jump_speed_px_s": float(jump_speed_px_s), "swap_suspects_per_min": swaps,
            "qc_flag": worst(flags), "qc_reasons": "; ".join(reasons)}


def _swap_suspects_per_min(raw: xr.Dataset, low_identity_confidence: float, minutes: float) -> float:
    """Identity-swap suspect runs of the first individual per minute (NaN for one individual)."""
    if raw.sizes.get("individual", 1) < 2 or minutes <= 0:
        return float("nan")
    from pose.dataset import frame_numbers
    from pose.tracking.review import detect_swap_suspects

    sus = detect_swap_suspects(raw, low_margin=low_identity_confidence)
    first = str(raw.individual.values[0])
    numbers = frame_numbers(raw)
    mask = np.zeros(len(numbers), bool)
    for r in sus[sus.kind.isin(["crossing", "low_margin"]) & ((sus.individual == first) | (sus.other == first))].itertuples():
        mask |= (numbers >= r.start_frame) & (numbers <= r.end_frame)
    if "identity_confidence" in raw:
        conf = raw["identity_confidence"].isel(individual=0).values
        mask &= np.nan_to_num(conf, nan=1.0) < low_identity_confidence
    runs = int(np.sum(np.diff(np.concatenate(([0], mask.astype(np.int8)))) == 1))
    return float(runs / minutes)


def excluded_mask(table: pd.DataFrame, rules: QCRules) -> pd.Series:
    """True for the rows (animals) whose ``qc_flag`` is one the rules exclude."""
    if "qc_flag" not in table:
        return pd.Series(False, index=table.index)
    return table["qc_flag"].astype(str).isin(rules.exclude)


def exclusion_table(table: pd.DataFrame, rules: QCRules) -> pd.DataFrame:
    """``subject_id, session, group, qc_flag, qc_reasons`` of the excluded animals."""
    cols = ["subject_id", "session", "group", "qc_flag", "qc_reasons"]
    if table.empty or "qc_flag" not in table:
        return pd.DataFrame(columns=cols)
    return table.loc[excluded_mask(table, rules), [c for c in cols if c in table]].reset_index(drop=True)
