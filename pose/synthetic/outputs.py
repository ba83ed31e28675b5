"""The files of a rendered synthetic session: truth, tables, arena, DeepLabCut-style project.

Layout of ``out_dir``::

    video.mp4                 the rendered video
    truth.nc, truth.h5        exact pose of every frame (ethopose NetCDF, DeepLabCut h5)
    behavior.csv              frame, time_s, state
    gait_events.csv           paw, stride, touch_down_s, toe_off_s (exact, sub-frame)
    arena.json                arena / scene geometry in px, px_per_mm, camera
    config.yaml               DeepLabCut-style project config (scorer "synthetic")
    labeled-data/video/       CollectedData_synthetic.h5/.csv + imgNNNN.png of sampled frames
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import xarray as xr
import yaml

from pose import io as pose_io
from pose.atomic import atomic_path, write_text_atomic
from pose.dataset import from_numpy

SCORER = "synthetic"


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """Write a csv atomically (fixed float format, so same input gives identical bytes)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6f")
    return path


def write_behavior(states: np.ndarray, fps: float, path: Path) -> Path:
    """``behavior.csv``: one row per frame with the behaviour state."""
    frame = np.arange(len(states))
    return write_table(pd.DataFrame({"frame": frame, "time_s": frame / fps, "state": states}),
                       path)


def write_json(obj: Mapping[str, Any], path: Path) -> Path:
    """Write JSON atomically with sorted keys."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=_plain))


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_truth(ds: xr.Dataset, out_dir: Path) -> tuple[Path, Path]:
    """``truth.nc`` and ``truth.h5`` (DeepLabCut layout, scorer "synthetic")."""
    ds = ds.copy()
    ds.attrs = dict(ds.attrs, scorer=SCORER)
    return pose_io.save(ds, out_dir / "truth.nc"), pose_io.save(ds, out_dir / "truth.h5")


def image_name(frame: int, n_frames: int) -> str:
    """DeepLabCut's frame image name: ``img`` + frame number padded to the frame count's digits."""
    return f"img{frame:0{len(str(n_frames))}d}.png"


def write_labeled_data(
    out_dir: Path,
    video_stem: str,
    images: Mapping[int, np.ndarray],
    position: np.ndarray,
    visible: np.ndarray,
    keypoints: Sequence[str],
    n_frames: int,
    px_per_mm: float,
    individuals: Sequence[str] = ("mouse",),
) -> Path | None:
    """Write the sampled frames and their labels as DeepLabCut's labelled data.

    One individual (``position`` 3-D) gives the single-animal layout; several
    (``position`` (time, space, keypoint, individual), ``visible`` (time, keypoint,
    individual)) give the multi-animal one.

    Parameters
    ----------
    images
        Frame index -> BGR image exactly as rendered (before compression).
    position
        (time, space, keypoint) truth of all frames, px.
    visible
        (time, keypoint) bool; hidden keypoints (occluded, outside the image) are left
        unlabelled (NaN), as a person labelling the frame would.

    Returns
    -------
    Path or None
        The ``CollectedData_synthetic.h5`` file; None (nothing written) without images.
    """
    if not images:
        return None
    folder = out_dir / "labeled-data" / video_stem
    folder.mkdir(parents=True, exist_ok=True)
    frames = np.array(sorted(images), dtype=int)
    names = []
    for f in frames:
        name = image_name(int(f), n_frames)
        with atomic_path(folder / name) as tmp:
            if not cv2.imwrite(str(tmp), images[int(f)]):
                raise OSError(f"could not write {folder / name}")
        names.append(f"labeled-data/{video_stem}/{name}")
    pos = np.asarray(position, dtype=float)[frames].copy()
    vis = np.asarray(visible, dtype=bool)[frames]
    if pos.ndim == 3:
        pos, vis = pos[..., None], vis[..., None]
    pos[~np.broadcast_to(vis[:, None], pos.shape)] = np.nan
    lab = from_numpy(pos, None, keypoints=list(keypoints), individuals=list(individuals),
                     source_software="ethopose.synthetic", px_per_mm=px_per_mm,
                     frame_index=frames)
    lab = lab.assign_coords(image=("time", np.array(names, dtype=object)))
    lab.attrs["scorer"] = SCORER
    h5 = pose_io.save(lab, folder / f"CollectedData_{SCORER}.h5")
    pose_io.save(lab, folder / f"CollectedData_{SCORER}.csv")
    return h5


def write_dlc_config(
    out_dir: Path,
    task: str,
    video_path: Path,
    width: int,
    height: int,
    bodyparts: Sequence[str],
    skeleton: Sequence[tuple[str, str]],
    symmetry_pairs: Sequence[tuple[str, str]],
    n_label_frames: int,
    top_view: bool = True,
) -> Path:
    """A DeepLabCut-style ``config.yaml`` so the pose pipeline trains on ``out_dir``.

    Notes
    -----
    ``symmetry_pairs`` (left/right pairs swapped under flip augmentation) and ``top_view``
    (full-rotation augmentation) are ethopose keys read by :mod:`pose.pipeline.project`.
    """
    cfg = {
        "Task": task,
        "scorer": SCORER,
        "date": _dt.date.today().strftime("%b%d"),
        "multianimalproject": False,
        "identity": None,
        "project_path": str(out_dir.resolve()),
        "engine": "pytorch",
        "video_sets": {str(video_path.resolve()): {"crop": f"0, {width}, 0, {height}"}},
        "bodyparts": list(bodyparts),
        "start": 0,
        "stop": 1,
        "numframes2pick": int(n_label_frames),
        "skeleton": [list(p) for p in skeleton],
        "skeleton_color": "black",
        "pcutoff": 0.6,
        "dotsize": 6,
        "alphavalue": 0.7,
        "colormap": "rainbow",
        "TrainingFraction": [0.95],
        "iteration": 0,
        "default_net_type": "resnet_50",
        "default_augmenter": "imgaug",
        "snapshotindex": -1,
        "batch_size": 8,
        "cropping": False,
        "x1": 0,
        "x2": int(width),
        "y1": 0,
        "y2": int(height),
        "corner2move2": [50, 50],
        "move2corner": True,
        "symmetry_pairs": [list(p) for p in symmetry_pairs],
        "top_view": bool(top_view),
    }
    return write_text_atomic(out_dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
