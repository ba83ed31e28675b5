"""Run a trained model on frames, images and videos: one object, :class:`Predictor`.

::

    pred = Predictor.from_dir(MODEL_DIR, runtime="auto", threads=2)
    ds = pred.predict_video("session.mp4")        # pose Dataset (time, space, keypoint, individual)
    ds = pred.predict_frames(rgb_uint8_frames)    # (B, H, W, 3) -> pose Dataset
    ds = pred.predict_images(["a.png", "b.png"])  # pose Dataset with an ``image`` coordinate

:func:`analyze_videos` (``ethopose pose analyze``) writes ``.nc`` + DeepLabCut ``.h5``/``.csv``
per video, goes on past a video that fails, and returns what was written and what failed.
The module-level :func:`predict_video` / :func:`predict_images` / :func:`load_predictor`
are shorthands for the methods (same code path).

Runtimes: ``"torch"``, ``"onnx"`` (onnxruntime, CPU) or ``"onnx-int8"`` (onnxruntime with
the int8 model of :mod:`pose.pipeline.quantize`: about twice as fast on CPU, slightly less
accurate: measure with ``ethopose pose evaluate --runtime onnx-int8``). ``"auto"`` =
onnxruntime fp32 on CPU (measured faster on 2 CPU cores by ``bench/pose_openfield.py``)
and torch on CUDA. Videos are read with :class:`pose.video.VideoReader` (frame-accurate;
decoding overlaps inference in a background thread).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from pose.atomic import atomic_path
from pose.dataset import append_history, from_numpy
from pose.pipeline.export import load_torch_model, onnx_file
from pose.pipeline.images import from_scaled, network_batch, read_image, resolve_device
from pose.pipeline.modeldir import ModelDir, resolve_model_dir
from pose.video import VideoDecodeError, VideoError, VideoReader

log = logging.getLogger(__name__)

Runtime = Literal["auto", "torch", "onnx", "onnx-int8"]
RUNTIMES: tuple[str, ...] = ("auto", "torch", "onnx", "onnx-int8")


class Predictor:
    """A loaded model. Build it with :meth:`from_dir`.

    Attributes
    ----------
    model : ModelDir
        The model folder (absolute path + ``model.json``), resolved once.
    runtime : str
        The runtime in use (``"auto"`` resolved).
    """

    def __init__(self, model: ModelDir, *, runtime: Runtime = "auto", device: str = "auto",
                 threads: int | None = None) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; choose one of {RUNTIMES}")
        self.model = model
        self.info = model.info
        if runtime.startswith("onnx") and device == "auto":
            device = "cpu"  # no need to ask torch
        self.device = resolve_device(device) if device != "cpu" else None
        on_cpu = self.device is None or self.device.type == "cpu"
        if runtime == "auto":
            runtime = "onnx" if on_cpu and _has_onnxruntime() else "torch"
        if runtime.startswith("onnx") and not on_cpu:
            raise ValueError(f"the {runtime} runtime runs on CPU only; use --runtime torch on CUDA")
        self.runtime = runtime
        # decoding keeps keypoints on the body (network pixels; see pose.pipeline.model.decode)
        self._body_radius = self.info.body_radius_px * self.info.scale if self.info.body_radius_px else None
        self._groups = self.info.individual_channels()
        # and checks each peak against the mean body shape learnt from the training labels
        self.use_shape_prior = self.info.shape_prior is not None
        if runtime.startswith("onnx"):
            if runtime == "onnx-int8":
                from pose.pipeline.quantize import int8_onnx_file

                path = int8_onnx_file(model)
            else:
                path = onnx_file(model)
            self._session = _onnx_session(path, _default_threads(threads))
        else:
            import torch

            if threads:
                torch.set_num_threads(threads)
            self.device = self.device or torch.device("cpu")
            self._net = fold_batchnorm(load_torch_model(model, self.device))

    @classmethod
    def from_dir(cls, model_dir: str | Path | ModelDir, *, runtime: Runtime = "auto", device: str = "auto",
                 threads: int | None = None) -> Predictor:
        """Load the model in ``model_dir`` for inference.

        Parameters
        ----------
        model_dir
            A folder written by ``ethopose pose train`` (or an opened :class:`ModelDir`).
        runtime
            ``auto``, ``torch``, ``onnx`` or ``onnx-int8`` (see the module docstring); the
            ONNX files are written into the folder on first use.
        device
            ``auto``, ``cpu`` or ``cuda`` (torch runtime only on CUDA).
        threads
            CPU threads (default: torch's setting when torch is loaded, else onnxruntime's).
        """
        return cls(resolve_model_dir(model_dir), runtime=runtime, device=device, threads=threads)

    # -- arrays --------------------------------------------------------------------------
    def predict_keypoints(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 ``(B, H, W, 3)`` frames at the original resolution -> keypoints
        ``(B, C, 2)`` in original pixels and confidence ``(B, C)`` (sigmoid peak, 0-1), one
        channel per ``info.names``."""
        from pose.pipeline.model import decode

        heat, offs = self._forward(network_batch(frames, self.info.scale))
        xy, conf = decode(heat, offs, self.info.stride, body_radius=self._body_radius, groups=self._groups,
                          shape_prior=self.info.shape_prior if self.use_shape_prior else None)
        return from_scaled(xy, self.info.scale), conf

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.runtime.startswith("onnx"):
            heat, offs = self._session.run(None, {"image": x})
            return heat, offs
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                heat, offs = self._net(t)
            return heat.float().cpu().numpy(), offs.float().cpu().numpy()

    # -- Datasets ------------------------------------------------------------------------
    def predict_frames(self, frames: np.ndarray, *, fps: float | None = None,
                       frame_index: Sequence[int] | None = None) -> xr.Dataset:
        """Predict keypoints on RGB uint8 frames ``(B, H, W, 3)``.

        Returns
        -------
        xarray.Dataset
            Pose Dataset with one ``time`` row per frame (seconds when ``fps`` is given).
        """
        xy, conf = self.predict_keypoints(np.asarray(frames))
        ds = self._to_dataset(xy, conf, fps=fps, frame_index=frame_index)
        return append_history(ds, "predict_frames", {"model_dir": str(self.model.root), "n_frames": len(xy)})

    def predict_images(self, images: Sequence[str | Path]) -> xr.Dataset:
        """Predict keypoints on image files (which may differ in size).

        Returns a pose Dataset with one row per image and an ``image`` coordinate on
        ``time`` holding the paths as given.
        """
        xys, confs = [], []
        for path in images:  # one at a time: images may differ in size
            xy, conf = self.predict_keypoints(read_image(path)[None])
            xys.append(xy[0])
            confs.append(conf[0])
        ds = self._to_dataset(np.array(xys), np.array(confs))
        ds = ds.assign_coords(image=("time", [str(p) for p in images]))
        return append_history(ds, "predict_images", {"model_dir": str(self.model.root), "n_images": len(images)})

    def predict_video(self, video: str | Path, *, batch_size: int = 8, start: int = 0,
                      stop: int | None = None) -> xr.Dataset:
        """Predict keypoints on frames ``start..stop-1`` of a video (default: all).

        Returns
        -------
        xarray.Dataset
            Pose Dataset, ``time`` in seconds (frame index / fps), confidence = sigmoid peak in 0-1; attrs ``video_path``, ``model_dir``,
            ``n_frames_expected`` (the container's frame count, or the frames present when
            it lists none), ``n_frames_read`` and ``video_truncated`` (the file holds fewer
            frames than its header lists: the rest of the recording is missing), and a
            ``predict_video`` history record.

        Raises
        ------
        pose.video.VideoError
            The video cannot be opened or a frame cannot be decoded (names file and frame).

        Warns
        -----
        UserWarning
            Truncated video (from :class:`~pose.video.VideoReader`).
        """
        xy, conf, frames, reader = predict_video_frames(self.predict_keypoints, video, batch_size=batch_size,
                                                        start=start, stop=stop)
        ds = self._to_dataset(xy, conf, fps=reader.fps, video_path=str(video), frame_index=frames)
        ds.attrs.update(model_dir=str(self.model.root), **video_completeness(reader, len(frames)))
        return append_history(ds, "predict_video", {"model_dir": str(self.model.root), "runtime": self.runtime,
                                                    "batch_size": batch_size, "start": start, "stop": stop})

    def _to_dataset(self, xy: np.ndarray, conf: np.ndarray, **kwargs) -> xr.Dataset:
        """(T, C, 2) channel keypoints -> pose Dataset (time, space, keypoint, individual)."""
        info = self.info
        n_ind = len(info.individuals)
        kps = info.bodyparts if n_ind > 1 else info.names
        n_kp = len(info.names) // n_ind
        pos = xy.reshape(len(xy), n_ind, n_kp, 2).transpose(0, 3, 2, 1)
        c = conf.reshape(len(conf), n_ind, n_kp).transpose(0, 2, 1)
        return from_numpy(pos, c, keypoints=kps[:n_kp], individuals=info.individuals,
                          source_software="ethopose", **kwargs)


def predict_video_frames(predict_batch: Callable[[np.ndarray], tuple], video: str | Path, *, batch_size: int = 8,
                         start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray, list[int], VideoReader]:
    """Run ``predict_batch`` over frames ``start..stop-1`` of a video, with a progress bar.

    ``predict_batch(frames)`` returns ``(xy, conf, ...)`` for a ``(batch, h, w, 3)`` array (extra
    outputs are dropped). A truncated file ends at its cut (:func:`_batches_to_the_cut`).

    Returns
    -------
    tuple
        ``xy`` and ``conf`` concatenated over the batches, the frame indices read, and the
        (closed) reader, whose ``fps`` and counts describe the file.

    Raises
    ------
    pose.video.VideoError
        The video cannot be opened, a frame cannot be decoded, or the range holds no frame.
    """
    from tqdm.auto import tqdm

    xys, confs, frames = [], [], []
    with VideoReader(video) as reader:
        last = reader.n_frames if stop is None else min(stop, reader.n_frames)
        with tqdm(total=max(0, last - start) or None, desc=Path(video).name, unit="frame") as bar:
            for first, batch in _batches_to_the_cut(reader, batch_size, start, last):
                out = predict_batch(batch)
                xys.append(out[0])
                confs.append(out[1])
                frames.extend(range(first, first + len(batch)))
                bar.update(len(batch))
    if not frames:
        raise VideoError(f"{video}: no frames in the range {start}..{stop}")
    return np.concatenate(xys), np.concatenate(confs), frames, reader


def _batches_to_the_cut(reader: VideoReader, batch_size: int, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
    """``reader.iter_batches`` (decoding ahead in a thread), except in a truncated file: there
    a frame that cannot be decoded ends the video (the frames before it, in the failing
    batch, are decoded one by one). In a complete file a decode error is raised."""
    next_frame = None
    try:
        for first, batch in reader.iter_batches(batch_size, start=start, stop=stop, prefetch=4):
            next_frame = first + len(batch)
            yield first, batch
        return
    except VideoDecodeError as err:
        if reader.n_frames_header <= reader.n_frames:
            raise
        log.warning("%s: truncated file: decoding ends at the cut (%s)", reader.path, err)
    for i in range(start if next_frame is None else next_frame, stop):
        try:
            frame = reader.read(i)
        except VideoDecodeError:
            return
        yield i, frame[None]


def video_completeness(reader: VideoReader, n_read: int) -> dict:
    """``n_frames_expected``, ``n_frames_read`` and ``video_truncated`` for a video's output.

    ``n_frames_expected`` is the frame count the container's header lists (the frames
    present when it lists none); ``video_truncated`` is True when the file holds fewer
    frames than that (e.g. a recording cut off while an mp4 with its index at the front
    was being written).
    """
    header = int(reader.n_frames_header or 0)
    expected = max(header, reader.n_frames)
    return {"n_frames_expected": expected, "n_frames_read": int(n_read), "video_truncated": header > reader.n_frames}


def load_predictor(model_dir: str | Path | ModelDir, *, device: str = "auto", runtime: Runtime = "auto") -> Predictor:
    """Shorthand for :meth:`Predictor.from_dir`."""
    return Predictor.from_dir(model_dir, device=device, runtime=runtime)


def predict_images(model_dir: str | Path | ModelDir, images: Sequence[str | Path], *, device: str = "auto",
                   runtime: Runtime = "auto") -> xr.Dataset:
    """Shorthand for ``Predictor.from_dir(model_dir).predict_images(images)``."""
    return Predictor.from_dir(model_dir, device=device, runtime=runtime).predict_images(images)


def predict_video(model_dir: str | Path | ModelDir, video: str | Path, *, batch_size: int = 8,
                  device: str = "auto", runtime: Runtime = "auto", start: int = 0,
                  stop: int | None = None) -> xr.Dataset:
    """Shorthand for ``Predictor.from_dir(model_dir).predict_video(video)``."""
    pred = Predictor.from_dir(model_dir, device=device, runtime=runtime)
    return pred.predict_video(video, batch_size=batch_size, start=start, stop=stop)


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _default_threads(threads: int | None) -> int:
    if threads:
        return threads
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else 0  # 0: onnxruntime's choice


def fold_batchnorm(model):
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


def _onnx_session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


# -- writing results (``ethopose pose analyze``) ----------------------------------------------
FORMATS = ("h5", "csv", "nc")


def output_paths(
    model_dir: str | Path | ModelDir, video: str | Path, out_dir: str | Path | None = None,
    formats: Sequence[str] = FORMATS,
) -> dict[str, Path]:
    """Where :func:`analyze_videos` writes a video's results (DeepLabCut-style names)."""
    video = Path(video)
    folder = Path(out_dir) if out_dir else video.parent
    name = model_dir.name if isinstance(model_dir, ModelDir) else Path(model_dir).resolve().name
    stem = f"{video.stem}DLC_ethopose_{name}"
    bad = sorted(set(formats) - set(FORMATS))
    if bad:
        raise ValueError(f"unknown output formats {bad}; choose from {FORMATS}")
    return {s: folder / f"{stem}.{s}" for s in FORMATS if s in formats}


@dataclass
class AnalyzeResult:
    """What :func:`analyze_videos` did: the last-written file of each analysed (or already
    done) video, the truncated videos among them, and ``(video, message)`` per failure.
    Iterating (or indexing) it gives ``done``."""

    done: list[Path] = field(default_factory=list)
    truncated: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.done)

    def __len__(self) -> int:
        return len(self.done)

    def __getitem__(self, i: int) -> Path:
        return self.done[i]


def analyze_videos(
    model_dir: str | Path | ModelDir, videos: Sequence[str | Path], *, out_dir: str | Path | None = None,
    overwrite: bool = False, batch_size: int = 8, device: str = "auto", runtime: Runtime = "auto",
    formats: Sequence[str] = FORMATS, threads: int | None = None, predictor: Predictor | None = None,
) -> AnalyzeResult:
    """Predict each video and write ``.h5``/``.csv`` (DeepLabCut layout) and ``.nc``.

    Videos whose outputs (in ``formats``) all exist are skipped unless ``overwrite``. Each
    file is written atomically after the whole video is done, the ``.nc`` last, so an
    interrupted run never leaves outputs that look complete. A video that cannot be read
    (missing, not a video, corrupt frames) is logged and listed in ``failed``; the others
    are still analysed. A truncated video is analysed (its frames are real), its outputs
    marked (``video_truncated`` in the ``.nc`` attrs) and listed in ``truncated``.
    """
    import pose.io

    md = predictor.model if predictor else resolve_model_dir(model_dir)
    result = AnalyzeResult()
    pred = predictor
    for video in map(Path, videos):
        paths = output_paths(md, video, out_dir, formats)
        if not overwrite and all(p.is_file() for p in paths.values()):
            log.info("%s: already analysed (%s); use --overwrite to redo", video, list(paths.values())[-1])
            result.done.append(list(paths.values())[-1])
            continue
        pred = pred or Predictor.from_dir(md, device=device, runtime=runtime, threads=threads)
        try:
            ds = pred.predict_video(video, batch_size=batch_size)
        except VideoError as err:
            log.error("%s: not analysed: %s", video, err)
            result.failed.append((video, str(err)))
            continue
        ds.attrs["scorer"] = md.scorer
        if ds.attrs["video_truncated"]:
            log.warning("%s: truncated video: %d of the %d frames its header lists were analysed",
                        video, ds.attrs["n_frames_read"], ds.attrs["n_frames_expected"])
            result.truncated.append(video)
        for path in paths.values():
            with atomic_path(path) as tmp:
                pose.io.save(ds, tmp)
        log.info("%s -> %s", video, list(paths.values()))
        result.done.append(list(paths.values())[-1])
    return result
