"""Animal QC figures: SVG trajectory spanning the arena, white empty floor, cut-off per keypoint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.qc_figures import (
    OCCUPANCY_SCALE,
    confidence_cutoff,
    confidence_figure,
    occupancy_figure,
    trajectory_figure,
)
from protocols.report import occupancy_histogram

GEOM = {"arena_corners_px": [[50, 40], [450, 40], [450, 440], [50, 440]]}


def _frames(n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    th = np.linspace(0, 6 * np.pi, n)
    return pd.DataFrame({"x_px": 250 + 180 * np.cos(th) + rng.normal(0, 2, n),
                         "y_px": 240 + 180 * np.sin(th) + rng.normal(0, 2, n)})


def test_trajectory_is_svg_with_reversed_range_over_the_arena():
    fr = _frames()
    fig = trajectory_figure(fr, GEOM, 10)
    assert all(isinstance(tr, go.Scatter) for tr in fig.data)  # never Scattergl
    path = next(tr for tr in fig.data if tr.name == "path")
    np.testing.assert_allclose(np.asarray(path.y), fr["y_px"].to_numpy())
    lo, hi = fig.layout.yaxis.range[1], fig.layout.yaxis.range[0]
    assert hi > lo  # reversed: image rows go down
    assert lo <= 40 and hi >= 440 and (hi - lo) < 1.2 * 400  # spans the arena, not much more
    assert fig.layout.yaxis.scaleanchor == "x" and "px" in fig.layout.yaxis.title.text


def test_occupancy_empty_floor_transparent_and_scale_from_white():
    fr = _frames()
    h, xe, ye = occupancy_histogram(fr, GEOM)
    fig = occupancy_figure(h, xe, ye)
    z = np.asarray(fig.data[0].z, float)
    assert np.isnan(z[h.T == 0]).all() and (z[h.T > 0] > 0).all()
    np.testing.assert_allclose(np.nansum(z), 100.0, rtol=1e-9)  # % of frames
    first = OCCUPANCY_SCALE[0][1].lstrip("#")
    assert min(int(first[i:i + 2], 16) for i in (0, 2, 4)) >= 240  # starts white, not pink/black
    assert fig.layout.plot_bgcolor == "white"


def test_confidence_small_multiples_with_cutoff():
    t = np.arange(3000) / 25.0
    conf = np.full((3000, 3), 0.9)
    conf[100:400, 1] = 0.1  # 10 % below
    conf[2500, 2] = np.nan  # a single dip must survive the min-pooling
    fig = confidence_figure(t, conf, ["snout", "centre", "tail"], 0.6, 50, max_points=500)
    assert len(fig.data) == 3
    hlines = [s for s in fig.layout.shapes if s.y0 == s.y1 == 0.6]
    assert len(hlines) == 3
    titles = [a.text for a in fig.layout.annotations]
    assert titles[1] == "centre: 10.0 % below 0.6" and titles[0] == "snout: 0.0 % below 0.6"
    assert len(fig.data[1].x) <= 500 and np.nanmin(np.asarray(fig.data[1].y, float)) == 0.1
    assert np.isnan(np.asarray(fig.data[2].y, float)).any()


def test_cutoff_from_protocol():
    from protocols.schema import load_protocol

    proto = load_protocol("open_field")
    cut = confidence_cutoff(proto)
    filt = [f for f in proto.filters if f.step == "confidence"]
    expected = proto.qc.p_cutoff if getattr(proto, "qc", None) and proto.qc.p_cutoff is not None else (
        getattr(filt[0], "threshold", getattr(filt[0], "p_cutoff", 0.5)) if filt else 0.5)
    assert cut == expected and 0 < cut < 1
    assert confidence_cutoff(None) == 0.5
