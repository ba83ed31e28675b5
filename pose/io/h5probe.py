"""Walk and read a whole HDF5 file with h5py: the probe that :mod:`pose.io.h5check` runs.

Kept free of ethopose imports (only h5py and numpy) so that it starts fast as a child
process (``python pose/io/h5probe.py --serve``): the HDF5 C library can loop forever or
crash on some damaged files, which only a separate process can survive. The probe opens
every object (at most ``MAX_OBJECTS``, ``MAX_DEPTH`` levels), reads every attribute,
checks each dataset's size against what the file can hold, and reads every dataset, so
that the reader that follows in the parent touches nothing the probe has not read.
"""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np

COMPRESSION_RATIO_MAX = 1100  # zlib tops out near 1032:1
COMPRESSED_CAP_BYTES = 256 << 20
COMPRESSED_RATIO_BIG_FILE = 20
MAX_OBJECTS = 20_000
MAX_DEPTH = 8
MIN_LIMIT_BYTES = 1 << 16
MAX_ATTRS = 1024


class ProbeError(Exception):
    """The file is damaged at ``where`` (an HDF5 object path)."""

    def __init__(self, where: str, message: str) -> None:
        self.where, self.message = where, message
        super().__init__(f"{where}: {message}")


def dataset_byte_limit(node: h5py.Dataset, file_size: int) -> int:
    """The most bytes ``node`` can honestly hold in a file of ``file_size`` bytes.

    Uncompressed: the file size. Compressed: 1100x the file size (zlib's ceiling; PyTables'
    mostly empty index arrays reach it) but no more than 256 MiB or 20x the file size,
    whichever is larger, so that a damaged shape in a small file cannot ask for GiBs.
    """
    size = max(file_size, MIN_LIMIT_BYTES)
    filtered = node.compression is not None or bool(node.id.get_create_plist().get_nfilters())
    if not filtered:
        return size
    return min(size * COMPRESSION_RATIO_MAX, max(COMPRESSED_CAP_BYTES, size * COMPRESSED_RATIO_BIG_FILE))


def dataset_nbytes(node: h5py.Dataset) -> int:
    """Bytes ``node[()]`` would allocate (computed in float to avoid overflow)."""
    return int(min(np.prod(node.shape, dtype=np.float64) * node.dtype.itemsize, 2.0**62))


def probe(path: str, file_size: int, *, read_data: bool = True) -> None:
    """Walk ``path``; raise ProbeError naming the object at fault.

    Parameters
    ----------
    path
        The HDF5 file.
    file_size
        Its size in bytes (bounds the datasets).
    read_data
        Also read every dataset in full (after its size check).
    """
    where = "/"
    try:
        with h5py.File(path, "r") as fh:
            todo: list[tuple[h5py.Group, int]] = [(fh, 0)]
            n_objects = 0
            while todo:
                group, depth = todo.pop()
                where = group.name
                _read_attrs(group)
                for name in group.keys():
                    n_objects += 1
                    if n_objects > MAX_OBJECTS:
                        raise ProbeError(where, f"more than {MAX_OBJECTS} HDF5 objects")
                    where = f"{group.name.rstrip('/')}/{name}"
                    if not isinstance(group.get(name, getlink=True), h5py.HardLink):
                        continue  # soft / external links are not followed
                    child = group[name]
                    if isinstance(child, h5py.Group):
                        if depth + 1 < MAX_DEPTH:
                            todo.append((child, depth + 1))
                        continue
                    if not isinstance(child, h5py.Dataset):
                        continue
                    _read_attrs(child)
                    n_bytes, limit = dataset_nbytes(child), dataset_byte_limit(child, file_size)
                    if n_bytes > limit:
                        raise ProbeError(
                            where,
                            f"shape {child.shape} would need {n_bytes / 2**20:.1f} MiB, more than a "
                            f"{file_size / 2**20:.2f} MiB file can hold (damaged size field)",
                        )
                    if read_data and child.shape is not None:
                        child[()]
    except ProbeError:
        raise
    except Exception as exc:  # h5py raises RuntimeError/KeyError/OSError/ValueError on damage
        raise ProbeError(where, f"{type(exc).__name__}: {exc}") from None


def _read_attrs(node: h5py.HLObject) -> None:
    for name in list(node.attrs.keys())[:MAX_ATTRS]:
        node.attrs[name]


def _die_with_parent() -> None:
    """Linux: the kernel kills this child when its parent dies, even mid-hang in HDF5 C code
    (elsewhere the child still exits when its stdin closes, between files)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve() -> None:
    """Child loop: one JSON request ``[path, size]`` per stdin line, one JSON answer per line."""
    _die_with_parent()
    answer = sys.stdout
    answer.write(json.dumps(["ready", "", ""]) + "\n")
    answer.flush()
    for line in sys.stdin:
        path, size = json.loads(line)
        try:
            probe(path, int(size))
            reply = ["ok", "", ""]
        except ProbeError as exc:
            reply = ["damaged", exc.where, exc.message]
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, never raised here
            reply = ["damaged", "/", f"{type(exc).__name__}: {exc}"]
        answer.write(json.dumps(reply) + "\n")
        answer.flush()


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    serve()
