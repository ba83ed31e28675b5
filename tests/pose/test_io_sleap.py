"""SLEAP .slp and .analysis.h5: known answers, sleap-io and movement as references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pose.io as pio
from pose.dataset import from_numpy
from tests.conftest import shared_path

SLP = ("deepof-formats", "test_single_topview_testDLC_sleap.slp")
ANALYSIS = ("deepof-formats", "test_single_topview_testDLC_sleap.analysis.h5")


def _two_mice() -> object:
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 500, size=(6, 2, 3, 2))
    conf = rng.uniform(0.1, 1, size=(6, 3, 2))
    pos[3, :, :, 1] = np.nan  # mouse b absent in frame 3
    conf[3, :, 1] = np.nan
    conf[:, :, 1] = np.where(np.isnan(pos[:, 0, :, 1]), np.nan, conf[:, :, 1])
    return from_numpy(pos, conf, keypoints=["nose", "neck", "tail"], individuals=["a", "b"], fps=40)


@pytest.mark.parametrize("suffix", [".slp", ".analysis.h5"])
def test_synthetic_round_trip(tmp_path: Path, suffix: str) -> None:
    ds = _two_mice()
    back = pio.load(pio.save(ds, tmp_path / f"mice{suffix}"), fps=40)
    assert list(back.individual.values) == ["a", "b"]
    assert list(back.keypoint.values) == ["nose", "neck", "tail"]
    np.testing.assert_array_equal(back.position.values, ds.position.values)
    np.testing.assert_allclose(back.confidence.values, ds.confidence.values, rtol=1e-6)
    np.testing.assert_allclose(back.time.values, np.arange(6) / 40)


def test_user_instances_have_nan_confidence(tmp_path: Path) -> None:
    sio = pytest.importorskip("sleap_io")
    ds = _two_mice()
    ds["confidence"][:] = np.nan  # hand labels
    out = pio.save(ds, tmp_path / "labels.slp")
    labels = sio.load_slp(str(out), open_videos=False)
    assert all(type(i) is sio.Instance for lf in labels.labeled_frames for i in lf.instances)
    assert np.isnan(pio.load(out).confidence.values).all()


def test_written_analysis_h5_read_by_sleap_io(tmp_path: Path) -> None:
    sio = pytest.importorskip("sleap_io")
    ds = _two_mice()
    out = pio.save(ds, tmp_path / "mice.analysis.h5")
    labels = sio.load_analysis_h5(str(out))
    assert [t.name for t in labels.tracks] == ["a", "b"]
    arr = labels.numpy(return_confidence=True)  # (frames, tracks, nodes, 3), float32
    np.testing.assert_allclose(arr[..., :2].transpose(0, 3, 2, 1), ds.position.values, rtol=1e-6)


def test_slp_and_analysis_agree_and_match_movement() -> None:
    load_poses = pytest.importorskip("movement.io.load_poses")
    slp, ana = shared_path(*SLP), shared_path(*ANALYSIS)
    a, b = pio.load(slp), pio.load(ana)
    assert a.sizes == {"time": 101, "space": 2, "keypoint": 14, "individual": 1}
    np.testing.assert_array_equal(a.position.values, b.position.values)
    np.testing.assert_array_equal(a.confidence.values, b.confidence.values)
    ref = load_poses.from_sleap_file(slp)
    np.testing.assert_array_equal(a.position.values, ref.position.values)
    # SLEAP scores above 1 are clipped (see pose.io.sleap Notes).
    assert np.nanmax(ref.confidence.values) > 1
    np.testing.assert_array_equal(a.confidence.values, np.clip(ref.confidence.values, 0, 1))
    assert a.attrs["video_path"].endswith("test2DLC_video_circular_arena.mp4")


@pytest.mark.parametrize("parts", [SLP, ANALYSIS])
@pytest.mark.parametrize("suffix", [".slp", ".analysis.h5", ".nc", ".h5", ".csv"])
def test_real_sleap_round_trip(tmp_path: Path, parts: tuple[str, str], suffix: str) -> None:
    ds = pio.load(shared_path(*parts))
    back = pio.load(pio.save(ds, tmp_path / f"out{suffix}"))
    np.testing.assert_array_equal(back.position.values, ds.position.values)
    np.testing.assert_array_equal(back.confidence.values, ds.confidence.values)
    assert list(back.keypoint.values) == list(ds.keypoint.values)


def test_analysis_file_under_a_plain_h5_name_is_sniffed(tmp_path: Path) -> None:
    ds = _two_mice()
    plain = tmp_path / "mice.h5"
    pio.save(ds, tmp_path / "mice.analysis.h5").rename(plain)
    assert pio.detect_format(plain) == "sleap_analysis"
    back = pio.load(plain)
    assert back.attrs["source_software"] == "SLEAP"
    np.testing.assert_array_equal(back.position.values, ds.position.values)


def test_labelled_images_warn_when_written_to_sleap(tmp_path: Path) -> None:
    ds = _two_mice().assign_coords(image=("time", [f"img{i}.png" for i in range(6)]))
    with pytest.warns(UserWarning, match="'image' coordinate .* is not stored in SLEAP"):
        pio.save(ds, tmp_path / "labels.slp")


def test_user_instance_wins_over_prediction_and_untracked_files(tmp_path: Path) -> None:
    sio = pytest.importorskip("sleap_io")
    skeleton = sio.Skeleton(["head", "tail"])
    video = sio.Video(filename="v.mp4", open_backend=False)
    pred = sio.PredictedInstance.from_numpy(
        np.array([[1.0, 2.0], [3.0, 4.0]]), skeleton, point_scores=np.array([0.9, 1.2]), score=1.0
    )
    user = sio.Instance.from_numpy(np.array([[10.0, 20.0], [30.0, 40.0]]), skeleton)
    other = sio.PredictedInstance.from_numpy(
        np.array([[5.0, 6.0], [7.0, 8.0]]), skeleton, point_scores=np.array([0.5, 0.25]), score=0.4
    )
    frames = [
        sio.LabeledFrame(video=video, frame_idx=0, instances=[pred, other]),
        sio.LabeledFrame(video=video, frame_idx=2, instances=[user]),
    ]
    labels = sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton])
    path = tmp_path / "untracked.slp"
    sio.save_slp(labels, str(path), verbose=False)
    ds = pio.load(path)
    # No tracks: individuals by instance order; frames 0..2 with frame 1 empty.
    assert list(ds.individual.values) == ["track_0", "track_1"]
    assert ds.sizes["time"] == 3
    np.testing.assert_array_equal(ds.position.values[0, :, :, 0], [[1.0, 3.0], [2.0, 4.0]])
    np.testing.assert_array_equal(ds.confidence.values[0, :, 0], [0.9, 1.0])  # 1.2 clipped
    np.testing.assert_array_equal(ds.confidence.values[0, :, 1], [0.5, 0.25])
    assert np.isnan(ds.position.values[1]).all()
    np.testing.assert_array_equal(ds.position.values[2, :, :, 0], [[10.0, 30.0], [20.0, 40.0]])
    assert np.isnan(ds.confidence.values[2, :, 0]).all()  # user labels: no score


def test_user_instance_replaces_prediction_of_its_track(tmp_path: Path) -> None:
    sio = pytest.importorskip("sleap_io")
    skeleton = sio.Skeleton(["head", "tail"])
    video = sio.Video(filename="v.mp4", open_backend=False)
    track = sio.Track(name="mouse")
    pred = sio.PredictedInstance.from_numpy(np.array([[1.0, 2.0], [3.0, 4.0]]), skeleton,
                                            point_scores=np.array([0.9, 0.8]), score=0.85, track=track)
    user = sio.Instance.from_numpy(np.array([[10.0, 20.0], [30.0, 40.0]]), skeleton, track=track)
    labels = sio.Labels(labeled_frames=[sio.LabeledFrame(video=video, frame_idx=0, instances=[user, pred])],
                        videos=[video], skeletons=[skeleton], tracks=[track])
    sio.save_slp(labels, str(tmp_path / "both.slp"), verbose=False)
    ds = pio.load(tmp_path / "both.slp")
    assert list(ds.individual.values) == ["mouse"]
    np.testing.assert_array_equal(ds.position.values[0, :, :, 0], [[10.0, 30.0], [20.0, 40.0]])
    assert np.isnan(ds.confidence.values[0, :, 0]).all()
