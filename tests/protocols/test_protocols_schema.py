"""Protocol YAML files: the built-ins load, typos fail naming the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from protocols.schema import (
    ENDPOINTS,
    ProtocolError,
    builtin_protocols,
    load_protocol,
    parse_protocol,
    protocol_yaml,
)

BUILTIN = ["elevated_plus_maze", "fear_conditioning", "gait", "open_field", "social_interaction",
           "three_chamber"]


def test_builtins_ship_and_load():
    assert builtin_protocols() == BUILTIN
    for name in BUILTIN:
        p = load_protocol(name)
        assert p.name == name and p.assay == name
        assert set(p.endpoints) <= set(ENDPOINTS[p.assay])
    of = load_protocol("open_field")
    assert of.zone_names() == ["centre", "wall"]
    assert [f.step for f in of.filters] == ["confidence", "interpolate", "median"]
    assert of.filters[0].threshold == 0.5
    assert "centre_time_pct" in of.endpoints and "thigmotaxis_pct" in of.endpoints
    assert of.bodyparts.aliases["nose"] == "snout"
    fc = load_protocol("fear_conditioning")
    assert [e.name for e in fc.epochs][:2] == ["baseline", "tone1"]
    assert load_protocol("three_chamber").endpoints[0] == "sociability_index"
    assert set(load_protocol("gait").endpoints) >= {"stride_length_mm", "cadence_hz", "duty_factor", "symmetry_index"}
    assert set(load_protocol("elevated_plus_maze").endpoints) >= {"open_arm_time_pct", "open_arm_entries_pct", "head_dips"}


def test_roundtrip_yaml(tmp_path: Path):
    p = load_protocol("open_field")
    f = tmp_path / "copy.yaml"
    f.write_text(protocol_yaml(p))
    assert load_protocol(f) == p


def _write(tmp_path: Path, data: dict) -> Path:
    f = tmp_path / "mine.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def test_typo_names_key_and_file(tmp_path: Path):
    data = yaml.safe_load(Path(load_protocol.__globals__["protocol_path"]("open_field")).read_text())
    data["filters"][0] = {"step": "confidence", "p_cutof": 0.5}
    f = _write(tmp_path, data)
    with pytest.raises(ProtocolError, match=r"mine\.yaml: filters\.0\.confidence\.p_cutof: Extra inputs"):
        load_protocol(f)
    data["filters"] = []
    data["endpont"] = ["x"]
    with pytest.raises(ProtocolError, match=r"mine\.yaml: endpont: Extra inputs"):
        load_protocol(_write(tmp_path, data))


def test_bad_values_are_explained(tmp_path: Path):
    base = yaml.safe_load(Path(load_protocol.__globals__["protocol_path"]("open_field")).read_text())
    bad = dict(base, endpoints=["distance_mm", "stride_length_mm"])
    with pytest.raises(ProtocolError, match=r"unknown endpoint\(s\) \['stride_length_mm'\]"):
        parse_protocol(bad, source="x.yaml")
    bad = dict(base, assay="swim")
    with pytest.raises(ProtocolError, match="x.yaml: assay: Input should be 'open_field'"):
        parse_protocol(bad, source="x.yaml")
    bad = dict(base, epochs=[{"name": "tone", "start_s": 10, "stop_s": 5}])
    with pytest.raises(ProtocolError, match="stop_s must be after start_s"):
        parse_protocol(bad, source="x.yaml")
    bad = dict(base, arena=dict(base["arena"], source="explicit"))
    with pytest.raises(ProtocolError, match="needs corners_px"):
        parse_protocol(bad, source="x.yaml")
    with pytest.raises(ProtocolError, match="no protocol named 'open_feld'"):
        load_protocol("open_feld")
    with pytest.raises(ProtocolError, match="protocol file not found"):
        load_protocol(tmp_path / "absent.yaml")
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    with pytest.raises(ProtocolError, match="not valid YAML"):
        load_protocol(tmp_path / "broken.yaml")


def test_behaviour_rules_are_typed_and_their_defaults_match_behavior_rules():
    import inspect

    from behavior import rules
    from protocols.schema import (
        FreezingRule,
        GroomingRule,
        ImmobilityRule,
        LocomotionRule,
        RearingRule,
    )

    for model, func in ((FreezingRule, rules.detect_freezing), (ImmobilityRule, rules.detect_immobility),
                        (LocomotionRule, rules.detect_locomotion), (RearingRule, rules.detect_rearing),
                        (GroomingRule, rules.detect_grooming)):
        params = inspect.signature(func).parameters
        for name, f in model.model_fields.items():
            if name in ("name", "rule"):
                continue
            assert name in params, (model.__name__, name)
            assert f.default == params[name].default, (model.__name__, name, f.default, params[name].default)


def test_behaviour_thresholds_validate_at_load(tmp_path: Path):
    base = yaml.safe_load(Path(load_protocol.__globals__["protocol_path"]("open_field")).read_text())
    p = parse_protocol(dict(base, behaviours=[{"rule": "immobility", "max_speed_mm_s": 5}]))
    assert p.behaviours[0].name == "immobility" and p.behaviours[0].max_speed_mm_s == 5
    # the older 'thresholds' mapping in cm is read in mm
    p = parse_protocol(dict(base, behaviours=[{"name": "still", "rule": "immobility",
                                               "thresholds": {"max_speed_cm_s": 0.5}}]))
    assert p.behaviours[0].max_speed_mm_s == 5.0 and p.behaviours[0].name == "still"
    with pytest.raises(ProtocolError, match=r"behaviours\.0\.rearing\.max_speed_mm_s: Extra inputs"):
        parse_protocol(dict(base, behaviours=[{"rule": "rearing", "max_speed_mm_s": 5}]), source="x.yaml")
    with pytest.raises(ProtocolError, match="does not match any of the expected tags"):
        parse_protocol(dict(base, behaviours=[{"rule": "sniffing"}]), source="x.yaml")


def test_features_drive_the_table_and_assays_are_typed():
    from protocols.schema import FearConditioningAssay, GaitAssay, OpenFieldAssay

    base = yaml.safe_load(Path(load_protocol.__globals__["protocol_path"]("open_field")).read_text())
    auto = parse_protocol(dict(base, features=[]))
    assert auto.feature_families() == ["speed", "distance", "zones"]
    more = parse_protocol(dict(base, features=["speed", "distance", "zones", "heading"]))
    assert "heading" in more.feature_families()
    with pytest.raises(ProtocolError, match="endpoint 'centre_time_pct' needs feature"):
        parse_protocol(dict(base, features=["speed", "distance"]), source="x.yaml")
    assert isinstance(auto.assay_spec, OpenFieldAssay)
    assert isinstance(load_protocol("gait").assay_spec, GaitAssay)
    fc = load_protocol("fear_conditioning").assay_spec
    assert isinstance(fc, FearConditioningAssay) and fc.epochs[0].name == "baseline"
