"""Label storage for the labelling page: the label file written back the way it came in, and undo.

:class:`pose.refine.labels.LabelStore` writes ``CollectedData_<scorer>.h5/.csv`` in
DeepLabCut's 3-level MultiIndex layout, body parts in the project's ``config.yaml`` order
and rows in frame order. A project labelled by DeepLabCut < 2.2 (one "path" column as the
row index, possibly with Windows separators), or whose file lists body parts, rows or the
scorer differently, would be silently rewritten into another layout by the first click.
:class:`LayoutKeepingStore` remembers how the file came in (:func:`pose.io.dlc.read_dlc`
records the layout in the Dataset's attrs) and writes it back the same way: row index
layout and path strings, h5 key and format, scorer names per column, body-part order and
row order; new rows are added after the old ones, in the same path style.

:class:`UndoHistory` records every edit of a session (the labels before it), so any
change, "not visible" and "clear" included, can be undone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from pose.refine.labels import LabelStore, ProjectInfo

#: attrs of :func:`pose.io.dlc.read_dlc` that describe the file's layout
LAYOUT_ATTRS = ("dlc_index_layout", "dlc_h5_key", "dlc_h5_format", "dlc_scorer_columns", "scorer")


class LayoutKeepingStore(LabelStore):
    """A :class:`~pose.refine.labels.LabelStore` that saves in the layout of the file it read."""

    def __init__(self, info: ProjectInfo, video: str) -> None:
        self.layout: dict = {}
        self.original_paths: dict[str, str] = {}  # normalised image -> path string in the file
        self.original_keypoints: list[str] = []
        self.separator = "/"
        super().__init__(info, video)
        self._remember_layout()

    def _remember_layout(self) -> None:
        from pose.io.dlc import read_dlc

        for path in (self.h5_path, self.csv_path):
            if not path.is_file():
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = read_dlc(path)
            except Exception:  # noqa: BLE001 - a damaged file: LabelStore already fell back
                continue
            self.layout = {k: ds.attrs[k] for k in LAYOUT_ATTRS if ds.attrs.get(k) is not None}
            if "image" in ds.coords:
                raw = [str(p) for p in ds.coords["image"].values]
                self.original_paths = {self._normalise_image(p): p for p in raw}
                if raw and "\\" in raw[0]:
                    self.separator = "\\"
            self.original_keypoints = [str(k) for k in ds.coords["keypoint"].values]
            return

    def to_dataset(self) -> xr.Dataset:
        """The labels in the file's own layout (see the module docstring)."""
        ds = super().to_dataset()
        order = [k for k in self.original_keypoints if k in self.keypoints]
        order += [k for k in self.keypoints if k not in order]
        if order != list(ds.coords["keypoint"].values):
            ds = ds.sel(keypoint=order)
        images = [str(p) for p in ds.coords["image"].values]
        known = list(self.original_paths)
        rank = {img: i for i, img in enumerate(known)}
        rows = sorted(range(len(images)), key=lambda r: (rank.get(images[r], len(known)), r))
        ds = ds.isel(time=rows)
        paths = [self.original_paths.get(images[r], images[r].replace("/", self.separator)) for r in rows]
        ds = ds.assign_coords(image=("time", np.array(paths, dtype=object)))
        ds.attrs.update(self.layout)  # write_dlc ignores per-column scorers that no longer fit
        if ds.sizes["time"] == 0:  # the last label undone or cleared: pose.io.dlc cannot write an
            # empty MultiIndex (nor an empty h5 table); an empty flat index in a fixed h5 reads back
            # as no labels (the csv copy)
            ds.attrs.update(dlc_index_layout="path", dlc_h5_format="fixed")
        return ds


@dataclass
class Edit:
    """One body part's state on one image before an edit."""

    image: str
    keypoint: str
    xy: tuple[float, float]
    not_visible: bool


@dataclass
class UndoHistory:
    """The edits of a session, newest last; each step is a list of :class:`Edit`."""

    steps: list[list[Edit]] = field(default_factory=list)
    max_steps: int = 500

    def record(self, store: LabelStore, image: str, keypoints: list[str]) -> None:
        """Remember the current state of ``keypoints`` on ``image`` (call before changing them)."""
        self.steps.append([Edit(image, kp, store.point(image, kp), store.is_not_visible(image, kp))
                           for kp in keypoints])
        del self.steps[:-self.max_steps]

    def undo(self, store: LabelStore) -> list[Edit] | None:
        """Put back the state before the last edit (saved); None when there is nothing to undo."""
        if not self.steps:
            return None
        step = self.steps.pop()
        for e in reversed(step):
            if e.not_visible:
                store.mark_not_visible(e.image, e.keypoint)
            elif np.isfinite(e.xy).all():
                store.set_point(e.image, e.keypoint, *e.xy)
            else:
                store.clear_point(e.image, e.keypoint)
        return step
