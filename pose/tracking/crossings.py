"""Crossings resolved as a whole: the identities on either side of an uncertain run of frames
linked by bridging the run, not frame by frame.

Where two animals touch, a pose model often finds one instance for both, and which animal
that lone instance lies on can change inside the contact. The frame loop
(:mod:`pose.tracking.core`) gives it to the track it is nearest, so a track can follow the
instance from one animal onto the other and leave the contact on the wrong animal.

:func:`resolve_episodes` (known number of animals only) revisits every **episode**: a run of
frames where the tracker was unsure (a track without an instance, or an identity confidence
under ``low_margin``), between frames where it was sure (every track matched, confidence at
least ``low_margin``, for at least :data:`MIN_CLEAR` frames: short sure runs are absorbed).
For an episode of ``g - 1`` frames between the sure frames ``a`` (before) and ``b = a + g``
(after):

1. **Link**: the cost of continuing track ``i`` of frame ``a`` as track ``j`` of frame ``b``
   is the mean keypoint distance between ``i``'s pose carried forward to ``b`` and ``j``'s
   pose, plus the same for ``j``'s pose carried back to ``a`` against ``i``'s ("carried" =
   translated by the track's velocity over the gap, the velocity a least-squares line
   through its centroid over the :data:`VELOCITY_S` before ``a`` / after ``b``). The
   keypoints keep the animal's heading and posture, which the gap hardly changes; the
   assignment (Hungarian) minimises the total and its margin is the episode's identity
   confidence.
2. **Relabel**: when the best links are not the tracker's and the episode's confidence is at
   least ``low_margin`` (an unsure bridge does not overrule the frame loop), the tracks are
   exchanged from a frame ``tau`` on, to the end of the data. ``tau`` is the frame inside
   the episode (or ``b``) from which the exchanged identities fit the **bridges** best:
   each animal's bridge is its keypoints interpolated linearly from ``a`` to ``b``, and the
   fit is the tracker's robust cost (keypoint distances capped at the gate) of the
   instances the tracks hold. A lone instance that slid from one animal onto the other
   thus changes track where it changed animal.
3. **Confidence**: the identity confidence inside the episode is at most the episode's, so
   that an unsure bridge is listed by :func:`pose.tracking.detect_swap_suspects`.

Episodes longer than the coasting horizon (``max_coast_frames``) and those at the start or
end of the data are left as the tracker made them: a linear bridge over more than that is
not evidence.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from pose.tracking.links import Links, margins, true_runs

MIN_CLEAR = 3  # a sure run shorter than this (frames) is part of the episode around it
VELOCITY_S = 0.1  # seconds of sure frames a track's velocity is fitted on (at least 2 frames)


@dataclass(frozen=True)
class EpisodeSummary:
    """What :func:`resolve_episodes` did: episodes found, bridged, the row ``tau`` from which
    each relabelling exchanged identities, and the bridged episodes' identity confidences."""

    n_episodes: int
    n_bridged: int
    relabelled_at: tuple[int, ...]
    confidence: tuple[float, ...]


def find_episodes(matched: np.ndarray, margin: np.ndarray, low_margin: float,
                  min_clear: int = MIN_CLEAR) -> list[tuple[int, int]]:
    """(a, b) of every episode: the sure frames just before and just after a run of unsure
    frames (``-1`` / ``len`` where the data start or end unsure). ``matched`` and ``margin``
    are (time, track)."""
    sure = matched.all(axis=1) & (np.nan_to_num(margin, nan=0.0) >= low_margin).all(axis=1)
    for s, e in true_runs(sure):  # short sure runs are absorbed
        if e - s < min_clear:
            sure[s:e] = False
    return [(s - 1, e) for s, e in true_runs(~sure)]


def _velocity(cent: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Least-squares slope (px / frame) of (n, 2) centroids at ``frames``; 0 with < 2."""
    ok = np.isfinite(cent).all(axis=1)
    if ok.sum() < 2:
        return np.zeros(2)
    f = frames[ok] - frames[ok].mean()
    return (f[:, None] * (cent[ok] - cent[ok].mean(axis=0))).sum(axis=0) / (f**2).sum()


def _pose_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Mean distance over keypoints finite in both (K, 2) poses; NaN when none are."""
    d = np.linalg.norm(p - q, axis=1)
    d = d[np.isfinite(d)]
    return float(d.mean()) if d.size else np.nan


def link_cost(pose_a: np.ndarray, vel_a: np.ndarray, pose_b: np.ndarray, vel_b: np.ndarray,
              gap: int) -> np.ndarray:
    """(n, n) cost of continuing animal ``i`` at ``a`` as track ``j`` at ``b = a + gap``.

    ``pose_a``/``pose_b``: (n, K, 2) keypoints; ``vel_a``/``vel_b``: (n, 2) px per frame.
    Forward: ``pose_a[i] + gap * vel_a[i]`` against ``pose_b[j]``; backward:
    ``pose_b[j] - gap * vel_b[j]`` against ``pose_a[i]``; the sum.
    """
    n = len(pose_a)
    cost = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            fwd = _pose_distance(pose_a[i] + gap * vel_a[i], pose_b[j])
            bwd = _pose_distance(pose_b[j] - gap * vel_b[j], pose_a[i])
            if not (np.isfinite(fwd) and np.isfinite(bwd)):  # no keypoint in common: centres
                ca, cb = np.nanmean(pose_a[i], axis=0), np.nanmean(pose_b[j], axis=0)
                fwd = float(np.linalg.norm(ca + gap * vel_a[i] - cb))
                bwd = float(np.linalg.norm(cb - gap * vel_b[j] - ca))
            cost[i, j] = fwd + bwd
    return cost


def _instance_cost(bridge: np.ndarray, inst: np.ndarray, w: np.ndarray, gate: float) -> float:
    """The frame loop's robust cost of a (K, 2) instance (weights (K,)) against a (K, 2)
    bridge pose: keypoint distances capped at the gate, weighted mean (the gate when no
    keypoint is shared)."""
    d = np.linalg.norm(inst - bridge, axis=1)
    ok = np.isfinite(d) & (w > 0)
    if not ok.any():
        return gate
    return float((np.minimum(d[ok], gate) * w[ok]).sum() / w[ok].sum())


def boundary_pose(pos: np.ndarray, src: np.ndarray, cent: np.ndarray, frames: np.ndarray,
                  at: int, track: int) -> np.ndarray:
    """(K, 2) pose of ``track`` at frame ``at``: its centroid there plus each keypoint's median
    offset from the centroid over ``frames`` (sure frames around ``at``), so that a keypoint
    the instance at ``at`` lacks is filled from its neighbours."""
    rows = [pos[t, src[t, track]] - cent[t, track] for t in frames if src[t, track] >= 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a keypoint never seen: NaN
        off = np.nanmedian(np.stack(rows), axis=0)
    return cent[at, track] + off


def resolve_episodes(links: Links, pos: np.ndarray, weight: np.ndarray, *, fps: float,
                     gate_px: float, max_coast_frames: int, low_margin: float
                     ) -> tuple[Links, EpisodeSummary]:
    """Bridge every episode of ``links`` (see the module); returns new links and a summary.

    Parameters
    ----------
    links
        A tracking pass with a known number of animals (one track per animal).
    pos
        (time, instance, keypoint, 2) instance keypoints (NaN unknown).
    weight
        (time, instance, keypoint) keypoint weights (the tracker's, from the confidence).
    fps, gate_px, max_coast_frames
        From :class:`pose.tracking.core.TrackingSettings`.
    low_margin
        Identity confidence under which a frame is unsure.
    """
    src = links.source.copy()
    mar = links.margin.copy()
    innov = links.innovation.copy()
    reacq = links.reacquired.copy()
    cent = links.centroid.copy()
    n_t, n = src.shape
    episodes = find_episodes(src >= 0, mar, low_margin)
    win = max(2, int(round(VELOCITY_S * fps)))
    bridged, relabelled, confs = 0, [], []
    idx = np.arange(n)
    for a, b in episodes:
        gap = b - a
        if a < 0 or b >= n_t or gap - 1 > max_coast_frames:
            continue
        fa = np.arange(max(0, a - win + 1), a + 1)
        fb = np.arange(b, min(n_t, b + win))
        pose_a = np.stack([boundary_pose(pos, src, cent, fa, a, k) for k in range(n)])
        pose_b = np.stack([boundary_pose(pos, src, cent, fb, b, k) for k in range(n)])
        vel_a = np.stack([_velocity(cent[fa, k], fa) for k in range(n)])
        vel_b = np.stack([_velocity(cent[fb, k], fb) for k in range(n)])
        cost = link_cost(pose_a, vel_a, pose_b, vel_b, gap)
        rows, perm = linear_sum_assignment(cost)
        conf_ep = float(margins(cost, rows, perm).min())
        bridged += 1
        confs.append(conf_ep)
        inside = slice(a + 1, b)
        mar[inside] = np.minimum(mar[inside], conf_ep)
        if (perm == idx).all() or conf_ep < low_margin:
            continue  # the tracker's identities stand (an unsure bridge does not overrule them)
        # animal i continues as track perm[i]: from the frame inside the episode where the
        # bridges fit the exchanged identities best, to the end of the data
        fit = np.zeros((2, gap))  # cost of frames a+1..b with the tracker's / exchanged labels
        for t in range(a + 1, b + 1):
            f = (t - a) / gap
            bridge = (1 - f) * pose_a + f * pose_b[perm]
            for lab, order in ((0, idx), (1, perm)):
                for i in range(n):
                    d = src[t, order[i]]
                    if d >= 0:
                        fit[lab, t - a - 1] += _instance_cost(bridge[i], pos[t, d], weight[t, d], gate_px)
        before = np.concatenate(([0.0], np.cumsum(fit[0])))[:-1]  # tracker's labels up to tau
        after = np.cumsum(fit[1][::-1])[::-1]  # exchanged from tau on
        tau = a + 1 + int(np.argmin(before + after))
        for arr in (src, mar, innov, reacq, cent):
            arr[tau:] = arr[tau:, perm]
        relabelled.append(tau)
    out = Links(source=src, margin=mar, innovation=innov, reacquired=reacq, centroid=cent)
    return out, EpisodeSummary(n_episodes=len(episodes), n_bridged=bridged,
                               relabelled_at=tuple(relabelled), confidence=tuple(confs))
