"""Evaluate a trained model on its train and test frames against the human labels.

Metrics (per split, overall and per body part):

- ``mean_px``: mean Euclidean error over labelled keypoints. This is what DeepLabCut
  reports as "RMSE"; it is not a root-mean-square.
- ``rmse_px``: the true root-mean-square Euclidean error, ``sqrt(mean(err**2))``.
- ``mean_px_pcutoff``, ``rmse_px_pcutoff``: the same over predictions with confidence >=
  the project's ``pcutoff`` (DeepLabCut's "with p-cutoff" numbers).
- ``pck5``, ``pck10``: fraction of labelled keypoints predicted within 5 / 10 px.
- ``normalized_error``: ``mean_px`` / the animal's size (``animal_size_px``: the labelled
  extent of the training frames, :func:`pose.pipeline.recipe.animal_size_px`), and
  ``pck_size10``: fraction within 0.1 x that size; comparable across frame sizes and species.
  :func:`quality_warning` turns them into a loud warning when the model failed.

Keypoints whose label is NaN (invisible) are left out of every metric.

Results go to ``MODEL_DIR/evaluation.json``; with the int8 runtime to
``evaluation_int8.json`` (and ``evaluation-images-int8/``), so that the fp32 evaluation is
never replaced by the quantized model's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from pose.atomic import atomic_path, write_text_atomic
from pose.pipeline.modeldir import ModelDir, resolve_model_dir
from pose.pipeline.project import load_labels, load_project
from pose.pipeline.recipe import animal_size_px
from pose.pipeline.split import Split

log = logging.getLogger(__name__)

EVALUATION_JSON = "evaluation.json"


def evaluation_paths(model_dir: str | Path, runtime: str = "auto") -> tuple[Path, Path]:
    """``(json file, labelled-images folder)`` that :func:`evaluate_model` writes for a runtime."""
    suffix = "_int8" if runtime == "onnx-int8" else ""
    return (Path(model_dir) / EVALUATION_JSON.replace(".json", f"{suffix}.json"),
            Path(model_dir) / f"evaluation-images{suffix.replace('_', '-')}")


def keypoint_errors(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Euclidean distance per (image, keypoint); NaN where the label is NaN.

    Parameters
    ----------
    predicted, labels
        ``(n_images, n_keypoints, 2)`` in pixels.
    """
    return np.sqrt(((np.asarray(predicted, float) - np.asarray(labels, float)) ** 2).sum(axis=-1))


def summarize_errors(errors: np.ndarray, confidence: np.ndarray | None = None, pcutoff: float = 0.6) -> dict:
    """Error metrics from per-keypoint errors (see the module docstring).

    Parameters
    ----------
    errors
        Any shape; NaN entries (unlabelled keypoints) are ignored.
    confidence
        Same shape as ``errors``; needed for the p-cutoff metrics.
    """
    err = np.asarray(errors, float)
    ok = np.isfinite(err)
    e = err[ok]
    out: dict = {"n": int(e.size)}
    if e.size == 0:
        out.update(mean_px=None, rmse_px=None, pck5=None, pck10=None)
    else:
        out.update(mean_px=float(e.mean()), rmse_px=float(np.sqrt((e**2).mean())),
                   pck5=float((e <= 5).mean()), pck10=float((e <= 10).mean()))
    if confidence is not None:
        keep = ok & (np.asarray(confidence, float) >= pcutoff)
        ec = err[keep]
        out["n_pcutoff"] = int(ec.size)
        out["mean_px_pcutoff"] = float(ec.mean()) if ec.size else None
        out["rmse_px_pcutoff"] = float(np.sqrt((ec**2).mean())) if ec.size else None
    return out


def compute_metrics(
    predicted: np.ndarray, confidence: np.ndarray, labels: np.ndarray, names: list[str], pcutoff: float
) -> dict:
    """Overall and per-body-part metrics for one set of images (arrays ``(N, K, 2)``/``(N, K)``)."""
    err = keypoint_errors(predicted, labels)
    out = summarize_errors(err, confidence, pcutoff)
    out["n_images"] = int(len(err))
    out["per_bodypart"] = {
        name: summarize_errors(err[:, j], confidence[:, j], pcutoff) for j, name in enumerate(names)
    }
    return out


def evaluate_model(
    model_dir: str | Path | ModelDir, *, project: str | Path | None = None, device: str = "auto",
    runtime: str = "auto", n_images: int | None = None, write_images: bool = True,
) -> dict:
    """Evaluate a model on its train and test frames; write ``MODEL_DIR/evaluation.json``.

    Parameters
    ----------
    model_dir
        A folder written by :func:`pose.pipeline.train.train_model`.
    project
        The project (default: the one recorded in ``model.json``).
    n_images
        Labelled test images (human = circles, predicted = crosses) to write to
        ``MODEL_DIR/evaluation-images/`` (default: all test images).

    Returns
    -------
    dict
        ``{"train": {...}, "test": {...}, "pcutoff": float, "split": {...}}``.
    """
    from pose.pipeline.inference import Predictor

    md = resolve_model_dir(model_dir)
    model_dir, info = md.root, md.info
    proj = load_project(project or info.project)
    labels = load_labels(proj)
    split = Split.load(model_dir / "split.json")
    index = {im: i for i, im in enumerate(labels.images)}
    predictor = Predictor.from_dir(md, device=device, runtime=runtime)  # type: ignore[arg-type]
    json_path, images_dir = evaluation_paths(model_dir, runtime)
    train_rows = [index[im] for im in split.train if im in index]
    size = animal_size_px(labels.keypoints[train_rows], labels.names) if train_rows else float("nan")
    result: dict = {"pcutoff": info.pcutoff, "runtime": predictor.runtime,
                    "animal_size_px": size if np.isfinite(size) else None,
                    "split": {"rule": split.rule, "training_fraction": split.training_fraction,
                              "seed": split.seed, "test_images": split.test}}
    for part, images in (("train", split.train), ("test", split.test)):
        if not images:
            result[part] = {"n_images": 0}
            continue
        missing = [im for im in images if im not in index]
        if missing:
            raise ValueError(f"{model_dir}: split names images not in the project's labels: {missing[:3]}")
        rows = [index[im] for im in images]
        ds = predictor.predict_images([proj.root / im for im in images])
        pred = _channels(ds)
        conf = ds["confidence"].values.transpose(0, 2, 1).reshape(len(rows), -1)
        result[part] = compute_metrics(pred, conf, labels.keypoints[rows], labels.names, info.pcutoff)
        result[part].update(size_metrics(keypoint_errors(pred, labels.keypoints[rows]), size))
        if part == "test" and write_images:
            _write_labelled(images_dir, proj.root, images[:n_images],
                            labels.keypoints[rows], pred, labels.names)
    write_text_atomic(json_path, json.dumps(result, indent=1))
    return result


def size_metrics(errors: np.ndarray, animal_size_px: float) -> dict:
    """``normalized_error`` (mean error / animal size) and ``pck_size10`` (within 0.1 x size)."""
    e = np.asarray(errors, float)
    e = e[np.isfinite(e)]
    if e.size == 0 or not np.isfinite(animal_size_px) or animal_size_px <= 0:
        return {"normalized_error": None, "pck_size10": None}
    return {"normalized_error": float(e.mean() / animal_size_px),
            "pck_size10": float((e <= 0.1 * animal_size_px).mean())}


# A model that learned its project puts the keypoints within a few percent of the animal's
# size (DeepLabCut's open field: 2.5 px of a 132-px mouse, 0.02); these limits flag failure.
MAX_NORMALIZED_ERROR = 0.1
MIN_PCK_SIZE10 = 0.5


def quality_warning(result: dict) -> str | None:
    """A multi-line WARNING when the evaluated model failed, else None.

    Failed: train or test ``normalized_error`` above :data:`MAX_NORMALIZED_ERROR`, or
    ``pck_size10`` below :data:`MIN_PCK_SIZE10`. The text names the numbers, the likely
    causes (too short a training, a recipe that does not suit the project, too few or
    inconsistent labels) and what to try.
    """
    bad = []
    for part in ("train", "test"):
        m = result.get(part) or {}
        ne, pck = m.get("normalized_error"), m.get("pck_size10")
        if ne is not None and ne > MAX_NORMALIZED_ERROR:
            bad.append(f"{part} error {m['mean_px']:.1f} px = {ne:.2f} of the animal size "
                       f"(limit {MAX_NORMALIZED_ERROR})")
        elif pck is not None and pck < MIN_PCK_SIZE10:
            bad.append(f"{part}: only {pck:.0%} of keypoints within 0.1 x the animal size")
    if not bad:
        return None
    size = result.get("animal_size_px")
    train_bad = any(b.startswith("train") for b in bad)
    causes = (["the training was too short (few epochs in the budget): train longer (--cpu-minutes, "
               "--epochs) or resume with --resume",
               "the recipe does not suit the project (see recipe.json and augmented_samples.png in the "
               "model folder): set view, scale, crop_px, sigma_px, rotation_deg or flip pairs in the "
               "project's config.yaml (recipe: section) or on the command line",
               "labels are inconsistent or swapped (left/right, mixed body parts): check the labelled frames"]
              if train_bad else
              ["the model fits its training frames but not the held-back ones: label more frames, "
               "more varied ones (other videos, poses, lighting)",
               "the test frames differ from the training frames (another set-up or video)"])
    lines = ["WARNING: the pose model has FAILED to learn this project: " + "; ".join(bad) + "."]
    if size:
        lines.append(f"  (animal size {size:.0f} px = 90th percentile of the labelled keypoints' extent)")
    lines.append("  Likely causes and what to try:")
    lines += [f"  - {c}" for c in causes]
    return "\n".join(lines)


def _channels(ds) -> np.ndarray:
    """Pose Dataset -> ``(time, channel, 2)`` with channels ordered individual-major."""
    pos = ds["position"].values[:, :2]  # (t, 2, k, i)
    t, _, k, i = pos.shape
    return pos.transpose(0, 3, 2, 1).reshape(t, i * k, 2)


def _write_labelled(folder: Path, root: Path, images: list[str], human: np.ndarray,
                    predicted: np.ndarray, names: list[str]) -> None:
    import cv2

    from pose.pipeline.augment import draw_keypoints
    from pose.pipeline.images import read_image

    for im, h, p in zip(images, human, predicted, strict=False):
        img = draw_keypoints(read_image(root / im), h, radius=3)
        img = draw_keypoints(img, p, radius=4, marker=cv2.MARKER_CROSS, names=names)
        out = folder / (im.replace("/", "__"))
        with atomic_path(out.with_suffix(".png")) as tmp:
            cv2.imwrite(str(tmp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def format_table(result: dict) -> str:
    """A plain-text table of the evaluation (overall and per body part)."""
    lines = [f"{'set':<6}{'body part':<16}{'n':>5}{'mean px':>9}{'RMSE px':>9}"
             f"{'mean@p':>9}{'PCK@5':>7}{'PCK@10':>7}"]

    def row(part: str, name: str, m: dict) -> str:
        def f(v, fmt):
            return format(v, fmt) if v is not None else "-"
        return (f"{part:<6}{name:<16}{m.get('n', 0):>5}{f(m.get('mean_px'), '9.2f'):>9}"
                f"{f(m.get('rmse_px'), '9.2f'):>9}{f(m.get('mean_px_pcutoff'), '9.2f'):>9}"
                f"{f(m.get('pck5'), '7.2f'):>7}{f(m.get('pck10'), '7.2f'):>7}")

    for part in ("train", "test"):
        m = result.get(part, {})
        if not m.get("n_images"):
            continue
        lines.append(row(part, "all", m))
        for name, pm in m["per_bodypart"].items():
            lines.append(row(part, name, pm))
    return "\n".join(lines)
