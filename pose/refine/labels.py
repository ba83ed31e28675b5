"""Human labels of a project folder: load, set, move, clear, save atomically (no UI).

The labelling page (``dashboard.labelling``) edits labels through this module, and the
refinement loop (``pose.refine.merge``, ``bench/active_learning.py``) writes corrections
through it too.

One :class:`LabelStore` holds the human labels of one video folder of a DeepLabCut-style
project, ``<project>/labeled-data/<video>/``: the PNG frames in that folder and the
labels in ``CollectedData_<scorer>.h5`` (+ ``.csv``), DeepLabCut's own layout (read and
written by :mod:`pose.io.dlc`). Every change is saved at once, atomically (temporary file
+ rename, the previous version kept as ``.bak``), so a crash loses at most the change in
flight. Model predictions to correct (``machinelabels-iter<k>.h5``, written by
``ethopose pose outliers``) are loaded read-only beside the labels.

Notes
-----
DeepLabCut marks "not visible" and "not labelled yet" the same way (NaN). The store
keeps the difference in a small side file, ``labelling_state.json``, so the page can show
which body parts a person has decided on; the training data only sees NaN.
Single-animal projects only: a multi-animal ``CollectedData`` raises a clear error.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from pose.atomic import atomic_path, write_text_atomic
from pose.dataset import from_numpy

logger = logging.getLogger(__name__)

STATE_FILE = "labelling_state.json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class ProjectInfo:
    """What the labelling page needs from a project's ``config.yaml``."""

    project_dir: Path
    scorer: str
    bodyparts: list[str]
    skeleton: list[tuple[str, str]] = field(default_factory=list)
    iteration: int = 0

    @property
    def videos(self) -> list[str]:
        """Names of the folders under ``labeled-data/`` (sorted)."""
        root = self.project_dir / "labeled-data"
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def read_project_info(project_dir: str | Path) -> ProjectInfo:
    """Scorer, body parts, skeleton and iteration of a project (via :mod:`pose.pipeline.project`).

    Raises
    ------
    FileNotFoundError
        No ``config.yaml`` in the folder.
    ValueError
        An invalid config (the message names the key), or a multi-animal project.
    """
    from pose.pipeline.project import load_project

    project = load_project(project_dir)
    if project.raw.get("multianimalproject"):
        raise ValueError(
            f"{project.root / 'config.yaml'}: multi-animal projects are not supported by the labelling page"
        )
    skeleton = [(str(p[0]), str(p[1])) for p in project.config.skeleton or [] if len(p) == 2]
    return ProjectInfo(
        project_dir=Path(project_dir),
        scorer=str(project.raw.get("scorer") or "ethopose"),
        bodyparts=[str(b) for b in project.config.bodyparts],
        skeleton=skeleton,
        iteration=int(project.raw.get("iteration") or 0),
    )


def _image_number(name: str) -> tuple[int, str]:
    m = re.search(r"(\d+)(?=\.\w+$)", name)
    return (int(m.group(1)) if m else -1, name)


class LabelStore:
    """Human labels of one ``labeled-data/<video>`` folder, saved after every change.

    Parameters
    ----------
    info
        The project (scorer, body parts).
    video
        Folder name under ``labeled-data/``.

    Attributes
    ----------
    images : list of str
        Project-relative image paths (``labeled-data/<video>/img001.png``), in frame order.
    xy : numpy.ndarray
        Labels, shape (n_images, n_bodyparts, 2), px; NaN = not labelled / not visible.
    """

    def __init__(self, info: ProjectInfo, video: str) -> None:
        self.info = info
        self.video = video
        self.folder = info.project_dir / "labeled-data" / video
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: no such video folder in the project")
        self.keypoints = list(info.bodyparts)
        self.h5_path = self.folder / f"CollectedData_{info.scorer}.h5"
        self.csv_path = self.h5_path.with_suffix(".csv")
        self.state_path = self.folder / STATE_FILE
        self.images: list[str] = []
        self.xy = np.empty((0, len(self.keypoints), 2))
        self.not_visible: dict[str, set[str]] = {}
        self.machine: xr.Dataset | None = None
        self.reload()

    # ---------------------------------------------------------------- loading
    def reload(self) -> None:
        """(Re)read labels, the side file and machine labels from disk."""
        labelled = self._read_labels()
        on_disk = sorted(
            (p.name for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
            key=_image_number,
        )
        rel = [f"labeled-data/{self.video}/{n}" for n in on_disk]
        extra = [img for img in labelled if img not in set(rel)]
        self.images = rel + extra
        self.xy = np.full((len(self.images), len(self.keypoints), 2), np.nan)
        index = {img: i for i, img in enumerate(self.images)}
        for img, pts in labelled.items():
            self.xy[index[img]] = pts
        self.not_visible = {}
        if self.state_path.is_file():
            raw = json.loads(self.state_path.read_text())
            self.not_visible = {k: set(v) for k, v in raw.get("not_visible", {}).items()}
        self.machine = self._read_machine()

    def _read_labels(self) -> dict[str, np.ndarray]:
        from pose.io.dlc import read_dlc

        for path in (self.h5_path, self.csv_path, self.h5_path.with_name(self.h5_path.name + ".bak")):
            if not path.is_file():
                continue
            try:
                with warnings.catch_warnings():  # half-labelled projects are normal here
                    warnings.filterwarnings("ignore", message=".*hold only NaN")
                    ds = read_dlc(path)
            except Exception as err:  # a damaged file: fall back to the next copy
                logger.warning("could not read %s (%s); trying the next copy", path, err)
                continue
            return self._labels_from_dataset(ds, path)
        return {}

    def _labels_from_dataset(self, ds: xr.Dataset, path: Path) -> dict[str, np.ndarray]:
        if "image" not in ds.coords:
            raise ValueError(f"{path}: not a labelled-data file (rows are not image paths)")
        if ds.sizes["individual"] != 1:
            raise ValueError(f"{path}: multi-animal labels are not supported by the labelling page")
        names = [str(k) for k in ds.coords["keypoint"].values]
        unknown = sorted(set(names) - set(self.keypoints))
        if unknown:
            raise ValueError(f"{path}: body parts {unknown} are not in the project's config.yaml")
        out = {}
        pos = ds["position"].values[:, :2, :, 0]  # (time, space, keypoint)
        for row, img in enumerate(ds.coords["image"].values):
            pts = np.full((len(self.keypoints), 2), np.nan)
            for k, name in enumerate(names):
                pts[self.keypoints.index(name)] = pos[row, :, k]
            out[self._normalise_image(str(img))] = pts
        return out

    def _normalise_image(self, img: str) -> str:
        parts = img.replace("\\", "/").split("/")
        return f"labeled-data/{self.video}/{parts[-1]}"

    def _read_machine(self) -> xr.Dataset | None:
        from pose.io.dlc import read_dlc

        files = sorted(self.folder.glob("machinelabels-iter*.h5"), key=lambda p: _image_number(p.stem + ".x"))
        if not files:
            return None
        ds = read_dlc(files[-1])
        images = [self._normalise_image(str(i)) for i in ds.coords["image"].values]
        return ds.assign_coords(image=("time", np.array(images, dtype=object)))

    # ---------------------------------------------------------------- queries
    def index_of(self, image: str) -> int:
        """Row of ``image`` (relative path or bare file name)."""
        name = self._normalise_image(image)
        try:
            return self.images.index(name)
        except ValueError:
            raise KeyError(f"{image}: not an image of {self.folder}") from None

    def point(self, image: str, keypoint: str) -> tuple[float, float]:
        """Label of ``keypoint`` on ``image`` (NaN, NaN when absent)."""
        x, y = self.xy[self.index_of(image), self._kp(keypoint)]
        return float(x), float(y)

    def is_not_visible(self, image: str, keypoint: str) -> bool:
        return keypoint in self.not_visible.get(self._normalise_image(image), set())

    def machine_points(self, image: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Machine labels of ``image``: (xy (n_bodyparts, 2), confidence (n_bodyparts,))."""
        if self.machine is None:
            return None
        imgs = list(self.machine.coords["image"].values)
        name = self._normalise_image(image)
        if name not in imgs:
            return None
        row = imgs.index(name)
        xy = np.full((len(self.keypoints), 2), np.nan)
        conf = np.full(len(self.keypoints), np.nan)
        for k, kp in enumerate(str(v) for v in self.machine.coords["keypoint"].values):
            if kp in self.keypoints:
                j = self.keypoints.index(kp)
                xy[j] = self.machine["position"].values[row, :2, k, 0]
                conf[j] = self.machine["confidence"].values[row, k, 0]
        return xy, conf

    def n_done(self, image: str) -> int:
        """Body parts decided on ``image`` (placed or marked not visible)."""
        i = self.index_of(image)
        placed = np.isfinite(self.xy[i, :, 0])
        hidden = np.array([self.is_not_visible(image, kp) for kp in self.keypoints])
        return int((placed | hidden).sum())

    def _kp(self, keypoint: str) -> int:
        try:
            return self.keypoints.index(keypoint)
        except ValueError:
            raise KeyError(f"{keypoint!r} is not a body part of the project {self.keypoints}") from None

    # ---------------------------------------------------------------- edits
    def set_point(self, image: str, keypoint: str, x: float, y: float) -> None:
        """Place (or move) ``keypoint`` on ``image`` at pixel ``(x, y)`` and save."""
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError(f"label of {keypoint} on {image} must be finite, got ({x}, {y})")
        i, k = self.index_of(image), self._kp(keypoint)
        self.xy[i, k] = (float(x), float(y))
        self.not_visible.get(self.images[i], set()).discard(keypoint)
        self.save()

    move_point = set_point

    def set_points(self, image: str, xy: np.ndarray, *, not_visible: Sequence[str] = ()) -> None:
        """Replace every label of ``image`` at once and save once.

        ``xy`` is (n_bodyparts, 2) px in the project's body-part order, NaN = none; body
        parts named in ``not_visible`` are recorded as not visible.
        """
        xy = np.asarray(xy, dtype=float)
        if xy.shape != (len(self.keypoints), 2):
            raise ValueError(f"labels of {image} must have shape ({len(self.keypoints)}, 2), got {xy.shape}")
        i = self.index_of(image)
        self.xy[i] = xy
        self.not_visible[self.images[i]] = {self.keypoints[self._kp(k)] for k in not_visible}
        self.save()

    def clear_point(self, image: str, keypoint: str) -> None:
        """Remove the label of ``keypoint`` on ``image`` (back to "not labelled") and save."""
        i, k = self.index_of(image), self._kp(keypoint)
        self.xy[i, k] = np.nan
        self.not_visible.get(self.images[i], set()).discard(keypoint)
        self.save()

    def mark_not_visible(self, image: str, keypoint: str) -> None:
        """Record that ``keypoint`` is not visible on ``image`` (NaN in the labels) and save."""
        i, k = self.index_of(image), self._kp(keypoint)
        self.xy[i, k] = np.nan
        self.not_visible.setdefault(self.images[i], set()).add(keypoint)
        self.save()

    def accept_machine(self, image: str, *, p_cutoff: float = 0.0) -> int:
        """Copy the machine labels of ``image`` with confidence >= ``p_cutoff`` into the labels.

        Body parts already labelled by a person are kept. Returns how many were copied.
        """
        got = self.machine_points(image)
        if got is None:
            return 0
        xy, conf = got
        i = self.index_of(image)
        take = np.isfinite(xy[:, 0]) & ~np.isfinite(self.xy[i, :, 0])
        take &= ~(np.isfinite(conf) & (conf < p_cutoff))
        self.xy[i, take] = xy[take]
        if take.any():
            self.save()
        return int(take.sum())

    # ---------------------------------------------------------------- saving
    def to_dataset(self) -> xr.Dataset:
        """The labels as a pose Dataset with the ``image`` coordinate (labelled rows only)."""
        rows = [i for i, img in enumerate(self.images)
                if np.isfinite(self.xy[i]).any() or self.not_visible.get(img)]
        pos = self.xy[rows].transpose(0, 2, 1)[..., np.newaxis]  # (time, space, keypoint, 1)
        ds = from_numpy(pos, keypoints=self.keypoints, source_software="ethopose-label")
        ds = ds.assign_coords(image=("time", np.array([self.images[i] for i in rows], dtype=object)))
        ds.attrs["scorer"] = self.info.scorer
        ds.attrs["dlc_index_layout"] = "multiindex"
        return ds

    def save(self) -> None:
        """Write ``CollectedData_<scorer>.h5`` and ``.csv`` atomically, keeping ``.bak`` copies."""
        from pose.io.dlc import write_dlc

        ds = self.to_dataset()
        for target in (self.h5_path, self.csv_path):
            with atomic_path(target, backup=True) as tmp:
                write_dlc(ds, tmp)
        state = {"not_visible": {k: sorted(v) for k, v in self.not_visible.items() if v}}
        write_text_atomic(self.state_path, json.dumps(state, indent=1))
        logger.debug("saved %d labelled images to %s", ds.sizes["time"], self.h5_path)
