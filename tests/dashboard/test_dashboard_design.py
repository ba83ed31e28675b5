"""Time-binned endpoints (known answers) and the two-way ANOVA (against pingouin)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.design import (
    binned_endpoints,
    default_bin_s,
    design_factors,
    time_bins,
    two_way_anova,
)
from protocols.endpoints import open_field_endpoints

FPS = 25.0


def _frames() -> pd.DataFrame:
    """120 s: 10 mm/s along x for 60 s, then still; in the centre from 30 s to 45 s."""
    t = np.arange(int(120 * FPS)) / FPS
    x_mm = np.where(t < 60, 10 * t, 600.0)
    step = np.r_[np.nan, np.diff(x_mm)]
    return pd.DataFrame({
        "time_s": t, "frame": np.arange(len(t)), "x_px": 2 * x_mm, "y_px": np.full(len(t), 50.0),
        "x_mm": x_mm, "y_mm": np.full(len(t), 25.0), "speed_mm_s": step * FPS,
        "distance_mm": np.nancumsum(np.nan_to_num(step)), "in_centre": (t >= 30) & (t < 45),
        "in_wall": t >= 90})


def test_bins_are_the_protocol_endpoints_of_each_stretch():
    frames = _frames()
    b = binned_endpoints(frames, FPS, "open_field", 30.0)
    assert list(b["bin"]) == [1, 2, 3, 4] and list(b["start_s"]) == [0, 30, 60, 90]
    np.testing.assert_allclose(b["distance_mm"], [300 - 0.4, 300, 0.4, 0], atol=1e-6)  # 0.4 mm: the 1st bin's
    # first frame has no step before it; the step into the 3rd bin's first frame is the last move
    np.testing.assert_allclose(b["centre_time_pct"], [0, 50, 0, 0], atol=1e-9)
    np.testing.assert_allclose(b["thigmotaxis_pct"], [0, 0, 0, 100], atol=1e-9)
    assert list(b["centre_entries"]) == [0, 0, 0, 0]  # the 2nd bin starts inside: not an entry (as for a session)
    np.testing.assert_allclose(b["latency_to_centre_s"].iloc[1], 0.0)
    whole = open_field_endpoints(frames, FPS)
    assert b["distance_mm"].sum() == pytest.approx(whole["distance_mm"])  # bins add up to the session
    assert whole["centre_entries"] == 1


def test_bin_edges_and_default_lengths():
    frames = _frames()
    assert [(a, b) for a, b, _ in time_bins(frames, 50.0)] == [(0, 50), (50, 100)]  # the last 20 s: < half a bin
    assert [len(p) for _, _, p in time_bins(frames, 50.0)][:2] == [1250, 1250]
    assert [(a, b) for a, b, _ in time_bins(frames, 70.0)] == [(0, 70), (70, 120)]  # 50 s: kept, shorter
    assert len(time_bins(frames, 100.0)) == 1
    assert default_bin_s(1800)[0] == 600 and default_bin_s(1200)[0] == 300 and default_bin_s(400)[0] == 120
    assert default_bin_s(20)[0] == 5 and "quarters" in default_bin_s(20)[1]
    with pytest.raises(ValueError, match="elevated_plus_maze"):
        binned_endpoints(frames, FPS, "elevated_plus_maze", 30.0)


def _design(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g, dg in (("control", 0.0), ("treated", 3.0)):
        for s, ds in (("F", 0.0), ("M", 1.0)):
            n = {"control": 5, "treated": 4}[g] + (s == "M")  # unbalanced
            for _ in range(n):
                rows.append({"group": g, "sex": s, "distance_mm": 10 + dg + ds + (g == "treated") * (s == "M") * 2
                             + rng.normal(0, 1.5)})
    return pd.DataFrame(rows)


def test_two_way_anova_equals_pingouin_type_ii():
    pg = pytest.importorskip("pingouin")
    d = _design()
    ours = two_way_anova(d, "distance_mm", "sex").set_index("source")
    ref = pg.anova(data=d, dv="distance_mm", between=["group", "sex"], ss_type=2, detailed=True).set_index("Source")
    for src, ref_src in (("group", "group"), ("sex", "sex"), ("group x sex", "group * sex"), ("residual", "Residual")):
        assert ours.loc[src, "SS"] == pytest.approx(ref.loc[ref_src, "SS"], rel=1e-9)
        assert ours.loc[src, "df"] == ref.loc[ref_src, "DF"]
        if src != "residual":
            assert ours.loc[src, "F"] == pytest.approx(ref.loc[ref_src, "F"], rel=1e-9)
            assert ours.loc[src, "p"] == pytest.approx(ref.loc[ref_src, "p_unc" if "p_unc" in ref else "p-unc"], rel=1e-7)
            assert ours.loc[src, "partial_eta2"] == pytest.approx(ref.loc[ref_src, "np2"], rel=1e-7)


def test_two_way_needs_every_cell_and_a_second_level():
    d = _design()
    assert design_factors(d) == ["sex"] and design_factors(d.assign(sex="M")) == []
    cell = (d["group"] == "treated") & (d["sex"] == "F")
    small = pd.concat([d[~cell], d[cell].iloc[:1]])
    with pytest.raises(ValueError, match=r"treated x F: n = 1"):
        two_way_anova(small, "distance_mm", "sex")
    with pytest.raises(ValueError, match="2 or more levels"):
        two_way_anova(d.assign(sex="M"), "distance_mm", "sex")


def test_two_way_and_time_course_figures_show_the_cell_means():
    from dashboard.plots import OKABE_ITO, time_course_figure, two_way_figure

    d = _design().assign(subject_id=lambda t: [f"m{i}" for i in range(len(t))])
    fig = two_way_figure(d, "distance_mm", "sex", groups=["control", "treated"])
    means = [t for t in fig.data if t.marker.symbol == "line-ew-open"]
    cells = d.groupby(["group", "sex"])["distance_mm"]
    np.testing.assert_allclose([t.y[0] for t in means], cells.mean().to_numpy())
    np.testing.assert_allclose([t.error_y.array[0] for t in means], (cells.std() / np.sqrt(cells.count())).to_numpy())
    points = [t for t in fig.data if t.marker.symbol != "line-ew-open"]
    assert [t.marker.color for t in points] == [OKABE_ITO[0]] * 2 + [OKABE_ITO[1]] * 2
    assert [t.marker.symbol for t in points] == ["circle", "triangle-up"] * 2
    assert fig.layout.yaxis.title.text == "Distance (mm)" and sum(len(t.y) for t in points) == len(d)
    bins = pd.concat([binned_endpoints(_frames(), FPS, "open_field", 30.0).assign(subject_id=f"s{i}", group=g)
                      for i, g in enumerate(["control", "control", "treated"])])
    fig = time_course_figure(bins, "distance_mm", groups=["control", "treated"])
    mean = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in mean] == ["control", "treated"]
    np.testing.assert_allclose(mean[0].x, [15, 45, 75, 105])  # bin centres, s (a 2-min session)
    np.testing.assert_allclose(mean[1].y, [299.6, 300, 0.4, 0], atol=1e-6)
    assert fig.layout.xaxis.title.text == "Time (s, bin centre)" and len(fig.data) == 3 + 2
