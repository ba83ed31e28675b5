"""pose.pipeline.images / export / inference: the module layering, the pixel convention, and
one Predictor whose frame, image and video paths give the same numbers."""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose.pipeline.images import from_scaled, network_batch, to_scaled

from .pipeline_helpers import make_random_model, write_video

PIPELINE = Path(__file__).resolve().parents[2] / "pose" / "pipeline"


def _imports(module: str) -> set[str]:
    """Every module a pipeline file imports, at the top or inside functions."""
    tree = ast.parse((PIPELINE / f"{module}.py").read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_inference_quantize_evaluate_export_do_not_import_training():
    for module in ("inference", "quantize", "evaluate", "export", "images"):
        assert "pose.pipeline.train" not in _imports(module), module
    assert "pose.pipeline.inference" not in _imports("quantize")
    assert "pose.pipeline.inference" not in _imports("export")
    assert "pose.pipeline.quantize" not in _imports("export")
    assert "cv2" not in _imports("inference")  # no OpenCV video reader beside pose.video


def test_pixel_centre_convention_round_trips():
    xy = np.array([[0.0, 0.0], [10.0, 3.5]])
    np.testing.assert_allclose(to_scaled(xy, 0.5), [[-0.25, -0.25], [4.75, 1.5]])
    np.testing.assert_allclose(to_scaled(xy, 2.0), [[0.5, 0.5], [20.5, 7.5]])  # pixel 0 covers 0..1 at 2x
    for s in (0.25, 0.5, 1.0, 1.5):
        np.testing.assert_allclose(from_scaled(to_scaled(xy, s), s), xy)


def test_network_batch_resizes_and_pads_to_32():
    frames = np.full((2, 50, 70, 3), 200, np.uint8)
    x = network_batch(frames, 1.0)
    assert x.shape == (2, 3, 64, 96) and x.dtype == np.float32
    from pose.pipeline.augment import FILL_RGB

    fill = np.asarray(FILL_RGB, np.float32)[None, :, None, None]
    assert (x[:, :, :50, :70] == 200).all() and (x[:, :, 50:] == fill).all() and (x[:, :, :, 70:] == fill).all()
    assert network_batch(frames, 0.5).shape == (2, 3, 32, 64)  # 25x35 padded


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    pytest.importorskip("torch")
    return make_random_model(tmp_path_factory.mktemp("model") / "m")


def test_predictor_frames_images_video_give_the_same_numbers(random_model, tmp_path):
    import torch

    from pose.pipeline.inference import Predictor
    from pose.video import VideoReader

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (5, 48, 64, 3), dtype=np.uint8)
    pred = Predictor.from_dir(random_model, runtime="torch")
    assert pred.model.root == random_model.resolve() and pred.runtime == "torch"
    by_frames = pred.predict_frames(frames, fps=25.0)
    assert by_frames.sizes["time"] == 5 and list(by_frames.keypoint.values) == pred.info.names
    paths = []
    for i, f in enumerate(frames):  # PNG: lossless
        paths.append(tmp_path / f"f{i}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    by_images = pred.predict_images(paths)
    np.testing.assert_array_equal(by_images.position.values, by_frames.position.values)
    np.testing.assert_array_equal(by_images.confidence.values, by_frames.confidence.values)
    assert list(by_images.image.values) == [str(p) for p in paths]
    # a video: the same numbers as the frames the reader decodes, whatever the batch size
    video = write_video(tmp_path / "v.avi", frames)
    with VideoReader(video) as r:
        decoded = np.stack([r.read(i) for i in range(r.n_frames)])
    expect = pred.predict_frames(decoded).position.values
    ds = pred.predict_video(video, batch_size=2)  # 2 + 2 + 1: a short last batch
    np.testing.assert_allclose(ds.position.values, expect, atol=1e-4)
    assert np.round(ds.time.values * 25).tolist() == [0, 1, 2, 3, 4]
    assert ds.attrs["n_frames_read"] == ds.attrs["n_frames_expected"] == 5 and ds.attrs["video_truncated"] is False
    part = pred.predict_video(video, start=1, stop=3)
    assert np.round(part.time.values * 25).tolist() == [1, 2]
    np.testing.assert_allclose(part.position.values, expect[1:3], atol=1e-4)


def test_predictor_errors_name_the_folder(tmp_path):
    from pose.pipeline.inference import Predictor

    with pytest.raises(FileNotFoundError, match="not a model folder"):
        Predictor.from_dir(tmp_path)
