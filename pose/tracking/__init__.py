"""Multi-animal identities: tracking, swap suspects, corrections and identity metrics.

- :func:`track_identities`: consistent individuals from unordered instances (Kalman motion
  model, Hungarian assignment over all keypoints, gating, coasting, entries/exits).
- :func:`detect_swap_suspects`: the frames to review (crossings, jumps, low margins, gaps).
- :func:`swap_identities`: exchange two identities from a frame on (recorded in the history).
- :func:`identity_metrics`: IDF1 / switches / MOTA against the truth (motmetrics).
- :func:`summarize_identity_quality`: how far the identities can be trusted (a verdict).
- :func:`estimate_n_animals`: the number of animals from the per-frame instance counts.
- :func:`pose.tracking.appearance.sample_appearance`: colour under each instance (optional cue).
- :func:`split_prefixed_individuals`: animals stored as keypoint prefixes -> individuals.
"""

from pose.tracking.core import (
    TrackingConfig,
    TrackingResult,
    TrackingSettings,
    estimate_body_size_px,
    instance_centroids,
    track_identities,
)
from pose.tracking.count import CountEstimate, estimate_n_animals
from pose.tracking.evaluate import identity_metrics, identity_switch_frames, suspects_cover
from pose.tracking.individuals import split_prefixed_individuals
from pose.tracking.review import (
    SUSPECT_COLUMNS,
    IdentityLimits,
    detect_swap_suspects,
    summarize_identity_quality,
    swap_identities,
    write_suspects,
)

__all__ = [
    "SUSPECT_COLUMNS",
    "CountEstimate",
    "IdentityLimits",
    "estimate_n_animals",
    "identity_switch_frames",
    "summarize_identity_quality",
    "suspects_cover",
    "TrackingConfig",
    "TrackingResult",
    "TrackingSettings",
    "detect_swap_suspects",
    "estimate_body_size_px",
    "identity_metrics",
    "instance_centroids",
    "split_prefixed_individuals",
    "swap_identities",
    "track_identities",
    "write_suspects",
]
