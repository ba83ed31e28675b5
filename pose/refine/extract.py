"""Extract outlier frames into a project, with the model's predictions as machine labels.

:func:`extract_outlier_frames` is ``ethopose pose outliers`` as a library call: score the
frames of a predictions Dataset (:mod:`pose.refine.outliers`), keep the candidates above a
threshold, pick ``n_frames`` of them spread over appearance (k-means on downsampled grey
frames), and write, as DeepLabCut's ``extract_outlier_frames`` does::

    <project>/labeled-data/<video>/img<frame>.png         the frames (DeepLabCut names)
    <project>/labeled-data/<video>/machinelabels-iter<k>.h5  predictions, x/y/likelihood
    <project>/refinement.json                              what was extracted, by whom

The labelling page shows the machine labels to correct; corrections go to
``CollectedData_<scorer>.h5``; :func:`pose.refine.merge.merge_refined_labels` then starts the
next iteration.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import xarray as xr

from pose.atomic import atomic_path
from pose.dataset import append_history, frame_numbers, validate_pose
from pose.refine.outliers import (
    OutlierMethod,
    compute_outlier_scores,
    detect_outlier_frames,
    select_diverse_frames,
)
from pose.refine.state import OutlierRecord, load_state, save_state

logger = logging.getLogger(__name__)

APPEARANCE_SIZE = (32, 24)


@dataclass(frozen=True)
class OutlierExtraction:
    """What :func:`extract_outlier_frames` wrote."""

    folder: Path
    frames: np.ndarray
    images: list[str]
    n_candidates: int
    machine_labels: Path
    iteration: int


def image_name(frame: int, n_frames: int) -> str:
    """DeepLabCut's frame name: ``img`` + the frame number padded to the frame count's digits."""
    return f"img{frame:0{len(str(max(n_frames, 1)))}d}.png"


def read_frames(video_path: str | Path, frames: Sequence[int]) -> dict[int, np.ndarray]:
    """RGB pixels of the given frame numbers of a video (one sequential pass).

    Raises
    ------
    FileNotFoundError
        The video cannot be opened.
    ValueError
        A frame number lies beyond the end of the video (names the frame).
    """
    from pose.video import VideoReader

    wanted = sorted({int(f) for f in frames})
    if not Path(video_path).is_file():
        raise FileNotFoundError(f"cannot open video {video_path}: no such file")
    with VideoReader(video_path) as reader:
        beyond = [f for f in wanted if not 0 <= f < reader.n_frames]
        if beyond:
            raise ValueError(f"{video_path}: frame {beyond[0]} is beyond the end ({reader.n_frames} frames)")
        return {f: reader.read(f) for f in wanted}


def compute_appearance(images: Sequence[np.ndarray], size: tuple[int, int] = APPEARANCE_SIZE) -> np.ndarray:
    """Downsampled grey frames, flattened: (n_images, width * height) floats in [0, 1]."""
    feats = [
        cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
        for img in images
    ]
    return np.asarray(feats, dtype=float).reshape(len(feats), -1) / 255.0


def _machine_dataset(preds: xr.Dataset, rows: np.ndarray, images: list[str], scorer: str) -> xr.Dataset:
    ds = preds.isel(time=rows)
    ds = ds.assign_coords(image=("time", np.array(images, dtype=object)))
    ds.attrs = {k: v for k, v in ds.attrs.items() if not k.startswith("dlc_")}
    ds.attrs["scorer"] = scorer
    ds.attrs["dlc_index_layout"] = "multiindex"
    return ds


def extract_outlier_frames(
    project_dir: str | Path,
    predictions: xr.Dataset,
    video_path: str | Path,
    *,
    method: OutlierMethod,
    n_frames: int = 20,
    threshold: float | None = None,
    p_cutoff: float = 0.1,
    ensemble: Sequence[xr.Dataset] = (),
    video_name: str | None = None,
    max_candidates: int = 400,
    random_state: int = 0,
) -> OutlierExtraction:
    """Select outlier frames of a video and write them into the project for correction.

    Parameters
    ----------
    project_dir
        DeepLabCut-style project folder.
    predictions
        The model's predictions of every frame of ``video_path`` (``predict_video``).
    method
        ``"jump"``, ``"fit"``, ``"uncertain"`` or ``"ensemble"`` (see :mod:`pose.refine.outliers`).
    n_frames
        How many frames to extract.
    threshold
        Score above which a frame is a candidate: px for jump/fit/ensemble (default 20,
        DeepLabCut's epsilon), ``1 - p_bound`` for uncertain (default 0.4, i.e. a body part
        below confidence 0.6).
    p_cutoff
        Confidence below which a point is ignored by jump/fit.
    ensemble
        Other models' predictions of the same video (method ``"ensemble"``).
    video_name
        Folder name under ``labeled-data`` (default the video's file stem).
    max_candidates
        Only the most suspicious candidates are decoded and clustered.

    Returns
    -------
    OutlierExtraction
    """
    validate_pose(predictions, context=f"predictions of {video_path}")
    project_dir = Path(project_dir)
    if not (project_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{project_dir}: no config.yaml (not a project folder)")
    if threshold is None:
        threshold = 0.4 if method == "uncertain" else 20.0
    scores = compute_outlier_scores(predictions, method, p_cutoff=p_cutoff, ensemble=ensemble)
    candidates = detect_outlier_frames(scores, threshold)
    n_candidates = len(candidates)
    logger.info("%s: %d candidate frames above %g (%s)", video_path, n_candidates, threshold, method)
    top = candidates[:max_candidates]
    frame_no = frame_numbers(predictions)
    state = load_state(project_dir)
    name = video_name or Path(video_path).stem
    folder = project_dir / "labeled-data" / name
    folder.mkdir(parents=True, exist_ok=True)
    machine_path = folder / f"machinelabels-iter{state.iteration}.h5"
    if n_candidates == 0:
        return OutlierExtraction(folder, np.array([], int), [], 0, machine_path, state.iteration)
    pixels = read_frames(video_path, frame_no[top])
    appearance = compute_appearance([pixels[int(frame_no[r])] for r in top])
    rows = select_diverse_frames(top, scores.values[top], appearance, n_frames, random_state=random_state)
    n_total = int(frame_no.max()) + 1
    images = []
    for r in rows:
        f = int(frame_no[r])
        target = folder / image_name(f, n_total)
        images.append(f"labeled-data/{name}/{target.name}")
        if not target.exists():
            with atomic_path(target) as tmp:
                if not cv2.imwrite(str(tmp), cv2.cvtColor(pixels[f], cv2.COLOR_RGB2BGR)):
                    raise OSError(f"could not write {target}")
    machine = _machine_dataset(predictions, rows, images, scorer="machine")
    if machine_path.is_file():  # a second extraction in the same iteration: keep both
        from pose.io.dlc import read_dlc

        old = read_dlc(machine_path)
        keep = [i for i, img in enumerate(old.coords["image"].values) if str(img) not in set(images)]
        if keep:
            old = old.isel(time=keep)
            machine = xr.concat([old.drop_vars("time"), machine.drop_vars("time")], dim="time")
    machine = append_history(machine, "extract_outlier_frames",
                             {"method": method, "threshold": threshold, "video": str(video_path)})
    from pose.io.dlc import write_dlc

    write_dlc(machine, machine_path)
    state.outliers.append(OutlierRecord(
        iteration=state.iteration, video=name, video_path=str(Path(video_path).resolve()),
        model_dir=str(predictions.attrs.get("model_dir", "")), method=method,
        threshold=float(threshold), n_candidates=n_candidates,
        frames=[int(frame_no[r]) for r in rows], images=images, machine_labels=str(machine_path.name),
    ))
    save_state(project_dir, state)
    return OutlierExtraction(folder, frame_no[rows], images, n_candidates, machine_path, state.iteration)
