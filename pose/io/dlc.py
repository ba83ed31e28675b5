"""DeepLabCut pose files: predictions and labelled data, ``.h5`` and ``.csv``.

Format notes
------------
DeepLabCut stores a pandas DataFrame with MultiIndex columns:

- single-animal: 3 levels ``scorer / bodyparts / coords``;
- multi-animal: 4 levels ``scorer / individuals / bodyparts / coords``. Body parts
  shared by no animal ("unique body parts") sit under the individual ``single``.

``coords`` is ``x, y, likelihood`` for predictions and ``x, y`` for labelled data
(``CollectedData_<scorer>.h5/.csv``). ``h5`` files are pandas HDF stores, normally with
the key ``df_with_missing`` in "table" format; they are read with h5py by
:mod:`pose.io.pandas_hdf`, never through PyTables (which unpickles node attributes, so a
file could run code when opened). ``.csv`` files have one header row per column level,
the first column being the row index.

The row index is the frame number for predictions. For labelled data it is the image
path, either one string (``labeled-data/<video>/img0001.png``, DeepLabCut < 2.2) or a
3-level MultiIndex (``labeled-data``, ``<video>``, ``img0001.png``, DeepLabCut >= 2.2).

Mapping to the pose Dataset (:mod:`pose.dataset`)
-------------------------------------------------
- ``likelihood`` -> ``confidence``; absent (labels) -> NaN.
- A single-animal file has one individual, ``individual_0`` (as in ``movement``).
- A non-numeric row index (labelled data) becomes a coordinate ``image`` on the
  ``time`` dimension (the "/"-joined relative path) and ``time`` counts rows.
- attrs: ``scorer`` (the first column's scorer) and the layout details needed to write
  the file back the way it came in: ``dlc_multi_animal``, ``dlc_index_layout``
  (``"frame"``, ``"path"`` or ``"multiindex"``), ``dlc_h5_key``, ``dlc_h5_format``,
  ``dlc_unique_bodyparts`` and, only when a file has different scorer names per
  column (a csv once re-saved by pandas gets ``scorer.1``, ``scorer.2``...),
  ``dlc_scorer_columns``.

Writing: a Dataset with one individual is written in the single-animal layout (which
has no place for the individual's name) unless ``attrs["dlc_multi_animal"]`` is true;
several individuals give the multi-animal layout. The "labelled" layout (no ``likelihood``) is used when the Dataset has an
``image`` coordinate and no finite confidence; otherwise ``likelihood`` is written.
Files written here read back with ``pandas.read_hdf(path)`` (key ``df_with_missing``
unless the Dataset came from a file with another key) and
``pandas.read_csv(path, header=[0, 1, 2], index_col=0)`` (``header=[0, 1, 2, 3]`` for
multi-animal) exactly as DeepLabCut's own.
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pose.atomic import atomic_path
from pose.dataset import PoseValidationError, from_numpy, validate_pose
from pose.io.errors import PoseFileError
from pose.io.pandas_hdf import read_pandas_hdf

log = logging.getLogger(__name__)

DLC_H5_KEY = "df_with_missing"
LEVELS_SINGLE = ["scorer", "bodyparts", "coords"]
LEVELS_MULTI = ["scorer", "individuals", "bodyparts", "coords"]
SINGLE_INDIVIDUAL = "individual_0"
UNIQUE_INDIVIDUAL = "single"


def read_dlc(path: str | os.PathLike, *, fps: float | None = None) -> xr.Dataset:
    """Read a DeepLabCut ``.h5`` or ``.csv`` file (predictions or labelled data).

    Parameters
    ----------
    path
        The file. The format follows the suffix (``.h5``/``.hdf5`` or ``.csv``).
    fps
        Frame rate; when given, ``time`` is in seconds.

    Returns
    -------
    xarray.Dataset
        Pose Dataset: ``position`` (time, space, keypoint, individual) in px and
        ``confidence`` (time, keypoint, individual) from ``likelihood`` (NaN for labels).

    Raises
    ------
    PoseFileError
        If the file is missing, is not a DeepLabCut table, or a body part lacks its
        ``x`` or ``y`` column; the message names the file and the row / column.

    Warns
    -----
    UserWarning
        When a body part's columns hold only NaN.
    """
    path = Path(path)
    if not path.is_file():
        raise PoseFileError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df, layout = _read_csv_frame(path)
        h5_key, h5_format = None, None
    elif suffix in (".h5", ".hdf5"):
        df, h5_key, h5_format = _read_h5_frame(path)
        layout = None
    else:
        raise PoseFileError(path, f"not a DeepLabCut file suffix: {path.suffix!r} (use .h5 or .csv)")
    return dataframe_to_dataset(
        df, fps=fps, source_file=str(path), h5_key=h5_key, h5_format=h5_format, layout=layout
    )


def _read_csv_frame(path: Path) -> tuple[pd.DataFrame, str]:
    rows: list[list[str]] = []
    width_error = None
    with open(path, newline="", encoding="utf-8-sig") as fh:
        try:
            for line_no, row in enumerate(csv.reader(fh), start=1):
                if len(rows) < 6:
                    rows.append(row)
                elif row and len(row) != len(rows[0]) and width_error is None:
                    width_error = (line_no, len(row))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise PoseFileError(path, f"not a text csv file: {exc}") from exc
    if not rows or not rows[0] or rows[0][0].strip() != "scorer":
        first = rows[0][:3] if rows else []
        raise PoseFileError(
            path,
            "not a DeepLabCut pose csv: row 1 must start with 'scorer' "
            f"(found {first}); expected header rows scorer/[individuals/]bodyparts/coords",
        )
    # Labelled data with a MultiIndex row index: 'scorer,,,name,...'
    n_index = 1
    while n_index < len(rows[0]) and rows[0][n_index] == "":
        n_index += 1
    n_header = next((i for i, r in enumerate(rows) if _is_data_row(r, n_index)), len(rows))
    names = [r[0].strip() for r in rows[:n_header]]
    if names not in (LEVELS_SINGLE, LEVELS_MULTI):
        raise PoseFileError(
            path,
            f"wrong DeepLabCut header: first column of the header rows reads {names}, "
            f"expected {LEVELS_SINGLE} or {LEVELS_MULTI}",
        )
    for i, r in enumerate(rows):
        if r and len(r) != len(rows[0]) and width_error is None:
            width_error = (i + 1, len(r))
    if width_error is not None:
        line_no, width = width_error
        raise PoseFileError(
            path,
            f"line {line_no} has {width} fields, the header has {len(rows[0])} "
            "(truncated or malformed row)",
        )
    try:
        df = pd.read_csv(path, header=list(range(n_header)), index_col=list(range(n_index)))
    except (ValueError, pd.errors.ParserError) as exc:
        raise PoseFileError(path, f"cannot parse as a DeepLabCut csv: {exc}") from exc
    if n_index > 1:
        layout = "multiindex"
        df.index = df.index.set_names([None] * n_index)
    else:
        layout = "frame" if pd.api.types.is_integer_dtype(df.index.dtype) else "path"
        df.index.name = None
    return df, layout


def _is_data_row(row: list[str], n_index: int) -> bool:
    """A csv row is data when its first cell looks like a row index (a frame number or an
    image path) or every cell after the index column(s) is a number or empty."""
    first = row[0].strip() if row else ""
    if first.isdigit() or first == "labeled-data" or "/" in first or "\\" in first:
        return True
    if first.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")):
        return True
    for cell in row[n_index:]:
        if cell.strip() == "":
            continue
        try:
            float(cell)
        except ValueError:
            return False
    return True


def _read_h5_frame(path: Path) -> tuple[pd.DataFrame, str, str]:
    """The pandas DataFrame of a DeepLabCut h5, read with h5py only (nothing unpickled)."""
    df, key, h5_format = read_pandas_hdf(path)
    if not isinstance(df, pd.DataFrame):
        raise PoseFileError(path, f"key {key!r} holds a {type(df).__name__}, not a DataFrame")
    return df, key, h5_format


def dataframe_to_dataset(
    df: pd.DataFrame,
    *,
    fps: float | None = None,
    source_file: str | None = None,
    h5_key: str | None = None,
    h5_format: str | None = None,
    layout: str | None = None,
) -> xr.Dataset:
    """Convert a DeepLabCut DataFrame (MultiIndex columns) to a pose Dataset.

    Parameters
    ----------
    df
        Columns ``scorer/bodyparts/coords`` or ``scorer/individuals/bodyparts/coords``.
    fps
        Frame rate, or None.
    source_file
        Named in error messages and stored in ``attrs["source_file"]``.
    h5_key, h5_format, layout
        Layout details to remember for writing back (see the module notes).

    Returns
    -------
    xarray.Dataset
    """
    where = source_file or "<DataFrame>"
    if not isinstance(df.columns, pd.MultiIndex):
        raise PoseFileError(where, "columns are not a MultiIndex: not a DeepLabCut pose table")
    names = list(df.columns.names)
    if names not in (LEVELS_SINGLE, LEVELS_MULTI):
        raise PoseFileError(
            where, f"wrong DeepLabCut column levels {names}; expected {LEVELS_SINGLE} or {LEVELS_MULTI}"
        )
    multi = names == LEVELS_MULTI
    cols = df.columns.to_frame(index=False)
    if not multi:
        cols.insert(1, "individuals", SINGLE_INDIVIDUAL)
    cols = cols.astype(str)
    bad_coords = sorted(set(cols["coords"]) - {"x", "y", "z", "likelihood"})
    if bad_coords:
        raise PoseFileError(
            where, f"unknown coords {bad_coords} in the header; expected x, y[, z][, likelihood]"
        )
    individuals = list(dict.fromkeys(cols["individuals"]))
    keypoints = list(dict.fromkeys(cols["bodyparts"]))
    has_z = (cols["coords"] == "z").any()
    space = ["x", "y", "z"] if has_z else ["x", "y"]
    values = _numeric_values(df, where)
    n = len(df)
    position = np.full((n, len(space), len(keypoints), len(individuals)), np.nan)
    confidence = np.full((n, len(keypoints), len(individuals)), np.nan)
    seen: dict[tuple[str, str], set[str]] = {}
    for j, (ind, bp, coord) in enumerate(zip(cols["individuals"], cols["bodyparts"], cols["coords"], strict=True)):
        k, i = keypoints.index(bp), individuals.index(ind)
        seen.setdefault((ind, bp), set()).add(coord)
        if coord == "likelihood":
            confidence[:, k, i] = values[:, j]
        else:
            position[:, space.index(coord), k, i] = values[:, j]
    for (ind, bp), coords in seen.items():
        missing = [c for c in space if c not in coords]
        if missing:
            who = f"individual {ind!r}, " if multi else ""
            raise PoseFileError(where, f"{who}body part {bp!r} has no {'/'.join(missing)} column")
    all_nan = [
        (ind, bp)
        for (ind, bp) in seen
        if np.isnan(position[:, :, keypoints.index(bp), individuals.index(ind)]).all()
    ]
    if all_nan and n:
        shown = [bp if not multi else f"{ind}/{bp}" for ind, bp in all_nan]
        warnings.warn(f"{where}: body part(s) {shown} hold only NaN", UserWarning, stacklevel=3)
    # Image paths (labelled data) or frame numbers as the row index.
    image = None
    frame_index = None
    if isinstance(df.index, pd.MultiIndex):
        image = ["/".join(str(p) for p in tup) for tup in df.index]
        layout = layout or "multiindex"
    elif pd.api.types.is_integer_dtype(df.index.dtype):
        frame_index = np.asarray(df.index, dtype=int)
        layout = layout or "frame"
        if len(np.unique(frame_index)) != len(frame_index):
            raise PoseFileError(where, "row index (frame numbers) has duplicates")
    else:
        image = [str(p) for p in df.index]
        layout = layout or "path"
    finite_conf = confidence[np.isfinite(confidence)]
    if finite_conf.size and (finite_conf.min() < 0 or finite_conf.max() > 1):
        raise PoseFileError(
            where,
            f"likelihood outside [0, 1] (range {finite_conf.min():.3g}..{finite_conf.max():.3g})",
        )
    try:
        ds = from_numpy(
            position,
            confidence,
            keypoints=keypoints,
            individuals=individuals,
            fps=fps,
            source_software="DeepLabCut",
            source_file=source_file,
            frame_index=frame_index,
        )
    except PoseValidationError as exc:
        raise PoseFileError(where, str(exc)) from exc
    if image is not None:
        ds = ds.assign_coords(image=("time", np.array(image, dtype=object)))
    scorers = list(cols["scorer"])
    ds.attrs["scorer"] = scorers[0] if scorers else None
    ds.attrs["dlc_multi_animal"] = multi
    ds.attrs["dlc_index_layout"] = layout
    ds.attrs["dlc_h5_key"] = h5_key
    ds.attrs["dlc_h5_format"] = h5_format
    unique = [bp for bp in keypoints if (UNIQUE_INDIVIDUAL, bp) in seen]
    ds.attrs["dlc_unique_bodyparts"] = unique if multi and UNIQUE_INDIVIDUAL in individuals else None
    ds.attrs["dlc_scorer_columns"] = scorers if len(set(scorers)) > 1 else None
    return ds


def _numeric_values(df: pd.DataFrame, where: str) -> np.ndarray:
    try:
        return df.to_numpy(dtype=float)
    except (ValueError, TypeError):
        for j, col in enumerate(df.columns):
            conv = pd.to_numeric(df.iloc[:, j], errors="coerce")
            bad = conv.isna() & df.iloc[:, j].notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise PoseFileError(
                    where,
                    f"non-numeric value {df.iloc[row, j]!r} in data row {row + 1} "
                    f"(index {df.index[row]!r}), column {tuple(col)}",
                ) from None
        raise


def dataset_to_dataframe(ds: xr.Dataset, *, scorer: str | None = None) -> pd.DataFrame:
    """Lay out a pose Dataset as a DeepLabCut DataFrame.

    Parameters
    ----------
    ds
        Pose Dataset (see :mod:`pose.dataset`).
    scorer
        The ``scorer`` column level; default ``attrs["scorer"]`` or ``"ethopose"``.

    Returns
    -------
    pandas.DataFrame
        float64 values, MultiIndex columns ``scorer/bodyparts/coords`` (one individual
        and not from a multi-animal file) or ``scorer/individuals/bodyparts/coords``;
        row index: frame numbers, or image paths when the Dataset has ``image``.
    """
    validate_pose(ds, context=str(ds.attrs.get("source_file") or "dataset"))
    scorer = scorer or ds.attrs.get("scorer") or "ethopose"
    keypoints = [str(k) for k in ds.coords["keypoint"].values]
    individuals = [str(i) for i in ds.coords["individual"].values]
    space = [str(s) for s in ds.coords["space"].values]
    multi = len(individuals) > 1 or bool(ds.attrs.get("dlc_multi_animal"))
    has_image = "image" in ds.coords
    conf = ds["confidence"].values
    with_likelihood = not (has_image and not np.isfinite(conf).any())
    coords = space + (["likelihood"] if with_likelihood else [])
    unique = ds.attrs.get("dlc_unique_bodyparts") or []
    pos = ds["position"].values
    tuples, columns = [], []
    for i, ind in enumerate(individuals):
        for k, kp in enumerate(keypoints):
            if multi and unique and (kp in unique) != (ind == UNIQUE_INDIVIDUAL):
                continue
            for c in coords:
                tuples.append((ind, kp, c))
                columns.append(conf[:, k, i] if c == "likelihood" else pos[:, space.index(c), k, i])
    data = np.stack(columns, axis=1) if columns else np.empty((ds.sizes["time"], 0))
    scorers = ds.attrs.get("dlc_scorer_columns")
    if not scorers or len(scorers) != len(tuples):
        scorers = [scorer] * len(tuples)
    if multi:
        col_index = pd.MultiIndex.from_tuples(
            [(s, *t) for s, t in zip(scorers, tuples, strict=True)], names=LEVELS_MULTI
        )
    else:
        col_index = pd.MultiIndex.from_tuples(
            [(s, t[1], t[2]) for s, t in zip(scorers, tuples, strict=True)], names=LEVELS_SINGLE
        )
    if has_image:
        paths = [str(p) for p in ds.coords["image"].values]
        layout = ds.attrs.get("dlc_index_layout") or "multiindex"
        if layout == "multiindex":
            parts = [p.split("/") for p in paths]
            if len({len(p) for p in parts}) != 1:
                raise PoseFileError(
                    ds.attrs.get("source_file") or "dataset",
                    "image paths have different depths; cannot write a MultiIndex row index",
                )
            index = pd.MultiIndex.from_tuples([tuple(p) for p in parts])
        else:
            index = pd.Index(paths)
    else:
        from pose.dataset import frame_numbers

        index = pd.Index(frame_numbers(ds))
    return pd.DataFrame(data.astype(np.float64), index=index, columns=col_index)


def write_dlc(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a pose Dataset as a DeepLabCut ``.h5`` or ``.csv`` file.

    Parameters
    ----------
    ds
        Pose Dataset.
    path
        Target; ``.h5``/``.hdf5`` or ``.csv``. Written atomically.

    Returns
    -------
    pathlib.Path
        The written path.

    Notes
    -----
    h5 files use ``attrs["dlc_h5_key"]`` (default ``df_with_missing``) and
    ``attrs["dlc_h5_format"]`` (default "table", as DeepLabCut; "fixed" is used for a
    MultiIndex row index, which pandas cannot store in table format).
    """
    path = Path(path)
    df = dataset_to_dataframe(ds)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            df.to_csv(tmp)
        elif suffix in (".h5", ".hdf5"):
            key = ds.attrs.get("dlc_h5_key") or DLC_H5_KEY
            fmt = ds.attrs.get("dlc_h5_format") or "table"
            if isinstance(df.index, pd.MultiIndex):
                fmt = "fixed"
            df.to_hdf(tmp, key=key, format=fmt, mode="w")
        else:
            raise PoseFileError(path, f"not a DeepLabCut file suffix: {path.suffix!r} (use .h5 or .csv)")
    log.debug("wrote DeepLabCut %s (%d rows)", path, len(df))
    return path
