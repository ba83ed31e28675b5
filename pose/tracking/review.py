"""Reviewing and correcting identities: swap-suspect frames and the identity swap.

:func:`detect_swap_suspects` lists the frames a person should look at after tracking, as a
tidy table (one row per event, a run of frames): ``crossing`` (two tracks closer than a
body size), ``jump`` (a track's centroid moves farther in one frame than an animal can),
``low_margin`` (identity confidence below a threshold), ``gap`` (a track reappears after
frames without an instance). :func:`swap_identities` exchanges two individuals from a frame
on, recorded in the history. Both are pure; the dashboard and the CLI call them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field

from pose.atomic import atomic_path
from pose.dataset import append_history, frame_numbers, validate_pose
from pose.tracking.core import estimate_body_size_px, instance_centroids
from pose.tracking.links import true_runs

log = logging.getLogger(__name__)

SUSPECT_COLUMNS = ["kind", "frame", "start_frame", "end_frame", "time_s", "individual", "other",
                   "value", "min_identity_confidence"]


def detect_swap_suspects(
    ds: xr.Dataset,
    *,
    low_margin: float = 0.25,
    crossing_px: float | None = None,
    jump_px: float | None = None,
) -> pd.DataFrame:
    """Frames to review for identity swaps, one row per event.

    Parameters
    ----------
    ds
        Tracked pose Dataset (one individual per track). Its ``identity_confidence``
        variable (from :func:`pose.tracking.track_identities`) is used when present.
    low_margin
        Identity confidence below which frames are ``low_margin`` suspects.
    crossing_px
        Centroid distance under which two tracks cross (default: one body size, printed).
    jump_px
        One-frame centroid displacement counted as a jump (default: half a body size).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUSPECT_COLUMNS`: ``kind``; ``frame`` (the frame to look at: closest
        approach, largest jump, lowest confidence); ``start_frame``/``end_frame`` (inclusive);
        ``time_s`` of ``frame`` (NaN without fps); ``individual``/``other`` (``other`` empty
        unless a crossing); ``value`` (px for crossing / jump / gap length in frames,
        confidence for low_margin); ``min_identity_confidence`` over the event. Sorted by frame.
    """
    validate_pose(ds, context="detect_swap_suspects")
    pos = ds["position"].values[:, :2]
    conf = ds["confidence"].values
    names = [str(i) for i in ds.individual.values]
    frames = frame_numbers(ds)
    fps = ds.attrs.get("fps")
    body = estimate_body_size_px(pos) if np.isfinite(pos).any() else np.nan
    crossing_px = float(crossing_px if crossing_px is not None else body)
    jump_px = float(jump_px if jump_px is not None else 0.5 * body)
    log.info("swap suspects: crossing < %.1f px, jump > %.1f px, identity confidence < %.2f",
             crossing_px, jump_px, low_margin)
    cent = instance_centroids(pos, conf)  # (time, 2, individual)
    margin = (ds["identity_confidence"].values if "identity_confidence" in ds
              else np.full((len(frames), len(names)), np.nan))
    rows: list[dict] = []

    def add(kind: str, a: int, b: int | None, start: int, stop: int, peak: int, value: float) -> None:
        m = margin[start:stop, a] if b is None else margin[start:stop][:, [a, b]]
        m = m[np.isfinite(m)]
        rows.append({
            "kind": kind, "frame": int(frames[peak]), "start_frame": int(frames[start]),
            "end_frame": int(frames[stop - 1]),
            "time_s": float(frames[peak] / fps) if fps else np.nan,
            "individual": names[a], "other": "" if b is None else names[b], "value": float(value),
            "min_identity_confidence": float(m.min()) if m.size else np.nan,
        })

    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            d = np.linalg.norm(cent[:, :, a] - cent[:, :, b], axis=1)
            for s, e in true_runs(np.nan_to_num(d, nan=np.inf) < crossing_px):
                peak = s + int(np.argmin(d[s:e]))
                add("crossing", a, b, s, e, peak, d[peak])
        c = cent[:, :, a]
        seen = np.flatnonzero(np.isfinite(c).all(axis=1))
        if seen.size > 1:
            step = np.linalg.norm(np.diff(c[seen], axis=0), axis=1)
            gap = np.diff(seen)
            for j in np.flatnonzero((gap == 1) & (step > jump_px)):
                add("jump", a, None, seen[j], seen[j + 1] + 1, seen[j + 1], step[j])
            for j in np.flatnonzero(gap > 1):
                add("gap", a, None, seen[j] + 1, seen[j + 1] + 1, seen[j + 1], gap[j] - 1)
        for s, e in true_runs(np.nan_to_num(margin[:, a], nan=1.0) < low_margin):
            peak = s + int(np.nanargmin(margin[s:e, a]))
            add("low_margin", a, None, s, e, peak, margin[peak, a])
    out = pd.DataFrame(rows, columns=SUSPECT_COLUMNS)
    return out.sort_values(["frame", "kind"], kind="stable").reset_index(drop=True)


class IdentityLimits(BaseModel):
    """Limits past which a tracked session's identities are called unreliable.

    Attributes
    ----------
    low_margin
        Identity confidence under which a frame is a ``low_margin`` suspect.
    max_low_confidence_frames_pct
        Largest share of frames (%) in which some track's identity confidence is under
        ``low_margin``.
    max_low_margin_events_per_min
        Largest number of ``low_margin`` suspect events per minute (each one a possible swap).

    Notes
    -----
    On the virtual mice (bench/tracking_identity.py) sessions that keep their identities
    (<= 1 switch per 10 min) have no low-margin event per minute and no low-confidence
    frame; sessions with tens of switches have 8-140 events per minute.
    """

    model_config = ConfigDict(extra="forbid")

    low_margin: float = Field(0.25, ge=0, le=1)
    max_low_confidence_frames_pct: float = Field(1.0, ge=0, le=100)
    max_low_margin_events_per_min: float = Field(1.0, ge=0)


def summarize_identity_quality(ds: xr.Dataset, suspects: pd.DataFrame | None = None,
                               limits: IdentityLimits | None = None) -> dict[str, float | str]:
    """How far a tracked session's identities can be trusted: numbers and a verdict.

    Parameters
    ----------
    ds
        Tracked pose Dataset with ``identity_confidence`` (from
        :func:`pose.tracking.track_identities`, kept by NetCDF files).
    suspects
        Its :func:`detect_swap_suspects` table (computed when not given).
    limits
        :class:`IdentityLimits` (defaults).

    Returns
    -------
    dict
        ``median_identity_confidence``, ``low_confidence_frames_pct``,
        ``low_margin_events_per_min``, ``swap_suspects`` (rows of the table),
        ``identity_quality`` (``ok``, ``unreliable`` or ``unknown`` without
        ``identity_confidence``) and ``identity_reason``.
    """
    limits = limits or IdentityLimits()
    if "identity_confidence" not in ds:
        return {"median_identity_confidence": np.nan, "low_confidence_frames_pct": np.nan,
                "low_margin_events_per_min": np.nan, "swap_suspects": np.nan,
                "identity_quality": "unknown",
                "identity_reason": "no identity_confidence: not tracked by pose.tracking (or saved "
                                   "to a format that drops it; use .nc)"}
    if suspects is None:
        suspects = detect_swap_suspects(ds, low_margin=limits.low_margin)
    ic = ds["identity_confidence"].values
    fps = ds.attrs.get("fps") or 30.0
    minutes = ds.sizes["time"] / fps / 60.0
    seen = np.isfinite(ic).any(axis=1)
    low = (np.nan_to_num(ic, nan=1.0) < limits.low_margin).any(axis=1)
    low_pct = float(100.0 * low[seen].mean()) if seen.any() else np.nan
    events = float((suspects["kind"] == "low_margin").sum() / minutes) if minutes > 0 else np.nan
    bad = []
    if low_pct > limits.max_low_confidence_frames_pct:
        bad.append(f"{low_pct:.2f} % of frames have an identity confidence < {limits.low_margin:g} "
                   f"(limit {limits.max_low_confidence_frames_pct:g} %)")
    if events > limits.max_low_margin_events_per_min:
        bad.append(f"{events:.1f} low-margin (possible swap) events per minute "
                   f"(limit {limits.max_low_margin_events_per_min:g})")
    finite = ic[np.isfinite(ic)]
    return {"median_identity_confidence": float(np.median(finite)) if finite.size else np.nan,
            "low_confidence_frames_pct": low_pct, "low_margin_events_per_min": events,
            "swap_suspects": int(len(suspects)),
            "identity_quality": "unreliable" if bad else "ok",
            "identity_reason": "; ".join(bad) if bad else "within the limits"}


def write_suspects(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the suspects table as csv (atomically). Returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    return path


def swap_identities(ds: xr.Dataset, a: str, b: str, from_frame: int) -> xr.Dataset:
    """Exchange individuals ``a`` and ``b`` in every row from frame ``from_frame`` on.

    Every variable with an ``individual`` dimension (``position``, ``confidence``,
    ``identity_confidence``...) is swapped; the correction is appended to the history
    (op ``swap_identities``).

    Parameters
    ----------
    ds
        Pose Dataset.
    a, b
        Names of two different individuals.
    from_frame
        First frame number (not row index) that is swapped.

    Returns
    -------
    xarray.Dataset
        A new Dataset; ``ds`` is not modified.

    Raises
    ------
    ValueError
        For an unknown or repeated individual, or a frame outside the Dataset.
    """
    validate_pose(ds, context="swap_identities")
    names = [str(i) for i in ds.individual.values]
    for who in (a, b):
        if who not in names:
            raise ValueError(f"swap_identities: no individual {who!r} (has: {names})")
    if a == b:
        raise ValueError(f"swap_identities: --ids must name two different individuals, got {a!r} twice")
    frames = frame_numbers(ds)
    if not frames.min() <= from_frame <= frames.max():
        raise ValueError(f"swap_identities: frame {from_frame} is outside the Dataset's frames "
                         f"{frames.min()}..{frames.max()}")
    rows = frames >= from_frame
    ia, ib = names.index(a), names.index(b)
    out = ds.copy(deep=True)
    for var in out.data_vars:
        da = out[var]
        if "individual" not in da.dims or "time" not in da.dims:
            continue
        vals = np.moveaxis(da.values, (da.dims.index("time"), da.dims.index("individual")), (0, 1))
        tmp = vals[rows, ia].copy()
        vals[rows, ia] = vals[rows, ib]
        vals[rows, ib] = tmp
    return append_history(out, "swap_identities", {"a": a, "b": b, "from_frame": int(from_frame),
                                                   "n_rows": int(rows.sum())})
