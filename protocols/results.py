"""Read a results folder written by ``ethopose run`` (the report and the dashboard use this).

See :mod:`protocols.batch` for the layout. Everything here only reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from protocols.schema import Protocol, load_protocol


@dataclass
class AnimalResult:
    """One finished animal: metadata, endpoints (numbers only), per-frame table, geometry,
    provenance, and ``quality``: the flags and tracking measures (``quality_flag``,
    ``qc_flag``, ``qc_reasons``, ...)."""

    key: str
    meta: dict[str, Any]
    endpoints: dict[str, float]
    frames: pd.DataFrame
    geometry: dict[str, Any]
    history: list[dict[str, Any]]
    fps: float
    folder: Path
    quality: dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        """The animal's group."""
        return str(self.meta.get("group", ""))


@dataclass
class Results:
    """A results folder: protocol, per-animal table, statistics, run info, failures, the
    animals excluded from the statistics (``exclusions.csv``) and ``manifest.json``."""

    root: Path
    protocol: Protocol | None
    table: pd.DataFrame
    stats: dict[str, pd.DataFrame] = field(default_factory=dict)
    run_info: dict[str, Any] = field(default_factory=dict)
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    cohort: pd.DataFrame = field(default_factory=pd.DataFrame)
    exclusions: pd.DataFrame = field(default_factory=pd.DataFrame)
    manifest: dict[str, Any] = field(default_factory=dict)


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def is_results_folder(root: Path) -> bool:
    """True when ``root`` looks like the output of ``ethopose run``."""
    return (Path(root) / "animals").is_dir() and (Path(root) / "protocol.yaml").is_file()


def finished_animals(root: Path) -> list[str]:
    """Keys of the animals whose ``done`` marker exists, sorted."""
    animals = Path(root) / "animals"
    if not animals.is_dir():
        return []
    return sorted(p.name for p in animals.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / "done").is_file())


def load_animal(root: Path, key: str) -> AnimalResult:
    """Load one finished animal.

    Raises
    ------
    FileNotFoundError
        When the animal is not finished (no ``done`` marker).
    """
    folder = Path(root) / "animals" / key
    if not (folder / "done").is_file():
        raise FileNotFoundError(f"animal {key!r} has no finished results in {folder}")
    data = json.loads((folder / "endpoints.json").read_text())
    geometry = json.loads((folder / "geometry.json").read_text())
    frames = pd.read_parquet(folder / "frames.parquet")
    endpoints = {k: v for k, v in data.get("endpoints", {}).items() if not isinstance(v, str)}
    quality = {k: v for k, v in data.get("endpoints", {}).items() if isinstance(v, str)}
    quality.update({k if k.startswith("qc_") else f"qc_{k}": v for k, v in data.get("qc", {}).items()})
    return AnimalResult(key, data.get("meta", {}), endpoints, frames, geometry,
                        data.get("history", []), float(data.get("fps", 0) or 0), folder, quality)


def load_results(root: Path) -> Results:
    """Load the tables of a results folder (animals are loaded on demand)."""
    root = Path(root)
    if not (root / "protocol.yaml").is_file():
        raise FileNotFoundError(f"{root} is not an 'ethopose run' results folder (no protocol.yaml)")
    protocol = load_protocol(root / "protocol.yaml")
    table = _read_csv(root / "endpoints.csv")
    stats = {n: _read_csv(root / f"{n}.csv") for n in ("group_summary", "group_tests", "dose_response")}
    run_info = json.loads((root / "run.json").read_text()) if (root / "run.json").is_file() else {}
    manifest = json.loads((root / "manifest.json").read_text()) if (root / "manifest.json").is_file() else {}
    return Results(root, protocol, table, stats, run_info, _read_csv(root / "failures.csv"),
                   _read_csv(root / "cohort.csv"), _read_csv(root / "exclusions.csv"), manifest)
