"""Bookkeeping of the refinement loop: ``<project>/refinement.json``.

The file records the current iteration, every outlier extraction (which model, which
video, which frames, which method) and every merge, so a project says how its training
set grew. It is written atomically; ``config.yaml``'s ``iteration`` key (DeepLabCut's) is
kept equal to the state's iteration by :func:`pose.refine.merge.merge_refined_labels`.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from pose.atomic import write_text_atomic

STATE_NAME = "refinement.json"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class OutlierRecord(BaseModel):
    """One ``ethopose pose outliers`` run."""

    model_config = ConfigDict(extra="forbid")

    iteration: int
    video: str
    video_path: str
    model_dir: str
    method: str
    threshold: float
    n_candidates: int
    frames: list[int]
    images: list[str]
    machine_labels: str
    time: str = Field(default_factory=_now)


class MergeRecord(BaseModel):
    """One merge: the corrected frames of ``iteration`` joined the training set."""

    model_config = ConfigDict(extra="forbid")

    iteration: int
    new_iteration: int
    images: list[str]
    accepted_machine: list[str] = []
    test_frames_file: str | None = None
    init_from: str | None = None
    time: str = Field(default_factory=_now)


class RefineState(BaseModel):
    """The whole ``refinement.json``."""

    model_config = ConfigDict(extra="forbid")

    iteration: int = 0
    outliers: list[OutlierRecord] = []
    merges: list[MergeRecord] = []

    def pending(self) -> list[OutlierRecord]:
        """Outlier extractions of the current iteration (not merged yet)."""
        return [o for o in self.outliers if o.iteration == self.iteration]


def load_state(project_dir: str | Path) -> RefineState:
    """Read ``refinement.json`` (a fresh state when absent), starting at config's iteration."""
    path = Path(project_dir) / STATE_NAME
    if path.is_file():
        try:
            return RefineState.model_validate_json(path.read_text())
        except ValueError as err:
            raise ValueError(f"{path}: invalid refinement state: {err}") from err
    return RefineState(iteration=_config_iteration(Path(project_dir)))


def save_state(project_dir: str | Path, state: RefineState) -> Path:
    """Write ``refinement.json`` atomically."""
    return write_text_atomic(Path(project_dir) / STATE_NAME, state.model_dump_json(indent=1))


def _config_iteration(project_dir: Path) -> int:
    import yaml

    cfg = project_dir / "config.yaml"
    if not cfg.is_file():
        return 0
    raw = yaml.safe_load(cfg.read_text()) or {}
    return int(raw.get("iteration") or 0)


def set_config_iteration(project_dir: str | Path, iteration: int) -> None:
    """Set DeepLabCut's ``iteration`` key of ``config.yaml`` (other keys kept, atomic write)."""
    import yaml

    cfg = Path(project_dir) / "config.yaml"
    raw = yaml.safe_load(cfg.read_text()) or {}
    raw["iteration"] = int(iteration)
    write_text_atomic(cfg, yaml.safe_dump(raw, sort_keys=False))
