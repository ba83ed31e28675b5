"""Int8 ONNX model for fast CPU inference (onnxruntime static quantization).

The fp32 ONNX export (``model.onnx``) is quantized to 8-bit integers with onnxruntime:
weights per output channel (int8), activations per tensor (uint8) with ranges calibrated
on the model's own training frames, at the model's input scale. The score-map and offset
heads stay fp32, so the sub-pixel offsets keep their precision. On CPUs with 8-bit dot
product instructions (AVX-512 VNNI / AVX-VNNI, ARM dot product) this runs about twice as
fast as fp32; it costs a little accuracy, which ``ethopose pose evaluate MODEL_DIR
--runtime onnx-int8`` measures (written to ``evaluation_int8.json``, never over the fp32
evaluation).

Importing this module does not import torch (the fp32 export it may trigger does). It sits
beside inference, not below or above it: both use :mod:`pose.pipeline.export`.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from pose.atomic import atomic_path
from pose.pipeline.export import fresh_or_build, onnx_file
from pose.pipeline.images import read_image
from pose.pipeline.modeldir import ModelDir, resolve_model_dir

log = logging.getLogger(__name__)

# Calibration runs the network with every intermediate tensor as an output (~1.5 GB for a
# 640x480 frame), so larger frames are centre-cropped to at most this size.
CALIBRATION_MAX_HW = (480, 640)


def calibration_images(model_dir: str | Path | ModelDir, *, project: str | Path | None = None, n_images: int = 32) -> list[np.ndarray]:
    """Up to ``n_images`` training frames of a model, evenly spaced over its training split,
    resized to the model's input scale, padded to multiples of 32 and centre-cropped to at
    most :data:`CALIBRATION_MAX_HW`, as float32 ``(1, 3, H, W)`` RGB 0-255 arrays (the
    network's input)."""
    from pose.pipeline.augment import pad_to_multiple
    from pose.pipeline.project import load_project
    from pose.pipeline.split import Split

    md = resolve_model_dir(model_dir)
    model_dir, info = md.root, md.info
    root = project or info.project
    if root is None:
        raise ValueError(f"{model_dir}: model.json names no project; pass the project for calibration frames")
    try:
        proj = load_project(root)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{model_dir}: the int8 model is calibrated on the training frames, but the project is not "
            f"found ({err}); pass --project, or run `ethopose pose export-onnx {model_dir} --int8` where the "
            "project is and copy model_int8.onnx with the model"
        ) from err
    train = Split.load(md.split_json).train
    if not train:
        raise ValueError(f"{model_dir}: no training frames in split.json to calibrate the int8 model on")
    picks = np.unique(np.linspace(0, len(train) - 1, min(n_images, len(train))).round().astype(int))
    out = []
    for i in picks:
        img = pad_to_multiple(read_image(proj.root / train[i], info.scale), 32)
        (h, w), (max_h, max_w) = img.shape[:2], CALIBRATION_MAX_HW
        top, left = max(0, (h - max_h) // 2), max(0, (w - max_w) // 2)
        img = img[top : top + max_h, left : left + max_w]
        out.append(np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32))
    return out


class _Frames:
    """An onnxruntime calibration data reader (duck-typed): one frame per call, then None."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self._it = iter(frames)

    def get_next(self) -> dict | None:
        x = next(self._it, None)
        return None if x is None else {"image": x}


def _head_nodes(onnx_path: Path) -> list[str]:
    """Names of the nodes whose outputs are the graph outputs (the two 1x1 head convs)."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    outputs = {o.name for o in graph.output}
    return [n.name for n in graph.node if set(n.output) & outputs]


def quantize_onnx(fp32_path: str | Path, out_path: str | Path, frames: list[np.ndarray]) -> Path:
    """Quantize an fp32 pose ONNX file to int8 (QDQ, per-channel int8 weights, uint8
    activations with min-max ranges over ``frames``; the output heads stay fp32); the file
    is written atomically."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not frames:
        raise ValueError("int8 calibration needs at least one frame")
    with tempfile.TemporaryDirectory() as tmpdir, atomic_path(out_path) as tmp:
        pre = Path(tmpdir) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(tmp), _Frames(frames), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=_head_nodes(pre),
        )
    return Path(out_path)


def quantize_model(
    model_dir: str | Path | ModelDir, *, project: str | Path | None = None, n_images: int = 32,
    out_path: str | Path | None = None,
) -> Path:
    """Write ``MODEL_DIR/model_int8.onnx`` (atomically) and return its path.

    Parameters
    ----------
    model_dir
        A trained model folder; its fp32 ONNX file is exported first when missing or older
        than the weights.
    project
        The project whose training frames calibrate the activation ranges (default: the
        one recorded in ``model.json``).
    n_images
        How many training frames to calibrate on.
    out_path
        Where to write (default ``MODEL_DIR/model_int8.onnx``).
    """
    md = resolve_model_dir(model_dir)
    frames = calibration_images(md, project=project, n_images=n_images)
    out = quantize_onnx(onnx_file(md), out_path or md.int8_onnx, frames)
    log.info("%s: int8 model calibrated on %d training frames -> %s", md.root, len(frames), out)
    return out


def int8_onnx_file(model_dir: str | Path | ModelDir) -> Path:
    """The model's int8 ONNX file, quantized first (calibrated on the training frames) when
    missing or older than ``weights.pt``."""
    md = resolve_model_dir(model_dir)
    return fresh_or_build(md, md.int8_onnx, quantize_model)
