"""Dyadic social-interaction protocol on the virtual mice: bouts against the simulator's truth,
tracked sessions against the exact pose, and the identity gate."""

from __future__ import annotations

import numpy as np
import pytest

from pose.synthetic.social import DetectionNoise, simulate_detections, simulate_social
from protocols.endpoints import analyse_session
from protocols.schema import load_protocol, parse_protocol, protocol_yaml
from protocols.social import (
    SOCIAL_ENDPOINTS,
    SocialOptions,
    SocialSessionError,
    social_interaction_endpoints,
)

pytest.importorskip("motmetrics")

#: which detected bout kind each simulated contact's target point is
_KIND = {"snout": "nose_nose", "tail_base": "nose_anogenital", "body_center": "contact"}


@pytest.fixture(scope="module")
def pair():
    return simulate_social(60, seed=1, n_animals=2)


def test_every_simulated_contact_is_found_as_its_kind_of_bout(pair) -> None:
    truth = pair.interactions[pair.interactions.kind == "contact"]
    endpoints, bouts = social_interaction_endpoints(pair.pose, SocialOptions())
    assert len(truth) >= 4
    for r in truth.itertuples():  # the actor's nose at the target's nose / tail base / flank
        b = bouts[(bouts.kind == _KIND[r.point]) & (bouts.individual == r.actor) & (bouts.other == r.target)]
        assert ((b.start_frame <= r.end_frame) & (b.end_frame >= r.start_frame)).any(), r
    assert list(endpoints) == list(SOCIAL_ENDPOINTS)
    nn = bouts[bouts.kind == "nose_nose"]
    # nose-nose is a pair measure: the same bouts from either animal
    assert endpoints["nose_nose_time_s"] == pytest.approx(nn[nn.individual == "mouse_1"].duration_s.sum())
    assert endpoints["subject_nose_anogenital_bouts"] == ((bouts.kind == "nose_anogenital")
                                                          & (bouts.individual == "mouse_0")).sum()


def test_tracked_session_gives_the_endpoints_of_the_exact_pose(pair) -> None:
    from pose.tracking import track_identities

    det, source = simulate_detections(pair.pose, DetectionNoise.preset("medium"), seed=1)
    tracked = track_identities(det).pose  # the count (2) is estimated
    res = analyse_session(tracked, load_protocol("social_interaction"))
    first = tracked.position.values[:, :2, :, 0]  # which mouse became track_0
    d = [np.nanmedian(np.abs(first - pair.pose.position.values[:, :2, :, i])) for i in range(2)]
    exact, _ = social_interaction_endpoints(pair.pose, SocialOptions(subject=int(np.argmin(d))))
    ep = res.endpoints
    for key in ("nose_nose_time_s", "subject_nose_anogenital_time_s", "partner_nose_anogenital_time_s"):
        assert ep[key] == pytest.approx(exact[key], abs=0.5), key  # measured: within 0.25 s
    for key in ("nose_nose_bouts", "subject_approaches", "partner_approaches"):
        assert abs(ep[key] - exact[key]) <= 1, key
    assert ep["time_near_s"] == pytest.approx(exact["time_near_s"], abs=1.0)
    assert ep["median_distance_mm"] == pytest.approx(exact["median_distance_mm"], abs=5.0)
    assert 0.8 < ep["median_identity_confidence"] <= 1.0 and ep["identity_flag"] in ("ok", "identity_unreliable")
    assert ep["quality_flag"] in ("ok", "identity_unreliable", "low_coverage")


def _with_confidence(ds, value: float):
    out = ds.copy(deep=True)
    out["identity_confidence"] = (("time", "individual"), np.full((ds.sizes["time"], 2), value))
    return out


def test_identity_gate_flags_refuses_or_accepts(pair, tmp_path) -> None:
    proto = load_protocol("social_interaction")
    good = analyse_session(_with_confidence(pair.pose, 0.95), proto).endpoints
    assert good["identity_flag"] == "ok" and good["quality_flag"] == "ok"
    low = _with_confidence(pair.pose, 0.95)
    low["identity_confidence"].values[100:160, 1] = 0.05  # 60 of 1800 frames: 3.3 %
    flagged = analyse_session(low, proto).endpoints
    assert flagged["identity_flag"] == "identity_unreliable" == flagged["quality_flag"]
    assert flagged["low_confidence_frames_pct"] == pytest.approx(100 * 60 / 1800)
    assert flagged["nose_nose_time_s"] == good["nose_nose_time_s"]  # computed, but flagged
    data = {**proto.model_dump(mode="json"), "social": {"on_unreliable_identity": "refuse"}}
    strict = parse_protocol(data)
    with pytest.raises(SocialSessionError, match=r"dyad\.nc: identity_unreliable: 3\.33 % of frames"):
        analyse_session(low, strict, pose_path=tmp_path / "dyad.nc")
    # no identity confidence (not tracked here): unknown unless the protocol accepts it
    assert analyse_session(pair.pose, proto).endpoints["identity_flag"] == "identity_unknown"
    trusting = parse_protocol({**data, "social": {"allow_unknown_identity": True}})
    assert analyse_session(pair.pose, trusting).endpoints["quality_flag"] == "ok"
    assert "social_interaction" in protocol_yaml(proto)
    with pytest.raises(ValueError, match="social.thresholds.contact_mmm"):
        parse_protocol({**data, "social": {"thresholds": {"contact_mmm": 3}}})


def test_a_trio_or_an_unknown_subject_is_refused() -> None:
    trio = simulate_social(5, seed=0, n_animals=3).pose
    with pytest.raises(SocialSessionError, match="needs 2 tracked individuals, the file has 3"):
        social_interaction_endpoints(trio)
    pair = simulate_social(5, seed=0, n_animals=2).pose
    with pytest.raises(SocialSessionError, match="'mouse_7' is not an individual"):
        social_interaction_endpoints(pair, SocialOptions(subject="mouse_7"))
