"""Figures of the Animal QC page, as pure functions of the data (tested without a browser).

- :func:`trajectory_figure`: the centre's path with SVG ``Scatter`` (``Scattergl`` with a
  reversed y axis drew a flat line) and an explicit, reversed y range that spans the arena.
- :func:`occupancy_figure`: % of frames per bin, empty bins transparent (the floor stays
  white), a sequential white-to-dark-blue scale.
- :func:`confidence_figure`: one small panel per keypoint (confidence over time) with the
  confidence cut-off as a dashed red line; long recordings are reduced to the per-bin minimum
  so dips stay visible.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

#: sequential scale from white to dark blue (colour-blind safe, monotone in lightness)
OCCUPANCY_SCALE = [[0.0, "#f7fbff"], [0.25, "#c6dbef"], [0.5, "#6baed6"], [0.75, "#2171b5"], [1.0, "#08306b"]]
CUTOFF_COLOUR = "#d62728"


def confidence_cutoff(protocol: Any) -> float:
    """The confidence cut-off the protocol's QC used (its ``qc.p_cutoff``, else its confidence
    filter's threshold, else 0.5), as in :func:`protocols.qc.tracking_qc`."""
    rules = getattr(protocol, "qc", None)
    if rules is not None and getattr(rules, "p_cutoff", None) is not None:
        return float(rules.p_cutoff)
    for f in getattr(protocol, "filters", []) or []:
        if getattr(f, "step", None) == "confidence":
            value = getattr(f, "threshold", getattr(f, "p_cutoff", None))
            if value is not None:
                return float(value)
    return 0.5


def arena_box(geometry: dict | None, x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """``(x0, x1, y0, y1)`` of the arena corners when known, else of the finite track."""
    corners = (geometry or {}).get("arena_corners_px")
    if corners:
        c = np.asarray(corners, float)
        return float(c[:, 0].min()), float(c[:, 0].max()), float(c[:, 1].min()), float(c[:, 1].max())
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return 0.0, 1.0, 0.0, 1.0
    return float(x[ok].min()), float(x[ok].max()), float(y[ok].min()), float(y[ok].max())


def _image_axes(fig: go.Figure, box: tuple[float, float, float, float], pad_frac: float = 0.04) -> None:
    x0, x1, y0, y1 = box
    pad = pad_frac * max(x1 - x0, y1 - y0, 1.0)
    fig.update_xaxes(range=[x0 - pad, x1 + pad], title_text="x (px)", constrain="domain")
    fig.update_yaxes(range=[y1 + pad, y0 - pad], title_text="y (px, image rows down)", scaleanchor="x",
                     scaleratio=1, constrain="domain")


def trajectory_figure(frames: pd.DataFrame, geometry: dict | None, frame: int, *, height: int = 420) -> go.Figure:
    """The centre keypoint's path (``x_px``, ``y_px``) over the arena, the current frame marked."""
    x = frames["x_px"].to_numpy(float)
    y = frames["y_px"].to_numpy(float)
    fig = go.Figure()
    corners = (geometry or {}).get("arena_corners_px")
    if corners:
        c = np.asarray(list(corners) + list(corners[:1]), float)
        fig.add_trace(go.Scatter(x=c[:, 0], y=c[:, 1], mode="lines", line={"color": "#888888", "width": 1},
                                 name="arena", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line={"width": 1, "color": "#0072B2"}, name="path"))
    i = int(np.clip(frame, 0, len(x) - 1)) if len(x) else 0
    if len(x):
        fig.add_trace(go.Scatter(x=[x[i]], y=[y[i]], mode="markers", marker={"size": 11, "color": "#D55E00"},
                                 name="this frame"))
    _image_axes(fig, arena_box(geometry, x, y))
    # no in-figure title: the page's subheader names the panel, and a title collides with plotly's
    # toolbar in a half-width column; ``meta`` identifies the figure (browser tests)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False,
                      meta="trajectory")
    return fig


def occupancy_figure(hist: np.ndarray, x_edges: np.ndarray, y_edges: np.ndarray, *, height: int = 420) -> go.Figure:
    """Occupancy heatmap (% of tracked frames per bin); empty bins are transparent."""
    pct = 100.0 * np.asarray(hist, float).T
    z = np.where(pct > 0, pct, np.nan)
    fig = go.Figure(go.Heatmap(z=z, x=(x_edges[:-1] + x_edges[1:]) / 2, y=(y_edges[:-1] + y_edges[1:]) / 2,
                               colorscale=OCCUPANCY_SCALE, zmin=0, zmax=float(np.nanmax(z)) if np.isfinite(z).any() else 1,
                               colorbar={"title": {"text": "% of frames"}}, hoverongaps=False,
                               hovertemplate="x %{x:.0f} px, y %{y:.0f} px: %{z:.2f} %<extra></extra>"))
    _image_axes(fig, (float(x_edges[0]), float(x_edges[-1]), float(y_edges[0]), float(y_edges[-1])), pad_frac=0.0)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, plot_bgcolor="white",
                      meta="occupancy")
    return fig


def _min_pool(t: np.ndarray, c: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduce to at most ``max_points`` bins keeping each bin's lowest confidence (a bin with a
    missing sample is missing: a gap in the line)."""
    n = len(t)
    if n <= max_points:
        return t, c
    starts = np.unique(np.linspace(0, n, max_points + 1).astype(int)[:-1])
    return t[starts], np.minimum.reduceat(c, starts)


def confidence_figure(t: np.ndarray, conf: np.ndarray, keypoints: list[str], cutoff: float, frame: int | None = None,
                      *, max_points: int = 2000, panel_px: int = 62) -> go.Figure:
    """Small multiples: confidence (0-1) of each keypoint over time, the cut-off dashed in red.

    Each panel's title gives the keypoint and its % of frames below the cut-off (missing
    counts as below).
    """
    from plotly.subplots import make_subplots

    n = len(keypoints)
    below = [100.0 * float(np.mean(~(np.nan_to_num(conf[:, j], nan=-1.0) >= cutoff))) for j in range(n)]
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=min(0.3 / max(n, 1), 0.04),
                        subplot_titles=[f"{k}: {b:.1f} % below {cutoff:g}" for k, b in zip(keypoints, below, strict=True)])
    for j in range(n):
        tt, cc = _min_pool(np.asarray(t, float), np.asarray(conf[:, j], float), max_points)
        fig.add_trace(go.Scatter(x=tt, y=cc, mode="lines", line={"width": 1, "color": "#0072B2"}, name=keypoints[j],
                                 hovertemplate="%{x:.2f} s: %{y:.2f}<extra>" + keypoints[j] + "</extra>"),
                      row=j + 1, col=1)
        fig.add_hline(y=cutoff, line={"dash": "dash", "color": CUTOFF_COLOUR, "width": 1}, row=j + 1, col=1)
        if frame is not None and len(t):
            fig.add_vline(x=float(t[int(np.clip(frame, 0, len(t) - 1))]), line={"dash": "dot", "color": "#555555",
                                                                              "width": 1}, row=j + 1, col=1)
    fig.update_yaxes(range=[0, 1.05], tickvals=[0, 0.5, 1], tickfont={"size": 9})
    fig.update_xaxes(title_text="time (s)", row=n, col=1)
    fig.update_annotations(font={"size": 11}, xanchor="left", x=0)
    fig.update_layout(height=max(220, panel_px * n + 80), margin={"l": 40, "r": 10, "t": 30, "b": 40},
                      showlegend=False)
    return fig
