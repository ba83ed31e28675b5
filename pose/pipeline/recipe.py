"""The training recipe of a project, derived from its labels (torch-free).

:func:`derive_recipe` chooses, from the labelled keypoints and the frame size, the five
settings that decide whether a pose network can learn a project in a fixed budget, and says
why for each (``Recipe.reasons``, printed at the start of training and saved as
``MODEL_DIR/recipe.json``):

- ``scale``: the input scale that maps the labelled animal's extent (90th percentile of the
  per-frame bounding-box diagonal of an individual's labelled keypoints) to
  :data:`TARGET_EXTENT_PX` network pixels, whatever the frame size; frames are resized once,
  so the cost per training sample and the memory do not grow with the frame.
- ``crop_px``: the training-crop side, from the scaled extent.
- ``sigma_px``: the score-map width, from the spacing of the keypoints (median distance of a
  keypoint to its nearest labelled neighbour, in network pixels).
- ``rotation_deg``: full (180) only for a view from above or below in which the labelled body
  axis takes every orientation (declared ``view: top``, or shown by the data); otherwise a
  modest :data:`MODEST_ROTATION_DEG`.
- ``flip_pairs``: left/right pairs swapped under a horizontal flip: declared
  (``symmetry_pairs`` in ``config.yaml``) or matched with confidence from the names
  (:func:`match_flip_pairs`); none -> no flips.

Every choice can be overridden (:class:`RecipeOverrides`: the ``recipe:`` section of
``config.yaml``, then the ``ethopose pose train`` options).
"""

from __future__ import annotations

import math
import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pose.pipeline.modeldir import individual_channels

View = Literal["top", "bottom", "side", "front", "mirror", "other"]

RECIPE_JSON = "recipe.json"  # written into the model folder by training

TARGET_EXTENT_PX = 128.0  # network pixels of the labelled animal's extent
# scales this close to 1 keep the frames as they are (up-sampling by less than 1.34 adds cost,
# not detail; down-sampling by more than 0.9 saves compute in proportion to its square)
NATIVE_BAND = (0.9, 1.34)
MAX_SCALE = 2.0
MIN_SPACING_STRIDES = 1.5  # nearest labelled neighbours at least this many output cells apart
# Training-crop side / scaled extent. The network sees whole frames at inference; a training
# crop only needs the animal and some surroundings (false detections are mined on whole frames
# and later crops centred on them), and a step costs in proportion to the crop's area (224 px:
# 0.20 CPU-s per sample, 160 px: 0.105; bench/results/pose_train_step_cost.md). 1.2 instead
# of 1.6 at the same CPU budget (bench/results/pose_generalization_cpu.md, session 4):
# Horse-10 13.5 -> 7.2 px, side-view gait 5.7 -> 1.9, heavy nuisance 3.0 -> 1.5 (12 CPU-min);
# DeepLabCut openfield 2.63 -> 2.54 px (30 CPU-min).
CROP_FACTOR = 1.2
CROP_RANGE_PX = (160, 320)
SIGMA_FRACTION = 0.3  # score-map sigma / nearest-neighbour spacing
# Lower bound of sigma in output cells (stride). Each keypoint has its own channel, so a wide
# map does not blur neighbours into each other, and the location-refinement offsets restore
# the precision; a narrow one gives few positive cells and learns slowly. Measured on the
# demo's virtual-mouse session at the same 5 CPU-minute budget (scale 0.5, stride 4; video
# error vs truth, mean px): sigma 3 -> 20.8, 4 -> 14.7, 5 -> 10.9.
SIGMA_MIN_STRIDES = 1.25
MODEST_ROTATION_DEG = 20.0
# The labelled body axis of an animal free to turn (seen from above or below) spreads widely
# (DeepLabCut's open field: 41 degrees axial circular sd); an upright, head-fixed or side-view
# animal's stays narrow (Horse-10 side view: 9 degrees).
FULL_TURN_MIN_SPREAD_DEG = 30.0
FULL_TURN_MIN_FRAMES = 12


class RecipeOverrides(BaseModel):
    """Choices given by the user (``config.yaml``'s ``recipe:`` section or CLI options).

    None = derive from the labels. ``flip_pairs`` names body parts; ``[]`` = no flips.
    """

    model_config = ConfigDict(extra="forbid")

    view: View | None = None
    scale: float | None = Field(None, gt=0, le=4)
    crop_px: int | None = Field(None, ge=32, multiple_of=32)
    sigma_px: float | None = Field(None, gt=0)
    rotation_deg: float | None = Field(None, ge=0, le=180)
    flip_pairs: list[tuple[str, str]] | None = None

    def merged(self, over: RecipeOverrides | None) -> RecipeOverrides:
        """These overrides with the fields set in ``over`` taking precedence."""
        if over is None:
            return self
        return self.model_copy(update=over.model_dump(exclude_none=True))


class Recipe(BaseModel):
    """Resolved training recipe (``MODEL_DIR/recipe.json``); ``reasons`` explains each field.

    Sizes: ``animal_size_px`` and ``keypoint_spacing_px`` in original-image pixels;
    ``crop_px`` and ``sigma_px`` in network-input pixels (after ``scale``).
    """

    model_config = ConfigDict(extra="forbid")

    frame_hw: tuple[int, int]
    animal_size_px: float
    keypoint_spacing_px: float
    view: str
    scale: float
    crop_px: int
    sigma_px: float
    rotation_deg: float
    flip_pairs: list[tuple[str, str]]
    reasons: dict[str, str]

    def describe(self) -> str:
        """Multi-line text: one line per choice with its reason."""
        lines = [f"training recipe (frame {self.frame_hw[1]}x{self.frame_hw[0]} px, animal size "
                 f"{self.animal_size_px:.0f} px, keypoint spacing {self.keypoint_spacing_px:.1f} px):"]
        for key in ("view", "scale", "crop_px", "sigma_px", "rotation_deg", "flip_pairs"):
            value = getattr(self, key)
            shown = f"{value:.3g}" if isinstance(value, float) else str(value)
            lines.append(f"  {key:<13}{shown:<12} {self.reasons.get(key, '')}")
        return "\n".join(lines)


# ------------------------------------------------------------------ label statistics


def animal_extents_px(keypoints: np.ndarray, names: list[str]) -> np.ndarray:
    """Bounding-box diagonal of each individual's labelled keypoints, per frame.

    Parameters
    ----------
    keypoints
        ``(frames, channels, 2)`` pixels, NaN = unlabelled.
    names
        Channel names (``individual/bodypart`` when several individuals).

    Returns
    -------
    1-D array over (frame, individual) with at least two labelled keypoints.
    """
    kps = np.asarray(keypoints, float)
    out = []
    for g in individual_channels(names):
        xy = kps[:, g]
        ok = np.isfinite(xy).all(axis=2)
        rows = ok.sum(axis=1) >= 2
        if rows.any():
            xy = xy[rows]
            out.append(np.hypot(*(np.nanmax(xy, axis=1) - np.nanmin(xy, axis=1)).T))
    return np.concatenate(out) if out else np.zeros(0)


def animal_size_px(keypoints: np.ndarray, names: list[str], *, percentile: float = 90.0) -> float:
    """The labelled animal's size: a high percentile of :func:`animal_extents_px` (NaN if none)."""
    ext = animal_extents_px(keypoints, names)
    return float(np.percentile(ext, percentile)) if ext.size else math.nan


def keypoint_spacing_px(keypoints: np.ndarray, names: list[str]) -> float:
    """Median distance of a labelled keypoint to its nearest labelled neighbour (same individual)."""
    kps = np.asarray(keypoints, float)
    nn = []
    for g in individual_channels(names):
        if len(g) < 2:
            continue
        xy = kps[:, g]
        d = np.linalg.norm(xy[:, :, None] - xy[:, None], axis=-1)
        d[:, np.arange(len(g)), np.arange(len(g))] = np.inf
        d = np.where(np.isfinite(d), d, np.inf).min(axis=2)
        nn.append(d[np.isfinite(d)])
    vals = np.concatenate(nn) if nn else np.zeros(0)
    vals = vals[vals > 0]
    return float(np.median(vals)) if vals.size else math.nan


_HEAD = ("snout", "nose", "head", "beak", "mouth")
# the rear end of the body axis: mammals (tail base, rump) and insects (abdomen: SLEAP's flies;
# without it the flies' axis fell to the two most separated leg tips, which spread only 15 deg)
_TAIL = ("tailbase", "tail_base", "tail base", "tail-base", "tailroot", "tail_root", "tail", "rump",
         "abdomen")


def body_axis(keypoints: np.ndarray, names: list[str]) -> tuple[tuple[int, int] | None, np.ndarray, str]:
    """The body axis (a head-tail pair by name, else the two most separated keypoints).

    Returns the channel pair ``(a, b)`` of the first individual, the direction angles in
    degrees (-180, 180] of ``b - a`` over every frame and individual where both are labelled,
    and how the pair was chosen.
    """
    kps = np.asarray(keypoints, float)
    groups = individual_channels(names)
    first = groups[0]
    parts = [names[i].split("/")[-1].lower() for i in first]

    def find(words: tuple[str, ...]) -> int | None:
        for w in words:
            for j, p in enumerate(parts):
                if p == w or p.replace(" ", "_") == w:
                    return j
        for w in words:
            for j, p in enumerate(parts):
                if p.startswith(w):
                    return j
        return None

    h, t = find(_HEAD), find(_TAIL)
    how = "head-tail pair by name"
    if h is None or t is None or h == t:
        both = np.isfinite(kps[:, first]).all(axis=2)
        best, pair = -1.0, None
        for a in range(len(first)):
            for b in range(a + 1, len(first)):
                ok = both[:, a] & both[:, b]
                if ok.sum() < max(2, 0.5 * len(kps)):
                    continue
                dist = float(np.median(np.linalg.norm(kps[ok, first[a]] - kps[ok, first[b]], axis=1)))
                if dist > best:
                    best, pair = dist, (a, b)
        if pair is None:
            return None, np.zeros(0), "no pair of keypoints labelled together in half the frames"
        h, t = pair
        how = "the two most separated keypoints"
    angles = []
    for g in groups:
        v = kps[:, g[h]] - kps[:, g[t]]
        ok = np.isfinite(v).all(axis=1)
        angles.append(np.degrees(np.arctan2(v[ok, 1], v[ok, 0])))
    return (first[t], first[h]), np.concatenate(angles), how


def axial_spread_deg(angles_deg: np.ndarray) -> float:
    """Circular standard deviation of an axis (direction modulo 180 degrees), in degrees.

    ``sqrt(-2 ln R2) / 2`` with ``R2`` the mean resultant length of the doubled angles: 0 for
    a fixed axis, large (> 60) for an axis that takes every orientation. NaN when empty.
    """
    a = np.radians(np.asarray(angles_deg, float))
    if a.size == 0:
        return math.nan
    r2 = float(np.abs(np.exp(2j * a).mean()))
    return abs(float(np.degrees(math.sqrt(-2.0 * math.log(min(max(r2, 1e-12), 1.0)))) / 2.0))


# ------------------------------------------------------------------ left/right names

_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SIDE_TOKEN = re.compile(r"^(?:[lr]|[lr][fhb]|[fhb][lr])$", re.IGNORECASE)
_SWAP = str.maketrans("lrLR", "rlRL")


def _swap_word(word: str) -> str:
    """left<->right inside a word, keeping the case pattern."""
    def repl(m: re.Match) -> str:
        s = m.group(0)
        other = "right" if s.lower() == "left" else "left"
        if s.isupper():
            return other.upper()
        return other.capitalize() if s[0].isupper() else other
    return re.sub(r"left|right", repl, word, flags=re.IGNORECASE)


def _side_variants(name: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(side, partner name, key without digits)`` for each left/right marker in ``name``."""
    out = []
    for m in _TOKEN.finditer(name):
        tok = m.group(0)
        low = tok.lower()
        if re.search(r"left|right", low):
            side = "L" if "left" in low else "R"
            swapped = _swap_word(tok)
            generic = re.sub(r"left|right", "<s>", low)
        elif _SIDE_TOKEN.match(tok):
            side = "L" if "l" in low else "R"
            swapped = tok.translate(_SWAP)
            generic = re.sub(r"[lr]", "<s>", low)
        else:
            continue
        partner = name[: m.start()] + swapped + name[m.end():]
        key = tuple(generic if t.start() == m.start() else t.group(0).lower()
                    for t in _TOKEN.finditer(name) if not t.group(0).isdigit())
        out.append((side, partner, key))
    return out


def match_flip_pairs(names: list[str]) -> list[tuple[str, str]]:
    """Left/right body-part pairs matched from their names, only when the match is certain.

    A name pairs with the name that differs only by its side marker: ``left``/``right``
    anywhere in a word (``leftear``/``rightear``, ``EarLeft``), or a side token at a word
    boundary: ``L``/``R`` (``ear_l``, ``LEar``, ``forepawR``), ``LH``/``RH``, ``LF``/``RF``,
    ``LB``/``RB``, ``FL``/``FR``, ``HL``/``HR``, case-insensitive. When no exact partner
    exists, digits are ignored (mirror layouts number the paws: ``paw1LH_top`` pairs with
    ``paw4RH_top``), provided that exactly one name on each side matches. A name never
    pairs twice; unpaired names (``Nearknee``/``Offknee``, ``a``/``b``) are not flipped.

    Returns
    -------
    list of ``(left name, right name)`` in the order of the left names.
    """
    present = set(names)
    pairs: list[tuple[str, str]] = []
    used: set[str] = set()
    relaxed: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for n in names:
        for side, _, key in _side_variants(n):
            relaxed.setdefault((side, key), []).append(n)
    for n in names:
        if n in used:
            continue
        for side, partner, key in _side_variants(n):
            if side != "L":
                continue
            if partner in present and partner != n and partner not in used:
                pairs.append((n, partner))
                used.update((n, partner))
                break
            lefts, rights = relaxed.get(("L", key), []), relaxed.get(("R", key), [])
            if len(set(lefts)) == 1 and len(set(rights)) == 1 and rights[0] not in used and rights[0] != n:
                pairs.append((n, rights[0]))
                used.update((n, rights[0]))
                break
    return pairs


# ------------------------------------------------------------------ the recipe


def _ceil32(v: float) -> int:
    return int(math.ceil(v / 32.0) * 32)


def derive_recipe(
    keypoints: np.ndarray,
    names: list[str],
    frame_hw: tuple[int, int],
    *,
    stride: int = 4,
    overrides: RecipeOverrides | None = None,
    declared_pairs: list[tuple[str, str]] | None = None,
) -> Recipe:
    """Derive the training recipe from a project's training labels.

    Parameters
    ----------
    keypoints
        ``(frames, channels, 2)`` training labels in original-image pixels (NaN = unlabelled).
    names
        Channel names (``individual/bodypart`` when several individuals).
    frame_hw
        Size of the labelled frames (height, width) in pixels.
    stride
        Output stride of the network (score-map cell, network pixels).
    overrides
        User choices (config, then CLI); a set field is used as is, with "given" as reason.
    declared_pairs
        ``symmetry_pairs`` from the project's config (body-part names); None = not declared.

    Returns
    -------
    Recipe
    """
    ov = overrides or RecipeOverrides()
    reasons: dict[str, str] = {}
    size = animal_size_px(keypoints, names)
    spacing = keypoint_spacing_px(keypoints, names)
    if not math.isfinite(size) or size <= 0:
        size = float(max(frame_hw))
    if not math.isfinite(spacing) or spacing <= 0:
        spacing = size / 4.0

    # scale
    if ov.scale is not None:
        scale = float(ov.scale)
        reasons["scale"] = "given"
    else:
        raw = TARGET_EXTENT_PX / size
        why = f"animal size {size:.0f} px -> {TARGET_EXTENT_PX:.0f} network px"
        need = MIN_SPACING_STRIDES * stride / spacing
        if raw < need:
            raw = min(need, MAX_SCALE, 2.5 * TARGET_EXTENT_PX / size)
            why += (f", raised so neighbouring keypoints ({spacing:.1f} px apart) stay "
                    f">= {MIN_SPACING_STRIDES * stride:.0f} px apart at the network input")
        raw = min(raw, MAX_SCALE)
        if NATIVE_BAND[0] <= raw <= NATIVE_BAND[1] and spacing >= 0.8 * MIN_SPACING_STRIDES * stride:
            reasons["scale"] = f"{why} needs {raw:.2f}: close to 1, frames used as they are"
            scale = 1.0
        else:
            scale = round(raw, 3)
            reasons["scale"] = why
    scaled_size, scaled_spacing = size * scale, spacing * scale
    frame_scaled = (round(frame_hw[0] * scale), round(frame_hw[1] * scale))

    # crop
    if ov.crop_px is not None:
        crop = int(ov.crop_px)
        reasons["crop_px"] = "given"
    else:
        want = CROP_FACTOR * scaled_size
        crop = min(max(_ceil32(want), CROP_RANGE_PX[0]), CROP_RANGE_PX[1], _ceil32(max(frame_scaled)))
        crop = max(crop, 32)
        reasons["crop_px"] = (f"{CROP_FACTOR} x scaled animal size {scaled_size:.0f} px, rounded up to 32, "
                              f"within {CROP_RANGE_PX[0]}-{CROP_RANGE_PX[1]} and the frame "
                              f"{frame_scaled[1]}x{frame_scaled[0]}")

    # sigma
    if ov.sigma_px is not None:
        sigma = float(ov.sigma_px)
        reasons["sigma_px"] = "given"
    else:
        lo, hi = SIGMA_MIN_STRIDES * stride, 2.0 * stride
        sigma = float(min(max(round(2 * SIGMA_FRACTION * scaled_spacing) / 2, lo), hi))
        reasons["sigma_px"] = (f"{SIGMA_FRACTION} x keypoint spacing {scaled_spacing:.1f} network px, "
                               f"clipped to {lo:g}-{hi:g} (stride {stride}: a score map narrower than "
                               f"{SIGMA_MIN_STRIDES:g} output cells learns slowly in a short budget)")

    # view and rotation
    pair, angles, how = body_axis(keypoints, names)
    spread = axial_spread_deg(angles)
    turns = angles.size >= FULL_TURN_MIN_FRAMES and spread >= FULL_TURN_MIN_SPREAD_DEG
    axis_txt = (f"body axis {names[pair[0]]}->{names[pair[1]]} ({how}) spreads {spread:.0f} deg "
                f"(axial circular sd, {angles.size} labels; >= {FULL_TURN_MIN_SPREAD_DEG:.0f} = free to turn)"
                if pair else how)
    if ov.view is not None:
        view = ov.view
        reasons["view"] = "declared"
    else:
        view = "top" if turns else "other"
        reasons["view"] = f"from the labels: {axis_txt}"
    if ov.rotation_deg is not None:
        rotation = float(ov.rotation_deg)
        reasons["rotation_deg"] = "given"
    elif view == "top" or (view == "bottom" and turns):
        rotation = 180.0
        reasons["rotation_deg"] = ("any angle: declared top view" if ov.view == "top"
                                   else f"any angle: the animal takes every orientation ({axis_txt})")
    else:
        rotation = MODEST_ROTATION_DEG
        reasons["rotation_deg"] = (f"modest: {view} view" + ("" if ov.view else f"; {axis_txt}")
                                   + " (declare view: top in config.yaml for full rotation)")

    # flips
    bodyparts = [n.split("/")[-1] for n in names]
    unique_bp = list(dict.fromkeys(bodyparts))
    if ov.flip_pairs is not None:
        flips = [tuple(p) for p in ov.flip_pairs]
        reasons["flip_pairs"] = "given" + ("" if flips else ": no flips")
    elif declared_pairs is not None:
        flips = [tuple(p) for p in declared_pairs]
        reasons["flip_pairs"] = "declared (symmetry_pairs)" + ("" if flips else ": no flips")
    else:
        flips = match_flip_pairs(unique_bp)
        reasons["flip_pairs"] = ("left/right pairs matched from the names" if flips
                                 else "no left/right pairs in the names: no flips")
    bad = [p for p in flips if len(p) != 2 or p[0] not in unique_bp or p[1] not in unique_bp]
    if bad:
        raise ValueError(f"flip pairs {bad} must name two body parts of {unique_bp}")
    return Recipe(frame_hw=(int(frame_hw[0]), int(frame_hw[1])), animal_size_px=round(size, 2),
                  keypoint_spacing_px=round(spacing, 2), view=view, scale=scale, crop_px=crop,
                  sigma_px=sigma, rotation_deg=rotation, flip_pairs=[(a, b) for a, b in flips],
                  reasons=reasons)
