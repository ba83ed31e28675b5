"""Pose layer: the pose data model, file formats, video, the virtual mouse, and the
pose-estimation pipeline. torch is imported only inside the training/inference modules."""

from pose._version import __version__
from pose.dataset import (
    PoseValidationError,
    append_history,
    from_numpy,
    validate_pose,
)

__all__ = ["PoseValidationError", "__version__", "append_history", "from_numpy", "validate_pose"]
