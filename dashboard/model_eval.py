"""The pose model's own error estimate for the QC page (``evaluation.json``, no Streamlit).

A results folder written with ``ethopose run ... --model MODEL_DIR`` records ``model_dir``
in ``run.json``; ``ethopose pose evaluate MODEL_DIR`` writes ``MODEL_DIR/evaluation.json``
(:func:`pose.pipeline.evaluate.evaluate_model`). A ``model/`` folder inside the results
folder is looked at too. Only files inside the dashboard root are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dashboard.paths import PathOutsideRootError, resolve_inside


@dataclass(frozen=True)
class ModelError:
    """What ``evaluation.json`` says about the model that produced a cohort's pose.

    Attributes
    ----------
    path
        The evaluation file (inside the root).
    test_mean_px, test_normalized_error, train_normalized_error
        Mean test error in px and the errors as a fraction of the animal's size (None when
        not recorded).
    failed
        True when :func:`pose.pipeline.evaluate.quality_warning` says the model failed.
    warning
        That warning's text (None when the model passed).
    """

    path: Path
    test_mean_px: float | None
    test_normalized_error: float | None
    train_normalized_error: float | None
    failed: bool
    warning: str | None


def find_evaluation(root: Path, results_dir: Path, run_info: dict) -> Path | None:
    """``evaluation.json`` of the cohort's model, when one lies inside the root."""
    candidates = []
    if run_info.get("model_dir"):
        candidates.append(Path(str(run_info["model_dir"])) / "evaluation.json")
    candidates.append(Path(results_dir) / "model" / "evaluation.json")
    for c in candidates:
        try:
            f = resolve_inside(root, c, allow_absolute=True)
        except (PathOutsideRootError, FileNotFoundError):
            continue
        if f.is_file():
            return f
    return None


def read_model_error(path: Path) -> ModelError:
    """Read an ``evaluation.json`` (written by ``ethopose pose evaluate``).

    Raises
    ------
    ValueError
        The file is not JSON or has no ``test``/``train`` section (the message names it).
    """
    from pose.pipeline.evaluate import quality_warning

    try:
        result = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{Path(path).name}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(result, dict) or not ({"test", "train"} & set(result)):
        raise ValueError(f"{Path(path).name}: no 'train' or 'test' section; not an evaluation.json")

    def num(part: str, field: str) -> float | None:
        v = (result.get(part) or {}).get(field)
        return None if v is None else float(v)

    warning = quality_warning(result)
    return ModelError(Path(path), num("test", "mean_px"), num("test", "normalized_error"),
                      num("train", "normalized_error"), warning is not None, warning)
