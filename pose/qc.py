"""Video quality control before any inference: can this video's numbers be trusted?

:func:`check_video` reads one video once (container index + one sequential decode at low
resolution) and returns a :class:`VideoQC`: one row per check with ``pass`` / ``warn`` /
``fail``, the measured value, the limit and the reason. Checks:

========================  ==================================================================
check                     what is measured
========================  ==================================================================
``readable``              the file opens and every indexed frame decodes
``truncated``             frames the container's header lists vs frames present
``frame_rate``            container fps vs the median timestamp interval; irregular intervals
                          (variable frame rate)
``dropped_frames``        timestamp gaps of >= 1.5 median intervals, as a count of missing
                          frames
``duplicated_frames``     frames that repeat the previous one: a change (mean absolute grey
                          difference) below 0.1 x the video's median frame-to-frame change
``frames_vs_pose``        frame count of the pose file (when given) vs the video
``exposure_drift``        median brightness of the first vs every later tenth of the session
``contrast_drift``        the same for the grey-level standard deviation
``blur``                  frames whose sharpness (variance of the Laplacian) falls below a
                          fraction of the video's own median sharpness
``arena_calibration``     px/mm (when given) x arena size (mm) vs the frame size
========================  ==================================================================

Limits live in :class:`VideoQCLimits` (typed, overridable); each is stated relative to the
video itself where an absolute value would be camera-specific (blur, exposure).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from pose.video import VideoError, VideoReader

Status = Literal["pass", "warn", "fail"]
_ORDER = {"pass": 0, "warn": 1, "fail": 2}


class VideoQCLimits(BaseModel):
    """Pass/warn/fail limits of :func:`check_video` (fractions unless named otherwise)."""

    model_config = ConfigDict(extra="forbid")

    fps_mismatch_warn: float = Field(0.01, gt=0, description="container fps vs timestamps, relative")
    fps_mismatch_fail: float = Field(0.05, gt=0)
    irregular_warn: float = Field(0.0, ge=0, description="fraction of irregular intervals above which to warn")
    irregular_fail: float = Field(0.01, ge=0)
    dropped_warn: float = Field(0.0, ge=0, description="fraction of missing frames")
    dropped_fail: float = Field(0.01, ge=0)
    duplicated_warn: float = Field(0.01, ge=0, description="fraction of frames identical to the previous one")
    duplicated_fail: float = Field(0.05, ge=0)
    duplicate_fraction_of_median: float = Field(
        0.1, gt=0, lt=1, description="a frame repeats the previous one below this x the median frame change")
    min_frame_change: float = Field(
        0.2, ge=0, description="grey levels; below this median change no duplicate can be told from stillness")
    frames_vs_pose_warn: int = Field(1, ge=0, description="frames of difference tolerated (rounding at the end)")
    frames_vs_pose_fail: int = Field(10, ge=0)
    drift_warn: float = Field(0.15, gt=0, description="relative change of median brightness/contrast")
    drift_fail: float = Field(0.40, gt=0)
    blur_fraction_of_median: float = Field(0.5, gt=0, lt=1, description="a frame is blurred below this x median sharpness")
    blurred_warn: float = Field(0.05, ge=0, description="fraction of blurred frames")
    blurred_fail: float = Field(0.25, ge=0)
    arena_min_fraction: float = Field(0.3, gt=0, description="arena (px) / smaller frame side, at least")
    arena_max_fraction: float = Field(1.1, gt=0, description="arena (px) / larger frame side, at most")
    analysis_width_px: int = Field(160, ge=16, description="frames are shrunk to this width for the image checks")


@dataclass
class VideoQC:
    """QC of one video: a table of checks and the worst status."""

    video: Path
    checks: pd.DataFrame  # columns: check, status, value, limit, reason
    n_frames: int = 0
    fps: float = float("nan")
    per_frame: pd.DataFrame = field(default_factory=pd.DataFrame)  # brightness, contrast, sharpness

    @property
    def status(self) -> Status:
        """The worst status of all checks."""
        if self.checks.empty:
            return "fail"
        return max(self.checks["status"], key=_ORDER.__getitem__)

    @property
    def reasons(self) -> list[str]:
        """Reasons of the checks that did not pass."""
        bad = self.checks[self.checks["status"] != "pass"]
        return [f"{c}: {r}" for c, r in zip(bad["check"], bad["reason"], strict=True)]

    def summary(self) -> dict:
        """One row for a cohort table: video, status, reasons, frames, fps."""
        return {"video": str(self.video), "qc_status": self.status, "qc_reasons": "; ".join(self.reasons),
                "n_frames": self.n_frames, "fps": self.fps}


def _grade(value: float, warn: float, fail: float) -> Status:
    if value > fail:
        return "fail"
    if value > warn:
        return "warn"
    return "pass"


def _row(rows: list, check: str, status: Status, value, limit: str, reason: str) -> None:
    rows.append({"check": check, "status": status, "value": value, "limit": limit, "reason": reason})


def _timestamp_checks(reader: VideoReader, limits: VideoQCLimits, rows: list) -> None:
    pts = np.asarray(reader._pts, dtype=float) * float(reader._time_base)  # seconds, presentation order
    header = int(getattr(reader, "n_frames_header", 0) or 0)
    if header > reader.n_frames:
        _row(rows, "truncated", "fail", header - reader.n_frames, "0 missing",
             f"the header lists {header} frames, only {reader.n_frames} are present "
             f"(frames {reader.n_frames}..{header - 1} missing)")
    else:
        _row(rows, "truncated", "pass", 0, "0 missing", "every frame the header lists is present")
    if len(pts) < 3:
        _row(rows, "frame_rate", "warn", float("nan"), "", "fewer than 3 frames: no timing check")
        return
    steps = np.diff(pts)
    median = float(np.median(steps))
    ts_fps = 1.0 / median if median > 0 else float("nan")
    container_fps = float(reader.fps)
    mismatch = abs(container_fps - ts_fps) / ts_fps if np.isfinite(ts_fps) and np.isfinite(container_fps) else 1.0
    ratio = steps / median
    dropped_gaps = ratio >= 1.5
    missing = int(np.sum(np.round(ratio[dropped_gaps]) - 1))
    irregular = (np.abs(ratio - 1) > 0.5) & ~(dropped_gaps & (np.abs(ratio - np.round(ratio)) < 0.25))
    status = max(_grade(mismatch, limits.fps_mismatch_warn, limits.fps_mismatch_fail),
                 _grade(irregular.mean(), limits.irregular_warn, limits.irregular_fail), key=_ORDER.__getitem__)
    reason = f"container {container_fps:.3f} fps, timestamps {ts_fps:.3f} fps (median interval {median * 1000:.2f} ms)"
    if irregular.any():
        first = int(np.flatnonzero(irregular)[0]) + 1
        reason += (f"; {int(irregular.sum())} irregular intervals (variable frame rate), the first before "
                   f"frame {first}: {steps[first - 1] * 1000:.1f} ms")
    _row(rows, "frame_rate", status, round(mismatch, 5), f"<= {limits.fps_mismatch_warn:g} relative", reason)
    frac = missing / (len(pts) + missing)
    reason = (f"{missing} frames missing in {int(dropped_gaps.sum())} timestamp gaps"
              + (f", the first after frame {int(np.flatnonzero(dropped_gaps)[0])}" if missing else ""))
    _row(rows, "dropped_frames", _grade(frac, limits.dropped_warn, limits.dropped_fail), missing,
         f"<= {limits.dropped_warn:g} of frames", reason)


def _image_measures(reader: VideoReader, limits: VideoQCLimits, max_frames: int | None) -> tuple[pd.DataFrame, int, str]:
    import cv2

    scale = min(1.0, limits.analysis_width_px / reader.width)
    size = (max(1, int(round(reader.width * scale))), max(1, int(round(reader.height * scale))))
    stop = reader.n_frames if max_frames is None else min(reader.n_frames, max_frames)
    bright, contrast, sharp, diff = [], [], [], []
    prev = None
    error = ""
    try:
        for _, batch in reader.iter_batches(64, stop=stop):
            for frame in batch:
                grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
                small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
                bright.append(float(small.mean()))
                contrast.append(float(small.std()))
                sharp.append(float(cv2.Laplacian(small, cv2.CV_64F).var()))
                diff.append(np.nan if prev is None else float(np.mean(cv2.absdiff(small, prev))))
                prev = small
    except VideoError as exc:
        error = str(exc)
    table = pd.DataFrame({"brightness": bright, "contrast": contrast, "sharpness": sharp, "change": diff})
    return table, stop, error


def _drift(values: np.ndarray) -> tuple[float, str]:
    """Largest relative change of a tenth's median from the first tenth's median."""
    parts = [p for p in np.array_split(values, min(10, len(values))) if len(p)]
    med = np.array([np.median(p) for p in parts])
    ref = med[0] if med[0] > 1e-6 else max(float(np.median(values)), 1e-6)
    rel = np.abs(med - med[0]) / ref
    k = int(np.argmax(rel))
    return float(rel[k]), f"first tenth {med[0]:.1f}, tenth {k + 1}: {med[k]:.1f}"


def _image_checks(table: pd.DataFrame, limits: VideoQCLimits, rows: list) -> None:
    if len(table) < 2:
        return
    change = table["change"].to_numpy()[1:]
    typical = float(np.median(change))
    if typical < limits.min_frame_change:
        _row(rows, "duplicated_frames", "pass", 0, f"<= {limits.duplicated_warn:g} of frames",
             f"consecutive frames differ by {typical:.3f} grey levels (no sensor noise): a repeated frame "
             "cannot be told from a still scene")
    else:
        dup = change < limits.duplicate_fraction_of_median * typical
        _row(rows, "duplicated_frames", _grade(float(dup.sum()) / len(table), limits.duplicated_warn, limits.duplicated_fail),
             int(dup.sum()), f"<= {limits.duplicated_warn:g} of frames",
             f"{int(dup.sum())} of {len(table)} frames repeat the previous one (change < "
             f"{limits.duplicate_fraction_of_median:g} x the median change {typical:.2f} grey levels)"
             + (f", the first at frame {int(np.flatnonzero(dup)[0]) + 1}" if dup.any() else ""))
    for name, col in (("exposure_drift", "brightness"), ("contrast_drift", "contrast")):
        rel, where = _drift(table[col].to_numpy())
        _row(rows, name, _grade(rel, limits.drift_warn, limits.drift_fail), round(rel, 4),
             f"<= {limits.drift_warn:g} relative", f"median {col} {where}")
    med = float(np.median(table["sharpness"]))
    blurred = table["sharpness"] < limits.blur_fraction_of_median * med
    frac = float(blurred.mean())
    reason = f"{int(blurred.sum())} of {len(table)} frames below {limits.blur_fraction_of_median:g} x the median sharpness {med:.1f}"
    if blurred.any():
        reason += f", the first at frame {int(np.flatnonzero(blurred.to_numpy())[0])}"
    _row(rows, "blur", _grade(frac, limits.blurred_warn, limits.blurred_fail), round(frac, 4),
         f"<= {limits.blurred_warn:g} of frames", reason)


def _arena_check(width: int, height: int, px_per_mm: float | None, arena_size_mm: float | None,
                 limits: VideoQCLimits, rows: list) -> None:
    if px_per_mm is None:
        _row(rows, "arena_calibration", "warn", float("nan"), "px/mm given",
             "no px/mm calibration: distances and speeds stay in pixels")
        return
    if not np.isfinite(px_per_mm) or px_per_mm <= 0:
        _row(rows, "arena_calibration", "fail", px_per_mm, "> 0", f"px/mm {px_per_mm} is not a positive number")
        return
    if arena_size_mm is None:
        _row(rows, "arena_calibration", "pass", px_per_mm, "", f"{px_per_mm:.4g} px/mm (no arena size to check it against)")
        return
    arena_px = px_per_mm * arena_size_mm
    lo, hi = limits.arena_min_fraction * min(width, height), limits.arena_max_fraction * max(width, height)
    ok = lo <= arena_px <= hi
    _row(rows, "arena_calibration", "pass" if ok else "fail", round(arena_px, 1), f"{lo:.0f}..{hi:.0f} px",
         f"{arena_size_mm:g} mm arena x {px_per_mm:.4g} px/mm = {arena_px:.0f} px in a {width}x{height} frame"
         + ("" if ok else ": implausible calibration"))


def check_video(
    video: str | os.PathLike,
    *,
    pose_frames: int | None = None,
    px_per_mm: float | None = None,
    arena_size_mm: float | None = None,
    limits: VideoQCLimits | None = None,
    max_frames: int | None = None,
) -> VideoQC:
    """Run every video check on one file.

    Parameters
    ----------
    video
        The video file.
    pose_frames
        Frame count of the pose file made from this video, when there is one.
    px_per_mm, arena_size_mm
        Spatial calibration and the arena's real size (side or diameter), when known.
    limits
        Pass/warn/fail limits (default :class:`VideoQCLimits`).
    max_frames
        Decode at most this many frames for the image checks (default: all).

    Returns
    -------
    VideoQC
        A check never raises for a bad video: an unreadable file is a ``fail`` row.
    """
    limits = limits or VideoQCLimits()
    video = Path(video)
    rows: list[dict] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the checks below report what the reader warns about
            reader = VideoReader(video)
    except VideoError as exc:
        _row(rows, "readable", "fail", 0, "opens", str(exc))
        return VideoQC(video, pd.DataFrame(rows))
    with reader:
        _timestamp_checks(reader, limits, rows)
        table, decoded, error = _image_measures(reader, limits, max_frames)
        if error:
            _row(rows, "readable", "fail", len(table), f"{decoded} frames decode", error)
        else:
            _row(rows, "readable", "pass", len(table), f"{decoded} frames decode", f"{len(table)} frames decoded")
        _image_checks(table, limits, rows)
        if pose_frames is not None:
            diff = int(pose_frames) - reader.n_frames
            status = _grade(abs(diff), limits.frames_vs_pose_warn, limits.frames_vs_pose_fail)
            _row(rows, "frames_vs_pose", status, diff, f"|diff| <= {limits.frames_vs_pose_warn}",
                 f"pose file {pose_frames} frames, video {reader.n_frames}")
        _arena_check(reader.width, reader.height, px_per_mm, arena_size_mm, limits, rows)
        checks = pd.DataFrame(rows)
        return VideoQC(video, checks, reader.n_frames, float(reader.fps), table)


def qc_table(results: list[VideoQC]) -> pd.DataFrame:
    """One row per video (status, reasons) for several QC results."""
    return pd.DataFrame([r.summary() for r in results])
