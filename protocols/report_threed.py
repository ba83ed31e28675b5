"""The report's 3D section: for triangulated sessions (frames with ``z_mm``), the 3D path in mm
with equal axes and the height above the floor over time.

The numbers are the per-frame table's (:func:`features.threed.compute_feature_table_3d`): the
path is drawn in the floor's frame (``floor_x_mm, floor_y_mm`` on the floor, ``height_mm``
above it) when a floor was found, else in the calibration's world axes (``x_mm, y_mm, z_mm``),
and the caption says which and how the floor was found (``frames.attrs["floor"]``).
:func:`protocols.report.render_report` calls :func:`threed_section`.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from protocols.results import AnimalResult

__all__ = ["is_3d", "path_columns", "plot_trajectories_3d", "plot_heights", "threed_section"]

HEIGHT_COLUMNS = ("height_mm", "snout_height_mm", "max_height_mm")


def is_3d(animal: AnimalResult) -> bool:
    """True for a triangulated session (its per-frame table has ``z_mm``)."""
    return "z_mm" in animal.frames.columns


def path_columns(frames: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The three columns to draw the path from and their axis labels: the floor frame when the
    table has it, else the world's axes."""
    if {"floor_x_mm", "floor_y_mm", "height_mm"} <= set(frames.columns):
        return ["floor_x_mm", "floor_y_mm", "height_mm"], ["x on the floor (mm)", "y on the floor (mm)",
                                                          "height (mm)"]
    return ["x_mm", "y_mm", "z_mm"], ["world x (mm)", "world y (mm)", "world z (mm)"]


def _equal_box(ax: Any, xyz: np.ndarray) -> None:
    """Equal scale on the three axes: the box's sides in proportion to the data's ranges."""
    ok = np.isfinite(xyz).all(axis=1)
    if not ok.any():
        return
    lo, hi = xyz[ok].min(0), xyz[ok].max(0)
    span = np.maximum(hi - lo, 1e-6 * max(float((hi - lo).max()), 1.0))
    ax.set_xlim(lo[0], lo[0] + span[0])
    ax.set_ylim(lo[1], lo[1] + span[1])
    ax.set_zlim(lo[2], lo[2] + span[2])
    ax.set_box_aspect(tuple(span / span.max()))


def plot_trajectories_3d(animals: list[AnimalResult], colours: dict[str, str]) -> Any:
    """The reference keypoint's 3D path of each animal (mm, equal aspect): a matplotlib Figure."""
    import matplotlib.pyplot as plt

    n = len(animals)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig = plt.figure(figsize=(4.2 * ncol, 3.8 * nrow))
    for i, a in enumerate(animals):
        ax = fig.add_subplot(nrow, ncol, i + 1, projection="3d")
        cols, labels = path_columns(a.frames)
        xyz = a.frames[cols].to_numpy(float)
        ax.plot(xyz[:, 0], xyz[:, 1], xyz[:, 2], lw=0.6, color=colours.get(a.group, "k"))
        _equal_box(ax, xyz)
        ax.set_xlabel(labels[0], fontsize=7)
        ax.set_ylabel(labels[1], fontsize=7)
        ax.set_zlabel(labels[2], fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_title(f"{a.key} ({a.group})", fontsize=9)
    fig.tight_layout()
    return fig


def plot_heights(animals: list[AnimalResult]) -> Any:
    """Height above the floor over time (reference keypoint, snout, highest keypoint), one row per
    animal: a matplotlib Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(animals), 1, figsize=(10, 1.9 * len(animals) + 0.4), squeeze=False, sharex=True)
    for ax, a in zip(axes[:, 0], animals, strict=True):
        cols = [c for c in HEIGHT_COLUMNS if c in a.frames.columns]
        for c in cols:
            ax.plot(a.frames["time_s"], a.frames[c], lw=0.7, label=c.removesuffix("_mm").replace("_", " "))
        if not cols:
            ax.text(0.5, 0.5, "no floor found: no heights", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylabel("mm", fontsize=8)
        ax.set_title(f"{a.key} ({a.group})", fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        if cols:
            ax.legend(fontsize=7, loc="upper right", ncol=len(cols))
    axes[-1, 0].set_xlabel("time (s)", fontsize=8)
    fig.tight_layout()
    return fig


def threed_section(animals: list[AnimalResult], colours: dict[str, str]) -> list[str]:
    """HTML of the 3D section for the 3D animals among ``animals`` (empty when there are none)."""
    from protocols.report import _img

    animals = [a for a in animals if is_3d(a)]
    if not animals:
        return []
    floors = "".join(f"<li>{html.escape(a.key)}: {html.escape(str(a.frames.attrs.get('floor', 'not recorded')))}</li>"
                     for a in animals)
    return ["<h2>3D trajectories</h2>",
            "<p class='note'>Triangulated sessions, in mm with equal axes: x, y on the floor and the height above "
            "it when the floor is known, else the calibration's world axes. The floor of each session:</p>",
            f"<ul class='note'>{floors}</ul>", _img(plot_trajectories_3d(animals, colours), "3D trajectories"),
            "<h2>Height above the floor</h2>", _img(plot_heights(animals), "height above the floor")]
