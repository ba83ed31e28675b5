"""Validation report: self-contained HTML with the agreement numbers."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from behavior import agreement as ag
from behavior.report import block_fractions, build_validation_report, kappa_band
from tests.conftest import shared_path


def test_report_contents_match_agreement_numbers():
    rng = np.random.default_rng(0)
    ref = np.zeros(3000, int)
    for s in rng.choice(2900, 25, replace=False):
        ref[s:s + 60] = 1
    meth = ref.copy()
    meth[rng.random(3000) < 0.03] ^= 1
    raters = {"r1": ref, "r2": meth, "r3": np.roll(ref, 5)}
    page = build_validation_report(ref, {"auto": meth}, fps=30, raters=raters, block_s=10)
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 3
    assert f"{ag.cohen_kappa(ref, meth):.3f}" in page
    fk = ag.fleiss_kappa(np.stack(list(raters.values()), axis=1))
    assert f"{fk:.3f}" in page and "Bland-Altman" in page and "http" not in page.split("<body>")[1]
    with pytest.raises(ValueError, match="auto has 10 frames"):
        build_validation_report(ref, {"auto": meth[:10]}, fps=30)


def test_block_fractions_and_bands():
    v = np.r_[np.ones(10), np.zeros(10), np.ones(5), np.zeros(5)]
    np.testing.assert_allclose(block_fractions(v, fps=10, block_s=1), [100, 0, 50])
    with pytest.raises(ValueError, match="need >= 2"):
        block_fractions(v, fps=10, block_s=2)
    assert kappa_band(0.92) == "almost perfect" and kappa_band(0.7) == "substantial"


def test_validation_report_cli_demo1(tmp_path):
    from behavior.cli import app

    d = shared_path("behaviordepot-freezing", "demo1")
    raters = shared_path("behaviordepot-freezing", "raters")
    out = tmp_path / "report.html"
    res = CliRunner().invoke(app, [
        "validation-report", str(d / "hB_demo1_manual_annotations.mat"),
        str(d / "behaviordepot_behavior_output.mat"), "--fps", "50", "--behavior", "freezing",
        "--rater", str(raters / "hB_expert1.mat"), "--rater", str(raters / "hB_novice.mat"),
        "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert "0.873" in page and "hB_novice" in page
