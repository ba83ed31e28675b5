"""A learned body-shape prior for decoding score maps (torch-free).

A short-trained network often puts a body part on the wrong end of the animal: on the
virtual mouse, after 5 CPU-minutes, the left hind paw's highest peak sat on the right ear
or the right fore paw in 62 % of frames (the 180-degree rotation augmentation makes the
two ends look alike to a network that has not yet learnt the whole body). Its score map
usually still holds a weaker peak at the right place.

:func:`fit_shape_prior` learns, from the training labels, each individual's mean shape
(generalised Procrustes analysis: translation, rotation and scale removed) and how far each
keypoint strays from it (``sd``, in units of the shape's size). :func:`apply_shape_prior`
then fits that shape to a frame's peaks (confidence-weighted, iteratively reweighted so
that a few wrong peaks do not pull the fit) and, for a keypoint whose peak is implausibly
far from where the fitted shape puts it (more than ``3 sd``), takes instead the strongest
local maximum of its score map that is plausible. A part with no plausible peak keeps its
peak (nothing is invented). Reflections are allowed only when the labels show mirrored
animals (a side view of animals walking both ways), so the fit cannot swap left and right
of an animal seen from above.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

MIN_KEYPOINTS = 4  # per individual; fewer cannot constrain a similarity transform
MIN_FRAMES = 8
MIN_LABELS_PER_KEYPOINT = 5
OUTLIER_SD = 3.0  # a peak farther than this many sd from the fitted shape is implausible


class GroupShape(BaseModel):
    """Mean shape of one individual's channels (unit RMS size, centred) and each keypoint's
    spread around it (per-axis sd, same units; ``None`` = too few labels: unconstrained)."""

    model_config = ConfigDict(extra="forbid")

    channels: list[int]
    mean_xy: list[tuple[float, float]]
    sd: list[float | None]
    reflections: bool
    n_frames: int


class ShapePrior(BaseModel):
    """The body-shape prior of a model (``model.json``'s ``shape_prior``)."""

    model_config = ConfigDict(extra="forbid")

    groups: list[GroupShape]


def _fit(ref: np.ndarray, obs: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted similarity fit ``obs ~ a * ref + t`` in complex numbers, batched.

    ``ref``: ``(n,)`` complex; ``obs``, ``w``: ``(B, n)`` (w = 0 where obs is missing).
    Returns ``a``, ``t`` ``(B,)`` and the fitted positions ``(B, n)``.
    """
    sw = np.maximum(w.sum(axis=1), 1e-12)
    obs0 = np.where(w > 0, obs, 0)
    rbar = (w * ref[None]).sum(axis=1) / sw
    zbar = (w * obs0).sum(axis=1) / sw
    rc = ref[None] - rbar[:, None]
    zc = obs0 - zbar[:, None]
    a = (w * np.conj(rc) * zc).sum(axis=1) / np.maximum((w * np.abs(rc) ** 2).sum(axis=1), 1e-12)
    t = zbar - a * rbar
    return a, t, a[:, None] * ref[None] + t[:, None]


def _robust_fit(ref: np.ndarray, obs: np.ndarray, w0: np.ndarray, sd: np.ndarray,
                reflections: bool, floor: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Iteratively reweighted fit; returns fitted positions ``(B, n)`` and the scale ``|a|``."""
    best_fit, best_scale, best_cost = None, None, None
    for mirrored in ((False, True) if reflections else (False,)):
        r = np.conj(ref) if mirrored else ref
        w = w0.copy()
        for _ in range(4):
            a, _, fit = _fit(r, obs, w)
            scale = np.abs(a)[:, None]
            sigma2 = (scale * sd[None]) ** 2 + np.asarray(floor) ** 2 + 1e-12
            d2 = np.abs(np.where(w0 > 0, obs, fit) - fit) ** 2
            w = w0 / (1.0 + d2 / (2.0 * 4.0 * sigma2))  # Cauchy-like: wrong peaks lose their pull
        cost = (w0 * np.minimum(d2 / (2.0 * sigma2), OUTLIER_SD**2)).sum(axis=1)
        if best_cost is None:
            best_fit, best_scale, best_cost = fit, np.abs(a), cost
        else:
            better = cost < best_cost
            best_fit = np.where(better[:, None], fit, best_fit)
            best_scale = np.where(better, np.abs(a), best_scale)
            best_cost = np.where(better, cost, best_cost)
    return best_fit, best_scale


def fit_shape_prior(keypoints: np.ndarray, groups: list[list[int]], *, iterations: int = 8) -> ShapePrior | None:
    """Mean shape and per-keypoint spread of each individual from labelled keypoints.

    Parameters
    ----------
    keypoints
        ``(frames, channels, 2)`` labels (NaN = unlabelled), any pixel units.
    groups
        Channel indices of each individual.

    Returns
    -------
    The prior, or None when no individual has ``MIN_KEYPOINTS`` keypoints labelled together
    in ``MIN_FRAMES`` frames.
    """
    out = []
    kps = np.asarray(keypoints, dtype=float)
    for g in groups:
        if len(g) < MIN_KEYPOINTS:
            continue
        xy = kps[:, g]
        ok = np.isfinite(xy).all(axis=2)
        rows = ok.sum(axis=1) >= MIN_KEYPOINTS
        if rows.sum() < MIN_FRAMES:
            continue
        z = np.where(ok[rows], xy[rows, :, 0] + 1j * xy[rows, :, 1], 0)
        w = ok[rows].astype(float)
        counts = w.sum(axis=0)
        # reference: the frame with the most labelled keypoints, its missing ones from the others
        ref = z[int(w.sum(axis=1).argmax())].copy()
        missing = w[int(w.sum(axis=1).argmax())] == 0
        ref[missing] = (z * w).sum(axis=0)[missing] / np.maximum(counts[missing], 1)
        for _ in range(iterations):
            ref = _normalise(ref, counts > 0)
            aligned, _ = _align_frames(ref, z, w)
            ref = (aligned * w).sum(axis=0) / np.maximum(counts, 1)
        ref = _normalise(ref, counts > 0)
        aligned, use_m = _align_frames(ref, z, w)
        d2 = np.abs(aligned - ref[None]) ** 2
        sd = np.sqrt((d2 * w).sum(axis=0) / np.maximum(counts, 1) / 2.0)
        out.append(GroupShape(
            channels=[int(c) for c in g],
            mean_xy=[(float(v.real), float(v.imag)) for v in ref],
            sd=[float(s) if n >= MIN_LABELS_PER_KEYPOINT else None for s, n in zip(sd, counts, strict=True)],
            reflections=bool(use_m.mean() > 0.05),
            n_frames=int(rows.sum()),
        ))
    return ShapePrior(groups=out) if out else None


def _align_frames(ref: np.ndarray, z: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each frame ``z`` mapped onto ``ref`` by its best similarity transform, or by a mirrored
    one where that fits at least twice as well; returns the aligned frames and which were
    mirrored."""
    out, cost = [], []
    for frames in (z, np.conj(z)):
        a, t, _ = _fit(ref, frames, w)
        aligned = (frames - t[:, None]) / a[:, None]
        out.append(aligned)
        cost.append((np.abs(aligned - ref[None]) ** 2 * w).sum(axis=1))
    mirrored = cost[1] < 0.5 * cost[0]
    return np.where(mirrored[:, None], out[1], out[0]), mirrored


def _normalise(ref: np.ndarray, valid: np.ndarray) -> np.ndarray:
    ref = ref - ref[valid].mean()
    size = np.sqrt((np.abs(ref[valid]) ** 2).mean())
    return ref / max(size, 1e-12)


def apply_shape_prior(logits: np.ndarray, idx: np.ndarray, stride: int, prior: ShapePrior,
                      *, max_candidates: int = 5) -> np.ndarray:
    """Flat peak indices with implausible peaks moved to the best plausible local maximum.

    Parameters
    ----------
    logits
        ``(B, K, h, w)`` score-map logits.
    idx
        ``(B, K)`` chosen flat indices (e.g. each channel's argmax).
    stride
        Output stride (input pixels per cell).
    prior
        From :func:`fit_shape_prior`, in input-pixel-free units (shape size 1).
    """
    from scipy.ndimage import maximum_filter

    b, k, h, w = logits.shape
    cy = np.arange(h) * stride + (stride - 1) / 2.0  # input-pixel centre of each cell
    cx = np.arange(w) * stride + (stride - 1) / 2.0
    idx = idx.copy()
    local_max = None
    for g in prior.groups:
        ch = np.asarray(g.channels)
        if ch.max() >= k:
            continue
        ref = np.array([complex(x, y) for x, y in g.mean_xy])
        sd = np.array([np.nan if s is None else s for s in g.sd])
        known = np.isfinite(sd)
        if known.sum() < MIN_KEYPOINTS:
            continue
        sd_f = np.where(known, sd, 0.0)
        iy, ix = np.divmod(idx[:, ch], w)
        obs = cx[ix] + 1j * cy[iy]
        peak = np.take_along_axis(logits[:, ch].reshape(b, len(ch), -1), idx[:, ch, None], axis=2)[..., 0]
        w0 = (1.0 / (1.0 + np.exp(-peak))) * known[None]
        fit, scale = _robust_fit(ref, obs, w0, sd_f, g.reflections, floor=float(stride))
        sigma = np.sqrt((scale[:, None] * sd_f[None]) ** 2 + float(stride) ** 2)
        far = (np.abs(obs - fit) > OUTLIER_SD * sigma) & known[None]
        if not far.any():
            continue
        if local_max is None:
            local_max = logits == maximum_filter(logits, size=(1, 1, 3, 3), mode="nearest")
        for bi, j in zip(*np.nonzero(far), strict=True):
            c = int(ch[j])
            cand = np.flatnonzero(local_max[bi, c].ravel())
            vals = logits[bi, c].ravel()[cand]
            top = cand[np.argsort(vals)[::-1][:max_candidates]]
            cyx = cx[top % w] + 1j * cy[top // w]
            dist = np.abs(cyx - fit[bi, j])
            ok = dist <= OUTLIER_SD * sigma[bi, j]
            if not ok.any():
                continue
            lv = logits[bi, c].ravel()[top]
            score = -np.logaddexp(0.0, -lv) - dist**2 / (2.0 * sigma[bi, j] ** 2)
            score = np.where(ok, score, -np.inf)
            idx[bi, c] = int(top[int(score.argmax())])
    return idx
