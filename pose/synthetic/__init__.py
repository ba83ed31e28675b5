"""The virtual mouse: kinematic simulators with exact ground truth, and their renderer.

- :func:`simulate_open_field`: top-view open-field session driven by a behaviour state
  machine (walk, run, turn, rear, groom, freeze, explore_wall); no rendering.
- :func:`simulate_gait`: per-limb step cycles of a walk or a trot (side or bottom view).

The simulators are pure numpy and deterministic for a seed.
"""

from pose.synthetic.gait import GaitTruth, simulate_gait
from pose.synthetic.openfield import KEYPOINTS, STATES, OpenFieldTruth, simulate_open_field

__all__ = [
    "KEYPOINTS",
    "STATES",
    "GaitTruth",
    "OpenFieldTruth",
    "simulate_gait",
    "simulate_open_field",
]
