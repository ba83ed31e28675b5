"""Tracking QC per animal (known answers) and the done-when cohort of issue 16: one truncated
pose, one wrong fps, one badly tracked animal; exactly those are flagged, the statistics say
what was excluded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from protocols.qc import QCRules, exclusion_table, tracking_qc, worst


def _pose(seconds: float = 60.0, fps: float = 20.0):
    from pose.synthetic.openfield import simulate_open_field

    return simulate_open_field(seconds, fps=fps, seed=3).pose


REQ = ["snout", "body_center", "tail_base"]


def test_clean_track_is_ok_with_zero_measures():
    ds = _pose()
    q = tracking_qc(ds, ds, required=REQ, centre="body_center", rules=QCRules())
    assert q["qc_flag"] == "ok" and q["qc_reasons"] == ""
    assert q["low_confidence_pct"] == 0.0 and q["jumps_per_min"] == 0.0 and q["interpolated_pct"] == 0.0


def test_known_low_confidence_jumps_and_interpolation():
    from features import filters as F

    ds = _pose().copy(deep=True)
    n = ds.sizes["time"]  # 1200 frames = 1 min
    conf = ds["confidence"].values
    kc = list(ds.coords["keypoint"].values).index("body_center")
    low = np.zeros(n, bool)
    for s in range(0, n, 100):
        low[s + 10:s + 40] = True  # 30 % of frames, gaps of 1.5 s
    conf[low, kc, 0] = 0.1
    ds["confidence"] = (ds["confidence"].dims, conf)
    pos = ds["position"].values
    teleports = [55, 255, 455]
    pos[teleports, :, kc, 0] += 300.0  # 3 one-frame teleports: 6 jumps (out and back) in 1 min
    ds["position"] = (ds["position"].dims, pos)
    cleaned = F.interpolate_gaps(F.filter_by_confidence(ds, p_cutoff=0.5), max_gap_s=2.0)
    q = tracking_qc(ds, cleaned, required=REQ, centre="body_center", rules=QCRules(), p_cutoff=0.5)
    assert q["low_confidence_pct"] == pytest.approx(100 * 0.3 / 3)  # 1 of 3 required keypoints
    assert q["interpolated_pct"] == pytest.approx(30.0)
    assert q["jumps_per_min"] == pytest.approx(6.0)
    assert q["qc_flag"] == "fail"
    assert q["qc_reasons"] == "jumps 6.0/min > 5/min (warn); interpolated 30.0 % > 20 %"
    lax = QCRules(max_interpolated_pct=50, max_jumps_per_min=100, exclude=["warn", "fail"])
    q2 = tracking_qc(ds, cleaned, required=REQ, centre="body_center", rules=lax, p_cutoff=0.5,
                     extra_warnings=["video truncated: 38 of 150 frames read"])
    assert q2["qc_flag"] == "warn" and "video truncated" in q2["qc_reasons"]
    table = pd.DataFrame({"subject_id": ["a", "b", "c"], "session": ["1"] * 3, "group": ["g"] * 3,
                          "qc_flag": ["ok", q2["qc_flag"], "fail"], "qc_reasons": ["", q2["qc_reasons"], "x"]})
    assert exclusion_table(table, lax)["subject_id"].tolist() == ["b", "c"]
    assert exclusion_table(table, QCRules())["subject_id"].tolist() == ["c"]
    assert worst(["ok", "warn"]) == "warn" and worst([]) == "ok"


def test_qc_rules_are_typed():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="max_low_confidance_pct"):
        QCRules(max_low_confidance_pct=10)
    with pytest.raises(ValidationError, match="exclude"):
        QCRules(exclude=["bad"])


@pytest.mark.slow
def test_cohort_with_bad_inputs_flags_exactly_those_and_stats_say_what_was_excluded(tmp_path):
    from protocols.batch import run_cohort
    from protocols.synthetic_cohort import write_synthetic_cohort

    defects = {"cont02": "truncated", "trea01": "wrong_fps", "trea03": "bad_tracking"}
    csv = write_synthetic_cohort(tmp_path / "d", n_per_group=3, seconds=20.0, fps=20.0, defects=defects)
    out = tmp_path / "out"
    res = run_cohort("open_field", csv, out, n_workers=0, progress=False, report=True)
    assert list(res.failed) == ["trea01_1"] and "x2" in res.failed["trea01_1"]  # wrong fps refused
    assert sorted(res.warned) == ["cont02_1", "trea03_1"]
    t = pd.read_csv(out / "endpoints.csv").set_index("subject_id")
    assert t["qc_flag"].to_dict() == {"cont01": "ok", "cont02": "warn", "cont03": "ok", "trea02": "ok",
                                      "trea03": "fail"}
    assert t.loc["cont02", "qc_reasons"] == "video truncated: 120 of 400 frames read"
    assert "low confidence" in t.loc["trea03", "qc_reasons"]
    ex = pd.read_csv(out / "exclusions.csv")
    assert ex["subject_id"].tolist() == ["trea03"]
    tests = pd.read_csv(out / "group_tests.csv").set_index("endpoint")
    assert (tests["n_excluded"] == 1).all() and tests["excluded"].str.contains("trea03").all()
    assert not tests["excluded"].str.contains("cont02|trea01").any()
    summary = pd.read_csv(out / "group_summary.csv")
    assert summary.groupby("group")["n"].max().to_dict() == {"control": 3, "treated": 1}
    html = (out / "report.html").read_text()
    assert "The group statistics use 4 of 5 animals." in html
    assert "2</b> of 5 animals flagged" in html and "trea03" in html and "x2" in html


def test_identity_swap_suspects_of_a_multi_animal_file():
    from pose.synthetic.social import simulate_social

    ds = simulate_social(60.0, fps=20, seed=1).pose  # 2 mice, exact identities
    rules = QCRules()
    q = tracking_qc(ds, ds, required=REQ, centre="body_center", rules=rules)
    assert q["qc_flag"] == "warn" and "crossings/min" in q["qc_reasons"]  # no identity confidence: only a warning
    conf = np.full((ds.sizes["time"], 2), 0.9)
    tracked = ds.assign(identity_confidence=(("time", "individual"), conf))
    q = tracking_qc(tracked, tracked, required=REQ, centre="body_center", rules=rules)
    assert q["swap_suspects_per_min"] == 0.0 and q["qc_flag"] == "ok"
    for start in (100, 400, 700):  # three uncertain assignments of the analysed animal
        conf[start:start + 5, 0] = 0.1
    tracked = ds.assign(identity_confidence=(("time", "individual"), conf))
    q = tracking_qc(tracked, tracked, required=REQ, centre="body_center", rules=rules)
    assert q["swap_suspects_per_min"] == 3.0
    assert q["qc_flag"] == "fail" and q["qc_reasons"] == "identity-swap suspects 3.0/min > 2/min"


def _write_mjpg(path, n_frames, fps=30.0, size=(96, 64), seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for _ in range(n_frames):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize("mode", ["flag", "refuse", "off"])
def test_video_qc_gate_flags_or_refuses_a_video_shorter_than_its_pose(tmp_path, mode):
    import yaml

    from protocols.batch import run_cohort
    from protocols.schema import load_protocol, protocol_yaml
    from protocols.synthetic_cohort import write_synthetic_cohort

    csv = write_synthetic_cohort(tmp_path / "c", n_per_group=1, seconds=10.0, fps=30.0)
    cohort = pd.read_csv(csv)
    # cont01's video holds 150 of the pose's 300 frames; trea01's all of them.
    cohort["video_path"] = [str(_write_mjpg(tmp_path / "short.avi", 150)), str(_write_mjpg(tmp_path / "full.avi", 300))]
    cohort.to_csv(csv, index=False)
    spec = yaml.safe_load(protocol_yaml(load_protocol("open_field")))
    spec.setdefault("qc", {})["video"] = mode
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    res = run_cohort(tmp_path / "p.yaml", csv, tmp_path / "out", n_workers=0, progress=False, report=False)
    if mode == "refuse":
        assert list(res.failed) == ["cont01_1"]
        assert "video QC failed" in res.failed["cont01_1"] and "frames_vs_pose" in res.failed["cont01_1"]
        return
    t = pd.read_csv(tmp_path / "out" / "endpoints.csv").set_index("subject_id")
    assert not res.failed
    if mode == "flag":
        assert t.loc["cont01", "qc_flag"] == "fail"
        assert "video QC: frames_vs_pose: pose file 300 frames, video 150" in t.loc["cont01", "qc_reasons"]
        assert t.loc["trea01", "qc_flag"] == "ok", t.loc["trea01", "qc_reasons"]
    else:  # the gate off: the older frame-count check still warns
        assert t.loc["cont01", "qc_flag"] == "warn"
        assert "pose file has 300 frames, video short.avi has 150" in t.loc["cont01", "qc_reasons"]
