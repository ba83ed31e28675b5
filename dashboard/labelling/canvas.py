"""The clickable frame of the labelling page: a small Streamlit component (``frontend/``).

Streamlit's plotly chart reports *selections* of plotted points, so clicks used to snap to a
grid of invisible points (6 px at 1x on a 640x480 frame). This component shows the frame as
an image with the labels drawn over it (SVG) and sends back the raw pointer position in
image pixels, sub-pixel at any zoom: the fractional pointer coordinates of the click,
converted with the view's offset and scale (``x = x0 - 0.5 + (clientX - left) * w / width``;
the centre of pixel ``(col, row)`` is at ``x=col, y=row``, DeepLabCut's convention). A label
can be dragged; the new position is drawn at once and confirmed by the rerun.

:func:`frame_source` encodes the crop (PNG when small, so every pixel is exact; JPEG q=92
for large crops, to keep each redraw small); :func:`canvas_args` builds the component's
arguments from the labels (pure, tested without a browser); :func:`label_canvas` draws it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from dashboard.labelling.figure import View, keypoint_colour

FRONTEND = Path(__file__).with_name("frontend")
#: crops up to this many pixels go as PNG (exact); larger ones as JPEG
PNG_MAX_PIXELS = 200_000
_component = None


def frame_source(image: np.ndarray, view: View, *, jpeg_quality: int = 92) -> str:
    """A data URI of the crop ``view`` of an RGB frame (PNG when small, else JPEG)."""
    crop = np.ascontiguousarray(image[view.y0:view.y1, view.x0:view.x1])
    bgr = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
    if crop.shape[0] * crop.shape[1] <= PNG_MAX_PIXELS:
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        mime = "image/png"
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        mime = "image/jpeg"
    if not ok:
        raise ValueError("could not encode the frame")
    return f"data:{mime};base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _rgb(k: int) -> str:
    return "rgb({},{},{})".format(*keypoint_colour(k))


def canvas_args(
    keypoints: Sequence[str],
    labels_xy: np.ndarray,
    view: View,
    *,
    current: int,
    zoom: float = 1.0,
    machine_xy: np.ndarray | None = None,
    machine_confidence: np.ndarray | None = None,
    p_cutoff: float = 0.6,
    skeleton: Sequence[tuple[str, str]] = (),
    message: str = "",
    max_height_px: int = 640,
) -> dict:
    """The component's arguments (JSON): view, points, colours, skeleton as index pairs.

    Parameters
    ----------
    labels_xy
        Human labels, (n_keypoints, 2) px, NaN = none.
    machine_xy, machine_confidence
        Predictions to correct, (n_keypoints, 2) and (n_keypoints,); drawn as diamonds,
        those below ``p_cutoff`` as crosses.
    """
    names = list(keypoints)
    points = [{"kind": "label", "k": int(k), "x": float(labels_xy[k, 0]), "y": float(labels_xy[k, 1]),
               "colour": _rgb(k)} for k in range(len(names)) if np.isfinite(labels_xy[k]).all()]
    if machine_xy is not None:
        conf = (np.ones(len(names)) if machine_confidence is None
                else np.nan_to_num(np.asarray(machine_confidence, float), nan=1.0))
        points += [{"kind": "machine" if conf[k] >= p_cutoff else "machine_low", "k": int(k),
                    "x": float(machine_xy[k, 0]), "y": float(machine_xy[k, 1]), "colour": _rgb(k)}
                   for k in range(len(names)) if np.isfinite(machine_xy[k]).all()]
    pairs = [[names.index(a), names.index(b)] for a, b in skeleton if a in names and b in names]
    return {"view": [view.x0, view.y0, view.width, view.height], "points": points, "current": int(current),
            "names": names, "colours": [_rgb(k) for k in range(len(names))], "skeleton": pairs,
            "zoom": float(zoom), "message": message, "max_height_px": int(max_height_px)}


def label_canvas(src: str, args: dict, *, key: str, on_change=None) -> dict | None:
    """Draw the component; its value is the last event (``kind``, ``x``, ``y``, ``k``, ``seq``)."""
    global _component
    if _component is None:
        import streamlit.components.v1 as components

        _component = components.declare_component("ethopose_label_canvas", path=str(FRONTEND))
    return _component(src=src, key=key, on_change=on_change, default=None, **args)
