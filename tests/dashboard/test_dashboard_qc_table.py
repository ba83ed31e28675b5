"""Traffic-light QC table from endpoints.csv's qc columns; worst frames of an animal."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.qc_table import COLOURS, qc_table, style_qc, worst_frames


def test_flags_from_qc_columns_worst_first_and_red_for_fail():
    table = pd.DataFrame({
        "subject_id": ["a", "b", "c"], "session": ["1", "1", "1"], "group": ["x", "x", "y"],
        "quality_flag": ["ok", "low_coverage", "ok"], "qc_flag": ["ok", "fail", "warn"],
        "qc_reasons": [np.nan, "low confidence 58.8 % > 20 %", "jumps 6.0/min > 5/min (warn)"],
        "qc_low_confidence_pct": [1.0, 58.8, 3.0], "qc_jumps_per_min": [0.0, 1.0, 6.0],
        "qc_interpolated_pct": [0.5, 58.2, 1.0]})
    qc = qc_table(table)
    assert list(qc["subject_id"]) == ["b", "c", "a"]
    assert list(qc["tracking"]) == ["● fail", "● warn", "● ok"]
    assert qc.loc[0, "% below cut-off"] == 58.8 and qc.loc[0, "reasons"].startswith("low confidence")
    html = style_qc(qc).to_html()
    assert f"background-color: {COLOURS['fail']};\n  color: white;" in html and COLOURS["fail"] == "#d73027"
    assert ">flag<" not in html and ">fail<" not in html  # the raw flag column is not shown


def test_older_results_fall_back_to_coverage_flag():
    qc = qc_table(pd.DataFrame({"subject_id": ["a", "b"], "session": [1, 1], "group": ["x", "x"],
                                "quality_flag": ["ok", "no_centre"]}))
    assert list(qc["flag"]) == ["fail", "ok"]
    assert "coverage: no_centre" in qc.loc[0, "reasons"] and "older run" in qc.loc[0, "reasons"]
    assert list(qc_table(pd.DataFrame({"subject_id": ["a"], "session": [1], "group": ["x"]}))["flag"]) == ["unknown"]


def test_worst_frames_most_keypoints_below_first():
    conf = np.full((50, 3), 0.9)
    conf[7] = [0.1, 0.2, np.nan]  # all three below (missing counts)
    conf[3, :2] = 0.3
    conf[20, 0] = 0.4
    conf[30, 0] = 0.01
    w = worst_frames(conf, 0.5, ["s", "c", "t"], n=4)
    assert list(w["frame"]) == [7, 3, 30, 20]
    assert list(w["keypoints below cut-off"]) == [3, 2, 1, 1] and w.loc[0, "which"] == "s, c, t"
