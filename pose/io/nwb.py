"""Neurodata Without Borders (NWB) files with the ``ndx-pose`` extension, read and written.

Layout written (one NWB file per session)
-----------------------------------------
- ``processing["behavior"]``:

  - ``Skeletons``: one ``Skeleton`` per individual (``skeleton_<individual>``): the
    keypoint names as nodes, the ``skeleton`` edges of the Dataset's attrs when present;
  - one ``PoseEstimation`` per individual (``PoseEstimation_<individual>``) holding one
    ``PoseEstimationSeries`` per keypoint: ``data`` (time, x/y[/z]) in pixels (``unit``
    "pixels") or, for 3D data, in millimetres (``unit`` "mm"), ``confidence`` (NaN where
    the source had none), sampled at ``rate`` = fps from ``starting_time``;
  - optional per-frame features as ``TimeSeries`` (one per numeric column; the unit is read
    from the column name's suffix, e.g. ``speed_mm_s`` -> "mm/s");
  - optional ``endpoints``: a one-row ``DynamicTable`` of the session's endpoints.
- ``intervals``: one ``TimeIntervals`` table per behaviour (``<name>_bouts``) with
  ``start_time`` / ``stop_time`` in seconds (a behaviour without bouts has no table; its
  name is listed in the notes, so :func:`read_nwb_intervals` gives it an empty list).
- ``subject``: ``pynwb.file.Subject`` from the given metadata.
- ``notes``: a JSON record of the pose Dataset's attrs (history, source file, px_per_mm...),
  so that :func:`read_nwb` gives back the provenance.

NWB needs time in seconds, so a Dataset without ``fps`` cannot be written (give ``fps``).
- ``PoseTraining`` (optional): the pose model's labelled training frames, one
  ``TrainingFrame`` per image on the first individual's skeleton (:class:`TrainingLabels`,
  read back by :func:`read_nwb_training`); the image paths are kept in the notes.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pose.atomic import atomic_path
from pose.dataset import append_history, from_numpy, validate_pose
from pose.io.errors import PoseFileError
from pose.io.h5check import check_hdf5

#: Sex codes NWB's best practices accept.
_NWB_SEX = {"m": "M", "male": "M", "f": "F", "female": "F", "u": "U", "unknown": "U", "o": "O", "other": "O"}
_UNIT_SUFFIXES = (("_mm_s", "mm/s"), ("_px_s", "pixels/s"), ("_deg_s", "degrees/s"), ("_mm", "mm"),
                  ("_px", "pixels"), ("_deg", "degrees"), ("_pct", "percent"), ("_s", "s"), ("_hz", "Hz"))
_ATTRS_KEY = "ethopose_attrs"


def unit_from_name(name: str) -> str:
    """The unit a column name states in its suffix (``speed_mm_s`` -> ``"mm/s"``), else "n.a."."""
    low = name.lower()
    for suffix, unit in _UNIT_SUFFIXES:
        if low.endswith(suffix):
            return unit
    return "n.a."


def _safe_name(name: str) -> str:
    """NWB object names may not contain '/' or ':'."""
    return re.sub(r"[/:]", "_", str(name))


def _subject(meta: Mapping[str, Any] | None):
    from pynwb.file import Subject

    meta = dict(meta or {})
    sid = str(meta.get("subject_id", "unknown"))
    sex = _NWB_SEX.get(str(meta.get("sex", "")).strip().lower(), "U")
    kwargs: dict[str, Any] = {
        "subject_id": sid,
        "sex": sex,
        "species": str(meta.get("species", "Mus musculus")),
        "description": str(meta.get("description", f"group: {meta.get('group', 'n.a.')}")),
    }
    # ISO 8601 duration (e.g. P90D). NWB requires an age; when the cohort gives none we write
    # the open range "P0D/" (older than 0 days: unknown) and say so in the description.
    if meta.get("age") and str(meta["age"]).strip().lower() not in ("nan", "none"):
        kwargs["age"] = str(meta["age"]).strip()
    else:
        kwargs["age"] = "P0D/"
        kwargs["description"] += "; age not recorded"
    if meta.get("genotype"):
        kwargs["genotype"] = str(meta["genotype"])
    return Subject(**kwargs)


@dataclass(frozen=True)
class TrainingLabels:
    """Labelled training frames of a pose model, for ndx-pose ``PoseTraining``.

    Attributes
    ----------
    images
        Image paths (relative to the labelled project), one per frame.
    keypoints
        ``(n_images, n_keypoints, 2)`` x, y in px; NaN = not labelled / not visible.
    names
        Keypoint names of the second axis.
    annotator
        Who labelled them (the project's scorer), or None.
    """

    images: list[str]
    keypoints: np.ndarray
    names: list[str]
    annotator: str | None = None


def _pose_training(training: TrainingLabels, skeleton, keypoints: list[str]):
    """ndx-pose ``PoseTraining`` of ``training`` on ``skeleton`` (nodes ``keypoints``)."""
    from ndx_pose import (
        PoseTraining,
        SkeletonInstance,
        SkeletonInstances,
        TrainingFrame,
        TrainingFrames,
    )

    kp = np.asarray(training.keypoints, dtype=float)
    if kp.ndim != 3 or kp.shape[0] != len(training.images) or kp.shape[1] != len(training.names):
        raise ValueError(f"training keypoints {kp.shape} do not match {len(training.images)} images x "
                         f"{len(training.names)} names")
    idx = {n: i for i, n in enumerate(training.names)}
    frames = []
    for f, image in enumerate(training.images):
        loc = np.full((len(keypoints), 2), np.nan)
        for j, k in enumerate(keypoints):
            if k in idx:
                loc[j] = kp[f, idx[k], :2]
        inst = SkeletonInstance(name="instance_0", id=np.uint8(0), node_locations=loc, skeleton=skeleton,
                                node_visibility=np.isfinite(loc).all(axis=1))
        frames.append(TrainingFrame(name=f"{f:05d}_{_safe_name(image)}", annotator=training.annotator,
                                    skeleton_instances=SkeletonInstances(skeleton_instances=[inst])))
    return PoseTraining(training_frames=TrainingFrames(training_frames=frames))


def read_nwb_training(path: str | os.PathLike) -> TrainingLabels | None:
    """The ``PoseTraining`` frames of an NWB file written by :func:`write_nwb` (None if absent)."""
    from ndx_pose import PoseTraining
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), mode="r") as io:
        nwbfile = io.read()
        pt = [obj for obj in nwbfile.objects.values() if isinstance(obj, PoseTraining)]
        if not pt or pt[0].training_frames is None:
            return None
        try:
            images = json.loads(nwbfile.notes or "{}").get(_ATTRS_KEY, {}).get("training_images")
        except (ValueError, AttributeError):
            images = None
        frames = sorted(pt[0].training_frames.training_frames.values(), key=lambda fr: fr.name)
        insts = [next(iter(fr.skeleton_instances.skeleton_instances.values())) for fr in frames]
        names = [str(n) for n in insts[0].skeleton.nodes[:]]
        kp = np.stack([np.asarray(i.node_locations[:], dtype=float) for i in insts])
        return TrainingLabels(images=images or [fr.name for fr in frames], keypoints=kp, names=names,
                              annotator=frames[0].annotator)


def write_nwb(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    subject: Mapping[str, Any] | None = None,
    session_description: str | None = None,
    session_start_time: _dt.datetime | None = None,
    intervals: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    features: Mapping[str, np.ndarray] | None = None,
    endpoints: Mapping[str, float] | None = None,
    identifier: str | None = None,
    training: TrainingLabels | None = None,
) -> Path:
    """Write a pose Dataset (and optionally bouts, features, endpoints) to an NWB file.

    Parameters
    ----------
    ds
        Pose Dataset (:mod:`pose.dataset`), 2D (px) or 3D (``space`` x, y, z in mm).
    path
        Output ``.nwb`` file (written atomically).
    fps
        Frame rate when ``ds.attrs["fps"]`` is missing.
    subject
        ``subject_id``, ``sex``, ``species``, ``age`` (ISO 8601), ``genotype``, ``group``...
    session_description, session_start_time, identifier
        NWB session fields; defaults: the source file, the current UTC time, a new UUID.
    intervals
        Behaviour name -> list of ``(start_s, stop_s)`` bouts.
    features
        Column name -> per-frame values (length = number of frames); numeric only.
    endpoints
        Endpoint name -> value, written as a one-row table.
    training
        The pose model's labelled training frames, written as ndx-pose ``PoseTraining``
        (one ``TrainingFrame`` per image, its keypoints on the first individual's skeleton;
        keypoints the labels lack are NaN and not visible).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    PoseFileError
        When the frame rate is unknown or a feature has the wrong length.
    """
    from hdmf.common import DynamicTable, VectorData
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.epoch import TimeIntervals

    path = Path(path)
    validate_pose(ds, context=str(path))
    rate = fps or ds.attrs.get("fps")
    if not rate:
        raise PoseFileError(path, "NWB needs the frame rate: the Dataset has no attrs['fps'] (give fps=)")
    rate = float(rate)
    n = ds.sizes["time"]
    t0 = float(ds["time"].values[0]) if ds.attrs.get("time_unit") == "seconds" else 0.0
    space = [str(s) for s in ds["space"].values]
    is_3d = "z" in space
    unit = "mm" if is_3d else "pixels"
    start = session_start_time or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    attrs_record = {k: v for k, v in ds.attrs.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
    attrs_record["individuals"] = [str(i) for i in ds["individual"].values]
    attrs_record["intervals_scored"] = [str(k) for k in (intervals or {})]
    if training is not None and len(training.images):
        attrs_record["training_images"] = list(training.images)
    nwbfile = NWBFile(
        session_description=session_description or f"pose from {ds.attrs.get('source_file') or 'ethopose'}",
        identifier=identifier or str(uuid.uuid4()),
        session_start_time=start,
        notes=json.dumps({_ATTRS_KEY: attrs_record}, default=str),
        source_script="ethopose", source_script_file_name="ethopose",
    )
    nwbfile.subject = _subject(subject)
    module = nwbfile.create_processing_module(name="behavior", description="pose and behaviour from ethopose")
    keypoints = [str(k) for k in ds["keypoint"].values]
    edges = np.asarray(
        [[keypoints.index(a), keypoints.index(b)] for a, b in ds.attrs.get("skeleton", []) or []
         if a in keypoints and b in keypoints], dtype="uint8").reshape(-1, 2)
    skeletons, estimations = [], []
    for ind in ds["individual"].values:
        skel = Skeleton(name=_safe_name(f"skeleton_{ind}"), nodes=keypoints, edges=edges)
        skeletons.append(skel)
        series = []
        for kp in keypoints:
            pos = ds["position"].sel(keypoint=kp, individual=ind).transpose("time", "space").values
            conf = ds["confidence"].sel(keypoint=kp, individual=ind).values.astype(float)
            series.append(PoseEstimationSeries(
                name=_safe_name(kp), description=f"{kp} of {ind}", data=pos.astype(float), unit=unit,
                reference_frame="image top-left corner, x right, y down" if not is_3d
                else "calibration's world frame",
                confidence=conf, confidence_definition="model likelihood in [0, 1]; NaN: none given",
                rate=rate, starting_time=t0))
        estimations.append(PoseEstimation(
            name=_safe_name(f"PoseEstimation_{ind}"), pose_estimation_series=series,
            description=f"pose of {ind}", skeleton=skel,
            original_videos=[str(ds.attrs["video_path"])] if ds.attrs.get("video_path") else None,
            scorer=str(ds.attrs.get("scorer") or ds.attrs.get("source_software") or "ethopose"),
            source_software=str(ds.attrs.get("source_software") or "ethopose")))
    module.add(Skeletons(skeletons=skeletons))
    if training is not None and len(training.images):
        module.add(_pose_training(training, skeletons[0], keypoints))
    for est in estimations:
        module.add(est)
    for name, values in (features or {}).items():
        values = np.asarray(values, dtype=float)
        if values.shape[0] != n:
            raise PoseFileError(path, f"feature {name!r} has {values.shape[0]} values, the pose {n} frames")
        module.add(TimeSeries(name=_safe_name(name), data=values, unit=unit_from_name(name), rate=rate,
                              starting_time=t0, description=f"per-frame {name}"))
    if endpoints:
        cols = [VectorData(name=_safe_name(k), description=f"{k} ({unit_from_name(k)})",
                           data=[float(v) if v is not None else np.nan]) for k, v in endpoints.items()]
        module.add(DynamicTable(name="endpoints", description="session endpoints (ethopose protocol)",
                                columns=cols))
    for name, bouts in (intervals or {}).items():
        if not len(bouts):  # an empty table trips NWB readers; the name is kept in the notes
            continue
        table = TimeIntervals(name=_safe_name(f"{name}_bouts"), description=f"{name} bouts (s)")
        for a, b in bouts:
            table.add_interval(start_time=float(a), stop_time=float(b))
        nwbfile.add_time_intervals(table)
    with atomic_path(path) as tmp:
        with NWBHDF5IO(str(tmp), mode="w") as io:
            io.write(nwbfile)
    return path


def read_nwb(path: str | os.PathLike, *, fps: float | None = None) -> xr.Dataset:
    """Read the pose of an NWB file (``ndx-pose`` ``PoseEstimation``) as a pose Dataset.

    Each ``PoseEstimation`` becomes one individual (its name without the
    ``PoseEstimation_`` prefix); keypoints are the series names. Files written by
    :func:`write_nwb` also give back the Dataset's attrs (history, px_per_mm...).

    Raises
    ------
    PoseFileError
        When the file is not NWB or holds no ``PoseEstimation``, or its series differ in length.
    """
    from ndx_pose import PoseEstimation
    from pynwb import NWBHDF5IO

    path = Path(path)
    if not path.is_file():
        raise PoseFileError(path, "file not found")
    check_hdf5(path, what="NWB (HDF5)")  # in a child process: a damaged file can hang the HDF5 library
    try:
        io = NWBHDF5IO(str(path), mode="r")
        nwbfile = io.read()
    except Exception as exc:  # h5py / hdmf raise many types for a file that is not NWB
        raise PoseFileError(path, f"not a readable NWB file: {type(exc).__name__}: {exc}") from exc
    try:
        ests = [obj for obj in nwbfile.objects.values() if isinstance(obj, PoseEstimation)]
        if not ests:
            raise PoseFileError(path, "no ndx-pose PoseEstimation in the file")
        skel = ests[0].skeleton
        keypoints = ([str(k) for k in skel.nodes[:]] if skel is not None
                     else list(ests[0].pose_estimation_series.keys()))
        individuals, positions, confidences = [], [], []
        rate, start_s = None, 0.0
        for est in ests:
            series = est.pose_estimation_series
            if sorted(series.keys()) != sorted(_safe_name(k) for k in keypoints):
                raise PoseFileError(path, f"{est.name}: keypoints {list(series.keys())} differ from {keypoints}")
            data = [np.asarray(series[_safe_name(k)].data[:], dtype=float) for k in keypoints]
            lengths = {d.shape[0] for d in data}
            if len(lengths) != 1:
                raise PoseFileError(path, f"{est.name}: series of different lengths {sorted(lengths)}")
            positions.append(np.stack(data, axis=-1))  # (time, space, keypoint)
            confidences.append(np.stack([
                np.asarray(series[_safe_name(k)].confidence[:], dtype=float)
                if series[_safe_name(k)].confidence is not None
                else np.full(data[0].shape[0], np.nan) for k in keypoints], axis=-1))
            first = series[_safe_name(keypoints[0])]
            start_s = float(first.starting_time or 0.0) if first.timestamps is None else float(first.timestamps[0])
            if first.rate is not None:
                rate = float(first.rate)
            elif first.timestamps is not None and len(first.timestamps) > 1:
                rate = float(1.0 / np.median(np.diff(np.asarray(first.timestamps[:]))))
            name = est.name
            individuals.append(name[len("PoseEstimation_"):] if name.startswith("PoseEstimation_") else name)
        record: dict[str, Any] = {}
        if nwbfile.notes:
            try:
                record = json.loads(nwbfile.notes).get(_ATTRS_KEY, {})
            except (ValueError, AttributeError):
                record = {}
    finally:
        io.close()
    order = [individuals.index(i) for i in record.get("individuals", []) if i in individuals]
    if sorted(order) != list(range(len(individuals))):
        order = sorted(range(len(individuals)), key=lambda i: individuals[i])
    individuals = [individuals[i] for i in order]
    position = np.stack([positions[i] for i in order], axis=-1)
    confidence = np.stack([confidences[i] for i in order], axis=-1)
    rate = fps or rate
    first_frame = int(round(start_s * rate)) if rate else 0
    ds = from_numpy(position, confidence, keypoints=keypoints, individuals=individuals, fps=rate,
                    source_software=record.get("source_software") or "NWB", source_file=str(path),
                    px_per_mm=record.get("px_per_mm"),
                    frame_index=np.arange(first_frame, first_frame + position.shape[0]))
    for key, value in record.items():
        if key not in ("fps", "time_unit", "source_file", "ds_type", "individuals", "intervals_scored"):
            ds.attrs[key] = value
    return append_history(ds, "read_nwb", {"path": str(path)})


def read_nwb_intervals(path: str | os.PathLike) -> dict[str, list[tuple[float, float]]]:
    """The ``<name>_bouts`` interval tables of an NWB file: name -> ``[(start_s, stop_s), ...]``."""
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), mode="r") as io:
        nwbfile = io.read()
        try:
            scored = json.loads(nwbfile.notes or "{}").get(_ATTRS_KEY, {}).get("intervals_scored", [])
        except (ValueError, AttributeError):
            scored = []
        out: dict[str, list[tuple[float, float]]] = {name: [] for name in scored}
        for name, table in (nwbfile.intervals or {}).items():
            key = name[: -len("_bouts")] if name.endswith("_bouts") else name
            df = table.to_dataframe()
            out[key] = list(zip(df["start_time"].astype(float), df["stop_time"].astype(float), strict=True))
        return out
