"""Pose-estimation pipeline: DeepLabCut-style projects, training, evaluation, video analysis.

A short user story::

    ethopose pose new PROJECT --bodyparts snout,left_ear,right_ear,tail_base --videos v.mp4
    ethopose pose extract-frames PROJECT --n 20 --method kmeans
    (label the frames: ethopose label PROJECT)
    (or start from another tool's labels: ethopose pose import labels.pkg.slp PROJECT;
     COCO .json, DeepLabCut/Lightning Pose CollectedData.csv, or labels + --video v.mp4)
    ethopose pose train PROJECT --minutes 15            # last line: "model: MODEL_DIR"
    ethopose pose evaluate MODEL_DIR                    # -> MODEL_DIR/evaluation.json
    ethopose pose analyze MODEL_DIR v.mp4 --out results # -> .nc + DeepLabCut .h5/.csv
    ethopose pose export-onnx MODEL_DIR --int8          # optional: ~1.7x faster on CPU
    ethopose pose evaluate MODEL_DIR --runtime onnx-int8 # its accuracy -> evaluation_int8.json
    ethopose pose analyze MODEL_DIR v.mp4 --runtime onnx-int8
    ethopose pose labeled-video MODEL_DIR v.mp4 --results results

Python API (stable names, used by ``pose.refine``):

- ``pose.pipeline.project``: ``load_project(path) -> Project``, ``load_labels(project) ->
  LabelSet``, ``create_project(...)``.
- ``pose.pipeline.split``: ``split_by_fraction`` (DeepLabCut's rule), ``split_by_test_frames``.
- ``pose.pipeline.train``: ``train_model(project, *, config=TrainConfig(...), out_dir=None,
  test_frames=None, training_fraction=None, init_from=None, resume=False) -> Path``
  (``init_from=MODEL_DIR`` starts from a previous model's weights).
- ``pose.pipeline.evaluate``: ``evaluate_model(model_dir) -> dict`` with ``train``/``test``
  ``mean_px``, ``rmse_px``, ``pck5``, ``pck10``, p-cutoff variants, ``per_bodypart``.
- ``pose.pipeline.inference``: ``Predictor.from_dir(model_dir, runtime=..., threads=...)``
  with ``.predict_video(video) -> Dataset``, ``.predict_frames(frames) -> Dataset``,
  ``.predict_images(paths) -> Dataset`` (``image`` coordinate); ``analyze_videos`` (files);
  ``predict_video``/``predict_images`` shorthands.
- ``pose.pipeline.export``: ``export_onnx(model_dir) -> Path``; ``pose.pipeline.quantize``:
  ``quantize_model(model_dir) -> Path`` (int8 ONNX, calibrated on the training frames).
- ``pose.pipeline.modeldir``: ``ModelDir.open(path)`` (a model folder, resolved once).
- ``pose.pipeline.importers``: ``read_labels(source, video=...) -> ImportedLabels``,
  ``write_project(labels, path) -> Project``.
- ``pose.pipeline.checkpoint``: resume integrity (``CheckpointMismatchError``).

Layers inside the package: ``images`` (image/device helpers) and ``modeldir`` at the
bottom; ``export`` above them; ``quantize`` above ``export``; ``inference`` above both
(it calls ``quantize`` for the int8 runtime; ``quantize`` never imports ``inference``);
``evaluate`` uses ``inference``; ``train`` uses ``images``. None of them imports ``train``. Only ``model``, ``train`` and the torch runtime
of ``inference``/``export`` import torch, and only when called or imported themselves;
importing this package, ``project``, ``split``, ``augment``, ``images``, ``export``,
``frames``, ``evaluate``, ``quantize`` or ``inference`` does not.
"""

import os as _os

# OpenMP threads that spin while they wait burn CPU time, which a CPU-minute budget counts:
# on a busy machine (load 15-19) the demo's 2-thread training spent its 5 CPU-minutes in 2
# epochs, where 1-thread runs of the same session with sleeping waiters got 10. Set before torch starts its thread pool;
# an OMP_WAIT_POLICY the user exported wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
