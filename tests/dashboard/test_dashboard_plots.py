"""Figures ready to publish (dashboard.plots) and the model's error estimate (dashboard.model_eval)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.model_eval import find_evaluation, read_model_error
from dashboard.plots import (
    OKABE_ITO,
    agreement_scatter,
    bland_altman_figure,
    download_config,
    endpoint_figure,
    endpoints_with_intervals,
    group_colours,
    p_text,
    readable_name,
)


@pytest.mark.parametrize("name, text", [
    ("distance_mm", "Distance (mm)"), ("mean_speed_mm_s", "Mean speed (mm/s)"), ("distance_px", "Distance (px)"),
    ("centre_time_pct", "Centre time (%)"), ("latency_to_centre_s", "Latency to centre (s)"),
    ("rearing_count", "Rearing (count)"), ("centre_entries", "Centre entries"), ("qc_jumps_per_min", "QC jumps (per min)"),
])
def test_readable_names_carry_units(name: str, text: str):
    assert readable_name(name) == text


def test_group_colours_okabe_ito_reference_first():
    c = group_colours(["treated", "control"], reference="control")
    assert c == {"control": OKABE_ITO[0], "treated": OKABE_ITO[1]}
    assert len(set(group_colours([f"g{i}" for i in range(8)]).values())) == 8


def test_p_text_corrected_beside_raw_and_n_too_small():
    row = {"p": 0.0123, "p_holm": 0.0492, "p_bh": 0.0301, "test": "Welch t-test"}
    assert p_text(row) == "p = 0.012 (Holm 0.0492, BH 0.0301)"
    assert p_text({"p": 0.0004, "p_holm": 0.002, "p_bh": 0.001}) == "p < 0.001 (Holm 0.002, BH 0.001)"
    small = {"p": np.nan, "p_holm": np.nan, "p_bh": np.nan, "test": "none (need >= 2 groups with >= 2 animals)"}
    assert p_text(small) == "n too small (need >= 2 groups with >= 2 animals)"
    assert "nan" not in p_text(small)


def test_endpoint_figure_axes_colours_and_intervals():
    table = pd.DataFrame({"subject_id": ["a", "b", "c", "d"], "group": ["control", "control", "treated", "treated"],
                          "distance_mm": [100.0, 120.0, 150.0, 170.0]})
    table["distance_mm_lo"] = table["distance_mm"] - [5, 6, 7, 30]
    table["distance_mm_hi"] = table["distance_mm"] + [1, 2, 3, -10]  # d: bias-corrected, below its value
    eps, intervals = endpoints_with_intervals(list(table.columns[2:]))
    assert eps == ["distance_mm"] and intervals == {"distance_mm": ("distance_mm_lo", "distance_mm_hi")}
    fig = endpoint_figure(table, "distance_mm", interval=intervals["distance_mm"])
    assert fig.layout.yaxis.title.text == "Distance (mm)" and fig.layout.xaxis.title.text == "Group"
    points = [t for t in fig.data if t.type == "scatter" and t.mode == "markers"]
    assert [p.marker.color for p in points] == OKABE_ITO[:2]
    np.testing.assert_allclose(points[1].y, [150, 170])
    segments = [t for t in fig.data if t.type == "scatter" and t.mode == "lines"]
    assert [s.line.color for s in segments] == OKABE_ITO[:2]
    # each animal's interval is drawn from its lo to its hi at the animal's own x, even when
    # the interval lies wholly below the value (treated animal d: 140..160 around 170)
    seg_y = np.asarray(segments[1].y, float).reshape(-1, 3)
    np.testing.assert_allclose(seg_y[:, :2], [[143, 153], [140, 160]])
    seg_x = np.asarray(segments[1].x, float).reshape(-1, 3)
    np.testing.assert_allclose(seg_x[:, 0], points[1].x)
    np.testing.assert_allclose(seg_x[:, 1], points[1].x)


def test_endpoint_figure_shows_the_animals_the_test_uses():
    """A QC-flagged animal is left out of its group's box (as the statistics leave it out) and
    drawn apart as a grey cross, named with its flag."""
    table = pd.DataFrame({"subject_id": ["a", "b", "bad", "d", "e"],
                          "group": ["control", "control", "control", "treated", "treated"],
                          "quality_flag": ["ok", "ok", "low_coverage", "ok", None],
                          "distance_mm": [100.0, 120.0, 10.0, 150.0, 170.0]})
    fig = endpoint_figure(table, "distance_mm")
    boxes = {t.name: np.asarray(t.y, float) for t in fig.data if t.type == "box"}
    np.testing.assert_allclose(boxes["control"], [100, 120])
    np.testing.assert_allclose(boxes["treated"], [150, 170])
    crosses = [t for t in fig.data if t.type == "scatter" and t.marker.symbol == "x-thin"]
    assert len(crosses) == 1 and list(crosses[0].y) == [10.0]
    assert crosses[0].text == ("bad (left out: low_coverage)",)


def test_agreement_scatter_and_bland_altman_against_numpy():
    human = np.array([10.0, 20.0, 30.0, 40.0, np.nan])
    ours = np.array([12.0, 19.0, 33.0, 41.0, 5.0])
    sc = agreement_scatter(human, ours, "freezing_pct")
    identity = sc.data[0]
    assert identity.x[0] == identity.y[0] and identity.x[1] == identity.y[1]  # y = x
    assert sc.layout.xaxis.title.text == "Freezing (%), human"
    ba = bland_altman_figure(human, ours, "freezing_pct")
    d = np.array([2.0, -1.0, 3.0, 1.0])  # independent: ethopose - human of the complete pairs
    lines = sorted(s.y0 for s in ba.layout.shapes if s.type == "line" and s.y0 == s.y1 and s.y0 != 0)
    sd = d.std(ddof=1)
    np.testing.assert_allclose(lines, [d.mean() - 1.96 * sd, d.mean(), d.mean() + 1.96 * sd])
    np.testing.assert_allclose(ba.data[0].y, d)
    assert ba.layout.yaxis.title.text == "ethopose − human (%)" and ba.layout.meta["n"] == 4
    with pytest.raises(ValueError, match=">= 2 complete pairs"):
        bland_altman_figure([1.0], [2.0], "x")
    cfg = download_config("distance mm/by group", "png")
    assert cfg["toImageButtonOptions"] == {"format": "png", "filename": "distance_mm_by_group", "scale": 3}


def test_model_error_failed_verdict_and_root_check(tmp_path: Path):
    root = tmp_path / "root"
    (root / "results" / "model").mkdir(parents=True)
    failed = {"train": {"mean_px": 30.0, "normalized_error": 0.25, "pck_size10": 0.2},
              "test": {"mean_px": 41.0, "normalized_error": 0.31, "pck_size10": 0.1}, "animal_size_px": 130}
    (root / "results" / "model" / "evaluation.json").write_text(json.dumps(failed))
    f = find_evaluation(root, root / "results", {})
    m = read_model_error(f)
    assert m.failed and "FAILED" in m.warning and m.test_normalized_error == 0.31 and m.test_mean_px == 41.0
    good = {"train": {"mean_px": 2.0, "normalized_error": 0.015, "pck_size10": 0.99},
            "test": {"mean_px": 2.7, "normalized_error": 0.02, "pck_size10": 0.97}}
    (root / "m2").mkdir()
    (root / "m2" / "evaluation.json").write_text(json.dumps(good))
    m2 = read_model_error(find_evaluation(root, root / "x", {"model_dir": str(root / "m2")}))
    assert not m2.failed and m2.warning is None
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "evaluation.json").write_text(json.dumps(failed))
    assert find_evaluation(root, root / "x", {"model_dir": str(outside)}) is None  # outside the root: not read
    (root / "m2" / "evaluation.json").write_text("{not json")
    with pytest.raises(ValueError, match="evaluation.json: not valid JSON"):
        read_model_error(root / "m2" / "evaluation.json")
