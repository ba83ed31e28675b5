"""Gross-error rejection before the freezing speeds: known answers on synthetic tracks."""

from __future__ import annotations

import numpy as np
import pytest

from behavior.outliers import reject_gross_errors
from behavior.rules import detect_freezing
from pose.dataset import from_numpy

FPS = 30.0
PPM = 1.0  # px per mm
NAMES = ["snout", "left_ear", "right_ear", "neck", "body_center", "tail_base"]


def _track(rng: np.random.Generator, n: int, jitter_px: float, *, walk_mm_s: float = 0.0) -> np.ndarray:
    """(time, 2, keypoint): a rigid mouse, still or walking along x, with white jitter."""
    offsets = np.array([[30, 0], [22, -6], [22, 6], [15, 0], [0, 0], [-30, 0]], float).T  # (2, k)
    centre = np.stack([200 + walk_mm_s * PPM * np.arange(n) / FPS, np.full(n, 200.0)], axis=1)
    return centre[:, :, None] + offsets[None] + rng.normal(0, jitter_px, (n, 2, len(NAMES)))


def _inject(rng: np.random.Generator, pos: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    bad = rng.random((pos.shape[0], pos.shape[2])) < share
    size = rng.uniform(20, 150, int(bad.sum()))
    angle = rng.uniform(0, 2 * np.pi, int(bad.sum()))
    out = pos.copy()
    out[:, 0][bad] += size * np.cos(angle)
    out[:, 1][bad] += size * np.sin(angle)
    return out, bad


@pytest.mark.parametrize("jitter_px", [0.5, 2.0])
def test_rejects_the_injected_gross_errors_and_almost_nothing_else(jitter_px):
    rng = np.random.default_rng(1)
    clean = _track(rng, 3000, jitter_px)
    pos, bad = _inject(rng, clean, 0.04)
    out, info = reject_gross_errors(pos, fps=FPS, px_per_mm=PPM)
    rejected = ~np.isfinite(out[:, 0])
    bad[:8], bad[-8:] = False, False  # the ends (half a window) are not tested
    assert rejected[bad].mean() == 1.0  # every 20-150 px error is caught
    assert rejected[~bad].mean() < 1e-3  # jitter alone: 5 s.d. (Rayleigh ~4e-6) or 10 mm
    assert info["rejected"] == int(rejected.sum()) == int(bad.sum() + rejected[~bad].sum())
    # the limit per keypoint is max(5 sigma, 10 mm): 10 px at 1 px/mm and 0.5 or 2 px jitter
    assert np.allclose(info["limit_px"], max(10.0, 5 * jitter_px), rtol=0.1)


def test_a_walking_track_keeps_its_samples():
    """The running median follows steady motion: no sample of a 100 mm/s walk is rejected."""
    rng = np.random.default_rng(2)
    pos = _track(rng, 900, 1.0, walk_mm_s=100.0)
    out, info = reject_gross_errors(pos, fps=FPS, px_per_mm=PPM)
    assert info["rejected"] <= 1 and np.isfinite(out).mean() > 0.999


def test_freezing_survives_confident_gross_errors():
    """A mouse still for 20 s, walking around it, with 4 % confident 20-150 px errors: without
    the rejection the errors cut the freeze to pieces; with it the freeze is found."""
    rng = np.random.default_rng(3)
    walk1, still, walk2 = _track(rng, 300, 1.5, walk_mm_s=80), _track(rng, 600, 1.5), _track(rng, 300, 1.5, walk_mm_s=80)
    still += walk1[-1:, :, :].mean(axis=0, keepdims=True) - still.mean(axis=0, keepdims=True)
    walk2 += still[-1:] - walk2[:1]
    pos, _ = _inject(rng, np.concatenate([walk1, still, walk2]), 0.04)
    ds = from_numpy(pos[..., None], np.full((len(pos), len(NAMES), 1), 0.9), keypoints=NAMES, fps=FPS,
                    px_per_mm=PPM)
    truth = np.zeros(len(pos), bool)
    truth[300:900] = True
    with_rule = detect_freezing(ds).values
    without = detect_freezing(ds, gross_error_min_mm=None).values
    assert (with_rule == truth)[310:890].mean() > 0.97 and with_rule[:290].sum() == 0
    assert (without == truth)[310:890].mean() < 0.7
    assert detect_freezing(ds).attrs["gross_errors_rejected"] > 0
