"""The layout of a trained-model folder (torch-free).

::

    MODEL_DIR/
      model.json          ModelInfo: backbone, stride, channel names, input scale, skeleton...
      train_config.json   the TrainConfig used
      split.json          train/test image lists (pose.pipeline.split.Split)
      weights.pt          final weights (best validation loss when a validation set exists)
      checkpoint.pt       last epoch: weights + optimizer + scheduler + RNG state (--resume)
      training_curve.csv  epoch, train_loss, val_loss, lr, elapsed_s (and .png)
      augmented_samples.png  8 labelled augmented training crops (check flips and crops)
      evaluation.json     written by ``ethopose pose evaluate``
      model.onnx          written by ``ethopose pose export-onnx`` (or on first onnx use)
      model_int8.onnx     ``ethopose pose export-onnx --int8`` (pose.pipeline.quantize)
      evaluation_int8.json  ``ethopose pose evaluate --runtime onnx-int8``

A folder is resolved once, by :meth:`ModelDir.open` (absolute path + its validated
``model.json``); training, evaluation, export and inference take that object (or a path,
which they open).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from pose.atomic import write_text_atomic
from pose.pipeline.shape import ShapePrior

MODEL_JSON = "model.json"
WEIGHTS = "weights.pt"
CHECKPOINT = "checkpoint.pt"
ONNX = "model.onnx"
INT8_ONNX = "model_int8.onnx"
AUGMENTED_PNG = "augmented_samples.png"
SPLIT_JSON = "split.json"
TRAIN_CONFIG_JSON = "train_config.json"


class ModelInfo(BaseModel):
    """What inference needs to know about a trained model.

    ``scale`` is the factor applied to images before the network (0.5 = half resolution);
    ``names`` are channel names (``individual/bodypart`` when several individuals).
    ``body_radius_px`` (original pixels, from the training labels, see
    :func:`body_radius_px`): an individual's keypoints lie within it of their median, so
    decoding ignores score-map peaks farther away (None: no such constraint).
    ``shape_prior`` (from the training labels, :mod:`pose.pipeline.shape`): the mean body
    shape that decoding checks each peak against (None: no such check).
    """

    model_config = ConfigDict(extra="forbid")

    backbone: str
    stride: int
    neck_channels: int
    names: list[str]
    bodyparts: list[str]
    individuals: list[str]
    scale: float = 1.0
    skeleton: list[list[str]] = []
    pcutoff: float = 0.6
    project: str | None = None
    body_radius_px: float | None = None
    shape_prior: ShapePrior | None = None
    anchor_sigma_px: float | None = None  # centred-instance models: the anchor channel's width (network px)

    def individual_channels(self) -> list[list[int]]:
        """Channel indices of each individual (one group when single-animal)."""
        return individual_channels(self.names)

    def save(self, model_dir: str | Path) -> Path:
        return write_text_atomic(Path(model_dir) / MODEL_JSON, self.model_dump_json(indent=1))

    @classmethod
    def load(cls, model_dir: str | Path) -> ModelInfo:
        path = Path(model_dir) / MODEL_JSON
        if not path.is_file():
            raise FileNotFoundError(f"{model_dir} is not a model folder: no {MODEL_JSON}")
        return cls.model_validate(json.loads(path.read_text()))


@dataclass(frozen=True)
class ModelDir:
    """A trained-model folder, resolved once: absolute ``root`` and its ``info``.

    Build it with :meth:`open` (or :func:`resolve_model_dir`); the properties name the
    folder's files (see the module docstring).
    """

    root: Path
    info: ModelInfo

    @classmethod
    def open(cls, path: str | Path) -> ModelDir:
        """Resolve ``path`` to an absolute folder and load its ``model.json``.

        Raises
        ------
        FileNotFoundError
            ``path`` holds no ``model.json`` (not a model folder, or training not started).
        """
        root = Path(path).expanduser().resolve()
        return cls(root=root, info=ModelInfo.load(root))

    @property
    def name(self) -> str:
        """The folder's name (output file names and the DeepLabCut scorer use it)."""
        return self.root.name

    @property
    def scorer(self) -> str:
        """DeepLabCut scorer name of this model's predictions."""
        return f"ethopose_{self.name}"

    @property
    def weights(self) -> Path:
        return self.root / WEIGHTS

    @property
    def onnx(self) -> Path:
        return self.root / ONNX

    @property
    def int8_onnx(self) -> Path:
        return self.root / INT8_ONNX

    @property
    def split_json(self) -> Path:
        return self.root / SPLIT_JSON


def resolve_model_dir(model_dir: str | Path | ModelDir) -> ModelDir:
    """``model_dir`` as a :class:`ModelDir` (opened when given as a path)."""
    return model_dir if isinstance(model_dir, ModelDir) else ModelDir.open(model_dir)


def individual_channels(names: list[str]) -> list[list[int]]:
    """Group channel indices by individual (``individual/bodypart`` names); one group otherwise."""
    if not names or "/" not in names[0]:
        return [list(range(len(names)))]
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(name.split("/")[0], []).append(i)
    return list(groups.values())


def body_radius_px(keypoints: np.ndarray, groups: list[list[int]], *, margin: float = 1.5) -> float | None:
    """How far an individual's keypoints reach from their median, over labelled frames.

    ``keypoints`` is ``(frames, channels, 2)`` (NaN = unlabelled). Returns ``margin`` times
    the largest distance of a labelled keypoint from the per-frame, per-individual median
    of that individual's labelled keypoints (frames with fewer than 3 labelled keypoints of
    the individual are skipped), or None when no frame qualifies.
    """
    reach = []
    for g in groups:
        xy = np.asarray(keypoints, dtype=float)[:, g]
        ok = np.isfinite(xy).all(axis=2)
        rows = ok.sum(axis=1) >= 3
        if not rows.any():
            continue
        xy = xy[rows]
        centre = np.nanmedian(xy, axis=1, keepdims=True)
        reach.append(np.nanmax(np.linalg.norm(xy - centre, axis=2)))
    return float(margin * max(reach)) if reach else None
