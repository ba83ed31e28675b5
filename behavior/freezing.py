"""Freezing that calibrates itself to each recording (thresholds in mm/s, durations in s).

Each ``detect_*`` function takes an **already-clean** pose Dataset (low-confidence points
masked, short gaps interpolated: :func:`features.filters.clean`, which the CLI and the
protocols call once; the rules do not filter again), positions in px and ``px_per_mm``
in its attrs (or passed), and returns a named boolean ``DataArray`` ``(time,)`` for one
individual. On a file with several individuals pass ``individual=``; the rules refuse to
guess (the error names the individuals).

Keypoints are found by role (head, body, forepaws, tail base) from common DeepLabCut,
SLEAP and ethopose names (``Nose``/``snout``, ``Left Ear``/``left_ear``,
``Mid-Back``/``body_center``, ``Tailbase``/``tail_base``...), or passed explicitly.

The head's (or body's) speed is that of the mean of its keypoints' velocities, each the
least-squares slope of the keypoint's track over a short window
(:func:`behavior.noise.role_speed`; the keypoints known in the frame, at least half of them):
the window is the only smoothing, and one occluded keypoint does not make the head unknown.

Freezing (methods sentence)
---------------------------
"Freezing was scored when the speeds of the head and of the body (each the mean of its
keypoints' velocities, every velocity the least-squares slope of the keypoint's position over
a window of *w* s) both stayed below *v_enter* for at least half the minimum bout, extended
over neighbouring frames while both stayed below *v_exit*, with gaps up to 0.25 s bridged;
bouts were kept when their length plus half the speed window reached 1 s (a window reaching
into the movement at either end shortens a still period by up to *w*: half of it on
average). Frames in a rearing posture (snout-tail-base length < 0.75 of its median) or,
where the forepaws were tracked, in a grooming bout (body still, forepaws within 15 mm of the
snout or nearer than 0.8 of their distance while walking, for at least 1 s:
:func:`behavior.posture.detect_grooming`) were not freezing. Before
the speeds, keypoint positions farther from their own 0.5 s running median than the larger of
5 times the keypoint's jitter and 10 mm were treated as missing (a pose model's confident
gross errors: :mod:`behavior.outliers`). *v_enter* = 10 mm/s and *v_exit* = 12.5 mm/s; *w* is the shortest window
from 0.2 s to 0.5 s at which the recording's own tracking noise alone exceeds *v_enter* in
fewer than 1 % of still frames (the jitter *sigma*: robust s.d. of the high-frequency residual
of each keypoint group in the stiller half of the frames, for the head those where the head is
in its stiller half too; the noise speed is Rayleigh
distributed with scale *sigma* fps / sqrt(S2(*w*)), S2 the slope filter's sum of squared
offsets), and where even 0.5 s does not suffice, *v_enter* and *v_exit* are raised by the
factor that restores it." The values chosen for a
recording, and why, are in the result's attrs (``calibration``) and the CLI's log.

Where the numbers come from: 10 mm/s is the physical bound (a breathing mouse's back moves
well under it); 1 % is the one noise quantile (for the window and for raising); the exit/enter
ratio 1.25 and the half-window bout correction were compared with alternatives on the
robustness sweep (``bench/freezing_robustness.py``: demo1 cells and virtual-mouse sessions;
ratios 1.15 / 1.25 / 1.5, bout corrections 0 / w/2 / w, window quantiles 0.5 / 0.9 / 0.99),
so those cells are not a fully independent test of them.

Freezing is the absence of all movement except respiration (Fanselow 1980; Blanchard &
Blanchard 1969); respiration (3-4 Hz, sub-millimetre) moves a body point well under
10 mm/s; the hysteresis keeps the slow deceleration into and out of a freeze that a human
observer counts as part of it; 1 s is the conventional minimum freeze (VideoFreeze,
FreezeFrame).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import xarray as xr
from pydantic import BaseModel, ConfigDict

from behavior.bouts import drop_short_bouts, filter_bouts, merge_gaps
from behavior.noise import choose_half_width, estimate_noise_floor, noise_speed, role_speed
from behavior.roles import (
    _below,
    _fps,
    _result,
    _warn_if_raw,
    extend_bouts,
    half_width_frames,
    resolve_px_per_mm,
    select_individual,
)
from pose.dataset import validate_pose
from pose.keypoints import select_keypoints

logger = logging.getLogger(__name__)

#: the window is the shortest, and the thresholds rise only as far as needed, for the noise
#: alone to exceed the enter threshold in fewer than 1 % of still frames
NOISE_QUANTILE = 0.99


class FreezingCalibration(BaseModel):
    """The freezing settings chosen for one recording, and why (see the module Notes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fps: float
    px_per_mm: float
    window_s: float
    window_frames: int
    enter_speed_mm_s: float
    exit_speed_mm_s: float
    min_bout_s: float
    min_run_frames: int
    merge_gap_s: float
    noise_sigma_px: dict[str, float]
    noise_speed_mm_s: dict[str, float]
    noise_speed_median_mm_s: dict[str, float]
    head_keypoints: list[str]
    body_keypoints: list[str]
    reasons: list[str]

    def summary(self) -> str:
        """One paragraph for a log: the values and the reasons."""
        return (f"freezing: speed window {self.window_s:.3f} s ({self.window_frames} frames at "
                f"{self.fps:g} fps), enter < {self.enter_speed_mm_s:.2f} mm/s, exit < "
                f"{self.exit_speed_mm_s:.2f} mm/s, min bout {self.min_bout_s:g} s (runs of >= "
                f"{self.min_run_frames} frames + half the window); jitter "
                + ", ".join(f"{k} {v:.2f} px" for k, v in self.noise_sigma_px.items())
                + f" at {self.px_per_mm:.3g} px/mm. " + " ".join(self.reasons))


def calibrate_freezing(
    ds: xr.Dataset,
    *,
    enter_speed_mm_s: float = 10.0,
    exit_speed_mm_s: float = 12.5,
    window_s: float | None = None,
    min_bout_s: float = 1.0,
    merge_gap_s: float = 0.25,
    calibrate: bool = True,
    px_per_mm: float | None = None,
    head_keypoints: Sequence[str] | None = None,
    body_keypoints: Sequence[str] | None = None,
    individual: str | int | None = None,
    min_window_s: float = 0.2,
    max_window_s: float | None = None,
) -> FreezingCalibration:
    """Choose the freezing rule's speed window and thresholds for this recording.

    Parameters
    ----------
    ds
        Clean pose Dataset (px) with ``fps``.
    enter_speed_mm_s, exit_speed_mm_s
        Physical thresholds (the floor: the noise can only raise them).
    window_s
        Fix the speed window (s) instead of choosing it from the noise.
    min_bout_s, merge_gap_s
        Bout rules (s).
    calibrate
        False: use the thresholds and ``window_s`` (default ``min_window_s``) as given.
    px_per_mm, head_keypoints, body_keypoints, individual
        Calibration and keypoint choice (see :func:`detect_freezing`).
    min_window_s, max_window_s
        The shortest (and default) and the longest speed window the noise may ask for
        (default ``max_window_s``: ``min_bout_s / 2``).

    Returns
    -------
    FreezingCalibration
    """
    validate_pose(ds, require_fps=True, context="calibrate_freezing")
    if exit_speed_mm_s < enter_speed_mm_s:
        raise ValueError("exit_speed_mm_s must be >= enter_speed_mm_s")
    fps = _fps(ds)
    ppm = resolve_px_per_mm(ds, px_per_mm)
    one = select_individual(ds, individual)
    head = select_keypoints(one, "head", head_keypoints)
    body = [k for k in select_keypoints(one, "body", body_keypoints) if k not in head]
    if not body:
        raise ValueError(f"no body keypoint left besides the head keypoints {head}")
    noise = estimate_noise_floor(one, {"head": head, "body": body})
    sigma = {k: float(v) if np.isfinite(v) else 0.0 for k, v in noise["sigma_px"].items()}
    worst = max(sigma.values())
    reasons: list[str] = []
    enter, exit_ = float(enter_speed_mm_s), float(exit_speed_mm_s)
    max_window_s = max(min_window_s, 0.5 * min_bout_s if max_window_s is None else max_window_s)
    if window_s is not None or not calibrate:
        h = half_width_frames(min_window_s if window_s is None else window_s, fps)
        reasons.append(f"window {(2 * h + 1) / fps:.3f} s " + ("given." if window_s is not None
                                                              else "(no calibration)."))
    else:
        h, _, why = choose_half_width(worst, fps=fps, px_per_mm=ppm, threshold_mm_s=enter,
                                      min_window_s=min_window_s, max_window_s=max_window_s,
                                      quantile=NOISE_QUANTILE, share=1.0)
        reasons.append(why)
    v_tail = noise_speed(worst, fps=fps, half_width=h, quantile=NOISE_QUANTILE) / ppm
    if calibrate and v_tail > enter:
        factor = v_tail / enter
        enter, exit_ = enter * factor, exit_ * factor
        reasons.append(f"thresholds raised x{factor:.2f}: even at the longest window the tracking "
                       f"noise alone exceeds the enter threshold in {100 * (1 - NOISE_QUANTILE):g} % "
                       "of still frames (slow movement may then be scored as freezing).")
    elif calibrate:
        reasons.append(f"physical thresholds kept (noise exceeds the enter threshold in < "
                       f"{100 * (1 - NOISE_QUANTILE):g} % of still frames).")
    return FreezingCalibration(
        fps=fps, px_per_mm=ppm, window_s=(2 * h + 1) / fps, window_frames=2 * h + 1,
        enter_speed_mm_s=enter, exit_speed_mm_s=exit_, min_bout_s=min_bout_s,
        min_run_frames=min_run_frames(min_bout_s, fps, 2 * h + 1), merge_gap_s=merge_gap_s,
        noise_sigma_px=sigma, noise_speed_mm_s={k: noise_speed(s, fps=fps, half_width=h) / ppm
                                                for k, s in sigma.items()},
        noise_speed_median_mm_s={k: noise_speed(s, fps=fps, half_width=h, quantile=0.5) / ppm
                                 for k, s in sigma.items()},
        head_keypoints=head, body_keypoints=body, reasons=reasons)


def min_run_frames(min_bout_s: float, fps: float, window_frames: int = 1) -> int:
    """Shortest run (frames) that counts as a ``min_bout_s`` bout with a ``window_frames`` speed window.

    A slope window reaching into the movement at either end of a still period shortens its
    run below threshold by up to ``window_frames - 1`` frames; the test allows half of that
    (the average loss): ``round(min_bout_s * fps) - (window_frames - 1) // 2``, at least 1.
    """
    return max(1, int(round(min_bout_s * fps)) - (int(window_frames) - 1) // 2)


def freezing_from_speeds(
    head_speed_mm_s: np.ndarray,
    body_speed_mm_s: np.ndarray,
    *,
    fps: float,
    enter_speed_mm_s: float = 10.0,
    exit_speed_mm_s: float = 12.5,
    min_bout_s: float = 1.0,
    merge_gap_s: float = 0.25,
    window_frames: int = 1,
) -> np.ndarray:
    """The freezing rule on precomputed head and body speeds, shape ``(n_frames,)``.

    Core: both below ``enter_speed_mm_s`` for >= ``min_bout_s / 2``; grown over the
    surrounding frames where both stay below ``exit_speed_mm_s``; then gaps up to
    ``merge_gap_s`` bridged and bouts shorter than :func:`min_run_frames` dropped
    (``window_frames``: the speeds' window, 1 = no correction). NaN speed (unknown
    position) is never freezing.
    """
    if exit_speed_mm_s < enter_speed_mm_s:
        raise ValueError("exit_speed_mm_s must be >= enter_speed_mm_s")
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    hs = np.asarray(head_speed_mm_s, dtype=float)
    bs = np.asarray(body_speed_mm_s, dtype=float)
    core = _below(hs, enter_speed_mm_s) & _below(bs, enter_speed_mm_s)
    core = filter_bouts(core, fps=fps, min_bout_s=0.5 * min_bout_s)
    permissive = _below(hs, exit_speed_mm_s) & _below(bs, exit_speed_mm_s)
    frozen = merge_gaps(extend_bouts(core, permissive), max_gap_frames=int(round(merge_gap_s * fps)))
    return drop_short_bouts(frozen, min_frames=min_run_frames(min_bout_s, fps, window_frames))


def detect_freezing(
    ds: xr.Dataset,
    *,
    enter_speed_mm_s: float = 10.0,
    exit_speed_mm_s: float = 12.5,
    window_s: float | None = None,
    min_bout_s: float = 1.0,
    merge_gap_s: float = 0.25,
    calibrate: bool = True,
    px_per_mm: float | None = None,
    head_keypoints: Sequence[str] | None = None,
    body_keypoints: Sequence[str] | None = None,
    individual: str | int | None = None,
    rearing_length_ratio: float | None = 0.75,
    grooming_paw_snout_mm: float | None = 15.0,
    grooming_head_length_ratio: float | None = None,
    gross_error_min_mm: float | None = 10.0,
) -> xr.DataArray:
    """Freezing per frame: head and body still, thresholds calibrated to the recording.

    Parameters
    ----------
    ds
        Clean pose Dataset (px) with ``fps`` (see the module docstring).
    enter_speed_mm_s
        A freeze starts where head and body centroids both move slower than this
        (raised only when the recording's tracking noise needs it).
    exit_speed_mm_s
        ... and lasts while both stay slower than this (>= ``enter_speed_mm_s``).
    window_s
        Speed window (s); default chosen from the noise (0.2-0.5 s).
    min_bout_s, merge_gap_s
        Bouts shorter than ``min_bout_s`` (less half the speed window, which shortens a
        still period's run: :func:`min_run_frames`) are dropped after gaps up to
        ``merge_gap_s`` are bridged.
    calibrate
        False: thresholds and window exactly as given (no noise floor).
    px_per_mm
        Calibration; default ``attrs["px_per_mm"]``.
    head_keypoints, body_keypoints
        Override the automatic choice of keypoints.
    individual
        Name or index (required when the file has several individuals).
    rearing_length_ratio
        Frames in a rearing posture (snout-tail-base length, averaged over 0.2 s, below this
        fraction of its session median: :func:`behavior.posture.rearing_posture`) are not
        freezing: a mouse standing on its hind legs holds itself up. None: not tested.
    grooming_paw_snout_mm
        When forepaws are tracked, frames of a grooming bout (:func:`behavior.posture.detect_grooming`
        with this forepaw-snout distance; not rearing) are not freezing: a grooming mouse
        strokes at 3-5 Hz, faster than a 0.2-0.5 s speed window can follow. None: not tested.
    grooming_head_length_ratio
        The grooming rule's head-bowed cue (snout-ear-midpoint distance below this fraction
        of its median while walking): a top-view pose model often cannot see the forepaws
        under the head (:func:`behavior.posture.grooming_posture`). None (default): paws
        only; the cue is opt-in (see :func:`behavior.posture.detect_grooming`).
    gross_error_min_mm
        Before anything else, positions farther from their keypoint's 0.5 s running median
        than the larger of 5 x its jitter and this distance (mm) are treated as missing
        (:func:`behavior.outliers.reject_gross_errors`: a pose model's confident gross
        errors, which a confidence mask lets through). None: not applied.

    Returns
    -------
    xarray.DataArray
        Boolean ``(time,)`` named ``freezing``; ``attrs["calibration"]`` (JSON) holds the
        chosen values with their reasons (:class:`FreezingCalibration`).

    Notes
    -----
    A frame where a centroid is unknown (long tracking loss) is not freezing.
    """
    gross: dict = {}
    if gross_error_min_mm is not None:
        ds, gross = _without_gross_errors(ds, individual=individual, px_per_mm=px_per_mm,
                                          min_mm=gross_error_min_mm)
        individual = None
    cal = calibrate_freezing(ds, enter_speed_mm_s=enter_speed_mm_s, exit_speed_mm_s=exit_speed_mm_s,
                             window_s=window_s, min_bout_s=min_bout_s, merge_gap_s=merge_gap_s,
                             calibrate=calibrate, px_per_mm=px_per_mm, head_keypoints=head_keypoints,
                             body_keypoints=body_keypoints, individual=individual)
    one = select_individual(ds, individual)
    _warn_if_raw(ds, "detect_freezing")
    h = (cal.window_frames - 1) // 2
    pos = one.position.isel(individual=0).transpose("time", "space", "keypoint")
    hs, bs = (role_speed(pos.sel(keypoint=kps).values, fps=cal.fps, half_width=h) / cal.px_per_mm
              for kps in (cal.head_keypoints, cal.body_keypoints))
    rearing = np.zeros(hs.shape, bool)
    if rearing_length_ratio is not None:
        from behavior.posture import rearing_posture

        try:
            rearing = rearing_posture(one, max_length_ratio=rearing_length_ratio)
        except ValueError as err:  # no snout or tail base: the posture test is skipped
            logger.info("freezing: rearing posture not tested (%s)", err)
    grooming = np.zeros(hs.shape, bool)
    if grooming_paw_snout_mm is not None:
        from behavior.posture import detect_grooming

        try:  # grooming bouts (>= 1 s): a noisy posture frame alone does not cut a freeze
            grooming = detect_grooming(one, px_per_mm=cal.px_per_mm, max_paw_snout_mm=grooming_paw_snout_mm,
                                       max_head_length_ratio=grooming_head_length_ratio).values & ~rearing
        except ValueError as err:  # no forepaws tracked (the usual fear-conditioning set)
            logger.info("freezing: grooming posture not tested (%s)", err)
    hs = np.where(rearing | grooming, np.nan, hs)
    frozen = freezing_from_speeds(hs, bs, fps=cal.fps, enter_speed_mm_s=cal.enter_speed_mm_s,
                                  exit_speed_mm_s=cal.exit_speed_mm_s, min_bout_s=cal.min_bout_s,
                                  merge_gap_s=cal.merge_gap_s, window_frames=cal.window_frames)
    logger.info("%s", cal.summary())
    params = {k: v for k, v in cal.model_dump().items() if not isinstance(v, dict) and k != "reasons"}
    params["calibration"] = cal.model_dump_json()
    params["rearing_length_ratio"] = rearing_length_ratio
    params["rearing_frames_excluded"] = int(rearing.sum())
    params["grooming_paw_snout_mm"] = grooming_paw_snout_mm
    params["grooming_head_length_ratio"] = grooming_head_length_ratio
    params["grooming_frames_excluded"] = int(grooming.sum())
    params["gross_error_min_mm"] = gross_error_min_mm
    params["gross_errors_rejected"] = int(gross.get("rejected", 0))
    params["gross_error_rule"] = str(gross.get("rule", "not applied"))
    return _result(frozen, one, "freezing", params)


def _without_gross_errors(ds: xr.Dataset, *, individual: str | int | None, px_per_mm: float | None,
                          min_mm: float) -> tuple[xr.Dataset, dict]:
    """One individual's pose with :func:`behavior.outliers.reject_gross_errors` applied."""
    from behavior.outliers import without_gross_errors

    validate_pose(ds, require_fps=True, context="detect_freezing")
    one = select_individual(ds, individual)
    return without_gross_errors(one, fps=_fps(one), px_per_mm=resolve_px_per_mm(one, px_per_mm), min_mm=min_mm)


