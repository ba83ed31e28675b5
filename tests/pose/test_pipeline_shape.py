"""The body-shape prior: known shapes recovered, wrong-end peaks moved, good peaks kept."""

import numpy as np
import pytest

from pose.pipeline.shape import apply_shape_prior, fit_shape_prior

# a mouse-like layout seen from above: snout, ears, neck, centre, tail base, four paws
SHAPE = np.array([[0, 40], [-8, 28], [8, 28], [0, 22], [0, 0], [0, -30], [-10, 15], [10, 15], [-12, -18],
                  [12, -18]], float)


def _frames(n, noise, rng, mirror_fraction=0.0):
    out = []
    for i in range(n):
        a = rng.uniform(0, 2 * np.pi)
        s = rng.uniform(0.8, 1.2)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        xy = SHAPE * [(-1 if i < mirror_fraction * n else 1), 1]
        out.append(s * xy @ rot.T + rng.uniform(100, 300, 2) + rng.normal(0, noise, SHAPE.shape))
    return np.array(out)


def test_fit_recovers_the_spread_of_each_keypoint():
    rng = np.random.default_rng(0)
    kps = _frames(200, 2.0, rng)
    kps[::7, 3] = np.nan  # some unlabelled
    prior = fit_shape_prior(kps, [list(range(len(SHAPE)))])
    g = prior.groups[0]
    size = np.sqrt(((SHAPE - SHAPE.mean(0)) ** 2).sum(1).mean())
    # per-axis sd in shape units ~ 2 px / size (the alignment absorbs a little)
    assert np.allclose(g.sd, 2.0 / size, rtol=0.3), (g.sd, 2.0 / size)
    assert not g.reflections
    mirrored = fit_shape_prior(_frames(200, 1.0, rng, mirror_fraction=0.5), [list(range(len(SHAPE)))])
    assert mirrored.groups[0].reflections


def test_too_few_labels_give_no_prior():
    rng = np.random.default_rng(1)
    assert fit_shape_prior(_frames(5, 1.0, rng), [list(range(len(SHAPE)))]) is None
    assert fit_shape_prior(_frames(50, 1.0, rng)[:, :3], [[0, 1, 2]]) is None


def _maps(points, stride, hw, wrong=None):
    """Logit maps with a peak (logit 3) at each point; ``wrong`` = {channel: (x, y)} a stronger
    (logit 5) peak elsewhere."""
    h, w = hw
    cy = np.arange(h) * stride + (stride - 1) / 2.0
    cx = np.arange(w) * stride + (stride - 1) / 2.0
    logits = np.full((1, len(points), h, w), -8.0)
    for c, (x, y) in enumerate(points):
        d2 = (cx[None] - x) ** 2 + (cy[:, None] - y) ** 2
        logits[0, c] = np.maximum(logits[0, c], 3.0 - d2 / 50.0)
        if wrong and c in wrong:
            wx, wy = wrong[c]
            d2 = (cx[None] - wx) ** 2 + (cy[:, None] - wy) ** 2
            logits[0, c] = np.maximum(logits[0, c], 5.0 - d2 / 50.0)
    return logits


@pytest.mark.parametrize("angle", [0.0, 2.0])
def test_a_peak_on_the_wrong_end_moves_back_and_good_peaks_stay(angle):
    rng = np.random.default_rng(2)
    prior = fit_shape_prior(_frames(100, 1.5, rng), [list(range(len(SHAPE)))])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = SHAPE @ rot.T + [150, 120]
    # left hind paw (8) strongest on the right ear (2), right fore paw (7) strongest at the snout
    logits = _maps(pts, 4, (64, 80), wrong={8: pts[2], 7: pts[0]})
    argmax = logits.reshape(1, len(pts), -1).argmax(axis=2)
    idx = apply_shape_prior(logits, argmax, 4, prior)
    w = logits.shape[3]
    iy, ix = np.divmod(idx[0], w)
    got = np.stack([ix * 4 + 1.5, iy * 4 + 1.5], axis=1)
    err = np.linalg.norm(got - pts, axis=1)
    assert err.max() < 4.0, err  # every part on its own place, to the cell
    untouched = [c for c in range(len(pts)) if c not in (7, 8)]
    assert (idx[0, untouched] == argmax[0, untouched]).all()


def test_no_plausible_peak_keeps_the_argmax():
    rng = np.random.default_rng(3)
    prior = fit_shape_prior(_frames(100, 1.5, rng), [list(range(len(SHAPE)))])
    pts = SHAPE + [150, 120]
    logits = _maps(pts, 4, (64, 80))
    logits[0, 8] = -8.0
    logits[0, 8, 5, 5] = 2.0  # its only peak, far off the body
    argmax = logits.reshape(1, len(pts), -1).argmax(axis=2)
    assert (apply_shape_prior(logits, argmax, 4, prior) == argmax).all()
