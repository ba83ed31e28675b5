"""Endpoint intervals (protocols.uncertainty) against the virtual mouse's truth."""

from __future__ import annotations

import numpy as np
import pytest

from pose.dataset import from_numpy
from pose.synthetic.openfield import simulate_open_field
from protocols.geometry import ArenaPlacement, compile_zones
from protocols.schema import load_protocol
from protocols.uncertainty import _endpoints, endpoint_intervals, moving_average

PROTOCOL = load_protocol("open_field")


def _session(seed: int, seconds: float = 20.0):
    tr = simulate_open_field(seconds, seed=seed, center_preference=0.5)
    b = tr.arena["bounds_px"]
    placement = ArenaPlacement(np.array([[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]], float),
                               PROTOCOL.arena.width_mm, PROTOCOL.arena.height_mm)
    return tr, compile_zones(PROTOCOL, placement), placement.px_per_mm


def _jitter(tr, sd_px: float, seed: int):
    ds = tr.pose
    rng = np.random.default_rng(seed)
    pos = ds["position"].values + sd_px * rng.standard_normal(ds["position"].shape)
    return from_numpy(pos, ds["confidence"].values, keypoints=[str(k) for k in ds["keypoint"].values],
                      fps=float(ds.attrs["fps"]), px_per_mm=float(ds.attrs["px_per_mm"]))


def _truth(tr, zones, ppm):
    one = tr.pose.sel(keypoint=["body_center"]).copy(deep=True)
    one["position"].values[:, :2, 0, 0] = moving_average(one["position"].values[:, :2, 0, 0], 3)
    return _endpoints(one, PROTOCOL.filters, zones, "body_center", ppm, PROTOCOL.min_dwell_s).iloc[0]


def _iv(ds, zones, ppm, **kw):
    return endpoint_intervals(ds, PROTOCOL.filters, zones, centre="body_center", px_per_mm=ppm,
                              min_dwell_s=PROTOCOL.min_dwell_s, **kw).set_index("endpoint")


def test_zero_jitter_collapses_and_more_jitter_widens():
    tr, zones, ppm = _session(1)
    exact = _iv(tr.pose, zones, ppm, sigma_px=0.0, n_boot=20)
    np.testing.assert_allclose(exact["lo"], exact["value"], atol=1e-9)
    np.testing.assert_allclose(exact["hi"], exact["value"], atol=1e-9)
    widths = []
    for sd in (0.5, 3.0):
        iv = _iv(_jitter(tr, sd, 5), zones, ppm, n_boot=60)
        assert iv.loc["distance_mm", "sigma_px"] == pytest.approx(sd, rel=0.3)  # error model from the track
        widths.append(iv["hi"] - iv["lo"])
    assert widths[1]["distance_mm"] > 2 * widths[0]["distance_mm"]
    assert widths[1]["centre_time_pct"] > widths[0]["centre_time_pct"]


def test_distance_interval_is_bias_corrected():
    """The raw distance of a jittery track is far above the truth; the interval is not."""
    tr, zones, ppm = _session(2)
    t = _truth(tr, zones, ppm)
    iv = _iv(_jitter(tr, 2.0, 7), zones, ppm, n_boot=100)
    d = iv.loc["distance_mm"]
    assert d["value"] > t["distance_mm"] * 1.15  # the biased point estimate
    assert d["lo"] - 0.05 * t["distance_mm"] <= t["distance_mm"] <= d["hi"] + 0.05 * t["distance_mm"]


def test_small_coverage():
    hits = []
    for seed in range(6):
        tr, zones, ppm = _session(20 + seed, seconds=15.0)
        t = _truth(tr, zones, ppm)
        iv = _iv(_jitter(tr, 1.5, 100 + seed), zones, ppm, n_boot=80, seed=seed)
        for e in ("centre_time_pct", "centre_entries", "distance_mm"):
            hits.append(iv.loc[e, "lo"] <= t[e] <= iv.loc[e, "hi"])
    assert np.mean(hits) >= 0.6, hits
