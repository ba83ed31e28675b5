"""Multi-animal identities: tracking, swap suspects, corrections and identity metrics.

- :func:`track_identities`: consistent individuals from unordered instances (Kalman motion
  model, Hungarian assignment over all keypoints, gating, coasting, entries/exits).
- :func:`detect_swap_suspects`: the frames to review (crossings, jumps, low margins, gaps).
- :func:`swap_identities`: exchange two identities from a frame on (recorded in the history).
- :func:`identity_metrics`: IDF1 / switches / MOTA against the truth (motmetrics).
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
from pose.tracking.evaluate import identity_metrics
from pose.tracking.individuals import split_prefixed_individuals
from pose.tracking.review import (
    SUSPECT_COLUMNS,
    detect_swap_suspects,
    swap_identities,
    write_suspects,
)

__all__ = [
    "SUSPECT_COLUMNS",
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
