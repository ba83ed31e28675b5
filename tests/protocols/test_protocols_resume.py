"""Resume integrity: a finished animal is skipped only if nothing that produced it changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from protocols.batch import run_cohort
from protocols.manifest import HashCache, fingerprint_changes, sha256_text
from protocols.schema import load_protocol, protocol_yaml
from protocols.synthetic_cohort import write_synthetic_cohort


@pytest.fixture()
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2-animal cohort already run once (copied per test)."""
    base = tmp_path_factory.getbasetemp() / "resume_base"
    if not (base / "out" / "run.json").is_file():
        cohort = write_synthetic_cohort(base / "data", n_per_group=1, seconds=10.0, fps=20.0)
        run_cohort("open_field", cohort, base / "out", n_workers=0, progress=False, report=False)
    work = tmp_path_factory.mktemp("resume")
    shutil.copytree(base / "data", work / "data")
    shutil.copytree(base / "out", work / "out")
    return work / "data" / "cohort.csv", work / "out"


def _marker(out: Path, key: str) -> dict:
    return json.loads((out / "animals" / key / "done").read_text())


def test_unchanged_rerun_skips_and_done_marker_holds_the_fingerprint(finished):
    cohort, out = finished
    m = _marker(out, "cont01_1")
    fp = m["fingerprint"]
    assert fp["protocol_sha256"] == sha256_text((out / "protocol.yaml").read_text())
    assert set(fp["inputs"]) == {"pose_path", "arena"}
    assert fp["cohort_row"]["group"] == "control"
    res = run_cohort("open_field", cohort, out, n_workers=0, progress=False, report=False)
    assert res.processed == [] and sorted(res.skipped) == ["cont01_1", "trea01_1"] and not res.redone


def test_edited_protocol_redoes_every_animal_and_numbers_follow_the_new_protocol(finished, tmp_path):
    cohort, out = finished
    old = pd.read_csv(out / "endpoints.csv").set_index("subject_id")
    data = load_protocol("open_field").model_dump(mode="json")
    centre = next(z for z in data["zones"] if z["name"] == "centre")
    centre["points"] = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]  # a much larger centre
    edited = tmp_path / "edited.yaml"
    import yaml

    edited.write_text(yaml.safe_dump(data, sort_keys=False))
    res = run_cohort(edited, cohort, out, n_workers=0, progress=False, report=False)
    assert sorted(res.processed) == ["cont01_1", "trea01_1"] and res.skipped == []
    assert all("the protocol changed" in r for r in map("; ".join, res.redone.values()))
    assert json.loads((out / "run.json").read_text())["redone"]["cont01_1"] == ["the protocol changed"]
    new = pd.read_csv(out / "endpoints.csv").set_index("subject_id")
    assert (new["centre_time_pct"] > old["centre_time_pct"] + 5).all()  # computed with the new zone
    written = sha256_text((out / "protocol.yaml").read_text())
    assert written == sha256_text(protocol_yaml(load_protocol(edited)))
    assert all(_marker(out, k)["fingerprint"]["protocol_sha256"] == written for k in ("cont01_1", "trea01_1"))


def test_changed_pose_file_or_cohort_row_redoes_only_that_animal(finished):
    cohort, out = finished
    from pose.io import load, save

    pose_file = cohort.parent / "trea01" / "pose.nc"
    ds = load(pose_file)
    ds["position"] = ds.position * 1.5  # every distance x1.5
    save(ds, pose_file.with_suffix(".tmp.nc"))
    pose_file.with_suffix(".tmp.nc").replace(pose_file)
    before = pd.read_csv(out / "endpoints.csv").set_index("subject_id")
    res = run_cohort("open_field", cohort, out, n_workers=0, progress=False, report=False)
    assert res.processed == ["trea01_1"] and res.skipped == ["cont01_1"]
    assert res.redone["trea01_1"] == [f"the content of pose_path {pose_file} changed"]
    after = pd.read_csv(out / "endpoints.csv").set_index("subject_id")
    assert after.loc["cont01", "distance_mm"] == before.loc["cont01", "distance_mm"]
    assert after.loc["trea01", "distance_mm"] != pytest.approx(before.loc["trea01", "distance_mm"], rel=0.05)

    rows = pd.read_csv(cohort)
    rows.loc[rows.subject_id == "cont01", "group"] = "treated"
    rows.to_csv(cohort, index=False)
    res = run_cohort("open_field", cohort, out, n_workers=0, progress=False, report=False)
    assert res.processed == ["cont01_1"]
    assert res.redone["cont01_1"] == ["cohort column 'group': 'control' -> 'treated'"]
    assert pd.read_csv(out / "endpoints.csv").set_index("subject_id").loc["cont01", "group"] == "treated"


def test_old_text_marker_is_redone_and_a_failed_redo_leaves_no_stale_finished_animal(finished):
    cohort, out = finished
    (out / "animals" / "cont01_1" / "done").write_text("2026-01-01T00:00:00")  # older ethopose
    (cohort.parent / "trea01" / "pose.nc").write_bytes(b"damaged")
    res = run_cohort("open_field", cohort, out, n_workers=0, progress=False, report=False)
    assert res.processed == ["cont01_1"] and list(res.failed) == ["trea01_1"]
    assert "older ethopose" in res.redone["cont01_1"][0]
    assert not (out / "animals" / "trea01_1" / "done").exists()  # its old numbers no longer count
    assert pd.read_csv(out / "endpoints.csv")["subject_id"].tolist() == ["cont01"]


def test_hash_cache_reuses_by_size_and_mtime(tmp_path, monkeypatch):
    import protocols.manifest as M

    f = tmp_path / "video.bin"
    f.write_bytes(b"x" * 1000)
    calls = []
    real = M.sha256_file
    monkeypatch.setattr(M, "sha256_file", lambda p, **k: calls.append(p) or real(p))
    cache = HashCache(tmp_path / "cache.json")
    h1 = cache.sha256(f)
    cache.save()
    assert HashCache(tmp_path / "cache.json").sha256(f) == h1 and len(calls) == 1
    f.write_bytes(b"y" * 1000)  # same size, new mtime
    assert HashCache(tmp_path / "cache.json").sha256(f) != h1 and len(calls) == 2


def test_fingerprint_changes_names_each_difference():
    old = {"protocol_sha256": "a", "model_sha256": None, "ethopose_version": "1",
           "inputs": {"pose_path": {"path": "/x/p.nc", "sha256": "1"}}, "cohort_row": {"fps": 30.0}}
    moved = {**old, "inputs": {"pose_path": {"path": "/y/p.nc", "sha256": "1"}}}
    assert fingerprint_changes(old, moved) == []  # a moved data folder is not a change
    new = {**old, "ethopose_version": "2", "cohort_row": {"fps": 25.0},
           "inputs": {"pose_path": {"path": "/x/p.nc", "sha256": "2"}, "arena": {"path": "/x/a", "sha256": "3"}}}
    assert fingerprint_changes(old, new) == ["ethopose 1 -> 2", "arena added",
                                             "the content of pose_path /x/p.nc changed",
                                             "cohort column 'fps': 30.0 -> 25.0"]
