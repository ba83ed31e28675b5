"""Agreement statistics between raters, or between a rater and an algorithm.

Frame-level: percent agreement, Cohen's kappa (unweighted, linear, quadratic), Fleiss'
kappa, precision / recall / F1. Bout-level: precision / recall / F1 with bouts matched by
temporal overlap (IoU) or onset tolerance. Continuous measures: intraclass correlation in
the six Shrout & Fleiss (1979) / McGraw & Wong (1996) forms with F test and 95 % CI, and
Bland-Altman bias with limits of agreement. Uncertainty of kappa and F1: block-bootstrap
confidence intervals (:func:`bootstrap_agreement`, in :mod:`behavior.bootstrap`).

Every number here is checked against scikit-learn, statsmodels and pingouin in the tests.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from behavior.bootstrap import _pair, bootstrap_agreement, format_ci
from behavior.bouts import as_bool_vector, bouts_from_vector

__all__ = [
    "bland_altman", "bootstrap_agreement", "bout_f1", "bout_scores", "cohen_kappa", "confusion_matrix",
    "fleiss_kappa", "format_ci", "frame_scores", "icc", "match_bouts", "pairwise_agreement",
    "percent_agreement",
]

logger = logging.getLogger(__name__)

Weights = Literal["linear", "quadratic"] | None


def percent_agreement(a: Sequence, b: Sequence) -> float:
    """Fraction of frames (0-1) where the two label vectors are equal."""
    a, b = _pair(a, b)
    return float(np.mean(a == b))


def confusion_matrix(a: Sequence, b: Sequence, labels: Sequence | None = None) -> pd.DataFrame:
    """Counts of (``a`` label, ``b`` label) pairs; rows are ``a``, columns ``b``."""
    a, b = _pair(a, b)
    labels = np.unique(np.concatenate([a, b])) if labels is None else np.asarray(labels)
    index = {lab: i for i, lab in enumerate(labels.tolist())}
    m = np.zeros((labels.size, labels.size), dtype=np.int64)
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        if x in index and y in index:
            m[index[x], index[y]] += 1
    return pd.DataFrame(m, index=pd.Index(labels, name="a"), columns=pd.Index(labels, name="b"))


def cohen_kappa(a: Sequence, b: Sequence, *, weights: Weights = None, labels: Sequence | None = None) -> float:
    """Cohen's kappa between two raters' per-frame labels.

    Parameters
    ----------
    a, b
        Shape ``(n_frames,)`` labels (any hashable, e.g. 0/1 or behaviour names).
    weights
        None (nominal), "linear" or "quadratic" (ordinal labels; disagreement weight
        ``|i-j|`` or ``(i-j)**2`` over the sorted label order).
    labels
        Label order for weighted kappa (default: sorted union).

    Returns
    -------
    float
        kappa = 1 - sum(w * observed) / sum(w * expected); 1 is perfect agreement,
        0 chance. NaN when expected disagreement is zero (both raters constant and equal).

    Notes
    -----
    Equals :func:`sklearn.metrics.cohen_kappa_score` (same weights).
    """
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    m = confusion_matrix(a, b, labels).to_numpy().astype(float)
    n_classes = m.shape[0]
    expected = np.outer(m.sum(axis=1), m.sum(axis=0)) / m.sum()
    idx = np.arange(n_classes)
    if weights is None:
        w = 1.0 - np.eye(n_classes)
    elif weights == "linear":
        w = np.abs(idx[:, None] - idx[None, :]).astype(float)
    else:
        w = (idx[:, None] - idx[None, :]).astype(float) ** 2
    denom = float(np.sum(w * expected))
    if denom == 0:
        return float("nan")
    return float(1.0 - np.sum(w * m) / denom)


def fleiss_kappa(ratings: np.ndarray | pd.DataFrame) -> float:
    """Fleiss' kappa for several raters labelling the same items.

    Parameters
    ----------
    ratings
        Shape ``(n_items, n_raters)``: each rater's label for each item (frame).

    Returns
    -------
    float
        (P_bar - P_e) / (1 - P_e) (Fleiss 1971). Equals
        ``statsmodels.stats.inter_rater.fleiss_kappa(aggregate_raters(ratings)[0])``.
    """
    r = np.asarray(ratings)
    if r.ndim != 2 or r.shape[1] < 2:
        raise ValueError(f"ratings must be (n_items, n_raters>=2), got shape {r.shape}")
    _, codes = np.unique(r, return_inverse=True)
    codes = codes.reshape(r.shape)
    n_cat = codes.max() + 1
    counts = np.stack([(codes == c).sum(axis=1) for c in range(n_cat)], axis=1).astype(float)
    n_items, n_raters = r.shape
    p_j = counts.sum(axis=0) / (n_items * n_raters)
    p_i = (np.sum(counts**2, axis=1) - n_raters) / (n_raters * (n_raters - 1))
    p_bar = p_i.mean()
    p_e = np.sum(p_j**2)
    if p_e == 1:
        return float("nan")
    return float((p_bar - p_e) / (1 - p_e))


def frame_scores(true: Sequence, pred: Sequence) -> dict[str, float]:
    """Frame-level precision, recall, F1, kappa and percent agreement of a binary behaviour.

    ``true`` is the reference (e.g. the human), ``pred`` the rater under test. Precision or
    recall with an empty denominator is NaN (F1 then 0 when the other is defined).
    """
    t = as_bool_vector(true, name="true")
    p = as_bool_vector(pred, name="pred")
    _pair(t, p, names=("true", "pred"))
    tp = int(np.sum(t & p))
    fp = int(np.sum(~t & p))
    fn = int(np.sum(t & ~p))
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "kappa": cohen_kappa(t, p),
        "percent_agreement": percent_agreement(t, p),
        "n_frames": int(t.size),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def match_bouts(
    true: Sequence,
    pred: Sequence,
    *,
    method: Literal["iou", "onset"] = "iou",
    min_iou: float = 0.5,
    onset_tolerance_frames: int = 0,
) -> pd.DataFrame:
    """One-to-one matching of predicted bouts to reference bouts.

    Parameters
    ----------
    true, pred
        Binary per-frame vectors of the same length.
    method
        "iou": a pair may match when their temporal intersection-over-union is
        ``>= min_iou``. "onset": when their onsets differ by at most
        ``onset_tolerance_frames`` frames and they overlap or touch within that tolerance.
    min_iou, onset_tolerance_frames
        Thresholds for the two methods.

    Returns
    -------
    pandas.DataFrame
        One row per matched pair: ``true_index``, ``pred_index``, ``iou``, ``onset_diff``
        (pred onset minus true onset, frames).

    Notes
    -----
    Greedy matching: candidate pairs are sorted by IoU (descending; "onset": by absolute
    onset difference, ascending) and accepted when neither bout is matched yet. For
    interval data this equals the optimal assignment in all but contrived cases.
    """
    if method not in ("iou", "onset"):
        raise ValueError(f"method must be 'iou' or 'onset', got {method!r}")
    bt = bouts_from_vector(true)
    bp = bouts_from_vector(pred)
    rows = []
    for i, (s1, e1) in enumerate(zip(bt.start_frame, bt.end_frame, strict=True)):
        for j, (s2, e2) in enumerate(zip(bp.start_frame, bp.end_frame, strict=True)):
            inter = max(0, min(e1, e2) - max(s1, s2))
            union = max(e1, e2) - min(s1, s2) if inter else (e1 - s1) + (e2 - s2)
            iou = inter / union
            onset = int(s2 - s1)
            if method == "iou":
                ok = iou >= min_iou and inter > 0
                key = -iou
            else:
                ok = abs(onset) <= onset_tolerance_frames
                key = abs(onset)
            if ok:
                rows.append((key, i, j, iou, onset))
    rows.sort()
    used_t: set[int] = set()
    used_p: set[int] = set()
    out = []
    for _, i, j, iou, onset in rows:
        if i in used_t or j in used_p:
            continue
        used_t.add(i)
        used_p.add(j)
        out.append({"true_index": i, "pred_index": j, "iou": iou, "onset_diff": onset})
    return pd.DataFrame(out, columns=["true_index", "pred_index", "iou", "onset_diff"])


def bout_scores(
    true: Sequence,
    pred: Sequence,
    *,
    method: Literal["iou", "onset"] = "iou",
    min_iou: float = 0.5,
    onset_tolerance_s: float = 0.5,
    fps: float | None = None,
) -> dict[str, float]:
    """Bout-level precision, recall and F1.

    A predicted bout is a true positive when :func:`match_bouts` pairs it with a reference
    bout (IoU >= ``min_iou``, or onset within ``onset_tolerance_s``). Precision = matched /
    predicted bouts, recall = matched / reference bouts.

    Parameters
    ----------
    true, pred
        Binary per-frame vectors.
    method, min_iou
        See :func:`match_bouts`.
    onset_tolerance_s, fps
        Onset tolerance in seconds (``method="onset"`` needs ``fps``).
    """
    tol = 0
    if method == "onset":
        if fps is None:
            raise ValueError("bout matching by onset needs fps to convert onset_tolerance_s")
        tol = int(round(onset_tolerance_s * fps))
    m = match_bouts(true, pred, method=method, min_iou=min_iou, onset_tolerance_frames=tol)
    n_true = len(bouts_from_vector(true))
    n_pred = len(bouts_from_vector(pred))
    tp = len(m)
    precision = tp / n_pred if n_pred else float("nan")
    recall = tp / n_true if n_true else float("nan")
    f1 = 2 * tp / (n_true + n_pred) if (n_true + n_pred) else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1, "n_true": n_true,
            "n_pred": n_pred, "n_matched": tp}


def bout_f1(true: Sequence, pred: Sequence, **kwargs) -> float:
    """Bout-level F1 (see :func:`bout_scores` for the matching options)."""
    return float(bout_scores(true, pred, **kwargs)["f1"])


ICC_TYPES = ["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]
ICC_DESCRIPTIONS = {
    "ICC1": "Single rater, absolute agreement, one-way random effects",
    "ICC2": "Single rater, absolute agreement, two-way random effects",
    "ICC3": "Single rater, consistency, two-way mixed effects",
    "ICC1k": "Mean of k raters, absolute agreement, one-way random effects",
    "ICC2k": "Mean of k raters, absolute agreement, two-way random effects",
    "ICC3k": "Mean of k raters, consistency, two-way mixed effects",
}


def icc(
    data: pd.DataFrame,
    *,
    subject: str,
    rater: str,
    value: str,
    nan_policy: Literal["raise", "omit"] = "raise",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Intraclass correlation coefficients in the six Shrout & Fleiss forms.

    Parameters
    ----------
    data
        Long-format table: one row per (subject, rater) measurement.
    subject, rater, value
        Column names: the measured targets (animals, videos), the raters, the numbers.
    nan_policy
        "raise" refuses missing or unbalanced cells; "omit" drops subjects with any
        missing rating (listwise deletion, as pingouin does).
    confidence
        Level of the confidence interval (default 95 %).

    Returns
    -------
    pandas.DataFrame
        Rows ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k; columns ``type``, ``description``,
        ``icc``, ``F``, ``df1``, ``df2``, ``pval``, ``ci_low``, ``ci_high``.

    Notes
    -----
    Mean squares from the two-way ANOVA without replication on the ``(n subjects, k
    raters)`` table: MSB (subjects), MSJ (raters), MSE (residual), MSW = within subjects.
    ICC1 = (MSB-MSW)/(MSB+(k-1)MSW); ICC2 = (MSB-MSE)/(MSB+(k-1)MSE+k(MSJ-MSE)/n);
    ICC3 = (MSB-MSE)/(MSB+(k-1)MSE); the k forms are the Spearman-Brown step-ups.
    Confidence intervals follow Shrout & Fleiss (1979) / McGraw & Wong (1996); ICC2 uses
    Satterthwaite's approximate degrees of freedom. Same formulas as
    :func:`pingouin.intraclass_corr` (ICC2 = "ICC(A,1)", ICC3 = "ICC(C,1)").
    """
    for col in (subject, rater, value):
        if col not in data.columns:
            raise ValueError(f"column {col!r} not in the table (columns: {list(data.columns)})")
    if not np.issubdtype(data[value].dtype, np.number):
        raise ValueError(f"column {value!r} must be numeric, got {data[value].dtype}")
    dup = data.duplicated([subject, rater])
    if dup.any():
        row = data.loc[dup].iloc[0]
        raise ValueError(
            f"subject {row[subject]!r} has more than one rating by rater {row[rater]!r}"
        )
    wide = data.pivot(index=subject, columns=rater, values=value)
    if wide.isna().any().any():
        if nan_policy == "raise":
            bad = wide.index[wide.isna().any(axis=1)][0]
            raise ValueError(
                f"missing ratings (e.g. subject {bad!r}); pass nan_policy='omit' to drop "
                "incompletely rated subjects"
            )
        wide = wide.dropna(axis=0, how="any")
    y = wide.to_numpy(dtype=float)
    n, k = y.shape
    if n < 2 or k < 2:
        raise ValueError(f"ICC needs >= 2 subjects and >= 2 raters, got {n} and {k}")
    grand = y.mean()
    ss_subjects = k * np.sum((y.mean(axis=1) - grand) ** 2)
    ss_raters = n * np.sum((y.mean(axis=0) - grand) ** 2)
    ss_total = np.sum((y - grand) ** 2)
    ss_error = ss_total - ss_subjects - ss_raters
    msb = ss_subjects / (n - 1)
    msj = ss_raters / (k - 1)
    mse = ss_error / ((n - 1) * (k - 1))
    msw = (ss_raters + ss_error) / (n * (k - 1))

    icc1 = (msb - msw) / (msb + (k - 1) * msw)
    icc2 = (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
    icc3 = (msb - mse) / (msb + (k - 1) * mse)
    icc1k = (msb - msw) / msb
    icc2k = (msb - mse) / (msb + (msj - mse) / n)
    icc3k = (msb - mse) / msb

    df1 = n - 1
    df2_1 = n * (k - 1)
    df2_2 = (n - 1) * (k - 1)
    f1 = msb / msw
    f3 = msb / mse
    p1 = stats.f.sf(f1, df1, df2_1)
    p3 = stats.f.sf(f3, df1, df2_2)

    q = 1 - (1 - confidence) / 2
    f1l = f1 / stats.f.ppf(q, df1, df2_1)
    f1u = f1 * stats.f.ppf(q, df2_1, df1)
    f3l = f3 / stats.f.ppf(q, df1, df2_2)
    f3u = f3 * stats.f.ppf(q, df2_2, df1)
    fj = msj / mse
    vn = df2_2 * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    vd = df1 * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    v = vn / vd
    f2u = stats.f.ppf(q, n - 1, v)
    f2l = stats.f.ppf(q, v, n - 1)
    l2 = n * (msb - f2u * mse) / (f2u * (k * msj + (k * n - k - n) * mse) + n * msb)
    u2 = n * (f2l * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f2l * msb)

    ci = [
        ((f1l - 1) / (f1l + k - 1), (f1u - 1) / (f1u + k - 1)),
        (l2, u2),
        ((f3l - 1) / (f3l + k - 1), (f3u - 1) / (f3u + k - 1)),
        (1 - 1 / f1l, 1 - 1 / f1u),
        (l2 * k / (1 + l2 * (k - 1)), u2 * k / (1 + u2 * (k - 1))),
        (1 - 1 / f3l, 1 - 1 / f3u),
    ]
    out = pd.DataFrame(
        {
            "type": ICC_TYPES,
            "description": [ICC_DESCRIPTIONS[t] for t in ICC_TYPES],
            "icc": [icc1, icc2, icc3, icc1k, icc2k, icc3k],
            "F": [f1, f3, f3, f1, f3, f3],
            "df1": [df1] * 6,
            "df2": [df2_1, df2_2, df2_2, df2_1, df2_2, df2_2],
            "pval": [p1, p3, p3, p1, p3, p3],
            "ci_low": [c[0] for c in ci],
            "ci_high": [c[1] for c in ci],
        }
    )
    out.attrs.update({"n_subjects": n, "n_raters": k, "confidence": confidence})
    return out


def bland_altman(a: Sequence, b: Sequence, *, loa_sd: float = 1.96) -> dict[str, float]:
    """Bland-Altman agreement of two paired continuous measurements.

    Parameters
    ----------
    a, b
        Shape ``(n,)`` paired measurements (e.g. seconds of freezing per animal by two
        methods). NaN pairs are dropped.
    loa_sd
        Limits of agreement at ``bias +- loa_sd * SD`` of the differences.

    Returns
    -------
    dict
        ``bias`` = mean(a - b), ``sd`` (ddof=1) of the differences, ``loa_low``,
        ``loa_high``, 95 % CI of the bias (``bias_ci_low``, ``bias_ci_high``, t
        distribution) and ``n``.
    """
    a, b = _pair(a, b)
    a = a.astype(float)
    b = b.astype(float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    n = d.size
    if n < 2:
        raise ValueError(f"Bland-Altman needs >= 2 complete pairs, got {n}")
    bias = float(d.mean())
    sd = float(d.std(ddof=1))
    half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    return {
        "bias": bias,
        "sd": sd,
        "loa_low": bias - loa_sd * sd,
        "loa_high": bias + loa_sd * sd,
        "bias_ci_low": bias - half,
        "bias_ci_high": bias + half,
        "n": int(n),
    }


def pairwise_agreement(
    vectors: Mapping[str, Sequence], *, fps: float | None = None, min_iou: float = 0.5
) -> pd.DataFrame:
    """Agreement of every pair of raters on one binary behaviour.

    Parameters
    ----------
    vectors
        Rater name -> per-frame binary vector (all the same length).
    fps
        Frame rate, to report the time in the behaviour per rater.

    Returns
    -------
    pandas.DataFrame
        One row per pair: ``rater_a``, ``rater_b``, ``kappa``, ``percent_agreement``,
        frame ``f1`` (b against a), ``bout_f1`` (IoU >= ``min_iou``).
    """
    names = list(vectors)
    if len(names) < 2:
        raise ValueError("pairwise agreement needs at least two raters")
    vecs = {k: as_bool_vector(v, name=k) for k, v in vectors.items()}
    rows = []
    for a, b in combinations(names, 2):
        _pair(vecs[a], vecs[b], names=(a, b))
        fs = frame_scores(vecs[a], vecs[b])
        rows.append({
            "rater_a": a,
            "rater_b": b,
            "kappa": fs["kappa"],
            "percent_agreement": fs["percent_agreement"],
            "f1": fs["f1"],
            "bout_f1": bout_f1(vecs[a], vecs[b], min_iou=min_iou),
        })
    return pd.DataFrame(rows)

