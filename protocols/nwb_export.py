"""Export an ``ethopose run`` results folder as NWB files, one per session.

``ethopose export-nwb RESULTS_DIR --out STUDY_DIR`` writes ``STUDY_DIR/<subject>_<session>.nwb``
for every finished animal (see :mod:`protocols.batch` for the results layout): the
animal's pose (``pose.nc``, ndx-pose), its behaviour bouts (the boolean per-frame columns of
``frames.parquet``, e.g. ``rearing``, ``in_centre``) as ``TimeIntervals``, the numeric
per-frame features as ``TimeSeries``, the endpoints as a one-row table, the subject from
the cohort row and the run's provenance (protocol, version, history) in the file's notes.
The layout of each file is described in :mod:`pose.io.nwb`.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from pathlib import Path

import pandas as pd

from behavior.bouts import bouts_from_vector
from pose.io import load
from pose.io.nwb import TrainingLabels, write_nwb
from protocols.results import finished_animals, load_animal, load_results

logger = logging.getLogger(__name__)

#: Per-frame columns that are coordinates, not features.
_NOT_FEATURES = {"time_s", "frame"}


def _session_start(run_info: dict) -> _dt.datetime:
    for key in ("started", "start_time", "started_at"):
        value = run_info.get(key)
        if isinstance(value, str):
            try:
                t = _dt.datetime.fromisoformat(value)
                return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)
            except ValueError:
                continue
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)


def training_labels(project_dir: str | Path, model_dir: str | Path | None = None) -> TrainingLabels:
    """A labelled project's frames (only the model's training frames when ``model_dir`` has a
    ``split.json``), body part names without their individual prefix, the project's scorer."""
    from pose.pipeline.project import load_labels, load_project
    from pose.pipeline.split import SPLIT_NAME, Split

    project = load_project(project_dir)
    labels = load_labels(project)
    keep = list(range(len(labels.images)))
    split_path = None if model_dir is None else Path(model_dir) / SPLIT_NAME
    if split_path is not None and split_path.is_file():
        train = set(Split.load(split_path).train)
        keep = [i for i, im in enumerate(labels.images) if im in train]
        if not keep:
            raise ValueError(f"{split_path}: none of its training images is labelled in {project.root}")
    names, cols = [], []
    for j, n in enumerate(labels.names):  # several individuals: the first one's channels
        short = n.split("/")[-1]
        if short not in names:
            names.append(short)
            cols.append(j)
    return TrainingLabels(images=[labels.images[i] for i in keep], keypoints=labels.keypoints[keep][:, cols],
                          names=names, annotator=str(project.raw.get("scorer") or "") or None)


def export_results_nwb(results_dir: str | Path, out_dir: str | Path, *, project: str | Path | None = None,
                       model_dir: str | Path | None = None) -> list[Path]:
    """Write one NWB file per finished animal of a results folder.

    Parameters
    ----------
    results_dir
        Output folder of ``ethopose run``.
    out_dir
        Folder for the ``.nwb`` files (created).
    project
        The pose model's labelled project: its training frames go into each file as
        ndx-pose ``PoseTraining`` (see :func:`training_labels`).
    model_dir
        The model folder whose ``split.json`` says which frames it was trained on; default
        the run's ``model_dir`` (run.json) when it has one.

    Returns
    -------
    list of Path
        The files written, in animal order.

    Raises
    ------
    FileNotFoundError
        When ``results_dir`` is not a results folder or has no finished animal.
    """
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    res = load_results(results_dir)
    keys = finished_animals(results_dir)
    if not keys:
        raise FileNotFoundError(f"{results_dir} has no finished animal to export")
    out_dir.mkdir(parents=True, exist_ok=True)
    protocol = res.protocol.name if res.protocol is not None else "unknown protocol"
    start = _session_start(res.run_info)
    model_dir = model_dir or res.run_info.get("model_dir")
    training = None if project is None else training_labels(project, model_dir)
    if training is not None:
        logger.info("PoseTraining: %d labelled training frames from %s", len(training.images), project)
    written = []
    for key in keys:
        animal = load_animal(results_dir, key)
        pose = load(animal.folder / "pose.nc")
        frames = animal.frames
        fps = animal.fps or pose.attrs.get("fps")
        bools = [c for c in frames.columns if pd.api.types.is_bool_dtype(frames[c].dtype)]
        numeric = [c for c in frames.columns if c not in _NOT_FEATURES and c not in bools
                   and pd.api.types.is_numeric_dtype(frames[c].dtype)]
        intervals = {}
        for col in bools:
            b = bouts_from_vector(frames[col].to_numpy(), fps=fps)
            intervals[col] = list(zip(b["start_s"], b["end_s"], strict=True))
        features = {c: frames[c].to_numpy(dtype=float) for c in numeric} if len(frames) == pose.sizes["time"] else {}
        if not features and numeric:
            logger.warning("%s: frames.parquet has %d rows, pose %d frames: per-frame features not exported",
                           key, len(frames), pose.sizes["time"])
        meta = dict(animal.meta)
        pose.attrs["ethopose_protocol"] = protocol
        pose.attrs["ethopose_run"] = json.dumps(res.run_info, default=str)
        endpoints = {k: v for k, v in animal.endpoints.items() if isinstance(v, (int, float)) or v is None}
        path = write_nwb(
            pose, out_dir / f"{key}.nwb", fps=fps, subject=meta, intervals=intervals, features=features,
            endpoints=endpoints, session_start_time=start, training=training,
            session_description=f"{protocol}: subject {meta.get('subject_id', key)}, "
                                f"session {meta.get('session', 1)}, group {meta.get('group', 'n.a.')}",
        )
        written.append(path)
        logger.info("wrote %s", path)
    return written
