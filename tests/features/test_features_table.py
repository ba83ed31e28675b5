"""Per-frame feature table, session summary and the `features compute` / `filter` CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features import zones as Z
from features.cli import app
from features.table import compute_feature_table, summarize_session
from pose.dataset import from_numpy

FPS = 10.0


def _two_mice():
    """Mouse a walks right at 20 mm/s (2 px/mm), mouse b stays at the arena centre."""
    n = 100
    t = np.arange(n) / FPS
    pos = np.zeros((n, 2, 3, 2))
    for k, dx in enumerate([10.0, 0.0, -10.0]):  # snout, body_center, tail_base along x
        pos[:, 0, k, 0] = 10 + 40 * t + dx
        pos[:, 1, k, 0] = 100
        pos[:, 0, k, 1] = 100 + dx
        pos[:, 1, k, 1] = 100
    return from_numpy(pos, keypoints=["snout", "body_center", "tail_base"], individuals=["a", "b"],
                      fps=FPS, px_per_mm=2.0)


def test_feature_table_known_answers():
    ds = _two_mice()
    zs = Z.open_field_zones((0, 0, 200, 200), center_fraction=0.5)
    tab = compute_feature_table(ds, zs)
    assert len(tab) == 200 and tab.attrs["length_unit"] == "mm"
    a, b = tab[tab.individual == "a"], tab[tab.individual == "b"]
    np.testing.assert_allclose(a.speed_mm_s, 20.0)
    np.testing.assert_allclose(b.speed_mm_s, 0.0, atol=1e-9)
    np.testing.assert_allclose(a.body_length_mm, 10.0)
    np.testing.assert_allclose(a.heading_rad, 0.0, atol=1e-12)
    np.testing.assert_allclose(a.distance_mm.iloc[-1], 20.0 * 9.9)
    assert b.in_centre.all() and not b.in_periphery.any()
    # a: x = 10 + 40 t px: centre (50..150 px) from t=1.0 to t=3.5 s
    assert a.in_centre.sum() == pytest.approx(26, abs=1)
    summ = summarize_session(tab, moving_speed=10.0).set_index("individual")
    assert summ.loc["a", "distance_mm"] == pytest.approx(198.0)
    assert summ.loc["a", "mean_speed_mm_s"] == pytest.approx(20.0)
    assert summ.loc["a", "entries_centre"] == 1 and summ.loc["a", "latency_centre_s"] == pytest.approx(1.0)
    assert summ.loc["b", "entries_centre"] == 0 and summ.loc["b", "latency_centre_s"] == 0.0
    assert summ.loc["b", "time_moving_s"] == 0.0 and summ.loc["a", "fraction_moving"] == 1.0
    assert summarize_session(tab, moving_speed=25.0).set_index("individual").loc["a", "time_moving_s"] == 0.0
    with pytest.raises(KeyError, match="paw"):
        compute_feature_table(ds, keypoint="paw")


def test_cli_compute_and_filter(tmp_path):
    from pose.io import save

    ds = _two_mice()
    ds.attrs["px_per_mm"] = None
    ds["confidence"][:] = 0.9
    src = tmp_path / "pose.nc"
    save(ds, src)
    zones = tmp_path / "zones.json"
    Z.save_zones(Z.open_field_zones((0, 0, 200, 200)), zones)
    out = tmp_path / "features.parquet"
    res = CliRunner().invoke(app, ["compute", str(src), "--zones", str(zones), "--px-per-mm", "2",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    tab = pd.read_parquet(out)
    assert {"time_s", "individual", "speed_mm_s", "in_centre"} <= set(tab.columns)
    np.testing.assert_allclose(tab[tab.individual == "a"].speed_mm_s, 20.0, atol=1e-6)
    meta = json.loads((tmp_path / "features.summary.json").read_text())
    assert meta["summary"][0]["individual"] == "a" and meta["history"]
    assert (tmp_path / "features.summary.csv").exists()
    bad = CliRunner().invoke(app, ["compute", str(tmp_path / "missing.nc"), "--out", str(out)])
    assert bad.exit_code == 1 and "missing.nc" in bad.output
    res = CliRunner().invoke(app, ["filter", str(src), "--method", "kalman", "--out", str(tmp_path / "k.nc")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["filter", str(src), "--method", "wavelet", "--out", str(tmp_path / "k.nc")])
    assert res.exit_code == 1 and "wavelet" in res.output


def test_untracked_individual_gives_nan_not_zero():
    ds = _two_mice()
    ds["position"].loc[{"individual": "b"}] = np.nan
    zs = Z.open_field_zones((0, 0, 200, 200))
    summ = summarize_session(compute_feature_table(ds, zs)).set_index("individual")
    for col in ("distance_mm", "mean_speed_mm_s", "time_moving_s", "time_in_centre_s", "time_in_centre_pct",
                "entries_centre", "latency_centre_s"):
        assert np.isnan(summ.loc["b", col]), col
    assert summ.loc["a", "distance_mm"] == pytest.approx(198.0) and summ.loc["a", "entries_centre"] == 1
    assert summ.loc["a", "time_in_centre_pct"] == pytest.approx(100 * summ.loc["a", "time_in_centre_s"] / 10.0)
