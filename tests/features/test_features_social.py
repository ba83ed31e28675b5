"""Social features: known-answer distances and bouts on synthetic animals, DeepOF multi-animal
files, and the virtual mice's interaction truth."""

from __future__ import annotations

import numpy as np
import pytest

from features.social import (
    SocialThresholds,
    compute_social_distances,
    compute_time_near,
    derive_social_thresholds,
    detect_social_bouts,
    summarize_social,
)
from pose import io as pose_io
from pose.dataset import from_numpy
from pose.tracking import split_prefixed_individuals
from tests.conftest import shared_path

FPS = 30.0
KP = ["snout", "body_center", "tail_base"]


def _animal(centre: np.ndarray, heading: float) -> np.ndarray:
    """(time, 2, 3) snout / body centre / tail base of a 100 px (snout-tail base) animal."""
    u = np.array([np.cos(heading), np.sin(heading)])
    return np.stack([centre + 50 * u, centre, centre - 50 * u], axis=-1)


def _pair(a: np.ndarray, b: np.ndarray, px_per_mm: float | None = 2.0):
    pos = np.stack([a, b], axis=-1)
    return from_numpy(pos, np.full((pos.shape[0], 3, 2), 0.95), keypoints=KP,
                      individuals=["a", "b"], fps=FPS, px_per_mm=px_per_mm)


def test_two_animals_at_a_known_distance_give_that_distance() -> None:
    n = 10
    a = _animal(np.tile([100.0, 100.0], (n, 1)), 0.0)
    b = _animal(np.tile([130.0, 140.0], (n, 1)), 0.0)  # 30, 40 px away: 50 px = 25 mm
    d = compute_social_distances(_pair(a, b))
    assert d["body_body"].attrs["units"] == "mm"
    np.testing.assert_allclose(d["body_body"].sel(individual="a", other="b").values, 25.0)
    np.testing.assert_allclose(d["nose_nose"].sel(individual="b", other="a").values, 25.0)
    # a's nose (150, 100) to b's tail base (80, 140): hypot(70, 40) px
    np.testing.assert_allclose(d["nose_tail_base"].sel(individual="a", other="b").values,
                               np.hypot(70, 40) / 2.0)
    assert np.isnan(d["body_body"].sel(individual="a", other="a").values).all()
    px = compute_social_distances(_pair(a, b, px_per_mm=None))
    assert px["body_body"].attrs["units"] == "px"
    np.testing.assert_allclose(px["body_body"].sel(individual="a", other="b").values, 50.0)


def test_thresholds_derive_from_the_body_length_and_can_be_given() -> None:
    n = 5
    ds = _pair(_animal(np.tile([100.0, 100.0], (n, 1)), 0.0), _animal(np.tile([400.0, 100.0], (n, 1)), 0.0))
    t, why = derive_social_thresholds(ds)  # body length 100 px = 50 mm
    assert t.contact_mm == pytest.approx(12.5) and t.near_mm == pytest.approx(50.0)
    assert t.approach_speed_mm_s == pytest.approx(25.0) and "body length" in why["contact_mm"]
    t2, why2 = derive_social_thresholds(ds, SocialThresholds(contact_mm=3.0))
    assert t2.contact_mm == 3.0 and why2["contact_mm"] == "given"
    with pytest.raises(ValueError, match="contact_mmm"):
        SocialThresholds(contact_mmm=3.0)


def test_contact_approach_and_time_near_on_a_scripted_encounter() -> None:
    # b rests at x=300; a walks toward it at 60 mm/s (120 px/s = 4 px/frame), heading +x,
    # stops with its nose 5 px from b's flank for 2 s, then stays there.
    n = 150
    b_c = np.tile([300.0, 200.0], (n, 1))
    b = _animal(b_c, np.pi / 2)  # b lies along y: its flank faces a
    x = np.minimum(40.0 + 4.0 * np.arange(n), 300.0 - 50.0 - 5.0)  # nose stops at x=295
    a = _animal(np.stack([x, np.full(n, 200.0)], axis=1), 0.0)
    ds = _pair(a, b)
    bouts = detect_social_bouts(ds)
    stop = int(np.argmax(x >= 245.0))  # first frame at the stop (frame 52)
    contact = bouts.query("kind == 'contact' and individual == 'a'")
    t, _ = derive_social_thresholds(ds)
    first = int(np.argmax(300.0 - (x + 50.0) < t.contact_mm * 2.0))  # nose within contact_mm
    assert len(contact) == 1 and contact.start_frame.iloc[0] == first
    assert contact.end_frame.iloc[0] == n - 1
    approach = bouts.query("kind == 'approach' and individual == 'a'")
    assert len(approach) == 1 and approach.end_frame.iloc[0] == first - 1
    assert bouts.query("individual == 'b' and kind == 'approach'").empty  # b never moves
    near = compute_time_near(ds, near_mm=60.0).set_index(["individual", "other"])
    # body centres closer than 60 mm (120 px): a's centre beyond x = 180
    expected = int(np.sum(300.0 - x < 120.0))
    assert near.loc[("a", "b"), "time_near_s"] == pytest.approx(expected / FPS)
    summary = summarize_social(ds).set_index(["individual", "other"])
    assert summary.loc[("a", "b"), "contact_time_s"] == pytest.approx((n - first) / FPS)
    assert stop >= first


def test_following_is_detected_behind_a_moving_animal() -> None:
    n = 90
    lead = np.stack([100.0 + 4.0 * np.arange(n), np.full(n, 200.0)], axis=1)
    b = _animal(lead, 0.0)
    a = _animal(lead - [130.0, 0.0], 0.0)  # a's nose 30 px behind b's tail base
    bouts = detect_social_bouts(_pair(a, b))
    follow = bouts.query("kind == 'following'")
    assert list(follow.individual) == ["a"] and follow.duration_s.iloc[0] >= 2.9


def test_one_individual_is_refused_with_a_hint() -> None:
    ds = from_numpy(np.zeros((5, 2, 3)), keypoints=KP, fps=FPS)
    with pytest.raises(ValueError, match="need 2 or more individuals.*split_prefixed_individuals"):
        compute_social_distances(ds)


@pytest.mark.parametrize("name", ["test_madlc_topview_testDLC_h5_table_madlc.h5",
                                  "test_madlc_topview_testDLC_csv_table_madlc.csv",
                                  "test_multi_topview_testDLC_csv_table_multi.csv"])
def test_deepof_multi_animal_files_load_with_their_individuals_and_give_social_features(name) -> None:
    ds = pose_io.load(shared_path("deepof-formats", name), fps=25.0)
    if "madlc" in name:
        assert [str(i) for i in ds.individual.values] == ["mouse_black_tail", "mouse_white_tail"]
    else:  # two mice in the single-animal layout, body parts prefixed B_ / W_
        ds = split_prefixed_individuals(ds)
        assert [str(i) for i in ds.individual.values] == ["B", "W"]
    d = compute_social_distances(ds)
    assert set(d.data_vars) == {"body_body", "nose_nose", "nose_tail_base"}
    # the distances equal those computed directly from the file's columns
    a, b = (str(i) for i in ds.individual.values)
    nose = ds.position.sel(keypoint="Nose").values
    np.testing.assert_allclose(d["nose_nose"].sel(individual=a, other=b).values,
                               np.linalg.norm(nose[:, :, 0] - nose[:, :, 1], axis=1))
    summary = summarize_social(ds)
    assert len(summary) == 2 and np.isfinite(summary["median_distance_px"]).all()
    assert (summary["fraction_near"] >= 0).all() and (summary["fraction_near"] <= 1).all()


def test_virtual_mice_truth_contacts_are_found() -> None:
    from pose.synthetic.social import simulate_social

    truth = simulate_social(60.0, seed=1)
    bouts = detect_social_bouts(truth.pose)
    n = truth.pose.sizes["time"]

    def frames(table, kind, col):
        m = np.zeros(n, bool)
        for r in table[table.kind == kind].itertuples():
            m[r.start_frame:r.end_frame + 1] = True
        return m

    sim = frames(truth.interactions, "contact", "actor")
    found = frames(bouts, "contact", "individual")
    assert sim.sum() > 100  # several seconds of contact in 1 min
    assert (sim & found).sum() / sim.sum() >= 0.75  # recall of the simulated contact bouts


def test_nose_nose_and_nose_anogenital_bouts_on_scripted_sniffs() -> None:
    # b rests heading +x (nose at 350, tail base at 250). a faces b nose to nose (a's nose
    # 5 px = 2.5 mm from b's) for frames 0-59, then sits behind b, nose 5 px from b's tail
    # base, for frames 60-119. Contact distance 0.25 x 50 mm = 12.5 mm.
    n = 120
    b = _animal(np.tile([300.0, 200.0], (n, 1)), 0.0)
    a = np.empty((n, 2, 3))
    a[:60] = _animal(np.tile([405.0, 200.0], (60, 1)), np.pi)  # nose at 355
    a[60:] = _animal(np.tile([195.0, 200.0], (60, 1)), 0.0)  # nose at 245
    bouts = detect_social_bouts(_pair(a, b)).set_index(["kind", "individual"])
    nn = bouts.loc[("nose_nose", "a")]
    assert (nn.start_frame, nn.end_frame) == (0, 59)
    ag = bouts.loc[("nose_anogenital", "a")]
    assert (ag.start_frame, ag.end_frame, ag.duration_s) == (60, 119, pytest.approx(2.0))
    assert ("nose_anogenital", "b") not in bouts.index  # b's nose is never at a's tail base
    summary = summarize_social(_pair(a, b)).set_index(["individual", "other"])
    assert summary.loc[("a", "b"), "nose_nose_time_s"] == pytest.approx(2.0)
    assert summary.loc[("b", "a"), "n_nose_nose"] == 1 and summary.loc[("a", "b"), "n_nose_anogenital"] == 1
