"""A DeepLabCut h5 carrying a pickle payload is read (or refused) without running it."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import pose.io as pio
from pose.dataset import from_numpy
from pose.io.errors import PoseFileError
from pose.io.pickle_data import PickleCodeError, UnsafePickleError, parse_pickle_data
from tests.conftest import SHARED_DATA


class _Touch:
    """Unpickling this creates ``marker`` (what a hostile file would do, harmlessly)."""

    def __init__(self, marker: Path, how: str) -> None:
        self.marker, self.how = str(marker), how

    def __reduce__(self):
        if self.how == "system":
            return (os.system, (f"touch '{self.marker}'",))
        return (open, (self.marker, "w"))


def _project_files(tmp_path: Path) -> dict[str, Path]:
    """DeepLabCut h5 files the project writes itself (present without the shared data)."""
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 500, size=(6, 2, 3, 1))
    pred = from_numpy(pos, rng.uniform(0, 1, size=(6, 3, 1)), keypoints=["snout", "ear", "tail"])
    labels = from_numpy(pos, None, keypoints=["snout", "ear", "tail"])
    labels = labels.assign_coords(image=("time", np.array([f"labeled-data/v/img{i}.png" for i in range(6)], dtype=object)))
    labels.attrs["dlc_index_layout"] = "multiindex"
    folder = tmp_path / "made"
    return {
        "table": pio.save(pred, folder / "pred.h5"),
        "fixed": pio.save(labels, folder / "CollectedData_me.h5"),
    }


def _sources(tmp_path: Path) -> dict[str, Path]:
    files = _project_files(tmp_path)
    real = {
        "openfield": SHARED_DATA / "dlc-openfield" / "labeled-data" / "m4s1" / "CollectedData_Pranav.h5",
        "deepof": SHARED_DATA / "deepof-formats" / "test_madlc_topview_testDLC_h5_table_madlc.h5",
    }
    files.update({k: p for k, p in real.items() if p.is_file()})
    return files


# (node path relative to the pandas group, attribute): every kind of attribute PyTables
# would unpickle, in both pandas layouts.
TABLE_ATTRS = [("", "non_index_axes"), ("", "info"), ("", "metadata"), ("", "data_columns"),
               ("table", "values_block_0_kind"), ("table", "values_block_0_meta")]
FIXED_ATTRS = [("", "encoding"), ("", "axis0_variety"), ("axis0_level0", "name"),
               ("block0_items_level1", "kind"), ("block0_values", "CLASS")]


def _crafted(src: Path, dest: Path, node: str, attr: str, payload: bytes) -> Path:
    shutil.copy(src, dest)
    dest.chmod(0o644)
    with h5py.File(dest, "r+") as fh:
        key = next(k for k in fh if "pandas_type" in fh[k].attrs)
        target = fh[key] if not node else fh[key][node]
        target.attrs[attr] = np.bytes_(payload)
    return dest


def _cases(tmp_path: Path) -> list[tuple[str, Path, str, str]]:
    cases = []
    for name, path in _sources(tmp_path).items():
        with h5py.File(path, "r") as fh:
            key = next(k for k in fh if "pandas_type" in fh[k].attrs)
            table = fh[key].attrs["pandas_type"] == b"frame_table"
        for node, attr in TABLE_ATTRS if table else FIXED_ATTRS:
            cases.append((name, path, node, attr))
    return cases


@pytest.mark.parametrize("how", ["system", "open"])
def test_payload_attribute_runs_nothing(tmp_path: Path, how: str) -> None:
    cases = _cases(tmp_path)
    assert len(cases) >= 10
    n_refused = 0
    for i, (name, src, node, attr) in enumerate(cases):
        marker = tmp_path / f"ran_{i}"
        payload = pickle.dumps(_Touch(marker, how), protocol=0)
        crafted = _crafted(src, tmp_path / f"crafted_{i}.h5", node, attr, payload)
        with pytest.raises(PoseFileError, match=rf"crafted_{i}\.h5: .*{attr}.*code in it"):
            pio.load(crafted)
        n_refused += 1
        assert not marker.exists(), f"{name} {node}/{attr}: the payload ran"
    assert n_refused == len(cases)


def test_payload_runs_under_pytables_but_not_here(tmp_path: Path) -> None:
    """Control: the same file does run its payload through pandas/PyTables (the bug)."""
    src = _project_files(tmp_path)["table"]
    marker = tmp_path / "ran_pandas"
    crafted = _crafted(src, tmp_path / "c.h5", "", "non_index_axes", pickle.dumps(_Touch(marker, "open"), protocol=0))
    with pytest.raises(PoseFileError, match="non_index_axes"):
        pio.load(crafted)
    assert not marker.exists()
    try:
        pd.read_hdf(crafted)
    except Exception:  # the payload returns a file object, which pandas then chokes on
        pass
    if not marker.exists():
        pytest.skip("this PyTables no longer unpickles node attributes")
    assert marker.exists()


def test_payload_through_convert_prints_one_line(tmp_path: Path) -> None:
    from ethopose.cli import app

    src = _project_files(tmp_path)["table"]
    marker = tmp_path / "ran_cli"
    crafted = _crafted(src, tmp_path / "evil.h5", "table", "values_block_0_kind",
                       pickle.dumps(_Touch(marker, "system"), protocol=0))
    result = CliRunner().invoke(app, ["convert", str(crafted), str(tmp_path / "out.nc")])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "evil.h5" in lines[0]
    assert not marker.exists()
    assert not (tmp_path / "out.nc").exists()


def test_unrelated_attribute_payload_is_refused_too(tmp_path: Path) -> None:
    """A payload on an attribute the reader does not need still refuses the file."""
    src = _project_files(tmp_path)["table"]
    marker = tmp_path / "ran_extra"
    crafted = _crafted(src, tmp_path / "x.h5", "", "my_extra", pickle.dumps(_Touch(marker, "open"), protocol=0))
    with pytest.raises(PoseFileError, match="my_extra"):
        pio.load(crafted)
    assert not marker.exists()


def test_clean_files_still_load_identically(tmp_path: Path) -> None:
    """The h5py reader gives pandas' own DataFrame, bit for bit, on every source."""
    from pose.io.pandas_hdf import read_pandas_hdf

    for path in _sources(tmp_path).values():
        df, key, _ = read_pandas_hdf(path)
        pd.testing.assert_frame_equal(df, pd.read_hdf(path, key=key), check_exact=True)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_parser_data_and_code(protocol: int, tmp_path: Path) -> None:
    value = [("sc", "snout", "x"), ("sc", "snout", "y"), {1: {"names": ["scorer", None]}}, 3, 2.5, True, None]
    assert parse_pickle_data(pickle.dumps(value, protocol=protocol)) == value
    with pytest.raises(PickleCodeError, match="GLOBAL"):
        parse_pickle_data(pickle.dumps([_Touch(tmp_path / "m", "system")], protocol=protocol))
    assert not (tmp_path / "m").exists()
    with pytest.raises(UnsafePickleError, match="malformed"):
        parse_pickle_data(pickle.dumps(value, protocol=protocol)[:-3])
