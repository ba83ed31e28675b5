"""Run a trained model on images and videos; export it to ONNX.

Public functions (used by ``pose.refine`` and the CLI):

- :func:`load_predictor` -> :class:`Predictor` (``.predict(frames)`` on RGB uint8 batches),
- :func:`predict_images` -> pose Dataset with an ``image`` coordinate,
- :func:`predict_video` -> pose Dataset (streaming decode in a background thread, batched),
- :func:`analyze_videos` -> writes ``.nc`` + DeepLabCut ``.h5``/``.csv`` per video,
- :func:`export_onnx` -> ``MODEL_DIR/model.onnx``.

Runtimes: ``"torch"``, ``"onnx"`` (onnxruntime, CPU) or ``"onnx-int8"`` (onnxruntime with
the int8 model of :mod:`pose.pipeline.quantize`: about twice as fast on CPU, slightly less
accurate: measure with ``ethopose pose evaluate --runtime onnx-int8``). ``"auto"`` =
onnxruntime fp32 on CPU (measured faster on 2 CPU cores by ``bench/pose_openfield.py``)
and torch on CUDA.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from pose.atomic import atomic_path
from pose.dataset import append_history, from_numpy
from pose.pipeline.modeldir import INT8_ONNX, ONNX, WEIGHTS, ModelInfo

log = logging.getLogger(__name__)

Runtime = Literal["auto", "torch", "onnx", "onnx-int8"]
RUNTIMES: tuple[str, ...] = ("auto", "torch", "onnx", "onnx-int8")


class Predictor:
    """A loaded model: ``predict(frames)`` maps RGB uint8 ``(B, H, W, 3)`` frames at the
    original resolution to keypoints ``(B, C, 2)`` (original pixels) and confidence ``(B, C)``."""

    def __init__(self, model_dir: str | Path, *, device: str = "auto", runtime: Runtime = "auto") -> None:
        import torch

        from pose.pipeline.train import resolve_device

        self.model_dir = Path(model_dir)
        self.info = ModelInfo.load(self.model_dir)
        self.device = resolve_device(device)
        if runtime == "auto":
            runtime = "onnx" if self.device.type == "cpu" and _has_onnxruntime() else "torch"
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; choose one of {RUNTIMES}")
        if runtime.startswith("onnx") and self.device.type != "cpu":
            raise ValueError(f"the {runtime} runtime runs on CPU only; use --runtime torch on CUDA")
        self.runtime = runtime
        # decoding keeps keypoints on the body (network pixels; see pose.pipeline.model.decode)
        self._body_radius = self.info.body_radius_px * self.info.scale if self.info.body_radius_px else None
        self._groups = self.info.individual_channels()
        if runtime.startswith("onnx"):
            path = onnx_file(self.model_dir, int8=runtime == "onnx-int8")
            self._session = _onnx_session(path, torch.get_num_threads())
        else:
            self.model = _fold_batchnorm(_load_torch_model(self.model_dir, self.info, self.device))

    def predict(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from pose.pipeline.augment import pad_to_multiple
        from pose.pipeline.model import decode
        from pose.pipeline.train import from_scaled, resize

        scale = self.info.scale
        batch = np.stack([pad_to_multiple(resize(f, scale), 32) for f in frames])
        x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
        heat, offs = self._forward(x)
        xy, conf = decode(heat, offs, self.info.stride, body_radius=self._body_radius, groups=self._groups)
        return from_scaled(xy, scale), conf

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.runtime.startswith("onnx"):
            heat, offs = self._session.run(None, {"image": x})
            return heat, offs
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device).contiguous(memory_format=torch.channels_last)
            if self.device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    heat, offs = self.model(t)
            else:
                heat, offs = self.model(t)
            return heat.float().cpu().numpy(), offs.float().cpu().numpy()


def load_predictor(model_dir: str | Path, *, device: str = "auto", runtime: Runtime = "auto") -> Predictor:
    """Load a trained model for inference (see :class:`Predictor`)."""
    return Predictor(model_dir, device=device, runtime=runtime)


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _load_torch_model(model_dir: Path, info: ModelInfo, device):
    import torch

    from pose.pipeline.model import PoseNet

    model = PoseNet(len(info.names), backbone=info.backbone, stride=info.stride,  # type: ignore[arg-type]
                    neck_channels=info.neck_channels, pretrained=False)
    weights = model_dir / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{model_dir}: no {WEIGHTS} (is training finished?)")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    # channels-last: about 20% faster on CPU too (measured, EfficientNet-Lite0, 1 thread)
    return model.eval().to(device).to(memory_format=torch.channels_last)


def _fold_batchnorm(model):
    """Fold each batch norm into the convolution before it (torch.fx): same outputs, about
    1.5x faster eager inference on CPU (measured at 640x480, 2 threads). The model is
    returned unchanged when it cannot be traced."""
    import torch
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(model).to(memory_format=torch.channels_last)
    except Exception as err:  # noqa: BLE001 - tracing limits of torch.fx; inference still works
        log.debug("batch-norm folding skipped: %s", err)
        return model


def export_onnx(model_dir: str | Path, out_path: str | Path | None = None) -> Path:
    """Export a model to ONNX (input ``image``: float32 ``(B, 3, H, W)`` RGB 0-255, dynamic
    batch and size, H and W multiples of 32; outputs ``heatmap`` and ``offsets``)."""
    import torch

    model_dir = Path(model_dir)
    info = ModelInfo.load(model_dir)
    model = _load_torch_model(model_dir, info, torch.device("cpu"))
    out_path = Path(out_path) if out_path else model_dir / ONNX
    dummy = torch.zeros(1, 3, 256, 256)
    with atomic_path(out_path) as tmp:
        torch.onnx.export(
            model, (dummy,), str(tmp), input_names=["image"], output_names=["heatmap", "offsets"],
            dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                          "heatmap": {0: "batch", 2: "h", 3: "w"}, "offsets": {0: "batch", 2: "h", 3: "w"}},
            opset_version=17, dynamo=False,
        )
    return out_path


def onnx_file(model_dir: str | Path, *, int8: bool = False) -> Path:
    """The model's ONNX file (``model.onnx``, or ``model_int8.onnx`` when ``int8``), written
    first when missing or older than ``weights.pt``; into a temporary folder when the model
    folder is read-only."""
    from pose.pipeline.quantize import quantize_model

    model_dir = Path(model_dir)
    path = model_dir / (INT8_ONNX if int8 else ONNX)
    weights = model_dir / WEIGHTS
    if path.is_file() and weights.is_file() and path.stat().st_mtime >= weights.stat().st_mtime:
        return path
    build = quantize_model if int8 else export_onnx
    try:
        return build(model_dir)
    except PermissionError:
        import tempfile

        return build(model_dir, out_path=Path(tempfile.mkdtemp()) / path.name)


def _onnx_session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _to_dataset(xy: np.ndarray, conf: np.ndarray, info: ModelInfo, **kwargs) -> xr.Dataset:
    """(T, C, 2) channel keypoints -> pose Dataset (time, space, keypoint, individual)."""
    n_ind = len(info.individuals)
    kps = info.bodyparts if n_ind > 1 else info.names
    n_kp = len(info.names) // n_ind
    pos = xy.reshape(len(xy), n_ind, n_kp, 2).transpose(0, 3, 2, 1)
    c = conf.reshape(len(conf), n_ind, n_kp).transpose(0, 2, 1)
    return from_numpy(pos, c, keypoints=kps[:n_kp], individuals=info.individuals,
                      source_software="ethopose", **kwargs)


def predict_images(
    model_dir: str | Path, images: Sequence[str | Path], *, device: str = "auto",
    runtime: Runtime = "auto", predictor: Predictor | None = None,
) -> xr.Dataset:
    """Predict keypoints on image files.

    Returns a pose Dataset with one row per image and an ``image`` coordinate on ``time``
    holding the paths as given.
    """
    from pose.pipeline.train import read_image

    pred = predictor or load_predictor(model_dir, device=device, runtime=runtime)
    xys, confs = [], []
    for path in images:  # one at a time: images may differ in size
        xy, conf = pred.predict(read_image(path)[None])
        xys.append(xy[0])
        confs.append(conf[0])
    ds = _to_dataset(np.array(xys), np.array(confs), pred.info)
    ds = ds.assign_coords(image=("time", [str(p) for p in images]))
    return append_history(ds, "predict_images", {"model_dir": str(model_dir), "n_images": len(images)})


class _CvReader:
    """OpenCV fallback with the ``pose.video.VideoReader`` interface used here."""

    def __init__(self, path: str | Path) -> None:
        import cv2

        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise FileNotFoundError(f"cannot open video {path}")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or None
        self.n_frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))

    def iter_batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        self._cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        i, buf = start, []
        while stop is None or i < stop:
            ok, frame = self._cap.read()
            if not ok:
                break
            buf.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            i += 1
            if len(buf) == batch_size:
                yield i - len(buf), np.stack(buf)
                buf = []
        if buf:
            yield i - len(buf), np.stack(buf)

    def close(self) -> None:
        self._cap.release()


def open_video(path: str | Path):
    """``pose.video.VideoReader`` when available, else an OpenCV reader."""
    try:
        from pose.video import VideoReader

        return VideoReader(path)
    except ImportError:  # PyAV missing: OpenCV decodes too
        return _CvReader(path)


def _background(it: Iterator, depth: int = 4) -> Iterator:
    """Run an iterator in a thread, buffering ``depth`` items (decode overlaps inference)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    end = object()

    def work() -> None:
        try:
            for item in it:
                q.put(item)
        except BaseException as err:  # re-raised in the consumer
            q.put(err)
        q.put(end)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not end:
        if isinstance(item, BaseException):
            raise item
        yield item


def predict_video(
    model_dir: str | Path, video_path: str | Path, *, batch_size: int = 8, device: str = "auto",
    runtime: Runtime = "auto", start: int = 0, stop: int | None = None, predictor: Predictor | None = None,
) -> xr.Dataset:
    """Predict keypoints on every frame of a video (frames ``start``..``stop``).

    Returns
    -------
    xarray.Dataset
        Pose Dataset, ``time`` in seconds (frame / fps), confidence = sigmoid peak in 0-1,
        attrs ``video_path`` and a ``predict_video`` history record.
    """
    from tqdm.auto import tqdm

    pred = predictor or load_predictor(model_dir, device=device, runtime=runtime)
    reader = open_video(video_path)
    total = (stop or reader.n_frames or 0) - start
    xys, confs, frames = [], [], []
    try:
        with tqdm(total=total or None, desc=Path(video_path).name, unit="frame") as bar:
            for first, batch in _background(reader.iter_batches(batch_size, start=start, stop=stop)):
                xy, conf = pred.predict(batch)
                xys.append(xy)
                confs.append(conf)
                frames.extend(range(first, first + len(batch)))
                bar.update(len(batch))
    finally:
        if hasattr(reader, "close"):
            reader.close()
    if not frames:
        raise ValueError(f"{video_path}: no frames decoded")
    ds = _to_dataset(np.concatenate(xys), np.concatenate(confs), pred.info, fps=reader.fps,
                     video_path=str(video_path), frame_index=frames)
    ds.attrs["model_dir"] = str(model_dir)
    return append_history(ds, "predict_video", {"model_dir": str(model_dir), "runtime": pred.runtime,
                                                "batch_size": batch_size})


FORMATS = ("h5", "csv", "nc")


def output_paths(
    model_dir: str | Path, video: str | Path, out_dir: str | Path | None = None, formats: Sequence[str] = FORMATS
) -> dict[str, Path]:
    """Where :func:`analyze_videos` writes a video's results (DeepLabCut-style names)."""
    video = Path(video)
    folder = Path(out_dir) if out_dir else video.parent
    stem = f"{video.stem}DLC_ethopose_{Path(model_dir).resolve().name}"
    bad = sorted(set(formats) - set(FORMATS))
    if bad:
        raise ValueError(f"unknown output formats {bad}; choose from {FORMATS}")
    return {s: folder / f"{stem}.{s}" for s in FORMATS if s in formats}


def analyze_videos(
    model_dir: str | Path, videos: Sequence[str | Path], *, out_dir: str | Path | None = None,
    overwrite: bool = False, batch_size: int = 8, device: str = "auto", runtime: Runtime = "auto",
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Predict each video and write ``.h5``/``.csv`` (DeepLabCut layout) and ``.nc``.

    Videos whose outputs (in ``formats``) all exist are skipped unless ``overwrite``. Each
    file is written atomically after the whole video is done, the ``.nc`` last, so an
    interrupted run never leaves outputs that look complete. Returns the last-written path
    of each video (the ``.nc`` by default).
    """
    import pose.io

    pred = None
    done = []
    for video in videos:
        paths = output_paths(model_dir, video, out_dir, formats)
        if not overwrite and all(p.is_file() for p in paths.values()):
            log.info("%s: already analysed (%s); use --overwrite to redo", video, list(paths.values())[-1])
            done.append(list(paths.values())[-1])
            continue
        pred = pred or load_predictor(model_dir, device=device, runtime=runtime)
        ds = predict_video(model_dir, video, batch_size=batch_size, predictor=pred)
        ds.attrs["scorer"] = f"ethopose_{Path(model_dir).resolve().name}"
        for path in paths.values():
            with atomic_path(path) as tmp:
                pose.io.save(ds, tmp)
        log.info("%s -> %s", video, list(paths.values()))
        done.append(list(paths.values())[-1])
    return done
