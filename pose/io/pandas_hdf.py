"""Read a pandas HDF5 store (as DeepLabCut writes it) with h5py, never unpickling.

``pandas.read_hdf`` goes through PyTables, which unpickles node attributes: a pose file
from another lab could run code when opened. This reader walks the same layout with
h5py and takes only plain arrays and plain-data metadata (see
:mod:`pose.io.pickle_data`), refusing any attribute that holds a pickled object with
code in it.

Layouts read (pandas >= 0.15 writes both):

- "table" (``pandas_type = frame_table``): a compound dataset ``<key>/table`` with an
  ``index`` field and ``values_block_<i>`` fields (one float block per dtype); the
  column labels of each block are the pickled list ``values_block_<i>_kind``, their
  order the pickled ``non_index_axes``, the level names the pickled ``info``.
- "fixed" (``pandas_type = frame``): ``axis0`` (columns) and ``axis1`` (rows) as plain
  arrays, MultiIndex levels as ``axis<k>_level<i>`` + codes ``axis<k>_label<i>``,
  the values as ``block<i>_values`` with their columns in ``block<i>_items``.

Everything else (Series, panels, object blocks, data columns, datetime indexes) is
refused with :class:`~pose.io.errors.PoseFileError`; DeepLabCut files never use them.
Array sizes are checked against the file size before anything is read, so a damaged
shape cannot ask for GiBs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from pose.io.errors import PoseFileError
from pose.io.h5check import HDF5_SIGNATURE, check_hdf5, dataset_byte_limit, dataset_nbytes
from pose.io.pickle_data import PickleCodeError, UnsafePickleError, parse_pickle_data

MAX_GROUPS = 1000  # a pose file has a handful
MAX_DEPTH = 4
_MISSING = object()


class _Reader:
    """State of one read: the file, its size, and the field being read (for errors)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.field = "file"

    def fail(self, message: str) -> PoseFileError:
        return PoseFileError(self.path, f"{self.field}: {message}")

    # -- attributes -------------------------------------------------------------------
    def attr(self, node: h5py.HLObject, name: str, default: Any = _MISSING) -> Any:
        """An attribute as PyTables would return it, pickles parsed as data only."""
        self.field = f"{node.name} attribute {name!r}"
        if name not in node.attrs:
            if default is _MISSING:
                raise self.fail("missing")
            return default
        raw = node.attrs[name]
        return self.plain(raw)

    def plain(self, raw: Any) -> Any:
        if isinstance(raw, (bytes, np.bytes_)):
            raw = bytes(raw)
            if raw.endswith(b"."):
                try:
                    return parse_pickle_data(raw)
                except PickleCodeError as exc:
                    raise self.fail(f"holds a pickled object with code in it ({exc})") from None
                except UnsafePickleError:
                    pass  # a plain string that happens to end with "."
            return raw.decode("utf-8", errors="replace")
        if isinstance(raw, str):  # a variable-length string attribute: never a pickle
            return raw
        if isinstance(raw, np.generic):
            return raw.item()
        if isinstance(raw, h5py.Empty):
            return None
        if isinstance(raw, np.ndarray) and raw.size <= 1024:
            return raw.tolist()
        raise self.fail(f"unexpected value of type {type(raw).__name__}")

    def scan_attrs(self, node: h5py.HLObject) -> None:
        """Refuse a node whose attributes hide a code-carrying pickle (none is run)."""
        for name in list(node.attrs.keys())[:256]:
            self.field = f"{node.name} attribute {name!r}"
            try:
                raw = node.attrs[name]
            except (OSError, TypeError, ValueError, KeyError) as exc:
                raise self.fail(f"unreadable ({exc})") from None
            if isinstance(raw, (bytes, np.bytes_)) and bytes(raw).endswith(b"."):
                self.plain(raw)

    # -- arrays -----------------------------------------------------------------------
    def dataset(self, group: h5py.Group, name: str) -> h5py.Dataset:
        self.field = f"{group.name}/{name}"
        node = group.get(name)
        if not isinstance(node, h5py.Dataset):
            raise self.fail("missing or not a dataset")
        return node

    def read(self, node: h5py.Dataset) -> np.ndarray:
        """Read a whole dataset after checking its size against the file's."""
        self.field = node.name
        if node.dtype.kind not in "biufS" and not (node.dtype.kind == "V" and node.dtype.names):
            raise self.fail(f"unsupported data type {node.dtype} (not a pose table array)")
        if node.dtype.names and any(
            node.dtype[n].base.kind not in "biufS" for n in node.dtype.names
        ):
            raise self.fail(f"unsupported compound data type {node.dtype}")
        n_bytes, limit = dataset_nbytes(node), dataset_byte_limit(node, self.size)
        if n_bytes > limit:
            raise self.fail(
                f"shape {node.shape} would need {n_bytes / 2**20:.1f} MiB but the file "
                f"holds {self.size / 2**20:.2f} MiB (damaged size field)"
            )
        return node[()]

    def strings(self, values: np.ndarray, encoding: str) -> np.ndarray:
        out = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            out[i] = v.decode(encoding, errors="strict") if isinstance(v, bytes) else str(v)
        return out

    def index_values(self, values: np.ndarray, kind: Any, encoding: str) -> np.ndarray:
        if values.ndim != 1:
            raise self.fail(f"index array has shape {values.shape}, expected 1-D")
        if kind in ("string", "unicode") and values.dtype.kind == "S":
            return self.strings(values, encoding)
        if kind == "integer" and values.dtype.kind in "iu":
            return values.astype(np.int64)
        if kind == "float" and values.dtype.kind == "f":
            return values.astype(np.float64)
        raise self.fail(f"index kind {kind!r} with data type {values.dtype} is not supported")


def read_pandas_hdf(path: str | os.PathLike) -> tuple[pd.DataFrame, str, str]:
    """Read the DataFrame of a pandas HDF5 store without PyTables and without unpickling.

    Parameters
    ----------
    path
        An HDF5 file written by ``DataFrame.to_hdf`` (DeepLabCut's ``.h5``).

    Returns
    -------
    tuple
        ``(df, key, h5_format)``: the DataFrame, its key (``df_with_missing`` when the
        file has several) and ``"table"`` or ``"fixed"``.

    Raises
    ------
    PoseFileError
        Not HDF5, no or several pandas objects, a layout that is not a plain numeric
        DataFrame, damaged arrays or attributes (named), or an attribute holding a
        pickle with code in it.
    """
    path = Path(path)
    reader = _Reader(path)
    with _open(reader) as fh:
        keys = _walk_keys(reader, fh)
        if not keys:
            raise PoseFileError(path, "HDF5 file holds no pandas table (is it a SLEAP file?)")
        key = "df_with_missing" if "df_with_missing" in keys else keys[0]
        if len(keys) > 1 and "df_with_missing" not in keys:
            raise PoseFileError(path, f"several pandas tables {keys} and none named 'df_with_missing'")
        try:
            group = fh[key]
            reader.scan_attrs(group)
            kind = reader.attr(group, "pandas_type")
            if kind == "frame_table":
                return _read_table(reader, group), key, "table"
            if kind == "frame":
                return _read_fixed(reader, group), key, "fixed"
            reader.field = f"/{key}"
            raise reader.fail(f"holds a pandas {kind!r}, not a DataFrame")
        except PoseFileError:
            raise
        except Exception as exc:  # h5py / numpy / pandas errors on damaged content
            raise reader.fail(f"damaged or unsupported ({type(exc).__name__}: {exc})") from None


class _open:
    """Open ``reader.path`` with h5py, turning every failure into a PoseFileError."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader
        self.fh: h5py.File | None = None

    def __enter__(self) -> h5py.File:
        path = self.reader.path
        with open(path, "rb") as raw:
            head = raw.read(8)
        if head != HDF5_SIGNATURE:
            raise PoseFileError(path, "not a DeepLabCut (pandas HDF) file: no HDF5 signature at byte 0")
        check_hdf5(path)  # in a child process: damaged files can hang the HDF5 library
        try:
            self.fh = h5py.File(path, "r")
        except Exception as exc:
            raise PoseFileError(path, f"not a DeepLabCut (pandas HDF) file: unreadable HDF5 ({exc})") from None
        return self.fh

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.fh is not None:
            try:
                self.fh.close()
            except Exception:  # closing a damaged file must not hide the first error
                if exc_type is None:
                    raise PoseFileError(self.reader.path, "damaged HDF5 file (close failed)") from None
        if exc_type is not None and not issubclass(exc_type, PoseFileError) and issubclass(exc_type, Exception):
            raise self.reader.fail(f"damaged or unsupported ({exc_type.__name__}: {exc})") from None


def _walk_keys(reader: _Reader, fh: h5py.File) -> list[str]:
    """Groups that carry a ``pandas_type`` attribute, depth-first in name order."""
    keys: list[str] = []
    todo: list[tuple[h5py.Group, int]] = [(fh, 0)]
    seen = 0
    while todo:
        group, depth = todo.pop()
        reader.field = group.name
        seen += 1
        if seen > MAX_GROUPS:
            raise reader.fail(f"more than {MAX_GROUPS} groups: not a pose file")
        if group is not fh and "pandas_type" in group.attrs:
            keys.append(group.name.lstrip("/"))
            continue
        if depth >= MAX_DEPTH:
            continue
        children = []
        for name in sorted(group.keys()):
            child = group.get(name, getlink=False)
            if isinstance(child, h5py.Group):
                children.append((child, depth + 1))
        todo.extend(reversed(children))
    return sorted(keys)


def _read_table(reader: _Reader, group: h5py.Group) -> pd.DataFrame:
    """pandas "table" format: compound rows of index + value blocks."""
    table_type = reader.attr(group, "table_type")
    if table_type != "appendable_frame":
        raise reader.fail(f"table type {table_type!r} is not supported (expected 'appendable_frame')")
    encoding = str(reader.attr(group, "encoding", "UTF-8") or "UTF-8")
    data_columns = reader.attr(group, "data_columns", [])
    if data_columns:
        raise reader.fail(f"data columns {data_columns!r} are not supported in a pose table")
    axes = reader.attr(group, "non_index_axes")
    if not (isinstance(axes, list) and len(axes) == 1 and isinstance(axes[0], tuple) and len(axes[0]) == 2):
        raise reader.fail("expected [(1, [column labels])]")
    axis, labels = axes[0]
    if axis != 1 or not isinstance(labels, list):
        raise reader.fail("expected [(1, [column labels])]")
    info = reader.attr(group, "info", {})
    names = _level_names(reader, info, labels)
    blocks = reader.attr(group, "values_cols")
    if not (isinstance(blocks, list) and all(isinstance(b, str) for b in blocks)):
        raise reader.fail("expected a list of block names")
    node = reader.dataset(group, "table")
    reader.scan_attrs(node)
    fields = node.dtype.names or ()
    if "index" not in fields or any(b not in fields for b in blocks):
        raise reader.fail(f"table fields {list(fields)} do not hold 'index' and {blocks}")
    if set(fields) - {"index", *blocks}:
        raise reader.fail(f"extra table fields {sorted(set(fields) - {'index', *blocks})} (data columns)")
    index_kind = reader.attr(node, "index_kind")
    rows = reader.read(node)
    reader.field = f"{node.name} field 'index'"
    index = reader.index_values(rows["index"], index_kind, encoding)
    columns: dict[Any, np.ndarray] = {}
    for block in blocks:
        block_labels = reader.attr(node, f"{block}_kind")
        reader.field = f"{node.name} field {block!r}"
        values = rows[block]
        if values.ndim == 1:
            values = values[:, None]
        if not isinstance(block_labels, list) or values.ndim != 2 or values.shape[1] != len(block_labels):
            raise reader.fail(f"values of shape {values.shape} for {_len(block_labels)} column labels")
        for j, label in enumerate(block_labels):
            columns[_hashable(reader, label)] = values[:, j]
    order = [_hashable(reader, lab) for lab in labels]
    if sorted(map(repr, order)) != sorted(map(repr, columns)) or len(set(order)) != len(order):
        reader.field = f"{group.name} attribute 'non_index_axes'"
        raise reader.fail("column labels do not match the labels of the value blocks")
    data = np.stack([columns[c] for c in order], axis=1) if order else np.empty((len(index), 0))
    return pd.DataFrame(data, index=pd.Index(index), columns=_columns(reader, order, names))


def _level_names(reader: _Reader, info: Any, labels: list[Any]) -> list[Any]:
    entry = info.get(1) if isinstance(info, dict) else None
    names = entry.get("names") if isinstance(entry, dict) else None
    n_levels = len(labels[0]) if labels and isinstance(labels[0], tuple) else 1
    if names is None:
        return [None] * n_levels
    if not isinstance(names, list) or len(names) != n_levels:
        raise reader.fail(f"column level names {names!r} for {n_levels} levels")
    return names


def _hashable(reader: _Reader, label: Any) -> Any:
    if isinstance(label, (str, int, float)) or label is None:
        return label
    if isinstance(label, tuple) and all(isinstance(p, (str, int, float)) or p is None for p in label):
        return label
    raise reader.fail(f"column label {label!r} is not a string or tuple of strings")


def _len(obj: Any) -> int | str:
    return len(obj) if isinstance(obj, list) else "?"


def _columns(reader: _Reader, order: list[Any], names: list[Any]) -> pd.Index:
    if order and isinstance(order[0], tuple):
        if any(not isinstance(c, tuple) or len(c) != len(order[0]) for c in order):
            raise reader.fail("column labels of different lengths")
        return pd.MultiIndex.from_tuples(order, names=names)
    return pd.Index(order, name=names[0] if names else None)


def _read_fixed(reader: _Reader, group: h5py.Group) -> pd.DataFrame:
    """pandas "fixed" format: axis0 = columns, axis1 = rows, block<i>_values."""
    encoding = str(reader.attr(group, "encoding", "UTF-8") or "UTF-8")
    ndim = reader.attr(group, "ndim")
    n_blocks = reader.attr(group, "nblocks")
    if ndim != 2 or not isinstance(n_blocks, int) or not 1 <= n_blocks <= 64:
        raise reader.fail(f"ndim {ndim!r}, nblocks {n_blocks!r}: not a DataFrame layout")
    columns = _fixed_index(reader, group, "axis0", encoding)
    rows = _fixed_index(reader, group, "axis1", encoding)
    data = np.full((len(rows), len(columns)), np.nan)
    filled = np.zeros(len(columns), dtype=bool)
    for i in range(n_blocks):
        items = _fixed_index(reader, group, f"block{i}_items", encoding)
        node = reader.dataset(group, f"block{i}_values")
        reader.scan_attrs(node)
        if node.dtype.kind not in "biuf":
            raise reader.fail(f"block of data type {node.dtype} is not numeric (object blocks are refused)")
        values = _fixed_array(reader, node)
        transposed = bool(reader.attr(node, "transposed", False))
        values = values if transposed else values.T
        if values.shape != (len(rows), len(items)):
            raise reader.fail(f"shape {values.shape}, expected (rows={len(rows)}, columns={len(items)})")
        where = columns.get_indexer(items)
        if (where < 0).any() or filled[where].any():
            raise reader.fail("block columns do not match the frame's columns")
        data[:, where] = values
        filled[where] = True
    if not filled.all():
        raise reader.fail(f"{int((~filled).sum())} columns have no values block")
    return pd.DataFrame(data, index=rows, columns=columns)


def _fixed_array(reader: _Reader, node: h5py.Dataset) -> np.ndarray:
    shape = reader.attr(node, "shape", None)
    if shape is not None:  # pandas writes a (1,)*ndim sentinel for an empty array
        if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)) or np.prod(shape) != 0:
            raise reader.fail(f"bad empty-array shape {shape!r}")
        return np.empty(tuple(shape), dtype=node.dtype)
    return reader.read(node)


def _fixed_index(reader: _Reader, group: h5py.Group, key: str, encoding: str) -> pd.Index:
    variety = reader.attr(group, f"{key}_variety")
    if variety == "regular":
        node = reader.dataset(group, key)
        reader.scan_attrs(node)
        values = reader.index_values(_fixed_array(reader, node), reader.attr(node, "kind"), encoding)
        return pd.Index(values, name=_name(reader, node))
    if variety != "multi":
        raise reader.fail(f"index variety {variety!r} is not supported")
    n_levels = reader.attr(group, f"{key}_nlevels")
    if not isinstance(n_levels, int) or not 1 <= n_levels <= 16:
        raise reader.fail(f"{n_levels!r} levels")
    levels, codes, names = [], [], []
    for i in range(n_levels):
        node = reader.dataset(group, f"{key}_level{i}")
        reader.scan_attrs(node)
        levels.append(reader.index_values(_fixed_array(reader, node), reader.attr(node, "kind"), encoding))
        names.append(_name(reader, node))
        code_node = reader.dataset(group, f"{key}_label{i}")
        code = _fixed_array(reader, code_node)
        if code.dtype.kind not in "iu" or code.ndim != 1:
            raise reader.fail(f"codes of data type {code.dtype} and shape {code.shape}")
        if code.size and (code.min() < -1 or code.max() >= len(levels[-1])):
            raise reader.fail(f"codes outside 0..{len(levels[-1]) - 1}")
        if codes and len(code) != len(codes[0]):
            raise reader.fail(f"{len(code)} codes, level 0 has {len(codes[0])}")
        codes.append(code.astype(np.int64))
    return pd.MultiIndex(levels=levels, codes=codes, names=names, verify_integrity=True)


def _name(reader: _Reader, node: h5py.Dataset) -> Any:
    name = reader.attr(node, "name", None)
    if name is not None and not isinstance(name, (str, int, float)):
        raise reader.fail(f"index name {name!r} is not a string")
    return name
