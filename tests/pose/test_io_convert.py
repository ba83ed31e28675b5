"""Every shared real pose file converts to every other format; ``ethopose convert``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import pose.io as pio
from tests.conftest import SHARED_DATA, shared_path

REAL_FILES = [
    "deepof-formats/test_single_topview_testDLC_csv_table.csv",
    "deepof-formats/test_single_topview_testDLC_h5_table.h5",
    "deepof-formats/test_madlc_topview_testDLC_csv_table_madlc.csv",
    "deepof-formats/test_madlc_topview_testDLC_h5_table_madlc.h5",
    "deepof-formats/test_multi_topview_testDLC_csv_table_multi.csv",
    "deepof-formats/test_single_topview_testDLC_sleap.slp",
    "deepof-formats/test_single_topview_testDLC_sleap.analysis.h5",
    "dlc-openfield/labeled-data/m4s1/CollectedData_Pranav.h5",
    "dlc-openfield/labeled-data/m4s1/CollectedData_Pranav.csv",
    "behaviordepot-freezing/demo1/demo1_tracking.csv",
]


def test_every_deepof_file_is_listed() -> None:
    folder = shared_path("deepof-formats")
    pose_files = {p.name for p in folder.iterdir() if p.suffix in (".csv", ".h5", ".slp")}
    assert pose_files == {Path(n).name for n in REAL_FILES if n.startswith("deepof-formats/")}


@pytest.mark.parametrize("name", REAL_FILES)
def test_netcdf_keeps_everything(tmp_path: Path, name: str) -> None:
    ds = pio.load(shared_path(*name.split("/")), fps=30)
    back = pio.load(pio.save(ds, tmp_path / "x.nc"))
    assert back.identical(ds)
    # ...and the DeepLabCut / SLEAP layout details survive a trip through NetCDF.
    again = pio.load(pio.save(back, tmp_path / Path(name).name))
    np.testing.assert_array_equal(again.position.values, ds.position.values)


@pytest.mark.parametrize("name", [n for n in REAL_FILES if "CollectedData" not in n])
@pytest.mark.parametrize("suffix", [".analysis.h5", ".csv", ".h5"])
def test_predictions_convert_between_tools(tmp_path: Path, name: str, suffix: str) -> None:
    ds = pio.load(shared_path(*name.split("/")))
    for key in [k for k in ds.attrs if k.startswith("dlc_")]:
        ds.attrs[key] = None  # as if the data came from elsewhere
    back = pio.load(pio.save(ds, tmp_path / f"out{suffix}"))
    np.testing.assert_array_equal(back.position.values, ds.position.values)
    np.testing.assert_array_equal(back.confidence.values, ds.confidence.values)
    expected = list(ds.individual.values)
    if len(expected) == 1 and suffix in (".csv", ".h5"):
        expected = ["individual_0"]  # DeepLabCut's single-animal layout has no animal name
    assert list(back.individual.values) == expected


def test_cli_convert_chain(tmp_path: Path) -> None:
    from ethopose.cli import app

    src = shared_path("deepof-formats", "test_madlc_topview_testDLC_h5_table_madlc.h5")
    runner = CliRunner()
    chain = [src, tmp_path / "a.nc", tmp_path / "b.slp", tmp_path / "c.analysis.h5", tmp_path / "d.csv"]
    for a, b in zip(chain[:-1], chain[1:], strict=True):
        result = runner.invoke(app, ["convert", str(a), str(b), "--fps", "30"])
        assert result.exit_code == 0, result.output
        assert "wrote" in result.output
    first, last = pio.load(src), pio.load(chain[-1])
    np.testing.assert_array_equal(last.position.values, first.position.values)
    assert [h["op"] for h in pio.load(chain[1]).attrs["history"]] == ["convert"]


def test_cli_convert_synthetic_without_shared_data(tmp_path: Path) -> None:
    from ethopose.cli import app
    from pose.dataset import from_numpy

    ds = from_numpy(np.arange(24, dtype=float).reshape(3, 2, 4, 1), np.full((3, 4, 1), 0.9))
    pio.save(ds, tmp_path / "in.csv")
    result = CliRunner().invoke(app, ["convert", str(tmp_path / "in.csv"), str(tmp_path / "out.nc"), "--fps", "10"])
    assert result.exit_code == 0, result.output
    out = pio.load(tmp_path / "out.nc")
    np.testing.assert_allclose(out.time.values, [0, 0.1, 0.2])
    np.testing.assert_array_equal(out.position.values, ds.position.values)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "out.nc"], "file not found"),
        (["in.csv", "out.txt"], "unknown pose file suffix '.txt'"),
    ],
)
def test_cli_convert_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    from ethopose.cli import app
    from pose.dataset import from_numpy

    pio.save(from_numpy(np.zeros((2, 2, 1, 1))), tmp_path / "in.csv")
    result = CliRunner().invoke(app, ["convert", *[str(tmp_path / a) for a in args]])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error: ")
    assert message in result.output
    assert str(tmp_path) in result.output  # the file is named


def test_shared_data_folder_known() -> None:
    assert "bodyparts" in shared_path("dlc-openfield", "config.yaml").read_text() and SHARED_DATA.is_dir()


def test_cli_labels_csv_to_h5_equals_deeplabcuts_own_h5(tmp_path: Path) -> None:
    """DeepLabCut saved the same labels as csv and h5: converting one gives the other."""
    import pandas as pd

    from ethopose.cli import app

    folder = shared_path("dlc-openfield", "labeled-data", "m4s1")
    out = tmp_path / "CollectedData_Pranav.h5"
    result = CliRunner().invoke(app, ["convert", str(folder / "CollectedData_Pranav.csv"), str(out)])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_hdf(out), pd.read_hdf(folder / "CollectedData_Pranav.h5"), check_exact=True)
    with pd.HDFStore(out, "r") as store:
        assert store.keys() == ["/df_with_missing"]
