"""Identity tracking: known-answer scenes, the SLEAP flies with their human identities, the
virtual mice; metrics from motmetrics (IDF1, switches), never hand-written."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from pose import io as pose_io
from pose.dataset import from_numpy
from pose.tracking import (
    TrackingConfig,
    detect_swap_suspects,
    identity_metrics,
    split_prefixed_individuals,
    swap_identities,
    track_identities,
)
from tests.conftest import shared_path

pytest.importorskip("motmetrics")

FPS = 30.0


def _body(centre: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """(time, 2, 5) keypoints of a 60 px long stick animal: nose, neck, centre, hip, tail base."""
    u = np.stack([np.cos(heading), np.sin(heading)], axis=1)
    return np.stack([centre + f * 30.0 * u for f in (1.0, 0.5, 0.0, -0.5, -1.0)], axis=-1)


def _scene(n: int = 120, *, third: tuple[int, int] | None = None) -> xr.Dataset:
    """Two animals on crossing straight paths (X), optionally a third present in [a, b)."""
    t = np.arange(n)[:, None]
    a = np.array([100.0, 100.0]) + t * [3.0, 2.0]
    b = np.array([460.0, 100.0]) + t * [-3.0, 2.0]
    kps = [_body(a, np.full(n, np.arctan2(2, 3))), _body(b, np.full(n, np.arctan2(2, -3)))]
    if third is not None:
        c = np.array([280.0, 420.0]) + t * [0.0, -1.0]
        p = _body(c, np.full(n, -np.pi / 2))
        p[: third[0]] = np.nan
        p[third[1]:] = np.nan
        kps.append(p)
    pos = np.stack(kps, axis=-1)
    return from_numpy(pos, np.where(np.isnan(pos[:, 0]), np.nan, 0.9), fps=FPS,
                      keypoints=["nose", "neck", "centre", "hip", "tail_base"],
                      individuals=[f"animal_{i}" for i in range(pos.shape[-1])])


def _shuffle(ds: xr.Dataset, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    perm = np.argsort(rng.random((ds.sizes["time"], ds.sizes["individual"])), axis=1)
    out = ds.copy(deep=True)
    out["position"].values[:] = np.take_along_axis(ds.position.values, perm[:, None, None, :], axis=3)
    out["confidence"].values[:] = np.take_along_axis(ds.confidence.values, perm[:, None, :], axis=2)
    return out


def test_crossing_animals_keep_their_identity_with_shuffled_instances() -> None:
    truth = _scene()
    result = track_identities(_shuffle(truth))
    m = identity_metrics(truth, result.pose)
    assert result.pose.sizes["individual"] == 2
    assert m["num_switches"] == 0 and m["idf1"] == pytest.approx(1.0)
    # at the crossing (frame 60: same centre) the bodies' orientations still tell them apart:
    # the all-keypoint cost keeps the identity confidence high where a centroid cost is at 0
    assert np.nanmin(result.pose["identity_confidence"].values[55:66]) > 0.9
    assert result.pose.attrs["history"][-1]["op"] == "track_identities"
    s = result.settings
    assert s.body_size_px == pytest.approx(2 * np.sqrt(np.mean([30**2, 15**2, 0, 15**2, 30**2])), rel=1e-6)
    assert s.step_px == pytest.approx(np.hypot(3, 2), rel=0.05)


def test_entry_and_exit_give_a_track_that_ends() -> None:
    truth = _scene(160, third=(40, 90))
    result = track_identities(_shuffle(truth), TrackingConfig(max_coast_s=0.5))
    m = identity_metrics(truth, result.pose)
    assert result.pose.sizes["individual"] == 3
    assert m["num_switches"] == 0 and m["idf1"] == pytest.approx(1.0)
    src = result.links["source"]
    third = [k for k in range(3) if (src[:, k] >= 0).sum() == 50]
    assert len(third) == 1  # one track holds exactly the 50 frames of the visitor


def test_a_missing_instance_coasts_and_is_taken_back() -> None:
    truth = _scene()
    det = truth.copy(deep=True)
    det["position"].values[20:32, :, :, 0] = np.nan  # 12 frames (0.4 s) without animal 0
    det["confidence"].values[20:32, :, 0] = np.nan
    result = track_identities(_shuffle(det))
    assert result.pose.sizes["individual"] == 2
    present = ~np.isnan(det.position.values).all(axis=(1, 2))
    m = identity_metrics(truth, result.pose, present=present)
    assert m["num_switches"] == 0 and m["idf1"] == pytest.approx(1.0)


def test_known_number_of_animals_reacquires_a_lost_track() -> None:
    truth = _scene()
    det = truth.copy(deep=True)
    det["position"].values[10:70, :, :, 0] = np.nan  # 2 s: longer than max_coast_s
    det["confidence"].values[10:70, :, 0] = np.nan
    free = track_identities(_shuffle(det), TrackingConfig(max_coast_s=0.5, open_set=True))
    fixed = track_identities(_shuffle(det), TrackingConfig(max_coast_s=0.5, n_animals=2))
    assert free.pose.sizes["individual"] == 3  # open set: the returning animal is a new track
    assert fixed.pose.sizes["individual"] == 2
    assert fixed.links["reacquired"].sum() == 1


def test_swap_identities_from_a_frame_and_history() -> None:
    ds = track_identities(_scene()).pose
    out = swap_identities(ds, "track_0", "track_1", 30)
    p, q = ds.position.values, out.position.values
    np.testing.assert_array_equal(q[:30], p[:30])
    np.testing.assert_array_equal(q[30:, :, :, 0], p[30:, :, :, 1])
    np.testing.assert_array_equal(out.identity_confidence.values[30:, 1], ds.identity_confidence.values[30:, 0])
    assert out.attrs["history"][-1]["op"] == "swap_identities"
    assert out.attrs["history"][-1]["params"] == {"a": "track_0", "b": "track_1", "from_frame": 30, "n_rows": 90}
    assert ds.position.values is p  # the input is untouched
    with pytest.raises(ValueError, match="no individual 'track_9'"):
        swap_identities(ds, "track_0", "track_9", 3)
    with pytest.raises(ValueError, match="two different"):
        swap_identities(ds, "track_0", "track_0", 3)
    with pytest.raises(ValueError, match="frame 500 is outside"):
        swap_identities(ds, "track_0", "track_1", 500)


def test_swap_suspects_list_the_crossing_and_an_injected_swap() -> None:
    ds = track_identities(_shuffle(_scene())).pose
    table = detect_swap_suspects(ds)
    cross = table[table.kind == "crossing"]
    assert len(cross) == 1 and cross.frame.iloc[0] == 60  # centres coincide at frame 60
    assert cross.value.iloc[0] == pytest.approx(0.0, abs=1e-6)
    # a wrong swap far from the crossing shows as two jumps at the swapped frame
    bad = swap_identities(ds, "track_0", "track_1", 100)
    jumps = detect_swap_suspects(bad).query("kind == 'jump'")
    assert sorted(jumps.frame.tolist()) == [100, 100]


def test_overtaking_in_the_same_direction_is_a_low_margin_suspect() -> None:
    n = 90
    t = np.arange(n)[:, None]
    a = np.array([100.0, 200.0]) + t * [4.0, 0.0]  # overtakes b at frame 45, 2 px aside
    b = np.array([235.0, 202.0]) + t * [1.0, 0.0]
    pos = np.stack([_body(a, np.zeros(n)), _body(b, np.zeros(n))], axis=-1)
    truth = from_numpy(pos, np.full((n, 5, 2), 0.9), fps=FPS, individuals=["a", "b"])
    noisy = pos + np.random.default_rng(0).normal(0.0, 1.0, pos.shape)  # 1 px keypoint noise
    det = from_numpy(noisy, np.full((n, 5, 2), 0.9), fps=FPS, individuals=["a", "b"])
    tracked = track_identities(_shuffle(det)).pose
    assert identity_metrics(truth, tracked)["num_switches"] == 0  # the motion model carries it
    conf = tracked["identity_confidence"].values.min(axis=1)
    assert int(np.argmin(conf)) == 45 and conf[45] < 0.5 and conf[5:10].min() > 0.9
    low = detect_swap_suspects(tracked, low_margin=0.5).query("kind == 'low_margin'")
    assert len(low) == 2  # both tracks, one event each, around the overtaking frame
    assert (low.frame == 45).all() and (low.start_frame <= 45).all() and (low.end_frame >= 45).all()


def test_cli_track_then_swap(tmp_path) -> None:
    from typer.testing import CliRunner

    from ethopose.cli import app

    truth = _scene()
    pose_io.save(_shuffle(truth), tmp_path / "shuffled.h5")
    runner = CliRunner()
    res = runner.invoke(app, ["pose", "track", str(tmp_path / "shuffled.h5"), "--out",
                              str(tmp_path / "tracked.nc")])
    assert res.exit_code == 0, res.output
    assert "animals: 2 (estimated: 2 instances in 100.0% of frames" in res.output
    assert "identity confidence: median" in res.output and "UNRELIABLE" not in res.output
    assert "unsure runs of frames:" in res.output and "bridged as a whole" in res.output
    tracked = pose_io.load(tmp_path / "tracked.nc")
    assert "identity_confidence" in tracked
    assert identity_metrics(truth, tracked)["num_switches"] == 0
    sus = (tmp_path / "tracked_swap_suspects.csv").read_text().splitlines()
    assert sus[0].startswith("kind,frame,start_frame") and any(",60," in r for r in sus[1:])
    res = runner.invoke(app, ["pose", "swap", str(tmp_path / "tracked.nc"), "--ids", "track_0",
                              "track_1", "--from-frame", "40", "--out", str(tmp_path / "fixed.nc")])
    assert res.exit_code == 0, res.output
    fixed = pose_io.load(tmp_path / "fixed.nc")
    assert [h["op"] for h in fixed.attrs["history"]][-2:] == ["track_identities", "swap_identities"]
    res = runner.invoke(app, ["pose", "swap", str(tmp_path / "tracked.nc"), "--ids", "track_0",
                              "nobody", "--from-frame", "40", "--out", str(tmp_path / "x.nc")])
    assert res.exit_code == 2 and "no individual 'nobody'" in res.output


def test_sleap_flies_identities_recovered_with_zero_switches() -> None:
    truth = pose_io.load(shared_path("sleap-flies-tracks", "clip.slp"), fps=25.0)
    assert truth.sizes["individual"] == 2 and truth.sizes["time"] == 1500
    result = track_identities(_shuffle(truth, seed=3))
    m = identity_metrics(truth, result.pose)
    assert result.pose.sizes["individual"] == 2
    assert m["num_switches"] == 0
    assert m["idf1"] == pytest.approx(1.0)
    assert m["num_misses"] == 0 and m["num_false_positives"] == 0


def test_deepof_prefixed_table_splits_into_its_two_mice() -> None:
    ds = pose_io.load(shared_path("deepof-formats", "test_multi_topview_testDLC_csv_table_multi.csv"))
    out = split_prefixed_individuals(ds)
    assert [str(i) for i in out.individual.values] == ["B", "W"]
    assert out.sizes["keypoint"] == 14
    np.testing.assert_array_equal(out.position.sel(individual="W", keypoint="Nose").values,
                                  ds.position.sel(individual="individual_0", keypoint="W_Nose").values)
    with pytest.raises(ValueError, match="already has 2 individuals"):
        split_prefixed_individuals(out)


def test_appearance_is_used_only_when_it_tells_the_animals_apart() -> None:
    truth = _scene()
    det = _shuffle(truth)
    rng = np.random.default_rng(1)
    # the shuffled instances' colours: animal 0 dark, animal 1 brown (two coats), or one coat
    order = np.argmin(np.abs(det.position.values[:, 0, 2, :, None] - truth.position.values[:, 0, 2, None, :]), axis=2)
    coats = {"two": np.array([[30.0, 128, 128], [90.0, 140, 150]]), "one": np.array([[30.0, 128, 128]] * 2)}
    weights = {}
    for name, lab in coats.items():
        app = lab[order] + rng.normal(0, 1.0, (*order.shape, 3))
        res = track_identities(det, appearance=app)
        weights[name] = res.settings.appearance_weight
        assert identity_metrics(truth, res.pose)["num_switches"] == 0
    assert weights["one"] == 0.0  # the same coat does not separate them: not used
    assert weights["two"] > 0.0
    with pytest.raises(ValueError, match="appearance has shape"):
        track_identities(det, appearance=np.zeros((5, 2, 3)))


def test_animal_count_is_estimated_from_the_instances_per_frame() -> None:
    from pose.tracking import estimate_n_animals

    valid = np.ones((1000, 4), dtype=bool)
    valid[:, 3] = False  # 3 animals...
    valid[:50, 2] = False  # ... one missed in 5 % of the frames
    valid[100:105, 3] = True  # 0.5 % of frames with a spurious fourth instance
    est = estimate_n_animals(valid)
    assert est.n_animals == 3 and "3 instances in 94.5% of frames" in est.reason
    assert est.fraction_by_count == {2: 0.05, 3: 0.945, 4: 0.005}
    valid[100:300, 3] = True  # 20 % of frames with four: an animal enters and leaves
    assert estimate_n_animals(valid).n_animals is None
    assert estimate_n_animals(np.zeros((5, 2), dtype=bool)).n_animals is None


def test_default_tracking_estimates_the_count_and_reacquires_like_a_given_count() -> None:
    truth = _scene()
    det = truth.copy(deep=True)
    det["position"].values[10:30, :, :, 0] = np.nan  # 20 frames: longer than max_coast_s
    det["confidence"].values[10:30, :, 0] = np.nan
    det = _shuffle(det)
    auto = track_identities(det, TrackingConfig(max_coast_s=0.5))
    assert auto.settings.n_animals == 2 and auto.settings.reasons["n_animals"].startswith("estimated")
    assert auto.pose.sizes["individual"] == 2 and auto.links["reacquired"].sum() == 1
    open_set = track_identities(det, TrackingConfig(max_coast_s=0.5, open_set=True))
    assert open_set.settings.n_animals is None and open_set.pose.sizes["individual"] == 3
    with pytest.raises(ValueError, match="exclude each other"):
        track_identities(det, TrackingConfig(n_animals=2, open_set=True))


def test_identity_quality_verdict_and_switch_frames_from_motmetrics() -> None:
    from pose.tracking import identity_switch_frames, summarize_identity_quality, suspects_cover

    truth = _scene()
    ds = track_identities(_shuffle(truth)).pose
    q = summarize_identity_quality(ds)
    assert q["identity_quality"] == "ok" and q["low_confidence_frames_pct"] == 0.0
    bad = ds.copy(deep=True)
    bad["identity_confidence"].values[20:26, 0] = 0.1  # 6 of 120 frames (5 %), one event
    q = summarize_identity_quality(bad)
    assert q["identity_quality"] == "unreliable"
    assert q["low_confidence_frames_pct"] == pytest.approx(5.0)
    assert q["low_margin_events_per_min"] == pytest.approx(1 / (120 / FPS / 60))
    assert "5.00 % of frames" in q["identity_reason"]
    assert summarize_identity_quality(ds.drop_vars("identity_confidence"))["identity_quality"] == "unknown"
    swapped = swap_identities(ds, "track_0", "track_1", 100)
    rows = identity_switch_frames(truth, swapped)
    assert sorted(rows.tolist()) == [100, 100]  # motmetrics: both animals switch at frame 100
    table = detect_swap_suspects(swapped)
    assert suspects_cover(rows, table, np.arange(120)) == 1.0  # the two jumps at 100 list it
    assert suspects_cover(rows, table.iloc[:0], np.arange(120)) == 0.0

