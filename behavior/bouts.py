"""Bouts: runs of consecutive frames in a behaviour, and their post-processing.

A *bout* is a maximal run of frames where a binary behaviour vector is true. Bouts are
tidy tables with one row per bout: ``start_frame`` (first frame in the bout),
``end_frame`` (one past the last frame, Python-slice convention), ``n_frames`` and, when
the frame rate is known, ``start_s``, ``end_s``, ``duration_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

BOUT_COLUMNS = ["start_frame", "end_frame", "n_frames"]


def as_bool_vector(vector: Sequence | np.ndarray, *, name: str = "vector") -> np.ndarray:
    """Return ``vector`` as a 1-D boolean array; NaN is refused.

    Parameters
    ----------
    vector
        0/1, boolean or float values of one behaviour per frame.
    name
        Used in error messages.
    """
    arr = np.asarray(getattr(vector, "values", vector))
    if arr.ndim != 1:
        arr = np.squeeze(arr)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per frame), got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    arr = arr.astype(float)
    if np.isnan(arr).any():
        first = int(np.flatnonzero(np.isnan(arr))[0])
        raise ValueError(f"{name} has NaN (first at frame {first}); fill or drop it first")
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must be binary 0/1, found {arr[first]!r} at frame {first}"
        )
    return arr.astype(bool)


def bouts_from_vector(vector: Sequence | np.ndarray, *, fps: float | None = None) -> pd.DataFrame:
    """Turn a per-frame binary vector into a table of bouts.

    Parameters
    ----------
    vector
        Shape ``(n_frames,)``, truthy where the behaviour occurs.
    fps
        Frames per second; adds ``start_s``, ``end_s`` and ``duration_s`` columns.

    Returns
    -------
    pandas.DataFrame
        One row per bout: ``start_frame``, ``end_frame`` (exclusive), ``n_frames``
        (+ seconds columns when ``fps`` is given).

    Examples
    --------
    >>> bouts_from_vector([0, 1, 1, 0, 1])[["start_frame", "end_frame"]].values.tolist()
    [[1, 3], [4, 5]]
    """
    v = as_bool_vector(vector)
    padded = np.concatenate([[False], v, [False]]).astype(np.int8)
    d = np.diff(padded)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    out = pd.DataFrame({"start_frame": starts, "end_frame": ends, "n_frames": ends - starts})
    if fps is not None:
        out["start_s"] = starts / fps
        out["end_s"] = ends / fps
        out["duration_s"] = (ends - starts) / fps
    return out


def vector_from_bouts(
    bouts: pd.DataFrame, n_frames: int, *, start_col: str = "start_frame", end_col: str = "end_frame"
) -> np.ndarray:
    """Inverse of :func:`bouts_from_vector`: a boolean vector of length ``n_frames``.

    ``end_col`` is exclusive. Bouts reaching past ``n_frames`` are clipped.
    """
    v = np.zeros(int(n_frames), dtype=bool)
    for s, e in zip(bouts[start_col].to_numpy(), bouts[end_col].to_numpy(), strict=True):
        s, e = max(int(s), 0), min(int(e), n_frames)
        if e > s:
            v[s:e] = True
    return v


def merge_gaps(vector: Sequence | np.ndarray, *, max_gap_frames: int) -> np.ndarray:
    """Fill gaps of at most ``max_gap_frames`` false frames between two true runs."""
    v = as_bool_vector(vector).copy()
    if max_gap_frames <= 0:
        return v
    gaps = bouts_from_vector(~v)
    for s, e in zip(gaps.start_frame, gaps.end_frame, strict=True):
        interior = s > 0 and e < v.size
        if interior and e - s <= max_gap_frames:
            v[s:e] = True
    return v


def drop_short_bouts(vector: Sequence | np.ndarray, *, min_frames: int) -> np.ndarray:
    """Set bouts shorter than ``min_frames`` to false."""
    v = as_bool_vector(vector).copy()
    if min_frames <= 1:
        return v
    b = bouts_from_vector(v)
    for s, e in zip(b.start_frame, b.end_frame, strict=True):
        if e - s < min_frames:
            v[s:e] = False
    return v


def filter_bouts(
    vector: Sequence | np.ndarray,
    *,
    fps: float,
    min_bout_s: float = 0.0,
    merge_gap_s: float = 0.0,
) -> np.ndarray:
    """Post-process a binary behaviour vector: merge short gaps, then drop short bouts.

    Parameters
    ----------
    vector
        Shape ``(n_frames,)`` binary.
    fps
        Frames per second.
    min_bout_s
        Bouts shorter than this (after merging) are removed.
    merge_gap_s
        Gaps of at most this many seconds between two bouts are filled.

    Returns
    -------
    numpy.ndarray
        Boolean, shape ``(n_frames,)``.

    Notes
    -----
    Gaps are merged first, so two 0.6 s bouts separated by a 0.1 s flicker count as one
    1.3 s bout and survive a 1 s minimum. Durations are rounded to whole frames
    (``round(seconds * fps)``).
    """
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    if min_bout_s < 0 or merge_gap_s < 0:
        raise ValueError("min_bout_s and merge_gap_s must be >= 0")
    v = merge_gaps(vector, max_gap_frames=int(round(merge_gap_s * fps)))
    return drop_short_bouts(v, min_frames=int(round(min_bout_s * fps)))
