"""manifest.json of a results folder and ``ethopose verify``: one changed byte of any input is found."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ethopose.cli import app
from protocols.batch import run_cohort
from protocols.manifest import verify_results
from protocols.synthetic_cohort import write_synthetic_cohort


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("manifest")
    cohort = write_synthetic_cohort(base / "data", n_per_group=1, seconds=10.0, fps=20.0)
    run_cohort("open_field", cohort, base / "out", n_workers=0, progress=False, report=True,
               command=["ethopose", "run", "open_field", str(cohort), "--out", str(base / "out")])
    return base


def _copy(results: Path, tmp_path: Path) -> Path:
    """A copy of data + results whose manifest points at the copied inputs."""
    shutil.copytree(results, tmp_path / "r")
    m = tmp_path / "r" / "out" / "manifest.json"
    m.write_text(m.read_text().replace(str(results), str(tmp_path / "r")))
    return tmp_path / "r"


def test_manifest_lists_every_input_with_its_sha256(results: Path):
    m = json.loads((results / "out" / "manifest.json").read_text())
    roles = sorted(e["role"] for e in m["inputs"])
    assert roles == ["arena", "arena", "cohort_csv", "pose", "pose", "protocol"]
    for e in m["inputs"]:
        assert e["sha256"] == hashlib.sha256(Path(e["path"]).read_bytes()).hexdigest()
    assert {o["path"] for o in m["outputs"]} >= {"endpoints.csv", "group_tests.csv", "exclusions.csv", "run.json"}
    assert m["command"][:3] == ["ethopose", "run", "open_field"] and m["started"] <= m["finished"]
    assert {"ethopose", "numpy", "pandas", "xarray"} <= set(m["packages"])
    html = (results / "out" / "report.html").read_text()
    assert "ethopose verify" in html and m["inputs"][0]["sha256"][:16] in html
    assert verify_results(results / "out").ok


@pytest.mark.parametrize("target", ["pose", "arena", "cohort_csv", "protocol", "output"])
def test_verify_detects_one_changed_byte_of_any_input(results: Path, tmp_path: Path, target: str):
    root = _copy(results, tmp_path)
    out = root / "out"
    m = json.loads((out / "manifest.json").read_text())
    entry = next(e for e in m["inputs"] + m["outputs"] if e["role"] == target)
    path = Path(entry["path"]) if Path(entry["path"]).is_absolute() else out / entry["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    st = path.stat()
    path.write_bytes(bytes(data))
    import os

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime: a cache would miss it
    r = CliRunner().invoke(app, ["verify", str(out)])
    assert r.exit_code == 1, r.output
    assert f"CHANGED {target}: {entry['path']} " in r.output and "1 changed, 0 missing" in r.output


def test_verify_reports_missing_files_and_a_clean_folder(results: Path, tmp_path: Path):
    root = _copy(results, tmp_path)
    r = CliRunner().invoke(app, ["verify", str(root / "out")])
    assert r.exit_code == 0 and "0 changed, 0 missing" in r.output
    (root / "data" / "trea01" / "pose.nc").unlink()
    r = CliRunner().invoke(app, ["verify", str(root / "out")])
    assert r.exit_code == 1 and f"MISSING pose: {root / 'data' / 'trea01' / 'pose.nc'}" in r.output
    r = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert r.exit_code == 2 and "no manifest.json" in r.output


def test_model_files_labels_and_seed_are_recorded(tmp_path: Path):
    from protocols.manifest import label_files, model_files, model_seed

    md = tmp_path / "proj" / "models" / "m1"
    md.mkdir(parents=True)
    for n in ("model.json", "weights.pt", "split.json"):
        (md / n).write_bytes(n.encode())
    (md / "train_config.json").write_text(json.dumps({"seed": 7}))
    (tmp_path / "proj" / "labeled-data" / "v1").mkdir(parents=True)
    (tmp_path / "proj" / "labeled-data" / "v1" / "CollectedData_me.h5").write_bytes(b"h5")
    assert [p.name for p in model_files(md)] == ["model.json", "weights.pt", "train_config.json", "split.json"]
    assert [p.name for p in label_files(md)] == ["CollectedData_me.h5"]
    assert model_seed(md) == 7
