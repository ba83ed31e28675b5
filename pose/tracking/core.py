"""Identity tracking: consistent individuals across frames from unordered multi-animal poses.

A pose file from a multi-animal network (or a file whose individuals are shuffled) holds,
per frame, a set of instances whose order means nothing. :func:`track_identities` links
them into tracks:

1. **Motion model**: one constant-velocity Kalman filter per track on the pose-registered
   centroid (the model matrices of :func:`pose.kalman.model_matrices`); the predicted pose
   of a track is its predicted centroid plus the track's current keypoint offsets (its
   shape), so the whole skeleton is predicted, not one point.
2. **Cost**: confidence-weighted mean distance (px) between each instance's keypoints and
   each track's predicted keypoints (keypoints known on both sides only).
3. **Assignment**: optimal (Hungarian, :func:`scipy.optimize.linear_sum_assignment`), with a
   gate: a pair costlier than the gate is never linked. The gate is derived from the
   animals' body size and their frame-to-frame motion (printed, overridable) and grows
   while a track coasts.
4. **Occlusions, entries, exits**: a track without an instance coasts on its motion model
   for up to ``max_coast_s``; an instance no track can take starts a new track; a track
   that coasted longer ends. With ``n_animals`` known (a closed arena), tracks never end:
   a lost track is re-acquired by the nearest unclaimed instance and at most ``n_animals``
   tracks exist.
5. **Identity confidence**: per frame and track, the assignment margin
   ``(second - best) / second``, where ``best`` is the cost of the chosen links involving
   the track and ``second`` the cheapest alternative: exchange its instance with another
   track's, take an unclaimed instance, or leave its instance to a track without one.
   1 = unambiguous, 0 = a coin toss. With ``n_animals`` known, an instance that two
   tracks could own (confidence < 0.2) while one of them has no instance is left out for
   that frame (both coast) rather than guessed.
6. **Both directions** (with ``n_animals``): the data are also tracked backward in time;
   where the passes disagree, the run of frames comes from the pass whose weakest decision
   there is stronger (an ambiguous lone instance in a contact is often clear from the other
   side).

The process noise of the motion model is fitted on a first pass's tracks by maximum
likelihood (:func:`pose.kalman.estimate_process_noise`) and the data tracked again with it.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment

from pose.dataset import append_history, from_numpy, validate_pose
from pose.kalman import estimate_process_noise, model_matrices
from pose.tracking.count import estimate_n_animals
from pose.tracking.crossings import EpisodeSummary, resolve_episodes
from pose.tracking.links import Links, margins, merge_directions, reverse_links

log = logging.getLogger(__name__)

_BIG = 1e12
_AMBIGUOUS = 0.2  # identity confidence under which a lone instance is not given to a track
ASSUMED_FPS = 30.0


class TrackingConfig(BaseModel):
    """Settings of :func:`track_identities`; ``None`` = derived from the data (and printed).

    Attributes
    ----------
    n_animals
        Known number of animals (closed arena): tracks never end and at most this many
        exist. ``None``: estimated from the per-frame instance counts
        (:func:`pose.tracking.count.estimate_n_animals`, printed); when no fixed count fits,
        open set.
    open_set
        Do not estimate a count: tracks end after coasting ``max_coast_s``, new instances
        start new tracks (animals entering and leaving).
    max_coast_s
        How long a track without an instance is kept on its motion model.
    gate_px
        Largest cost (mean keypoint distance, px) at which an instance joins a track.
    min_keypoints
        Instances with fewer finite keypoints are ignored (default: max(2, K // 4)).
    process_noise_px_s2
        Acceleration noise of the motion model (px/s^2); default fitted by maximum likelihood.
    measurement_px
        Std of the centroid measurement (px); default 5 % of the body size.
    low_margin
        Identity confidence below which a frame is listed as a swap suspect.
    fps
        Frame rate when the file has none (default: assume 30 fps, with a warning).
    bidirectional
        With ``n_animals``: track forward and backward in time and, where the two passes
        disagree, keep the one whose weakest decision there is stronger.
    bridge_episodes
        With ``n_animals``: revisit every run of unsure frames (a track without an instance
        or a confidence under ``low_margin``) as a whole: link the tracks on either side by
        their poses carried across it and, where that link is sure and differs from the
        frame loop's, exchange the identities from where the instances fit it
        (:func:`pose.tracking.crossings.resolve_episodes`).
    """

    model_config = ConfigDict(extra="forbid")

    n_animals: int | None = Field(None, ge=1)
    open_set: bool = False
    max_coast_s: float = Field(1.0, ge=0)
    gate_px: float | None = Field(None, gt=0)
    min_keypoints: int | None = Field(None, ge=1)
    process_noise_px_s2: float | None = Field(None, gt=0)
    measurement_px: float | None = Field(None, gt=0)
    low_margin: float = Field(0.25, ge=0, le=1)
    fps: float | None = Field(None, gt=0)
    bidirectional: bool = True
    bridge_episodes: bool = True


@dataclass(frozen=True)
class TrackingSettings:
    """The settings a tracking run used, each with the reason it has that value."""

    fps: float
    body_size_px: float
    step_px: float
    gate_px: float
    max_coast_frames: int
    min_keypoints: int
    process_noise_px_s2: float
    measurement_px: float
    n_animals: int | None = None
    appearance_weight: float = 0.0
    reasons: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for the history and the report)."""
        return {k: getattr(self, k) for k in ("fps", "body_size_px", "step_px", "gate_px",
                                              "max_coast_frames", "min_keypoints",
                                              "process_noise_px_s2", "measurement_px", "n_animals",
                                              "appearance_weight")}


def _weights(conf: np.ndarray) -> np.ndarray:
    """Confidence as a weight: NaN (human labels, no score) counts as 1, floor 1e-3."""
    return np.clip(np.where(np.isnan(conf), 1.0, conf), 1e-3, None)


def instance_centroids(position: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Confidence-weighted centroid of each instance: (time, 2, individual) from
    position (time, 2, keypoint, individual) and confidence (time, keypoint, individual)."""
    ok = ~np.isnan(position).any(axis=1)
    w = np.where(ok, _weights(confidence), 0.0)
    s = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.nansum(np.nan_to_num(position) * w[:, None], axis=2) / s[:, None]
    return np.where(s[:, None] > 0, c, np.nan)


def estimate_body_size_px(position: np.ndarray) -> float:
    """Median over instances of twice the radius of gyration of the keypoints (px).

    A size scale that does not need named keypoints (mouse snout-to-tail-base 93 mm with
    the tail tip gives about 1 body length; fly about 1 body length with legs).
    """
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # instances without keypoints
        c = np.nanmean(position, axis=2, keepdims=True)
        r2 = np.nanmean(np.sum((position - c) ** 2, axis=1), axis=1)  # (time, individual)
    r = np.sqrt(r2[np.isfinite(r2) & (r2 > 0)])
    if r.size == 0:
        raise ValueError("no instance with two or more keypoints: cannot estimate the body size")
    return float(2.0 * np.median(r))


def estimate_step_px(position: np.ndarray, valid: np.ndarray) -> float:
    """99th percentile of the distance from each instance to the nearest instance of the next
    frame (px), over mutually nearest pairs (an instance whose animal is missing in the next
    frame is nearest to another animal's): the animals' frame-to-frame motion, no identities
    needed.

    The distance between two instances is the median over their shared keypoints of each
    keypoint's displacement, so that a partial instance (its centroid moves with the
    keypoints it lost), a wrong peak or a part of another animal does not pass for motion.
    ``position`` is (time, 2, keypoint, individual), ``valid`` (time, individual).
    """
    parts = []
    for t0 in range(0, max(0, len(position) - 1), 2000):  # blocks: memory ~ frames x I x J x K
        a, b = position[t0:t0 + 2000], position[t0 + 1:t0 + 2001]
        a = a[: len(b)]
        d = np.linalg.norm(a[:, :, :, :, None] - b[:, :, :, None, :], axis=1)  # (t, K, I, J)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # pairs without a shared keypoint
            d = np.nanmedian(d, axis=1)  # (t, I, J)
        ok = valid[t0:t0 + len(b), :, None] & valid[t0 + 1:t0 + 1 + len(b), None, :]
        d = np.where(ok & np.isfinite(d), d, np.inf)
        j = d.argmin(axis=2)  # (t, I): nearest next instance; kept when mutual
        mutual = np.take_along_axis(d.argmin(axis=1), j, axis=1) == np.arange(d.shape[1])[None]
        parts.append(np.where(mutual, d.min(axis=2), np.inf).ravel())
    nearest = np.concatenate(parts) if parts else np.zeros(0)
    nearest = nearest[np.isfinite(nearest)]
    return float(np.quantile(nearest, 0.99)) if nearest.size else 0.0


def derive_settings(ds: xr.Dataset, config: TrackingConfig) -> TrackingSettings:
    """Derive fps, body size, gate, coasting and noise settings from ``ds`` (see the module)."""
    pos = ds["position"].values[:, :2]
    reasons: dict[str, str] = {}
    fps = ds.attrs.get("fps") or config.fps
    if ds.attrs.get("fps"):
        reasons["fps"] = "from the file"
    elif config.fps:
        reasons["fps"] = "given"
    else:
        fps = ASSUMED_FPS
        reasons["fps"] = f"the file has no frame rate: ASSUMED {ASSUMED_FPS:g} fps (pass --fps)"
        log.warning("%s has no frame rate; tracking assumes %g fps (pass --fps)",
                    ds.attrs.get("source_file") or "the pose Dataset", ASSUMED_FPS)
    n_kp = pos.shape[2]
    min_kp = config.min_keypoints or max(2, n_kp // 4) if n_kp > 1 else 1
    min_kp = min(min_kp, n_kp)
    reasons["min_keypoints"] = "given" if config.min_keypoints else f"max(2, {n_kp} keypoints // 4)"
    body = estimate_body_size_px(pos)
    reasons["body_size_px"] = "median over instances of 2 x radius of gyration of the keypoints"
    valid = (~np.isnan(pos).any(axis=1)).sum(axis=1) >= min_kp
    if config.n_animals is not None and config.open_set:
        raise ValueError("n_animals and open_set exclude each other")
    if config.n_animals is not None:
        n_animals, reasons["n_animals"] = config.n_animals, "given"
    elif config.open_set:
        n_animals, reasons["n_animals"] = None, "open set (given)"
    else:
        est = estimate_n_animals(valid)
        n_animals, reasons["n_animals"] = est.n_animals, est.reason
    step = estimate_step_px(pos, valid)
    reasons["step_px"] = ("99th percentile of instance-to-nearest-instance motion between frames "
                          "(median over keypoints)")
    if config.gate_px:
        gate = float(config.gate_px)
        reasons["gate_px"] = "given"
    else:
        gate = 0.5 * body + 2.0 * step
        reasons["gate_px"] = "half a body size + 2 x the 99th-percentile frame-to-frame step"
    coast = int(round(config.max_coast_s * fps))
    reasons["max_coast_frames"] = f"max_coast_s={config.max_coast_s:g} s at {fps:g} fps"
    meas = config.measurement_px or 0.05 * body
    reasons["measurement_px"] = "given" if config.measurement_px else "5 % of the body size"
    q = config.process_noise_px_s2 or max(step, 0.01 * body) * fps**2
    reasons["process_noise_px_s2"] = ("given" if config.process_noise_px_s2 else
                                      "first pass: step_px * fps^2, then fitted by maximum likelihood")
    return TrackingSettings(fps=float(fps), body_size_px=body, step_px=step, gate_px=gate,
                            max_coast_frames=coast, min_keypoints=int(min_kp),
                            process_noise_px_s2=float(q), measurement_px=float(meas), n_animals=n_animals,
                            reasons=reasons)


class _Tracks:
    """State of all tracks, as arrays (grown on demand): Kalman state and covariance per
    axis, keypoint offsets from the centroid (the shape), frames missed, alive."""

    def __init__(self, n_k: int, n_f: int = 1, capacity: int = 8) -> None:
        self.n = 0
        self.app = np.full((capacity, n_f), np.nan)  # appearance (running mean), NaN unknown
        self.x = np.zeros((capacity, 2, 2))  # track, axis, [p, v]
        self.p = np.zeros((capacity, 2, 2, 2))
        self.off = np.full((capacity, n_k, 2), np.nan)
        self.missed = np.zeros(capacity, dtype=int)
        self.alive = np.zeros(capacity, dtype=bool)

    def add(self, centre: np.ndarray, offsets: np.ndarray, p0: np.ndarray, app: np.ndarray) -> int:
        if self.n == len(self.x):
            for name in ("x", "p", "off", "missed", "alive", "app"):
                arr = getattr(self, name)
                fill = np.nan if name in ("off", "app") else 0
                setattr(self, name, np.concatenate([arr, np.full_like(arr, fill)]))
        i = self.n
        self.x[i] = np.stack([centre, np.zeros(2)], axis=1)
        self.p[i] = p0
        self.off[i] = offsets
        self.app[i] = app
        self.missed[i], self.alive[i] = 0, True
        self.n += 1
        return i


def _run(pos: np.ndarray, conf: np.ndarray, s: TrackingSettings, n_animals: int | None,
         q: float, appearance: np.ndarray | None = None, app_weight: float = 0.0) -> Links:
    """The frame loop: predict, cost, assign, update (see the module).

    ``appearance`` (time, instance, feature) adds ``app_weight`` px per unit of distance
    between an instance's appearance and the track's running mean to the cost (the gate
    applies to the pose cost alone)."""
    n_t, _, n_k, n_i = pos.shape
    use_app = appearance is not None and app_weight > 0
    app_all = appearance if appearance is not None else np.full((n_t, n_i, 1), np.nan)
    f, qm = model_matrices(1.0 / s.fps, 2, q)
    r = s.measurement_px**2
    finite = ~np.isnan(pos).any(axis=1)  # (time, K, I)
    valid = finite.sum(axis=1) >= s.min_keypoints  # (time, I)
    w_all = np.where(finite, _weights(conf), 0.0)  # (time, K, I)
    pos_all = np.nan_to_num(pos).transpose(0, 3, 2, 1)  # (time, I, K, 2)
    cent_all = instance_centroids(pos, conf).transpose(0, 2, 1)  # (time, I, 2)
    tr = _Tracks(n_k, app_all.shape[2])
    p0 = np.diag([r, (10 * s.step_px * s.fps) ** 2 + 1.0])
    p0 = np.stack([p0, p0])
    src = np.full((n_t, 4 * n_i + 4), -1)
    margin = np.full(src.shape, np.nan)
    innov = np.full(src.shape, np.nan)
    reacq = np.zeros(src.shape, dtype=bool)
    cent = np.full((*src.shape, 2), np.nan)
    for t in range(n_t):
        dets = np.flatnonzero(valid[t])
        n = tr.n
        al = tr.alive[:n]
        tr.x[:n][al] = np.einsum("ij,taj->tai", f, tr.x[:n][al])
        tr.p[:n][al] = np.einsum("ij,tajk,lk->tail", f, tr.p[:n][al], f) + qm
        live = np.flatnonzero(al & (tr.missed[:n] <= s.max_coast_frames))
        lost = np.flatnonzero(al & (tr.missed[:n] > s.max_coast_frames))
        dp, dok, dw, dc = pos_all[t, dets], finite[t][:, dets].T, w_all[t][:, dets].T, cent_all[t, dets]
        used = np.zeros(len(dets), dtype=bool)
        matches: list[tuple[int, int, float, bool]] = []
        if len(live) and len(dets):
            centre = tr.x[live, :, 0]  # (L, 2)
            off = tr.off[live]  # (L, K, 2)
            both = dok[None] & ~np.isnan(off).any(axis=2)[:, None]  # (L, D, K)
            d = np.linalg.norm(dp[None] - (centre[:, None, None] + np.nan_to_num(off)[:, None]), axis=3)
            ww = np.where(both, dw[None], 0.0)
            sw = ww.sum(axis=2)
            cd = np.linalg.norm(dc[None] - centre[:, None], axis=2)
            gates = s.gate_px + s.step_px * tr.missed[live]
            # robust cost: a keypoint farther than the gate from its predicted place is not
            # this track's (a wrong peak, a part of another animal) and costs the gate, no
            # more; the instance is inside the gate when half its weight is
            trunc = np.minimum(d, gates[:, None, None])
            cost = np.where(sw > 0, (trunc * ww).sum(axis=2) / np.where(sw > 0, sw, 1.0), cd)
            inside = np.where(sw > 0, (ww * (d <= gates[:, None, None])).sum(axis=2) >= 0.5 * sw,
                              cd <= gates[:, None])
            if use_app:
                da = np.linalg.norm(app_all[t, dets][None] - tr.app[live][:, None], axis=2)
                cost = cost + app_weight * np.nan_to_num(da, nan=0.0)
            gated = np.where(inside, cost, _BIG)
            rr, cc = linear_sum_assignment(gated)
            keep = gated[rr, cc] < _BIG
            rr, cc = rr[keep], cc[keep]
            short = len(rr) < len(live)  # some live track gets no instance this frame
            for a, b, m in zip(rr, cc, margins(cost, rr, cc), strict=True):
                used[b] = True
                if short and m < _AMBIGUOUS and n_animals is not None:
                    continue  # a lone instance two tracks could own: left out, both coast
                matches.append((int(live[a]), int(b), float(m), False))
        free = np.flatnonzero(~used)
        if len(lost) and len(free):  # known number of animals: lost tracks take the nearest
            d = np.linalg.norm(dc[free][None] - tr.x[lost, :, 0][:, None], axis=2)
            for a, b in zip(*linear_sum_assignment(d), strict=True):
                matches.append((int(lost[a]), int(free[b]), 0.0, True))
                used[free[b]] = True
            free = np.flatnonzero(~used)
        matched = np.zeros(n, dtype=bool)
        for i, b, m, re in matches:
            off = tr.off[i]
            known = ~np.isnan(off).any(axis=1) & dok[b]
            if not re:  # outlier keypoints (see the cost) do not move the filter
                dk = np.linalg.norm(dp[b] - (tr.x[i, :, 0][None] + np.nan_to_num(off)), axis=1)
                inlier = dk <= s.gate_px + s.step_px * tr.missed[i]
            else:
                inlier = np.ones(n_k, dtype=bool)
            if (known & inlier).sum() >= s.min_keypoints:
                known = known & inlier
            if known.sum() >= s.min_keypoints:
                wk = dw[b][known]
                z = (wk[:, None] * (dp[b][known] - off[known])).sum(0) / wk.sum()
            else:
                z = dc[b]
            innov[t, i] = float(np.hypot(*(z - tr.x[i, :, 0])))
            if re:  # restart the filter at the instance
                tr.x[i] = np.stack([z, np.zeros(2)], axis=1)
                tr.p[i] = p0
            else:
                pi = tr.p[i]
                k = pi[:, :, 0] / (pi[:, 0, 0] + r)[:, None]  # (axis, 2)
                tr.x[i] += k * (z - tr.x[i, :, 0])[:, None]
                tr.p[i] = pi - k[:, :, None] * pi[:, 0, None, :]
            c = tr.x[i, :, 0]
            # an outlier keypoint's offset adapts over the coasting horizon only (a real shape
            # change is taken up, a one-frame wrong peak hardly moves it)
            a_k = (np.clip(dw[b], 0.0, 1.0) * np.where(inlier, 1.0, 1.0 / max(1, s.max_coast_frames)))[:, None]
            new_off = dp[b] - c[None]
            tr.off[i] = np.where(dok[b][:, None] & ~np.isnan(off), (1 - a_k) * off + a_k * new_off,
                                 np.where(dok[b][:, None], new_off, off))
            fa = app_all[t, dets[b]]
            if np.isfinite(fa).all() and (m >= 0.5 or np.isnan(tr.app[i]).any()):
                tr.app[i] = fa if np.isnan(tr.app[i]).any() else 0.9 * tr.app[i] + 0.1 * fa
            tr.missed[i] = 0
            matched[i] = True
            src[t, i], margin[t, i], reacq[t, i], cent[t, i] = dets[b], m, re, c
        miss = np.flatnonzero(~matched & tr.alive[:n])
        tr.missed[miss] += 1
        if n_animals is None:  # exits: a track ends after coasting
            tr.alive[miss[tr.missed[miss] > s.max_coast_frames]] = False
        for b in free:  # entries: new tracks
            if n_animals is not None and tr.n >= n_animals:
                break
            if tr.n >= src.shape[1]:
                grow = src.shape[1]
                src = np.concatenate([src, np.full((n_t, grow), -1)], axis=1)
                margin = np.concatenate([margin, np.full((n_t, grow), np.nan)], axis=1)
                innov = np.concatenate([innov, np.full((n_t, grow), np.nan)], axis=1)
                reacq = np.concatenate([reacq, np.zeros((n_t, grow), dtype=bool)], axis=1)
                cent = np.concatenate([cent, np.full((n_t, grow, 2), np.nan)], axis=1)
            i = tr.add(dc[b], np.where(dok[b][:, None], dp[b] - dc[b][None], np.nan), p0,
                       app_all[t, dets[b]])
            src[t, i], margin[t, i], innov[t, i], cent[t, i] = dets[b], 1.0, 0.0, dc[b]
    k = tr.n
    return Links(source=src[:, :k], margin=margin[:, :k], innovation=innov[:, :k],
                  reacquired=reacq[:, :k], centroid=cent[:, :k])


def _fit_process_noise(links: Links, s: TrackingSettings) -> float:
    """Maximum-likelihood acceleration noise of the first pass's track centroids."""
    z = links.centroid.transpose(0, 2, 1).reshape(links.centroid.shape[0], -1)
    if z.shape[1] == 0 or np.isfinite(z).sum() < 20:
        return s.process_noise_px_s2
    return estimate_process_noise(z, s.measurement_px**2, 1.0 / s.fps, 2)


@dataclass(frozen=True)
class TrackingResult:
    """What :func:`track_identities` returns.

    Attributes
    ----------
    pose
        Pose Dataset with one ``individual`` per track (``track_0``...) and the variable
        ``identity_confidence`` (time, individual): the assignment margin, NaN where the
        track has no instance.
    links
        Per frame and track: ``source`` (the input instance index, -1 none), ``innovation``
        (matched centroid - predicted, px), ``reacquired`` (a lost track taken back).
    settings
        The settings used and why (:class:`TrackingSettings`).
    episodes
        What bridging the unsure runs of frames did
        (:class:`pose.tracking.crossings.EpisodeSummary`); None when not run (open set, or
        ``bridge_episodes=False``).
    """

    pose: xr.Dataset
    links: dict[str, np.ndarray]
    settings: TrackingSettings
    episodes: EpisodeSummary | None = None


def _appearance_weight(appearance: np.ndarray, links: Links, gate_px: float) -> tuple[float, str]:
    """Weight (px per appearance unit) from a first pose-only pass: 0 when the animals' looks
    differ less than 3 x a track's own frame-to-frame change (same coat), else gate / difference."""
    n_t, n_tr = links.source.shape
    feats = np.full((n_t, n_tr, appearance.shape[2]), np.nan)
    tt, kk = np.nonzero(links.source >= 0)
    feats[tt, kk] = appearance[tt, links.source[tt, kk]]
    within = np.linalg.norm(np.diff(feats, axis=0), axis=2)
    within = float(np.nanmedian(within)) if np.isfinite(within).any() else np.nan
    between = [np.linalg.norm(feats[:, a] - feats[:, b], axis=1) for a in range(n_tr) for b in range(a + 1, n_tr)]
    between = np.concatenate(between) if between else np.array([np.nan])
    between = float(np.nanmedian(between)) if np.isfinite(between).any() else np.nan
    if not (np.isfinite(within) and np.isfinite(between)) or between < 3.0 * within:
        return 0.0, (f"appearance NOT used: the animals differ by {between:.3g}, a track changes by "
                     f"{within:.3g} per frame (same coat?)")
    return gate_px / between, (f"appearance used: animals differ by {between:.3g} vs {within:.3g} "
                               "per frame within a track; a full difference costs one gate")


def track_identities(ds: xr.Dataset, config: TrackingConfig | None = None,
                     appearance: np.ndarray | None = None) -> TrackingResult:
    """Assign consistent identities to the instances of a multi-animal pose Dataset.

    Parameters
    ----------
    ds
        Pose Dataset (time, space, keypoint, individual) whose ``individual`` order may
        change from frame to frame (each frame's instances in any order).
    config
        :class:`TrackingConfig`; default everything derived from ``ds``.
    appearance
        Optional (time, individual, feature) appearance of every input instance (e.g.
        :func:`pose.tracking.appearance.sample_appearance` from the video). Used only when
        a first pose-only pass shows that it tells the animals apart (different coats).

    Returns
    -------
    TrackingResult

    Raises
    ------
    PoseValidationError, ValueError
        For a Dataset that is not a pose Dataset, or one without a multi-keypoint instance.

    Notes
    -----
    The tracker is causal (frame by frame, no look-ahead): an identity taken wrongly in a
    close contact stays wrong until corrected (:func:`pose.tracking.swap_identities`); the
    frames to check are in :func:`pose.tracking.detect_swap_suspects`. Without appearance
    two same-coat animals that lie still side by side and then leave in unpredicted
    directions cannot be told apart by any pose-only tracker.
    """
    config = config or TrackingConfig()
    validate_pose(ds, context=str(ds.attrs.get("source_file") or "track_identities"))
    settings = derive_settings(ds, config)
    pos = ds["position"].values[:, :2].astype(float)
    conf = ds["confidence"].values.astype(float)
    q = settings.process_noise_px_s2
    if appearance is not None and appearance.shape[:2] != pos.shape[:1] + pos.shape[3:]:
        raise ValueError(f"appearance has shape {appearance.shape}; expected (time={pos.shape[0]}, "
                         f"individual={pos.shape[3]}, feature)")
    weight = 0.0
    if config.process_noise_px_s2 is None or appearance is not None:
        first = _run(pos, conf, settings, settings.n_animals, q)
        if config.process_noise_px_s2 is None:
            q = _fit_process_noise(first, settings)
        reasons = dict(settings.reasons)
        if appearance is not None:
            weight, reasons["appearance_weight"] = _appearance_weight(appearance, first, settings.gate_px)
        settings = TrackingSettings(**{**settings.as_dict(), "process_noise_px_s2": float(q),
                                       "appearance_weight": weight}, reasons=reasons)
    for key, value in settings.as_dict().items():
        log.info("tracking %s = %s (%s)", key, f"{value:.4g}" if isinstance(value, float)
                 else value, settings.reasons.get(key, ""))
    links = _run(pos, conf, settings, settings.n_animals, q, appearance, weight)
    if settings.n_animals is not None and config.bidirectional:
        app_rev = None if appearance is None else appearance[::-1]
        back = reverse_links(_run(pos[::-1], conf[::-1], settings, settings.n_animals, q, app_rev, weight))
        links, n_runs = merge_directions(links, back)
        log.info("tracking: forward and backward passes disagree in %d run(s) of frames taken "
                 "from the backward pass", n_runs)
    summary = None
    if settings.n_animals is not None and config.bridge_episodes:
        finite = ~np.isnan(pos).any(axis=1)  # (time, K, I)
        links, summary = resolve_episodes(
            links, pos.transpose(0, 3, 2, 1), np.where(finite, _weights(conf), 0.0).transpose(0, 2, 1),
            fps=settings.fps, gate_px=settings.gate_px,
            max_coast_frames=settings.max_coast_frames, low_margin=config.low_margin)
        log.info("tracking: %d unsure run(s) of frames, %d bridged as a whole, identities "
                 "exchanged after %d", summary.n_episodes, summary.n_bridged, len(summary.relabelled_at))
    return TrackingResult(pose=_assemble(ds, links, settings, config, summary),
                          links={"source": links.source, "innovation": links.innovation,
                                 "reacquired": links.reacquired, "margin": links.margin},
                          settings=settings, episodes=summary)


def _assemble(ds: xr.Dataset, links: Links, s: TrackingSettings, config: TrackingConfig,
              episodes: EpisodeSummary | None = None) -> xr.Dataset:
    """The tracked pose Dataset from the links (rows gathered from the input instances)."""
    pos_in = ds["position"].values
    conf_in = ds["confidence"].values
    n_t, n_tr = links.source.shape
    pos = np.full((n_t, pos_in.shape[1], pos_in.shape[2], n_tr), np.nan)
    conf = np.full((n_t, pos_in.shape[2], n_tr), np.nan)
    tt, kk = np.nonzero(links.source >= 0)
    pos[tt, :, :, kk] = pos_in[tt, :, :, links.source[tt, kk]]
    conf[tt, :, kk] = conf_in[tt, :, links.source[tt, kk]]
    width = max(1, len(str(max(n_tr - 1, 0))))
    names = [f"track_{i:0{width}d}" for i in range(n_tr)]
    out = from_numpy(pos, conf, keypoints=[str(k) for k in ds.keypoint.values], individuals=names,
                     fps=ds.attrs.get("fps"), source_software=ds.attrs.get("source_software"),
                     source_file=ds.attrs.get("source_file"), video_path=ds.attrs.get("video_path"),
                     px_per_mm=ds.attrs.get("px_per_mm"))
    out = out.assign_coords(time=ds.coords["time"].values)
    out["identity_confidence"] = (("time", "individual"), links.margin)
    out["identity_confidence"].attrs = {
        "units": "1", "long_name": "identity confidence: assignment margin (second-best - best) "
        "/ second-best; NaN where the track has no instance"}
    extra = {k: v for k, v in ds.attrs.items() if k not in out.attrs and not k.startswith("dlc_")}
    out.attrs.update(extra)
    out.attrs["history"] = list(ds.attrs.get("history", []))
    params = {**config.model_dump(), **s.as_dict(), "n_tracks": n_tr}
    if episodes is not None:  # where the bridging exchanged identities (row indices)
        params.update(unsure_runs=episodes.n_episodes, bridged_runs=episodes.n_bridged,
                      identities_exchanged_at_rows=list(episodes.relabelled_at))
    if not math.isfinite(params.get("process_noise_px_s2", 0.0)):
        params["process_noise_px_s2"] = None
    return append_history(out, "track_identities", params)
