"""Peaks of the centroid model's score map (:mod:`pose.pipeline.centroid`): local maxima with
non-maximum suppression, and the split of a peak in which two animals in contact merged.

numpy only (no torch).
"""

from __future__ import annotations

import numpy as np

__all__ = ["find_peaks", "split_merged_peaks"]


def find_peaks(prob: np.ndarray, offsets: np.ndarray, stride: int, *, radius_px: float, threshold: float,
               max_peaks: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of one score map, strongest first, none within ``radius_px`` of a stronger one.

    Parameters
    ----------
    prob
        ``(h, w)`` probabilities.
    offsets
        ``(2, h, w)`` offsets in units of ``stride``.
    radius_px
        Suppression radius in network pixels.
    threshold
        Lowest probability kept.
    max_peaks
        At most this many (None: all above the threshold).

    Returns
    -------
    ``(P, 2)`` sub-pixel positions in network pixels and ``(P,)`` probabilities.
    """
    from scipy.ndimage import maximum_filter

    from pose.pipeline.model import cell_centres

    h, w = prob.shape
    local = (prob == maximum_filter(prob, size=3, mode="constant", cval=-1.0)) & (prob >= threshold)
    iy, ix = np.nonzero(local)
    order = np.argsort(-prob[iy, ix], kind="stable")
    x = cell_centres(w, stride)[ix] + offsets[0, iy, ix] * stride
    y = cell_centres(h, stride)[iy] + offsets[1, iy, ix] * stride
    kept: list[int] = []
    for j in order:
        if all((x[j] - x[k]) ** 2 + (y[j] - y[k]) ** 2 > radius_px**2 for k in kept):
            kept.append(int(j))
            if max_peaks is not None and len(kept) >= max_peaks:
                break
    return np.stack([x[kept], y[kept]], axis=1).reshape(-1, 2), prob[iy[kept], ix[kept]]


def split_merged_peaks(prob: np.ndarray, offsets: np.ndarray, stride: int, xy: np.ndarray, p: np.ndarray,
                       want: int, *, reach_cells: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Two animals in contact whose score-map blobs merged into one peak, split by the offsets.

    Each cell's offset was trained to point to its NEAREST centre, so around a merged peak
    the cells' votes (cell centre + offset) form two clusters, one per animal, even when the
    score map has a single maximum. While fewer than ``want`` peaks are found, the votes of
    the cells within ``reach_cells`` of each peak (probability >= a quarter of the peak's)
    are split in two (weighted 2-means); the split is taken when it is clearly bimodal: both
    clusters hold >= 20 % of the weight and lie farther apart than one output cell and than
    2.5 x their pooled spread (Ashman's D). Arguments as :func:`find_peaks`; ``xy``/``p`` are
    its peaks (network pixels), returned with the split ones (the weaker half appended, its
    probability the peak's).
    """
    from pose.pipeline.model import cell_centres

    h, w = prob.shape
    cx, cy = cell_centres(w, stride), cell_centres(h, stride)
    xy, p = [np.asarray(v, float) for v in xy], list(p)
    for j in range(len(xy)):
        if len(xy) >= want:
            break
        ix, iy = int(np.argmin(np.abs(cx - xy[j][0]))), int(np.argmin(np.abs(cy - xy[j][1])))
        ys, xs = slice(max(0, iy - reach_cells), iy + reach_cells + 1), slice(max(0, ix - reach_cells), ix + reach_cells + 1)
        pr = prob[ys, xs]
        m = pr >= 0.25 * prob[iy, ix]
        if m.sum() < 4:
            continue
        vx = (cx[xs][None, :] + offsets[0, ys, xs] * stride)[m]
        vy = (cy[ys][:, None] + offsets[1, ys, xs] * stride)[m]
        votes, wt = np.stack([vx, vy], axis=1), pr[m]
        split = _two_means(votes, wt)
        if split is None:
            continue
        (a, b), (wa, wb), spread = split
        sep = float(np.linalg.norm(a - b))
        if min(wa, wb) < 0.2 or sep <= stride or sep <= 2.5 * spread:
            continue
        strong, weak = (a, b) if wa >= wb else (b, a)
        xy[j] = strong
        xy.append(weak)
        p.append(p[j])
    return np.array(xy, float).reshape(-1, 2), np.array(p, float)


def _two_means(votes: np.ndarray, weight: np.ndarray, iters: int = 10):
    """Weighted 2-means of 2-D points started at the two farthest points: the two centres,
    their weight shares and the pooled within-cluster spread (weighted RMS), or None."""
    d = np.linalg.norm(votes[:, None] - votes[None], axis=-1)
    i, k = np.unravel_index(int(np.argmax(d)), d.shape)
    if d[i, k] == 0:
        return None
    c = votes[[i, k]].astype(float)
    for _ in range(iters):
        lab = np.linalg.norm(votes[:, None] - c[None], axis=-1).argmin(axis=1)
        if (lab == 0).all() or (lab == 1).all():
            return None
        c = np.stack([np.average(votes[lab == g], axis=0, weights=weight[lab == g]) for g in (0, 1)])
    share = np.array([weight[lab == g].sum() for g in (0, 1)]) / weight.sum()
    spread = float(np.sqrt(np.average(np.sum((votes - c[lab]) ** 2, axis=1), weights=weight)))
    return c, share, spread
