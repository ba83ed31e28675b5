"""Dask helpers of a cohort run: local cluster on the loopback interface, remote workers that
must see the results folder, and a shutdown that cannot lose finished work."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protocols.animal import process_animal
from protocols.schema import Protocol

logger = logging.getLogger(__name__)


class WorkerPathError(ValueError):
    """The dask workers cannot write the results folder where this machine reads it."""


def _write_probe(out_dir: str, token: str) -> str:
    """Run on a worker: write a probe file into the results folder, return its path."""
    p = Path(out_dir) / f".probe-{token}-{os.getpid()}"
    p.write_text(token)
    return str(p)


def check_workers_can_write(client: Any, out_dir: Path) -> int:
    """Every worker of ``client`` writes a probe file into ``out_dir``; this process must see it.

    Returns
    -------
    int
        The number of workers.

    Raises
    ------
    WorkerPathError
        When no worker is connected, a worker cannot write there, or writes where this
        machine does not see it (another file system): naming the workers.
    """
    import uuid

    n = len(client.scheduler_info().get("workers", {}))
    if n == 0:
        raise WorkerPathError(f"no dask worker is connected to the scheduler {client.scheduler.address}")
    token = uuid.uuid4().hex
    try:
        written = client.run(_write_probe, str(out_dir), token)
    except OSError as exc:
        raise WorkerPathError(f"a dask worker cannot write into the results folder {out_dir}: {exc}") from None
    unseen = sorted(w for w, p in written.items() if not Path(p).is_file())
    for p in written.values():
        Path(p).unlink(missing_ok=True)
    if unseen or not written:
        raise WorkerPathError(
            f"the dask worker(s) {unseen or 'of the scheduler'} wrote their probe file into {out_dir} but this "
            "machine does not see it: the workers have another file system. Give --out a folder every machine "
            "sees at the same path")
    return len(written)


def _close_quietly(*things: Any) -> None:
    """Close dask clients/clusters; a shutdown error (all work being done) is logged, not raised."""
    for thing in things:
        if thing is None:
            continue
        try:
            thing.close()
        except Exception as exc:  # e.g. TimeoutError from a slow worker shutdown
            logger.warning("dask shutdown: %s: %s (ignored: every result was already collected)",
                           type(exc).__name__, exc)


def run_tasks(rows: list[dict[str, Any]], protocol: Protocol, out_dir: Path, model_dir: str | None,
               scheduler: str | None, n_workers: int, on_result: Callable[[dict[str, Any]], None],
               on_start: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Run the animals; returns the number of workers that ran them (0 = this process)."""
    if not rows and scheduler is None:
        return n_workers
    if scheduler is None and n_workers == 0:
        for r in rows:
            if on_start is not None:
                on_start(r)
            on_result(process_animal(r, protocol, str(out_dir), model_dir, isolate_reads=True))
        return 0
    from distributed import Client, LocalCluster, as_completed

    cluster = client = None
    try:
        if scheduler is None:
            # scheduler, workers and dashboard on the loopback interface only
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
            client = Client(cluster)
            logger.info("dask dashboard (this machine only): %s", client.dashboard_link)
            actual = n_workers
        else:
            client = Client(scheduler)
            actual = check_workers_can_write(client, out_dir)
        futures = [client.submit(process_animal, r, protocol, str(out_dir), model_dir,
                                 key=f"animal-{r['key']}", pure=False) for r in rows]
        for fut in as_completed(futures):
            try:
                res = fut.result()
            except Exception as exc:  # a worker died: report it as a failure of that animal
                key = str(fut.key).removeprefix("animal-")
                res = {"key": key, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            on_result(res)
    finally:
        _close_quietly(client, cluster)
    return actual
