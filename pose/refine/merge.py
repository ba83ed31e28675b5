"""Merge corrected outlier frames into the training set and compare refinement iterations.

The loop (DeepLabCut's extract_outlier_frames -> refine_labels -> merge_datasets ->
retrain), with ethopose's commands::

    ethopose pose outliers MODEL_DIR VIDEO --method fit --n-frames 20   # iteration k
    ethopose label PROJECT                                             # correct them
    ethopose pose merge PROJECT --model MODEL_DIR                      # -> iteration k+1
    ethopose pose train PROJECT --from MODEL_DIR --test-frames refine/test-frames-iter<k+1>.txt

:func:`merge_refined_labels` checks that every extracted frame of the current iteration
has been labelled (or, with ``accept_machine``, takes the model's confident predictions
for the untouched ones), bumps the iteration in ``refinement.json`` and ``config.yaml``,
and writes the previous model's test frames to a file so that the retrained model is
tested on the same frames. :func:`compare_iterations` then tabulates the models'
errors on one common set of labelled frames.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pose.atomic import write_text_atomic
from pose.refine.labels import LabelStore, read_project_info
from pose.refine.state import MergeRecord, load_state, save_state, set_config_iteration

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MergeResult:
    """What a merge did."""

    iteration: int
    new_iteration: int
    images: list[str]
    accepted_machine: list[str]
    test_frames_file: Path | None


def merge_refined_labels(
    project_dir: str | Path,
    *,
    model_dir: str | Path | None = None,
    accept_machine: bool = False,
    p_cutoff: float = 0.6,
) -> MergeResult:
    """Close the current refinement iteration: its corrected frames join the training set.

    Parameters
    ----------
    project_dir
        The project folder.
    model_dir
        The model whose outliers were corrected. Its test frames are written to
        ``refine/test-frames-iter<k+1>.txt`` so that the retrained model is tested on the
        same frames (pass that file to ``ethopose pose train --test-frames``).
    accept_machine
        Frames nobody labelled get the model's predictions with confidence >= ``p_cutoff``
        as labels (otherwise an unlabelled frame is an error).
    p_cutoff
        See ``accept_machine``.

    Returns
    -------
    MergeResult

    Raises
    ------
    ValueError
        Nothing was extracted in this iteration, or extracted frames are still unlabelled
        (the message lists them).
    """
    project_dir = Path(project_dir)
    info = read_project_info(project_dir)
    state = load_state(project_dir)
    pending = state.pending()
    if not pending:
        raise ValueError(
            f"{project_dir}: no outlier frames were extracted in iteration {state.iteration}; "
            "run `ethopose pose outliers MODEL_DIR VIDEO` first"
        )
    images, accepted, missing = [], [], []
    for record in pending:
        store = LabelStore(info, record.video)
        for image in record.images:
            if image in images:
                continue
            images.append(image)
            if store.n_done(image) > 0:
                continue
            if accept_machine and store.accept_machine(image, p_cutoff=p_cutoff) > 0:
                accepted.append(image)
            else:
                missing.append(image)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ValueError(
            f"{len(missing)} extracted frame(s) of iteration {state.iteration} have no labels: "
            f"{shown}. Label them (`ethopose label {project_dir}`) or pass --accept-machine."
        )
    new_iteration = state.iteration + 1
    test_file = None
    if model_dir is not None:
        split_path = Path(model_dir) / "split.json"
        if not split_path.is_file():
            raise FileNotFoundError(f"{model_dir}: no split.json (is it a model folder?)")
        test = json.loads(split_path.read_text())["test"]
        overlap = sorted(set(test) & set(images))
        if overlap:
            raise ValueError(f"refined frames {overlap[:3]} are test frames of {model_dir}")
        test_file = project_dir / "refine" / f"test-frames-iter{new_iteration}.txt"
        write_text_atomic(test_file, "\n".join(test) + ("\n" if test else ""))
    state.merges.append(MergeRecord(
        iteration=state.iteration, new_iteration=new_iteration, images=images,
        accepted_machine=accepted, test_frames_file=str(test_file) if test_file else None,
        init_from=str(model_dir) if model_dir is not None else None,
    ))
    state.iteration = new_iteration
    save_state(project_dir, state)
    set_config_iteration(project_dir, new_iteration)
    logger.info("merged %d refined frames (%d from machine labels); iteration %d -> %d",
                len(images), len(accepted), new_iteration - 1, new_iteration)
    return MergeResult(new_iteration - 1, new_iteration, images, accepted, test_file)


def score_predictions(predicted_xy: np.ndarray, true_xy: np.ndarray) -> dict[str, float]:
    """Errors of predictions against labels: mean and RMS Euclidean error (px), PCK@5/10 px.

    ``predicted_xy`` and ``true_xy`` are (n_images, n_keypoints, 2); points unlabelled in
    ``true_xy`` (NaN) are skipped; a missing prediction of a labelled point counts as a miss
    for PCK and is skipped by the mean errors.
    """
    err = np.linalg.norm(np.asarray(predicted_xy) - np.asarray(true_xy), axis=-1)
    labelled = np.isfinite(true_xy).all(axis=-1)
    e = err[labelled]
    found = e[np.isfinite(e)]
    return {
        "n_points": int(labelled.sum()),
        "mean_px": float(found.mean()) if found.size else float("nan"),
        "rmse_px": float(np.sqrt((found**2).mean())) if found.size else float("nan"),
        "pck5": float(np.mean(np.nan_to_num(e, nan=np.inf) <= 5)) if e.size else float("nan"),
        "pck10": float(np.mean(np.nan_to_num(e, nan=np.inf) <= 10)) if e.size else float("nan"),
    }


def compare_iterations(
    project_dir: str | Path,
    model_dirs: Sequence[str | Path],
    *,
    test_images: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Errors of several models on one common set of labelled frames (a table).

    Parameters
    ----------
    project_dir
        The project; labels are read from its ``CollectedData`` files.
    model_dirs
        Models to compare, e.g. one per refinement iteration.
    test_images
        Project-relative image paths; default the test frames of the first model.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``model_dir``, ``n_images``, ``n_points``, ``mean_px``,
        ``rmse_px``, ``pck5``, ``pck10``.
    """
    from pose.pipeline.inference import predict_images  # torch: lazily

    project_dir = Path(project_dir)
    info = read_project_info(project_dir)
    if test_images is None:
        test_images = json.loads((Path(model_dirs[0]) / "split.json").read_text())["test"]
    if not test_images:
        raise ValueError("no test images to compare the models on")
    stores: dict[str, LabelStore] = {}
    truth = []
    for image in test_images:
        video = Path(image).parent.name
        store = stores.setdefault(video, LabelStore(info, video))
        truth.append(store.xy[store.index_of(image)])
    truth_xy = np.asarray(truth)
    rows = []
    for model_dir in model_dirs:
        ds = predict_images(model_dir, [project_dir / im for im in test_images])
        names = [str(k) for k in ds.coords["keypoint"].values]
        pred = np.full_like(truth_xy, np.nan)
        for k, kp in enumerate(info.bodyparts):
            if kp in names:
                pred[:, k] = ds["position"].values[:, :2, names.index(kp), 0]
        rows.append({"model_dir": str(model_dir), "n_images": len(test_images),
                     **score_predictions(pred, truth_xy)})
    return pd.DataFrame(rows)
