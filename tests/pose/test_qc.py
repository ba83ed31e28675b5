"""Video QC: each defect made on purpose is found, a clean video passes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pose.qc import VideoQCLimits, check_video

W, H, FPS = 160, 120, 25


_TEXTURE = cv2.GaussianBlur(np.random.default_rng(99).normal(0, 60, (H, W)), (0, 0), 1.0)


def _scene(i: int, rng: np.random.Generator, gain: float = 1.0, blur: bool = False) -> np.ndarray:
    """A textured arena with a moving blob and fresh sensor noise in every frame."""
    yy, xx = np.mgrid[0:H, 0:W]
    img = 100 + _TEXTURE.copy()
    cx, cy = 30 + (i * 2) % 100, 60 + 20 * np.sin(i / 10)
    img[(xx - cx) ** 2 + (yy - cy) ** 2 < 64] = 30
    img = img * gain + rng.normal(0, 3, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), 3)
    return np.repeat(img[..., None], 3, axis=2)


def _write(path: Path, frames, pts_ms: list[int] | None = None, options=None) -> Path:
    """Lossless FFV1 in .mkv (sensor noise survives, as in a real camera's video); .mp4: MPEG-4."""
    frames = list(frames)
    pts_ms = pts_ms or [int(round(i * 1000 / FPS)) for i in range(len(frames))]
    lossless = path.suffix == ".mkv"
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("ffv1" if lossless else "mpeg4", rate=FPS)
        stream.width, stream.height = W, H
        stream.pix_fmt = "yuv444p" if lossless else "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for img, pts in zip(frames, pts_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _clean(n=100, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return [_scene(i, rng, **kw) for i in range(n)]


def _status(qc, check):
    row = qc.checks.set_index("check").loc[check]
    return row["status"], row


def test_clean_video_passes(tmp_path):
    qc = check_video(_write(tmp_path / "ok.mkv", _clean()), pose_frames=100, px_per_mm=0.3, arena_size_mm=400)
    assert qc.status == "pass", qc.checks
    assert qc.n_frames == 100 and qc.fps == pytest.approx(25, rel=1e-3)
    assert len(qc.per_frame) == 100


def test_dropped_frames_are_counted(tmp_path):
    pts = [i * 40 for i in range(100) if i not in (30, 31, 60)]
    qc = check_video(_write(tmp_path / "drop.mkv", _clean(97), pts))
    status, row = _status(qc, "dropped_frames")
    assert status == "fail" and row["value"] == 3 and "after frame 29" in row["reason"]


def test_variable_frame_rate_fails(tmp_path):
    pts = [i * 40 for i in range(50)] + [2000 + i * 100 for i in range(50)]
    qc = check_video(_write(tmp_path / "vfr.mkv", _clean(), pts))
    status, row = _status(qc, "frame_rate")
    assert status == "fail" and "variable frame rate" in row["reason"]


def test_duplicated_frames(tmp_path):
    frames = _clean()
    for i in range(10, 90, 8):  # 10 repeated frames
        frames[i] = frames[i - 1]
    qc = check_video(_write(tmp_path / "dup.mkv", frames))
    status, row = _status(qc, "duplicated_frames")
    assert status == "fail" and row["value"] == 10


def test_exposure_drift_and_blur(tmp_path):
    rng = np.random.default_rng(1)
    frames = [_scene(i, rng, gain=1.0 - 0.5 * i / 100) for i in range(100)]
    qc = check_video(_write(tmp_path / "dark.mkv", frames))
    assert _status(qc, "exposure_drift")[0] == "fail"
    assert _status(qc, "blur")[0] == "pass"
    rng = np.random.default_rng(2)
    frames = [_scene(i, rng, blur=40 <= i < 60) for i in range(100)]
    qc = check_video(_write(tmp_path / "blur.mkv", frames))
    status, row = _status(qc, "blur")
    assert status == "warn" and "the first at frame 40" in row["reason"]
    assert row["value"] == pytest.approx(0.2, abs=0.02)


def test_truncated_video_and_pose_mismatch(tmp_path):
    fast = _write(tmp_path / "fast.mp4", _clean(), options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(fast.read_bytes()[: fast.stat().st_size * 2 // 3])
    qc = check_video(cut, pose_frames=100)
    assert qc.status == "fail"
    assert _status(qc, "truncated")[0] == "fail"
    status, row = _status(qc, "frames_vs_pose")
    assert status == "fail" and row["value"] == 100 - qc.n_frames


def test_unreadable_file_and_bad_calibration(tmp_path):
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"\x00" * 1000)
    qc = check_video(junk)
    assert qc.status == "fail" and "junk.mkv" in qc.reasons[0]
    video = _write(tmp_path / "ok.mkv", _clean(20))
    qc = check_video(video, px_per_mm=3.0, arena_size_mm=400)  # 1200 px arena in a 160 px frame
    assert _status(qc, "arena_calibration")[0] == "fail"
    assert _status(check_video(video), "arena_calibration")[0] == "warn"


def test_limits_are_typed_and_overridable(tmp_path):
    with pytest.raises(ValueError, match="blurr_warn"):
        VideoQCLimits(blurr_warn=0.1)
    frames = _clean()
    frames[50] = frames[49]
    video = _write(tmp_path / "d.mkv", frames)
    assert _status(check_video(video), "duplicated_frames")[0] == "pass"  # 1 % is tolerated
    strict = VideoQCLimits(duplicated_warn=0.0)
    assert _status(check_video(video, limits=strict), "duplicated_frames")[0] == "warn"


def test_cli_flags_the_bad_video_and_writes_the_checks(tmp_path):
    from typer.testing import CliRunner

    from ethopose.cli import app

    good = _write(tmp_path / "good.mkv", _clean(40))
    pts = [i * 40 for i in range(40) if i != 20]
    bad = _write(tmp_path / "gappy.mkv", _clean(39), pts)
    r = CliRunner().invoke(app, ["qc", str(good), str(bad), "--out", str(tmp_path / "qc.csv")])
    assert r.exit_code == 1, r.output
    assert "gappy.mkv" in r.output and "1 frames missing" in r.output
    import pandas as pd

    rows = pd.read_csv(tmp_path / "qc.csv")
    worst = rows.groupby("video")["status"].agg(lambda s: "fail" if (s == "fail").any() else "ok")
    assert worst[str(bad)] == "fail" and worst[str(good)] == "ok"
