"""3D trajectories of a triangulated pose (``space = x, y, z`` in mm), as pure functions.

The numbers come from :func:`features.threed.compute_feature_table_3d` (world ``x_mm,
y_mm, z_mm`` of the reference keypoint, heights above the floor the animal walks on), so
the dashboard shows the same heights as the features and the reports.

- :func:`is_3d`: a pose with a ``z`` axis.
- :func:`trajectory_3d`: the per-frame 3D table of one pose and how its floor was found.
- :func:`trajectory_3d_figure`: plotly ``scatter3d``, equal aspect in mm, the reference
  keypoint's path per individual and the keypoints of the frame shown.
- :func:`height_figure`: height above the floor over time (reference keypoint, snout, highest keypoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import xarray as xr

from dashboard.identities import identity_colour
from dashboard.plots import FONT

#: height columns of the 3D feature table drawn by :func:`height_figure`, with their labels
HEIGHT_COLUMNS = {"height_mm": "reference keypoint", "snout_height_mm": "snout", "max_height_mm": "highest keypoint"}


def is_3d(ds: xr.Dataset) -> bool:
    """True when the pose has three space axes (a triangulated pose, mm)."""
    return int(ds.sizes.get("space", 2)) == 3


@dataclass(frozen=True)
class Trajectory3D:
    """A 3D pose's per-frame table and what the page says about it.

    Attributes
    ----------
    table
        :func:`features.threed.compute_feature_table_3d` output (``time_s, frame, individual,
        x_mm, y_mm, z_mm`` and, when a floor was found, ``height_mm, snout_height_mm,
        max_height_mm``).
    reference
        The reference keypoint (body centre, or the keypoints' centroid).
    floor
        How the floor was found, or why it was not (then the table has no heights).
    """

    table: pd.DataFrame
    reference: str
    floor: str

    @property
    def has_heights(self) -> bool:
        return "height_mm" in self.table.columns


def trajectory_3d(ds: xr.Dataset) -> Trajectory3D:
    """Per-frame world positions and heights of a 3D pose (positions and heights only).

    Raises
    ------
    ValueError
        Not a 3D pose, or no frame rate (from the features).
    """
    from features.threed import compute_feature_table_3d

    if not is_3d(ds):
        raise ValueError(f"not a 3D pose: space = {list(map(str, ds['space'].values))}")
    table = compute_feature_table_3d(ds, families=())
    return Trajectory3D(table, str(table.attrs.get("reference_keypoint", "")), str(table.attrs.get("floor", "")))


def _per_individual(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    if "individual" not in table.columns:
        return [("", table)]
    return [(str(n), g) for n, g in table.groupby("individual", sort=False)]


def trajectory_3d_figure(traj: Trajectory3D, frame_xyz: np.ndarray | None = None, row: int | None = None, *,
                         keypoints: Sequence[str] = (), height: int = 520) -> go.Figure:
    """The reference keypoint's 3D path per individual, equal aspect in mm.

    Parameters
    ----------
    traj
        :func:`trajectory_3d` output.
    frame_xyz
        ``(3, keypoint, individual)`` mm of the frame shown, drawn as markers (None: none).
    row
        Row of that frame in the table of each individual (a marker on the path).
    keypoints
        Keypoint names (hover text of ``frame_xyz``).
    """
    fig = go.Figure()
    for i, (name, g) in enumerate(_per_individual(traj.table)):
        c = identity_colour(i)
        fig.add_trace(go.Scatter3d(x=g["x_mm"], y=g["y_mm"], z=g["z_mm"], mode="lines", name=f"{name} path".strip(),
                                   line={"color": c, "width": 3}, meta={"path": name},
                                   hovertemplate="%{x:.0f}, %{y:.0f}, %{z:.0f} mm<extra>" + name + "</extra>"))
        if row is not None and len(g):
            r = g.iloc[int(np.clip(row, 0, len(g) - 1))]
            fig.add_trace(go.Scatter3d(x=[r["x_mm"]], y=[r["y_mm"]], z=[r["z_mm"]], mode="markers", showlegend=False,
                                       marker={"color": c, "size": 6, "line": {"color": "black", "width": 1}},
                                       hoverinfo="skip"))
    if frame_xyz is not None:
        for i in range(frame_xyz.shape[2]):
            fig.add_trace(go.Scatter3d(x=frame_xyz[0, :, i], y=frame_xyz[1, :, i], z=frame_xyz[2, :, i], mode="markers",
                                       name="keypoints (this frame)", showlegend=i == 0, text=list(keypoints) or None,
                                       marker={"color": "#000000", "size": 3, "symbol": "diamond"},
                                       hovertemplate="%{text}: %{x:.0f}, %{y:.0f}, %{z:.0f} mm<extra></extra>"))
    axis = {"showline": True, "linecolor": "black", "backgroundcolor": "white", "gridcolor": "#dddddd"}
    fig.update_layout(height=height, font=FONT, meta="trajectory_3d", template="simple_white",
                      # equal aspect; the eye well outside the box (plotly's default 1.25 sits at a flat
                      # arena's corner and crops the path)
                      scene={"aspectmode": "data", "camera": {"eye": {"x": 1.7, "y": -1.7, "z": 1.3}}, "xaxis": {"title": {"text": "x (mm)"}, **axis},
                             "yaxis": {"title": {"text": "y (mm)"}, **axis}, "zaxis": {"title": {"text": "z (mm)"}, **axis}},
                      legend={"orientation": "h", "y": 1.02}, margin={"l": 0, "r": 0, "t": 30, "b": 0})
    return fig


def height_figure(traj: Trajectory3D, t: np.ndarray | None = None, *, height: int = 300) -> go.Figure:
    """Height above the floor over time (mm), per individual and height column; a dotted line at ``t`` s.

    Raises
    ------
    ValueError
        The table has no heights (no floor found: ``traj.floor`` says why).
    """
    if not traj.has_heights:
        raise ValueError(f"no heights: {traj.floor}")
    fig = go.Figure()
    dash = {"height_mm": "solid", "snout_height_mm": "dot", "max_height_mm": "dash"}
    many = traj.table["individual"].nunique() > 1 if "individual" in traj.table else False
    for i, (name, g) in enumerate(_per_individual(traj.table)):
        for col, label in HEIGHT_COLUMNS.items():
            if col not in g.columns:
                continue
            fig.add_trace(go.Scatter(x=g["time_s"], y=g[col], mode="lines", meta={"column": col, "individual": name},
                                     name=f"{name}: {label}" if many else label,
                                     line={"color": identity_colour(i if many else list(HEIGHT_COLUMNS).index(col)),
                                           "width": 1.2, "dash": dash[col] if many else "solid"},
                                     hovertemplate="%{x:.2f} s: %{y:.1f} mm<extra>" + label + "</extra>"))
    if t is not None:
        fig.add_vline(x=float(t), line={"dash": "dot", "color": "#555555", "width": 1})
    fig.update_xaxes(title_text="time (s)", showline=True, linecolor="black")
    fig.update_yaxes(title_text="height above the floor (mm)", showline=True, linecolor="black", zeroline=True,
                     zerolinecolor="#bbbbbb")
    fig.update_layout(height=height, template="simple_white", font=FONT, meta="height",
                      legend={"orientation": "h", "y": 1.15}, margin={"l": 60, "r": 10, "t": 40, "b": 50})
    return fig
