"""Crash-safe file writing: write to a temporary file beside the target, then rename.

Every layer writes results through these helpers so that a crash or a kill never leaves a
half-written file that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, backup: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    Parameters
    ----------
    target
        The final file path. Its folder is created if needed.
    backup
        Keep the previous version of ``target`` as ``target + ".bak"``.

    Notes
    -----
    The temporary file keeps ``target``'s suffix so that libraries choosing a format by
    suffix (pandas, xarray, OpenCV) still work. On an exception it is removed and
    ``target`` is left untouched. ``os.replace`` is atomic on POSIX and Windows.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)  # let the writer create it (some libraries refuse to overwrite)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise FileNotFoundError(f"writer produced no file for {target}")
        if backup and target.exists():
            shutil.copy2(target, target.with_name(target.name + ".bak"))
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``target`` atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)
