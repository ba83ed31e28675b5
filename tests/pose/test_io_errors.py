"""Bad input gets one clear error (or warning) that names the file and the row / field."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

import pose.io as pio
from pose.dataset import from_numpy
from pose.io.errors import PoseFileError, UnknownFormatError

GOOD_CSV = (
    "scorer,S,S,S,S,S,S\n"
    "bodyparts,nose,nose,nose,tail,tail,tail\n"
    "coords,x,y,likelihood,x,y,likelihood\n"
    "0,1.0,2.0,0.9,3.0,4.0,0.8\n"
    "1,1.5,2.5,0.9,3.5,4.5,0.7\n"
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_csv_reads(tmp_path: Path) -> None:
    ds = pio.load(_write(tmp_path, "good.csv", GOOD_CSV))
    np.testing.assert_array_equal(ds.position.sel(keypoint="tail", space="y").values[:, 0], [4.0, 4.5])
    np.testing.assert_array_equal(ds.confidence.sel(keypoint="nose").values[:, 0], [0.9, 0.9])


def test_wrong_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.csv", GOOD_CSV.replace("coords,", "coordinates,"))
    with pytest.raises(PoseFileError, match=r"bad\.csv: wrong DeepLabCut header.*'bodyparts', 'coordinates'"):
        pio.load(path)


def test_unknown_coord_in_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.csv", GOOD_CSV.replace("coords,x,y,likelihood,x", "coords,x,y,score,x"))
    with pytest.raises(PoseFileError, match=r"bad\.csv: unknown coords \['score'\]"):
        pio.load(path)


def test_csv_that_is_not_a_pose_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "speed.csv", "time,speed\n0,1.0\n1,2.0\n")
    with pytest.raises(PoseFileError, match=r"speed\.csv: not a DeepLabCut pose csv: row 1 must start with 'scorer'"):
        pio.load(path)


def test_binary_file_with_csv_suffix(tmp_path: Path) -> None:
    path = tmp_path / "video.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(PoseFileError, match=r"video\.csv"):
        pio.load(path)


def test_body_part_missing_y_column(tmp_path: Path) -> None:
    text = (
        "scorer,S,S,S,S,S\n"
        "bodyparts,nose,nose,nose,tail,tail\n"
        "coords,x,y,likelihood,x,likelihood\n"
        "0,1.0,2.0,0.9,3.0,0.8\n"
    )
    with pytest.raises(PoseFileError, match=r"nobody\.csv: body part 'tail' has no y column"):
        pio.load(_write(tmp_path, "nobody.csv", text))


def test_multi_animal_missing_x_names_individual(tmp_path: Path) -> None:
    text = (
        "scorer,S,S,S,S\n"
        "individuals,m1,m1,m2,m2\n"
        "bodyparts,nose,nose,nose,nose\n"
        "coords,x,y,y,likelihood\n"
        "0,1.0,2.0,3.0,0.5\n"
    )
    with pytest.raises(PoseFileError, match=r"individual 'm2', body part 'nose' has no x column"):
        pio.load(_write(tmp_path, "ma.csv", text))


def test_nan_only_body_part_warns(tmp_path: Path) -> None:
    text = GOOD_CSV.replace("3.0,4.0", ",").replace("3.5,4.5", ",")
    with pytest.warns(UserWarning, match=r"nan\.csv: body part\(s\) \['tail'\] hold only NaN"):
        ds = pio.load(_write(tmp_path, "nan.csv", text))
    assert np.isnan(ds.position.sel(keypoint="tail").values).all()


def test_truncated_row(tmp_path: Path) -> None:
    text = GOOD_CSV + "2,1.0,2.0,0.9\n"
    with pytest.raises(PoseFileError, match=r"short\.csv: line 6 has 4 fields, the header has 7"):
        pio.load(_write(tmp_path, "short.csv", text))


@pytest.mark.parametrize(("old", "new", "row"), [("1,1.5,2.5", "1,1.5,oops", 2), ("0,1.0,2.0", "0,1.0,oops", 1)])
def test_non_numeric_value_names_row_and_column(tmp_path: Path, old: str, new: str, row: int) -> None:
    text = GOOD_CSV.replace(old, new)
    with pytest.raises(PoseFileError, match=rf"text\.csv: non-numeric value 'oops' in data row {row}.*'nose', 'y'"):
        pio.load(_write(tmp_path, "text.csv", text))


def test_likelihood_out_of_range(tmp_path: Path) -> None:
    text = GOOD_CSV.replace("0.9,3.0", "7.0,3.0")
    with pytest.raises(PoseFileError, match=r"conf\.csv: likelihood outside \[0, 1\]"):
        pio.load(_write(tmp_path, "conf.csv", text))


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnknownFormatError, match=r"pose\.json: unknown pose file suffix '\.json'"):
        pio.load(tmp_path / "pose.json")
    with pytest.raises(UnknownFormatError, match=r"unknown pose file suffix '\.txt'"):
        pio.save(from_numpy(np.zeros((1, 2, 1, 1))), tmp_path / "out.txt")
    for name in ("absent.csv", "absent.h5", "absent.slp", "absent.nc", "absent.analysis.h5"):
        with pytest.raises(PoseFileError, match=rf"{name}: file not found"):
            pio.load(tmp_path / name)


def test_h5_that_is_not_a_pose_table(tmp_path: Path) -> None:
    path = tmp_path / "raw.h5"
    with h5py.File(path, "w") as fh:
        fh["data"] = np.zeros(3)
    with pytest.raises(PoseFileError, match=r"raw\.h5: HDF5 file holds no pandas table"):
        pio.load(path)
    garbage = _write(tmp_path, "garbage.h5", "not hdf5")
    with pytest.raises(PoseFileError, match=r"garbage\.h5: not a DeepLabCut \(pandas HDF\) file"):
        pio.load(garbage)


def test_analysis_h5_mismatched_frame_counts(tmp_path: Path) -> None:
    good = pio.save(from_numpy(np.ones((5, 2, 3, 1)), np.full((5, 3, 1), 0.5)), tmp_path / "a.analysis.h5")
    assert pio.load(good).sizes["time"] == 5
    with h5py.File(good, "a") as fh:
        del fh["point_scores"]
        fh["point_scores"] = np.ones((1, 3, 4))
    with pytest.raises(PoseFileError, match=r"a\.analysis\.h5: mismatched frame counts: 'point_scores' has shape \(1, 3, 4\)"):
        pio.load(good)


def test_garbage_sleap_and_netcdf(tmp_path: Path) -> None:
    with pytest.raises(PoseFileError, match=r"bad\.slp: not a SLEAP \.slp file"):
        pio.load(_write(tmp_path, "bad.slp", "nope"))
    with pytest.raises(PoseFileError, match=r"bad\.nc: not a NetCDF"):
        pio.load(_write(tmp_path, "bad.nc", "nope"))


def test_netcdf_without_pose_variables(tmp_path: Path) -> None:
    import xarray as xr

    xr.Dataset({"speed": ("time", np.ones(3))}).to_netcdf(tmp_path / "speed.nc", engine="h5netcdf")
    with pytest.raises(PoseFileError, match=r"speed\.nc: not a pose Dataset: .*no 'position' variable"):
        pio.load(tmp_path / "speed.nc")


def test_save_rejects_a_non_pose_object(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected an xarray.Dataset"):
        pio.save({"position": 1}, tmp_path / "x.csv")  # type: ignore[arg-type]
    assert not (tmp_path / "x.csv").exists()


def test_position_of_1e30_px_is_refused_at_load(tmp_path: Path) -> None:
    text = GOOD_CSV.replace("1,1.5,2.5,0.9,3.5,4.5,0.7", "1,1.5,2.5,0.9,3.5,1e30,0.7")
    with pytest.raises(PoseFileError, match=r"huge\.csv: .*'position' y = 1e\+30 at frame 1, keypoint 'tail'"):
        pio.load(_write(tmp_path, "huge.csv", text))
