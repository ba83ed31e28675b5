"""Beyond one factor: time-binned endpoints and two-way (group x sex) designs, as pure functions.

- :func:`default_bin_s`: a bin length from the session length (printed with its reason,
  overridable on the page): the longest of 10 / 5 / 2 / 1 minutes that still gives 3 bins,
  else a quarter of the session.
- :func:`binned_endpoints`: the protocol's own endpoint function
  (:func:`protocols.endpoints.open_field_endpoints` / ``three_chamber_endpoints``) on each
  time bin of an animal's per-frame table, so a bin's number is computed the same way as the
  session's (cumulative columns such as ``distance_mm`` are restarted at each bin, so the
  bins' distances add up to the session's). Bouts that span a bin edge count in both bins.
- :func:`two_way_anova`: type-II two-way ANOVA (e.g. group x sex) with partial eta-squared,
  by least squares on effect-coded factors (checked against pingouin in the tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: assays whose endpoints are a function of the per-frame table alone (binnable)
BINNABLE_ASSAYS = ("open_field", "three_chamber")
_CANDIDATE_BINS_S = (600.0, 300.0, 120.0, 60.0)


def default_bin_s(duration_s: float) -> tuple[float, str]:
    """A bin length for a session of ``duration_s`` and the reason for it."""
    for b in _CANDIDATE_BINS_S:
        if duration_s >= 3 * b:
            return b, f"{b / 60:g}-min bins: the longest of 10/5/2/1 min giving at least 3 bins in {duration_s:.0f} s"
    b = max(duration_s / 4, 1.0)
    return b, f"{b:.3g}-s bins: the sessions ({duration_s:.0f} s) are shorter than 3 min, so quarters"


def time_bins(frames: pd.DataFrame, bin_s: float) -> list[tuple[float, float, pd.DataFrame]]:
    """``(start_s, end_s, frames of the bin)``: consecutive bins of ``bin_s`` from the first
    frame; a last bin shorter than half a bin is left out (its ``end_s`` says where the bins
    stop). Cumulative ``distance_*`` columns are restarted at each bin's start."""
    if bin_s <= 0:
        raise ValueError(f"bin_s must be > 0, got {bin_s}")
    t = frames["time_s"].to_numpy(float)
    if not len(t):
        return []
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    length = float(t[-1] - t[0]) + dt
    n_bins = int(np.floor(length / bin_s + 0.5 + 1e-9))  # the last bin kept when >= half a bin
    cumulative = [c for c in frames.columns if c.startswith("distance_")]
    done = {c: 0.0 for c in cumulative}
    out = []
    for i in range(max(n_bins, 1 if length >= bin_s / 2 else 0)):
        a, b = i * bin_s, min((i + 1) * bin_s, length)
        inside = (t - t[0] >= a - 1e-9) & (t - t[0] < b - 1e-9)
        part = frames[inside].copy()
        for c in cumulative:
            values = part[c].to_numpy(float)
            part[c] = values - done[c]
            if np.isfinite(values).any():
                done[c] = float(np.nanmax(values))
        out.append((float(a), float(b), part))
    return out


def _endpoint_function(assay: str):
    from protocols.endpoints import open_field_endpoints, three_chamber_endpoints

    if assay == "open_field":
        return open_field_endpoints
    if assay == "three_chamber":
        return three_chamber_endpoints
    raise ValueError(f"time bins are available for the {' and '.join(BINNABLE_ASSAYS)} assays, not {assay!r} "
                     "(its endpoints need more than the per-frame table)")


def binned_endpoints(frames: pd.DataFrame, fps: float, assay: str, bin_s: float) -> pd.DataFrame:
    """One row per time bin: ``bin`` (1, 2, ...), ``start_s``, ``end_s`` and the assay's endpoints.

    Raises
    ------
    ValueError
        An assay whose endpoints are not a function of the per-frame table (named).
    """
    fn = _endpoint_function(assay)
    rows = []
    for i, (a, b, part) in enumerate(time_bins(frames, bin_s), start=1):
        rows.append({"bin": i, "start_s": a, "end_s": b, **fn(part, fps)})
    return pd.DataFrame(rows)


def design_factors(table: pd.DataFrame, candidates: Sequence[str] = ("sex",)) -> list[str]:
    """Factors besides group that vary in the cohort (two or more levels)."""
    return [c for c in candidates if c in table and table[c].dropna().astype(str).str.strip().replace("", np.nan)
            .dropna().nunique() >= 2]


def _effect_codes(levels: pd.Series) -> tuple[np.ndarray, list[str]]:
    names = sorted(levels.unique(), key=str)
    x = np.zeros((len(levels), len(names) - 1))
    for j, name in enumerate(names[:-1]):
        x[:, j] = (levels == name).to_numpy(float)
    x[(levels == names[-1]).to_numpy()] = -1.0
    return x, names


def _rss(y: np.ndarray, *blocks: np.ndarray) -> float:
    x = np.column_stack([np.ones(len(y)), *blocks])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    r = y - x @ beta
    return float(r @ r)


def two_way_anova(table: pd.DataFrame, endpoint: str, factor: str, *, group_col: str = "group",
                  min_per_cell: int = 2) -> pd.DataFrame:
    """Type-II two-way ANOVA of ``endpoint`` on ``group_col`` x ``factor``.

    Parameters
    ----------
    table
        Per-animal table; rows with a missing value or level are left out.
    min_per_cell
        Animals needed in every group x factor cell.

    Returns
    -------
    pandas.DataFrame
        Rows ``group``, ``factor``, ``group x factor``, ``residual`` with ``SS``, ``df``,
        ``F``, ``p`` and ``partial_eta2``.

    Raises
    ------
    ValueError
        A cell with fewer than ``min_per_cell`` animals (named), or fewer than 2 levels.
    """
    d = table[[group_col, factor, endpoint]].copy()
    d[endpoint] = pd.to_numeric(d[endpoint], errors="coerce")
    d = d.dropna()
    d[group_col], d[factor] = d[group_col].astype(str), d[factor].astype(str)
    cells = d.groupby([group_col, factor]).size()
    levels_a, levels_b = sorted(d[group_col].unique()), sorted(d[factor].unique())
    if len(levels_a) < 2 or len(levels_b) < 2:
        raise ValueError(f"{endpoint}: a two-way design needs 2 or more levels of {group_col} and of {factor}")
    small = [f"{a} x {b}: n = {int(cells.get((a, b), 0))}" for a in levels_a for b in levels_b
             if cells.get((a, b), 0) < min_per_cell]
    if small:
        raise ValueError(f"{endpoint}: need {min_per_cell} animals in every {group_col} x {factor} cell ({'; '.join(small)})")
    y = d[endpoint].to_numpy(float)
    xa, _ = _effect_codes(d[group_col])
    xb, _ = _effect_codes(d[factor])
    xab = np.column_stack([xa[:, i] * xb[:, j] for i in range(xa.shape[1]) for j in range(xb.shape[1])])
    rss_full = _rss(y, xa, xb, xab)
    rss_ab = _rss(y, xa, xb)
    ss = {group_col: _rss(y, xb) - rss_ab, factor: _rss(y, xa) - rss_ab, f"{group_col} x {factor}": rss_ab - rss_full}
    df = {group_col: xa.shape[1], factor: xb.shape[1], f"{group_col} x {factor}": xab.shape[1]}
    df_res = len(y) - len(levels_a) * len(levels_b)
    ms_res = rss_full / df_res
    rows = []
    for name in ss:
        f = (ss[name] / df[name]) / ms_res if ms_res > 0 else np.inf
        rows.append({"source": name, "SS": ss[name], "df": df[name], "F": f,
                     "p": float(stats.f.sf(f, df[name], df_res)), "partial_eta2": ss[name] / (ss[name] + rss_full)})
    rows.append({"source": "residual", "SS": rss_full, "df": df_res, "F": np.nan, "p": np.nan, "partial_eta2": np.nan})
    return pd.DataFrame(rows)
