"""``features.filters.clean``: the one cleaning entry point (typed steps, mm/s thresholds)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError
from typer.testing import CliRunner

from features import filters
from features.cli import app
from features.steps import (
    CleanStep,
    ConfidenceMask,
    Interpolate,
    Kalman,
    Median,
    RemoveJumps,
    SavGol,
    standard_steps,
)
from pose.dataset import from_numpy

FPS = 30.0


def _track(n=900, seed=0, spikes=()):
    """One keypoint on a slow circle (radius 60 px, 0.2 Hz), 1 px jitter, spikes of 80 px."""
    t = np.arange(n) / FPS
    rng = np.random.default_rng(seed)
    truth = np.zeros((n, 2, 1, 1))
    truth[:, 0, 0, 0] = 300 + 60 * np.cos(2 * np.pi * 0.2 * t)
    truth[:, 1, 0, 0] = 300 + 60 * np.sin(2 * np.pi * 0.2 * t)
    pos = truth + rng.normal(0, 1.0, truth.shape)
    conf = rng.uniform(0.8, 1.0, (n, 1, 1))
    conf[100:110] = 0.1  # a dropout
    pos[100:110] += 40
    for f in spikes:
        pos[f, :, 0, 0] += 80.0  # confident outlier (an identity swap-like jump)
    return from_numpy(pos, conf, fps=FPS, keypoints=["body_center"]), truth


def test_clean_equals_the_chain_of_filters_and_records_it():
    ds, _ = _track()
    steps = [ConfidenceMask(threshold=0.5), RemoveJumps(max_speed_px_s=1500), Interpolate(max_gap_s=0.5),
             Median(window_s=0.1), SavGol(window_s=0.2, order=2)]
    out = filters.clean(ds, steps)
    ref = filters.filter_by_confidence(ds, p_cutoff=0.5)
    ref = filters.remove_jumps(ref, max_speed_px_s=1500)
    ref = filters.interpolate_gaps(ref, max_gap_s=0.5)
    ref = filters.filter_median(ref, window_s=0.1)
    ref = filters.filter_savgol(ref, window_s=0.2, polyorder=2)
    np.testing.assert_array_equal(out.position.values, ref.position.values)
    ops = [h["op"] for h in out.attrs["history"]]
    assert ops[-6:] == ["filter_by_confidence", "remove_jumps", "interpolate_gaps", "filter_median",
                        "filter_savgol", "clean"]
    assert [s["step"] for s in out.attrs["history"][-1]["params"]["steps"]] == [
        "confidence", "jumps", "interpolate", "median", "savgol"]
    assert "clean" not in [h["op"] for h in ds.attrs.get("history", [])]  # input untouched


def test_remove_jumps_in_mm_s_uses_the_calibration():
    ds, _ = _track(spikes=(300, 500))
    ds.attrs["px_per_mm"] = 3.0
    mm = filters.clean(ds, [RemoveJumps(max_speed_mm_s=500)])
    px = filters.remove_jumps(ds, max_speed_px_s=1500)
    np.testing.assert_array_equal(mm.position.values, px.position.values)
    assert np.isnan(mm.position.values[[300, 500], 0, 0, 0]).all()
    del ds.attrs["px_per_mm"]
    with pytest.raises(ValueError, match="px_per_mm"):
        filters.clean(ds, [RemoveJumps(max_speed_mm_s=500)])
    with pytest.raises(ValidationError, match="exactly one"):
        RemoveJumps(max_speed_mm_s=500, max_speed_px_s=1500)


def test_steps_parse_from_yaml_mappings_with_legacy_aliases():
    adapter = TypeAdapter(list[CleanStep])
    steps = adapter.validate_python([{"step": "confidence", "p_cutoff": 0.5},
                                     {"step": "savgol", "window_s": 0.2, "polyorder": 3},
                                     {"step": "kalman", "max_gap_s": 1.0}])
    assert steps == [ConfidenceMask(threshold=0.5), SavGol(window_s=0.2, order=3), Kalman(max_gap_s=1.0)]
    with pytest.raises(ValidationError, match="p_cutof"):
        adapter.validate_python([{"step": "confidence", "p_cutof": 0.5}])
    with pytest.raises(ValidationError):
        adapter.validate_python([{"step": "wavelet"}])


def test_standard_steps_kalman_keeps_jump_removal():
    assert standard_steps(threshold=0.6, max_gap_s=0.2, smooth="kalman", max_speed_px_s=900) == [
        RemoveJumps(max_speed_px_s=900), Kalman(min_confidence=0.6, max_gap_s=0.2)]
    assert standard_steps(smooth="none") == [ConfidenceMask(threshold=0.6), Interpolate(max_gap_s=0.2)]


def test_cli_filter_kalman_honours_max_speed(tmp_path):
    """Issue 17 item 10: ``--method kalman`` ignored ``--max-speed-px-s`` (confident spikes
    pulled the smoothed track off by ~20 px); now they are removed before the Kalman."""
    from pose.io import load, save

    spikes = tuple(range(200, 800, 37))
    ds, truth = _track(spikes=spikes)
    src = tmp_path / "pose.nc"
    save(ds, src)
    errs = {}
    for name, extra in (("plain", []), ("jumps", ["--max-speed-px-s", "600"])):
        out = tmp_path / f"{name}.nc"
        res = CliRunner().invoke(app, ["filter", str(src), "--method", "kalman", "--p-cutoff", "0.5",
                                       "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
        got = load(out)
        err = np.linalg.norm(got.position.values[:, :, 0, 0] - truth[:, :, 0, 0], axis=1)
        errs[name] = float(np.nanmax(err[list(spikes)]))
        ops = [h["op"] for h in got.attrs["history"]]
        assert ("remove_jumps" in ops) == (name == "jumps")
    assert errs["plain"] > 10.0  # the bug: spikes leak through the Kalman
    assert errs["jumps"] < 5.0, errs
