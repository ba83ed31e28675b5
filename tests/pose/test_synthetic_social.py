"""The virtual mice, social: exact identities and interactions, simulated detections, rendering
with labels in the DeepLabCut multi-animal layout, and identity kept by the tracker."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from pose import io as pose_io
from pose.synthetic.openfield import KEYPOINTS
from pose.synthetic.social import (
    INTERACTIONS,
    DetectionNoise,
    detected_individuals,
    render_social,
    simulate_detections,
    simulate_social,
)


@pytest.fixture(scope="module")
def truth():
    return simulate_social(90.0, seed=2, n_animals=2)


def test_simulation_is_deterministic_with_exact_identities(truth) -> None:
    one, two = (simulate_social(20.0, seed=4, n_animals=3) for _ in range(2))
    np.testing.assert_array_equal(one.pose.position.values, two.pose.position.values)
    pd.testing.assert_frame_equal(one.interactions, two.interactions)
    assert one.pose.sizes["individual"] == 3
    assert [str(i) for i in truth.pose.individual.values] == ["mouse_0", "mouse_1"]
    assert truth.pose.sizes["time"] == 2700 and truth.modes.shape == (2700, 2)
    assert np.isfinite(truth.pose.position.values).all()


def test_interactions_are_frequent_and_consistent_with_the_geometry(truth) -> None:
    it = truth.interactions
    assert set(it.kind) == set(INTERACTIONS)  # approach, contact, follow, cross all happen
    ppm = truth.pose.attrs["px_per_mm"]
    pos = truth.pose.position.values / ppm
    snout, centre = KEYPOINTS.index("snout"), KEYPOINTS.index("body_center")
    near = []
    for r in it[it.kind == "contact"].itertuples():
        a, b = int(r.actor[-1]), int(r.target[-1])
        seg = pos[r.start_frame:r.end_frame + 1]
        near.append(np.linalg.norm(seg[:, :, snout, a, None] - seg[:, :, :, b], axis=1).min(axis=1))
    # in contact the actor's snout is on the other mouse (within 30 mm of one of its keypoints)
    assert np.mean(np.concatenate(near) < 30.0) > 0.7
    c = pos[:, :, centre]
    d = np.linalg.norm(c[:, :, 0] - c[:, :, 1], axis=1)
    crossing = (truth.modes == "cross").any(axis=1)
    assert d[~crossing].min() > 25.0  # bodies repel except when one runs over the other
    assert d[crossing].min() < 25.0
    assert (d < 93.0).mean() > 0.2  # close (within a body length) a good part of the time
    lo, hi = np.array(truth.arena["bounds_px"][:2]), np.array(truth.arena["bounds_px"][2:])
    trunk = [k for k in range(len(KEYPOINTS)) if KEYPOINTS[k] != "tail_tip"]
    p = truth.pose.position.values[:, :, trunk]
    assert (p >= lo[None, :, None, None]).all() and (p <= hi[None, :, None, None]).all()


def test_simulated_detections_shuffle_instances_and_degrade_them(truth) -> None:
    det, source = simulate_detections(truth.pose, DetectionNoise.preset("medium"), seed=0)
    assert [str(i) for i in det.individual.values] == ["instance_0", "instance_1"]
    assert (source[:, 0] == 1).mean() == pytest.approx(0.5, abs=0.05)  # order is random
    back = np.take_along_axis(det.position.values, np.argsort(source, axis=1)[:, None, None, :], axis=3)
    err = np.linalg.norm(back - truth.pose.position.values, axis=1)
    assert np.nanmedian(err) == pytest.approx(2.0 * np.sqrt(np.pi / 2), rel=0.1)  # 2 px noise
    present = detected_individuals(det, source)
    assert 0.95 < present.mean() < 1.0  # a few instances are missing
    conf = det.confidence.values
    # confidence dropouts: 5 %, half of them a wrong peak (finite, confidence < 0.3)
    assert 0.015 < np.mean(conf[np.isfinite(conf)] < 0.3) < 0.04


def test_tracking_keeps_identities_of_the_virtual_mice_one_minute() -> None:
    from pose.tracking import identity_metrics, track_identities

    pytest.importorskip("motmetrics")
    truth = simulate_social(60.0, seed=5, n_animals=2)
    det, source = simulate_detections(truth.pose, DetectionNoise.preset("medium"), seed=5)
    tracked = track_identities(det).pose
    m = identity_metrics(truth.pose, tracked, present=detected_individuals(det, source))
    assert m["idf1"] >= 0.99 and m["num_switches"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_done_when_two_same_coat_mice_ten_minutes_identity_kept(seed) -> None:
    from pose.tracking import TrackingConfig, identity_metrics, track_identities

    pytest.importorskip("motmetrics")
    truth = simulate_social(600.0, seed=seed, n_animals=2)
    assert (truth.interactions.kind == "contact").sum() >= 20  # frequent close contacts
    centre = truth.pose.position.sel(keypoint="body_center").values
    close = np.linalg.norm(centre[:, :, 0] - centre[:, :, 1], axis=1) < 93.0 * truth.pose.attrs["px_per_mm"]
    assert close.mean() > 0.3  # within a body length of each other a third of the time
    det, source = simulate_detections(truth.pose, DetectionNoise.preset("medium"), seed=seed)
    tracked = track_identities(det, TrackingConfig(n_animals=2)).pose
    m = identity_metrics(truth.pose, tracked, present=detected_individuals(det, source))
    assert m["idf1"] >= 0.99 and m["switches_per_10_min"] <= 1


def test_render_two_coats_with_multi_animal_dlc_labels(tmp_path) -> None:
    s = render_social(tmp_path, seconds=1.0, seed=0, coats=("black", "agouti"), width=320,
                      height=240, n_label_frames=3)
    truth = pose_io.load(s.files["truth_h5"])
    assert [str(i) for i in truth.individual.values] == ["mouse_0", "mouse_1"]
    np.testing.assert_allclose(truth.position.values, s.pose.position.values, atol=1e-6)
    df = pd.read_csv(s.files["labels"].with_suffix(".csv"), header=[0, 1, 2, 3], index_col=[0, 1, 2])
    assert df.columns.names == ["scorer", "individuals", "bodyparts", "coords"]
    assert len(df) == 3 and set(df.columns.get_level_values("individuals")) == {"mouse_0", "mouse_1"}
    cfg = yaml.safe_load(s.files["config"].read_text())
    assert cfg["multianimalproject"] is True and cfg["individuals"] == ["mouse_0", "mouse_1"]
    assert cfg["multianimalbodyparts"] == list(KEYPOINTS)
    # the coats are drawn where the truth says: body centre of the agouti mouse is brown
    cap = cv2.VideoCapture(str(s.video_path))
    ok, frame = cap.read()
    cap.release()
    assert ok
    centre = s.pose.position.sel(keypoint="body_center").values[0]  # (2, individual)
    bgr = [frame[int(round(centre[1, i])), int(round(centre[0, i]))].astype(int) for i in range(2)]
    assert bgr[0].sum() < 200  # black coat
    assert bgr[1][2] > bgr[1][0] + 20 and bgr[1].sum() > bgr[0].sum() + 80  # agouti: red > blue
    inter = pd.read_csv(s.files["interactions"])
    assert list(inter.columns) == ["kind", "actor", "target", "start_frame", "end_frame", "start_s", "end_s", "point"]


def test_appearance_sampled_from_a_rendered_video_separates_two_coats(tmp_path) -> None:
    from pose.tracking.appearance import sample_appearance

    s = render_social(tmp_path, seconds=1.0, seed=1, coats=("black", "agouti"), width=320,
                      height=240, n_label_frames=0)
    app = sample_appearance(s.video_path, s.pose)  # (time, individual, Lab)
    assert app.shape == (30, 2, 3) and np.isfinite(app).all()
    between = np.linalg.norm(app[:, 0] - app[:, 1], axis=1)
    within = np.linalg.norm(np.diff(app, axis=0), axis=2)
    assert np.median(between) > 3 * np.median(within)
    assert np.median(app[:, 1, 0] - app[:, 0, 0]) > 15  # agouti is lighter (L) than black
