"""Pictures for the labelling page, without Streamlit: the clickable frame and label overlays.

:func:`build_label_figure` returns a plotly figure whose x/y axes are image pixels (the
centre of pixel ``(col, row)`` is at ``x=col, y=row``, DeepLabCut's convention). Under the
image lies a grid of invisible points (trace ``"click-grid"``): Streamlit reports plotly
*selections*, not raw clicks, so a click anywhere on the image selects the nearest grid
point and the page reads its pixel coordinates. The grid step shrinks with the zoom so a
click is always within half a grid step (``grid_step_px / 2``) of where it was meant.

:func:`draw_skeleton` renders labels and skeleton onto a frame (the "check labels" view).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

GRID_TRACE = "click-grid"
LABEL_TRACE = "labels"
MACHINE_TRACE = "machine"
MAX_GRID_POINTS = 12_000

PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (128, 0, 0), (170, 255, 195),
]


def keypoint_colour(k: int) -> tuple[int, int, int]:
    """RGB colour of body part number ``k`` (stable across views)."""
    return PALETTE[k % len(PALETTE)]


@dataclass(frozen=True)
class View:
    """The part of the frame shown: pixel bounds ``[x0, x1) x [y0, y1)``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def compute_view(width: int, height: int, zoom: float, center_xy: tuple[float, float] | None) -> View:
    """Crop of a ``width x height`` frame at magnification ``zoom`` around ``center_xy``."""
    if zoom < 1:
        raise ValueError(f"zoom must be >= 1, got {zoom}")
    w, h = max(8, int(round(width / zoom))), max(8, int(round(height / zoom)))
    w, h = min(w, width), min(h, height)
    cx, cy = center_xy if center_xy is not None and np.all(np.isfinite(center_xy)) else (width / 2, height / 2)
    x0 = int(np.clip(round(cx - w / 2), 0, width - w))
    y0 = int(np.clip(round(cy - h / 2), 0, height - h))
    return View(x0, y0, x0 + w, y0 + h)


def grid_step_px(view: View, max_points: int = MAX_GRID_POINTS) -> int:
    """Spacing of the click grid: 1 px when the view is small enough, larger otherwise."""
    return max(1, int(np.ceil(np.sqrt(view.width * view.height / max_points))))


def _png_data_uri(image: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode the frame as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def build_label_figure(
    image: np.ndarray,
    keypoints: Sequence[str],
    labels_xy: np.ndarray,
    *,
    current: int | None = None,
    machine_xy: np.ndarray | None = None,
    machine_confidence: np.ndarray | None = None,
    p_cutoff: float = 0.6,
    view: View | None = None,
    skeleton: Sequence[tuple[str, str]] = (),
    height_px: int = 600,
):
    """Plotly figure of one frame with human labels, machine labels and a click grid.

    Parameters
    ----------
    image
        RGB frame, (height, width, 3) uint8.
    keypoints
        Body-part names, in the order of ``labels_xy``'s rows.
    labels_xy
        Human labels, (n_keypoints, 2) px, NaN = none. Drawn as filled circles; the
        ``current`` body part larger with a white ring.
    machine_xy, machine_confidence
        Model predictions to correct, (n_keypoints, 2) and (n_keypoints,). Drawn as open
        diamonds; those below ``p_cutoff`` as small crosses (low confidence).
    view
        Crop to show (zoom); default the whole frame.
    skeleton
        Body-part pairs joined by lines.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces, in order: the image, skeleton lines, machine labels, human labels
        (``customdata`` = body-part index), the click grid (``customdata`` = -1).
    """
    import plotly.graph_objects as go

    h, w = image.shape[:2]
    view = view or View(0, 0, w, h)
    crop = np.ascontiguousarray(image[view.y0:view.y1, view.x0:view.x1])
    fig = go.Figure()
    fig.add_trace(go.Image(source=_png_data_uri(crop), x0=view.x0, y0=view.y0, dx=1, dy=1,
                           hoverinfo="skip", name="frame"))
    names = list(keypoints)
    for a, b in skeleton:
        if a in names and b in names:
            pa, pb = labels_xy[names.index(a)], labels_xy[names.index(b)]
            if np.isfinite(pa).all() and np.isfinite(pb).all():
                fig.add_trace(go.Scatter(x=[pa[0], pb[0]], y=[pa[1], pb[1]], mode="lines",
                                         line={"color": "rgba(255,255,255,0.6)", "width": 1},
                                         hoverinfo="skip", showlegend=False))
    if machine_xy is not None:
        conf = (np.ones(len(names)) if machine_confidence is None
                else np.nan_to_num(np.asarray(machine_confidence, float), nan=1.0))
        ok = np.isfinite(machine_xy[:, 0])
        for low, symbol, label in ((False, "diamond-open", "prediction"),
                                   (True, "x-thin-open", "prediction (low confidence)")):
            sel = ok & ((conf < p_cutoff) if low else (conf >= p_cutoff))
            if sel.any():
                idx = np.flatnonzero(sel)
                fig.add_trace(go.Scatter(
                    x=machine_xy[idx, 0], y=machine_xy[idx, 1], mode="markers", name=label,
                    marker={"symbol": symbol, "size": 12 if not low else 9, "line": {"width": 2},
                            "color": [f"rgb{keypoint_colour(k)}" for k in idx]},
                    text=[f"{names[k]} p={conf[k]:.2f}" for k in idx],
                    hovertemplate="%{text}<extra></extra>", customdata=np.full(idx.size, -2),
                ))
    placed = np.flatnonzero(np.isfinite(labels_xy[:, 0]))
    fig.add_trace(go.Scatter(
        x=labels_xy[placed, 0], y=labels_xy[placed, 1], mode="markers", name=LABEL_TRACE,
        marker={"size": [16 if k == current else 10 for k in placed],
                "color": [f"rgb{keypoint_colour(k)}" for k in placed],
                "line": {"color": ["white" if k == current else "black" for k in placed],
                         "width": [3 if k == current else 1 for k in placed]}},
        customdata=placed, text=[names[k] for k in placed],
        hovertemplate="%{text} (%{x:.1f}, %{y:.1f})<extra></extra>",
    ))
    step = grid_step_px(view)
    gx, gy = np.meshgrid(np.arange(view.x0, view.x1, step), np.arange(view.y0, view.y1, step))
    # last: on a tie (a click right on a label) plotly picks the label, not the grid
    fig.add_trace(go.Scatter(
        x=gx.ravel(), y=gy.ravel(), mode="markers", name=GRID_TRACE,
        marker={"size": max(2, step), "opacity": 0.0, "color": "white"},
        customdata=np.full(gx.size, -1), hovertemplate="(%{x}, %{y})<extra></extra>",
        showlegend=False,
    ))
    fig.update_xaxes(range=[view.x0 - 0.5, view.x1 - 0.5], showgrid=False, zeroline=False,
                     constrain="domain")
    fig.update_yaxes(range=[view.y1 - 0.5, view.y0 - 0.5], showgrid=False, zeroline=False,
                     scaleanchor="x", scaleratio=1, constrain="domain")
    fig.update_layout(height=height_px, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      clickmode="event+select", dragmode=False, hovermode="closest",
                      hoverdistance=20, legend={"orientation": "h", "y": -0.02})
    return fig


def draw_skeleton(
    image: np.ndarray,
    xy: np.ndarray,
    keypoints: Sequence[str],
    skeleton: Sequence[tuple[str, str]] = (),
    *,
    radius_px: int = 4,
) -> np.ndarray:
    """Draw labelled points (one colour per body part) and skeleton lines on a copy of ``image``."""
    out = image.copy()
    names = list(keypoints)
    for a, b in skeleton:
        if a in names and b in names:
            pa, pb = xy[names.index(a)], xy[names.index(b)]
            if np.isfinite(pa).all() and np.isfinite(pb).all():
                cv2.line(out, tuple(int(round(v)) for v in pa), tuple(int(round(v)) for v in pb),
                         (255, 255, 255), 1, cv2.LINE_AA)
    for k, p in enumerate(xy):
        if np.isfinite(p).all():
            centre = tuple(int(round(v)) for v in p)
            cv2.circle(out, centre, radius_px, keypoint_colour(k), -1, cv2.LINE_AA)
            cv2.circle(out, centre, radius_px, (0, 0, 0), 1, cv2.LINE_AA)
    return out
