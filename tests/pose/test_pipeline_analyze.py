"""``ethopose pose analyze`` on damaged input: a truncated (faststart) mp4 is analysed and
marked; a bad video among good ones is reported at the end (exit 1) and the others are done."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from .pipeline_helpers import make_random_model

pytest.importorskip("torch")
av = pytest.importorskip("av")


def _faststart_mp4(path: Path, n_frames: int = 60, seed: int = 0) -> tuple[Path, np.ndarray]:
    """An H.264 mp4 with its index at the front (``movflags=faststart``), B-frames on; noise
    frames so that the frame data, not the index, makes up the file."""
    frames = np.random.default_rng(seed).integers(0, 255, (n_frames, 48, 64, 3), dtype=np.uint8)
    out = av.open(str(path), "w", options={"movflags": "faststart"})
    stream = out.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.options = {"crf": "10", "g": "10"}
    for f in frames:
        out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
    out.mux(stream.encode())
    out.close()
    return path, frames


def _cut(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])  # a recording cut off mid-write
    return dst


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return make_random_model(tmp_path_factory.mktemp("analyze") / "model")


def test_truncated_mp4_is_analysed_and_marked(model, tmp_path):
    import pose.io
    from pose.pipeline.inference import Predictor
    from pose.video import VideoReader

    full, _ = _faststart_mp4(tmp_path / "full.mp4")
    cut = _cut(full, tmp_path / "cut.mp4", 0.5)
    with pytest.warns(UserWarning, match="truncated video"):
        present = VideoReader(cut).n_frames
    assert 0 < present < 60
    pred = Predictor.from_dir(model, runtime="torch")
    complete = pred.predict_video(full)
    assert complete.attrs["video_truncated"] is False and complete.attrs["n_frames_read"] == 60
    with pytest.warns(UserWarning, match="truncated video"):
        ds = pred.predict_video(cut)
    n = ds.attrs["n_frames_read"]
    assert ds.attrs["video_truncated"] is True and ds.attrs["n_frames_expected"] == 60
    assert ds.sizes["time"] == n and 0.25 * 60 < n <= present
    # the frames before the cut are the complete file's frames
    np.testing.assert_allclose(ds.position.values, complete.position.values[:n], atol=1e-4)
    res = CliRunner().invoke(_app(), ["analyze", str(model), str(cut), "--out", str(tmp_path / "r"),
                                      "--runtime", "torch", "--formats", "nc"])
    assert res.exit_code == 0, res.output
    assert "cut.mp4 is truncated" in res.output
    back = pose.io.load(next((tmp_path / "r").glob("*.nc")))
    assert back.attrs["video_truncated"] is True and back.attrs["n_frames_read"] == n
    assert back.attrs["n_frames_expected"] == 60


def _app():
    from pose.pipeline.cli import app

    return app


def test_analyze_goes_on_past_a_bad_video_and_reports_it(model, tmp_path):
    v1, _ = _faststart_mp4(tmp_path / "v1.mp4", n_frames=6, seed=1)
    v2, _ = _faststart_mp4(tmp_path / "v2.mp4", n_frames=7, seed=2)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    missing = tmp_path / "missing.mp4"
    out = tmp_path / "r"
    res = CliRunner().invoke(_app(), ["analyze", str(model), str(v1), str(bad), str(missing), str(v2), "--out", str(out),
                                      "--runtime", "torch", "--formats", "nc"])
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    failed = [line for line in res.output.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 2 and "bad.mp4" in failed[0] and "missing.mp4" in failed[1]
    assert "2 of 4 videos failed" in res.output
    import pose.io

    done = sorted(p.name.split("DLC")[0] for p in out.glob("*.nc"))
    assert done == ["v1", "v2"]
    sizes = {p.name.split("DLC")[0]: pose.io.load(p).sizes["time"] for p in out.glob("*.nc")}
    assert sizes == {"v1": 6, "v2": 7}
