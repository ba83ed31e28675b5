"""Human scoring in, per-frame label tables out.

Every loader returns a *label table*: a ``pandas.DataFrame`` indexed by frame number
(``frame``, 0-based) with one 0/1 integer column per behaviour, and ``attrs["fps"]`` (the
frame rate the scoring was made at, or None when the file does not say) and
``attrs["source_file"]``. :func:`align_to_pose` then checks the table against a pose
Dataset: same frame rate and same number of frames, or an explicit conversion.

Formats
-------
- BORIS tabular exports (:func:`load_boris`): the *aggregated events* table (one row per
  state event with ``Start (s)``/``Stop (s)``) and the *raw events* table (``Time`` and
  ``Status`` START/STOP/POINT), csv / tsv / xlsx. BORIS writes the media ``FPS`` per row.
- BehaviorDEPOT hB files and BehaviorDEPOT output (:func:`load_behaviordepot`): MATLAB v5
  (scipy) or v7.3 (HDF5, h5py); ``hBehavior.<Behaviour>.Vector``.
- Plain per-frame csv (:func:`load_frame_csv`): one 0/1 column per behaviour, or a single
  ``label`` / ``behavior`` column with names.
- Bout tables (:func:`labels_from_bouts`): one row per bout with a behaviour name and start /
  stop in seconds or frames.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

logger = logging.getLogger(__name__)


class AnnotationError(ValueError):
    """Human scoring that cannot be read or aligned to the pose frames."""


def _table(data: dict[str, np.ndarray], *, fps: float | None, source: str | None) -> pd.DataFrame:
    n = len(next(iter(data.values()))) if data else 0
    df = pd.DataFrame({k: np.asarray(v).astype(np.int8) for k, v in data.items()},
                      index=pd.RangeIndex(n, name="frame"))
    df.attrs["fps"] = None if fps is None else float(fps)
    df.attrs["source_file"] = source
    return df


# ----------------------------------------------------------------------------- bouts


def labels_from_bouts(
    bouts: pd.DataFrame,
    *,
    n_frames: int,
    fps: float | None = None,
    behavior_col: str = "behavior",
    start_col: str = "start_s",
    stop_col: str = "stop_s",
    behaviors: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-frame labels from a bout table.

    Parameters
    ----------
    bouts
        One row per bout.
    n_frames
        Length of the output (the pose's number of frames).
    fps
        Frame rate for converting seconds to frames; required when the start/stop
        columns are in seconds (names ending in ``_s``).
    behavior_col, start_col, stop_col
        Columns. Stop is exclusive: a frame ``i`` (time ``i / fps``) is in a bout when
        ``start <= i / fps < stop`` (or ``start <= i < stop`` for frame columns).
    behaviors
        Output columns (default: the names found, sorted).

    Returns
    -------
    pandas.DataFrame
        Label table (see the module docstring).
    """
    for col in (behavior_col, start_col, stop_col):
        if col not in bouts.columns:
            raise AnnotationError(f"bout table has no column {col!r} (has {list(bouts.columns)})")
    in_seconds = start_col.endswith("_s") or "(s)" in start_col or start_col.lower() == "time"
    if in_seconds and fps is None:
        raise AnnotationError(f"bout times in {start_col!r} are seconds: pass fps to convert to frames")
    names = sorted(bouts[behavior_col].astype(str).unique()) if behaviors is None else list(behaviors)
    out = {name: np.zeros(int(n_frames), dtype=bool) for name in names}
    frame_time = np.arange(int(n_frames)) / fps if in_seconds else np.arange(int(n_frames))
    for row_i, (beh, start, stop) in enumerate(
        zip(bouts[behavior_col].astype(str), bouts[start_col], bouts[stop_col], strict=True)
    ):
        if not (np.isfinite(start) and np.isfinite(stop)) or stop < start:
            raise AnnotationError(f"bout {row_i} ({beh}): bad start/stop {start}, {stop}")
        if beh not in out:
            continue
        last = frame_time[-1] if n_frames else 0
        if start > last + (1 / fps if in_seconds else 1):
            raise AnnotationError(
                f"bout {row_i} ({beh}) starts at {start} beyond the {n_frames} pose frames "
                f"({'%.3f s' % (n_frames / fps) if in_seconds else 'frames'}): time base or "
                "frame rate mismatch?"
            )
        out[beh] |= (frame_time >= start) & (frame_time < stop)
    return _table(out, fps=fps, source=None)


# ----------------------------------------------------------------------------- BORIS


def _read_any_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xls"):
        return pd.read_excel(path)
    if suffix in (".tsv", ".txt"):
        return pd.read_csv(path, sep="\t")
    return pd.read_csv(path, sep=None, engine="python")


def load_boris(
    path: str | os.PathLike,
    *,
    n_frames: int | None = None,
    target_fps: float | None = None,
    subject: str | None = None,
    behaviors: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a BORIS tabular export (aggregated or raw events) into a per-frame label table.

    Parameters
    ----------
    path
        csv / tsv / xlsx export.
    n_frames
        Number of output frames (default: up to the media length or the last event).
    target_fps
        Build frames at this rate instead of the media FPS written by BORIS (e.g. the pose
        file's rate when the pose was made from a re-encoded video). Without it, the
        table's fps is BORIS's media FPS and :func:`align_to_pose` refuses a pose at a
        different rate.
    subject
        Keep only events of this subject (multi-subject observations).
    behaviors
        Output columns (default: every state behaviour found).

    Notes
    -----
    Point events (no duration) mark the single frame at their time. Times are seconds
    from the media start; frame ``i`` covers ``[i / fps, (i + 1) / fps)``.
    """
    path = Path(path)
    df = _read_any_table(path)
    df.columns = [str(c).strip() for c in df.columns]
    if "Behavior" not in df.columns:
        raise AnnotationError(f"{path}: not a BORIS export (no 'Behavior' column; has {list(df.columns)})")
    if subject is not None:
        if "Subject" not in df.columns:
            raise AnnotationError(f"{path}: no 'Subject' column to select {subject!r}")
        df = df[df["Subject"].astype(str) == subject]
    file_fps = None
    if "FPS" in df.columns:
        vals = pd.to_numeric(df["FPS"], errors="coerce").dropna().unique()
        if len(vals) > 1:
            raise AnnotationError(f"{path}: several media FPS values {sorted(vals)}; export one media")
        file_fps = float(vals[0]) if len(vals) else None
    fps = target_fps if target_fps is not None else file_fps
    if fps is None:
        raise AnnotationError(f"{path}: BORIS export has no FPS column: pass target_fps")
    if target_fps is not None and file_fps is not None and target_fps != file_fps:
        logger.info("%s: BORIS media at %.3f fps, building frames at %.3f fps", path, file_fps, target_fps)
    if "Start (s)" in df.columns:
        bouts = pd.DataFrame({
            "behavior": df["Behavior"].astype(str),
            "start_s": pd.to_numeric(df["Start (s)"], errors="coerce"),
            "stop_s": pd.to_numeric(df["Stop (s)"], errors="coerce"),
        })
        point = bouts["stop_s"].isna() | (bouts["stop_s"] == bouts["start_s"])
    elif {"Time", "Status"} <= set(df.columns):
        bouts = _pair_raw_events(df, path)
        point = bouts["stop_s"] == bouts["start_s"]
    else:
        raise AnnotationError(f"{path}: BORIS export without 'Start (s)' or 'Time'/'Status' columns")
    bouts.loc[point, "stop_s"] = bouts.loc[point, "start_s"] + 1.0 / fps
    if n_frames is None:
        len_col = next((c for c in ("Total length", "Media duration (s)") if c in df.columns), None)
        media_len = pd.to_numeric(df[len_col], errors="coerce") if len_col else pd.Series(dtype=float)
        length_s = media_len.max() if media_len.notna().any() else bouts["stop_s"].max()
        n_frames = int(np.ceil(length_s * fps))
    out = labels_from_bouts(bouts, n_frames=n_frames, fps=fps, behaviors=behaviors)
    out.attrs.update({"fps": float(fps), "source_file": str(path), "source_fps": file_fps})
    return out


def _pair_raw_events(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    rows = []
    open_: dict[tuple[str, str], float] = {}
    subj = df["Subject"].astype(str) if "Subject" in df.columns else pd.Series([""] * len(df))
    for i, (t, beh, status, s) in enumerate(zip(pd.to_numeric(df["Time"]), df["Behavior"].astype(str),
                                                df["Status"].astype(str).str.upper(), subj, strict=True)):
        key = (s, beh)
        if status == "START":
            if key in open_:
                raise AnnotationError(f"{path}: row {i}: {beh} started twice without a STOP")
            open_[key] = t
        elif status == "STOP":
            if key not in open_:
                raise AnnotationError(f"{path}: row {i}: STOP of {beh} without a START")
            rows.append((beh, open_.pop(key), t))
        else:
            rows.append((beh, t, t))
    if open_:
        raise AnnotationError(f"{path}: events never stopped: {sorted(b for _, b in open_)}")
    return pd.DataFrame(rows, columns=["behavior", "start_s", "stop_s"])


# ----------------------------------------------------------------------------- BehaviorDEPOT


def load_behaviordepot(
    path: str | os.PathLike, *, behaviors: Sequence[str] | None = None, fps: float | None = None
) -> pd.DataFrame:
    """Read a BehaviorDEPOT hB (human annotation) or output file: ``<root>.<Behaviour>.Vector``.

    Parameters
    ----------
    path
        ``.mat`` in MATLAB v5 (read with scipy) or v7.3 (HDF5, read with h5py). The root
        struct is ``hBehavior`` (human scoring) or ``Behavior`` (BehaviorDEPOT's output).
    behaviors
        Behaviours to read (default all with a ``Vector``).
    fps
        Frame rate of the scoring when the file does not store ``FrameRate``.

    Returns
    -------
    pandas.DataFrame
        Label table; ``attrs["fps"]`` from the file's ``FrameRate`` when present.
    """
    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"{path}: no such file")
    import h5py

    if h5py.is_hdf5(path):
        vectors, file_fps = _read_hb_h5(path)
    else:
        vectors, file_fps = _read_hb_v5(path)
    if not vectors:
        raise AnnotationError(f"{path}: no <Behaviour>.Vector found in hBehavior / Behavior")
    if file_fps is not None and fps is not None and abs(file_fps - fps) > 1e-6:
        raise AnnotationError(f"{path}: file says FrameRate {file_fps} but fps={fps} was passed")
    if behaviors is not None:
        missing = [b for b in behaviors if b not in vectors]
        if missing:
            raise AnnotationError(f"{path}: behaviour(s) {missing} not in the file (has {sorted(vectors)})")
        vectors = {b: vectors[b] for b in behaviors}
    lengths = {k: v.size for k, v in vectors.items()}
    if len(set(lengths.values())) > 1:
        raise AnnotationError(f"{path}: vectors of different lengths {lengths}")
    out = _table(vectors, fps=file_fps if file_fps is not None else fps, source=str(path))
    return out


def _read_hb_h5(path: Path) -> tuple[dict[str, np.ndarray], float | None]:
    import h5py

    vectors: dict[str, np.ndarray] = {}
    fps = None
    with h5py.File(path, "r") as f:
        root = next((f[r] for r in ("hBehavior", "Behavior") if r in f), None)
        if root is None:
            raise AnnotationError(f"{path}: no hBehavior or Behavior group (has {list(f)})")
        for name, item in root.items():
            if isinstance(item, h5py.Group) and "Vector" in item:
                vectors[name] = _binary(np.asarray(item["Vector"]).ravel(), path, name)
        if "FrameRate" in root:
            fps = float(np.asarray(root["FrameRate"]).ravel()[0])
    return vectors, fps


def _read_hb_v5(path: Path) -> tuple[dict[str, np.ndarray], float | None]:
    from scipy.io import loadmat

    try:
        m = loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as err:  # scipy raises several types for non-mat files
        raise AnnotationError(f"{path}: not a MATLAB file ({err})") from err
    root = next((m[r] for r in ("hBehavior", "Behavior") if r in m), None)
    if root is None:
        raise AnnotationError(f"{path}: no hBehavior or Behavior struct (has {[k for k in m if not k.startswith('__')]})")
    vectors = {}
    for name in root._fieldnames:
        item = getattr(root, name)
        if hasattr(item, "_fieldnames") and "Vector" in item._fieldnames:
            vectors[name] = _binary(np.asarray(item.Vector).ravel(), path, name)
    fps = None
    if "FrameRate" in root._fieldnames:
        fr = np.asarray(root.FrameRate, dtype=float).ravel()
        fps = float(fr[0]) if fr.size else None
    return vectors, fps


def _binary(v: np.ndarray, path: Path, name: str) -> np.ndarray:
    v = v.astype(float)
    bad = ~np.isin(v, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AnnotationError(f"{path}: {name}.Vector is not 0/1 (value {v[i]} at frame {i})")
    return v.astype(bool)


# ----------------------------------------------------------------------------- plain csv


def load_frame_csv(path: str | os.PathLike, *, fps: float | None = None) -> pd.DataFrame:
    """Read a per-frame label csv.

    Accepted layouts: one 0/1 column per behaviour (an optional ``frame`` column gives
    the frame numbers, ``time_s`` / ``time`` columns are ignored), or one ``label`` /
    ``behavior`` column of names per frame (one-hot encoded; empty / ``none`` = no label).
    """
    path = Path(path)
    df = pd.read_csv(path, skip_blank_lines=False)
    if "frame" in df.columns:
        frames = df["frame"].to_numpy()
        if not np.array_equal(frames, np.arange(frames.size) + frames[0]):
            raise AnnotationError(f"{path}: 'frame' column is not consecutive (first break at row "
                                  f"{int(np.flatnonzero(np.diff(frames) != 1)[0]) + 1})")
        df = df.drop(columns="frame")
    df = df.drop(columns=[c for c in ("time_s", "time") if c in df.columns])
    name_col = next((c for c in ("label", "behavior", "behaviour") if c in df.columns), None)
    if name_col is not None:
        names = df[name_col].fillna("").astype(str)
        cats = sorted(n for n in names.unique() if n and n.lower() != "none")
        data = {c: (names == c).to_numpy() for c in cats}
    else:
        data = {}
        for c in df.columns:
            vals = pd.to_numeric(df[c], errors="coerce").to_numpy()
            bad = ~np.isin(vals, (0, 1))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise AnnotationError(f"{path}: column {c!r} row {i}: {vals[i]:g} is not 0/1")
            data[c] = vals.astype(bool)
    if not data:
        raise AnnotationError(f"{path}: no behaviour columns")
    return _table(data, fps=fps, source=str(path))


# ----------------------------------------------------------------------------- alignment


def align_to_pose(
    labels: pd.DataFrame,
    ds: xr.Dataset,
    *,
    convert: bool = False,
    max_length_diff_frames: int = 0,
) -> pd.DataFrame:
    """Check (or convert) a label table against the frames of a pose Dataset.

    Parameters
    ----------
    labels
        Label table with ``attrs["fps"]`` (None: assumed to be at the pose's rate).
    ds
        Pose Dataset with ``attrs["fps"]``.
    convert
        When the frame rates differ: False refuses with an error; True resamples the labels
        onto the pose frames by time (nearest scored frame at or before each pose frame).
    max_length_diff_frames
        Tolerated difference in length at equal rates (the output is cut or padded with 0).

    Returns
    -------
    pandas.DataFrame
        Label table with one row per pose frame and ``attrs["fps"]`` = pose fps.

    Raises
    ------
    AnnotationError
        Different frame rates without ``convert``, or lengths that differ by more than
        ``max_length_diff_frames``.
    """
    pose_fps = ds.attrs.get("fps")
    n = int(ds.sizes["time"])
    lab_fps = labels.attrs.get("fps")
    src = labels.attrs.get("source_file") or "labels"
    if pose_fps is None:
        raise AnnotationError("the pose data has no fps: cannot check the labels' time base")
    if lab_fps is not None and abs(lab_fps - pose_fps) > 1e-6 * pose_fps:
        if not convert:
            raise AnnotationError(
                f"{src}: scored at {lab_fps:g} fps but the pose is at {pose_fps:g} fps; "
                f"convert explicitly (align_to_pose(..., convert=True) / target_fps={pose_fps:g})"
            )
        dur_l = len(labels) / lab_fps
        dur_p = n / pose_fps
        if abs(dur_l - dur_p) > 1.0 / min(lab_fps, pose_fps) + 1e-9 + max_length_diff_frames / pose_fps:
            raise AnnotationError(
                f"{src}: scoring lasts {dur_l:.3f} s but the pose {dur_p:.3f} s: not the same recording?"
            )
        idx = np.minimum(np.floor(np.arange(n) / pose_fps * lab_fps + 1e-9).astype(int), len(labels) - 1)
        out = labels.iloc[idx].reset_index(drop=True)
        out.index.name = "frame"
    else:
        diff = len(labels) - n
        if abs(diff) > max_length_diff_frames:
            raise AnnotationError(
                f"{src}: {len(labels)} scored frames but the pose has {n} frames "
                f"(difference {diff}); trim one of them or raise max_length_diff_frames"
            )
        out = labels.reindex(pd.RangeIndex(n, name="frame"), fill_value=0)
    out.attrs = dict(labels.attrs)
    out.attrs["fps"] = float(pose_fps)
    return out


def load_labels(path: str | os.PathLike, *, fps: float | None = None) -> pd.DataFrame:
    """Read any supported scoring file, choosing the reader by suffix and content.

    ``.mat``: BehaviorDEPOT; ``.csv``/``.tsv``/``.xlsx`` with a ``Behavior`` column: BORIS;
    other ``.csv``: per-frame labels.
    """
    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"{path}: no such file")
    if path.suffix.lower() == ".mat":
        return load_behaviordepot(path, fps=fps)
    if path.suffix.lower() in (".xlsx", ".xls", ".tsv"):
        return load_boris(path, target_fps=fps)
    head = pd.read_csv(path, nrows=2, sep=None, engine="python")
    if "Behavior" in [str(c).strip() for c in head.columns]:
        return load_boris(path, target_fps=fps)
    return load_frame_csv(path, fps=fps)


def select_behavior(labels: pd.DataFrame, behavior: str | None = None) -> pd.Series:
    """One behaviour column of a label table (case-insensitive; the only one when None)."""
    cols = list(labels.columns)
    if behavior is None:
        if len(cols) != 1:
            raise AnnotationError(f"several behaviours {cols}: choose one")
        return labels[cols[0]]
    match = [c for c in cols if str(c).lower() == behavior.lower()]
    if not match:
        raise AnnotationError(f"behaviour {behavior!r} not among {cols}")
    return labels[match[0]]
