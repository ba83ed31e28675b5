"""Train a pose network on a project's labelled frames (CPU or CUDA).

``train_model(project, out_dir=...)`` builds the split, preloads the images, and runs AdamW
with a warm-up + cosine learning-rate schedule, validation-loss early stopping, and a
checkpoint after every epoch (atomic, with optimizer, scheduler and RNG state, so that
``resume=True`` continues exactly where it stopped). Training samples are augmented crops
sized to the labelled animals (the recipe, :mod:`pose.pipeline.recipe`); every epoch a
slice of the training frames is also run whole, as at inference, and places where a keypoint
is detected far from its label become centres of later crops (hard negatives: without them,
arena corners that look like a tail base were detected in a few frames). Channels-last memory
on CPU and CUDA; bfloat16 autocast on CUDA. The returned value is the model folder (see
``pose.pipeline.modeldir``).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import random
import sys
import time
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from pose.atomic import atomic_path, write_text_atomic
from pose.pipeline.augment import (
    AugmentConfig,
    augment_sample,
    pad_to_multiple,
    save_augmented_samples,
)
from pose.pipeline.checkpoint import (
    load_checkpoint,
    prepare_model_dir,
    remove_stale_temp_files,
    save_checkpoint,
    set_rng_state,
    training_fingerprint,
)
from pose.pipeline.images import read_image, resolve_device, to_scaled
from pose.pipeline.model import PoseNet, cell_centres, make_targets, pose_loss
from pose.pipeline.modeldir import (
    AUGMENTED_PNG,
    CHECKPOINT,
    WEIGHTS,
    ModelInfo,
    body_radius_px,
    individual_channels,
)
from pose.pipeline.project import Project, load_labels, load_project
from pose.pipeline.recipe import RECIPE_JSON, Recipe, RecipeOverrides, View, derive_recipe
from pose.pipeline.shape import fit_shape_prior
from pose.pipeline.split import Split, read_test_frames, split_by_fraction, split_by_test_frames

log = logging.getLogger(__name__)


class TrainConfig(BaseModel):
    """Training parameters (saved as ``train_config.json``).

    ``epochs`` bounds the number of passes; ``minutes`` (when set) bounds the wall-clock
    training time and drives the learning-rate schedule by elapsed time instead;
    ``cpu_minutes`` does the same with the process's CPU time (all its threads), a budget
    that does not depend on how busy a shared machine is.
    ``scale``, ``sigma_px``, ``flip_pairs``, ``view`` and the augmentation's ``crop_px`` and
    ``rotation_deg`` left to None are chosen from the project's labels
    (:func:`pose.pipeline.recipe.derive_recipe`, after the ``recipe:`` section of its
    ``config.yaml``); the saved config holds the values used.
    ``scale`` resizes images before the network (0.5 = half resolution).
    """

    model_config = ConfigDict(extra="forbid")

    backbone: Literal["efficientnet_lite0", "resnet50", "mobilenet_v2", "mobilenet_v3"] = "efficientnet_lite0"
    pretrained: bool = True
    stride: Literal[4, 8] = 4
    neck_channels: int = Field(96, ge=8)
    epochs: int = Field(200, ge=1)
    minutes: float | None = Field(None, gt=0)
    cpu_minutes: float | None = Field(
        None, gt=0, description="budget in process CPU time (all threads), for shared machines"
    )
    batch_size: int = Field(8, ge=1)
    repeats: int | None = Field(
        None, ge=1, description="passes over the training frames per epoch; None = enough for ~256 samples"
    )
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_fraction: float = Field(0.03, ge=0, lt=1)
    scale: float | None = Field(None, gt=0, le=4, description="input scale; None = from the animal's size")
    sigma_px: float | None = Field(None, gt=0, description="score-map width; None = from the keypoint spacing")
    flip_pairs: list[tuple[str, str]] | None = Field(
        None, description="left/right body parts swapped under flips; None = declared or matched from names"
    )
    view: View | None = Field(None, description="camera view; None = the config's, else judged from the labels")
    evaluate: bool = Field(True, description="after training, evaluate and warn when the model failed")
    val_fraction: float = Field(0.1, ge=0, lt=1)
    patience: int = Field(40, ge=1)
    mine_period: int = Field(
        8, ge=0, description="epochs in which every training frame is searched once (full frame) for false "
        "detections, which later crops are centred on (hard negatives); 0 = off",
    )
    freeze_stride: Literal[0, 2, 4, 8] = Field(
        0, description="backbone layers up to this output stride keep their ImageNet weights (cheaper "
        "steps: 0.77x at 4, 0.66x at 8, 224 px crops on a CPU); 0 = all trained; ignored without ImageNet weights",
    )
    anchor_sigma_px: float | None = Field(
        None, gt=0, description="centred-instance models (top-down): a 4th input channel, a Gaussian of this "
        "width (image pixels) at the crop centre, that says which of several animals in a crop is meant; None = none",
    )
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_workers: int | None = Field(None, ge=0)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)


class _Schedule:
    """Linear warm-up then cosine decay to 1% of the peak, as a function of progress 0-1."""

    def __init__(self, optimizer: torch.optim.Optimizer, peak_lr: float, warmup: float) -> None:
        self.optimizer, self.peak_lr, self.warmup = optimizer, peak_lr, warmup
        self.progress = 0.0

    def lr_at(self, p: float) -> float:
        p = min(max(p, 0.0), 1.0)
        if p < self.warmup:
            return self.peak_lr * (0.05 + 0.95 * p / self.warmup)
        q = (p - self.warmup) / max(1e-9, 1.0 - self.warmup)
        return self.peak_lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * q)))

    def step(self, progress: float) -> float:
        self.progress = progress
        lr = self.lr_at(progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict:
        return {"progress": self.progress, "peak_lr": self.peak_lr, "warmup": self.warmup}

    def load_state_dict(self, state: dict) -> None:
        self.progress = state["progress"]


class _TrainData(torch.utils.data.Dataset):
    """Augmented crops + targets; sample ``i`` of epoch ``e`` is a pure function of (seed, e, i)."""

    def __init__(self, images, keypoints, cfg: TrainConfig, flip_pairs, stride: int) -> None:
        self.images, self.keypoints, self.cfg = images, keypoints, cfg
        self.flip_pairs, self.stride, self.epoch = flip_pairs, stride, 0
        self.sigma = cfg.sigma_px or float(stride)
        self.hard_points: dict[int, np.ndarray] = {}  # image index -> mined false detections

    def __len__(self) -> int:
        return len(self.images) * (self.cfg.repeats or 1)

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.cfg.seed, self.epoch, i])
        i = i % len(self.images)
        s = augment_sample(self.images[i], self.keypoints[i], self.cfg.augment, rng, self.flip_pairs,
                           self.hard_points.get(i))
        hw = (s.image.shape[0] // self.stride, s.image.shape[1] // self.stride)
        targets = make_targets(s.keypoints, hw, self.stride, sigma_px=self.sigma, locref_radius_px=2.0 * self.stride)
        img = torch.from_numpy(np.ascontiguousarray(s.image.transpose(2, 0, 1)))
        return (img, *(torch.from_numpy(t) for t in targets))


def _full_image_tensor(image: np.ndarray) -> torch.Tensor:
    """An un-augmented image, padded as at inference, as a ``(1, 3, H, W)`` uint8 tensor."""
    return torch.from_numpy(np.ascontiguousarray(pad_to_multiple(image, 32).transpose(2, 0, 1)))[None]


def _full_image_batch(image: np.ndarray, keypoints: np.ndarray, stride: int, sigma: float):
    """Un-augmented, padded full image and its targets (validation)."""
    x = _full_image_tensor(image)
    hw = (x.shape[2] // stride, x.shape[3] // stride)
    t = make_targets(keypoints, hw, stride, sigma_px=sigma, locref_radius_px=2.0 * stride)
    return (x, *(torch.from_numpy(a)[None] for a in t))


def make_split(
    images: list[str], project: Project, test_frames: str | Path | list[str] | None, fraction: float | None, seed: int
) -> Split:
    """The split of a training run: a test-frame list when given, else DeepLabCut's rule."""
    if test_frames is not None:
        names = read_test_frames(test_frames) if isinstance(test_frames, str | Path) else list(test_frames)
        return split_by_test_frames(images, names)
    frac = fraction if fraction is not None else project.config.TrainingFraction[0]
    return split_by_fraction(images, frac, seed)


def train_model(
    project: str | Path | Project,
    *,
    config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    test_frames: str | Path | list[str] | None = None,
    training_fraction: float | None = None,
    init_from: str | Path | None = None,
    resume: bool = False,
    stop_after_epoch: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Train a pose model and return its folder.

    Parameters
    ----------
    project
        Project folder (or loaded :class:`~pose.pipeline.project.Project`).
    config
        Training parameters (default :class:`TrainConfig`).
    out_dir
        The model folder. Default ``PROJECT/models/<backbone>-<date>`` when the project is
        writable; a read-only project needs ``out_dir``.
    test_frames
        File with one test image name per line (or the list); overrides the fraction rule.
    training_fraction
        Fraction of frames for training (default: the project's ``TrainingFraction[0]``).
    init_from
        A model folder whose weights initialise this model (refinement loop); heads with a
        different keypoint count are re-initialised.
    resume
        Continue from ``out_dir/checkpoint.pt`` (same config), exactly where it stopped; the
        checkpoint must belong to this training (same split, labels, config, recipe and
        package version: :mod:`pose.pipeline.checkpoint`), else it is refused.
    stop_after_epoch
        Stop (as if interrupted) after this many epochs in total; ``resume`` continues.
    overwrite
        A fresh training into a folder that holds a model replaces that model's files
        (without it, such a folder is refused).

    Raises
    ------
    FloatingPointError
        When the loss becomes NaN or infinite.
    FileExistsError
        A fresh training into a folder holding a model, without ``overwrite``.
    pose.pipeline.checkpoint.CheckpointMismatchError
        ``resume`` with a checkpoint of a different training.
    """
    project = project if isinstance(project, Project) else load_project(project)
    cfg = config or TrainConfig()
    labels = load_labels(project)
    model_dir = _model_dir(project, cfg, out_dir)
    ckpt_path = model_dir / CHECKPOINT
    if resume:
        remove_stale_temp_files(model_dir)
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume: no {CHECKPOINT} in {model_dir} (killed before its first epoch "
                                    "ended?); train again without --resume, with --overwrite")
        cfg = TrainConfig.model_validate_json((model_dir / "train_config.json").read_text())
        split = Split.load(model_dir / "split.json")
    else:
        prepare_model_dir(model_dir, overwrite=overwrite)
        split = make_split(labels.images, project, test_frames, training_fraction, cfg.seed)
        cfg, recipe = _resolve_auto(cfg, project, labels, split)
        tqdm.write(recipe.describe(), file=sys.stderr)
        model_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(model_dir / RECIPE_JSON, recipe.model_dump_json(indent=1))
        split.save(model_dir / "split.json")
        write_text_atomic(model_dir / "train_config.json", cfg.model_dump_json(indent=1))
    fingerprint = training_fingerprint(
        train_images=split.train, test_images=split.test, label_images=labels.images, label_names=labels.names,
        label_keypoints=labels.keypoints, config=cfg.model_dump(mode="json"), recipe_file=model_dir / "recipe.json")
    ckpt = load_checkpoint(ckpt_path, fingerprint) if resume else None  # refused before anything is written
    individuals = sorted({n.split("/")[0] for n in labels.names}) if "/" in labels.names[0] else ["individual_0"]
    anchor_sigma = round(cfg.anchor_sigma_px * (cfg.scale or 1.0), 3) if cfg.anchor_sigma_px else None  # network px
    index = {im: i for i, im in enumerate(labels.images)}
    train_idx = [index[im] for im in split.train]
    ModelInfo(
        backbone=cfg.backbone, stride=cfg.stride, neck_channels=cfg.neck_channels, names=labels.names,
        bodyparts=project.config.bodyparts, individuals=individuals, scale=cfg.scale,
        skeleton=project.config.skeleton, pcutoff=project.config.pcutoff, project=str(project.root),
        body_radius_px=body_radius_px(labels.keypoints[train_idx], individual_channels(labels.names)),
        shape_prior=fit_shape_prior(labels.keypoints[train_idx], individual_channels(labels.names)),
        anchor_sigma_px=anchor_sigma,
    ).save(model_dir)

    device = resolve_device(cfg.device)
    _seed_everything(cfg.seed)
    rng = np.random.RandomState(cfg.seed)
    n_val = int(round(len(train_idx) * cfg.val_fraction)) if len(train_idx) >= 10 else 0
    # full frames (validation, hard-negative search) are kept to about a third of an epoch's
    # compute, so that the cost of an epoch does not grow with the frame size
    full_frames = _full_frames_per_epoch(cfg, _frame_hw(project, labels.images[train_idx[0]]), len(train_idx) - n_val)
    n_val = min(n_val, max(3, full_frames)) if n_val else 0
    perm = rng.permutation(len(train_idx))
    val_idx = sorted(train_idx[i] for i in perm[:n_val])
    fit_idx = sorted(train_idx[i] for i in perm[n_val:])
    if not fit_idx:
        raise ValueError(f"{project.root}: no training frames after the split")
    log.info("training on %d frames, validating on %d, testing on %d", len(fit_idx), len(val_idx), len(split.test))
    images = {i: read_image(project.root / labels.images[i], cfg.scale) for i in fit_idx + val_idx}
    kps = to_scaled(labels.keypoints, cfg.scale)
    flip_pairs = _channel_flip_pairs(project, labels.names, cfg.flip_pairs)
    data = _TrainData([images[i] for i in fit_idx], kps[fit_idx], cfg, flip_pairs, cfg.stride)
    if not resume:  # a visual check of the augmentation (crops, left/right swaps) before the long wait
        save_augmented_samples([images[i] for i in fit_idx], kps[fit_idx], model_dir / AUGMENTED_PNG,
                               cfg=cfg.augment, flip_pairs=flip_pairs, names=labels.names, seed=cfg.seed)

    model = PoseNet(len(labels.names), backbone=cfg.backbone, stride=cfg.stride,
                    neck_channels=cfg.neck_channels, pretrained=cfg.pretrained and init_from is None,
                    anchor_sigma_px=anchor_sigma)
    if init_from is not None:
        _init_weights(model, Path(init_from))
    if cfg.freeze_stride and (init_from is not None or model.backbone.imagenet_weights):
        n = model.freeze_early_layers(cfg.freeze_stride)
        log.info("backbone layers up to stride %d frozen (%d parameters)", cfg.freeze_stride, n)
    elif cfg.freeze_stride:
        log.warning("freeze_stride %d ignored: the backbone has no ImageNet weights (random layers are not "
                    "kept fixed)", cfg.freeze_stride)
    # channels-last is ~1.8x faster on CPU too (oneDNN's depthwise convolutions)
    model = model.to(device).to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    schedule = _Schedule(optimizer, cfg.lr, cfg.warmup_fraction)
    state = {"epoch": 0, "elapsed_s": 0.0, "best_val": math.inf, "bad_epochs": 0, "curve": []}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["schedule"])
        state = ckpt["state"]
        set_rng_state(ckpt["rng"])
        log.info("resuming %s at epoch %d", model_dir, state["epoch"])

    workers = cfg.num_workers if cfg.num_workers is not None else (6 if device.type == "cuda" else 0)
    steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.minutes and cfg.cpu_minutes:
        raise ValueError("give at most one of minutes and cpu_minutes")
    budget_s = (cfg.minutes or cfg.cpu_minutes or 0) * 60 or None
    clock = time.process_time if cfg.cpu_minutes else time.perf_counter
    state.setdefault("budget_used_s", 0.0)
    sigma = cfg.sigma_px or float(cfg.stride)
    bar = tqdm(total=cfg.epochs, initial=state["epoch"], desc="train", unit="epoch")
    stop_reason = "epochs done"
    while state["epoch"] < cfg.epochs:
        epoch = state["epoch"]
        t0 = time.perf_counter()
        c0 = clock()
        p0 = time.process_time()
        state.setdefault("cpu_s", 0.0)
        data.epoch = epoch
        data.hard_points = state.setdefault("hard_points", {})
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        loader = torch.utils.data.DataLoader(
            data, batch_size=cfg.batch_size, shuffle=True, generator=gen, num_workers=workers,
            drop_last=len(data) > cfg.batch_size, pin_memory=device.type == "cuda",
        )
        model.train()
        losses = []
        for step, batch in enumerate(loader):
            if budget_s:
                progress = (state["budget_used_s"] + clock() - c0) / budget_s
                if progress >= 1.0 and losses:
                    break  # the budget ends inside this epoch
            else:
                progress = (epoch * steps_per_epoch + step) / max(1, total_steps)
            lr = schedule.step(progress)
            loss = _loss(model, batch, device)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} "
                    f"(lr {lr:.2g}); try a lower --lr or check the labels for bad values"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        if cfg.mine_period:
            chunk = min(math.ceil(len(data.images) / cfg.mine_period), max(1, full_frames))
            start = (epoch * chunk) % len(data.images)
            rows = [(start + r) % len(data.images) for r in range(min(chunk, len(data.images)))]
            found = find_false_detections(model, [data.images[r] for r in rows], data.keypoints[rows],
                                          cfg.stride, sigma, device)
            for r, pts in zip(rows, found, strict=True):
                state["hard_points"].pop(r, None)
                if len(pts):
                    state["hard_points"][r] = pts
        val_loss = _validate(model, [images[i] for i in val_idx], kps[val_idx], cfg.stride, sigma, device)
        state["elapsed_s"] += time.perf_counter() - t0
        state["budget_used_s"] += clock() - c0
        state["epoch"] = epoch + 1
        train_loss = float(np.mean(losses))
        state["curve"].append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                               "lr": lr, "elapsed_s": round(state["elapsed_s"], 3),
                               "cpu_s": round(state["cpu_s"] + time.process_time() - p0, 3)})
        state["cpu_s"] += time.process_time() - p0
        improved = val_loss is None or val_loss < state["best_val"]
        if improved:
            state["best_val"] = val_loss if val_loss is not None else math.inf
            state["bad_epochs"] = 0
            _save_weights(model, model_dir / WEIGHTS)
        else:
            state["bad_epochs"] += 1
        save_checkpoint(ckpt_path, model=model, optimizer=optimizer, schedule=schedule, state=state,
                        fingerprint=fingerprint)
        _write_curve(model_dir, state["curve"])
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{val_loss:.4f}" if val_loss is not None else "-")
        if state["bad_epochs"] >= cfg.patience:
            stop_reason = f"early stop: no validation improvement in {cfg.patience} epochs"
            break
        if budget_s and state["budget_used_s"] >= budget_s:
            stop_reason = f"time budget of {cfg.minutes or cfg.cpu_minutes} min reached"
            break
        if stop_after_epoch is not None and state["epoch"] >= stop_after_epoch:
            stop_reason = f"stopped after epoch {stop_after_epoch}"
            break
    bar.close()
    _plot_curve(model_dir, state["curve"])
    log.info("%s after %d epochs (%.0f s)", stop_reason, state["epoch"], state["elapsed_s"])
    if cfg.evaluate:
        _evaluate_and_warn(model_dir, project)
    return model_dir


def _evaluate_and_warn(model_dir: Path, project: Project) -> None:
    """Evaluate the trained model (torch, no images) and print a warning when it failed."""
    from pose.pipeline.evaluate import evaluate_model, quality_warning

    result = evaluate_model(model_dir, project=project.root, runtime="torch", write_images=False)
    parts = [f"{part} {result[part]['mean_px']:.2f} px ({result[part]['normalized_error']:.3f} of the "
             f"animal size)" for part in ("train", "test") if result[part].get("mean_px") is not None]
    tqdm.write("evaluation: " + ", ".join(parts), file=sys.stderr)
    warning = quality_warning(result)
    if warning:
        log.warning("%s", warning)
        tqdm.write(warning, file=sys.stderr)


def _frame_hw(project: Project, image: str) -> tuple[int, int]:
    """(height, width) of a labelled image in original pixels."""
    img = cv2.imread(str(project.root / image), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read image {project.root / image}")
    return int(img.shape[0]), int(img.shape[1])


def _full_frames_per_epoch(cfg: TrainConfig, frame_hw: tuple[int, int], n_fit: int) -> int:
    """Full frames an epoch may run (validation, hard negatives): their pixels at most half of
    the epoch's training-crop pixels (a forward pass costs about a third of a training step)."""
    scale = cfg.scale or 1.0
    crop = cfg.augment.crop_px or 224
    samples = max(1, n_fit) * (cfg.repeats or 1)
    frame_px = max(1.0, frame_hw[0] * scale * frame_hw[1] * scale)
    return int(0.5 * samples * crop * crop // frame_px)


def _resolve_auto(cfg: TrainConfig, project: Project, labels, split: Split) -> tuple[TrainConfig, Recipe]:
    """The recipe (:func:`pose.pipeline.recipe.derive_recipe`) from the training frames, and
    the config with every choice left to ``None`` filled from it (and ``repeats``)."""
    index = {im: i for i, im in enumerate(labels.images)}
    train_idx = [index[im] for im in split.train]
    given = RecipeOverrides(view=cfg.view, scale=cfg.scale, crop_px=cfg.augment.crop_px, sigma_px=cfg.sigma_px,
                            rotation_deg=cfg.augment.rotation_deg, flip_pairs=cfg.flip_pairs)
    overrides = project.config.recipe_overrides().merged(given)
    declared = project.config.symmetry_pairs
    recipe = derive_recipe(labels.keypoints[train_idx], labels.names, _frame_hw(project, labels.images[train_idx[0]]),
                           stride=cfg.stride, overrides=overrides,
                           declared_pairs=[(a, b) for a, b in declared] if declared is not None else None)
    update: dict = {"scale": recipe.scale, "sigma_px": recipe.sigma_px, "flip_pairs": recipe.flip_pairs,
                    "view": recipe.view if recipe.view in View.__args__ else None,  # type: ignore[attr-defined]
                    "augment": cfg.augment.model_copy(update={"crop_px": recipe.crop_px,
                                                              "rotation_deg": recipe.rotation_deg})}
    if cfg.repeats is None:
        update["repeats"] = max(1, math.ceil(256 / max(1, len(train_idx))))
    return cfg.model_copy(update=update), recipe


def _loss(model: PoseNet, batch, device: torch.device) -> torch.Tensor:
    img, heat, weight, offs, mask = (t.to(device, non_blocking=True) for t in batch)
    img = img.float().contiguous(memory_format=torch.channels_last)
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(img)
    else:
        out = model(img)
    return pose_loss(out, heat, weight, offs, mask)


@torch.no_grad()
def find_false_detections(
    model: PoseNet, images: list[np.ndarray], keypoints: np.ndarray, stride: int, sigma: float,
    device: torch.device, *, min_prob: float = 0.1,
) -> list[np.ndarray]:
    """Where the network detects a labelled keypoint far from its label (hard negatives).

    Runs the network on each full image (as inference does) and, for every labelled channel,
    takes the highest score-map peak farther than ``max(4 sigma, 2 stride)`` from the label.

    Returns
    -------
    list of ``(M, 2)`` arrays of image positions (one row per channel whose stray peak has a
    probability of at least ``min_prob``).
    """
    was_training = model.training
    model.eval()
    out = []
    radius = max(4.0 * sigma, 2.0 * stride)
    for image, kp in zip(images, keypoints, strict=True):
        x = _full_image_tensor(image).to(device).float().contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits, _ = model(x)
        prob = torch.sigmoid(logits[0].float()).cpu().numpy()
        _, h, w = prob.shape
        cy = cell_centres(h, stride)[:, None]
        cx = cell_centres(w, stride)[None, :]
        pts = []
        for j, (kx, ky) in enumerate(kp):
            if not (np.isfinite(kx) and np.isfinite(ky)):
                continue  # unlabelled: a detection there is not known to be wrong
            far = np.where((cx - kx) ** 2 + (cy - ky) ** 2 > radius**2, prob[j], 0.0)
            iy, ix = np.unravel_index(int(far.argmax()), far.shape)
            if far[iy, ix] >= min_prob:
                pts.append((cx[0, ix], cy[iy, 0]))
        out.append(np.array(pts, np.float64).reshape(-1, 2))
    model.train(was_training)
    return out


@torch.no_grad()
def _validate(model, images, keypoints, stride, sigma, device) -> float | None:
    if not images:
        return None
    model.eval()
    losses = [_loss(model, _full_image_batch(im, kp, stride, sigma), device).item()
              for im, kp in zip(images, keypoints, strict=True)]
    return float(np.mean(losses))


def _model_dir(project: Project, cfg: TrainConfig, out_dir: str | Path | None) -> Path:
    if out_dir is not None:
        return Path(out_dir)
    if not project.is_writable():
        raise PermissionError(f"project {project.root} is read-only: pass --out MODEL_DIR")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return project.root / "models" / f"{cfg.backbone}-{stamp}"


def _channel_flip_pairs(project: Project, names: list[str],
                        pairs_by_name: list[tuple[str, str]] | None = None) -> list[tuple[int, int]]:
    """Channel index pairs swapped by a flip: ``pairs_by_name`` (body parts; the recipe's),
    else the project config's (older models' configs have no recipe)."""
    bps = project.config.bodyparts
    if pairs_by_name is None:
        pairs_by_name = [(bps[a], bps[b]) for a, b in project.config.flip_pairs()]
    pairs = []
    for a, b in pairs_by_name:
        for i, n in enumerate(names):
            ind, _, bp = n.rpartition("/")
            if bp == a:
                j = names.index(f"{ind}/{b}" if ind else b)
                pairs.append((i, j))
    return pairs


def _init_weights(model: PoseNet, model_dir: Path) -> None:
    state = torch.load(model_dir / WEIGHTS, map_location="cpu", weights_only=True)
    own = model.state_dict()
    keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(state) - set(keep))
    model.load_state_dict(keep, strict=False)
    log.info("initialised from %s (%d tensors; re-initialised: %s)", model_dir, len(keep), skipped or "none")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _save_weights(model: torch.nn.Module, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)


def _write_curve(model_dir: Path, curve: list[dict]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["epoch", "train_loss", "val_loss", "lr", "elapsed_s", "cpu_s"])
    writer.writeheader()
    writer.writerows(curve)
    write_text_atomic(model_dir / "training_curve.csv", out.getvalue())


def _plot_curve(model_dir: Path, curve: list[dict]) -> None:
    if not curve:
        return
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ep = [c["epoch"] for c in curve]
    ax.plot(ep, [c["train_loss"] for c in curve], label="train")
    if curve[0]["val_loss"] is not None:
        ax.plot(ep, [c["val_loss"] for c in curve], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    with atomic_path(model_dir / "training_curve.png") as tmp:
        fig.savefig(tmp, dpi=100)
