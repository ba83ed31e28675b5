"""Reviewing and correcting the identities of a multi-animal pose file (no Streamlit; tested alone).

The page (:mod:`dashboard.pages.pose_review`) is a thin view over these functions, which
are themselves thin over :mod:`pose.tracking`:

- :func:`suspect_table`: :func:`pose.tracking.detect_swap_suspects` as the rows a person
  reads (frame, time, individuals, reason, margin).
- :func:`swap_in_place`: :func:`pose.tracking.swap_identities` written back into the file
  (``pose.io.save`` writes a temporary file and renames it), the previous bytes kept first
  in an undo stack beside the file; :func:`undo_last` puts them back, byte for byte.
- :func:`corrections`: the identity corrections recorded in the file's history.
- :func:`identity_tracks`, :func:`identity_trajectory_figure`: each identity's centroid
  path, one colour per identity, so a swap shows as two paths that jump between animals.
- :func:`draw_identities`: one frame's keypoints, every animal in its identity's colour.

Only NetCDF (``.nc``) files are corrected in place: they keep the history and the identity
confidence; other formats are reviewed read-only (:func:`correctable`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import xarray as xr

from dashboard.plots import FONT, OKABE_ITO

#: hidden folder beside a corrected file holding its undo stack (``<name>/0001<suffix>``...)
UNDO_FOLDER = ".ethopose_undo"
#: suffixes the page corrects in place (formats that keep the history)
CORRECTABLE_SUFFIXES = (".nc",)
SUSPECT_VIEW_COLUMNS = ["frame", "time_s", "individuals", "reason", "margin", "kind"]
_REASONS = {"crossing": "tracks cross: centroids {value:.0f} px apart",
            "jump": "jump of {value:.0f} px in one frame",
            "low_margin": "identity confidence {value:.2f}",
            "gap": "reappears after {value:.0f} frames unseen"}


def identity_colour(i: int) -> str:
    """Okabe-Ito hex colour of identity number ``i``."""
    return OKABE_ITO[i % len(OKABE_ITO)]


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def correctable(path: str | os.PathLike) -> bool:
    """True when the page may write identity corrections into ``path`` (a NetCDF file)."""
    return Path(path).suffix.lower() in CORRECTABLE_SUFFIXES


def suspect_table(ds: xr.Dataset, suspects: pd.DataFrame | None = None) -> pd.DataFrame:
    """The swap suspects of a tracked pose as the rows of the review table.

    Parameters
    ----------
    ds
        Pose Dataset with two or more individuals.
    suspects
        Its :func:`pose.tracking.detect_swap_suspects` table (computed with the defaults,
        which are derived from the animals' body size, when not given).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUSPECT_VIEW_COLUMNS`: ``frame`` (frame number to look at),
        ``time_s``, ``individuals`` (``"mouse_0 & mouse_1"`` for a crossing, else one
        name), ``reason`` (words and the measured value), ``margin`` (lowest identity
        confidence over the event; NaN when the file has none) and ``kind``. Sorted by frame.
    """
    from pose.tracking import detect_swap_suspects

    s = detect_swap_suspects(ds) if suspects is None else suspects
    rows = pd.DataFrame({
        "frame": s["frame"].astype(int),
        "time_s": s["time_s"].astype(float),
        "individuals": [f"{a} & {b}" if b else str(a) for a, b in zip(s["individual"], s["other"], strict=True)],
        "reason": [_REASONS.get(k, k + " {value:.3g}").format(value=v) for k, v in zip(s["kind"], s["value"], strict=True)],
        "margin": s["min_identity_confidence"].astype(float),
        "kind": s["kind"].astype(str),
    }, columns=SUSPECT_VIEW_COLUMNS)
    return rows.reset_index(drop=True)


def swap_pair(row: pd.Series, names: Sequence[str]) -> tuple[str, str]:
    """The two identities a suspect row proposes to swap: both of a crossing; for a one-animal
    event (jump, gap, low margin), that animal and the first other one."""
    parts = [p.strip() for p in str(row["individuals"]).split("&")]
    names = [str(n) for n in names]
    first = parts[0] if parts[0] in names else names[0]
    second = parts[1] if len(parts) > 1 and parts[1] in names else next(n for n in names if n != first)
    return first, second


def _undo_dir(path: Path) -> Path:
    return path.parent / UNDO_FOLDER / path.name


def undo_depth(path: str | os.PathLike) -> int:
    """How many corrections of ``path`` can be undone."""
    d = _undo_dir(Path(path))
    return len(list(d.glob(f"[0-9]*{Path(path).suffix}"))) if d.is_dir() else 0


def swap_in_place(path: str | os.PathLike, a: str, b: str, from_frame: int) -> xr.Dataset:
    """Exchange identities ``a`` and ``b`` from frame ``from_frame`` on, in the file itself.

    The file's current bytes go onto its undo stack first (:func:`undo_last` restores them);
    then :func:`pose.tracking.swap_identities` (which records the correction in the
    history) and :func:`pose.io.save` (a temporary file renamed onto ``path``).

    Parameters
    ----------
    path
        A NetCDF pose file with both individuals (:func:`correctable`).
    a, b
        The individuals to exchange.
    from_frame
        First frame number that is swapped.

    Returns
    -------
    xarray.Dataset
        The corrected Dataset, as written.

    Raises
    ------
    ValueError
        Not a NetCDF file; an unknown individual or a frame outside the file (from
        :func:`pose.tracking.swap_identities`; nothing is written then).
    """
    from pose.atomic import copy_atomic
    from pose.io import load, save
    from pose.tracking import swap_identities

    path = Path(path)
    if not correctable(path):
        raise ValueError(f"{path.name}: identities are corrected in NetCDF (.nc) files only (they keep the "
                         "history); track into one with `ethopose pose track FILE --out tracked.nc`")
    fixed = swap_identities(load(path), a, b, int(from_frame))  # load() reads into memory, closes the file
    d = _undo_dir(path)
    d.mkdir(parents=True, exist_ok=True)
    copy_atomic(path, d / f"{undo_depth(path) + 1:04d}{path.suffix}")
    save(fixed, path)
    return fixed


def undo_last(path: str | os.PathLike) -> bool:
    """Put back the file as it was before its last correction (byte for byte).

    Returns
    -------
    bool
        False when there is nothing to undo.
    """
    from pose.atomic import copy_atomic

    path = Path(path)
    n = undo_depth(path)
    if n == 0:
        return False
    slot = _undo_dir(path) / f"{n:04d}{path.suffix}"
    copy_atomic(slot, path)
    slot.unlink()
    return True


def corrections(ds: xr.Dataset) -> pd.DataFrame:
    """The identity swaps recorded in ``ds``'s history: ``a``, ``b``, ``from_frame``, ``time``."""
    rows = [{"a": h["params"].get("a"), "b": h["params"].get("b"), "from_frame": h["params"].get("from_frame"),
             "time": h.get("time")}
            for h in ds.attrs.get("history", []) if isinstance(h, dict) and h.get("op") == "swap_identities"]
    return pd.DataFrame(rows, columns=["a", "b", "from_frame", "time"])


def identity_tracks(ds: xr.Dataset) -> np.ndarray:
    """Centroid of each identity per row, ``(time, 2, individual)`` px
    (:func:`pose.tracking.instance_centroids`: confident keypoints, NaN when none)."""
    from pose.tracking import instance_centroids

    return instance_centroids(ds["position"].transpose("time", "space", "keypoint", "individual").values[:, :2],
                              ds["confidence"].transpose("time", "keypoint", "individual").values)


def max_step_px(tracks: np.ndarray) -> np.ndarray:
    """Largest one-row centroid displacement of each identity, px (``(individual,)``)."""
    step = np.linalg.norm(np.diff(tracks, axis=0), axis=1)  # (time - 1, individual)
    return np.nanmax(np.where(np.isfinite(step), step, -np.inf), axis=0)


def identity_trajectory_figure(tracks: np.ndarray, names: Sequence[str], row: int | None = None, *,
                               height: int = 440) -> go.Figure:
    """Each identity's centroid path over the session, one colour per identity (image
    coordinates: y down, equal aspect); a large dot marks each one at ``row``.

    Parameters
    ----------
    tracks
        ``(time, 2, individual)`` px (:func:`identity_tracks`).
    names
        Individual names.
    row
        Row of the frame shown (None: no marker).
    """
    fig = go.Figure()
    for i, name in enumerate(names):
        c = identity_colour(i)
        fig.add_trace(go.Scatter(x=tracks[:, 0, i], y=tracks[:, 1, i], mode="lines", name=str(name),
                                 line={"color": c, "width": 1.2}, meta={"identity": str(name)},
                                 hovertemplate="%{x:.0f}, %{y:.0f} px<extra>" + str(name) + "</extra>"))
    if row is not None and len(tracks):
        r = int(np.clip(row, 0, len(tracks) - 1))
        for i in range(len(names)):
            fig.add_trace(go.Scatter(x=[tracks[r, 0, i]], y=[tracks[r, 1, i]], mode="markers", showlegend=False,
                                     marker={"color": identity_colour(i), "size": 13, "line": {"color": "black", "width": 1.5}},
                                     hoverinfo="skip"))
    fig.update_xaxes(title_text="x (px)", showline=True, linecolor="black", constrain="domain")
    fig.update_yaxes(title_text="y (px)", showline=True, linecolor="black", autorange="reversed", scaleanchor="x",
                     scaleratio=1)
    fig.update_layout(height=height, template="simple_white", font=FONT, meta="identity_trajectory",
                      legend={"orientation": "h", "y": 1.08}, margin={"l": 60, "r": 10, "t": 40, "b": 50})
    return fig


def draw_identities(rgb: np.ndarray, xy: np.ndarray, confidence: np.ndarray, cutoff: float) -> np.ndarray:
    """One frame's keypoints drawn on a copy of ``rgb``, each animal in its identity's colour.

    Parameters
    ----------
    rgb
        Frame, (height, width, 3) uint8.
    xy
        ``(2, keypoint, individual)`` px.
    confidence
        ``(keypoint, individual)``; keypoints below ``cutoff`` (or NaN) are drawn as crosses
        in the identity's colour, confident ones as filled discs; the animal's name is written
        at its centroid.
    cutoff
        Confidence cut-off.
    """
    from dashboard.frames import marker_radius_px

    out = np.ascontiguousarray(rgb).copy()
    r = marker_radius_px(out.shape[1], out.shape[0])
    for i in range(xy.shape[2]):
        colour = _rgb(identity_colour(i))
        for k in range(xy.shape[1]):
            x, y = float(xy[0, k, i]), float(xy[1, k, i])
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            c = (int(round(x)), int(round(y)))
            if np.nan_to_num(confidence[k, i], nan=-1.0) >= cutoff:
                cv2.circle(out, c, r, colour, -1, cv2.LINE_AA)
                cv2.circle(out, c, r, (0, 0, 0), 1, cv2.LINE_AA)
            else:
                cv2.drawMarker(out, c, colour, cv2.MARKER_TILTED_CROSS, 2 * r, 2, cv2.LINE_AA)
    return out


def identity_key_html(names: Sequence[str]) -> str:
    """HTML colour key of the identities (names escaped: they come from the pose file)."""
    import html

    items = [f'<span style="white-space:nowrap;margin-right:1.2em"><span style="color:{identity_colour(i)};'
             f'font-size:1.3em">&#9679;</span>&nbsp;{html.escape(str(n))}</span>' for i, n in enumerate(names)]
    return '<div style="font-size:0.9em">' + " ".join(items) + " &nbsp;crosses: below the cut-off</div>"
