"""The dashboard's one gate to the file system: every path goes through :func:`resolve_inside`.

The dashboard is started on one root folder (a results folder or a project folder) and
never reads or writes outside it. User-typed paths are relative to the root; ``..``,
absolute paths and symbolic links that lead out of the root are refused.
"""

from __future__ import annotations

import os
from pathlib import Path


class PathOutsideRootError(PermissionError):
    """A path would leave the dashboard's root folder."""


def resolve_inside(root: str | os.PathLike, user_path: str | os.PathLike = "", *,
                   allow_absolute: bool = False) -> Path:
    """Resolve ``user_path`` against ``root`` and refuse anything that leaves the root.

    Parameters
    ----------
    root
        The dashboard's root folder (must exist).
    user_path
        A path relative to ``root`` (``""`` is the root itself).
    allow_absolute
        Accept an absolute path (for paths the software itself wrote, e.g. the pose file
        recorded in a results folder); it must still lie inside the root after resolving
        symbolic links.

    Returns
    -------
    pathlib.Path
        The resolved absolute path (symbolic links followed), inside the resolved root.

    Raises
    ------
    PathOutsideRootError
        For ``..`` components, absolute paths (unless allowed), ``~``, NUL bytes, or a
        path whose resolution (through symbolic links) lies outside the root.
    FileNotFoundError
        When ``root`` does not exist.
    """
    root_resolved = Path(root).expanduser().resolve(strict=True)
    text = os.fspath(user_path)
    if "\x00" in text:
        raise PathOutsideRootError(f"refusing path with a NUL byte: {text!r}")
    p = Path(text)
    if text.startswith("~"):
        raise PathOutsideRootError(f"refusing home-relative path {text!r}: give a path inside {root_resolved}")
    if p.is_absolute() and not allow_absolute:
        raise PathOutsideRootError(f"refusing absolute path {text!r}: give a path relative to {root_resolved}")
    if ".." in p.parts:
        raise PathOutsideRootError(f"refusing path with '..': {text!r}")
    resolved = (p if p.is_absolute() else root_resolved / p).resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise PathOutsideRootError(f"{text!r} resolves to {resolved}, outside the root {root_resolved}")
    return resolved


def files_inside(root: str | os.PathLike, folder: str | os.PathLike) -> list[Path]:
    """Files of ``folder`` (recursively) after checking each resolves inside ``root``.

    Raises
    ------
    PathOutsideRootError
        When any file (e.g. a symbolic link) leads out of the root.
    """
    base = resolve_inside(root, folder, allow_absolute=True)
    out = []
    for f in sorted(base.rglob("*")):
        out.append(resolve_inside(root, f, allow_absolute=True))
    return out


def cohort_paths_outside(root: str | os.PathLike, cohort_csv: str | os.PathLike) -> list[str]:
    """Rows of a cohort csv whose ``pose_path``/``video_path`` lead out of the root.

    Relative paths are taken relative to the csv's folder (as ``ethopose run`` does), then
    resolved through symbolic links and checked with :func:`resolve_inside`.

    Returns
    -------
    list of str
        One message per offending cell, naming the csv (relative to the root), the line,
        the subject and the column; empty when every path stays inside the root.
    """
    import pandas as pd

    root_resolved = Path(root).resolve(strict=True)
    csv = resolve_inside(root_resolved, cohort_csv, allow_absolute=True)
    name = csv.relative_to(root_resolved).as_posix()
    table = pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True)
    table.columns = [str(c).strip() for c in table.columns]
    problems = []
    for i, row in table.iterrows():
        for col in ("pose_path", "video_path"):
            text = str(row.get(col, "")).strip()
            if not text:
                continue
            where = f"{name} line {int(i) + 2} (subject {str(row.get('subject_id', '')).strip()!r}), column '{col}'"
            if "\x00" in text or text.startswith("~"):
                problems.append(f"{where}: {text!r} is refused (home-relative or NUL byte)")
                continue
            p = Path(text) if Path(text).is_absolute() else csv.parent / text
            try:
                resolve_inside(root_resolved, p.resolve(), allow_absolute=True)
            except PathOutsideRootError:
                problems.append(f"{where}: {text!r} lies outside the dashboard root")
    return problems
