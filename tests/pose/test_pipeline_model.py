"""Pose network pieces with known answers: targets, decoding, masked loss, metrics, split."""

from __future__ import annotations

import numpy as np
import pytest

from pose.pipeline.evaluate import compute_metrics, keypoint_errors, summarize_errors
from pose.pipeline.split import read_test_frames, split_by_fraction, split_by_test_frames


def test_decode_recovers_labels_from_perfect_targets():
    from pose.pipeline.model import decode, make_targets

    kps = np.array([[100.3, 50.7], [3.25, 200.9], [0.0, 0.0], [255.0, 255.0]])
    for stride in (4, 8):
        heat, weight, offs, _ = make_targets(kps, (256 // stride, 256 // stride), stride,
                                             sigma_px=stride, locref_radius_px=2 * stride)
        logits = np.log(heat + 1e-12) - np.log1p(-np.minimum(heat, 1 - 1e-9))
        xy, conf = decode(logits[None], offs[None], stride)
        np.testing.assert_allclose(xy[0], kps, atol=1e-4)
        assert weight.tolist() == [1, 1, 1, 1]
        assert np.all((conf > 0.5) & (conf <= 1.0))


def test_nan_label_gets_no_target_and_does_not_change_the_loss():
    import torch

    from pose.pipeline.model import make_targets, pose_loss

    kps = np.array([[20.0, 20.0], [np.nan, np.nan]])
    heat, weight, offs, mask = make_targets(kps, (8, 8), 8, sigma_px=8, locref_radius_px=16)
    assert weight.tolist() == [1.0, 0.0]
    assert heat[1].sum() == 0 and mask[2:].sum() == 0
    t = [torch.from_numpy(a)[None] for a in (heat, weight, offs, mask)]
    logits = torch.zeros(1, 2, 8, 8)
    off = torch.zeros(1, 4, 8, 8)
    base = pose_loss((logits, off), *t)
    logits2 = logits.clone()
    logits2[:, 1] = 7.0  # anything on the invisible channel
    off2 = off.clone()
    off2[:, 2:] = 3.0
    assert torch.allclose(pose_loss((logits2, off2), *t), base)
    logits3 = logits.clone()
    logits3[:, 0] = 7.0  # the visible channel does count
    assert pose_loss((logits3, off), *t) > base


def test_metrics_against_hand_computed_values():
    labels = np.array([[[0.0, 0.0], [10.0, 10.0]], [[5.0, 5.0], [np.nan, np.nan]]])
    pred = np.array([[[3.0, 4.0], [10.0, 10.0]], [[5.0, 17.0], [1.0, 1.0]]])
    conf = np.array([[0.9, 0.2], [0.8, 0.9]])
    err = keypoint_errors(pred, labels)
    np.testing.assert_allclose(err[:, 0], [5.0, 12.0])
    assert err[0, 1] == 0.0 and np.isnan(err[1, 1])
    m = summarize_errors(err, conf, pcutoff=0.5)
    assert m["n"] == 3
    assert m["mean_px"] == pytest.approx((5 + 0 + 12) / 3)
    assert m["rmse_px"] == pytest.approx(np.sqrt((25 + 0 + 144) / 3))
    assert m["pck5"] == pytest.approx(2 / 3) and m["pck10"] == pytest.approx(2 / 3)
    assert m["n_pcutoff"] == 2  # the 0-px keypoint has confidence 0.2 < 0.5
    assert m["mean_px_pcutoff"] == pytest.approx(8.5)
    assert m["rmse_px_pcutoff"] == pytest.approx(np.sqrt((25 + 144) / 2))
    full = compute_metrics(pred, conf, labels, ["a", "b"], 0.5)
    assert full["per_bodypart"]["a"]["mean_px"] == pytest.approx(8.5)
    assert full["per_bodypart"]["b"]["n"] == 1 and full["n_images"] == 2


def test_fraction_split_is_reproducible_and_follows_deeplabcuts_rule():
    images = [f"labeled-data/v/img{i:04d}.png" for i in range(116)]
    a = split_by_fraction(images, 0.95, seed=0)
    b = split_by_fraction(images, 0.95, seed=0)
    assert a == b and len(a.test) == 6 and len(a.train) == 110
    assert not set(a.train) & set(a.test)
    perm = np.random.RandomState(0).permutation(116)
    assert a.test == [images[i] for i in sorted(perm[110:])]
    assert split_by_fraction(images, 0.95, seed=1).test != a.test
    half = split_by_fraction(images, 0.5, seed=0)
    assert len(half.train) == len(half.test) == 58
    with pytest.raises(ValueError, match="training_fraction"):
        split_by_fraction(images, 1.5)


def test_test_frames_file(tmp_path):
    images = ["labeled-data/a/img0001.png", "labeled-data/a/img0002.png", "labeled-data/b/img0001.png"]
    f = tmp_path / "test.txt"
    f.write_text("# DLC test frames\nimg0002\n\nlabeled-data/b/img0001.png\n")
    s = split_by_test_frames(images, read_test_frames(f))
    assert s.test == ["labeled-data/a/img0002.png", "labeled-data/b/img0001.png"]
    assert s.train == ["labeled-data/a/img0001.png"]
    with pytest.raises(ValueError, match="matches 2 images"):
        split_by_test_frames(images, ["img0001"])
    with pytest.raises(ValueError, match="img9999"):
        split_by_test_frames(images, ["img9999"])
    saved = s.save(tmp_path / "split.json")
    assert type(s).load(saved) == s


def test_importing_the_project_modules_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, pose, pose.pipeline.project, pose.pipeline.split, pose.pipeline.augment, "
            "pose.pipeline.evaluate, pose.pipeline.frames, pose.pipeline.cli; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_decode_keeps_each_keypoint_on_the_body():
    # A background feature (say an arena corner) scores higher than the real, weaker peak on
    # the animal: with the body radius the real one wins, its own offsets and confidence used.
    pytest.importorskip("torch")
    from pose.pipeline.model import cell_centres, decode

    stride = 4
    logits = np.full((1, 4, 16, 16), -6.0, np.float32)
    offs = np.zeros((1, 8, 16, 16), np.float32)
    for c, (y, x) in enumerate([(7, 7), (7, 9), (9, 8)]):  # three parts on the body
        logits[0, c, y, x] = 3.0
    logits[0, 3, 1, 14] = 2.0  # the corner: highest score of channel 3
    logits[0, 3, 8, 9] = 0.5  # the tail base, on the body, weaker
    offs[0, 6, 8, 9], offs[0, 7, 8, 9] = 0.25, -0.25
    xy, conf = decode(logits, offs, stride)
    np.testing.assert_allclose(xy[0, 3], [cell_centres(16, stride)[14], cell_centres(16, stride)[1]])
    xy, conf = decode(logits, offs, stride, body_radius=20.0)
    np.testing.assert_allclose(xy[0, 3], [9 * 4 + 1.5 + 1.0, 8 * 4 + 1.5 - 1.0])
    assert conf[0, 3] == pytest.approx(1 / (1 + np.exp(-0.5)))
    np.testing.assert_allclose(xy[0, :3], decode(logits, offs, stride)[0][0, :3])  # the others unchanged
    # no peak on the body: the far one is still impossible for this animal; the point returned
    # lies on the body with the low confidence found there, so the p-cutoff drops it
    logits[0, 3, 8, 9] = -6.0
    xy, conf = decode(logits, offs, stride, body_radius=20.0)
    assert np.hypot(*(xy[0, 3] - np.median(xy[0, :3], axis=0))) <= 20.0 and conf[0, 3] < 0.01
    # each individual is constrained on its own
    two = np.concatenate([logits, logits[:, [3, 0, 1]]], axis=1)
    two[0, 3, 8, 9] = 0.5
    xy2, _ = decode(two, np.zeros((1, 14, 16, 16), np.float32), stride, body_radius=20.0,
                    groups=[[0, 1, 2, 3], [4, 5, 6]])
    assert xy2[0, 3, 1] < 40 and xy2[0, 4, 1] < 10  # first individual moved; the second's majority is far


def test_body_radius_from_labels_and_individual_channels():
    from pose.pipeline.modeldir import body_radius_px, individual_channels

    kps = np.array([
        [[0, 0], [10, 0], [20, 0], [np.nan, np.nan]],  # median (10, 0): reach 10
        [[0, 0], [0, 30], [np.nan, np.nan], [np.nan, np.nan]],  # 2 labelled: skipped
        [[5, 5], [5, 9], [5, 11], [5, 7]],  # median (5, 8): reach 3
    ], float)
    assert body_radius_px(kps, [[0, 1, 2, 3]]) == pytest.approx(15.0)
    assert body_radius_px(kps[1:2], [[0, 1, 2, 3]]) is None
    assert individual_channels(["a", "b"]) == [[0, 1]]
    assert individual_channels(["m1/a", "m1/b", "m2/a", "m2/b"]) == [[0, 1], [2, 3]]
