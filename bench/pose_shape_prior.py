"""Re-evaluate a trained model with the body-shape prior fitted from its own training labels.

Models trained before the prior existed (``pose/pipeline/shape.py``) have none in their
``model.json``. This copies MODEL_DIR to OUT, fits the prior on the model's training frames
(``split.json``'s train images; no test frame is used), writes it into the copy's
``model.json``, evaluates the copy (torch runtime) and prints the test and train errors of
both, as one JSON line (also written to ``OUT.parent / (MODEL_DIR.name + ".json")``).

Usage::

    python3 bench/pose_shape_prior.py MODEL_DIR OUT
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from pose.pipeline.evaluate import evaluate_model
from pose.pipeline.modeldir import ModelInfo, individual_channels
from pose.pipeline.project import load_labels, load_project
from pose.pipeline.shape import fit_shape_prior
from pose.pipeline.split import Split

KEYS = ("mean_px", "rmse_px", "pck5", "pck10", "normalized_error", "pck_size10")


def main(argv: list[str]) -> int:
    src, out = Path(argv[0]), Path(argv[1])
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("*.onnx", "evaluation*"))
    info = ModelInfo.load(out)
    labels = load_labels(load_project(info.project))
    index = {im: i for i, im in enumerate(labels.images)}
    train_idx = [index[im] for im in Split.load(out / "split.json").train]
    info.shape_prior = fit_shape_prior(labels.keypoints[train_idx], individual_channels(labels.names))
    info.save(out)
    before = json.loads((src / "evaluation.json").read_text())
    after = evaluate_model(out, runtime="torch", write_images=False)
    row = {"model": str(src),
           "reflections": [g.reflections for g in info.shape_prior.groups] if info.shape_prior else None,
           **{name: {p: {k: ev[p].get(k) for k in KEYS} for p in ("train", "test")}
              for name, ev in (("no_prior", before), ("prior", after))}}
    (out.parent / (src.name + ".json")).write_text(json.dumps(row, indent=1))
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
