"""Cached, root-checked access to results folders for the dashboard pages.

Every path is checked with :func:`dashboard.paths.resolve_inside` before it is read.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import streamlit as st

from dashboard.frames import SharedReader, draw_keypoints, encode_jpeg
from dashboard.paths import PathOutsideRootError, files_inside, resolve_inside
from protocols.results import (
    AnimalResult,
    Results,
    finished_animals,
    is_results_folder,
    load_animal,
    load_results,
)

ROOT_ENV = "ETHOPOSE_DASHBOARD_ROOT"


def friendly_error(exc: BaseException) -> str:
    """What the page says when it fails: the kind of problem, no traceback, no server path.

    The full traceback goes to the terminal that runs the dashboard.
    """
    if isinstance(exc, PathOutsideRootError):
        return "Refused: this page would read a file outside the dashboard root."
    if isinstance(exc, FileNotFoundError):
        name = Path(exc.filename).name if getattr(exc, "filename", None) else "a file"
        return f"A file this page needs is missing ({name}). Re-run the protocol or check the results folder."
    return (f"This page could not be shown ({type(exc).__name__}). The details are printed in the "
            "terminal that runs the dashboard.")


def get_root() -> Path:
    """The dashboard root: ``$ETHOPOSE_DASHBOARD_ROOT``, else the first script argument, else cwd."""
    if "root" in st.session_state:
        return Path(st.session_state["root"])
    env = os.environ.get(ROOT_ENV)
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    root = Path(env) if env else Path(args[0]) if args else Path.cwd()
    root = root.resolve()
    st.session_state["root"] = str(root)
    return root


def list_results(root: Path, max_depth: int = 2) -> list[str]:
    """Results folders under ``root`` (relative paths; ``"."`` for the root itself)."""
    out = []
    if is_results_folder(root):
        out.append(".")
    frontier = [root]
    for _ in range(max_depth):
        nxt = []
        for d in frontier:
            try:
                children = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
            for c in children:
                if c.name == "animals":
                    continue
                try:
                    resolve_inside(root, c.relative_to(root))
                except PathOutsideRootError:
                    continue
                if is_results_folder(c):
                    out.append(str(c.relative_to(root)))
                nxt.append(c)
        frontier = nxt
    return out


def list_files(root: Path, suffixes: tuple[str, ...], max_depth: int = 3) -> list[str]:
    """Files with one of ``suffixes`` under ``root`` (relative paths, no hidden folders)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "animals")
        if len(rel.parts) >= max_depth:
            dirnames[:] = []
        for f in sorted(filenames):
            if f.endswith(suffixes):
                try:
                    resolve_inside(root, rel / f)
                except PathOutsideRootError:
                    continue
                out.append(str(rel / f))
    return out


def _mtime(path: Path) -> float:
    try:
        return max(p.stat().st_mtime for p in [path, *path.glob("*.csv"), *path.glob("run.json")])
    except (OSError, ValueError):
        return 0.0


@st.cache_data(show_spinner=False, max_entries=8)
def _results_cached(path: str, mtime: float) -> Results:
    return load_results(Path(path))


@st.cache_data(show_spinner=False, max_entries=64)
def _animal_cached(path: str, key: str, mtime: float) -> AnimalResult:
    return load_animal(Path(path), key)


def open_results(root: Path, rel: str) -> Results:
    """Load the results folder ``rel`` (relative to ``root``), after checking its files."""
    path = resolve_inside(root, rel)
    for name in ("protocol.yaml", "endpoints.csv", "group_tests.csv", "group_summary.csv",
                 "dose_response.csv", "failures.csv", "run.json", "cohort.csv"):
        if (path / name).exists():
            resolve_inside(root, path / name, allow_absolute=True)
    return _results_cached(str(path), _mtime(path))


def animals_of(root: Path, rel: str) -> list[str]:
    """Finished animals of a results folder."""
    return finished_animals(resolve_inside(root, rel))


def open_animal(root: Path, rel: str, key: str) -> AnimalResult:
    """Load one animal after checking that every file of its folder lies inside the root."""
    path = resolve_inside(root, rel)
    folder = resolve_inside(root, Path(rel) / "animals" / key)
    files_inside(root, folder)
    return _animal_cached(str(path), key, (folder / "done").stat().st_mtime)


@st.cache_data(show_spinner=False, max_entries=16)
def _pose_arrays(path: str, mtime: float) -> dict:
    from pose.io import load

    ds = load(Path(path))
    return {"position": ds["position"].isel(individual=0).values,  # (time, space, keypoint)
            "confidence": ds["confidence"].isel(individual=0).values,
            "keypoints": [str(k) for k in ds["keypoint"].values],
            "time": np.asarray(ds["time"].values, float),
            "video_path": ds.attrs.get("video_path")}


def open_pose(root: Path, animal: AnimalResult) -> dict:
    """The animal's cleaned pose (``pose.nc``) as plain arrays."""
    f = resolve_inside(root, animal.folder / "pose.nc", allow_absolute=True)
    return _pose_arrays(str(f), f.stat().st_mtime)


@st.cache_data(show_spinner=False, max_entries=8)
def _pose_dataset(path: str, mtime_ns: int, size: int):
    from pose.io import load

    return load(Path(path))


def open_pose_file(root: Path, rel: str | Path):
    """A pose file under the root as a pose Dataset (cached until the file changes)."""
    f = resolve_inside(root, rel, allow_absolute=True)
    info = f.stat()
    return _pose_dataset(str(f), info.st_mtime_ns, info.st_size)


def pose_files(root: Path) -> list[str]:
    """Pose files under the root that the review page opens (NetCDF, DeepLabCut/SLEAP h5, slp),
    outside the results folders' animal folders."""
    return list_files(root, (".nc", ".h5", ".slp"))


def pose_video(root: Path, pose_file: Path, video_path: str | None) -> Path | None:
    """The video a pose file names (relative paths from the file's folder) when it lies inside the root."""
    if not video_path:
        return None
    p = Path(video_path)
    if not p.is_absolute():
        p = pose_file.parent / p
    try:
        f = resolve_inside(root, p, allow_absolute=True)
    except (PathOutsideRootError, FileNotFoundError):
        return None
    return f if f.is_file() else None


def identity_source_rel(root: Path, meta: dict) -> str | None:
    """The animal's own pose file (the cohort's ``pose_path``) relative to the root, when it
    lies inside the root and the review page lists it; else None."""
    raw = meta.get("pose_path")
    if not raw:
        return None
    try:
        f = resolve_inside(root, Path(raw), allow_absolute=True)
    except (PathOutsideRootError, FileNotFoundError):
        return None
    rel = str(f.relative_to(root.resolve()))
    return rel if f.is_file() and rel in pose_files(root) else None


def identity_source(root: Path, meta: dict) -> tuple[int, int] | None:
    """``(individuals, swap suspects)`` of the animal's own pose file when it holds several
    animals (see :func:`identity_source_rel`); None otherwise."""
    from pose.io import PoseFileError

    rel = identity_source_rel(root, meta)
    if rel is None:
        return None
    try:
        ds = open_pose_file(root, rel)
    except (PoseFileError, OSError, ValueError):
        return None
    if ds.sizes.get("individual", 1) < 2:
        return None
    from pose.tracking import detect_swap_suspects

    return int(ds.sizes["individual"]), len(detect_swap_suspects(ds))


def video_inside_root(root: Path, animal: AnimalResult, pose: dict) -> Path | None:
    """The animal's video when it exists *inside* the root, else None."""
    candidates = [animal.meta.get("video_path"), pose.get("video_path")]
    pose_file = animal.meta.get("pose_path")
    for c in candidates:
        if not c:
            continue
        p = Path(c)
        if not p.is_absolute() and pose_file:
            p = Path(pose_file).parent / p
        try:
            f = resolve_inside(root, p, allow_absolute=True)
        except (PathOutsideRootError, FileNotFoundError):
            continue
        if f.is_file():
            return f
    return None


@st.cache_resource(show_spinner=False, max_entries=8)
def _shared_reader(path: str, mtime: float) -> SharedReader:
    return SharedReader(path)


def video_reader(path: Path) -> SharedReader | None:
    """The server's one open reader of ``path`` (kept between reruns); None when unreadable."""
    from pose.video import VideoError

    try:
        return _shared_reader(str(path), path.stat().st_mtime)
    except (VideoError, OSError):
        logging.getLogger("dashboard").exception("cannot open the video %s", path)
        return None


@st.cache_data(show_spinner=False, max_entries=256)
def frame_jpeg(path: str, mtime: float, index: int, xy: np.ndarray, confidence: np.ndarray,
               names: tuple[str, ...], cutoff: float) -> bytes | None:
    """JPEG bytes of frame ``index`` of a video with its keypoints drawn (None when unreadable)."""
    from pose.video import VideoError

    reader = video_reader(Path(path))
    if reader is None:
        return None
    try:
        rgb = reader.read(index)
    except (VideoError, IndexError):
        logging.getLogger("dashboard").exception("cannot read frame %d of %s", index, path)
        return None
    return encode_jpeg(draw_keypoints(rgb, xy, confidence, names, cutoff, labels=False))


def selected_results(root: Path) -> str | None:
    """The results folder chosen in the sidebar (default: the first found; None if none).

    Kept under a plain session-state key (``results_choice``), not a widget key, so the
    choice survives on pages that do not draw the sidebar widget.
    """
    found = list_results(root)
    current = st.session_state.get("results_choice")
    if current in found:
        return current
    return found[0] if found else None


def require_results(root: Path) -> str:
    """The selected results folder; stop the page with a note when there is none."""
    rel = selected_results(root)
    if rel is None:
        st.info("No results folder selected.")
        st.stop()
    return rel


def require_animals(root: Path, rel: str) -> list[str]:
    """The finished animals of ``rel``; stop the page with a warning when there are none."""
    keys = animals_of(root, rel)
    if not keys:
        st.warning("No finished animals in this results folder.")
        st.stop()
    return keys


def _remember_results() -> None:
    st.session_state["results_choice"] = st.session_state["results_widget"]


def results_selector(root: Path) -> None:
    """The sidebar's results-folder picker."""
    found = list_results(root)
    if not found:
        st.info("No results folder under the root yet: run a protocol first.")
        return
    st.selectbox("Results folder", found, key="results_widget", index=found.index(selected_results(root)),
                 on_change=_remember_results)
