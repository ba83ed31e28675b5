"""SLEAP pose files: ``.slp`` (labels / predictions) and ``.analysis.h5``, via ``sleap-io``.

Format notes
------------
- ``.slp`` holds labelled frames, each with instances of a skeleton; an instance is a
  ``PredictedInstance`` (with per-point scores and an instance score) or a user
  ``Instance`` (hand labels, no scores). Tracks name the animals. Only the first video
  of a multi-video project is loaded (with a warning).
- ``.analysis.h5`` is SLEAP's dense export: ``tracks`` (n_tracks, 2, n_nodes, n_frames),
  ``point_scores`` (n_tracks, n_nodes, n_frames), ``track_occupancy`` (n_frames,
  n_tracks), ``node_names``, ``track_names``. Frames run from 0.

Mapping to the pose Dataset
---------------------------
- ``keypoint`` = skeleton node names; ``individual`` = track names (``track_<i>``
  by instance order when the file has no tracks).
- ``time`` covers every frame from 0 to the last labelled frame (rows without an
  instance are NaN), as ``movement`` does.
- ``confidence`` = the per-point score of predicted instances; NaN for user instances.
  Where a frame has both a user and a predicted instance of one track, the user
  instance wins (as in SLEAP).

Notes
-----
SLEAP and DeepLabCut confidences are on different scales. DeepLabCut's ``likelihood``
is a sigmoid output in [0, 1]. SLEAP's point score is the value of the confidence-map
peak, which is usually in [0, 1] but can exceed 1 slightly (the shared DeepOF file
reaches 1.049). ethopose keeps ``confidence`` in [0, 1], so SLEAP scores are clipped to
[0, 1] on reading (the number of clipped values is logged). A ``p_cutoff`` tuned for
one tool does not transfer to the other.

Writing: rows whose individual has any finite confidence become ``PredictedInstance``
objects (instance score = mean point score), others user ``Instance`` objects. Frames
where an individual has no finite position hold no instance for it, so trailing empty
frames are not stored.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import h5py
import numpy as np
import xarray as xr

from pose.atomic import atomic_path
from pose.dataset import PoseValidationError, frame_numbers, from_numpy, validate_pose
from pose.io.errors import PoseFileError
from pose.io.h5check import check_hdf5

# A dense (time, ...) array from a labels file may be this many times the file's size
# (sparse labels spread over a long video) but never more than this absolute cap.
DENSE_BYTES_PER_FILE_BYTE = 100
DENSE_BYTES_MIN = 1 << 30

log = logging.getLogger(__name__)


def is_analysis_h5(path: str | os.PathLike) -> bool:
    """True when ``path`` is a SLEAP analysis HDF5 file (has ``tracks`` and ``node_names``)."""
    try:
        check_hdf5(path)  # a damaged file can hang the HDF5 library: probed in a child first
        with h5py.File(Path(path), "r") as fh:
            return isinstance(fh.get("tracks"), h5py.Dataset) and "node_names" in fh
    except Exception:  # a damaged file is not sniffed as SLEAP; the DLC reader names the damage
        return False


def _check_dense_size(path: Path, n_time: int, n_keypoints: int, n_tracks: int, what: str) -> None:
    """Refuse a dense pose array that a damaged frame index / shape would make huge."""
    n_bytes = float(n_time) * 3 * max(n_keypoints, 1) * max(n_tracks, 1) * 8
    limit = max(DENSE_BYTES_MIN, DENSE_BYTES_PER_FILE_BYTE * path.stat().st_size)
    if n_bytes > limit:
        raise PoseFileError(
            path,
            f"{what}: {n_time} frames x {n_keypoints} nodes x {n_tracks} tracks would need "
            f"{n_bytes / 2**30:.1f} GiB for a {path.stat().st_size / 2**20:.2f} MiB file "
            "(damaged frame index or shape?)",
        )


def _clip_scores(conf: np.ndarray, where: Path) -> np.ndarray:
    n_over = int(np.sum(conf > 1)) + int(np.sum(conf < 0))
    if n_over:
        log.info("%s: clipped %d SLEAP scores outside [0, 1] (max %.4g)", where, n_over, np.nanmax(conf))
    return np.clip(conf, 0.0, 1.0)


def _decode(values: np.ndarray) -> list[str]:
    values = np.atleast_1d(values)
    if values.ndim != 1:
        raise ValueError(f"names of shape {values.shape}, expected 1-D")
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _to_dataset(
    path: Path,
    position: np.ndarray,
    confidence: np.ndarray,
    keypoints: list[str],
    individuals: list[str],
    fps: float | None,
    video_path: str | None,
) -> xr.Dataset:
    """Pose Dataset from SLEAP arrays; confidence NaN where a point is missing, clipped."""
    confidence = np.where(np.isnan(position).any(axis=1), np.nan, confidence)
    confidence = _clip_scores(confidence, path)
    try:
        return from_numpy(
            position,
            confidence,
            keypoints=keypoints,
            individuals=individuals,
            fps=fps,
            source_software="SLEAP",
            source_file=str(path),
            video_path=video_path,
        )
    except PoseValidationError as exc:
        raise PoseFileError(path, str(exc)) from exc


def read_slp(path: str | os.PathLike, *, fps: float | None = None) -> xr.Dataset:
    """Read a SLEAP ``.slp`` file (predictions and/or user labels).

    Parameters
    ----------
    path
        ``.slp`` file.
    fps
        Frame rate; when given, ``time`` is in seconds.

    Returns
    -------
    xarray.Dataset
        Pose Dataset; ``confidence`` is the point score of predicted instances
        (clipped to [0, 1]) and NaN for user instances.

    Raises
    ------
    PoseFileError
        Missing or unreadable file, or a file without skeleton or labelled frames.
    """
    import sleap_io as sio

    path = Path(path)
    if not path.is_file():
        raise PoseFileError(path, "file not found")
    check_hdf5(path, what="SLEAP .slp")
    try:
        labels = sio.load_slp(str(path), open_videos=False)
    except Exception as exc:  # sleap-io raises many types for a bad file
        raise PoseFileError(path, f"not a SLEAP .slp file: {type(exc).__name__}: {exc}") from exc
    try:
        return _labels_to_dataset(path, labels, fps)
    except PoseFileError:
        raise
    except Exception as exc:  # inconsistent content that sleap-io accepted
        raise PoseFileError(path, f"damaged SLEAP .slp content: {type(exc).__name__}: {exc}") from exc


def _labels_to_dataset(path: Path, labels, fps: float | None) -> xr.Dataset:
    import sleap_io as sio

    if not labels.skeletons:
        raise PoseFileError(path, "SLEAP file has no skeleton")
    if not labels.videos:
        raise PoseFileError(path, "SLEAP file has no video and no labelled frames")
    if len(labels.videos) > 1:
        warnings.warn(
            f"{path}: holds {len(labels.videos)} videos; loading only the first "
            f"({labels.videos[0].filename})",
            UserWarning,
            stacklevel=3,
        )
    video = labels.videos[0]
    skeleton = labels.skeletons[0]
    keypoints = [node.name for node in skeleton.nodes]
    frames = [lf for lf in labels.labeled_frames if lf.video is video]
    if not frames:
        raise PoseFileError(path, "SLEAP file has no labelled frames for its first video")
    track_names = [t.name for t in labels.tracks]
    if not track_names:
        n_max = max(len(lf.instances) for lf in frames)
        track_names = [f"track_{i}" for i in range(max(n_max, 1))]
    frame_idx = [int(lf.frame_idx) for lf in frames]
    if min(frame_idx) < 0:
        raise PoseFileError(path, f"labelled frame with negative frame index {min(frame_idx)}")
    n_time = max(frame_idx) + 1
    _check_dense_size(path, n_time, len(keypoints), len(track_names), f"frame index {n_time - 1}")
    position = np.full((n_time, 2, len(keypoints), len(track_names)), np.nan)
    confidence = np.full((n_time, len(keypoints), len(track_names)), np.nan)
    for lf in frames:
        # Predicted first, then user instances overwrite them (SLEAP's preference).
        ordered = sorted(lf.instances, key=lambda inst: not isinstance(inst, sio.PredictedInstance))
        for order, inst in enumerate(ordered):
            if inst.skeleton is not skeleton and [n.name for n in inst.skeleton.nodes] != keypoints:
                raise PoseFileError(path, f"frame {lf.frame_idx}: instance with another skeleton")
            if inst.track is not None and labels.tracks:
                if inst.track.name not in track_names:
                    raise PoseFileError(path, f"frame {lf.frame_idx}: instance of unknown track {inst.track.name!r}")
                i = track_names.index(inst.track.name)
            else:
                i = order
            if i >= len(track_names):
                continue
            pts = inst.numpy()
            if pts.shape != (len(keypoints), 2):
                raise PoseFileError(path, f"frame {lf.frame_idx}: instance points of shape {pts.shape}")
            position[lf.frame_idx, :, :, i] = pts.T
            if isinstance(inst, sio.PredictedInstance):
                confidence[lf.frame_idx, :, i] = np.asarray(inst.points["score"], dtype=float)
            else:
                confidence[lf.frame_idx, :, i] = np.nan
    filename = video.filename if isinstance(video.filename, str) else str(video.filename[0])
    return _to_dataset(path, position, confidence, keypoints, track_names, fps, filename)


def read_analysis_h5(path: str | os.PathLike, *, fps: float | None = None) -> xr.Dataset:
    """Read a SLEAP analysis HDF5 file (``.analysis.h5``).

    Parameters
    ----------
    path
        Analysis file.
    fps
        Frame rate; when given, ``time`` is in seconds.

    Returns
    -------
    xarray.Dataset
        Pose Dataset with one row per frame of the file.

    Raises
    ------
    PoseFileError
        Missing datasets, or arrays whose frame / node / track counts disagree (the
        message names the datasets and their shapes).
    """
    path = Path(path)
    if not path.is_file():
        raise PoseFileError(path, "file not found")
    check_hdf5(path, what="SLEAP analysis")
    field = "file"
    try:
        with h5py.File(path, "r") as fh:
            missing = [k for k in ("tracks", "node_names") if not isinstance(fh.get(k), h5py.Dataset)]
            if missing:
                raise PoseFileError(path, f"not a SLEAP analysis file: no {missing} dataset(s)")
            shape = fh["tracks"].shape
            if len(shape) != 4:
                raise PoseFileError(path, f"'tracks' has shape {shape}; expected (n_tracks, 2, n_nodes, n_frames)")
            _check_dense_size(path, shape[3], shape[2], shape[0], f"'tracks' shape {shape}")
            field = "tracks"
            tracks = fh["tracks"][()].astype(float)
            field = "node_names"
            nodes = _decode(fh["node_names"][()])
            field = "track_names"
            track_names = _decode(fh["track_names"][()]) if "track_names" in fh else []
            field = "point_scores"
            scores = fh["point_scores"][()].astype(float) if "point_scores" in fh else None
            field = "video_path"
            video_path = fh["video_path"][()] if "video_path" in fh else None
    except PoseFileError:
        raise
    except Exception as exc:  # h5py's RuntimeError/KeyError/OSError, numpy's ValueError/TypeError
        raise PoseFileError(path, f"damaged SLEAP analysis file, dataset {field!r}: {type(exc).__name__}: {exc}") from exc
    if tracks.ndim != 4 or tracks.shape[1] != 2 or tracks.shape[2] != len(nodes):
        raise PoseFileError(
            path,
            f"'tracks' has shape {tracks.shape}; expected (n_tracks, 2, n_nodes={len(nodes)}, n_frames)",
        )
    n_tracks, _, n_nodes, n_frames = tracks.shape
    if scores is not None and scores.shape != (n_tracks, n_nodes, n_frames):
        raise PoseFileError(
            path,
            f"mismatched frame counts: 'point_scores' has shape {scores.shape}, 'tracks' "
            f"{tracks.shape} (expected point_scores {(n_tracks, n_nodes, n_frames)})",
        )
    if not track_names:
        track_names = [f"track_{i}" for i in range(n_tracks)]
    if len(track_names) != n_tracks:
        raise PoseFileError(path, f"{len(track_names)} track_names for {n_tracks} tracks")
    position = np.transpose(tracks, (3, 1, 2, 0))  # -> (frames, 2, nodes, tracks)
    if scores is None:
        confidence = np.full((n_frames, n_nodes, n_tracks), np.nan)
    else:
        confidence = np.transpose(scores, (2, 1, 0))
    if isinstance(video_path, bytes):
        video_path = video_path.decode("utf-8", errors="replace")
    video_path = video_path if isinstance(video_path, str) and video_path else None
    return _to_dataset(path, position, confidence, nodes, track_names, fps, video_path)


def _warn_if_images(ds: xr.Dataset) -> None:
    if "image" in ds.coords:
        warnings.warn(
            "the Dataset's 'image' coordinate (labelled-image paths) is not stored in SLEAP "
            "files: rows are written as frames 0..n-1; use .nc or DeepLabCut files to keep it",
            UserWarning,
            stacklevel=3,
        )


def dataset_to_labels(ds: xr.Dataset):
    """Build a ``sleap_io.Labels`` from a pose Dataset (one video, one skeleton).

    Rows become labelled frames at their frame numbers; each individual becomes a
    ``Track``. See the module notes for predicted vs user instances.
    """
    import sleap_io as sio

    validate_pose(ds, context=str(ds.attrs.get("source_file") or "dataset"))
    if ds.sizes["space"] != 2:
        raise PoseValidationError("SLEAP files hold 2-D poses; this Dataset has 3-D positions")
    _warn_if_images(ds)
    keypoints = [str(k) for k in ds.coords["keypoint"].values]
    skeleton = sio.Skeleton(keypoints)
    tracks = [sio.Track(name=str(n)) for n in ds.coords["individual"].values]
    video = sio.Video(filename=str(ds.attrs.get("video_path") or "video.mp4"), open_backend=False)
    pos = ds["position"].values
    conf = ds["confidence"].values
    frames = frame_numbers(ds)
    if np.any(frames < 0) or len(np.unique(frames)) != len(frames):
        raise PoseValidationError("SLEAP needs unique, non-negative frame numbers")
    labeled_frames = []
    for t, frame in enumerate(frames):
        instances = []
        for i, track in enumerate(tracks):
            pts = pos[t, :, :, i].T
            if np.isnan(pts).all():
                continue
            scores = conf[t, :, i]
            if np.isfinite(scores).any():
                inst = sio.PredictedInstance.from_numpy(
                    pts, skeleton, point_scores=np.nan_to_num(scores, nan=0.0),
                    score=float(np.nanmean(scores)), track=track,
                )
            else:
                inst = sio.Instance.from_numpy(pts, skeleton, track=track)
            instances.append(inst)
        if instances:
            labeled_frames.append(sio.LabeledFrame(video=video, frame_idx=int(frame), instances=instances))
    return sio.Labels(labeled_frames=labeled_frames, videos=[video], skeletons=[skeleton], tracks=tracks)


def write_slp(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a pose Dataset as a SLEAP ``.slp`` file (atomically). Returns the path."""
    import sleap_io as sio

    path = Path(path)
    labels = dataset_to_labels(ds)
    with atomic_path(path) as tmp:
        sio.save_slp(labels, str(tmp), verbose=False)
    return path


def write_analysis_h5(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a pose Dataset as a SLEAP analysis HDF5 file (atomically).

    Written in SLEAP's own layout (``tracks`` (n_tracks, 2, n_nodes, n_frames) etc.)
    with one column per row of ``ds``; rows must be frames ``0..n-1``.
    """
    path = Path(path)
    validate_pose(ds, context=str(path))
    frames = frame_numbers(ds)
    if not np.array_equal(frames, np.arange(len(frames))):
        raise PoseFileError(path, "SLEAP analysis files need rows for frames 0..n-1 without gaps")
    if ds.sizes["space"] != 2:
        raise PoseFileError(path, "SLEAP files hold 2-D poses; this Dataset has 3-D positions")
    _warn_if_images(ds)
    pos = ds["position"].values  # (time, 2, kp, ind)
    conf = ds["confidence"].values
    tracks = np.transpose(pos, (3, 1, 2, 0))
    scores = np.transpose(conf, (2, 1, 0))
    occupancy = (~np.isnan(pos).all(axis=(1, 2))).astype(np.uint8)  # (time, ind)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        instance_scores = np.nanmean(scores, axis=1)
    names = [str(k).encode() for k in ds.coords["keypoint"].values]
    track_names = [str(n).encode() for n in ds.coords["individual"].values]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        fh.create_dataset("tracks", data=tracks, compression="gzip")
        fh.create_dataset("point_scores", data=scores, compression="gzip")
        fh.create_dataset("instance_scores", data=instance_scores)
        fh.create_dataset("tracking_scores", data=np.zeros_like(instance_scores))
        fh.create_dataset("track_occupancy", data=occupancy)
        fh.create_dataset("node_names", data=np.array(names, dtype="S"))
        fh.create_dataset("track_names", data=np.array(track_names, dtype="S"))
        fh.create_dataset("edge_names", data=np.zeros((0, 2), dtype="S1"))
        fh.create_dataset("edge_inds", data=np.zeros((0, 2), dtype=np.int64))
        fh.create_dataset("video_path", data=str(ds.attrs.get("video_path") or ""))
        fh.create_dataset("video_ind", data=0)
        fh.create_dataset("labels_path", data=str(ds.attrs.get("source_file") or ""))
        fh.create_dataset("provenance", data="{}")
    return path
