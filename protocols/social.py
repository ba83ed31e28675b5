"""Dyadic social interaction test: two tracked animals, contact / following / approach endpoints.

A session is one pose file with two tracked individuals (identities from
:func:`pose.tracking.track_identities`, saved as NetCDF so that ``identity_confidence``
travels with it). The *subject* (the test animal) is one of them, the *partner* the other
(a stimulus or juvenile mouse, or the cage mate). The endpoints are reduced from the bouts
and distances of :mod:`features.social` (one path to each number):

- ``nose_nose_time_s`` / ``nose_nose_bouts``: noses within the contact distance (a pair
  measure; the same from either animal);
- ``<role>_nose_anogenital_time_s`` / ``_bouts``: the role's nose at the other's tail base;
- ``<role>_contact_time_s`` / ``_bouts``: the role's nose at any part of the other's body;
- ``<role>_following_time_s`` / ``_bouts`` and ``<role>_approaches``;
- ``time_near_s`` and ``median_distance_mm`` (body centres).

**Identity gate.** Per-animal social endpoints are only as good as the identities: a swap
moves one animal's sniffing onto the other. Before any endpoint the session's identity
quality is measured (:func:`pose.tracking.summarize_identity_quality`: identity confidence
and swap-suspect events) and compared to the protocol's limits: ``flag`` (the default)
computes the endpoints and marks the session ``identity_unreliable`` (left out of the group
statistics like other quality flags), ``refuse`` raises :class:`SocialSessionError` naming
the file and the reason. A file without identity confidence (not tracked here, or saved to
a format that drops it) is ``identity_unknown`` and handled the same way unless
``allow_unknown_identity``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field

from features.social import (
    SocialThresholds,
    compute_social_distances,
    derive_social_thresholds,
    detect_social_bouts,
)
from pose.dataset import append_history, validate_pose
from pose.tracking import IdentityLimits, summarize_identity_quality

logger = logging.getLogger(__name__)

ROLES = ("subject", "partner")

#: Endpoints of the dyadic social-interaction test (see the module).
SOCIAL_ENDPOINTS: tuple[str, ...] = (
    "nose_nose_time_s", "nose_nose_bouts",
    *(f"{r}_{e}" for r in ROLES for e in ("nose_anogenital_time_s", "nose_anogenital_bouts",
                                          "contact_time_s", "contact_bouts", "following_time_s",
                                          "following_bouts", "approaches")),
    "time_near_s", "median_distance_mm",
)


class SocialSessionError(ValueError):
    """A social session cannot be analysed (wrong number of animals, identity refused)."""


class SocialOptions(BaseModel):
    """The ``social`` section of a social-interaction protocol.

    Attributes
    ----------
    subject
        The test animal: an individual's name or its index (default the first).
    thresholds
        :class:`features.social.SocialThresholds` (unset ones derived from body length).
    identity
        :class:`pose.tracking.IdentityLimits`: when identities are called unreliable.
    on_unreliable_identity
        ``flag`` (compute, mark ``identity_unreliable``) or ``refuse`` (raise).
    allow_unknown_identity
        Accept a file without ``identity_confidence`` (e.g. identities proofread by hand).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str | int = 0
    thresholds: SocialThresholds = Field(default_factory=SocialThresholds)
    identity: IdentityLimits = Field(default_factory=IdentityLimits)
    on_unreliable_identity: Literal["flag", "refuse"] = "flag"
    allow_unknown_identity: bool = False


def _roles(ds: xr.Dataset, subject: str | int, source: str) -> tuple[str, str]:
    names = [str(i) for i in ds.individual.values]
    if len(names) != 2:
        raise SocialSessionError(f"{source}: the dyadic social test needs 2 tracked individuals, the file "
                                 f"has {len(names)} ({names}); track them first: ethopose pose track "
                                 "--n-animals 2")
    if isinstance(subject, int):
        if not 0 <= subject < 2:
            raise SocialSessionError(f"{source}: social.subject index {subject} is not 0 or 1")
        s = names[subject]
    elif subject in names:
        s = subject
    else:
        raise SocialSessionError(f"{source}: social.subject {subject!r} is not an individual ({names})")
    return s, next(n for n in names if n != s)


def check_identity(ds: xr.Dataset, options: SocialOptions, source: str = "session") -> dict[str, float | str]:
    """The identity gate: identity-quality numbers and ``identity_flag`` (``ok``,
    ``identity_unreliable``, ``identity_unknown``); raises :class:`SocialSessionError` when
    the protocol refuses such a session."""
    q = summarize_identity_quality(ds, limits=options.identity)
    flag = {"ok": "ok", "unreliable": "identity_unreliable", "unknown": "identity_unknown"}[
        str(q["identity_quality"])]
    if flag == "identity_unknown" and options.allow_unknown_identity:
        flag = "ok"
    if flag != "ok":
        message = f"{source}: {flag}: {q['identity_reason']}"
        if options.on_unreliable_identity == "refuse":
            raise SocialSessionError(message + " (protocol social.on_unreliable_identity: refuse)")
        logger.warning("%s; per-animal social endpoints are flagged", message)
    return {**q, "identity_flag": flag}


def social_interaction_endpoints(ds: xr.Dataset, options: SocialOptions | None = None,
                                 source: str = "session") -> tuple[dict[str, float], pd.DataFrame]:
    """Endpoints of :data:`SOCIAL_ENDPOINTS` and the bout table of one dyadic session.

    Parameters
    ----------
    ds
        Pose Dataset with 2 individuals, ``fps`` and (for mm) ``px_per_mm``.
    options
        :class:`SocialOptions` (the subject, thresholds).

    Returns
    -------
    (dict, pandas.DataFrame)
        Endpoints (times in s, distances in mm or px without a scale) and the bouts of
        :func:`features.social.detect_social_bouts` with a ``role`` column.
    """
    options = options or SocialOptions()
    validate_pose(ds, require_fps=True, context=source)
    subject, partner = _roles(ds, options.subject, source)
    thresholds, _ = derive_social_thresholds(ds, options.thresholds)
    bouts = detect_social_bouts(ds, thresholds)
    role = {subject: "subject", partner: "partner"}
    bouts["role"] = bouts["individual"].map(role)
    out: dict[str, float] = {}
    nn = bouts[(bouts.kind == "nose_nose") & (bouts.individual == subject)]
    out["nose_nose_time_s"], out["nose_nose_bouts"] = float(nn.duration_s.sum()), float(len(nn))
    for who, name in ((subject, "subject"), (partner, "partner")):
        mine = bouts[bouts.individual == who]
        for kind, key in (("nose_anogenital", "nose_anogenital"), ("contact", "contact"),
                          ("following", "following")):
            sel = mine[mine.kind == kind]
            out[f"{name}_{key}_time_s"] = float(sel.duration_s.sum())
            out[f"{name}_{key}_bouts"] = float(len(sel))
        out[f"{name}_approaches"] = float((mine.kind == "approach").sum())
    d = compute_social_distances(ds)["body_body"].sel(individual=subject, other=partner).values
    ok = np.isfinite(d)
    out["time_near_s"] = float(np.sum(d[ok] < thresholds.near_mm) / float(ds.attrs["fps"]))
    out["median_distance_mm"] = float(np.median(d[ok])) if ok.any() else float("nan")
    return {k: out[k] for k in SOCIAL_ENDPOINTS}, bouts


def analyse_social_session(ds: xr.Dataset, protocol, *, pose_path: Path | None = None):
    """Run a ``social_interaction`` protocol over one session (called by
    :func:`protocols.endpoints.analyse_session`).

    The identity gate runs first (see the module); then the protocol's cleaning steps on
    both animals; then :func:`social_interaction_endpoints`. Returns a
    :class:`protocols.endpoints.SessionResult` whose endpoints also hold the identity
    numbers, ``coverage_pct`` (frames with both animals' centre keypoint) and
    ``quality_flag`` (``ok``, ``low_coverage`` or the identity flag).
    """
    from features.filters import clean
    from protocols.endpoints import SessionResult, apply_aliases

    source = str(pose_path or "session")
    validate_pose(ds, require_fps=True, context=source)
    options: SocialOptions = protocol.social or SocialOptions()
    _roles(ds, options.subject, source)
    identity = check_identity(ds, options, source)
    raw = apply_aliases(ds, protocol)
    if protocol.scale.source == "explicit":
        raw.attrs["px_per_mm"] = protocol.scale.px_per_mm
    elif not raw.attrs.get("px_per_mm"):
        logger.warning("%s: no px_per_mm in the pose file: social distances in px", source)
    cleaned = clean(raw, protocol.filters)
    endpoints, bouts = social_interaction_endpoints(cleaned, options, source)
    centre = raw["position"].sel(keypoint=protocol.bodyparts.centre).values  # (time, space, ind)
    both = np.isfinite(centre).all(axis=1).all(axis=1)
    cover = float(100.0 * both.mean()) if both.size else float("nan")
    keep: dict[str, float | str] = {k: v for k, v in endpoints.items() if k in set(protocol.endpoints)}
    keep.update({k: identity[k] for k in ("median_identity_confidence", "low_confidence_frames_pct",
                                          "low_margin_events_per_min", "swap_suspects", "identity_flag")})
    keep["coverage_pct"] = cover
    flag = identity["identity_flag"]
    keep["quality_flag"] = flag if flag != "ok" else ("low_coverage" if cover < protocol.min_coverage_pct else "ok")
    frames = compute_social_distances(cleaned).to_dataframe().reset_index()
    out = append_history(cleaned, "protocols.analyse_social_session",
                         {"protocol": protocol.name, "quality_flag": keep["quality_flag"],
                          "identity_flag": flag, "n_bouts": int(len(bouts))})
    return SessionResult(keep, frames, out, {}, None, cleaned.attrs.get("px_per_mm"))
