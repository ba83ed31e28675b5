"""Crash-safe file writing: write to a temporary file beside the target, then rename.

Every layer writes results through these helpers so that a crash or a kill never leaves a
half-written file that looks complete:

- the writer fills a temporary file beside the target;
- the temporary file is flushed to disk (``fsync``) and renamed onto the target
  (``os.replace``, atomic on POSIX and Windows), then the folder is fsynced so the
  rename itself survives a power cut;
- with ``backup=True`` the previous version is first copied to ``<target>.bak`` the
  same way (copy to a temporary file, fsync, rename), so a kill mid-save never leaves a
  corrupt ``.bak`` either.

Temporary names carry the writer's pid and host (``.<stem>.ep<pid>h<host>.<random>.tmp<suffix>``).
A temporary file whose writer on this host is gone (killed mid-write) is removed by
:func:`remove_stale_temps`, which every :func:`atomic_path` call runs on its folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

# Temporaries named by the code before the pid was part of the name (".<stem>.<8>.tmp<sfx>")
# are removed once older than this; their writer cannot be identified.
LEGACY_TEMP_MAX_AGE_S = 3600.0

_HOST = f"{zlib.crc32(socket.gethostname().encode()) & 0xFFFFFFFF:08x}"
_OURS = re.compile(r"\.ep(\d+)h([0-9a-f]{8})\.[A-Za-z0-9_]{8}\.tmp")
_LEGACY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


def _token() -> str:
    return f"ep{os.getpid()}h{_HOST}"


def _new_temp(folder: Path, stem: str, suffix: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.{_token()}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    os.unlink(tmp)  # let the writer create it (some libraries refuse to overwrite)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, backup: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename it onto ``target``.

    Parameters
    ----------
    target
        The final file path. Its folder is created if needed.
    backup
        Keep the previous version of ``target`` as ``target + ".bak"`` (itself written
        atomically).

    Notes
    -----
    The temporary file keeps ``target``'s suffix so that libraries choosing a format by
    suffix (pandas, xarray, OpenCV) still work. On an exception it is removed and
    ``target`` (and its ``.bak``) are left untouched. Stale temporaries of dead writers
    in the folder are removed first (:func:`remove_stale_temps`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target.parent)
    tmp_path = _new_temp(target.parent, target.stem, target.suffix)
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise FileNotFoundError(f"writer produced no file for {target}")
        _fsync_tree(tmp_path)
        if backup and target.is_file():
            copy_atomic(target, target.with_name(target.name + ".bak"))
        os.replace(tmp_path, target)
        fsync_dir(target.parent)
    finally:
        if tmp_path.is_dir() and not tmp_path.is_symlink():
            shutil.rmtree(tmp_path, ignore_errors=True)
        elif tmp_path.exists():
            tmp_path.unlink()


def copy_atomic(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dest`` through a temporary file, fsync and rename (never a partial ``dest``)."""
    src, dest = Path(src), Path(dest)
    tmp = _new_temp(dest.parent, dest.name, "")
    try:
        shutil.copyfile(src, tmp)
        shutil.copystat(src, tmp)
        _fsync_tree(tmp)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``target`` atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files of :func:`atomic_path` whose writer is gone.

    Parameters
    ----------
    folder
        The folder to clean (not recursive).

    Returns
    -------
    list of pathlib.Path
        The removed files.

    Notes
    -----
    A temporary is stale when its name carries this host and a pid that is no longer
    running, or when it has the older pid-less name and is older than
    ``LEGACY_TEMP_MAX_AGE_S``. Temporaries of other hosts (a shared cluster folder)
    are left alone. Errors (a file removed meanwhile, no permission) are ignored.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not name.startswith(".") or ".tmp" not in name:
            continue
        tokens = _OURS.findall(name)
        if tokens:
            stale = any(host == _HOST and not _pid_alive(int(pid)) for pid, host in tokens)
        else:
            try:
                stale = bool(_LEGACY.match(name)) and now - entry.stat().st_mtime > LEGACY_TEMP_MAX_AGE_S
            except OSError:
                continue
        if not stale:
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
            log.info("removed %s, left by a killed writer", entry.path)
        except OSError:
            continue
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists under another user, or cannot tell
        return True
    return True


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    """fsync a file, or every file and folder of a folder a writer produced."""
    if not path.is_dir():
        _fsync_file(path)
        return
    for root, _dirs, files in os.walk(path):
        for name in files:
            _fsync_file(Path(root) / name)
        fsync_dir(Path(root))


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder so that a rename in it is durable (no-op where unsupported)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
