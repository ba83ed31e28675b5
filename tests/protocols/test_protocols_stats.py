"""Group statistics checked against pingouin and scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats as sps

from protocols.stats import (
    compare_groups,
    correct_pvalues,
    dose_response,
    endpoint_columns,
    eta_squared,
    hedges_g,
    summarize_groups,
)


def _table(n_groups: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        for i in range(7 + g):
            rows.append({
                "subject_id": f"m{g}{i}", "group": f"g{g}", "dose": float(g), "sex": "F",
                "session": 1,
                "speed": rng.normal(50 + 10 * g, 8),
                "centre": rng.normal(10 - 2 * g, 3),
                "noise": rng.normal(0, 1),
            })
    return pd.DataFrame(rows)


def test_endpoint_columns_skip_metadata():
    assert endpoint_columns(_table(2)) == ["speed", "centre", "noise"]


def test_two_groups_match_pingouin_and_scipy():
    t = _table(2)
    res = compare_groups(t, reference="g0").set_index("endpoint")
    for ep in ("speed", "centre", "noise"):
        x = t.loc[t.group == "g1", ep].to_numpy()
        y = t.loc[t.group == "g0", ep].to_numpy()
        tt = pg.ttest(x, y, correction=True)
        assert res.loc[ep, "statistic"] == pytest.approx(tt["T"].iloc[0], rel=1e-10)
        assert res.loc[ep, "p"] == pytest.approx(tt["p_val"].iloc[0] if "p_val" in tt else tt["p-val"].iloc[0], rel=1e-8)
        mw = pg.mwu(x, y, alternative="two-sided")
        pcol = "p_val" if "p_val" in mw else "p-val"
        assert res.loc[ep, "p_np"] == pytest.approx(mw[pcol].iloc[0], rel=1e-8)
        assert res.loc[ep, "statistic_np"] == pytest.approx(mw["U_val" if "U_val" in mw else "U-val"].iloc[0])
        assert res.loc[ep, "effect_size"] == pytest.approx(pg.compute_effsize(x, y, eftype="hedges"), rel=1e-10)
        assert res.loc[ep, "mean_difference"] == pytest.approx(x.mean() - y.mean())
    # sign: g1 is faster than g0 by construction
    assert res.loc["speed", "effect_size"] > 0 and res.loc["centre", "effect_size"] < 0
    for col, method in (("p_holm", "holm"), ("p_bh", "fdr_bh")):
        _, expected = pg.multicomp(res["p"].to_numpy(), method=method)
        np.testing.assert_allclose(res[col].to_numpy(), expected, rtol=1e-10)


def test_three_groups_match_pingouin():
    t = _table(3, seed=3)
    res = compare_groups(t).set_index("endpoint")
    for ep in ("speed", "centre"):
        aov = pg.anova(data=t, dv=ep, between="group", detailed=True)
        fcol = "F"
        pcol = "p_unc" if "p_unc" in aov else "p-unc"
        assert res.loc[ep, "statistic"] == pytest.approx(aov[fcol].iloc[0], rel=1e-10)
        assert res.loc[ep, "p"] == pytest.approx(aov[pcol].iloc[0], rel=1e-8)
        assert res.loc[ep, "effect_size"] == pytest.approx(aov["np2"].iloc[0], rel=1e-8)
        kw = pg.kruskal(data=t, dv=ep, between="group")
        assert res.loc[ep, "statistic_np"] == pytest.approx(kw["H"].iloc[0], rel=1e-10)
        assert res.loc[ep, "test"] == "one-way ANOVA"


def test_correction_matches_pingouin_with_nan_and_ties():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.03, 0.5, 0.001])
    ok = np.isfinite(p)
    for method in ("holm", "fdr_bh"):
        _, expected = pg.multicomp(p[ok], method=method)
        got = correct_pvalues(p, method)
        np.testing.assert_allclose(got[ok], expected, rtol=1e-12)
        assert np.isnan(got[2])
    with pytest.raises(ValueError, match="unknown correction method 'bonf'"):
        correct_pvalues(p, "bonf")  # type: ignore[arg-type]


def test_effect_size_helpers_known_answers():
    assert np.isnan(hedges_g(np.array([1.0]), np.array([1.0, 2.0])))
    assert eta_squared([np.array([1.0, 1.0]), np.array([3.0, 3.0])]) == pytest.approx(1.0)


def test_dose_response_matches_scipy():
    t = _table(3, seed=5)
    res = dose_response(t).set_index("endpoint")
    rho = sps.spearmanr(t.dose, t.speed)
    lr = sps.linregress(t.dose, t.speed)
    assert res.loc["speed", "spearman_rho"] == pytest.approx(rho.statistic)
    assert res.loc["speed", "spearman_p"] == pytest.approx(rho.pvalue)
    assert res.loc["speed", "slope"] == pytest.approx(lr.slope)
    assert res.loc["speed", "r2"] == pytest.approx(lr.rvalue**2)
    assert res.loc["speed", "slope"] > 0
    assert dose_response(t.assign(dose=np.nan)).empty


def test_summary_and_bad_reference():
    t = _table(2)
    s = summarize_groups(t, ["speed"]).set_index("group")
    x = t.loc[t.group == "g1", "speed"]
    assert s.loc["g1", "n"] == len(x)
    assert s.loc["g1", "sd"] == pytest.approx(x.std(ddof=1))
    assert s.loc["g1", "sem"] == pytest.approx(sps.sem(x))
    with pytest.raises(ValueError, match="reference group 'ctrl' not in 'group'"):
        compare_groups(t, reference="ctrl")
