"""The virtual mouse: kinematic simulators with exact ground truth, and their renderer.

- :func:`simulate_open_field`: top-view open-field session driven by a behaviour state
  machine (walk, run, turn, rear, groom, freeze, explore_wall); no rendering.
- :func:`simulate_gait`: per-limb step cycles of a walk or a trot (side or bottom view).

- :func:`render_open_field` / :func:`render_gait`: draw them to ``video.mp4`` with nuisances
  (:class:`NuisanceConfig`) and write the truth, tables and a DeepLabCut-style project.

The simulators are pure numpy and deterministic for a seed.
"""

from pose.synthetic.gait import GaitTruth, simulate_gait
from pose.synthetic.nuisance import NuisanceConfig
from pose.synthetic.openfield import KEYPOINTS, STATES, OpenFieldTruth, simulate_open_field
from pose.synthetic.render import RenderedSession, render_gait, render_open_field

__all__ = [
    "KEYPOINTS",
    "STATES",
    "GaitTruth",
    "NuisanceConfig",
    "OpenFieldTruth",
    "RenderedSession",
    "render_gait",
    "render_open_field",
    "simulate_gait",
    "simulate_open_field",
]
