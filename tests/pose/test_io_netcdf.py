"""NetCDF keeps everything: attrs (history, None), the image coordinate, extra variables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

import pose.io as pio
from pose.dataset import append_history, from_numpy


def test_full_fidelity_round_trip(tmp_path: Path) -> None:
    pos = np.arange(4 * 2 * 2 * 1, dtype=float).reshape(4, 2, 2, 1)
    pos[1, :, 0, 0] = np.nan
    ds = from_numpy(pos, np.full((4, 2, 1), 0.5), keypoints=["snout", "tail base "], fps=25,
                    px_per_mm=3.2, source_software="DeepLabCut")
    ds = ds.assign_coords(image=("time", [f"labeled-data/v/img{i}.png" for i in range(4)]))
    ds.attrs.update(scorer="Pranav", dlc_multi_animal=False, dlc_scorer_columns=None)
    ds = append_history(ds, "filter_median", {"window_s": 0.2, "keypoints": ["snout"]})
    ds["speed"] = xr.DataArray(np.ones((4, 2, 1)), dims=("time", "keypoint", "individual"),
                               attrs={"units": "px/s"})
    out = pio.save(ds, tmp_path / "session.nc")
    back = pio.load(out)
    assert back.identical(ds)
    assert back.attrs["history"][0]["params"] == {"window_s": 0.2, "keypoints": ["snout"]}
    assert back.attrs["video_path"] is None and back.attrs["dlc_multi_animal"] is False
    # Other tools see plain attributes.
    raw = xr.load_dataset(out, engine="h5netcdf")
    assert raw.attrs["fps"] == 25 and raw.attrs["scorer"] == "Pranav"


def test_fps_override_puts_time_in_seconds(tmp_path: Path) -> None:
    ds = from_numpy(np.zeros((10, 2, 1, 1)))
    out = pio.save(ds, tmp_path / "frames.nc")
    back = pio.load(out, fps=5)
    np.testing.assert_allclose(back.time.values, np.arange(10) / 5)
    assert back.attrs["time_unit"] == "seconds" and back.attrs["fps"] == 5


def test_netcdf_from_movement_plural_dims(tmp_path: Path) -> None:
    ds = from_numpy(np.ones((3, 2, 2, 1))).rename(keypoint="keypoints", individual="individuals")
    ds.attrs = {"fps": 30.0, "source_software": "DeepLabCut"}
    ds.to_netcdf(tmp_path / "legacy.nc", engine="h5netcdf")
    back = pio.load(tmp_path / "legacy.nc")
    assert back.position.dims == ("time", "space", "keypoint", "individual")
