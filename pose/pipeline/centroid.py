"""Centroid model of the top-down multi-animal pipeline (SLEAP's "centroid" stage).

One score map over the whole (down-scaled) frame with a peak at the centre of every animal,
whatever its identity: the network does not have to tell two same-coat animals apart, only
find them. Targets are the maximum of one Gaussian per labelled animal; the offsets of a
cell point to the nearest animal's centre. Peaks are decoded as local maxima
(non-maximum suppression within ``nms_radius_px`` of each other), the strongest first.

The backbone, neck, heads, loss and augmentation are the single-animal pipeline's
(:class:`pose.pipeline.model.PoseNet` with one channel, :func:`pose.pipeline.model.pose_loss`,
:func:`pose.pipeline.augment.augment_sample` with the centres as its "keypoints").

torch is imported inside the functions that need it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pose.atomic import atomic_path, write_text_atomic
from pose.pipeline.augment import AugmentConfig, augment_sample
from pose.pipeline.centroid_peaks import find_peaks, split_merged_peaks
from pose.pipeline.images import from_scaled, network_batch, to_scaled

log = logging.getLogger(__name__)

CENTROID_JSON = "centroid.json"
CENTROID_WEIGHTS = "weights.pt"
CENTROID_ONNX = "centroid.onnx"
CENTROID_CHECKPOINT = "checkpoint.pt"
# network pixels of the animal's extent at the centroid model's input: finding an animal
# needs far less detail than placing its paws (SLEAP runs centroid models at 0.25-0.5 scale)
CENTROID_EXTENT_PX = 40.0


class CentroidConfig(BaseModel):
    """The centroid model's settings (``MODEL_DIR/centroid/centroid.json``).

    Sizes: ``scale`` maps original pixels to network pixels; ``crop_px`` and ``sigma_px``
    are network pixels; ``nms_radius_px`` is original pixels.
    """

    model_config = ConfigDict(extra="forbid")

    backbone: Literal["efficientnet_lite0", "resnet50", "mobilenet_v2", "mobilenet_v3"] = "efficientnet_lite0"
    pretrained: bool = True
    stride: Literal[4, 8] = 4
    neck_channels: int = Field(64, ge=8)
    scale: float = Field(gt=0, le=4)
    crop_px: int = Field(ge=32, multiple_of=32)
    sigma_px: float = Field(gt=0)
    nms_radius_px: float = Field(gt=0)
    rotation_deg: float = Field(180.0, ge=0, le=180)
    threshold: float = Field(0.2, gt=0, lt=1, description="lowest peak probability taken as an animal")
    augment: AugmentConfig = Field(default_factory=lambda: AugmentConfig(centre_on_animal_prob=0.5))
    repeats: int | None = Field(None, ge=1, description="passes over the frames per epoch; None = ~256 samples")
    cpu_minutes: float | None = Field(None, gt=0)
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    seed: int = 0
    reasons: dict[str, str] = Field(default_factory=dict)


def instance_anchors(keypoints: np.ndarray, *, min_keypoints: int = 2) -> np.ndarray:
    """The centre of each labelled animal: the mean of its labelled keypoints.

    Parameters
    ----------
    keypoints
        ``(frames, individuals, keypoints, 2)`` pixels, NaN = unlabelled.
    min_keypoints
        Animals with fewer labelled keypoints get NaN (not an instance).

    Returns
    -------
    ``(frames, individuals, 2)`` pixels.
    """
    kps = np.asarray(keypoints, float)
    ok = np.isfinite(kps).all(axis=-1)
    n = ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok[..., None], kps, 0.0).sum(axis=2) / n[..., None]
    mean[n < min_keypoints] = np.nan
    return mean


def closest_centre_gaps(keypoints: np.ndarray) -> np.ndarray:
    """Per frame with two or more labelled animals, the distance between its two closest
    animal centres (``keypoints``: ``(frames, individuals, keypoints, 2)``)."""
    gaps = []
    for a in instance_anchors(keypoints):
        a = a[np.isfinite(a).all(axis=1)]
        if len(a) >= 2:
            d = np.linalg.norm(a[:, None] - a[None], axis=-1)
            gaps.append(d[np.triu_indices(len(a), 1)].min())
    return np.array(gaps, float)


def derive_centroid_config(keypoints: np.ndarray, frame_hw: tuple[int, int], *, stride: int = 4,
                           rotation_deg: float = 180.0, **given) -> CentroidConfig:
    """Scale, crop, score-map width and suppression radius from the labelled animals.

    Parameters
    ----------
    keypoints
        ``(frames, individuals, keypoints, 2)`` training labels, original pixels.
    frame_hw
        Frame size (height, width), original pixels.
    given
        Other :class:`CentroidConfig` fields (budget, seed, backbone...).
    """
    kps = np.asarray(keypoints, float)
    ext = []
    for f in range(kps.shape[0]):
        for i in range(kps.shape[1]):
            xy = kps[f, i][np.isfinite(kps[f, i]).all(axis=1)]
            if len(xy) >= 2:
                ext.append(float(np.hypot(*(xy.max(axis=0) - xy.min(axis=0)))))
    size = float(np.percentile(ext, 90)) if ext else float(max(frame_hw)) / 4
    scale = round(float(np.clip(CENTROID_EXTENT_PX / size, 0.1, 1.0)), 3)
    reasons = {"scale": f"animal size {size:.0f} px -> {CENTROID_EXTENT_PX:.0f} network px (at most 1)"}
    side = max(frame_hw) * scale
    crop = int(min(math.ceil(side / 32) * 32, 512))
    reasons["crop_px"] = f"the scaled frame's longer side {side:.0f} px, rounded up to 32, at most 512"
    sigma = float(np.clip(0.15 * size * scale, stride, 2 * stride))
    reasons["sigma_px"] = f"0.15 x scaled animal size, clipped to {stride}-{2 * stride} (stride {stride})"
    gaps = closest_centre_gaps(kps)
    radius = 0.3 * size
    why = f"0.3 x animal size {size:.0f} px"
    if gaps.size and 0.5 * float(np.percentile(gaps, 2)) < radius:
        radius = max(0.5 * float(np.percentile(gaps, 2)), 2.0 * stride / scale)
        why += f", lowered to half the closest labelled centres' distance (2nd percentile {np.percentile(gaps, 2):.0f} px)"
    reasons["nms_radius_px"] = why
    return CentroidConfig(scale=scale, crop_px=crop, sigma_px=round(sigma, 2), nms_radius_px=round(radius, 2),
                          stride=stride, rotation_deg=rotation_deg, reasons=reasons, **given)


def centroid_targets(anchors: np.ndarray, map_hw: tuple[int, int], stride: int, sigma_px: float):
    """One-channel targets: the maximum of one Gaussian per centre; each cell's offset points
    to its nearest centre (within ``2 stride``).

    Parameters
    ----------
    anchors
        ``(M, 2)`` centres in network pixels (NaN rows ignored).

    Returns
    -------
    heatmap (1, h, w), weight (1,), offsets (2, h, w), offset mask (2, h, w).
    """
    from pose.pipeline.model import cell_centres, make_targets  # torch, loaded when training

    h, w = map_hw
    heat = np.zeros((1, h, w), np.float32)
    offs = np.zeros((2, h, w), np.float32)
    mask = np.zeros((2, h, w), np.float32)
    best = np.full((h, w), np.inf)
    for a in np.asarray(anchors, float).reshape(-1, 2):
        if not np.isfinite(a).all():
            continue
        ht, _, ot, mt = make_targets(a[None], map_hw, stride, sigma_px=sigma_px, locref_radius_px=2.0 * stride)
        heat[0] = np.maximum(heat[0], ht[0])
        d2 = (cell_centres(w, stride)[None, :] - a[0]) ** 2 + (cell_centres(h, stride)[:, None] - a[1]) ** 2
        closer = (mt[0] > 0) & (d2 < best)
        best = np.where(closer, d2, best)
        offs[:, closer] = ot[:, closer]
        mask[:, closer] = 1.0
    return heat, np.ones(1, np.float32), offs, mask


def train_centroid_model(images: list[np.ndarray], anchors: list[np.ndarray], cfg: CentroidConfig,
                         out_dir: str | Path, *, test_images: list[np.ndarray] | None = None,
                         test_anchors: list[np.ndarray] | None = None, prescaled: bool = False,
                         resume: bool = False, stop_after_epoch: int | None = None) -> Path:
    """Train the centroid model on full frames and write ``out_dir/{weights.pt, centroid.json}``.

    Parameters
    ----------
    images
        Training frames, RGB uint8 at the original resolution (at ``cfg.scale`` when
        ``prescaled``: large frames then need not be held in memory in full).
    anchors
        Per frame ``(M, 2)`` animal centres, original pixels (:func:`instance_anchors`).
    cfg
        :class:`CentroidConfig` (:func:`derive_centroid_config`).
    test_images, test_anchors
        Held-out frames (original resolution): the centre recall on them is saved and logged.
    resume
        Continue from ``out_dir/checkpoint.pt`` (written after every epoch) where it
        stopped; a checkpoint of other frames, centres or settings is refused
        (:class:`pose.pipeline.checkpoint.CheckpointMismatchError`).
    stop_after_epoch
        Stop (as if interrupted: no ``centroid.json``) after this many epochs in all.

    Returns
    -------
    The folder.
    """
    import torch

    from pose.pipeline.images import resize
    from pose.pipeline.model import PoseNet, pose_loss

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    scaled = list(images) if prescaled else [resize(im, cfg.scale) for im in images]
    pts = [to_scaled(np.asarray(a, float).reshape(-1, 2), cfg.scale) for a in anchors]
    aug = cfg.augment.model_copy(update={"crop_px": cfg.crop_px, "rotation_deg": cfg.rotation_deg})
    net = PoseNet(1, backbone=cfg.backbone, stride=cfg.stride, neck_channels=cfg.neck_channels,
                  pretrained=cfg.pretrained).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    budget_s = (cfg.cpu_minutes or 0) * 60 or None
    n_per_epoch = len(scaled) * (cfg.repeats or max(1, math.ceil(256 / len(scaled))))
    steps = math.ceil(n_per_epoch / cfg.batch_size)
    used, epoch, curve = 0.0, 0, []
    fingerprint = _fingerprint(scaled, pts, cfg)
    if resume:
        from pose.pipeline.checkpoint import load_checkpoint, set_rng_state

        ckpt = load_checkpoint(out / CENTROID_CHECKPOINT, fingerprint)
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])
        used, epoch, curve = float(ckpt["state"]["used"]), int(ckpt["state"]["epoch"]), list(ckpt["state"]["curve"])
        log.info("centroid model: resumed after epoch %d (%.0f CPU-s used)", epoch, used)
    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.epochs, initial=epoch, desc="centroid", unit="epoch")
    while epoch < cfg.epochs and not (budget_s and used >= budget_s):
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            bar.close()
            return out
        c0 = time.process_time()
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(n_per_epoch) % len(scaled)
        net.train()
        losses = []
        for s in range(steps):
            progress = (used + time.process_time() - c0) / budget_s if budget_s else (epoch * steps + s) / (cfg.epochs * steps)
            if progress >= 1.0 and losses:
                break
            lr = cfg.lr * (min(1.0, 0.05 + progress / 0.03) if progress < 0.03 else
                           0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (progress - 0.03) / 0.97)))
            for g in opt.param_groups:
                g["lr"] = lr
            batch = [_sample(scaled[i], pts[i], aug, rng, cfg) for i in order[s * cfg.batch_size:(s + 1) * cfg.batch_size]]
            tensors = [torch.from_numpy(np.stack(col)) for col in zip(*batch, strict=True)]
            x = tensors[0].float().contiguous(memory_format=torch.channels_last)
            loss = pose_loss(net(x), *tensors[1:])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"centroid training loss became {loss.item()} at epoch {epoch + 1}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        used += time.process_time() - c0
        epoch += 1
        curve.append({"epoch": epoch, "loss": float(np.mean(losses)), "cpu_s": round(used, 1)})
        _save_checkpoint(out / CENTROID_CHECKPOINT, net, opt, {"used": used, "epoch": epoch, "curve": curve},
                         fingerprint)
        bar.update(1)
        bar.set_postfix(loss=f"{curve[-1]['loss']:.4f}")
    bar.close()
    with atomic_path(out / CENTROID_WEIGHTS) as tmp:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp)
    result = {"config": cfg.model_dump(mode="json"), "epochs": epoch, "cpu_s": round(used, 1), "curve": curve}
    if test_images:
        det = CentroidDetector(out, config=cfg, net=net)
        found = [det.detect(im[None], max_peaks=None)[0][0] for im in test_images]
        result["test"] = centroid_recall(found, test_anchors or [], cfg.nms_radius_px)
        log.info("centroid model: test recall %.3f, precision %.3f (within %.0f px)", result["test"]["recall"],
                 result["test"]["precision"], cfg.nms_radius_px)
    write_text_atomic(out / CENTROID_JSON, json.dumps(result, indent=1))
    return out


class _NoSchedule:
    """The centroid model sets its learning rate itself (no torch scheduler to save)."""

    @staticmethod
    def state_dict() -> dict:
        return {}


def _fingerprint(images: list[np.ndarray], anchors: list[np.ndarray], cfg: CentroidConfig) -> dict[str, str]:
    """What a centroid checkpoint belongs to: the frames (by content), centres and settings."""
    import hashlib

    from pose.pipeline.checkpoint import training_fingerprint

    names = [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest()[:16] for im in images]
    pts = np.concatenate([np.asarray(a, float).reshape(-1, 2) for a in anchors]) if anchors else np.zeros((0, 2))
    return training_fingerprint(train_images=names, test_images=[], label_images=names, label_names=["centre"],
                                label_keypoints=pts, config=cfg.model_dump(mode="json"))


def _save_checkpoint(path: Path, net, opt, state: dict, fingerprint: dict[str, str]) -> None:
    from pose.pipeline.checkpoint import save_checkpoint

    save_checkpoint(path, model=net, optimizer=opt, schedule=_NoSchedule(), state=state, fingerprint=fingerprint)


def _sample(image: np.ndarray, anchors: np.ndarray, aug: AugmentConfig, rng: np.random.Generator,
            cfg: CentroidConfig):
    s = augment_sample(image, anchors, aug, rng, None)
    hw = (s.image.shape[0] // cfg.stride, s.image.shape[1] // cfg.stride)
    heat, weight, offs, mask = centroid_targets(s.keypoints, hw, cfg.stride, cfg.sigma_px)
    return np.ascontiguousarray(s.image.transpose(2, 0, 1)), heat, weight, offs, mask


def centroid_recall(found: list[np.ndarray], truth: list[np.ndarray], radius_px: float) -> dict[str, float]:
    """Recall and precision of detected centres against labelled ones (one-to-one, Hungarian,
    a match within ``radius_px``), and the matched centres' mean distance."""
    from scipy.optimize import linear_sum_assignment

    n_true = n_found = n_hit = 0
    dists: list[float] = []
    for f, t in zip(found, truth, strict=True):
        t = np.asarray(t, float).reshape(-1, 2)
        t = t[np.isfinite(t).all(axis=1)]
        f = np.asarray(f, float).reshape(-1, 2)
        n_true, n_found = n_true + len(t), n_found + len(f)
        if len(t) and len(f):
            d = np.linalg.norm(t[:, None] - f[None], axis=-1)
            r, c = linear_sum_assignment(d)
            ok = d[r, c] <= radius_px
            n_hit += int(ok.sum())
            dists += d[r, c][ok].tolist()
    return {"recall": n_hit / max(n_true, 1), "precision": n_hit / max(n_found, 1), "n_true": n_true,
            "n_found": n_found, "mean_distance_px": float(np.mean(dists)) if dists else math.nan}


def centroid_onnx_file(folder: str | Path, config: CentroidConfig) -> Path:
    """``folder/centroid.onnx`` (fp32; input ``image`` ``(B, 3, H, W)`` RGB 0-255, dynamic
    batch and size), exported from ``weights.pt`` first when missing or older than it."""
    folder = Path(folder)
    path, weights = folder / CENTROID_ONNX, folder / CENTROID_WEIGHTS
    if path.is_file() and path.stat().st_mtime >= weights.stat().st_mtime:
        return path
    import torch

    net = _load_net(folder, config)
    h = w = max(config.crop_px, 64)
    with atomic_path(path) as tmp:
        torch.onnx.export(
            net, (torch.zeros(1, 3, h, w),), str(tmp), input_names=["image"], output_names=["heatmap", "offsets"],
            dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                          "heatmap": {0: "batch", 2: "h", 3: "w"}, "offsets": {0: "batch", 2: "h", 3: "w"}},
            opset_version=17, dynamo=False,
        )
    return path


def _load_net(folder: Path, config: CentroidConfig):
    import torch

    from pose.pipeline.model import PoseNet

    weights = folder / CENTROID_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{folder}: no {CENTROID_WEIGHTS} (centroid training not finished?)")
    net = PoseNet(1, backbone=config.backbone, stride=config.stride, neck_channels=config.neck_channels,
                  pretrained=False)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval()


class CentroidDetector:
    """A trained centroid model: frames -> animal centres.

    Build it with ``CentroidDetector(folder)``. ``runtime``: ``"onnx"`` (onnxruntime, CPU),
    ``"torch"`` (CPU or CUDA), or ``"auto"`` (ONNX on CPU when onnxruntime is installed, as
    the instance model's :class:`pose.pipeline.inference.Predictor`). A ``net`` given (during
    training) always runs in torch.
    """

    def __init__(self, folder: str | Path, *, config: CentroidConfig | None = None, net=None,
                 device: str = "auto", threads: int | None = None, runtime: str = "auto") -> None:
        folder = Path(folder)
        if config is None:
            path = folder / CENTROID_JSON
            if not path.is_file():
                raise FileNotFoundError(f"{folder}: no {CENTROID_JSON} (not a centroid model folder)")
            config = CentroidConfig.model_validate(json.loads(path.read_text())["config"])
        self.config = config
        if runtime not in ("auto", "torch", "onnx", "onnx-int8"):
            raise ValueError(f"unknown runtime {runtime!r}; choose auto, torch or onnx")
        if runtime == "auto":
            runtime = "onnx" if net is None and device in ("auto", "cpu") and _has_onnxruntime() else "torch"
        self.runtime = "torch" if net is not None else ("onnx" if runtime.startswith("onnx") else "torch")
        self._session = None
        if self.runtime == "onnx":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads or 0
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = ort.InferenceSession(str(centroid_onnx_file(folder, config)), opts,
                                                 providers=["CPUExecutionProvider"])
            return
        import torch

        from pose.pipeline.images import resolve_device

        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        if net is None:
            from pose.pipeline.inference import fold_batchnorm  # same outputs, ~1.5x faster on CPU

            net = fold_batchnorm(_load_net(folder, config))
        self.net = net.to(self.device).eval()

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score-map logits and offsets of a network batch."""
        if self._session is not None:
            logits, offs = self._session.run(None, {"image": x})
            return logits, offs
        import torch

        t = torch.from_numpy(x).to(self.device)
        was = self.net.training
        self.net.eval()
        with torch.inference_mode():
            logits, offs = self.net(t.contiguous(memory_format=torch.channels_last))
        self.net.train(was)
        return logits.float().cpu().numpy(), offs.float().cpu().numpy()

    def detect(self, frames: np.ndarray, *, max_peaks: int | None = None, threshold: float | None = None,
               split_merged: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        """Centres of the animals in RGB uint8 frames ``(B, H, W, 3)`` (original resolution).

        ``split_merged`` (with ``max_peaks``, a known count): a frame with fewer peaks has its
        merged peaks split by the offsets' votes (:func:`split_merged_peaks`).

        Returns
        -------
        Per frame ``((P, 2) centres in original pixels, (P,) probabilities)``, strongest first.
        """
        cfg = self.config
        logits, offs = self._forward(network_batch(frames, cfg.scale))
        prob = 1.0 / (1.0 + np.exp(-logits[:, 0].astype(np.float64)))
        out = []
        for b in range(len(frames)):
            xy, p = find_peaks(prob[b], offs[b], cfg.stride, radius_px=cfg.nms_radius_px * cfg.scale,
                               threshold=cfg.threshold if threshold is None else threshold, max_peaks=max_peaks)
            if split_merged and max_peaks is not None and 0 < len(xy) < max_peaks:
                xy, p = split_merged_peaks(prob[b], offs[b], cfg.stride, xy, p, max_peaks)
            out.append((from_scaled(xy, cfg.scale), p))
        return out


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
