"""Batch phenotyping: one protocol over a cohort of animals, in parallel, resumable.

``ethopose run PROTOCOL COHORT.csv --out DIR`` calls :func:`run_cohort`. For each row of
the cohort table it loads the pose file (or runs pose inference on the video when a model
is given), runs the protocol (:func:`protocols.endpoints.analyse_session`) and writes the
animal's results; then it gathers the per-animal endpoint table, the group statistics and
the HTML report.

Cohort table (csv), one row per animal and session:

============ ========= ==========================================================
column       required  meaning
============ ========= ==========================================================
subject_id   yes       animal id (letters, digits, ``-``, ``_``, ``.``)
group        yes       treatment / genotype group
pose_path    one of    pose file (DeepLabCut h5/csv, SLEAP, NetCDF); relative
video_path   the two   paths are relative to the csv's folder
dose         no        numeric dose (enables the dose-response analysis)
sex          no        free text
session      no        session label (default ``1``)
fps          no        frame rate, for pose files that do not record it (DeepLabCut)
px_per_mm    no        calibration of this video (used by protocols whose scale
                       source is ``pose_attrs``)
============ ========= ==========================================================

Results layout (``DIR``)::

    animals/<subject>_<session>/   endpoints.json, frames.parquet, pose.nc, geometry.json,
                                   done  (written last: the animal is finished)
    endpoints.csv, endpoints.parquet  per-animal endpoint table (+ metadata columns)
    group_summary.csv, group_tests.csv, dose_response.csv
    failures.csv                   subject, session, error (one row per failed animal)
    protocol.yaml, cohort.csv, run.json, report.html

Resuming: an animal whose ``done`` marker exists is skipped. Each animal is written to a
temporary folder that is renamed into place only when complete, so a killed run never
leaves a half-written animal that looks finished. Run the same command again to finish.

Parallelism (dask.distributed): by default a ``LocalCluster`` of ``n_workers`` processes
(one thread each) on this machine; ``n_workers=0`` runs in this process without dask.
Give ``scheduler="tcp://host:8786"`` to use a running cluster. On SLURM, with
``dask-jobqueue`` installed::

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(cores=1, memory="4GB", walltime="02:00:00", queue="normal")
    cluster.scale(jobs=20)          # 20 single-core jobs
    print(cluster.scheduler_address)  # pass this to --scheduler

then ``ethopose run open_field cohort.csv --out results --scheduler tcp://...:8786``. The
workers must see the same file system paths as the submitting machine.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pose._version import __version__
from pose.atomic import atomic_path, write_text_atomic
from protocols.schema import Protocol, load_protocol, protocol_yaml

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("subject_id", "group")
OPTIONAL_COLUMNS = ("dose", "sex", "session", "pose_path", "video_path", "fps", "px_per_mm")
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


class CohortError(ValueError):
    """The cohort table is invalid; the message names the file, line and column."""


@dataclass
class CohortResult:
    """What :func:`run_cohort` did."""

    out_dir: Path
    processed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    endpoints: pd.DataFrame = field(default_factory=pd.DataFrame)
    report_path: Path | None = None


def animal_key(subject_id: str, session: str) -> str:
    """Folder name of one animal's results: ``<subject>_<session>``."""
    return f"{subject_id}_{session}"


def read_cohort(path: str | Path, *, need_model: bool = False) -> pd.DataFrame:
    """Read and validate a cohort csv.

    Returns
    -------
    pandas.DataFrame
        Columns ``subject_id, group, dose, fps, px_per_mm`` (floats, NaN if absent), ``sex,
        session, pose_path, video_path`` (absolute paths or ``""``), ``key``, ``line`` (the
        csv line number).

    Raises
    ------
    CohortError
        Naming the file, the line and the column of the first problems found.
    """
    path = Path(path)
    if not path.is_file():
        raise CohortError(f"cohort file not found: {path}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CohortError(f"{path}: cannot parse as csv: {exc}") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise CohortError(f"{path}: missing required column(s) {missing}; has {list(raw.columns)}")
    if "pose_path" not in raw.columns and "video_path" not in raw.columns:
        raise CohortError(f"{path}: needs a 'pose_path' or a 'video_path' column; has {list(raw.columns)}")
    unknown = [c for c in raw.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        logger.info("%s: extra column(s) %s kept as metadata", path, unknown)
    if raw.empty:
        raise CohortError(f"{path}: no animals (the table has a header only)")
    errors: list[str] = []
    rows = []
    for i, r in raw.iterrows():
        line = int(i) + 2
        where = f"{path} line {line}"
        sid = str(r["subject_id"]).strip()
        session = str(r.get("session", "") or "1").strip() or "1"
        group = str(r["group"]).strip()
        if not sid:
            errors.append(f"{where}, column 'subject_id': empty")
        elif not _SAFE.match(sid):
            errors.append(f"{where}, column 'subject_id': {sid!r} may only use letters, digits, '.', '_', '-'")
        if not _SAFE.match(session):
            errors.append(f"{where}, column 'session': {session!r} may only use letters, digits, '.', '_', '-'")
        if not group:
            errors.append(f"{where}, column 'group': empty")
        numbers = {}
        for col in ("dose", "fps", "px_per_mm"):
            numbers[col] = np.nan
            txt = str(r.get(col, "")).strip()
            if not txt:
                continue
            try:
                numbers[col] = float(txt)
            except ValueError:
                errors.append(f"{where}, column '{col}': {txt!r} is not a number")
                continue
            if col != "dose" and not numbers[col] > 0:
                errors.append(f"{where}, column '{col}': must be positive, got {txt}")
        files = {}
        for col in ("pose_path", "video_path"):
            txt = str(r.get(col, "")).strip()
            if txt:
                p = Path(txt) if Path(txt).is_absolute() else (path.parent / txt)
                if not p.exists():
                    errors.append(f"{where}, column '{col}': file not found: {p}")
                files[col] = str(p.resolve()) if p.exists() else str(p)
        if not files:
            errors.append(f"{where}: neither 'pose_path' nor 'video_path' is given")
        elif "pose_path" not in files and not need_model:
            errors.append(f"{where}, column 'video_path': a video needs a pose model (--model MODEL_DIR)")
        extra = {c: r[c] for c in unknown}
        rows.append({"subject_id": sid, "group": group, "dose": numbers["dose"],
                     "fps": numbers["fps"], "px_per_mm": numbers["px_per_mm"],
                     "sex": str(r.get("sex", "")).strip(), "session": session,
                     "pose_path": files.get("pose_path", ""), "video_path": files.get("video_path", ""),
                     "key": animal_key(sid, session), "line": line, **extra})
    table = pd.DataFrame(rows)
    dup = table[table.duplicated("key", keep=False)]
    for key, sub in dup.groupby("key"):
        errors.append(f"{path} lines {sub['line'].tolist()}: subject/session {key!r} appears more than once")
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        raise CohortError("invalid cohort table\n" + "\n".join(shown))
    return table


def is_done(out_dir: Path, key: str) -> bool:
    """True when the animal's ``done`` marker exists."""
    return (Path(out_dir) / "animals" / key / "done").is_file()


def process_animal(row: dict[str, Any], protocol: Protocol, out_dir: str, model_dir: str | None = None) -> dict[str, Any]:
    """Analyse one animal and write its folder; never raises (errors are returned).

    Returns
    -------
    dict
        ``{"key", "status": "ok" | "failed", "error", "seconds"}``.
    """
    t0 = time.perf_counter()
    key = row["key"]
    final = Path(out_dir) / "animals" / key
    tmp = final.with_name(f".tmp-{key}-{os.getpid()}")
    try:
        from pose.io import load, save
        from protocols.endpoints import analyse_session

        if row.get("pose_path"):
            pose_path = Path(row["pose_path"])
            ds = load(pose_path, fps=None if pd.isna(row.get("fps", np.nan)) else float(row["fps"]))
        else:
            from pose.pipeline.inference import Predictor

            pose_path = Path(row["video_path"])
            ds = Predictor.from_dir(model_dir).predict_video(pose_path)
        if not pd.isna(row.get("px_per_mm", np.nan)):
            ds.attrs["px_per_mm"] = float(row["px_per_mm"])
        res = analyse_session(ds, protocol, pose_path=pose_path)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        res.frames.to_parquet(tmp / "frames.parquet")
        save(res.pose, tmp / "pose.nc")
        geometry = {"px_per_mm": res.px_per_mm,
                    "arena_corners_px": None if res.arena_corners_px is None else np.asarray(res.arena_corners_px).tolist(),
                    "zones": {n: z.model_dump(mode="json") for n, z in res.zones.items()}}
        (tmp / "geometry.json").write_text(json.dumps(geometry, indent=1))
        meta = {k: row[k] for k in ("subject_id", "group", "sex", "session", "pose_path", "video_path")}
        meta["dose"] = None if pd.isna(row.get("dose")) else float(row["dose"])
        (tmp / "endpoints.json").write_text(json.dumps(
            {"meta": meta, "endpoints": res.endpoints, "fps": float(res.pose.attrs["fps"]),
             "history": res.pose.attrs.get("history", []), "model_dir": model_dir,
             "version": __version__}, indent=1, default=str))
        (tmp / "done").write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        return {"key": key, "status": "ok", "error": "", "seconds": time.perf_counter() - t0}
    except Exception as exc:  # one bad animal must not stop the cohort
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        logger.debug("animal %s failed:\n%s", key, traceback.format_exc())
        return {"key": key, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                "seconds": time.perf_counter() - t0}


def _run_tasks(rows: list[dict[str, Any]], protocol: Protocol, out_dir: Path, model_dir: str | None,
               scheduler: str | None, n_workers: int, on_result: Callable[[dict[str, Any]], None]) -> None:
    if not rows:
        return
    if scheduler is None and n_workers == 0:
        for r in rows:
            on_result(process_animal(r, protocol, str(out_dir), model_dir))
        return
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = [client.submit(process_animal, r, protocol, str(out_dir), model_dir,
                                 key=f"animal-{r['key']}", pure=False) for r in rows]
        for fut in as_completed(futures):
            try:
                on_result(fut.result())
            except Exception as exc:  # a worker died: report it as a failure of that animal
                key = str(fut.key).removeprefix("animal-")
                on_result({"key": key, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def collect_endpoints(out_dir: Path, cohort: pd.DataFrame) -> pd.DataFrame:
    """Per-animal table from the finished animals' ``endpoints.json`` (cohort order)."""
    rows = []
    for _, r in cohort.iterrows():
        f = Path(out_dir) / "animals" / r["key"] / "endpoints.json"
        if not is_done(out_dir, r["key"]):
            continue
        data = json.loads(f.read_text())
        rows.append({"subject_id": r["subject_id"], "group": r["group"], "dose": r["dose"],
                     "sex": r["sex"], "session": r["session"], **data["endpoints"]})
    return pd.DataFrame(rows)


def write_tables(out_dir: Path, table: pd.DataFrame, protocol: Protocol) -> dict[str, pd.DataFrame]:
    """Write the endpoint table (csv + parquet) and the statistics; return the statistics."""
    from protocols.stats import compare_groups, dose_response, endpoint_columns, summarize_groups

    with atomic_path(out_dir / "endpoints.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out_dir / "endpoints.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    eps = endpoint_columns(table) if len(table) else []
    stats = {"group_summary": summarize_groups(table, eps) if eps else pd.DataFrame(),
             "group_tests": compare_groups(table, eps) if eps else pd.DataFrame(),
             "dose_response": dose_response(table, eps) if eps else pd.DataFrame()}
    for name, df in stats.items():
        with atomic_path(out_dir / f"{name}.csv") as tmp:
            df.to_csv(tmp, index=False)
    return stats


def _remove_stale_temp_folders(animals: Path) -> None:
    """Delete ``.tmp-<key>-<pid>`` folders left by a killed run (their process is gone)."""
    for tmp in animals.glob(".tmp-*"):
        pid = tmp.name.rpartition("-")[2]
        if pid.isdigit() and _pid_alive(int(pid)):
            continue  # another run writing into the same folder right now
        shutil.rmtree(tmp, ignore_errors=True)
        logger.info("removed %s, left by an interrupted run", tmp)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_cohort(
    protocol: str | Path | Protocol,
    cohort_csv: str | Path,
    out_dir: str | Path,
    *,
    scheduler: str | None = None,
    n_workers: int = 2,
    model_dir: str | Path | None = None,
    progress: bool = True,
    report: bool = True,
) -> CohortResult:
    """Run a protocol over a cohort; skip finished animals; write tables, stats and report.

    Parameters
    ----------
    protocol
        A :class:`Protocol`, a YAML path, or a built-in name (``"open_field"``).
    cohort_csv
        The cohort table (see the module docstring).
    out_dir
        Results folder (created).
    scheduler
        Address of a running dask scheduler; ``None`` starts a local cluster.
    n_workers
        Worker processes of the local cluster; ``0`` runs serially without dask.
    model_dir
        Pose model for rows that give a video instead of a pose file.
    progress
        Show a progress bar (rich).
    report
        Write ``report.html``.

    Returns
    -------
    CohortResult
    """
    proto = protocol if isinstance(protocol, Protocol) else load_protocol(protocol)
    out = Path(out_dir)
    cohort = read_cohort(cohort_csv, need_model=model_dir is not None)
    (out / "animals").mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_folders(out / "animals")
    write_text_atomic(out / "protocol.yaml", protocol_yaml(proto))
    with atomic_path(out / "cohort.csv") as tmp:
        cohort.drop(columns=["line"]).to_csv(tmp, index=False)
    result = CohortResult(out_dir=out)
    todo = []
    for r in cohort.to_dict("records"):
        if is_done(out, r["key"]):
            result.skipped.append(r["key"])
        else:
            todo.append(r)
    logger.info("%d animals: %d finished before, %d to run", len(cohort), len(result.skipped), len(todo))
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), disable=not progress, transient=False) as bar:
        task = bar.add_task(f"{proto.name}", total=len(cohort), completed=len(result.skipped))

        def on_result(res: dict[str, Any]) -> None:
            if res["status"] == "ok":
                result.processed.append(res["key"])
            else:
                result.failed[res["key"]] = res["error"]
                logger.warning("animal %s failed: %s", res["key"], res["error"])
            bar.advance(task)

        _run_tasks(todo, proto, out, None if model_dir is None else str(model_dir),
                   scheduler, n_workers, on_result)
    keys = cohort.set_index("key")
    fail_rows = [{"subject_id": keys.loc[k, "subject_id"], "session": keys.loc[k, "session"],
                  "error": e} for k, e in result.failed.items()]
    with atomic_path(out / "failures.csv") as tmp:
        pd.DataFrame(fail_rows, columns=["subject_id", "session", "error"]).to_csv(tmp, index=False)
    result.endpoints = collect_endpoints(out, cohort)
    stats = write_tables(out, result.endpoints, proto)
    run_info = {"ethopose_version": __version__, "protocol": proto.name, "cohort_csv": str(Path(cohort_csv).resolve()),
                "model_dir": None if model_dir is None else str(model_dir), "scheduler": scheduler or "local",
                "n_workers": n_workers, "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "n_animals": len(cohort), "processed": result.processed, "skipped": result.skipped,
                "failed": result.failed}
    write_text_atomic(out / "run.json", json.dumps(run_info, indent=1))
    if report and len(result.endpoints):
        from protocols.report import write_report

        result.report_path = write_report(out, proto, result.endpoints, stats, run_info)
    return result
