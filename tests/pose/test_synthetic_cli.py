"""``ethopose synth``: the commands write every output, which reloads; same seed, same truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from ethopose.cli import app
from pose import io as pose_io

runner = CliRunner()
FILES = ("video.mp4", "truth.nc", "truth.h5", "behavior.csv", "gait_events.csv", "arena.json",
         "config.yaml", "labeled-data/video/CollectedData_synthetic.h5")


def _open_field(out, seed=0):
    return runner.invoke(app, ["synth", "open-field", "--out", str(out), "--seconds", "2",
                               "--seed", str(seed), "--width", "160", "--height", "120",
                               "--n-label-frames", "3"])


def test_open_field_command_writes_everything_and_is_reproducible(tmp_path):
    res = _open_field(tmp_path / "a")
    assert res.exit_code == 0, res.output
    assert str(tmp_path / "a") in res.output and "truth.nc" in res.output
    for name in FILES:
        assert (tmp_path / "a" / name).is_file(), name
    truth = pose_io.load(tmp_path / "a" / "truth.nc")
    assert truth.sizes["time"] == 60
    assert len(pd.read_csv(tmp_path / "a" / "behavior.csv")) == 60
    labels = pose_io.load(tmp_path / "a" / "labeled-data/video/CollectedData_synthetic.h5")
    assert labels.sizes["time"] == 3 and "image" in labels.coords
    assert _open_field(tmp_path / "b").exit_code == 0
    np.testing.assert_array_equal(truth.position.values,
                                  pose_io.load(tmp_path / "b" / "truth.nc").position.values)
    assert _open_field(tmp_path / "c", seed=1).exit_code == 0
    assert not np.array_equal(truth.position.values,
                              pose_io.load(tmp_path / "c" / "truth.nc").position.values)


def test_gait_command(tmp_path):
    res = runner.invoke(app, ["synth", "gait", "--out", str(tmp_path), "--seconds", "1",
                              "--gait", "trot", "--speed-mm-s", "200", "--stride-length-mm",
                              "50", "--width", "160", "--height", "96", "--no-nuisance",
                              "--n-label-frames", "2"])
    assert res.exit_code == 0, res.output
    for name in FILES:
        assert (tmp_path / name).is_file(), name
    ev = pd.read_csv(tmp_path / "gait_events.csv").dropna()
    td = ev[ev.paw == "left_hindpaw"].touch_down_s.to_numpy()
    assert len(td) >= 3 and np.allclose(np.diff(td), 0.25, atol=2e-6)  # cadence 200 / 50 = 4 Hz


def test_bad_option_is_refused(tmp_path):
    res = runner.invoke(app, ["synth", "gait", "--out", str(tmp_path), "--gait", "gallop"])
    assert res.exit_code != 0
    assert "gallop" in res.output
