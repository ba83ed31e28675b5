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
