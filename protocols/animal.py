"""One animal of a cohort run: read its pose safely, check it, analyse it, write its folder.

:func:`process_animal` is what :func:`protocols.batch.run_cohort` runs for each animal (in
this process or on a dask worker). The pose file is read by :func:`load_session_pose`: the
cohort's ``fps`` column fills in a frame rate the file does not record but never overrides
one it does (a mismatch over 1 % is an error naming both). With ``isolate_reads`` the read
happens in a forked child (:func:`load_isolated`), so a reader that segfaults or hangs on a
damaged file fails that animal only. Truncated videos and pose/video frame-count
mismatches (:func:`integrity_warnings`) and the tracking QC (:mod:`protocols.qc`) give the
animal a ``qc_flag`` with its reasons.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pose._version import __version__
from protocols.schema import Protocol

logger = logging.getLogger(__name__)

#: Longest a pose file may take to read in the child process (seconds).
READ_TIMEOUT_S = 600.0


class FpsMismatchError(ValueError):
    """The cohort's fps column disagrees with the fps recorded in the pose file."""


class _ReadFailed(Exception):
    """Reading an animal's pose failed in the child process (message already formatted)."""


def _number(row: dict[str, Any], col: str) -> float | None:
    v = row.get(col, np.nan)
    return None if v is None or pd.isna(v) else float(v)


def load_session_pose(pose_path: str | Path, cohort_fps: float | None, *, tolerance: float = 0.01) -> Any:
    """Load a pose file; the cohort's fps fills in a missing frame rate, never overrides one.

    Raises
    ------
    FpsMismatchError
        When the file records an fps that differs from the cohort's by more than
        ``tolerance`` (relative): every speed would be off by their ratio.
    """
    from pose.io import load

    ds = load(pose_path)
    file_fps = ds.attrs.get("fps")
    if cohort_fps is None:
        return ds
    if file_fps:
        if abs(float(file_fps) - cohort_fps) > tolerance * float(file_fps):
            raise FpsMismatchError(
                f"{pose_path}: the file records {float(file_fps):g} fps but the cohort's fps column says "
                f"{cohort_fps:g} (every speed and duration would be off by x{cohort_fps / float(file_fps):.3g}); "
                "correct the cohort csv, or clear its fps cell to use the file's")
        return ds
    return load(pose_path, fps=cohort_fps)


def _read_child(conn: Any, pose_path: str, cohort_fps: float | None) -> None:
    try:
        conn.send(("ok", load_session_pose(pose_path, cohort_fps)))
    except BaseException as exc:  # sent to the parent, which reports it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def load_isolated(pose_path: str | Path, cohort_fps: float | None, *, timeout_s: float = 600.0) -> Any:
    """:func:`load_session_pose` in a forked child: a reader that crashes (a segfault in a
    C library on a damaged file) or hangs fails this animal, not the whole run.

    Raises
    ------
    _ReadFailed
        Naming the file and the signal, the timeout, or the reader's own error.
    """
    import multiprocessing as mp
    import signal

    if "fork" not in mp.get_all_start_methods():
        return load_session_pose(pose_path, cohort_fps)
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_read_child, args=(child, str(pose_path), cohort_fps), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout_s):
            if proc.is_alive():
                proc.kill()
                proc.join()
                raise _ReadFailed(f"reading {pose_path} took more than {timeout_s:g} s (the reader hung); stopped it")
            code = proc.exitcode
            proc.join()
            name = signal.Signals(-code).name if code is not None and code < 0 else f"exit code {code}"
            raise _ReadFailed(f"reading {pose_path} crashed the reader ({name}); the file is probably damaged")
        try:
            status, payload = parent.recv()
        except EOFError:
            proc.join()
            code = proc.exitcode
            name = signal.Signals(-code).name if code is not None and code < 0 else f"exit code {code}"
            raise _ReadFailed(f"reading {pose_path} crashed the reader ({name}); the file is probably damaged") from None
    finally:
        parent.close()
        proc.join(timeout=10)
    if status != "ok":
        raise _ReadFailed(payload)
    return payload


def integrity_warnings(ds: Any, row: dict[str, Any], *, check_video_file: bool = True) -> list[str]:
    """Truncated video (attrs from pose inference) and pose/video frame-count mismatch.

    ``check_video_file=False`` skips opening the row's video (the video QC gate checked it).
    """
    out = []
    if ds.attrs.get("video_truncated"):
        out.append(f"video truncated: {ds.attrs.get('n_frames_read')} of {ds.attrs.get('n_frames_expected')} "
                   "frames read")
    if check_video_file and row.get("pose_path") and row.get("video_path"):
        from pose.video import VideoError, VideoReader

        try:
            with VideoReader(row["video_path"]) as video:
                n_video, n_header = video.n_frames, int(video.n_frames_header or 0)
        except VideoError as exc:
            out.append(f"video unreadable, frame count not checked: {exc}")
        else:
            if n_header > n_video:
                out.append(f"video truncated: {n_video} of {n_header} frames present")
            if ds.sizes["time"] != n_video:
                out.append(f"pose file has {ds.sizes['time']} frames, video {Path(row['video_path']).name} "
                           f"has {n_video}")
    return out


class VideoQCRefused(RuntimeError):
    """The cohort row's video failed the video QC gate and the protocol refuses such videos."""


def video_gate(row: dict[str, Any], protocol: Protocol, pose_frames: int | None = None) -> tuple[list[str], list[str]]:
    """Run the video QC gate (:func:`pose.qc.check_video`) on the row's video.

    Returns
    -------
    warnings, failures
        ``"video QC: <check>: <reason>"`` lines; empty when the row has no video or the
        protocol's ``qc.video`` is ``off``.

    Raises
    ------
    VideoQCRefused
        When the video fails and ``qc.video`` is ``refuse``.
    """
    from pose.qc import check_video
    from protocols.qc import QCRules

    rules = getattr(protocol, "qc", None) or QCRules()
    if rules.video == "off" or not row.get("video_path"):
        return [], []
    arena = getattr(protocol, "arena", None)
    size_mm = max(arena.width_mm, arena.height_mm) if arena is not None else None
    result = check_video(row["video_path"], pose_frames=pose_frames, px_per_mm=_number(row, "px_per_mm"),
                         arena_size_mm=size_mm if _number(row, "px_per_mm") is not None else None)
    bad = result.checks[result.checks["status"] != "pass"]
    bad = bad[bad["check"] != "arena_calibration"]  # calibration is the protocol's scale source's job
    warns = [f"video QC: {c}: {r}" for c, r, st in zip(bad["check"], bad["reason"], bad["status"], strict=True)
             if st == "warn"]
    fails = [f"video QC: {c}: {r}" for c, r, st in zip(bad["check"], bad["reason"], bad["status"], strict=True)
             if st == "fail"]
    if fails and rules.video == "refuse":
        raise VideoQCRefused(f"{row['video_path']}: video QC failed ({'; '.join(fails)}); "
                             "set qc: {video: flag} in the protocol to analyse it anyway")
    return warns, fails


def _video_gate_on(protocol: Protocol) -> bool:
    from protocols.qc import QCRules

    return (getattr(protocol, "qc", None) or QCRules()).video != "off"


def _qc(ds: Any, res: Any, protocol: Protocol, warnings: list[str], failures: list[str] | None = None) -> dict[str, Any]:
    from protocols.endpoints import apply_aliases
    from protocols.qc import QCRules, tracking_qc

    p_cutoff = jump = None
    for f in protocol.filters:
        if f.step == "confidence" and p_cutoff is None:
            p_cutoff = getattr(f, "threshold", getattr(f, "p_cutoff", None))
        elif f.step == "jumps" and jump is None:
            jump = getattr(f, "max_speed_px_s", None)
            if jump is None and getattr(f, "max_speed_mm_s", None) and res.px_per_mm:
                jump = f.max_speed_mm_s * res.px_per_mm
    rules = getattr(protocol, "qc", None) or QCRules()
    raw = apply_aliases(ds, protocol)
    return tracking_qc(raw, res.pose, required=list(protocol.bodyparts.required), centre=protocol.bodyparts.centre,
                       rules=rules, p_cutoff=p_cutoff, jump_speed_px_s=jump, extra_warnings=warnings,
                       extra_failures=failures, coverage_flag=res.endpoints.get("quality_flag"))


def set_floor(ds: Any, row: dict[str, Any], pose_path: Path) -> None:
    """Record the cohort row's ``floor`` (a checked spec) in a 3D pose's ``attrs["floor_spec"]``,
    which every 3D feature then uses (:func:`features.threed.resolve_floor`).

    Raises
    ------
    ValueError
        A floor given for a 2D pose, naming the file.
    """
    spec = str(row.get("floor") or "").strip()
    if not spec:
        return
    if ds.sizes.get("space") != 3:
        raise ValueError(f"{pose_path}: the cohort's floor column ({spec!r}) is for 3D (triangulated) poses; "
                         "this one is 2D")
    from features.threed import FLOOR_SPEC_ATTR

    ds.attrs[FLOOR_SPEC_ATTR] = spec


def session_geometry(res: Any) -> dict[str, Any]:
    """``geometry.json`` of an analysed session: scale, arena corners and zones.

    A 3D session's corners and zones are in mm on the floor (``arena_corners_floor_mm``,
    ``units: "floor_mm"``, ``floor``: how it was found) instead of image pixels.
    """
    corners = None if res.arena_corners_px is None else np.asarray(res.arena_corners_px).tolist()
    zones = {n: z.model_dump(mode="json") for n, z in res.zones.items()}
    if res.pose.sizes.get("space") == 3:
        return {"px_per_mm": None, "units": "floor_mm", "arena_corners_floor_mm": corners, "zones": zones,
                "floor": res.frames.attrs.get("floor")}
    return {"px_per_mm": res.px_per_mm, "arena_corners_px": corners, "zones": zones}


def process_animal(row: dict[str, Any], protocol: Protocol, out_dir: str, model_dir: str | None = None,
                   *, isolate_reads: bool = False) -> dict[str, Any]:
    """Analyse one animal and write its folder; never raises (errors are returned).

    Parameters
    ----------
    row
        Cohort row; its ``fingerprint`` (see :func:`protocols.manifest.animal_fingerprint`)
        goes into the ``done`` marker.
    isolate_reads
        Read the pose file in a child process (:func:`load_isolated`).

    Returns
    -------
    dict
        ``{"key", "status": "ok" | "warn" | "failed", "error", "warnings", "qc_flag",
        "seconds"}``; ``warn`` = analysed, with data-integrity or tracking-quality reasons.
    """
    t0 = time.perf_counter()
    key = row["key"]
    final = Path(out_dir) / "animals" / key
    tmp = final.with_name(f".tmp-{key}-{os.getpid()}")
    try:
        from pose.io import save
        from protocols.endpoints import analyse_session

        if row.get("pose_path"):
            pose_path = Path(row["pose_path"])
            fps = _number(row, "fps")
            ds = load_isolated(pose_path, fps, timeout_s=READ_TIMEOUT_S) if isolate_reads else load_session_pose(pose_path, fps)
            video_warnings, video_failures = video_gate(row, protocol, pose_frames=ds.sizes["time"])
        else:
            from pose.pipeline.inference import Predictor

            video_warnings, video_failures = video_gate(row, protocol)  # before any inference
            pose_path = Path(row["video_path"])
            ds = Predictor.from_dir(model_dir).predict_video(pose_path)
        if _number(row, "px_per_mm") is not None:
            ds.attrs["px_per_mm"] = _number(row, "px_per_mm")
        set_floor(ds, row, pose_path)
        gated = _video_gate_on(protocol) and bool(row.get("video_path"))
        warnings = integrity_warnings(ds, row, check_video_file=not gated) + video_warnings
        res = analyse_session(ds, protocol, pose_path=pose_path)
        qc = _qc(ds, res, protocol, warnings, video_failures)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        res.frames.to_parquet(tmp / "frames.parquet")
        save(res.pose, tmp / "pose.nc")
        geometry = session_geometry(res)
        (tmp / "geometry.json").write_text(json.dumps(geometry, indent=1))
        meta = {k: row[k] for k in ("subject_id", "group", "sex", "session", "pose_path", "video_path")}
        meta["dose"] = _number(row, "dose")
        (tmp / "endpoints.json").write_text(json.dumps(
            {"meta": meta, "endpoints": res.endpoints, "qc": qc, "warnings": warnings,
             "fps": float(res.pose.attrs["fps"]), "history": res.pose.attrs.get("history", []),
             "model_dir": model_dir, "version": __version__}, indent=1, default=str))
        (tmp / "done").write_text(json.dumps({"finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                              "fingerprint": row.get("fingerprint")}, indent=1, default=str))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        status = "ok" if qc["qc_flag"] == "ok" else "warn"
        return {"key": key, "status": status, "error": "", "warnings": warnings, "qc_flag": qc["qc_flag"],
                "qc_reasons": qc["qc_reasons"], "seconds": time.perf_counter() - t0}
    except Exception as exc:  # one bad animal must not stop the cohort
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        logger.debug("animal %s failed:\n%s", key, traceback.format_exc())
        err = str(exc) if isinstance(exc, _ReadFailed) else f"{type(exc).__name__}: {exc}"
        return {"key": key, "status": "failed", "error": err, "seconds": time.perf_counter() - t0}
