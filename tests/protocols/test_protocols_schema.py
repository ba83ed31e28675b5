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

BUILTIN = ["elevated_plus_maze", "fear_conditioning", "gait", "open_field", "three_chamber"]


def test_builtins_ship_and_load():
    assert builtin_protocols() == BUILTIN
    for name in BUILTIN:
        p = load_protocol(name)
        assert p.name == name and p.assay == name
        assert set(p.endpoints) <= set(ENDPOINTS[p.assay])
    of = load_protocol("open_field")
    assert of.zone_names() == ["centre", "wall"]
    assert [f.step for f in of.filters] == ["confidence", "interpolate", "median"]
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
