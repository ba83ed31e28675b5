"""The links of a tracking pass (frames x tracks) and what is done with them: the
assignment margins (identity confidence) and the merge of a forward and a backward pass.
Internal to :mod:`pose.tracking.core`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Links:
    """Output of the frame loop (arrays indexed by the output track)."""

    source: np.ndarray  # (time, n_tracks) instance index or -1
    margin: np.ndarray  # (time, n_tracks) identity confidence, NaN when not matched
    innovation: np.ndarray  # (time, n_tracks) matched centroid - predicted, px
    reacquired: np.ndarray  # (time, n_tracks) bool: a lost track taken back here
    centroid: np.ndarray  # (time, n_tracks, 2) filtered centroid (NaN when not matched)


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs (stop exclusive) of the True runs of a 1-D bool array."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def margins(cost: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(second - best) / second for each chosen link (rows[i], cols[i]); see the module."""
    out = np.ones(len(rows))
    taken = set(cols.tolist())
    chosen_rows = set(rows.tolist())
    for n, (r, c) in enumerate(zip(rows, cols, strict=True)):
        best: tuple[float, float] | None = None  # (second, best) of the closest alternative
        for r2, c2 in zip(rows, cols, strict=True):  # exchange instances with another track
            if r2 != r:
                pair = (cost[r, c2] + cost[r2, c], cost[r, c] + cost[r2, c2])
                if best is None or pair[0] - pair[1] < best[0] - best[1]:
                    best = pair
        for c2 in range(cost.shape[1]):  # take an unclaimed instance instead
            if c2 not in taken:
                pair = (cost[r, c2], cost[r, c])
                if best is None or pair[0] - pair[1] < best[0] - best[1]:
                    best = pair
        for r2 in range(cost.shape[0]):  # leave the instance to a track without one
            if r2 not in chosen_rows:
                pair = (cost[r2, c], cost[r, c])
                if best is None or pair[0] - pair[1] < best[0] - best[1]:
                    best = pair
        if best is not None:  # an alternative that costs nothing is a tie
            out[n] = float(np.clip((best[0] - best[1]) / best[0], 0.0, 1.0)) if best[0] > 0 else 0.0
    return out



def reverse_links(links: Links) -> Links:
    return Links(**{k: getattr(links, k)[::-1].copy() for k in ("source", "margin", "innovation",
                                                                 "reacquired", "centroid")})


def merge_directions(fwd: Links, bwd: Links) -> tuple[Links, int]:
    """Forward and backward (time-reversed) tracking merged: the backward tracks are matched
    to the forward ones by how often they hold the same instance; in every run of frames
    where the two disagree, the direction whose weakest decision (lowest identity
    confidence) in the run is stronger wins. Returns the links and the runs taken from the
    backward pass."""
    n_t = fwd.source.shape[0]
    k = max(fwd.source.shape[1], bwd.source.shape[1])

    def pad(lk: Links) -> Links:
        extra = k - lk.source.shape[1]
        if not extra:
            return lk
        return Links(source=np.pad(lk.source, ((0, 0), (0, extra)), constant_values=-1),
                      margin=np.pad(lk.margin, ((0, 0), (0, extra)), constant_values=np.nan),
                      innovation=np.pad(lk.innovation, ((0, 0), (0, extra)), constant_values=np.nan),
                      reacquired=np.pad(lk.reacquired, ((0, 0), (0, extra))),
                      centroid=np.pad(lk.centroid, ((0, 0), (0, extra), (0, 0)), constant_values=np.nan))

    fwd, bwd = pad(fwd), pad(bwd)
    agree = np.array([[np.sum((fwd.source[:, a] == bwd.source[:, b]) & (fwd.source[:, a] >= 0))
                       for b in range(k)] for a in range(k)])
    _, perm = linear_sum_assignment(-agree)
    bwd = Links(source=bwd.source[:, perm], margin=bwd.margin[:, perm],
                 innovation=bwd.innovation[:, perm], reacquired=bwd.reacquired[:, perm],
                 centroid=bwd.centroid[:, perm])
    differ = (fwd.source != bwd.source).any(axis=1)
    out = {name: getattr(fwd, name).copy() for name in ("source", "margin", "innovation",
                                                         "reacquired", "centroid")}
    d = np.diff(np.concatenate(([0], differ.astype(np.int8), [0])))
    taken = 0
    for s0, e0 in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
        lo, hi = max(0, s0 - 1), min(n_t, e0 + 1)  # the decisions that led into / out of the run
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mf = np.nanmin(fwd.margin[lo:hi]) if np.isfinite(fwd.margin[lo:hi]).any() else 1.0
            mb = np.nanmin(bwd.margin[lo:hi]) if np.isfinite(bwd.margin[lo:hi]).any() else 1.0
        if mb > mf:
            for name in out:
                out[name][s0:e0] = getattr(bwd, name)[s0:e0]
            taken += 1
    return Links(**out), taken
