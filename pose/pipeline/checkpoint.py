"""Training checkpoints that resume exactly, or refuse (``--resume``).

A checkpoint (``MODEL_DIR/checkpoint.pt``) holds the weights, optimizer, schedule, training
state and RNG states, all as tensors and plain Python values, so that it loads with
``torch.load(weights_only=True)`` (no pickled objects run on load), and a
:func:`training_fingerprint`: hashes of the split (train/test image names), the labels
(image names, channel names and coordinates), the training config, the recipe file when
there is one, and the package version. :func:`load_checkpoint` refuses a checkpoint whose
fingerprint differs from the current run's (a kill between a new run's first files and its
first epoch would otherwise "resume" old weights on a new split: a leaked test error).

:func:`prepare_model_dir` is called when a fresh training starts: it refuses a folder that
already holds a model unless ``overwrite`` (then it clears the model's files), and removes
the temporary files (``.checkpoint.*.tmp.pt``...) a killed run left behind.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from pose.atomic import atomic_path
from pose.pipeline.modeldir import (
    AUGMENTED_PNG,
    CHECKPOINT,
    INT8_ONNX,
    MODEL_JSON,
    ONNX,
    SPLIT_JSON,
    TRAIN_CONFIG_JSON,
    WEIGHTS,
)

log = logging.getLogger(__name__)

# files and folders of a model that a fresh training replaces (see pose.pipeline.modeldir)
MODEL_FILES = (MODEL_JSON, TRAIN_CONFIG_JSON, SPLIT_JSON, WEIGHTS, CHECKPOINT, "recipe.json",
               "training_curve.csv", "training_curve.png", AUGMENTED_PNG, "evaluation.json",
               "evaluation_int8.json", ONNX, INT8_ONNX)
MODEL_FOLDERS = ("evaluation-images", "evaluation-images-int8")


class CheckpointMismatchError(RuntimeError):
    """``--resume`` found a checkpoint of a different training (split, labels, config...)."""


def _sha(obj: Any) -> str:
    data = obj if isinstance(obj, bytes) else json.dumps(obj, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def package_version() -> str:
    """The installed ethopose version (``"unknown"`` when not installed)."""
    try:
        return importlib.metadata.version("ethopose")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def training_fingerprint(
    *, train_images: list[str], test_images: list[str], label_images: list[str], label_names: list[str],
    label_keypoints: np.ndarray, config: dict, recipe_file: Path | None = None,
) -> dict[str, str]:
    """Short hashes of what a training run depends on (see the module docstring).

    The labels are hashed by value (image names, channel names, float64 coordinates with
    NaN for invisible), so re-saving the same labels in another format does not count as a
    change; ``config`` is the training config as JSON-able values.
    """
    kps = np.ascontiguousarray(np.asarray(label_keypoints, dtype=np.float64))
    labels = hashlib.sha256(json.dumps([label_images, label_names, list(kps.shape)]).encode())
    labels.update(np.where(np.isnan(kps), np.inf, kps).tobytes())  # one byte pattern for NaN
    return {
        "split": _sha({"train": list(train_images), "test": list(test_images)}),
        "labels": labels.hexdigest()[:16],
        "config": _sha(config),
        "recipe": _sha(recipe_file.read_bytes()) if recipe_file is not None and recipe_file.is_file() else "none",
        "version": package_version(),
    }


def _differences(saved: dict[str, str], current: dict[str, str]) -> list[str]:
    return [k for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]


# -- RNG states as tensors and plain values (torch.load weights_only) ---------------------------
def rng_state() -> dict:
    import torch

    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": [name, torch.from_numpy(np.asarray(keys, np.int64)), int(pos), int(has_gauss), float(gauss)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import torch

    random.setstate(_tuples(state["python"]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x: Any) -> Any:
    """Lists back to the tuples ``random.setstate`` wants (nested)."""
    return tuple(_tuples(v) for v in x) if isinstance(x, list | tuple) else x


def save_checkpoint(path: Path, *, model, optimizer, schedule, state: dict, fingerprint: dict[str, str]) -> None:
    """Write the checkpoint atomically (serialised in memory first: the file on disk is
    either the previous checkpoint or the new one)."""
    import io

    import torch

    plain = dict(state)
    plain["hard_points"] = {int(k): torch.from_numpy(np.asarray(v, np.float64))
                            for k, v in state.get("hard_points", {}).items()}
    buf = io.BytesIO()
    torch.save({"model": {k: v.cpu() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "state": plain, "rng": rng_state(), "fingerprint": dict(fingerprint)}, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def load_checkpoint(path: Path, fingerprint: dict[str, str]) -> dict:
    """Load a checkpoint with ``weights_only=True`` and check it belongs to this run.

    Returns the checkpoint dict, its ``state["hard_points"]`` as numpy arrays again.

    Raises
    ------
    FileNotFoundError
        No checkpoint (the run was killed before its first epoch ended).
    CheckpointMismatchError
        The checkpoint's fingerprint differs, or it has none or holds pickled objects
        (written by an older version).
    """
    import torch

    if not path.is_file():
        raise FileNotFoundError(
            f"--resume: no {path.name} in {path.parent} (killed before its first epoch ended?); "
            "start again without --resume (with --overwrite)"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # pickled objects: an older ethopose, or not ours
        raise CheckpointMismatchError(
            f"--resume: {path} holds pickled objects, which are not loaded (written by an older ethopose, "
            "or not a checkpoint of ours); train again with --overwrite"
        ) from None
    saved = ckpt.get("fingerprint") or {}
    if not saved:
        raise CheckpointMismatchError(
            f"--resume: {path} has no training fingerprint (written by an older ethopose), so it cannot be "
            "checked against this split and labels; train again with --overwrite"
        )
    diff = _differences(saved, fingerprint)
    if diff:
        detail = ", ".join(f"{k} {saved.get(k, 'missing')} -> {fingerprint.get(k, 'missing')}" for k in diff)
        raise CheckpointMismatchError(
            f"--resume: {path} belongs to a different training (changed: {detail}); its weights "
            "were not trained on this split/labels/config. Train again without --resume (add "
            "--overwrite to replace the folder)"
        )
    ckpt["state"]["hard_points"] = {int(k): v.numpy() for k, v in ckpt["state"].get("hard_points", {}).items()}
    return ckpt


def remove_stale_temp_files(model_dir: Path) -> list[Path]:
    """Remove the temporary files a killed run left in ``model_dir`` (the hidden
    ``.<name>.*.tmp.<suffix>`` files of :func:`pose.atomic.atomic_path`); returns them."""
    stale = sorted(p for p in model_dir.glob(".*.tmp*") if p.is_file()) if model_dir.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    if stale:
        log.info("%s: removed %d temporary files left by an interrupted run", model_dir, len(stale))
    return stale


def prepare_model_dir(model_dir: Path, *, overwrite: bool = False) -> None:
    """Get ``model_dir`` ready for a fresh training.

    Raises
    ------
    FileExistsError
        The folder already holds a model's files and ``overwrite`` is False.
    """
    remove_stale_temp_files(model_dir)
    present = [n for n in MODEL_FILES if (model_dir / n).exists()] + [n for n in MODEL_FOLDERS if (model_dir / n).exists()]
    if not present:
        return
    if not overwrite:
        raise FileExistsError(
            f"{model_dir} already holds a model ({', '.join(present[:4])}{'...' if len(present) > 4 else ''}); "
            "pass --overwrite to replace it, --resume to continue its checkpoint, or another --out"
        )
    for name in present:
        p = model_dir / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    log.info("%s: removed the previous model's files (--overwrite)", model_dir)
