"""A DeepLabCut-style project folder: ``config.yaml`` + ``labeled-data/<video>/CollectedData_*``.

Reads DeepLabCut's own projects as they are (unknown DeepLabCut keys are kept, not checked)
and writes new ones (``ethopose pose new``). Our own fields are validated by pydantic with
``extra="forbid"``, so a typo in them fails at load with the key's name.

This module is torch-free.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pose.atomic import write_text_atomic
from pose.pipeline.recipe import RecipeOverrides, View, match_flip_pairs

log = logging.getLogger(__name__)

CONFIG_NAME = "config.yaml"

# DeepLabCut keys that we read but do not interpret; they are kept when we rewrite a config.
_DLC_PASSTHROUGH = {
    "Task", "scorer", "date", "multianimalproject", "identity", "project_path", "engine",
    "video_sets", "start", "stop", "numframes2pick", "skeleton_color", "dotsize",
    "alphavalue", "colormap", "iteration", "default_net_type", "default_augmenter",
    "snapshotindex", "detector_snapshotindex", "batch_size", "detector_batch_size",
    "cropping", "x1", "x2", "y1", "y2", "corner2move2", "move2corner",
    "SuperAnimalConversionTables", "individuals", "uniquebodyparts", "multianimalbodyparts",
    "with_identity",
}


class ProjectConfig(BaseModel):
    """The fields of ``config.yaml`` that ethopose uses (DeepLabCut names where they exist).

    Parameters
    ----------
    bodyparts
        Keypoint names, in channel order.
    skeleton
        Pairs of body parts to connect in labelled videos.
    symmetry_pairs
        Left/right pairs swapped by horizontal flip augmentation (ethopose field; ``[]`` = no
        flips; when absent, pairs are matched from the names, see
        :func:`pose.pipeline.recipe.match_flip_pairs`).
    TrainingFraction
        Fractions of labelled frames used for training (DeepLabCut's key).
    pcutoff
        Confidence threshold used by evaluation ("with p-cutoff") and plots.
    top_view
        Camera looks down on the animal: full 360 degree rotation augmentation (ethopose field,
        kept for older configs; same as ``view: top``). None = not declared.
    view
        ``top``, ``bottom``, ``side``, ``front``, ``mirror`` or ``other`` (ethopose field);
        None = judged from the labels (:func:`pose.pipeline.recipe.derive_recipe`).
    recipe
        Training-recipe choices that override the ones derived from the labels (``scale``,
        ``crop_px``, ``sigma_px``, ``rotation_deg``, ``flip_pairs``; ethopose field).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    bodyparts: list[str] = Field(min_length=1)
    skeleton: list[list[str]] = Field(default_factory=list)
    symmetry_pairs: list[list[str]] | None = None
    TrainingFraction: list[float] = Field(default_factory=lambda: [0.95])
    pcutoff: float = Field(0.6, ge=0.0, le=1.0)
    top_view: bool | None = None
    view: View | None = None
    recipe: RecipeOverrides | None = None
    seed: int = 0

    @field_validator("bodyparts", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        if isinstance(v, str):
            raise ValueError("bodyparts must be a list of names, got one string")
        return v

    @field_validator("TrainingFraction")
    @classmethod
    def _fraction(cls, v: list[float]) -> list[float]:
        for f in v:
            if not 0.0 < f <= 1.0:
                raise ValueError(f"TrainingFraction entries must be in (0, 1], got {f}")
        return v

    def flip_pairs(self) -> list[tuple[int, int]]:
        """Index pairs of left/right body parts (explicit ``symmetry_pairs`` or guessed)."""
        idx = {n: i for i, n in enumerate(self.bodyparts)}
        if self.symmetry_pairs is not None:
            for pair in self.symmetry_pairs:
                bad = [n for n in pair if n not in idx]
                if len(pair) != 2 or bad:
                    raise ValueError(f"symmetry pair {pair} must name two body parts (unknown: {bad})")
            return [(idx[a], idx[b]) for a, b in self.symmetry_pairs]
        return [(idx[a], idx[b]) for a, b in match_flip_pairs(self.bodyparts)]

    def recipe_overrides(self) -> RecipeOverrides:
        """The training-recipe choices this config declares (``view``/``top_view``, ``recipe``)."""
        view = self.view or ("top" if self.top_view else None)
        declared = RecipeOverrides(view=view)
        return declared.merged(self.recipe)


@dataclass(frozen=True)
class Project:
    """A project folder and its validated config (``raw`` keeps every key of the file)."""

    root: Path
    config: ProjectConfig
    raw: dict[str, Any]

    @property
    def labeled_data(self) -> Path:
        return self.root / "labeled-data"

    def is_writable(self) -> bool:
        """Whether models can be written inside the project folder."""
        import os

        return os.access(self.root, os.W_OK)


@dataclass(frozen=True)
class LabelSet:
    """Labelled frames of a project, flattened for training.

    Attributes
    ----------
    images
        Image paths relative to the project root (``labeled-data/<video>/<name>.png``).
    keypoints
        ``(n_images, n_channels, 2)`` x, y in pixels; NaN = not visible.
    names
        Channel names: body part names (``individual/bodypart`` when several individuals).
    """

    images: list[str]
    keypoints: np.ndarray
    names: list[str]


def load_project(path: str | Path) -> Project:
    """Read ``config.yaml`` of a DeepLabCut-style project folder.

    Parameters
    ----------
    path
        The project folder, or its ``config.yaml``.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing config, or a bad field (the message names the file and the key).
    """
    path = Path(path)
    cfg_path = path if path.suffix in (".yaml", ".yml") else path / CONFIG_NAME
    if not cfg_path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in project folder {path}")
    raw = yaml.safe_load(cfg_path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{cfg_path}: expected a mapping of keys, got {type(raw).__name__}")
    ours = {k: v for k, v in raw.items() if k not in _DLC_PASSTHROUGH}
    if ours.get("skeleton") is None:
        ours.pop("skeleton", None)
    if raw.get("multianimalproject") and ours.get("bodyparts") in (None, [], "MULTI!"):  # DeepLabCut's marker
        ours["bodyparts"] = raw.get("multianimalbodyparts")
    try:
        config = ProjectConfig.model_validate(ours)
    except ValidationError as err:
        raise ValueError(f"{cfg_path}: invalid project config:\n{err}") from err
    return Project(root=cfg_path.parent.resolve(), config=config, raw=raw)


def create_project(
    path: str | Path,
    bodyparts: list[str],
    videos: list[str | Path] | None = None,
    *,
    skeleton: list[list[str]] | None = None,
    scorer: str = "ethopose",
    copy_videos: bool = False,
) -> Project:
    """Create a new project folder with a DeepLabCut-compatible ``config.yaml``.

    Videos are referenced by absolute path (or copied into ``videos/`` with ``copy_videos``).
    """
    import shutil

    root = Path(path)
    if (root / CONFIG_NAME).exists():
        raise FileExistsError(f"{root / CONFIG_NAME} exists already")
    config = ProjectConfig(bodyparts=list(bodyparts), skeleton=skeleton or [])
    (root / "labeled-data").mkdir(parents=True, exist_ok=True)
    (root / "videos").mkdir(exist_ok=True)
    video_sets = {}
    for v in videos or []:
        v = Path(v)
        if not v.is_file():
            raise FileNotFoundError(f"video {v} not found")
        target = v.resolve()
        if copy_videos:
            target = (root / "videos" / v.name).resolve()
            shutil.copy2(v, target)
        video_sets[str(target)] = {"crop": None}
        (root / "labeled-data" / v.stem).mkdir(exist_ok=True)
    raw = {
        "Task": root.name,
        "scorer": scorer,
        "date": _dt.date.today().isoformat(),
        "project_path": str(root.resolve()),
        "video_sets": video_sets,
        **config.model_dump(exclude_none=True),
    }
    write_text_atomic(root / CONFIG_NAME, yaml.safe_dump(raw, sort_keys=False))
    return load_project(root)


def _collected_files(project: Project) -> list[Path]:
    files = []
    for folder in sorted(p for p in project.labeled_data.iterdir() if p.is_dir()):
        h5 = sorted(folder.glob("CollectedData_*.h5"))
        csv = sorted(folder.glob("CollectedData_*.csv"))
        if h5:
            files.append(h5[0])
        elif csv:
            files.append(csv[0])
    return files


def load_labels(project: Project) -> LabelSet:
    """All labelled frames of the project (``labeled-data/*/CollectedData_*.h5|csv``).

    Uses :func:`pose.io.load`, which reads DeepLabCut's labelled layout as a pose Dataset
    with an ``image`` coordinate on ``time``.

    Raises
    ------
    FileNotFoundError
        When the project has no labelled data.
    """
    if not project.labeled_data.is_dir():
        raise FileNotFoundError(f"{project.root}: no labeled-data folder")
    files = _collected_files(project)
    if not files:
        raise FileNotFoundError(f"{project.labeled_data}: no CollectedData_*.h5 or .csv files")
    images: list[str] = []
    arrays: list[np.ndarray] = []
    names: list[str] | None = None
    for f in files:
        imgs, kps, chan = _read_collected(f)
        imgs = [_relative_image(i, f, project.root) for i in imgs]
        if names is None:
            names = chan
        elif chan != names:
            raise ValueError(f"{f}: body parts {chan} differ from earlier files' {names}")
        images += imgs
        arrays.append(kps)
    assert names is not None
    bp = project.config.bodyparts
    if [n.split("/")[-1] for n in names] != bp and len(names) == len(bp):
        log.warning("labelled body parts %s differ from config bodyparts %s", names, bp)
    return LabelSet(images=images, keypoints=np.concatenate(arrays).astype(float), names=names)


def _read_collected(path: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """Image paths, (N, C, 2) keypoints and channel names from one CollectedData file."""
    from pose import io as pose_io

    ds = pose_io.load(path)
    if "image" not in ds.coords:
        raise ValueError(f"{path}: labelled data has no 'image' coordinate")
    pos = ds["position"].values[:, :2]  # (time, 2, keypoint, individual)
    n, _, k, i = pos.shape
    kps = pos.transpose(0, 3, 2, 1).reshape(n, i * k, 2)
    kp_names = [str(x) for x in ds.coords["keypoint"].values]
    ind_names = [str(x) for x in ds.coords["individual"].values]
    names = kp_names if i == 1 else [f"{a}/{b}" for a in ind_names for b in kp_names]
    return [str(x) for x in ds.coords["image"].values], kps, names


def _relative_image(image: str, collected: Path, root: Path) -> str:
    """Normalise an image reference to a path relative to the project root."""
    image = image.replace("\\", "/")
    if (root / image).is_file():
        return image
    candidate = collected.parent / Path(image).name
    if candidate.is_file():
        return str(candidate.relative_to(root)) if candidate.is_relative_to(root) else str(candidate)
    raise FileNotFoundError(f"{collected}: labelled image {image} not found under {root}")
