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
floor        no        3D (triangulated) pose files: the floor, as
                       :func:`features.threed.floor_from_spec` reads it (``z=0``,
                       ``point=X,Y,Z;normal=NX,NY,NZ``, ``board:calibration.toml``,
                       relative to the csv's folder); empty: fitted to the paws
============ ========= ==========================================================

A 3D pose file (``space = x, y, z`` in mm, from ``ethopose pose triangulate``) runs
the same protocols: the arena and zones are drawn on the floor in mm
(:func:`protocols.geometry.locate_arena_3d`: ``arena.json`` beside it holds the arena
floor's corners as world points, ``corners_mm``), distances and speeds are in mm from the
3D track, the top-view behaviour rules see the pose from straight above, and the report
shows the 3D trajectories.

Results layout (``DIR``)::

    animals/<subject>_<session>/   endpoints.json (endpoints, qc, warnings), frames.parquet,
                                   pose.nc, geometry.json,
                                   done  (written last: the animal is finished; holds the
                                   fingerprint of what produced it)
    endpoints.csv, endpoints.parquet  per-animal endpoint table (+ metadata, qc_flag, qc_reasons
                                   and the tracking measures of protocols.qc)
    group_summary.csv, group_tests.csv, dose_response.csv   (animals the QC rules exclude left
                                   out; n_excluded / excluded say which and why)
    exclusions.csv                 subject, session, group, qc_flag, qc_reasons
    failures.csv                   subject, session, error (one row per failed animal)
    protocol.yaml, cohort.csv, run.json, manifest.json (protocols.manifest), report.html
    .hash_cache.json               SHA-256 of the inputs by size + mtime (resume speed)

Resuming: an animal is skipped when its ``done`` marker's fingerprint (SHA-256 of the
protocol as run, of its pose / video / arena files and of the pose model; the ethopose
version; its cohort row) matches the current one. Anything else is redone, with the reason
logged and listed in ``run.json`` (``redone``): re-running into a folder with an edited
protocol or a changed pose file never keeps old numbers under the new ``protocol.yaml``
(redoing rather than refusing: the user asked for the new protocol's numbers, and the
folder stays consistent). Each animal is written to a temporary folder that is renamed into
place only when complete, and ``failures.csv``, ``endpoints.csv`` and ``run.json`` are
rewritten atomically after every animal, so a killed run never leaves a half-written
animal that looks finished and its tables list what it finished. Run the same command again
to finish.

Parallelism (dask.distributed): by default a ``LocalCluster`` of ``n_workers`` processes
(one thread each) on this machine, its scheduler, workers and dashboard bound to 127.0.0.1;
``n_workers=0`` runs in this process without dask (each pose file read in a child process,
so a reader crash on a damaged file fails that animal, not the run).
Give ``scheduler="tcp://host:8786"`` to use a running cluster. On SLURM, with
``dask-jobqueue`` installed::

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(cores=1, memory="4GB", walltime="02:00:00", queue="normal")
    cluster.scale(jobs=20)          # 20 single-core jobs
    print(cluster.scheduler_address)  # pass this to --scheduler

then ``ethopose run open_field cohort.csv --out results --scheduler tcp://...:8786``. The
workers must see the same file system paths as the submitting machine: ``--out`` is made
absolute, and every worker writes a probe file there that this machine must see, else the
run stops before any work with a message naming the workers. ``run.json`` records the
number of workers that ran.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pose._version import __version__
from pose.atomic import atomic_path, write_text_atomic
from protocols.animal import FpsMismatchError, load_session_pose, process_animal  # noqa: F401 (re-exported)
from protocols.cluster import run_tasks
from protocols.schema import Protocol, load_protocol, protocol_yaml

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("subject_id", "group")
OPTIONAL_COLUMNS = ("dose", "sex", "session", "pose_path", "video_path", "fps", "px_per_mm", "floor")
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
    warned: dict[str, str] = field(default_factory=dict)
    redone: dict[str, list[str]] = field(default_factory=dict)
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
        session, pose_path, video_path`` (absolute paths or ``""``), ``floor`` (when the csv
        has that column: a checked floor spec, a board's calibration path made absolute, or
        ``""``), ``key``, ``line`` (the csv line number).

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
        floor, floor_error = _floor_cell(str(r.get("floor", "")).strip(), path.parent)
        if floor_error:
            errors.append(f"{where}, column 'floor': {floor_error}")
        if not files:
            errors.append(f"{where}: neither 'pose_path' nor 'video_path' is given")
        elif "pose_path" not in files and not need_model:
            errors.append(f"{where}, column 'video_path': a video needs a pose model (--model MODEL_DIR)")
        extra = {c: r[c] for c in unknown}
        rows.append({"subject_id": sid, "group": group, "dose": numbers["dose"],
                     "fps": numbers["fps"], "px_per_mm": numbers["px_per_mm"],
                     "sex": str(r.get("sex", "")).strip(), "session": session,
                     "pose_path": files.get("pose_path", ""), "video_path": files.get("video_path", ""),
                     **({"floor": floor} if "floor" in raw.columns else {}),
                     "key": animal_key(sid, session), "line": line, **extra})
    table = pd.DataFrame(rows)
    dup = table[table.duplicated("key", keep=False)]
    for key, sub in dup.groupby("key"):
        errors.append(f"{path} lines {sub['line'].tolist()}: subject/session {key!r} appears more than once")
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        raise CohortError("invalid cohort table\n" + "\n".join(shown))
    return table


def _floor_cell(text: str, folder: Path) -> tuple[str, str]:
    """A cohort ``floor`` cell checked (:func:`features.threed.floor_from_spec`), a board's
    calibration path made absolute: ``(spec, "")`` or ``("", error)``; ``("", "")`` when empty."""
    if not text:
        return "", ""
    from features.threed import floor_from_spec

    for prefix in ("board:", "board="):
        if text.startswith(prefix):
            p = Path(text[len(prefix):].strip())
            p = p if p.is_absolute() else folder / p
            if not p.is_file():
                return "", f"calibration file not found: {p}"
            text = f"board:{p.resolve()}"
    try:
        floor_from_spec(text)
    except (ValueError, OSError) as exc:
        return "", str(exc)
    return text, ""


def done_state(out_dir: Path, key: str) -> dict[str, Any] | None:
    """The animal's ``done`` marker: ``None`` when unfinished, ``{}`` for an old text marker,
    else ``{"finished", "fingerprint"}``."""
    f = Path(out_dir) / "animals" / key / "done"
    if not f.is_file():
        return None
    try:
        data = json.loads(f.read_text())
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def is_done(out_dir: Path, key: str) -> bool:
    """True when the animal's ``done`` marker exists."""
    return (Path(out_dir) / "animals" / key / "done").is_file()


def collect_endpoints(out_dir: Path, cohort: pd.DataFrame, keys: set[str] | None = None) -> pd.DataFrame:
    """Per-animal table from the finished animals' ``endpoints.json`` (cohort order).

    Columns: metadata, the endpoints, then ``qc_flag``, ``qc_reasons`` and the tracking
    measures of :func:`protocols.qc.tracking_qc` (when recorded). ``keys`` limits the
    table to those animals.
    """
    rows = []
    for _, r in cohort.iterrows():
        if (keys is not None and r["key"] not in keys) or not is_done(out_dir, r["key"]):
            continue
        rows.append(_endpoint_row(out_dir, r))
    return pd.DataFrame(rows)


def _endpoint_row(out_dir: Path, r: Any) -> dict[str, Any]:
    data = json.loads((Path(out_dir) / "animals" / r["key"] / "endpoints.json").read_text())
    qc = data.get("qc", {})
    return {"subject_id": r["subject_id"], "group": r["group"], "dose": r["dose"], "sex": r["sex"],
            "session": r["session"], **data["endpoints"], **{f"qc_{k}" if not k.startswith("qc_") else k: v
                                                              for k, v in qc.items()}}


def write_tables(out_dir: Path, table: pd.DataFrame, protocol: Protocol) -> dict[str, pd.DataFrame]:
    """Write the endpoint table (csv + parquet), the exclusions and the statistics.

    The statistics use the animals the protocol's QC rules keep (``qc.exclude``); the
    tables of tests and summaries say how many and which animals were excluded.
    """
    from protocols.qc import QCRules, excluded_mask, exclusion_table
    from protocols.stats import compare_groups, dose_response, endpoint_columns, summarize_groups

    rules = getattr(protocol, "qc", None) or QCRules()
    with atomic_path(out_dir / "endpoints.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out_dir / "endpoints.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    excluded = exclusion_table(table, rules)
    with atomic_path(out_dir / "exclusions.csv") as tmp:
        excluded.to_csv(tmp, index=False)
    kept = table.loc[~excluded_mask(table, rules)] if len(table) else table
    eps = [c for c in endpoint_columns(kept) if not c.startswith("qc_")] if len(kept) else []
    stats = {"group_summary": summarize_groups(kept, eps) if eps else pd.DataFrame(),
             "group_tests": compare_groups(kept, eps) if eps else pd.DataFrame(),
             "dose_response": dose_response(kept, eps) if eps else pd.DataFrame()}
    note = ", ".join(f"{r.subject_id} (qc {r.qc_flag}: {r.qc_reasons})" for r in excluded.itertuples())
    for name, df in stats.items():
        if len(df) and len(excluded):  # added to the statistics' own count of animals left out
            df["n_excluded"] = df["n_excluded"] + len(excluded) if "n_excluded" in df else len(excluded)
            before = df["excluded"].fillna("").astype(str) if "excluded" in df else ""
            df["excluded"] = (before + ", " + note).str.strip(", ") if "excluded" in df else note
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


def _input_files(row: dict[str, Any], protocol: Protocol) -> dict[str, Path]:
    """The files an animal's analysis reads: pose/video and the arena file beside it."""
    files = {c: Path(row[c]) for c in ("pose_path", "video_path") if row.get(c)}
    floor = str(row.get("floor") or "")
    if floor.startswith("board:"):
        files["floor_calibration"] = Path(floor[len("board:"):])
    arena = protocol.arena
    if arena is not None and arena.source == "arena_json" and files:
        src = files.get("pose_path", files.get("video_path"))
        f = src.parent / arena.arena_json.format(stem=src.name.split(".")[0])
        if f.is_file():
            files["arena"] = f
    return files


@dataclass
class _Progress:
    """What the run has done so far, written to disk after every animal."""

    out: Path
    cohort: pd.DataFrame
    run_info: dict[str, Any]
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write(self, result: CohortResult) -> None:
        keys = self.cohort.set_index("key")
        fail_rows = [{"subject_id": keys.loc[k, "subject_id"], "session": keys.loc[k, "session"], "error": e}
                     for k, e in result.failed.items()]
        with atomic_path(self.out / "failures.csv") as tmp:
            pd.DataFrame(fail_rows, columns=["subject_id", "session", "error"]).to_csv(tmp, index=False)
        table = pd.DataFrame([self.rows[k] for k in self.cohort["key"] if k in self.rows])
        with atomic_path(self.out / "endpoints.csv") as tmp:
            table.to_csv(tmp, index=False)
        self.run_info.update(processed=result.processed, skipped=result.skipped, failed=result.failed,
                             warnings=result.warned, redone=result.redone)
        write_text_atomic(self.out / "run.json", json.dumps(self.run_info, indent=1, default=str))


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
    command: list[str] | None = None,
) -> CohortResult:
    """Run a protocol over a cohort; skip finished animals; write tables, stats and report.

    Parameters
    ----------
    protocol
        A :class:`Protocol`, a YAML path, or a built-in name (``"open_field"``).
    cohort_csv
        The cohort table (see the module docstring).
    out_dir
        Results folder (created; made absolute before any work is sent to a worker).
    scheduler
        Address of a running dask scheduler; ``None`` starts a local cluster. Its workers
        must see ``out_dir`` (checked with a probe file).
    n_workers
        Worker processes of the local cluster; ``0`` runs serially without dask (each
        pose file read in a child process, so a reader crash fails one animal only).
    model_dir
        Pose model for rows that give a video instead of a pose file.
    progress
        Show a progress bar (rich).
    report
        Write ``report.html``.
    command
        Command line recorded in ``manifest.json`` (default ``sys.argv``).

    Returns
    -------
    CohortResult

    Notes
    -----
    An animal is skipped only when its ``done`` marker's fingerprint (protocol, input
    bytes, pose model, ethopose version, cohort row) equals the current one; otherwise it
    is redone and the reason logged and recorded in ``run.json`` (``redone``), so a folder
    never certifies a ``protocol.yaml`` that did not produce its numbers.
    ``failures.csv``, ``endpoints.csv`` and ``run.json`` are rewritten (atomically) after
    every animal.
    """
    import sys

    from protocols.manifest import (
        HASH_CACHE,
        HashCache,
        animal_fingerprint,
        combined_sha256,
        fingerprint_changes,
        model_files,
        sha256_text,
    )

    proto = protocol if isinstance(protocol, Protocol) else load_protocol(protocol)
    out = Path(out_dir).expanduser().resolve()
    cohort = read_cohort(cohort_csv, need_model=model_dir is not None)
    model_dir = None if model_dir is None else Path(model_dir).resolve()
    (out / "animals").mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_folders(out / "animals")
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    proto_text = protocol_yaml(proto)
    write_text_atomic(out / "protocol.yaml", proto_text)
    with atomic_path(out / "cohort.csv") as tmp:
        cohort.drop(columns=["line"]).to_csv(tmp, index=False)
    cache = HashCache(out / HASH_CACHE)
    proto_sha = sha256_text(proto_text)
    model_sha = combined_sha256(model_files(model_dir), cache)
    meta_cols = [c for c in cohort.columns if c not in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "key", "line")]
    row_cols = [*meta_cols, "floor"]  # a changed floor redoes the animal (no column: not in the fingerprint)
    result = CohortResult(out_dir=out)
    todo = []
    for r in cohort.to_dict("records"):
        r["fingerprint"] = animal_fingerprint(r, protocol_sha256=proto_sha, model_sha256=model_sha,
                                              input_files=_input_files(r, proto), cache=cache,
                                              metadata_columns=row_cols)
        state = done_state(out, r["key"])
        if state is None:
            todo.append(r)
            continue
        changes = fingerprint_changes(state.get("fingerprint"), r["fingerprint"])
        if not changes:
            result.skipped.append(r["key"])
            continue
        logger.warning("animal %s was finished before but %s: redoing it", r["key"], "; ".join(changes))
        result.redone[r["key"]] = changes
        (out / "animals" / r["key"] / "done").unlink()  # its old numbers no longer count as finished
        todo.append(r)
    cache.save()
    logger.info("%d animals: %d finished before, %d to run (%d redone after a change)", len(cohort),
                len(result.skipped), len(todo), len(result.redone))
    run_info = {"ethopose_version": __version__, "protocol": proto.name, "status": "running",
                "cohort_csv": str(Path(cohort_csv).resolve()), "out_dir": str(out),
                "model_dir": None if model_dir is None else str(model_dir), "scheduler": scheduler or "local",
                "n_workers": n_workers, "n_workers_requested": n_workers, "started": started,
                "n_animals": len(cohort), "current": None}
    state = _Progress(out, cohort, run_info)
    for k in result.skipped:
        state.rows[k] = _endpoint_row(out, cohort.set_index("key", drop=False).loc[k])
    state.write(result)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    by_key = cohort.set_index("key", drop=False)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), disable=not progress, transient=False) as bar:
        task = bar.add_task(f"{proto.name}", total=len(cohort), completed=len(result.skipped))

        def on_start(row: dict[str, Any]) -> None:
            run_info["current"] = row["key"]  # names the animal if this process dies while on it
            write_text_atomic(out / "run.json", json.dumps(run_info, indent=1, default=str))

        def on_result(res: dict[str, Any]) -> None:
            key = res["key"]
            if res["status"] in ("ok", "warn"):
                result.processed.append(key)
                result.failed.pop(key, None)
                if res["status"] == "warn":
                    result.warned[key] = res.get("qc_reasons") or "; ".join(res.get("warnings", []))
                    logger.warning("animal %s: %s (%s)", key, res.get("qc_flag", "warn"), result.warned[key])
                try:
                    state.rows[key] = _endpoint_row(out, by_key.loc[key])
                except (OSError, ValueError) as exc:
                    result.failed[key] = f"results unreadable after the run: {exc}"
            else:
                result.failed[key] = res["error"]
                logger.warning("animal %s failed: %s", key, res["error"])
            run_info["current"] = None
            state.write(result)
            bar.advance(task)

        actual = run_tasks(todo, proto, out, None if model_dir is None else str(model_dir),
                            scheduler, n_workers, on_result, on_start)
    run_info["n_workers"] = actual
    result.endpoints = collect_endpoints(out, cohort)
    stats = write_tables(out, result.endpoints, proto)
    run_info.update(status="finished", finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    state.write(result)
    _write_run_manifest(out, cohort, proto, model_dir, cache, run_info,
                        list(sys.argv if command is None else command), protocol)
    if report and len(result.endpoints):
        from protocols.report import write_report

        result.report_path = write_report(out, proto, result.endpoints, stats, run_info)
    return result


def _write_run_manifest(out: Path, cohort: pd.DataFrame, proto: Protocol, model_dir: Path | None, cache: Any,
                        run_info: dict[str, Any], command: list[str], protocol_arg: Any) -> Path:
    from protocols.manifest import file_entry, label_files, model_files, model_seed, write_manifest

    inputs = [file_entry("protocol", out / "protocol.yaml", cache, name=proto.name)]
    if isinstance(protocol_arg, str | Path) and Path(protocol_arg).is_file():
        inputs.append(file_entry("protocol_source", protocol_arg, cache))
    inputs.append(file_entry("cohort_csv", run_info["cohort_csv"], cache))
    for r in cohort.to_dict("records"):
        for role, p in _input_files(r, proto).items():
            role = {"pose_path": "pose", "video_path": "video"}.get(role, role)
            inputs.append(file_entry(role, p, cache, animal=r["key"]))
    inputs += [file_entry("model", p, cache) for p in model_files(model_dir)]
    inputs += [file_entry("labels", p, cache) for p in label_files(model_dir)]
    cache.save()
    seed = model_seed(model_dir)
    return write_manifest(out, inputs, command=command, started=run_info["started"],
                          finished=run_info.get("finished", ""),
                          seeds={} if seed is None else {"model_training_seed": seed},
                          extra={"scheduler": run_info["scheduler"], "n_workers": run_info["n_workers"],
                                 "model_dir": run_info["model_dir"]})
