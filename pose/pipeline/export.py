"""A trained model's network: its torch weights and its fp32 ONNX export.

- :func:`load_torch_model`: ``weights.pt`` -> an eval-mode, channels-last ``PoseNet``,
- :func:`export_onnx`: ``MODEL_DIR/model.onnx`` (input ``image``: float32 ``(B, 3, H, W)``
  RGB 0-255, dynamic batch and size, H and W multiples of 32; outputs ``heatmap`` and
  ``offsets``),
- :func:`onnx_file`: the fp32 ONNX file, exported first when missing or older than the
  weights (the int8 file is :func:`pose.pipeline.quantize.int8_onnx_file`).

Below inference and quantization, which both use it; importing it does not import torch.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from pose.atomic import atomic_path
from pose.pipeline.modeldir import WEIGHTS, ModelDir, resolve_model_dir

log = logging.getLogger(__name__)


def load_torch_model(model_dir: str | Path | ModelDir, device=None):
    """The model's network with its trained weights, in eval mode, channels-last, on
    ``device`` (a ``torch.device``; default CPU).

    Raises
    ------
    FileNotFoundError
        No ``weights.pt`` (training not finished its first epoch).
    """
    import torch

    from pose.pipeline.model import PoseNet

    md = resolve_model_dir(model_dir)
    info = md.info
    model = PoseNet(len(info.names), backbone=info.backbone, stride=info.stride,  # type: ignore[arg-type]
                    neck_channels=info.neck_channels, pretrained=False, anchor_sigma_px=info.anchor_sigma_px)
    if not md.weights.is_file():
        raise FileNotFoundError(f"{md.root}: no {WEIGHTS} (is training finished?)")
    model.load_state_dict(torch.load(md.weights, map_location="cpu", weights_only=True))
    # channels-last: about 20% faster on CPU too (measured, EfficientNet-Lite0, 1 thread)
    return model.eval().to(device or torch.device("cpu")).to(memory_format=torch.channels_last)


def export_onnx(model_dir: str | Path | ModelDir, out_path: str | Path | None = None) -> Path:
    """Export a model to ONNX (see the module docstring for the graph's inputs and outputs);
    written atomically to ``out_path`` (default ``MODEL_DIR/model.onnx``)."""
    import torch

    md = resolve_model_dir(model_dir)
    model = load_torch_model(md)
    out_path = Path(out_path) if out_path else md.onnx
    dummy = torch.zeros(1, 3, 256, 256)
    with atomic_path(out_path) as tmp:
        torch.onnx.export(
            model, (dummy,), str(tmp), input_names=["image"], output_names=["heatmap", "offsets"],
            dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                          "heatmap": {0: "batch", 2: "h", 3: "w"}, "offsets": {0: "batch", 2: "h", 3: "w"}},
            opset_version=17, dynamo=False,
        )
    return out_path


def fresh_or_build(md: ModelDir, path: Path, build: Callable[..., Path]) -> Path:
    """``path`` when it exists and is not older than the weights; else ``build(md)`` (which
    writes it), or ``build(md, out_path=...)`` into a temporary folder when the model folder
    is read-only."""
    if path.is_file() and md.weights.is_file() and path.stat().st_mtime >= md.weights.stat().st_mtime:
        return path
    try:
        return build(md)
    except PermissionError:
        out = Path(tempfile.mkdtemp()) / path.name
        log.info("%s is read-only: writing %s", md.root, out)
        return build(md, out_path=out)


def onnx_file(model_dir: str | Path | ModelDir) -> Path:
    """The model's fp32 ONNX file, exported first when missing or older than ``weights.pt``."""
    md = resolve_model_dir(model_dir)
    return fresh_or_build(md, md.onnx, export_onnx)
