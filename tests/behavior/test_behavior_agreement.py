"""Agreement statistics against scikit-learn, statsmodels and pingouin (to 1e-9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score, precision_score, recall_score

from behavior import agreement as ag
from behavior.bouts import bouts_from_vector, filter_bouts, vector_from_bouts
from tests.conftest import shared_path

pg = pytest.importorskip("pingouin")

RATERS = ["hB_expert1", "hB_expert2", "hB_expert3", "hB_novice"]


def _load_rater(name: str) -> np.ndarray:
    from scipy.io import loadmat

    m = loadmat(shared_path("behaviordepot-freezing", "raters", f"{name}.mat"),
                squeeze_me=True, struct_as_record=False)
    return np.asarray(m["hBehavior"].Freezing.Vector).astype(int)


@pytest.fixture(scope="module")
def raters() -> dict[str, np.ndarray]:
    return {n: _load_rater(n) for n in RATERS}


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cohen_kappa_equals_sklearn_random(weights, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, 500)
    b = np.where(rng.random(500) < 0.6, a, rng.integers(0, 4, 500))
    assert ag.cohen_kappa(a, b, weights=weights) == pytest.approx(
        cohen_kappa_score(a, b, weights=weights), abs=1e-9)


def test_cohen_kappa_bad_input():
    with pytest.raises(ValueError, match="has 3 frames but b has 2"):
        ag.cohen_kappa([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="weights must be"):
        ag.cohen_kappa([0, 1], [0, 1], weights="cubic")


def test_fleiss_equals_statsmodels_random():
    irr = pytest.importorskip("statsmodels.stats.inter_rater")
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 300)
    r = np.stack([np.where(rng.random(300) < 0.7, truth, rng.integers(0, 3, 300))
                  for _ in range(5)], axis=1)
    ref = irr.fleiss_kappa(irr.aggregate_raters(r)[0], method="fleiss")
    assert ag.fleiss_kappa(r) == pytest.approx(ref, abs=1e-9)
    with pytest.raises(ValueError, match="n_raters>=2"):
        ag.fleiss_kappa(r[:, :1])


def test_real_raters_kappa_fleiss_and_scores(raters):
    irr = pytest.importorskip("statsmodels.stats.inter_rater")
    for a, b in [("hB_expert1", "hB_expert2"), ("hB_expert1", "hB_novice"),
                 ("hB_expert2", "hB_expert3")]:
        x, y = raters[a], raters[b]
        assert ag.cohen_kappa(x, y) == pytest.approx(cohen_kappa_score(x, y), abs=1e-9)
        s = ag.frame_scores(x, y)
        assert s["precision"] == pytest.approx(precision_score(x, y), abs=1e-9)
        assert s["recall"] == pytest.approx(recall_score(x, y), abs=1e-9)
        assert s["f1"] == pytest.approx(f1_score(x, y), abs=1e-9)
        assert s["percent_agreement"] == pytest.approx(np.mean(x == y), abs=1e-12)
    # documented: experts agree at about 0.91-0.94, expert vs novice about 0.60
    k12 = ag.cohen_kappa(raters["hB_expert1"], raters["hB_expert2"])
    kn = ag.cohen_kappa(raters["hB_expert1"], raters["hB_novice"])
    assert 0.88 < k12 < 0.97 and 0.5 < kn < 0.7
    r = np.stack([raters[n] for n in RATERS], axis=1)
    ref = irr.fleiss_kappa(irr.aggregate_raters(r)[0], method="fleiss")
    assert ag.fleiss_kappa(r) == pytest.approx(ref, abs=1e-9)
    table = ag.pairwise_agreement(raters)
    assert len(table) == 6 and set(table.columns) >= {"kappa", "bout_f1"}


def _pingouin_icc(df, subject, rater, value):
    old = pg.options.get("round.column.CI95")
    pg.options["round.column.CI95"] = None
    try:
        return pg.intraclass_corr(df, targets=subject, raters=rater, ratings=value)
    finally:
        pg.options["round.column.CI95"] = old


def _compare_icc(df, subject, rater, value):
    ours = ag.icc(df, subject=subject, rater=rater, value=value)
    ref = _pingouin_icc(df, subject, rater, value)
    np.testing.assert_allclose(ours["icc"], ref["ICC"], atol=1e-9, rtol=0)
    np.testing.assert_allclose(ours["F"], ref["F"], atol=1e-9, rtol=1e-12)
    np.testing.assert_allclose(ours["df1"], ref["df1"], atol=1e-9)
    np.testing.assert_allclose(ours["df2"], ref["df2"], atol=1e-9)
    np.testing.assert_allclose(ours["pval"], ref["pval"], atol=1e-9)
    ci = np.stack(ref["CI95"].to_numpy())
    np.testing.assert_allclose(ours["ci_low"], ci[:, 0], atol=1e-9)
    np.testing.assert_allclose(ours["ci_high"], ci[:, 1], atol=1e-9)
    return ours


@pytest.mark.parametrize("seed", [0, 1])
def test_icc_equals_pingouin_random(seed):
    rng = np.random.default_rng(seed)
    n, k = 30, 4
    true = rng.normal(10, 3, n)
    rows = [{"animal": f"m{i}", "rater": f"r{j}", "secs": true[i] + 0.5 * j + rng.normal(0, 1)}
            for i in range(n) for j in range(k)]
    _compare_icc(pd.DataFrame(rows), "animal", "rater", "secs")


def test_icc_equals_pingouin_wine():
    df = pg.read_dataset("icc")
    out = _compare_icc(df, "Wine", "Judge", "Scores")
    assert out.loc[out.type == "ICC2", "icc"].item() == pytest.approx(0.727689, abs=1e-6)


def test_icc_real_raters_freezing_per_minute(raters):
    # seconds of freezing per 1-min block of the 50 fps video, as each rater scored it
    fps, block = 50, 50 * 60
    rows = []
    for name, v in raters.items():
        n_blocks = v.size // block
        for i in range(n_blocks):
            rows.append({"block": i, "rater": name, "freeze_s": v[i * block:(i + 1) * block].sum() / fps})
    out = _compare_icc(pd.DataFrame(rows), "block", "rater", "freeze_s")
    assert (out["icc"] > 0.5).all()


def test_icc_bad_input():
    df = pd.DataFrame({"s": [1, 1, 2], "r": ["a", "b", "a"], "v": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="missing ratings"):
        ag.icc(df, subject="s", rater="r", value="v")
    with pytest.raises(ValueError, match="column 'x' not in the table"):
        ag.icc(df, subject="x", rater="r", value="v")
    dup = pd.DataFrame({"s": [1, 1], "r": ["a", "a"], "v": [1.0, 2.0]})
    with pytest.raises(ValueError, match="more than one rating"):
        ag.icc(dup, subject="s", rater="r", value="v")


def test_bland_altman_known_answer():
    a = np.array([10.0, 12.0, 14.0, 16.0])
    b = a - np.array([1.0, 2.0, 1.0, 2.0])
    out = ag.bland_altman(a, b)
    sd = np.std([1, 2, 1, 2], ddof=1)
    assert out["bias"] == pytest.approx(1.5, abs=1e-12)
    assert out["loa_high"] == pytest.approx(1.5 + 1.96 * sd, abs=1e-12)
    assert out["loa_low"] == pytest.approx(1.5 - 1.96 * sd, abs=1e-12)
    with pytest.raises(ValueError, match="needs >= 2"):
        ag.bland_altman([1.0], [2.0])


def test_bouts_roundtrip_and_filter():
    v = np.array([0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0], bool)
    b = bouts_from_vector(v, fps=10)
    assert b[["start_frame", "end_frame"]].values.tolist() == [[1, 3], [4, 7], [10, 11]]
    assert np.array_equal(vector_from_bouts(b, v.size), v)
    # merge the 1-frame gap (0.1 s), then drop bouts < 0.3 s
    out = filter_bouts(v, fps=10, merge_gap_s=0.1, min_bout_s=0.3)
    assert out.astype(int).tolist() == [0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="binary 0/1"):
        bouts_from_vector([0, 2])


def test_bout_scores_iou_and_onset():
    t = np.zeros(100, bool)
    p = np.zeros(100, bool)
    t[10:20] = True
    t[50:60] = True
    p[12:22] = True   # IoU 8/12 = 0.67 with the first
    p[80:85] = True   # spurious
    s = ag.bout_scores(t, p, min_iou=0.5)
    assert (s["n_matched"], s["precision"], s["recall"]) == (1, 0.5, 0.5)
    s2 = ag.bout_scores(t, p, method="onset", onset_tolerance_s=0.1, fps=10)
    assert s2["n_matched"] == 0          # onset differs by 2 frames = 0.2 s
    s3 = ag.bout_scores(t, p, method="onset", onset_tolerance_s=0.2, fps=10)
    assert s3["n_matched"] == 1
    assert ag.bout_f1(t, t) == 1.0
    with pytest.raises(ValueError, match="needs fps"):
        ag.bout_scores(t, p, method="onset")
