"""Multi-animal pose, the top-down way (SLEAP's "centroid + centered-instance" design).

Two networks, both the single-animal pipeline's:

1. a **centroid model** (:mod:`pose.pipeline.centroid`): one score map with a peak at the
   centre of every animal (the mean of its labelled keypoints), on the down-scaled frame;
2. a **centred-instance model**: the single-animal model (:func:`pose.pipeline.train.train_model`,
   its recipe, augmentation, shape prior and evaluation unchanged) trained on crops centred
   on each labelled animal, whose targets are that animal's keypoints only, so a neighbour
   inside the crop is not a target.

Inference (:class:`TopDownPredictor`): centres -> one crop per centre -> keypoints per
instance -> a pose Dataset whose ``individual`` dimension holds instances in no particular
order (``instance_0``...); :func:`pose.tracking.track_identities` (``ethopose pose track``)
then gives them identities. Why top-down rather than one network with a channel per
individual: same-coat animals cannot be told apart by their pixels, so identity channels
cannot be learnt; identities come from motion instead.

::

    MODEL_DIR/
      topdown.json    TopDownInfo: crop size, count, reasons
      split.json      the frame-level train/test split of the multi-animal project
      centroid/       centroid.json + weights.pt
      instance/       a single-animal model folder (pose.pipeline.modeldir)
      instance_project/  the crops it was trained on (a single-animal project)
"""

from __future__ import annotations

import json
import logging
import math
import sys
import warnings
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import xarray as xr
import yaml
from pydantic import BaseModel, ConfigDict

from pose.atomic import write_text_atomic
from pose.pipeline.augment import FILL_RGB
from pose.pipeline.centroid import (
    CentroidDetector,
    closest_centre_gaps,
    derive_centroid_config,
    instance_anchors,
    train_centroid_model,
)
from pose.pipeline.images import read_image
from pose.pipeline.instance_filter import confidence_floor, drop_unsure_instances
from pose.pipeline.project import LabelSet, Project, load_labels, load_project
from pose.pipeline.recipe import RecipeOverrides, animal_size_px, derive_recipe

log = logging.getLogger(__name__)

TOPDOWN_JSON = "topdown.json"
TOPDOWN_TRAIN_JSON = "topdown_train.json"  # the training's config and budget split (--resume)
CROP_MARGIN = 1.25  # crop half-side / farthest labelled keypoint from the centre
JITTER_FRACTION = 0.06  # training crops' centres moved by up to this x the crop side (centroid error)
# ... and by at most this x the closest labelled centres' distance (2nd percentile), so that the
# centred animal stays the one nearest the crop centre when two animals touch: a neighbour at
# distance g is farther from the centre than the target while the radial jitter sqrt(2) j < g / 2
JITTER_GAP_FRACTION = 0.35
# propagate_instances also crops where an animal was last seen, up to this long ago (the
# tracker's default coasting time, pose.tracking.TrackingConfig.max_coast_s)
PROPAGATE_MEMORY_S = 1.0
# ... and, for an animal still missing, on a ring of this many directions around each found one
# (TopDownPredictor._search_contacts)
CONTACT_DIRECTIONS = 8
CONTACT_ANGLES = np.arange(CONTACT_DIRECTIONS) * (2 * np.pi / CONTACT_DIRECTIONS)
# the anchor channel (pose.pipeline.model.PoseNet anchor_sigma_px): a Gaussian at the crop centre
# whose width is this x the closest labelled centres' distance (2nd percentile): a neighbour that
# close lies 2 sigma from the centre, the target's centre (jittered) within 1 sigma ...
ANCHOR_GAP_FRACTION = 0.5
ANCHOR_SIZE_FRACTION = 0.25  # ... and at most this x the animal's size (animals never close)


class TopDownInfo(BaseModel):
    """What top-down inference needs (``MODEL_DIR/topdown.json``); sizes in original pixels."""

    model_config = ConfigDict(extra="forbid")

    kind: str = "topdown"
    bodyparts: list[str]
    individuals: list[str]
    skeleton: list[list[str]] = []
    n_animals: int
    crop_side_px: int
    animal_size_px: float
    reasons: dict[str, str]
    project: str | None = None


def is_topdown_model(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` holds a top-down multi-animal model."""
    return (Path(model_dir) / TOPDOWN_JSON).is_file()


def split_individuals(labels: LabelSet) -> tuple[np.ndarray, list[str], list[str]]:
    """``(frames, individuals, keypoints, 2)`` labels, individual and body-part names."""
    names = labels.names
    if "/" not in names[0]:
        return labels.keypoints[:, None], ["individual_0"], list(names)
    inds = list(dict.fromkeys(n.split("/")[0] for n in names))
    parts = list(dict.fromkeys(n.split("/", 1)[1] for n in names))
    kps = np.full((len(labels.images), len(inds), len(parts), 2), np.nan)
    for c, n in enumerate(names):
        a, b = n.split("/", 1)
        kps[:, inds.index(a), parts.index(b)] = labels.keypoints[:, c]
    return kps, inds, parts


def multi_animal_reason(project: str | Path | Project) -> tuple[bool, str]:
    """Whether a project's labels are multi-animal (several individuals labelled in one frame),
    and the sentence saying which pipeline that chooses and why."""
    project = project if isinstance(project, Project) else load_project(project)
    kps, inds, _ = split_individuals(load_labels(project))
    per_frame = (np.isfinite(kps).all(axis=-1).sum(axis=-1) >= 2).sum(axis=1)
    multi = int((per_frame >= 2).sum())
    if len(inds) < 2 or multi == 0:
        return False, f"single-animal project ({len(inds)} individual labelled per frame): one network"
    return True, (f"multi-animal project: {len(inds)} individuals, {multi} of {len(per_frame)} labelled frames "
                  f"show 2 or more animals -> top-down (a centroid model finds every animal, a centred-instance "
                  f"model places each one's keypoints); identities come from tracking, because same-looking "
                  f"animals cannot be told apart as network channels")


def crop_side_px(keypoints: np.ndarray) -> tuple[int, str]:
    """Side of the square crop (original pixels, even) that holds an animal around its centre.

    ``2 x CROP_MARGIN x`` the 99th percentile of the distance of a labelled keypoint from its
    animal's centre (``keypoints``: ``(frames, individuals, keypoints, 2)``).
    """
    anchors = instance_anchors(keypoints)
    reach = np.linalg.norm(keypoints - anchors[:, :, None], axis=-1)
    reach = reach[np.isfinite(reach)]
    r = float(np.percentile(reach, 99)) if reach.size else 64.0
    side = int(2 * math.ceil(CROP_MARGIN * r))
    return side, (f"2 x {CROP_MARGIN} x the farthest labelled keypoint from its animal's centre "
                  f"({r:.0f} px, 99th percentile)")


def instance_jitter_px(keypoints: np.ndarray, side: int) -> tuple[float, str]:
    """Largest shift (per axis, original pixels) of a training crop's centre from its animal's.

    ``JITTER_FRACTION x side`` (the centroid model's error), lowered to ``JITTER_GAP_FRACTION``
    x the 2nd percentile of the closest labelled centres' distance: with a larger jitter the
    target is in training as far off-centre as a touching neighbour, so at inference a crop
    centred on one of two animals in contact cannot say which one it is meant for.
    """
    jitter = JITTER_FRACTION * side
    why = f"{JITTER_FRACTION} x the written crop side {side} px"
    gaps = closest_centre_gaps(keypoints)
    if gaps.size:
        g = float(np.percentile(gaps, 2))
        if JITTER_GAP_FRACTION * g < jitter:
            jitter = JITTER_GAP_FRACTION * g
            why += (f", lowered to {JITTER_GAP_FRACTION} x the closest labelled centres' distance (2nd percentile "
                    f"{g:.1f} px), so that the centred animal stays the one nearest the crop centre in contacts")
    return round(float(jitter), 2), why


def instance_anchor_sigma_px(keypoints: np.ndarray, jitter_px: float, size_px: float) -> tuple[float, str]:
    """Width (original pixels) of the centred-instance model's anchor channel.

    ``ANCHOR_GAP_FRACTION x`` the 2nd percentile of the closest labelled centres' distance
    (a neighbour that close reads 2 sigma from the crop centre), at most
    ``ANCHOR_SIZE_FRACTION x`` the animal's size, and at least ``sqrt(2) x`` the training
    crops' centre jitter (the target's centre stays within 1 sigma).
    """
    gaps = closest_centre_gaps(keypoints)
    cap = ANCHOR_SIZE_FRACTION * size_px
    if gaps.size:
        g = float(np.percentile(gaps, 2))
        sigma, why = ANCHOR_GAP_FRACTION * g, f"{ANCHOR_GAP_FRACTION} x the closest labelled centres' distance (2nd percentile {g:.1f} px)"
        if sigma > cap:
            sigma, why = cap, why + f", capped at {ANCHOR_SIZE_FRACTION} x the animal's size ({size_px:.0f} px)"
    else:
        sigma, why = cap, f"{ANCHOR_SIZE_FRACTION} x the animal's size ({size_px:.0f} px; no frame with two animals)"
    floor = math.sqrt(2.0) * jitter_px
    if sigma < floor:
        sigma, why = floor, why + f", raised to sqrt(2) x the crops' centre jitter ({jitter_px} px)"
    return round(float(sigma), 2), why


def write_instance_project(project: Project, labels: LabelSet, out: Path, side: int, test_images: set[str],
                           seed: int = 0, jitter_px: float | None = None) -> tuple[Project, list[str]]:
    """A single-animal project of crops, one per labelled animal, centred (with a small jitter)
    on it; the crop's labels are that animal's keypoints only.

    ``jitter_px``: the largest shift of a crop's centre per axis (default
    ``JITTER_FRACTION x side``; :func:`instance_jitter_px` derives it from the labels).
    Returns the project and the crop names of ``test_images``' animals (its test frames).
    """
    import pose.io
    from pose.dataset import from_numpy

    kps, inds, parts = split_individuals(labels)
    anchors = instance_anchors(kps)
    jitter = JITTER_FRACTION * side if jitter_px is None else float(jitter_px)
    rng = np.random.default_rng([seed, 11])
    folder = out / "labeled-data" / "instances"
    folder.mkdir(parents=True, exist_ok=True)
    names, crops_kp, test = [], [], []
    for f, image in enumerate(labels.images):
        frame = None
        for i, ind in enumerate(inds):
            if not np.isfinite(anchors[f, i]).all():
                continue
            if frame is None:
                frame = cv2.cvtColor(cv2.imread(str(project.root / image), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            centre = anchors[f, i] + rng.uniform(-1.0, 1.0, 2) * jitter
            crop, origin = crop_around(frame, centre, side)
            name = f"{Path(image).parent.name}_{Path(image).stem}_{ind}.png"
            cv2.imwrite(str(folder / name), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            names.append(f"labeled-data/instances/{name}")
            crops_kp.append(kps[f, i] - origin)
            if image in test_images:
                test.append(name)
    ds = from_numpy(np.array(crops_kp).transpose(0, 2, 1), keypoints=parts, individuals=["individual_0"])
    ds = ds.assign_coords(image=("time", names))
    ds.attrs["scorer"] = "topdown"
    pose.io.save(ds, folder / "CollectedData_topdown.h5")
    cfg = project.config
    raw = {"Task": f"{project.root.name}_instances", "scorer": "topdown", "bodyparts": parts,
           "skeleton": cfg.skeleton, "pcutoff": cfg.pcutoff,
           "symmetry_pairs": [[parts[a], parts[b]] for a, b in cfg.flip_pairs()]}
    over = cfg.recipe_overrides()
    if over.view:
        raw["view"] = over.view
    write_text_atomic(out / "config.yaml", yaml.safe_dump(raw, sort_keys=False))
    return load_project(out), test


def crop_around(frame: np.ndarray, centre: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``side x side`` crop of ``frame`` whose centre pixel is ``centre`` rounded (outside the
    frame: :data:`pose.pipeline.augment.FILL_RGB`), and its top-left corner in frame pixels."""
    x0 = int(round(float(centre[0]))) - side // 2
    y0 = int(round(float(centre[1]))) - side // 2
    h, w = frame.shape[:2]
    crop = np.empty((side, side, 3), np.uint8)
    crop[:] = FILL_RGB
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if xa < xb and ya < yb:
        crop[ya - y0:yb - y0, xa - x0:xb - x0] = frame[ya:yb, xa:xb]
    return crop, np.array([x0, y0], float)


def train_topdown(project: str | Path | Project, *, config=None, out_dir: str | Path | None = None,
                  test_frames: list[str] | str | Path | None = None, training_fraction: float | None = None,
                  centroid_share: float = 0.3, overwrite: bool = False, resume: bool = False,
                  stop_after_epoch: int | None = None, anchor: bool = True) -> Path:
    """Train the centroid and the centred-instance models of a multi-animal project.

    Parameters
    ----------
    project
        A project whose labels name several individuals (DeepLabCut multi-animal, SLEAP).
    config
        :class:`pose.pipeline.train.TrainConfig` of the instance model; its ``cpu_minutes``
        (or ``minutes``) budget is shared: ``centroid_share`` of it goes to the centroid
        model, the rest to the instance model.
    out_dir
        The model folder (default ``PROJECT/models/topdown-<time>``).
    test_frames, training_fraction
        The frame-level split (as :func:`pose.pipeline.train.train_model`): both models
        hold out the same frames (an animal's crop is a test crop when its frame is a test frame).
    resume
        Continue an interrupted training in ``out_dir`` where it stopped, with its saved
        config, split and budget (``topdown_train.json``): a finished centroid model is kept,
        an unfinished one continues from its checkpoint, then the instance model resumes
        (:func:`pose.pipeline.train.train_model` ``resume``); other arguments are ignored.
    stop_after_epoch
        Stop as if interrupted after this many epochs of the model in training (the
        centroid model, else the instance model); ``topdown.json`` is then not written.
    anchor
        Give the instance model an anchor channel (:class:`pose.pipeline.model.PoseNet`
        ``anchor_sigma_px``) that marks the crop centre, so that of two animals in one crop it
        places the centred one; its width is ``config.anchor_sigma_px`` when given, else
        :func:`instance_anchor_sigma_px` of the labels.

    Returns
    -------
    The model folder.
    """
    import time

    from pose.pipeline.split import Split
    from pose.pipeline.train import TrainConfig, make_split, train_model

    project = project if isinstance(project, Project) else load_project(project)
    cfg = config or TrainConfig()
    labels = load_labels(project)
    kps, inds, parts = split_individuals(labels)
    if out_dir is None:
        if resume:
            raise ValueError("resume needs the model folder (out_dir / --out)")
        out_dir = project.root / "models" / f"topdown-{time.strftime('%Y%m%d-%H%M%S')}"
    model_dir = Path(out_dir)
    if resume:
        saved = model_dir / TOPDOWN_TRAIN_JSON
        if not saved.is_file() or not (model_dir / "split.json").is_file():
            raise FileNotFoundError(f"--resume: no {TOPDOWN_TRAIN_JSON} and split.json in {model_dir} (not a "
                                    "top-down training, or killed before it started); train again without --resume")
        raw = json.loads(saved.read_text())
        cfg, centroid_share = TrainConfig.model_validate(raw["config"]), float(raw["centroid_share"])
        anchor = bool(raw.get("anchor", False))
        split = Split.load(model_dir / "split.json")
        _echo(f"top-down: resuming {model_dir} with its saved config and split")
    else:
        if (model_dir / TOPDOWN_JSON).exists() and not overwrite:
            raise FileExistsError(f"{model_dir} holds a top-down model; pass --overwrite to replace it")
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / TOPDOWN_JSON).unlink(missing_ok=True)
        split = make_split(labels.images, project, test_frames, training_fraction, cfg.seed)
        split.save(model_dir / "split.json")
        write_text_atomic(model_dir / TOPDOWN_TRAIN_JSON, json.dumps(
            {"config": cfg.model_dump(mode="json"), "centroid_share": centroid_share, "anchor": anchor}, indent=1))
    index = {im: i for i, im in enumerate(labels.images)}
    train_idx = [index[im] for im in split.train]
    test_idx = [index[im] for im in split.test]
    per_frame = (np.isfinite(instance_anchors(kps)).all(axis=-1)).sum(axis=1)
    side, side_why = crop_side_px(kps[train_idx])
    size = animal_size_px(labels.keypoints[train_idx], labels.names)
    first = cv2.imread(str(project.root / labels.images[train_idx[0]]), cv2.IMREAD_COLOR)
    if first is None:
        raise FileNotFoundError(f"cannot read image {project.root / labels.images[train_idx[0]]}")
    frame_hw = (int(first.shape[0]), int(first.shape[1]))
    given = RecipeOverrides(view=cfg.view, rotation_deg=cfg.augment.rotation_deg)
    recipe = derive_recipe(labels.keypoints[train_idx], labels.names, frame_hw, stride=cfg.stride,
                           overrides=project.config.recipe_overrides().merged(given))
    budget = cfg.cpu_minutes or cfg.minutes
    c_budget = budget * centroid_share if budget else None
    ccfg = derive_centroid_config(kps[train_idx], frame_hw, stride=cfg.stride, rotation_deg=recipe.rotation_deg,
                                  cpu_minutes=c_budget, seed=cfg.seed, backbone=cfg.backbone,
                                  pretrained=cfg.pretrained, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                                  neck_channels=cfg.neck_channels, repeats=cfg.repeats,
                                  augment=cfg.augment.model_copy(update={"centre_on_animal_prob": 0.5}))
    info = TopDownInfo(bodyparts=parts, individuals=inds, skeleton=project.config.skeleton,
                       n_animals=int(per_frame.max()), crop_side_px=side, animal_size_px=round(size, 2),
                       project=str(project.root),
                       reasons={"n_animals": f"most animals labelled in one frame ({int(per_frame.max())})",
                                "crop_side_px": side_why, "anchor": "mean of the animal's labelled keypoints",
                                **{f"centroid_{k}": v for k, v in ccfg.reasons.items()}})
    _echo(f"top-down: {len(train_idx)} training frames, {len(test_idx)} test frames; "
          f"{int(per_frame[train_idx].sum())} training animals")
    jitter, jitter_why = instance_jitter_px(kps[train_idx], 2 * side)
    info.reasons["instance_jitter_px"] = f"{jitter} px: {jitter_why}"
    _echo(f"  crop {side} px: {side_why}")
    _echo(f"  instance crops' centre jitter +-{jitter} px: {jitter_why}")
    anchor_sigma = None
    if anchor:
        if cfg.anchor_sigma_px:
            anchor_sigma, anchor_why = cfg.anchor_sigma_px, "given"
        else:
            anchor_sigma, anchor_why = instance_anchor_sigma_px(kps[train_idx], jitter, size)
        info.reasons["instance_anchor_sigma_px"] = f"{anchor_sigma} px: {anchor_why}"
        _echo(f"  instance model's anchor channel (a Gaussian at the crop centre) sigma {anchor_sigma} px: {anchor_why}")
    for k, v in ccfg.reasons.items():
        _echo(f"  centroid {k} {getattr(ccfg, k)}: {v}")
    _echo(f"  budget: {budget or '-'} min ({'CPU' if cfg.cpu_minutes else 'wall'}), {centroid_share:.0%} to the centroid model")
    anchors = instance_anchors(kps)
    check = test_idx[:: max(1, len(test_idx) // 40)][:40]  # held-out frames for the centroid recall
    cen_dir = model_dir / "centroid"
    if not (resume and (cen_dir / "centroid.json").is_file()):  # a finished centroid model is kept
        if not resume:
            from pose.pipeline.centroid import CENTROID_CHECKPOINT

            (cen_dir / CENTROID_CHECKPOINT).unlink(missing_ok=True)
            (cen_dir / "centroid.json").unlink(missing_ok=True)
        train_centroid_model([read_image(project.root / labels.images[i], ccfg.scale) for i in train_idx],
                             [anchors[i] for i in train_idx], ccfg, cen_dir,
                             test_images=[read_image(project.root / labels.images[i]) for i in check],
                             test_anchors=[anchors[i] for i in check], prescaled=True,
                             resume=resume and (cen_dir / "checkpoint.pt").is_file(),
                             stop_after_epoch=stop_after_epoch)
        if not (cen_dir / "centroid.json").is_file():
            _echo(f"top-down: stopped in the centroid model's training; --resume continues ({model_dir})")
            return model_dir
    result = json.loads((cen_dir / "centroid.json").read_text())
    if "test" in result:
        t = result["test"]
        _echo(f"centroid model: test recall {t['recall']:.3f}, precision {t['precision']:.3f} "
              f"({t['n_true']} animals), mean distance {t['mean_distance_px']:.1f} px")
        if t["recall"] < 0.9:
            _echo(f"WARNING: THE CENTROID MODEL MISSES {1 - t['recall']:.0%} OF THE TEST ANIMALS: train longer "
                  "or label more frames")
    # written with twice the side: the training crops (the recipe's crop_px) then hold real
    # surroundings, neighbours included (as negatives), like the crops seen at inference
    inst_project, inst_test = write_instance_project(project, labels, model_dir / "instance_project", 2 * side,
                                                     set(split.test), seed=cfg.seed, jitter_px=jitter)
    update = {"mine_period": 0, "augment": cfg.augment.model_copy(update={"random_crop": False}),
              "anchor_sigma_px": anchor_sigma}
    if cfg.cpu_minutes:
        update["cpu_minutes"] = cfg.cpu_minutes - c_budget
    elif cfg.minutes:
        update["minutes"] = cfg.minutes - c_budget
    inst_resume = resume and (model_dir / "instance" / "checkpoint.pt").is_file()
    train_model(inst_project, config=cfg.model_copy(update=update), out_dir=model_dir / "instance",
                test_frames=inst_test or None, training_fraction=None if inst_test else 1.0, overwrite=not inst_resume,
                resume=inst_resume, stop_after_epoch=stop_after_epoch)
    if stop_after_epoch is not None:
        rows = (model_dir / "instance" / "training_curve.csv").read_text().strip().splitlines()[1:]
        if len(rows) >= stop_after_epoch:
            _echo(f"top-down: stopped in the instance model's training; --resume continues ({model_dir})")
            return model_dir
    write_text_atomic(model_dir / TOPDOWN_JSON, info.model_dump_json(indent=1))
    return model_dir


def _echo(text: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(text, file=sys.stderr)


class TopDownPredictor:
    """A trained top-down model: frames or a video -> every animal's keypoints.

    Parameters
    ----------
    model_dir
        A folder written by :func:`train_topdown`.
    n_animals
        How many animals to look for per frame (the strongest centres); None = every centre
        above the centroid model's threshold, at most the count seen in the labels;
        ``"labels"`` = that count (the most animals labelled in one frame) as a known count. With a
        count, :meth:`predict_video` drops an instance from a weak centroid peak that the
        instance model is less sure of than of the clearly detected animals
        (:mod:`pose.pipeline.instance_filter`; the floor and the count dropped go to the
        output's attrs): a frame where two animals merged into one peak then lacks one, and
        ``propagate`` looks for it, instead of holding an instance on a background blob.
    runtime, threads
        Of both models (:class:`pose.pipeline.inference.Predictor`; ONNX on CPU by default).
    split_merged
        With ``n_animals``: in a frame with fewer centres, split a peak in which two
        animals in contact merged, by the centroid offsets' votes
        (:func:`pose.pipeline.centroid.split_merged_peaks`). Off by default: shown on
        synthetic score maps and neutral on the flies' centroid model, not yet measured on
        a trained model of animals in contact (``bench/results/multi_animal_pose.md``).
    propagate
        With ``n_animals``, in :meth:`predict_video`: a frame with fewer instances than the
        count is predicted again from crops centred on the previous frame's instances and
        where a missing animal was last seen (:meth:`propagate_instances`), so that two
        animals in contact that make one centroid peak can keep both instances. On by default:
        on the virtual pair (10 min) IDF1 0.586 -> 0.618 and 170 -> 146 switches for 23 % more
        inference CPU (session 6); the last-seen crops then took the anchor model from 48 to 38
        switches (IDF1 0.714 -> 0.702, within its 2-minute blocks' spread of 0.61-0.87); no
        change on the flies, which are never merged (``bench/results/multi_animal_pose.md``).
    """

    def __init__(self, model_dir: str | Path, *, n_animals: int | Literal["labels"] | None = None, runtime: str = "auto",
                 device: str = "auto", threads: int | None = None, split_merged: bool = False,
                 propagate: bool = True) -> None:
        from pose.pipeline.inference import Predictor

        self.root = Path(model_dir).expanduser().resolve()
        path = self.root / TOPDOWN_JSON
        if not path.is_file():
            raise FileNotFoundError(f"{model_dir}: no {TOPDOWN_JSON} (not a top-down model folder)")
        self.info = TopDownInfo.model_validate_json(path.read_text())
        if isinstance(n_animals, str) and n_animals != "labels":
            raise ValueError(f"n_animals={n_animals!r}: a count, None or 'labels'")
        self.n_animals = self.info.n_animals if n_animals == "labels" else n_animals
        self.split_merged = split_merged
        self.propagate = propagate
        # the centroid model in the same runtime as the instance model (ONNX on CPU by default)
        self.centroid = CentroidDetector(self.root / "centroid", device="cpu" if runtime.startswith("onnx") else device,
                                         threads=threads, runtime=runtime)
        self.instance = Predictor.from_dir(self.root / "instance", runtime=runtime, device=device,  # type: ignore[arg-type]
                                           threads=threads)
        # crops exactly as the instance model was trained on: its training crop (crop_px
        # network pixels, the animal at the centre), neither the smaller labelled crop padded
        # at the bottom/right (the animal off-centre) nor a larger one: a crop 1.4x the
        # training side (146 px, not 104, on the virtual pair) showed more of a touching
        # neighbour than training did, and crops centred on either of two close mice returned
        # the same mouse in 63 % of frames, against 22 % at the training side
        # (bench/multi_animal_pose.py centring)
        train_cfg = json.loads((self.root / "instance" / "train_config.json").read_text())
        crop_px, scale = train_cfg["augment"]["crop_px"], train_cfg["scale"] or 1.0
        self.crop_side_px = int(math.floor(crop_px / scale))

    def predict_keypoints(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB uint8 ``(B, H, W, 3)`` -> keypoints ``(B, P, K, 2)`` (original pixels, NaN where a
        frame has fewer animals), keypoint confidence ``(B, P, K)`` and centre score ``(B, P)``;
        instances ordered by centre score, not by identity."""
        p = self.n_animals or self.info.n_animals
        threshold = 0.05 if self.n_animals else None  # a known count: take the strongest peaks
        found = self.centroid.detect(frames, max_peaks=p, threshold=threshold,
                                     split_merged=self.split_merged and self.n_animals is not None)
        k = len(self.info.bodyparts)
        xy = np.full((len(frames), p, k, 2), np.nan)
        conf = np.zeros((len(frames), p, k))
        score = np.zeros((len(frames), p))
        side = self.crop_side_px
        crops, where = [], []
        for b, (centres, probs) in enumerate(found):
            for j, c in enumerate(centres):
                crop, origin = crop_around(frames[b], c, side)
                crops.append(crop)
                where.append((b, j, origin))
                score[b, j] = probs[j]
        if crops:
            kp, cf = self.instance.predict_keypoints(np.stack(crops))
            for (b, j, origin), a, c in zip(where, kp, cf, strict=True):
                xy[b, j] = a + origin
                conf[b, j] = c
        _drop_duplicates(xy, conf, score, 0.15 * self.info.animal_size_px)
        return xy, conf, score

    def predict_video(self, video: str | Path, *, batch_size: int = 8, start: int = 0,
                      stop: int | None = None) -> xr.Dataset:
        """Every animal's keypoints in frames ``start..stop-1`` of a video.

        Returns
        -------
        xarray.Dataset
            Pose Dataset (time, space, keypoint, individual), ``individual`` =
            ``instance_0``... in centre-score order (NOT identities: track them with
            :func:`pose.tracking.track_identities`), confidence = the instance model's.
        """
        from pose.dataset import append_history, from_numpy
        from pose.pipeline.inference import predict_video_frames, video_completeness

        scores: list[np.ndarray] = []

        def predict(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            out = self.predict_keypoints(batch)
            scores.append(out[2])
            return out[0], out[1]

        xy, conf, frames, reader = predict_video_frames(predict, video, batch_size=batch_size, start=start, stop=stop)
        score = np.concatenate(scores)
        added = dropped = 0
        floor, floor_why = float("nan"), "no known animal count"
        if self.n_animals:  # the strongest peaks were taken, however weak: drop the unsure ones
            floor, floor_why = confidence_floor(xy, conf, score)
            dropped = drop_unsure_instances(xy, conf, score, floor)
            _echo(f"top-down: instance confidence floor {floor:.3f} ({floor_why}); {dropped} instances from "
                  f"weak centroid peaks below it dropped (background, or a second look at one animal)")
        if self.propagate and self.n_animals:
            added = self.propagate_instances(xy, conf, video, frames, floor=floor)
        names = [f"instance_{j}" for j in range(xy.shape[1])]
        ds = from_numpy(xy.transpose(0, 3, 2, 1), conf.transpose(0, 2, 1), keypoints=self.info.bodyparts,
                        individuals=names, fps=reader.fps, video_path=str(video), frame_index=frames,
                        source_software="ethopose")
        ds.attrs.update(model_dir=str(self.root), **video_completeness(reader, len(frames)))
        if self.n_animals:
            ds.attrs.update(instance_confidence_floor=floor, instance_confidence_floor_reason=floor_why,
                            dropped_unsure_instances=int(dropped))
        if self.propagate and self.n_animals:
            ds.attrs["propagated_instances"] = int(added)
        return append_history(ds, "predict_video_topdown", {"model_dir": str(self.root), "n_animals": self.n_animals,
                                                            "start": start, "stop": stop,
                                                            "split_merged": self.split_merged,
                                                            "propagate": self.propagate})

    def propagate_instances(self, xy: np.ndarray, conf: np.ndarray, video: str | Path, frames: list[int], *,
                            floor: float | None = None) -> int:
        """In place, in frame order: a frame with fewer instances than ``n_animals`` is
        predicted again from crops centred on each instance of the previous frame, and where
        an animal missing there was last seen within ``PROPAGATE_MEMORY_S`` (:func:`_crop_centres`,
        :meth:`_fill_from_previous`); a result is dropped when it lies on one already kept
        (the duplicate rule of :meth:`predict_keypoints`) or is less confident than ``floor``
        (an animal that left, or background).

        Why: two animals in contact can make one centroid peak; the instance model, trained on
        crops centred on their animal, still places the keypoints of the animal whose centre a
        crop is centred on, and an animal moves a few pixels between frames.

        Parameters
        ----------
        xy, conf
            ``(T, P, K, 2)`` keypoints and ``(T, P, K)`` confidences of :meth:`predict_keypoints`
            for ``frames`` of ``video``; updated in place.
        floor
            Least median keypoint confidence of a kept crop (:func:`pose.pipeline.instance_filter.confidence_floor`
            of the centroid model's sure instances, as :meth:`predict_video` passes it); None =
            the same percentile of every instance in ``xy``.

        Returns
        -------
        The number of instances added.
        """
        from pose.video import VideoReader

        p = xy.shape[1]
        found = np.isfinite(xy).all(axis=-1).any(axis=-1)  # (T, P)
        if found.all() or not found.any():
            return 0
        if floor is None:
            floor = confidence_floor(xy, conf)[0]
        min_px = 0.15 * self.info.animal_size_px
        # frame number -> row, for the rows after the first that lack an animal
        need = {f: r for r, f in enumerate(frames) if r > 0 and found[r].sum() < p}
        if not need:
            return 0
        added = 0
        with VideoReader(video) as reader:
            memory = max(1, int(round(PROPAGATE_MEMORY_S * (reader.fps or 30.0))))
            for first, batch in reader.iter_batches(32, start=frames[0], stop=frames[-1] + 1):
                for k, frame in enumerate(batch):
                    if first + k in need:
                        r = need[first + k]
                        added += self._fill_from_previous(frame, xy, conf, r, _crop_centres(xy, r, memory, min_px),
                                                          floor, min_px)
        return added

    def _fill_from_previous(self, frame: np.ndarray, xy: np.ndarray, conf: np.ndarray, r: int,
                            centres: list[np.ndarray], floor: float, min_px: float) -> int:
        """Row ``r`` of ``xy``/``conf`` from crops centred on ``centres`` (:func:`_crop_centres`).

        Every previous instance gets a crop (not only the ones row ``r`` seems to lack: a crop
        centred between two touching animals can give one instance made of both, which lies
        near each of them); the confident, distinct results come first, then row ``r``'s own
        instances that none of them lies on (an animal found anew). The row is replaced only
        when that holds more instances than it had.
        """
        p = xy.shape[1]
        have = [j for j in range(p) if np.isfinite(xy[r, j]).any()]
        cands: list[tuple[np.ndarray, np.ndarray]] = []
        for centre in centres:
            crop, origin = crop_around(frame, centre, self.crop_side_px)
            kp, cf = self.instance.predict_keypoints(crop[None])
            if float(np.median(cf[0])) >= floor:
                cands.append((kp[0] + origin, cf[0]))
        cands.sort(key=lambda c: -float(np.median(c[1])))
        kept: list[tuple[np.ndarray, np.ndarray]] = []
        for c in cands + [(xy[r, j].copy(), conf[r, j].copy()) for j in have]:
            if all(_median_distance(c[0], k[0]) >= min_px for k in kept):
                kept.append(c)
        kept = kept[:p]
        if len(kept) < p:
            kept = self._search_contacts(frame, kept, p, floor, min_px)
        if len(kept) <= len(have):
            return 0
        xy[r], conf[r] = np.nan, 0.0
        for j, (a, c) in enumerate(kept):
            xy[r, j], conf[r, j] = a, c
        return len(kept) - len(have)


    def _search_contacts(self, frame: np.ndarray, kept: list[tuple[np.ndarray, np.ndarray]], p: int, floor: float,
                         min_px: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """``kept`` plus animals found by crops on a ring around each kept instance's centre
        (:data:`CONTACT_DIRECTIONS` directions at the centroid model's NMS radius, the distance
        under which two animals make one centroid peak), until ``p`` animals: the most
        confident result that passes the floor, lies on no kept instance (the duplicate rule)
        and is centred nearer its crop's centre than the instance it was searched around (the
        anchor's premise: a crop returns the animal nearest its centre).

        Why: in a contact the previous frame often held one instance too, so its crops all
        return the animal already found (on the second virtual pair 83 % of them); a crop at the
        missing mouse's true centre returns it in 97 % of such frames, and the best ring crop
        finds it in 49 % of them, the other mouse in 2 % (``bench/multi_animal_pose.py``,
        session 8 notes in ``bench/results/multi_animal_pose.md``).
        """
        radius = self.centroid.config.nms_radius_px
        ring = radius * np.stack([np.cos(CONTACT_ANGLES), np.sin(CONTACT_ANGLES)], axis=1)
        for around in list(kept):
            if len(kept) >= p:
                break
            centre = np.nanmean(around[0], axis=0)
            if not np.isfinite(centre).all():
                continue
            crops = [crop_around(frame, centre + d, self.crop_side_px) for d in ring]
            kp, cf = self.instance.predict_keypoints(np.stack([c for c, _ in crops]))
            passed = []
            for (_, origin), d, a, c in zip(crops, ring, kp, cf, strict=True):
                xy, found = a + origin, np.nanmean(a + origin, axis=0)
                if (float(np.median(c)) >= floor and np.isfinite(found).all()
                        and np.linalg.norm(found - centre - d) < np.linalg.norm(found - centre)
                        and all(_median_distance(xy, k[0]) >= min_px for k in kept)):
                    passed.append((xy, c))
            if passed:
                kept.append(max(passed, key=lambda x: float(np.median(x[1]))))
        return kept


def missing_animals_warning(instances: xr.Dataset, n_animals: int, max_pct: float = 2.0) -> str | None:
    """A loud line when more than ``max_pct`` % of the frames hold fewer than ``n_animals``
    instances (None otherwise): there the animals' identities and per-animal measures are
    not reliable, whatever the tracker does."""
    found = instances["position"].notnull().any(dim=("space", "keypoint")).sum(dim="individual").values
    pct = 100.0 * float(np.mean(found < n_animals)) if found.size else 0.0
    if pct <= max_pct:
        return None
    return (f"WARNING: {pct:.1f} % OF THE FRAMES HAVE FEWER THAN {n_animals} ANIMALS FOUND (animals in contact "
            f"merge into one instance, or the model misses some): identities and per-animal measures in those "
            f"frames are not reliable; review the swap-suspect table, label more frames with the animals in "
            f"contact and train longer")


def _crop_centres(xy: np.ndarray, r: int, memory: int, min_px: float) -> list[np.ndarray]:
    """Where :meth:`TopDownPredictor.propagate_instances` crops row ``r``: the centre of each
    instance of row ``r - 1``, then of each instance of the latest row within ``memory`` rows
    that held every animal, where none of row ``r - 1``'s lies (within ``min_px``): an animal
    lost for a few frames in a contact (its crop found nothing confident) is looked for again
    where it was last seen, not dropped for the rest of the contact."""
    p = xy.shape[1]
    with warnings.catch_warnings():  # empty slots
        warnings.simplefilter("ignore", RuntimeWarning)
        prev = [c for c in np.nanmean(xy[r - 1], axis=1) if np.isfinite(c).all()]
        if len(prev) >= p:
            return prev
        for q in range(r - 2, max(-1, r - 1 - memory), -1):
            seen = [c for c in np.nanmean(xy[q], axis=1) if np.isfinite(c).all()]
            if len(seen) >= p:
                return prev + [c for c in seen if all(np.linalg.norm(c - o) >= min_px for o in prev)]
    return prev


def _median_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Median keypoint distance of two instances ``(K, 2)`` (inf when none is shared)."""
    d = np.linalg.norm(a - b, axis=-1)
    return float(np.nanmedian(d)) if np.isfinite(d).any() else float("inf")


def _drop_duplicates(xy: np.ndarray, conf: np.ndarray, score: np.ndarray, min_px: float) -> None:
    """In place: an instance whose keypoints lie on a stronger instance's (median distance
    under ``min_px``: two centres found on one animal) is emptied."""
    for b in range(xy.shape[0]):
        for j in range(1, xy.shape[1]):
            for i in range(j):
                if _median_distance(xy[b, i], xy[b, j]) < min_px:
                    xy[b, j] = np.nan
                    conf[b, j] = 0.0
                    score[b, j] = 0.0
                    break
