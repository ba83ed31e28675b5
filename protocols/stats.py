"""Group statistics over the per-animal endpoint table.

The input is the tidy per-animal table that :mod:`protocols.batch` writes
(``endpoints.csv`` / ``endpoints.parquet``): one row per animal and session, metadata
columns ``subject_id, group, dose, sex, session`` and one column per endpoint.

- :func:`summarize_groups`: n, mean, SD, SEM, median per group and endpoint.
- :func:`compare_groups`: two groups -> Welch's t-test and Mann-Whitney U with Hedges' g;
  more groups -> one-way ANOVA and Kruskal-Wallis with eta-squared. Holm and
  Benjamini-Hochberg corrections across endpoints.
- :func:`dose_response`: Spearman correlation and least-squares line of each endpoint on dose.

Every number is checked against pingouin / scipy in ``tests/protocols/test_protocols_stats.py``.

Notes
-----
The corrections treat the endpoints of one analysis as one family. With the usual
n = 8-12 animals per group the non-parametric tests have little power (the smallest
two-sided Mann-Whitney p for 4 vs 4 animals is 0.029); report both and decide which one
you trust *before* looking.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as sps

logger = logging.getLogger(__name__)

META_COLUMNS = ("subject_id", "group", "dose", "sex", "session")
#: Per-animal quality columns written by :mod:`protocols.endpoints` (not endpoints).
FLAG_COLUMN = "quality_flag"


def is_quality_column(name: str) -> bool:
    """``coverage_pct``, ``coverage_<endpoint>_pct``, ``quality_flag``, ``qc_*`` and the intervals
    ``<endpoint>_lo`` / ``_hi`` describe the data,
    they are not endpoints to test."""
    return (name == FLAG_COLUMN or name.startswith("qc_") or (name.startswith("coverage_") and name.endswith("_pct"))
            or name.endswith(("_lo", "_hi")))  # an endpoint's interval (protocols.uncertainty)


def endpoint_columns(table: pd.DataFrame) -> list[str]:
    """Numeric columns of ``table`` that are neither metadata nor quality (the endpoints)."""
    return [
        c for c in table.columns
        if c not in META_COLUMNS and not is_quality_column(c) and pd.api.types.is_numeric_dtype(table[c])
    ]


def usable_rows(table: pd.DataFrame, *, exclude_flagged: bool = True) -> pd.Series:
    """Bool per animal: its ``quality_flag`` is ``ok`` (or missing), so it enters the
    statistics. Flagged animals (``no_track``, ``low_coverage``) are left out and reported."""
    if not exclude_flagged or FLAG_COLUMN not in table:
        return pd.Series(True, index=table.index)
    flag = table[FLAG_COLUMN].fillna("ok").astype(str)
    return flag.isin(["ok", ""])


def _excluded(table: pd.DataFrame, ok: pd.Series, ep: str) -> tuple[int, int, str]:
    """(animals used, animals left out, who and why) for one endpoint."""
    value = pd.to_numeric(table[ep], errors="coerce")
    used = ok & value.notna()
    ids = table["subject_id"].astype(str) if "subject_id" in table else pd.Series(table.index.astype(str), table.index)
    why = [f"{ids[i]} ({table[FLAG_COLUMN][i] if not ok[i] else 'NaN'})" for i in table.index[~used]]
    return int(used.sum()), int((~used).sum()), ", ".join(why)


def correct_pvalues(pvalues: Sequence[float], method: Literal["holm", "fdr_bh"]) -> np.ndarray:
    """Adjust p-values for multiple comparisons (NaN entries stay NaN and are not counted).

    Parameters
    ----------
    pvalues
        Raw p-values, one per test of the family.
    method
        ``"holm"`` (Holm-Bonferroni step-down, controls the family-wise error rate) or
        ``"fdr_bh"`` (Benjamini-Hochberg step-up, controls the false discovery rate).

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, clipped to 1, in the input order.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="mergesort")
    ranked = q[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked)
    elif method == "fdr_bh":
        adj = np.minimum.accumulate((m / np.arange(m, 0, -1)) * ranked[::-1])[::-1]
    else:
        raise ValueError(f"unknown correction method {method!r}: use 'holm' or 'fdr_bh'")
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def hedges_g(x: np.ndarray, y: np.ndarray) -> float:
    """Hedges' g of ``x`` minus ``y``: Cohen's d (pooled SD) times ``1 - 3/(4(nx+ny)-9)``."""
    x = np.asarray(x, float)[np.isfinite(x)]
    y = np.asarray(y, float)[np.isfinite(y)]
    nx, ny = x.size, y.size
    if nx < 2 or ny < 2:
        return float("nan")
    pooled = np.sqrt(((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / (nx + ny - 2))
    if pooled == 0:
        return float("nan")
    d = (x.mean() - y.mean()) / pooled
    return float(d * (1 - 3 / (4 * (nx + ny) - 9)))


def eta_squared(samples: Sequence[np.ndarray]) -> float:
    """Eta-squared of a one-way layout: between-group over total sum of squares."""
    samples = [np.asarray(s, float)[np.isfinite(s)] for s in samples]
    allv = np.concatenate(samples)
    ss_total = ((allv - allv.mean()) ** 2).sum()
    ss_between = sum(s.size * (s.mean() - allv.mean()) ** 2 for s in samples if s.size)
    return float(ss_between / ss_total) if ss_total > 0 else float("nan")


def summarize_groups(
    table: pd.DataFrame, endpoints: Sequence[str] | None = None, *, group_col: str = "group",
    exclude_flagged: bool = True,
) -> pd.DataFrame:
    """Descriptive statistics per group and endpoint (long table); animals flagged by
    :func:`usable_rows` and NaN values are left out (``n`` counts the animals used).

    Returns
    -------
    pandas.DataFrame
        Columns ``endpoint, group, n, mean, sd, sem, median, min, max``.
    """
    endpoints = list(endpoints) if endpoints is not None else endpoint_columns(table)
    table = table[usable_rows(table, exclude_flagged=exclude_flagged)]
    rows = []
    for ep in endpoints:
        for g, sub in table.groupby(group_col, sort=True):
            v = pd.to_numeric(sub[ep], errors="coerce").dropna().to_numpy()
            n = v.size
            rows.append({
                "endpoint": ep, "group": g, "n": n,
                "mean": v.mean() if n else np.nan,
                "sd": v.std(ddof=1) if n > 1 else np.nan,
                "sem": v.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan,
                "median": np.median(v) if n else np.nan,
                "min": v.min() if n else np.nan, "max": v.max() if n else np.nan,
            })
    return pd.DataFrame(rows)


def compare_groups(
    table: pd.DataFrame,
    endpoints: Sequence[str] | None = None,
    *,
    group_col: str = "group",
    reference: str | None = None,
    exclude_flagged: bool = True,
) -> pd.DataFrame:
    """Test each endpoint for a difference between groups.

    Parameters
    ----------
    table
        Per-animal table.
    endpoints
        Columns to test (default: every numeric non-metadata column).
    group_col
        Column naming the group of each animal.
    reference
        Control group for two-group comparisons; the effect is ``other - reference``.
        Default: the first group in sorted order.
    exclude_flagged
        Leave out animals whose ``quality_flag`` is not ``ok`` (see :func:`usable_rows`).

    Returns
    -------
    pandas.DataFrame
        One row per endpoint: ``endpoint, n_groups, groups, test, statistic, p`` for the
        parametric test (Welch t / one-way ANOVA), ``test_np, statistic_np, p_np`` for the
        rank test (Mann-Whitney U two-sided / Kruskal-Wallis H), ``effect_size`` and
        ``effect_size_name`` (Hedges' g / eta-squared), ``mean_difference`` (two groups),
        ``p_holm, p_bh, p_np_holm, p_np_bh`` corrected across the endpoints, and
        ``n_used, n_excluded, excluded`` (animals left out: flagged, or NaN for this
        endpoint, with the reason). Nothing enters as 0.
    """
    endpoints = list(endpoints) if endpoints is not None else endpoint_columns(table)
    groups = sorted(table[group_col].dropna().unique(), key=str)
    if reference is not None:
        if reference not in groups:
            raise ValueError(f"reference group {reference!r} not in {group_col!r} values {groups}")
        groups = [reference] + [g for g in groups if g != reference]
    ok = usable_rows(table, exclude_flagged=exclude_flagged)
    if (~ok).any():
        logger.warning("group statistics leave out %d flagged animal(s): %s", int((~ok).sum()),
                       ", ".join(f"{i} ({f})" for i, f in zip(table.get("subject_id", table.index)[~ok],
                                                               table[FLAG_COLUMN][~ok], strict=True)))
    rows = []
    for ep in endpoints:
        samples = [
            pd.to_numeric(table.loc[(table[group_col] == g) & ok, ep], errors="coerce").dropna().to_numpy(float)
            for g in groups
        ]
        n_used, n_out, why = _excluded(table, ok, ep)
        row: dict[str, object] = {"endpoint": ep, "n_groups": len(groups), "groups": " vs ".join(map(str, groups)),
                                  "n_used": n_used, "n_excluded": n_out, "excluded": why}
        usable = [s for s in samples if s.size >= 2]
        if len(groups) < 2 or len(usable) < len(groups):
            row.update(test="none (need >= 2 groups with >= 2 animals)", statistic=np.nan, p=np.nan,
                       test_np="none", statistic_np=np.nan, p_np=np.nan,
                       effect_size=np.nan, effect_size_name="")
        elif len(groups) == 2:
            ref, other = samples
            with warnings.catch_warnings():  # constant endpoints give NaN statistics
                warnings.simplefilter("ignore", RuntimeWarning)
                t = sps.ttest_ind(other, ref, equal_var=False)
            u = sps.mannwhitneyu(other, ref, alternative="two-sided")
            row.update(test="Welch t-test", statistic=float(t.statistic), p=float(t.pvalue),
                       test_np="Mann-Whitney U", statistic_np=float(u.statistic), p_np=float(u.pvalue),
                       effect_size=hedges_g(other, ref), effect_size_name="Hedges g",
                       mean_difference=float(other.mean() - ref.mean()))
        else:
            f = sps.f_oneway(*samples)
            h = sps.kruskal(*samples)
            row.update(test="one-way ANOVA", statistic=float(f.statistic), p=float(f.pvalue),
                       test_np="Kruskal-Wallis H", statistic_np=float(h.statistic), p_np=float(h.pvalue),
                       effect_size=eta_squared(samples), effect_size_name="eta squared")
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    for col in ("p", "p_np"):
        out[f"{col}_holm"] = correct_pvalues(out[col].to_numpy(float), "holm")
        out[f"{col}_bh"] = correct_pvalues(out[col].to_numpy(float), "fdr_bh")
    return out


def dose_response(
    table: pd.DataFrame, endpoints: Sequence[str] | None = None, *, dose_col: str = "dose",
    exclude_flagged: bool = True,
) -> pd.DataFrame:
    """Spearman correlation and linear regression of each endpoint on dose (flagged animals
    and NaN values left out).

    Returns an empty table when fewer than 3 animals or fewer than 2 distinct doses are
    given. Columns: ``endpoint, n, spearman_rho, spearman_p, slope, intercept, r2,
    slope_p, p_holm, p_bh`` (corrections over the Spearman p-values).
    """
    if dose_col not in table.columns:
        return pd.DataFrame()
    table = table[usable_rows(table, exclude_flagged=exclude_flagged)]
    dose = pd.to_numeric(table[dose_col], errors="coerce")
    endpoints = list(endpoints) if endpoints is not None else endpoint_columns(table)
    rows = []
    for ep in endpoints:
        y = pd.to_numeric(table[ep], errors="coerce")
        ok = dose.notna() & y.notna()
        d, v = dose[ok].to_numpy(float), y[ok].to_numpy(float)
        if d.size < 3 or np.unique(d).size < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sps.ConstantInputWarning)
            rho = sps.spearmanr(d, v)
            lr = sps.linregress(d, v)
        rows.append({"endpoint": ep, "n": int(d.size), "spearman_rho": float(rho.statistic),
                     "spearman_p": float(rho.pvalue), "slope": float(lr.slope),
                     "intercept": float(lr.intercept), "r2": float(lr.rvalue**2),
                     "slope_p": float(lr.pvalue)})
    out = pd.DataFrame(rows)
    if not out.empty:
        out["p_holm"] = correct_pvalues(out["spearman_p"].to_numpy(float), "holm")
        out["p_bh"] = correct_pvalues(out["spearman_p"].to_numpy(float), "fdr_bh")
    return out
