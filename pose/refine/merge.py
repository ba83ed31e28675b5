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


def compare_iterations(
    project_dir: str | Path,
    model_dirs: Sequence[str | Path],
    *,
    test_images: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Errors of several models on one common set of labelled frames (a table).

    Metrics are those of ``ethopose pose evaluate`` (:func:`pose.pipeline.evaluate.compute_metrics`),
    computed for every model on the same images against the project's current labels.

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
        One row per model: ``model_dir``, ``n_images``, ``n``, ``mean_px``, ``rmse_px``,
        ``pck5``, ``pck10``.
    """
    from pose.pipeline.evaluate import compute_metrics
    from pose.pipeline.inference import predict_images  # torch: lazily
    from pose.pipeline.modeldir import ModelInfo
    from pose.pipeline.project import load_labels, load_project

    project = load_project(project_dir)
    labels = load_labels(project)
    if test_images is None:
        test_images = json.loads((Path(model_dirs[0]) / "split.json").read_text())["test"]
    if not test_images:
        raise ValueError("no test images to compare the models on")
    index = {im: i for i, im in enumerate(labels.images)}
    missing = [im for im in test_images if im not in index]
    if missing:
        raise ValueError(f"{project_dir}: test images without labels: {missing[:3]}")
    truth = labels.keypoints[[index[im] for im in test_images]]
    rows = []
    for model_dir in model_dirs:
        ds = predict_images(model_dir, [project.root / im for im in test_images])
        pos = ds["position"].values[:, :2]  # (time, 2, keypoint, individual)
        pred = pos.transpose(0, 3, 2, 1).reshape(len(test_images), -1, 2)
        conf = ds["confidence"].values.transpose(0, 2, 1).reshape(len(test_images), -1)
        m = compute_metrics(pred, conf, truth, labels.names, ModelInfo.load(model_dir).pcutoff)
        rows.append({"model_dir": str(model_dir), "n_images": len(test_images),
                     **{k: m[k] for k in ("n", "mean_px", "rmse_px", "pck5", "pck10")}})
    return pd.DataFrame(rows)
