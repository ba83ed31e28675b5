"""Project config, augmentation, frame extraction and the project CLI commands."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from pose.pipeline.augment import (
    FILL_RGB,
    AugmentConfig,
    augment_sample,
    auto_crop_px,
    pad_to_multiple,
    save_augmented_samples,
)
from pose.pipeline.cli import app
from pose.pipeline.frames import select_frames
from pose.pipeline.project import load_labels, load_project

sys.path.insert(0, str(Path(__file__).parent))
from pipeline_helpers import BODYPARTS, make_blob_project  # noqa: E402


def _video(path: Path, n: int = 40) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(n):
        img = np.zeros((48, 64, 3), np.uint8)
        cv2.circle(img, (5 + i, 24 if i < n // 2 else 10), 4, (255, 255, 255), -1)
        w.write(img)
    w.release()
    return path


def test_read_blob_project_with_nan_labels(tmp_path):
    root, kps = make_blob_project(tmp_path / "p", n_frames=4, nan_frame=1)
    p = load_project(root)
    assert p.config.bodyparts == BODYPARTS and p.config.pcutoff == 0.1
    assert p.config.flip_pairs() == [(0, 1)]  # guessed from left_/right_ names
    labels = load_labels(p)
    assert labels.names == BODYPARTS and labels.keypoints.shape == (4, 3, 2)
    assert np.isnan(labels.keypoints[1, 2]).all()
    np.testing.assert_allclose(labels.keypoints[0], kps[0], atol=1e-6)


def test_config_typo_is_named(tmp_path):
    root, _ = make_blob_project(tmp_path / "p", n_frames=2)
    cfg = yaml.safe_load((root / "config.yaml").read_text())
    cfg["pcutof"] = 0.5
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="pcutof"):
        load_project(root)


def test_shared_openfield_project_reads_as_is(shared_data):
    p = load_project(shared_data / "dlc-openfield")
    labels = load_labels(p)
    assert len(labels.images) == 116 and labels.names == ["snout", "leftear", "rightear", "tailbase"]
    assert p.config.flip_pairs() == [(1, 2)] and p.config.pcutoff == 0.4


def test_augmentation_keeps_labels_on_the_blobs(tmp_path):
    root, kps = make_blob_project(tmp_path / "p", n_frames=3, size_px=96)
    img = cv2.cvtColor(cv2.imread(str(root / "labeled-data/vid/img0000.png")), cv2.COLOR_BGR2RGB)
    cfg = AugmentConfig(crop_px=96, brightness_contrast_prob=0, noise_prob=0, occlusion_prob=0, motion_blur_prob=0,
                        flip_prob=0.5, scale_range=(0.8, 1.2))
    rng = np.random.default_rng(1)
    for _ in range(12):
        s = augment_sample(img, kps[0], cfg, rng, flip_pairs=[(0, 1)])
        for j, (x, y) in enumerate(s.keypoints):
            if 3 <= x < 93 and 3 <= y < 93:
                # the blob of channel j (or of its swapped partner) lies under the label
                xi, yi = int(round(x)), int(round(y))
                patch = s.image[yi - 1 : yi + 2, xi - 1 : xi + 2]
                assert patch.max() > 120, (j, x, y)
    out = save_augmented_samples([img], kps[:1], tmp_path / "aug.png", cfg=cfg, n_samples=4)
    assert cv2.imread(str(out)).shape == (96, 4 * 96, 3)  # one row of four labelled samples


def test_auto_crop_follows_the_labelled_animal_size():
    rng = np.random.default_rng(0)
    centre = rng.uniform(200, 400, (50, 1, 2))

    def animals(length: float) -> np.ndarray:  # snout, middle and tail base of a straight animal
        along = np.array([[-0.5, 0.0], [0.0, 0.0], [0.5, 0.0]]) * length
        return centre + along[None]

    assert auto_crop_px(animals(60), (480, 640)) == 160  # small animal: the minimum
    assert auto_crop_px(animals(150), (480, 640)) == 192  # 1.2 x 150 = 180 -> 192
    assert auto_crop_px(animals(150), (480, 640), factor=1.6) == 256  # 240 -> 256
    assert auto_crop_px(animals(280), (480, 640)) == 352  # 336 -> 352
    assert auto_crop_px(animals(280), (240, 256)) == 256  # never more than the image
    kps = animals(150)
    kps[:10] = np.nan  # unlabelled frames do not count
    kps[10:20, 0] = np.nan  # nor do missing keypoints widen the extent
    assert auto_crop_px(kps, (480, 640)) == 192
    with pytest.raises(ValueError, match="crop_px is None"):
        augment_sample(np.zeros((64, 64, 3), np.uint8), kps[20], AugmentConfig(), rng)


def test_outside_the_image_is_the_mean_colour_in_training_and_inference():
    # Outside the frame must look the same to the network in training crops and at inference
    # (where the convolutions zero-pad, i.e. the mean colour after normalisation): a black fill
    # put false keypoints near the frame edges of real videos.
    img = np.full((60, 80, 3), 200, np.uint8)
    cfg = AugmentConfig(crop_px=160, brightness_contrast_prob=1.0, noise_prob=1.0, motion_blur_prob=0.0,
                        occlusion_prob=0.0, random_crop=False, rotation_deg=30)
    s = augment_sample(img, np.array([[40.0, 30.0]]), cfg, np.random.default_rng(3))
    is_fill = (s.image == FILL_RGB).all(axis=2)
    assert is_fill[0, 0] and is_fill[-1, -1] and not is_fill[80, 80]  # corners outside, centre inside
    assert 0.6 < is_fill.mean() < 0.9  # 60x80 of 160x160 is inside, the rest is fill
    assert FILL_RGB == (124, 116, 104)
    padded = pad_to_multiple(img[:50, :70], 32)
    assert padded.shape == (64, 96, 3) and (padded[50:] == FILL_RGB).all() and (padded[:, 70:] == FILL_RGB).all()


def test_flip_swaps_left_and_right():
    img = np.zeros((64, 64, 3), np.uint8)
    kps = np.array([[20.0, 30.0], [40.0, 30.0]])
    cfg = AugmentConfig(crop_px=64, rotation_deg=0, scale_range=(1, 1), flip_prob=1.0, random_crop=False,
                        brightness_contrast_prob=0, noise_prob=0, occlusion_prob=0, motion_blur_prob=0)
    s = augment_sample(img, kps, cfg, np.random.default_rng(0), flip_pairs=[(0, 1)])
    # mirrored about x = 31.5: the right point (40) lands at 23 and becomes channel 0 (left)
    np.testing.assert_allclose(s.keypoints, [[23.0, 30.0], [43.0, 30.0]])


def test_select_frames_uniform_and_kmeans(tmp_path):
    video = _video(tmp_path / "v.avi")
    assert select_frames(video, 5, method="uniform") == [0, 10, 20, 29, 39]
    km = select_frames(video, 2, method="kmeans", seed=0)
    assert len(km) == 2 and (km[0] < 20) != (km[1] < 20)  # one frame from each half
    with pytest.raises(ValueError, match="start"):
        select_frames(video, 2, start=0.8, stop=0.2)


def test_cli_new_and_extract_frames(tmp_path):
    video = _video(tmp_path / "mouse.avi")
    runner = CliRunner()
    res = runner.invoke(app, ["new", str(tmp_path / "proj"), "--bodyparts", "snout,tail", "--videos", str(video),
                              "--skeleton", "snout-tail"])
    assert res.exit_code == 0, res.output
    p = load_project(tmp_path / "proj")
    assert p.config.bodyparts == ["snout", "tail"] and p.config.skeleton == [["snout", "tail"]]
    res = runner.invoke(app, ["extract-frames", str(tmp_path / "proj"), "--n", "3", "--method", "uniform"])
    assert res.exit_code == 0, res.output
    assert sorted(x.name for x in (tmp_path / "proj/labeled-data/mouse").glob("*.png")) == [
        "img0000.png", "img0020.png", "img0039.png"]
    for f in (0, 20, 39):  # each file holds its own frame: the blob of frame i is centred at x = 5 + i
        grey = cv2.imread(str(tmp_path / f"proj/labeled-data/mouse/img{f:04d}.png"), cv2.IMREAD_GRAYSCALE)
        assert np.average(np.arange(64), weights=(grey > 128).sum(axis=0)) == pytest.approx(5 + f, abs=0.5)
    res = runner.invoke(app, ["new", str(tmp_path / "proj"), "--bodyparts", "a"])
    assert res.exit_code != 0 and "exists" in str(res.exception)
