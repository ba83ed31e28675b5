"""Block-bootstrap confidence intervals for per-frame agreement (kappa, F1).

:func:`bootstrap_agreement` is the one function the CLI, the validation report, the demo and
the dashboard call for "a figure with its uncertainty".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)


def _pair(a: Sequence, b: Sequence, *, names: tuple[str, str] = ("a", "b")) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(getattr(a, "values", a)).ravel()
    b = np.asarray(getattr(b, "values", b)).ravel()
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} has {a.size} frames but {names[1]} has {b.size}: align them first")
    if a.size == 0:
        raise ValueError("no frames to compare")
    return a, b


def _kappa_from_counts(m: np.ndarray) -> np.ndarray:
    """Cohen's kappa from confusion counts ``(..., L, L)`` (NaN where undefined)."""
    n = m.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        po = np.trace(m, axis1=-2, axis2=-1) / n
        pe = np.sum(m.sum(axis=-1) * m.sum(axis=-2), axis=-1) / n**2
        return np.where(pe < 1, (po - pe) / (1 - pe), np.nan)


def _f1_from_counts(m: np.ndarray) -> np.ndarray:
    """F1 of the positive (last) class from binary confusion counts ``(..., 2, 2)``."""
    tp, fp, fn = m[..., 1, 1], m[..., 0, 1], m[..., 1, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)


def bootstrap_agreement(
    true: Sequence,
    pred: Sequence,
    *,
    fps: float,
    block_s: float = 10.0,
    n_boot: int = 2000,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> dict[str, float]:
    """Cohen's kappa and F1 with block-bootstrap confidence intervals.

    Parameters
    ----------
    true, pred
        Per-frame labels of the same frames, shape ``(n_frames,)`` (reference first).
        Binary for F1 (any labels for kappa: F1 is then NaN).
    fps
        Frame rate (to convert ``block_s`` to frames).
    block_s
        Length of the consecutive time blocks that are resampled (default 10 s: longer
        than a typical bout, so the serial dependence of frames stays inside a block).
    n_boot, confidence, random_state
        Bootstrap replicates, CI level, seed (reproducible by default).

    Returns
    -------
    dict
        ``kappa``, ``kappa_ci_low``, ``kappa_ci_high``, ``f1``, ``f1_ci_low``,
        ``f1_ci_high``, ``n_frames``, ``n_blocks``, ``block_s``, ``n_boot``, ``confidence``.
        Point estimates are on all frames (equal :func:`cohen_kappa` and
        :func:`frame_scores`); the CI is the percentile interval of the statistic over
        ``n_boot`` resamplings of whole blocks with replacement (Künsch 1989 moving-block
        bootstrap with non-overlapping blocks; the last partial block is a block too).

    Notes
    -----
    Frames of one video are not independent: resampling frames would give intervals far too
    narrow. With fewer than 10 blocks the interval is unreliable (logged).
    """
    a, b = _pair(true, pred, names=("true", "pred"))
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    labels, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    n_lab = max(2, labels.size)
    ca, cb = codes[: a.size], codes[a.size:]
    binary = labels.size <= 2 and set(np.asarray(labels).tolist()) <= {0, 1}
    if binary:  # code 1 must be the positive class even when only one label occurs
        ca, cb = a.astype(int), b.astype(int)
    size = max(1, int(round(block_s * fps)))
    block = np.arange(a.size) // size
    n_blocks = int(block[-1]) + 1
    cells = block * n_lab * n_lab + ca * n_lab + cb
    per_block = np.bincount(cells, minlength=n_blocks * n_lab * n_lab).reshape(n_blocks, n_lab * n_lab)
    rng = np.random.default_rng(random_state)
    draws = rng.integers(0, n_blocks, size=(n_boot, n_blocks))
    weights = np.stack([np.bincount(d, minlength=n_blocks) for d in draws]).astype(float)
    boot = (weights @ per_block).reshape(n_boot, n_lab, n_lab)
    full = per_block.sum(axis=0).reshape(n_lab, n_lab).astype(float)
    alpha = (1 - confidence) / 2
    out: dict[str, float] = {"n_frames": int(a.size), "n_blocks": n_blocks, "block_s": block_s,
                             "n_boot": n_boot, "confidence": confidence}
    stats_ = {"kappa": _kappa_from_counts}
    if binary:
        stats_["f1"] = _f1_from_counts
    for name, fn in stats_.items():
        vals = fn(boot)
        vals = vals[np.isfinite(vals)]
        out[name] = float(fn(full))
        lo, hi = (np.quantile(vals, [alpha, 1 - alpha]) if vals.size else (np.nan, np.nan))
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = float(lo), float(hi)
    if not binary:
        out["f1"] = out["f1_ci_low"] = out["f1_ci_high"] = float("nan")
    if n_blocks < 10:
        logger.warning("bootstrap over %d blocks of %g s: the interval is unreliable "
                       "(use a shorter block_s or more data)", n_blocks, block_s)
    return out


def format_ci(value: float, low: float, high: float, digits: int = 2) -> str:
    """``"0.91 [0.87, 0.94]"``: a figure with its interval, for tables and logs."""
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
