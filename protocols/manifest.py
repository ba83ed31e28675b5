"""Provenance of a results folder: ``manifest.json`` and ``ethopose verify``.

``manifest.json`` lists the SHA-256 of every file a run read (videos, pose files, arena
files, the pose model's weights and configuration, the model project's label files, the
protocol as run) and of the tables it wrote, with the package versions, the seeds, the
command line and the start and end times. :func:`verify_results` hashes every listed file
again and says which changed or went missing (``ethopose verify RESULTS_DIR``, exit 1 when
anything did).

Hashing large videos on every resume would be slow, so the run (not ``verify``) reuses a
hash while the file's size and modification time are unchanged (:class:`HashCache`, kept
in ``RESULTS_DIR/.hash_cache.json``). ``verify`` always reads every byte.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pose._version import __version__
from pose.atomic import write_text_atomic

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
HASH_CACHE = ".hash_cache.json"
#: Tables of a results folder whose hashes the manifest records (protocol.yaml is listed as
#: an input; report.html is rebuilt by ``ethopose report``, so it is not listed).
OUTPUT_FILES = ("cohort.csv", "endpoints.csv", "endpoints.parquet", "group_summary.csv",
                "group_tests.csv", "dose_response.csv", "failures.csv", "exclusions.csv", "run.json")
#: Files of a model folder (pose.pipeline.modeldir) that determine its predictions.
MODEL_FILES = ("model.json", "weights.pt", "train_config.json", "split.json", "model.onnx", "model_int8.onnx")
PACKAGES = ("numpy", "pandas", "xarray", "scipy", "scikit-learn", "pydantic", "h5py", "tables", "netCDF4",
            "av", "opencv-python-headless", "opencv-python", "torch", "onnxruntime", "dask", "distributed",
            "statsmodels", "pingouin", "movement")


def sha256_file(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    """SHA-256 (hex) of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class HashCache:
    """SHA-256 of files, reused while a file's size and modification time are unchanged.

    Parameters
    ----------
    path
        JSON file holding the cache (``None``: in memory only).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._table: dict[str, list[Any]] = {}
        self._dirty = False
        if self.path is not None and self.path.is_file():
            try:
                self._table = dict(json.loads(self.path.read_text()))
            except (ValueError, OSError):
                logger.info("ignoring an unreadable hash cache %s", self.path)

    def sha256(self, path: str | Path) -> str:
        """The file's SHA-256, from the cache when its size and mtime match."""
        p = str(Path(path).resolve())
        st = os.stat(p)
        hit = self._table.get(p)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return str(hit[2])
        digest = sha256_file(p)
        self._table[p] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def save(self) -> None:
        """Write the cache (atomically) when it changed."""
        if self.path is not None and self._dirty:
            write_text_atomic(self.path, json.dumps(self._table))
            self._dirty = False


def model_files(model_dir: str | Path | None) -> list[Path]:
    """The files of a pose model folder that determine its predictions (those present)."""
    if model_dir is None:
        return []
    return [Path(model_dir) / n for n in MODEL_FILES if (Path(model_dir) / n).is_file()]


def label_files(model_dir: str | Path | None) -> list[Path]:
    """The label files of the model's project, when the model sits in ``PROJECT/models/``."""
    if model_dir is None:
        return []
    md = Path(model_dir).resolve()
    project = md.parent.parent if md.parent.name == "models" else None
    if project is None or not (project / "labeled-data").is_dir():
        return []
    return sorted(project.glob("labeled-data/*/CollectedData_*.h5")) + sorted(
        project.glob("labeled-data/*/CollectedData_*.csv"))


def model_seed(model_dir: str | Path | None) -> int | None:
    """The training seed recorded in the model's ``train_config.json`` (None if absent)."""
    if model_dir is None or not (Path(model_dir) / "train_config.json").is_file():
        return None
    try:
        return json.loads((Path(model_dir) / "train_config.json").read_text()).get("seed")
    except (ValueError, OSError):
        return None


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that can change the numbers (absent ones skipped)."""
    out = {"ethopose": __version__, "python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        return _jsonable(v.item())
    return v


def file_entry(role: str, path: str | Path, cache: HashCache | None = None, **extra: Any) -> dict[str, Any]:
    """One manifest row: ``role, path (absolute), bytes, sha256`` (+ ``extra``)."""
    p = Path(path).resolve()
    digest = cache.sha256(p) if cache is not None else sha256_file(p)
    return {"role": role, "path": str(p), "bytes": p.stat().st_size, "sha256": digest,
            **{k: _jsonable(v) for k, v in extra.items()}}


def write_manifest(
    root: str | Path,
    inputs: Sequence[dict[str, Any]],
    *,
    command: Sequence[str] | None = None,
    started: str = "",
    finished: str = "",
    seeds: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``root/manifest.json`` atomically: the inputs, the folder's tables, versions.

    Parameters
    ----------
    root
        The results folder; its tables (:data:`OUTPUT_FILES` present) are hashed too.
    inputs
        Rows from :func:`file_entry` (videos, pose files, model, labels, protocol...).
    command
        The command line (default ``sys.argv``).
    started, finished
        ISO times of the run.
    seeds
        Every seed that affected the numbers (e.g. the model's training seed).
    extra
        More fields to record (scheduler, workers...).
    """
    root = Path(root)
    outputs = [file_entry("output", root / n) | {"path": n} for n in OUTPUT_FILES if (root / n).is_file()]
    manifest = {
        "format": "ethopose-manifest/1",
        "ethopose_version": __version__,
        "command": list(sys.argv if command is None else command),
        "cwd": os.getcwd(),
        "host": platform.node(),
        "started": started,
        "finished": finished,
        "seeds": seeds or {},
        "packages": package_versions(),
        "inputs": list(inputs),
        "outputs": outputs,
        **(extra or {}),
    }
    return write_text_atomic(root / MANIFEST, json.dumps(manifest, indent=1, default=str))


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The folder's manifest (``{}`` when there is none)."""
    f = Path(root) / MANIFEST
    return json.loads(f.read_text()) if f.is_file() else {}


@dataclass
class VerifyResult:
    """What :func:`verify_results` found: files unchanged, changed (old, new hash), missing."""

    root: Path
    unchanged: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every listed file is present with its recorded hash."""
        return not self.changed and not self.missing

    def lines(self) -> list[str]:
        """One human-readable line per changed or missing file, then a summary."""
        out = [f"CHANGED {e['role']}: {e['path']} (sha256 {e['sha256'][:12]}... now {e['now'][:12]}..., "
               f"{e['bytes']} -> {e['now_bytes']} bytes)" for e in self.changed]
        out += [f"MISSING {e['role']}: {e['path']}" for e in self.missing]
        n = len(self.unchanged) + len(self.changed) + len(self.missing)
        out.append(f"{len(self.unchanged)} of {n} files unchanged, {len(self.changed)} changed, "
                   f"{len(self.missing)} missing")
        return out


def verify_results(root: str | Path) -> VerifyResult:
    """Hash every file ``root/manifest.json`` lists again (all bytes, no cache).

    Raises
    ------
    FileNotFoundError
        When the folder has no manifest.
    """
    root = Path(root)
    m = read_manifest(root)
    if not m:
        raise FileNotFoundError(f"{root} has no {MANIFEST} (written by 'ethopose run')")
    res = VerifyResult(root)
    for e in [*m.get("inputs", []), *m.get("outputs", [])]:
        p = Path(e["path"]) if Path(e["path"]).is_absolute() else root / e["path"]
        if not p.is_file():
            res.missing.append(e)
            continue
        now = sha256_file(p)
        if now == e["sha256"]:
            res.unchanged.append(e)
        else:
            res.changed.append({**e, "now": now, "now_bytes": p.stat().st_size})
    return res


# ----------------------------------------------------------------------------- resume
#: Cohort columns that change an animal's results or their metadata.
FINGERPRINT_COLUMNS = ("subject_id", "group", "dose", "sex", "session", "fps", "px_per_mm")


def combined_sha256(paths: Sequence[str | Path], cache: HashCache | None = None) -> str | None:
    """One SHA-256 over several files (name and hash of each, in order); None for none."""
    if not paths:
        return None
    parts = [f"{Path(p).name}:{cache.sha256(p) if cache else sha256_file(p)}" for p in paths]
    return sha256_text("\n".join(parts))


def animal_fingerprint(
    row: dict[str, Any],
    *,
    protocol_sha256: str,
    model_sha256: str | None,
    input_files: dict[str, str | Path],
    cache: HashCache | None = None,
    metadata_columns: Sequence[str] = (),
) -> dict[str, Any]:
    """What one animal's results depend on: protocol, input bytes, model, version, cohort row.

    Parameters
    ----------
    row
        The animal's cohort row (:func:`protocols.batch.read_cohort`).
    protocol_sha256
        Hash of the protocol's canonical YAML (:func:`protocols.schema.protocol_yaml`).
    model_sha256
        :func:`combined_sha256` of the pose model's files, or None (pose files given).
    input_files
        ``role -> path`` of the files read (``pose_path``, ``video_path``, ``arena``).
    cache
        Hash cache (size + mtime).
    metadata_columns
        Extra cohort columns kept as metadata.

    Returns
    -------
    dict
        JSON-able; stored in the animal's ``done`` marker and compared on resume by
        :func:`fingerprint_changes`.
    """
    cols = list(FINGERPRINT_COLUMNS) + [c for c in metadata_columns if c not in FINGERPRINT_COLUMNS]
    return {
        "protocol_sha256": protocol_sha256,
        "model_sha256": model_sha256,
        "ethopose_version": __version__,
        "inputs": {role: {"path": str(p), "sha256": cache.sha256(p) if cache else sha256_file(p)}
                   for role, p in input_files.items()},
        "cohort_row": {c: _jsonable(row.get(c)) for c in cols if c in row},
    }


def fingerprint_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What differs between a stored and a current fingerprint, one phrase each ([] = same).

    File paths alone do not count (a data folder may move); their content does.
    """
    if not old:
        return ["its done marker has no fingerprint (written by an older ethopose)"]
    out = []
    if old.get("protocol_sha256") != new["protocol_sha256"]:
        out.append("the protocol changed")
    if old.get("model_sha256") != new["model_sha256"]:
        out.append("the pose model changed")
    if old.get("ethopose_version") != new["ethopose_version"]:
        out.append(f"ethopose {old.get('ethopose_version')} -> {new['ethopose_version']}")
    o_in, n_in = old.get("inputs", {}), new["inputs"]
    for role in sorted(set(o_in) | set(n_in)):
        a, b = o_in.get(role), n_in.get(role)
        if a is None or b is None:
            out.append(f"{role} {'added' if a is None else 'removed'}")
        elif a.get("sha256") != b.get("sha256"):
            out.append(f"the content of {role} {b['path']} changed")
    o_row, n_row = old.get("cohort_row", {}), new["cohort_row"]
    for c in sorted(set(o_row) | set(n_row)):
        if o_row.get(c) != n_row.get(c):
            out.append(f"cohort column {c!r}: {o_row.get(c)!r} -> {n_row.get(c)!r}")
    return out
