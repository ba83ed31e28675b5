"""How many animals a multi-animal pose file holds, from its per-frame instance counts.

A pose network finds every animal in most frames and misses some in contacts and
occlusions; it seldom finds more animals than there are. So in a closed arena the most
common number of instances per frame is the number of animals, and frames with more
instances than that are rare. When they are not rare (animals enter and leave, a home cage
opened), no fixed count fits and tracking stays open-set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Frames with more instances than the estimated count beyond which the count is not fixed.
MAX_EXCESS_FRACTION = 0.01


@dataclass(frozen=True)
class CountEstimate:
    """The estimated number of animals (``None``: open set) and why."""

    n_animals: int | None
    reason: str
    fraction_by_count: dict[int, float]


def estimate_n_animals(valid: np.ndarray, max_excess_fraction: float = MAX_EXCESS_FRACTION) -> CountEstimate:
    """Number of animals from the instances found per frame.

    Parameters
    ----------
    valid
        (time, individual) bool: the instances usable in each frame.
    max_excess_fraction
        Largest fraction of frames (with an instance) allowed more instances than the
        count; above it the count is not fixed and ``n_animals`` is ``None`` (open set).

    Returns
    -------
    CountEstimate
        ``n_animals`` is the most common per-frame count among frames with an instance
        (the larger one on a tie), ``fraction_by_count`` the share of frames per count.
    """
    counts = np.asarray(valid, dtype=bool).sum(axis=1)
    counts = counts[counts > 0]
    if counts.size == 0:
        return CountEstimate(None, "no frame has an instance: open set", {})
    hist = np.bincount(counts)
    frac = hist / counts.size
    n = int(np.flatnonzero(hist == hist.max()).max())
    excess = float(frac[n + 1:].sum())
    share = {int(k): float(f) for k, f in enumerate(frac) if f > 0}
    if excess > max_excess_fraction:
        return CountEstimate(None, (f"open set: {excess:.1%} of frames have more than {n} instances "
                                    f"(limit {max_excess_fraction:.0%}); animals enter and leave"), share)
    return CountEstimate(n, (f"estimated: {n} instances in {frac[n]:.1%} of frames (the most common "
                             f"count), more in {excess:.2%}, fewer in {float(frac[:n].sum()):.1%}; "
                             "pass --n-animals to override or --open-set"), share)
