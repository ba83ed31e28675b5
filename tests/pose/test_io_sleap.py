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
