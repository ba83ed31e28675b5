"""DeepLabCut h5/csv: known-answer layouts, real-file round trips, movement as an oracle."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pose.io as pio
from pose.dataset import from_numpy
from tests.conftest import SHARED_DATA, shared_path

rng = np.random.default_rng(0)


def _synthetic(n_ind: int = 1, n_time: int = 5, fps: float | None = None):
    pos = rng.uniform(0, 640, size=(n_time, 2, 3, n_ind))
    pos[2, :, 1, 0] = np.nan  # one missing body part
    conf = rng.uniform(0, 1, size=(n_time, 3, n_ind))
    inds = ["individual_0"] if n_ind == 1 else [f"mouse{i}" for i in range(n_ind)]
    return from_numpy(pos, conf, keypoints=["snout", "left ear ", "tail_base"], individuals=inds, fps=fps)


@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_single_animal_written_as_deeplabcut(tmp_path: Path, suffix: str) -> None:
    ds = _synthetic(fps=30)
    ds.attrs["scorer"] = "DLC_resnet50_test"
    out = pio.save(ds, tmp_path / f"pred{suffix}")
    if suffix == ".csv":
        df = pd.read_csv(out, header=[0, 1, 2], index_col=0)
    else:
        df = pd.read_hdf(out)
        with pd.HDFStore(out, "r") as store:
            assert store.keys() == ["/df_with_missing"]
    assert list(df.columns.names) == ["scorer", "bodyparts", "coords"]
    assert list(df.columns[:3]) == [("DLC_resnet50_test", "snout", "x"),
                                    ("DLC_resnet50_test", "snout", "y"),
                                    ("DLC_resnet50_test", "snout", "likelihood")]
    assert "left ear " in df.columns.get_level_values("bodyparts")  # names kept exactly
    assert (df.dtypes == np.float64).all()
    assert list(df.index) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(
        df[("DLC_resnet50_test", "tail_base", "y")].to_numpy(), ds.position.sel(space="y", keypoint="tail_base").values[:, 0]
    )
    back = pio.load(out, fps=30)
    np.testing.assert_array_equal(back.position.values, ds.position.values)
    np.testing.assert_array_equal(back.confidence.values, ds.confidence.values)
    np.testing.assert_allclose(back.time.values, np.arange(5) / 30)


@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_multi_animal_written_with_four_levels(tmp_path: Path, suffix: str) -> None:
    ds = _synthetic(n_ind=2)
    out = pio.save(ds, tmp_path / f"pred{suffix}")
    df = pd.read_csv(out, header=[0, 1, 2, 3], index_col=0) if suffix == ".csv" else pd.read_hdf(out)
    assert list(df.columns.names) == ["scorer", "individuals", "bodyparts", "coords"]
    assert df.shape == (5, 2 * 3 * 3)
    assert list(df.columns.get_level_values("individuals").unique()) == ["mouse0", "mouse1"]
    x = df[("ethopose", "mouse1", "snout", "x")].to_numpy()
    np.testing.assert_array_equal(x, ds.position.sel(space="x", keypoint="snout", individual="mouse1").values)
    back = pio.load(out)
    assert list(back.individual.values) == ["mouse0", "mouse1"]
    np.testing.assert_array_equal(back.position.values, ds.position.values)


@pytest.mark.parametrize("layout", ["path", "multiindex"])
@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_labelled_data_layouts(tmp_path: Path, suffix: str, layout: str) -> None:
    ds = _synthetic()
    images = [f"labeled-data/vid1/img{i:04d}.png" for i in range(5)]
    ds = ds.assign_coords(image=("time", images))
    ds["confidence"][:] = np.nan
    ds.attrs.update(scorer="Alice", dlc_index_layout=layout)
    out = pio.save(ds, tmp_path / f"CollectedData_Alice{suffix}")
    if suffix == ".csv":
        index_col = [0, 1, 2] if layout == "multiindex" else 0
        df = pd.read_csv(out, header=[0, 1, 2], index_col=index_col)
    else:
        df = pd.read_hdf(out)
    assert set(df.columns.get_level_values("coords")) == {"x", "y"}  # labels: no likelihood
    assert set(df.columns.get_level_values("scorer")) == {"Alice"}
    if layout == "multiindex":
        assert df.index[1] == ("labeled-data", "vid1", "img0001.png")
    else:
        assert df.index[1] == "labeled-data/vid1/img0001.png"
    back = pio.load(out)
    assert list(back.coords["image"].values) == images
    assert back.attrs["scorer"] == "Alice"
    assert np.isnan(back.confidence.values).all()
    np.testing.assert_array_equal(back.position.values, ds.position.values)


# --- real files -------------------------------------------------------------------------

def _real_dlc_files() -> list[str]:
    names = [
        "deepof-formats/test_single_topview_testDLC_csv_table.csv",
        "deepof-formats/test_single_topview_testDLC_h5_table.h5",
        "deepof-formats/test_madlc_topview_testDLC_csv_table_madlc.csv",
        "deepof-formats/test_madlc_topview_testDLC_h5_table_madlc.h5",
        "deepof-formats/test_multi_topview_testDLC_csv_table_multi.csv",
        "dlc-openfield/labeled-data/m4s1/CollectedData_Pranav.h5",
        "dlc-openfield/labeled-data/m4s1/CollectedData_Pranav.csv",
        "behaviordepot-freezing/demo1/demo1_tracking.csv",
    ]
    names += sorted(
        str(p.relative_to(SHARED_DATA)) for p in (SHARED_DATA / "autogaita-beam").glob("PCCD3_*.csv")
    ) or ["autogaita-beam/PCCD3_Mouse14_(absent).csv"]
    return names


def _read_like_deeplabcut(path: Path, n_levels: int, n_index: int) -> pd.DataFrame:
    if path.suffix == ".h5":
        return pd.read_hdf(path)
    return pd.read_csv(path, header=list(range(n_levels)), index_col=list(range(n_index)))


@pytest.mark.parametrize("name", _real_dlc_files())
def test_real_file_round_trip(tmp_path: Path, name: str) -> None:
    src = shared_path(*name.split("/"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of the shared files has an all-NaN body part
        ds = pio.load(src)
    out = pio.save(ds, tmp_path / src.name)
    again = pio.load(out)
    np.testing.assert_array_equal(again.position.values, ds.position.values)  # NaN-aware
    np.testing.assert_array_equal(again.confidence.values, ds.confidence.values)
    assert list(again.keypoint.values) == list(ds.keypoint.values)
    assert list(again.individual.values) == list(ds.individual.values)
    # Structure identical to the original when read the way DeepLabCut reads it.
    n_levels = 4 if ds.attrs["dlc_multi_animal"] else 3
    n_index = 3 if ds.attrs["dlc_index_layout"] == "multiindex" else 1
    original = _read_like_deeplabcut(src, n_levels, n_index)
    written = _read_like_deeplabcut(out, n_levels, n_index)
    pd.testing.assert_frame_equal(written, original, check_exact=True)
    if src.suffix == ".h5":
        with pd.HDFStore(src, "r") as a, pd.HDFStore(out, "r") as b:
            assert a.keys() == b.keys()


def test_labelled_openfield_content() -> None:
    ds = pio.load(shared_path("dlc-openfield", "labeled-data", "m4s1", "CollectedData_Pranav.h5"))
    assert ds.sizes == {"time": 116, "space": 2, "keypoint": 4, "individual": 1}
    assert list(ds.keypoint.values) == ["snout", "leftear", "rightear", "tailbase"]
    assert ds.coords["image"].values[0] == "labeled-data/m4s1/img0000.png"
    assert ds.attrs["scorer"] == "Pranav"
    assert np.isnan(ds.confidence.values).all()
    # First row of the csv: 21.521,265.428 for the snout.
    np.testing.assert_array_equal(ds.position.values[0, :, 0, 0], [21.521, 265.428])


def test_autogaita_names_kept_exactly() -> None:
    files = sorted(shared_path("autogaita-beam").glob("PCCD3_*.csv"))
    for f in files:
        header = pd.read_csv(f, header=[0, 1, 2], index_col=0, nrows=0)
        names = list(dict.fromkeys(header.columns.get_level_values("bodyparts")))
        assert list(pio.load(f).keypoint.values) == names


@pytest.mark.parametrize(
    "name",
    [
        "deepof-formats/test_madlc_topview_testDLC_csv_table_madlc.csv",
        "behaviordepot-freezing/demo1/demo1_tracking.csv",
    ],
)
def test_same_values_as_movement(name: str) -> None:
    """movement's DeepLabCut loader is an independent reference."""
    load_poses = pytest.importorskip("movement.io.load_poses")
    src = shared_path(*name.split("/"))
    ref = load_poses.from_dlc_file(src, fps=50)
    ds = pio.load(src, fps=50)
    np.testing.assert_array_equal(ds.position.values, ref.position.values)
    np.testing.assert_array_equal(ds.confidence.values, ref.confidence.values)
    np.testing.assert_allclose(ds.time.values, ref.time.values)


def test_multi_animal_unique_bodyparts_round_trip(tmp_path: Path) -> None:
    """maDLC 'unique body parts' sit under the individual 'single' and only there."""
    cols = [("S", ind, bp, c) for ind, bps in (("m1", ["nose", "tail"]), ("m2", ["nose", "tail"]),
                                               ("single", ["led"])) for bp in bps
            for c in ("x", "y", "likelihood")]
    index = pd.MultiIndex.from_tuples(cols, names=["scorer", "individuals", "bodyparts", "coords"])
    df = pd.DataFrame(rng.uniform(0, 1, size=(4, len(cols))), columns=index)
    src = tmp_path / "ma.csv"
    df.to_csv(src)
    ds = pio.load(src)
    assert list(ds.individual.values) == ["m1", "m2", "single"]
    assert list(ds.keypoint.values) == ["nose", "tail", "led"]
    assert np.isnan(ds.position.sel(individual="m1", keypoint="led").values).all()
    out = pio.save(ds, tmp_path / "ma_out.h5")
    back = pd.read_hdf(out)
    pd.testing.assert_frame_equal(back, df, check_exact=True)


def test_dataframe_helpers_are_inverse() -> None:
    from pose.io.dlc import dataframe_to_dataset, dataset_to_dataframe

    ds = _synthetic(n_ind=2)
    df = dataset_to_dataframe(ds, scorer="me")
    assert df.columns.names == ["scorer", "individuals", "bodyparts", "coords"]
    back = dataframe_to_dataset(df)
    np.testing.assert_array_equal(back.position.values, ds.position.values)
