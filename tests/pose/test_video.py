"""pose.video.VideoReader: metadata, batches, frame-accurate seeking, damaged files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pose.video import VideoDecodeError, VideoError, VideoReader
from tests.conftest import shared_path

H, W, N, FPS = 96, 128, 120, 25
pytestmark = pytest.mark.timeout(120)  # a damaged file must never hang


def _frame_image(i: int) -> np.ndarray:
    """Frame number i written as 8 black/white vertical stripes (bit b = stripe b)."""
    img = np.zeros((H, W, 3), np.uint8)
    for b in range(8):
        if (i >> b) & 1:
            img[:, b * 16 : (b + 1) * 16] = 255
    img[H // 2 :, :, 1] //= 2  # some colour, so RGB order matters
    return img


def _frame_number(img: np.ndarray) -> int:
    return sum(1 << b for b in range(8) if img[: H // 2, b * 16 + 4 : b * 16 + 12, 0].mean() > 127)


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "numbered.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for i in range(N):
        writer.write(cv2.cvtColor(_frame_image(i), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _write_pyav(path: Path, pts_ms: list[int], options: dict[str, str] | None = None) -> Path:
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, pts in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(_frame_image(i), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_metadata(numbered: Path) -> None:
    with VideoReader(numbered) as video:
        assert (video.n_frames, video.width, video.height) == (N, W, H)
        assert video.fps == pytest.approx(FPS)
        assert not video.variable_frame_rate
        assert len(video) == N


def test_batches_cover_every_frame_in_order(numbered: Path) -> None:
    with VideoReader(numbered) as video:
        seen = []
        for first, batch in video.iter_batches(batch_size=32):
            assert batch.dtype == np.uint8 and batch.shape[1:] == (H, W, 3)
            assert first == len(seen)
            seen += [_frame_number(img) for img in batch]
        assert seen == list(range(N))
        starts = [(f, len(b)) for f, b in video.iter_batches(batch_size=16, start=50, stop=90)]
        assert starts == [(50, 16), (66, 16), (82, 8)]
        with pytest.warns(UserWarning, match=rf"numbered\.mp4: stop=500 is past the last frame \({N} frames\)"):
            assert sum(len(b) for _, b in video.iter_batches(64, start=100, stop=500)) == N - 100


def test_rgb_channel_order(numbered: Path) -> None:
    with VideoReader(numbered) as video:
        img = video.read(255 % N)  # frame 15: stripes 0-3 white
    lower = img[H // 2 + 10, 8].astype(int)
    assert lower[0] > 200 and 100 < lower[1] < 155  # red full, green halved: RGB, not BGR


def test_random_access_is_frame_accurate(numbered: Path) -> None:
    with VideoReader(numbered) as video:
        sequential = np.concatenate([b for _, b in video.iter_batches(40)])
        order = np.random.default_rng(0).permutation(N)
        for i in [*order[:40], N - 1, 0, 1, 2]:
            frame = video.read(int(i))
            assert _frame_number(frame) == i
            np.testing.assert_array_equal(frame, sequential[i])
        assert _frame_number(video.read(-1)) == N - 1
        with pytest.raises(IndexError, match=rf"numbered\.mp4: frame {N} out of range"):
            video.read(N)


def test_breaking_out_of_batches_then_reading(numbered: Path) -> None:
    with VideoReader(numbered) as video:
        for first, _ in video.iter_batches(8, prefetch=2):
            if first >= 16:
                break
        assert _frame_number(video.read(100)) == 100
        assert [f for f, _ in video.iter_batches(10, start=110)] == [110]


def _opencv_frames(path: Path, stop: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    for _ in range(stop):
        ok, frame = cap.read()
        assert ok
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def test_real_video_seek_equals_sequential() -> None:
    """m3v1mp4.mp4 (H.264 4:4:4, B-frames) decodes wrongly after a naive seek: not here."""
    path = shared_path("dlc-openfield", "videos", "m3v1mp4.mp4")
    stop = 200  # keyframes at 0 and 182
    reference = _opencv_frames(path, stop)  # independent: OpenCV, read from the start
    with VideoReader(path) as video:
        assert (video.n_frames, video.width, video.height) == (2330, 640, 480)
        assert video.fps == pytest.approx(30.0, abs=0.01)
        batches = np.concatenate([b for _, b in video.iter_batches(64, stop=stop)])
        differ = [i for i in range(stop) if not np.array_equal(batches[i], reference[i])]
        assert differ == [], f"frames differing from OpenCV's: {differ[:10]}"
        for i in [183, 181, 199, 182, 0, 90]:  # backwards and forwards, across the keyframe
            assert np.array_equal(video.read(i), reference[i]), f"frame {i}"
    with VideoReader(path) as video:  # a fresh reader whose first access is a seek
        assert np.array_equal(video.read(190), reference[190])


@pytest.mark.slow
def test_real_video_random_access_whole_file() -> None:
    path = shared_path("dlc-openfield", "videos", "m3v1mp4.mp4")
    with VideoReader(path) as video:
        wanted = sorted({*np.random.default_rng(1).integers(0, video.n_frames, 25).tolist(), 2329})
        sequential = {}
        for first, batch in video.iter_batches(128):
            for i in wanted:
                if first <= i < first + len(batch):
                    sequential[i] = batch[i - first].copy()
        for i in reversed(wanted):
            assert np.array_equal(video.read(i), sequential[i]), f"frame {i}"


def test_missing_empty_and_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match=r"absent\.mp4: video file not found"):
        VideoReader(tmp_path / "absent.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty\.mp4: video file is empty"):
        VideoReader(tmp_path / "empty.mp4")
    (tmp_path / "notes.mp4").write_text("not a video\n" * 100)
    with pytest.raises(VideoError, match=r"notes\.mp4: cannot open as a video"):
        VideoReader(tmp_path / "notes.mp4")


def test_corrupt_video_raises_naming_frame(numbered: Path, tmp_path: Path) -> None:
    data = bytearray(numbered.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 300] = np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes()
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    with VideoReader(path) as video, pytest.raises(VideoDecodeError, match=r"corrupt\.mp4: frame \d+ could not be decoded"):
        for _ in video.iter_batches(16):
            pass


def test_truncated_video(numbered: Path, tmp_path: Path) -> None:
    # Index at the end (OpenCV's writer): a cut file cannot be opened at all.
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(numbered.read_bytes()[: numbered.stat().st_size // 2])
    with pytest.raises(VideoError, match=r"cut\.mp4: cannot open as a video"):
        VideoReader(cut)
    # Index at the start ('faststart'): the frames that survive are read, with a warning.
    fast = _write_pyav(tmp_path / "fast.mp4", [i * 40 for i in range(100)], {"movflags": "faststart"})
    cut_fast = tmp_path / "cut_fast.mp4"
    cut_fast.write_bytes(fast.read_bytes()[: fast.stat().st_size * 2 // 3])
    with pytest.warns(UserWarning, match=r"cut_fast\.mp4: truncated video: the header lists 100 frames but only \d+"):
        video = VideoReader(cut_fast)
    with video:
        assert 0 < video.n_frames < 100
        n = sum(len(b) for _, b in video.iter_batches(32))
        assert n == video.n_frames
        assert _frame_number(video.read(video.n_frames - 1)) == video.n_frames - 1


def test_variable_frame_rate_warns(tmp_path: Path) -> None:
    pts = [i * 40 for i in range(50)] + [2000 + i * 100 for i in range(50)]
    path = _write_pyav(tmp_path / "vfr.mp4", pts)
    with pytest.warns(UserWarning, match=r"vfr\.mp4: variable frame rate: the interval before frame 51 is 100\.0 ms"):
        video = VideoReader(path)
    with video:
        assert video.variable_frame_rate
        assert video.n_frames == 100
        assert video.fps == pytest.approx(100 / 6.9, rel=0.02)  # 100 frames over 6.9 s
        assert _frame_number(video.read(75)) == 75


@pytest.mark.parametrize(("fourcc", "suffix"), [("MJPG", ".avi"), ("XVID", ".avi"), ("FFV1", ".mkv")])
def test_other_containers_and_codecs(tmp_path: Path, fourcc: str, suffix: str) -> None:
    path = tmp_path / f"clip{suffix}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (W, H))
    if not writer.isOpened():
        pytest.skip(f"this OpenCV build cannot write {fourcc}")
    for i in range(40):
        writer.write(cv2.cvtColor(_frame_image(i), cv2.COLOR_RGB2BGR))
    writer.release()
    with VideoReader(path) as video:
        assert video.n_frames == 40 and video.fps == pytest.approx(FPS)
        assert [_frame_number(f) for _, b in video.iter_batches(16) for f in b] == list(range(40))
        assert [_frame_number(video.read(i)) for i in (30, 3, 39, 0)] == [30, 3, 39, 0]
