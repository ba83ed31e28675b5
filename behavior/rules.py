"""Rule-based behaviour states with thresholds in physical units.

Each ``detect_*`` function takes a pose Dataset (time in seconds, ``px_per_mm`` known or
passed), cleans it (low-confidence points masked and short gaps interpolated, then a short
Savitzky-Golay smoothing, all from :mod:`features.filters`), computes speeds with
:mod:`features.kinematics`, applies its rule and returns a named boolean
``DataArray`` ``(time,)`` (first individual unless ``individual=`` is given).

Keypoints are found by role (head, body, forepaws, tail base) from common DeepLabCut,
SLEAP and ethopose names (``Nose``/``snout``, ``Left Ear``/``left_ear``,
``Mid-Back``/``body_center``, ``Tailbase``/``tail_base``...), or passed explicitly.

Freezing
--------
Freezing is the absence of all movement except respiration (Fanselow 1980; Blanchard &
Blanchard 1969). It is scored when the head centroid AND the body centroid both move slower
than ``enter_speed_cm_s`` (default 1.0 cm/s) for at least half of ``min_bout_s``, extended on both sides while both stay below
``exit_speed_cm_s`` (default 2.0 cm/s: hysteresis, so the slow deceleration into and out of
a freeze that a human observer counts as part of it is not cut off), for at least
``min_bout_s`` (default 1.0 s, the conventional minimum freeze; VideoFreeze, FreezeFrame),
with gaps up to ``merge_gap_s`` (0.25 s) bridged. Speeds come from positions smoothed over
0.2 s (Savitzky-Golay, order 2): enough to average out the ~1 px frame-to-frame jitter of a
pose estimator, short enough not to blur a 1 s bout. Respiration (3-4 Hz, sub-millimetre)
moves a body point well under 1 cm/s.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import xarray as xr
from scipy import ndimage

from behavior.bouts import filter_bouts
from pose.dataset import validate_pose

logger = logging.getLogger(__name__)

Role = Literal["head", "body", "forepaws", "snout", "tail_base"]

# normalised name (lower case, letters and digits only) -> role
_ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "snout": ("nose", "snout", "head", "headtip"),
    "head": ("nose", "snout", "leftear", "rightear", "earleft", "earright", "lear",
             "head", "neck"),
    "body": ("midback", "back", "bodycenter", "bodycentre", "centroid", "center", "centre",
             "spine", "spine1", "spine2", "spine3", "midbody", "body", "tailbase", "leftleg",
             "rightleg", "lefthip", "righthip", "hip"),
    "forepaws": ("leftforepaw", "rightforepaw", "forepawleft", "forepawright", "leftfrontpaw",
                 "rightfrontpaw", "lfpaw", "rfpaw", "leftpaw", "rightpaw", "forepaw"),
    "tail_base": ("tailbase", "tail_base", "tailroot", "base_of_tail"),
}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def select_keypoints(ds: xr.Dataset, role: Role, keypoints: Sequence[str] | None = None) -> list[str]:
    """Names of the keypoints of ``ds`` that play ``role``, or check an explicit list.

    Parameters
    ----------
    ds
        Pose Dataset.
    role
        "head", "body", "forepaws", "snout" or "tail_base".
    keypoints
        Explicit names; checked against the Dataset.

    Raises
    ------
    ValueError
        When none of the keypoints can play the role (the message lists the names found
        and how to pass them explicitly).
    """
    names = [str(k) for k in ds.coords["keypoint"].values]
    if keypoints is not None:
        missing = [k for k in keypoints if k not in names]
        if missing:
            raise ValueError(f"keypoint(s) {missing} not in the pose data (has {names})")
        return list(keypoints)
    wanted = {_norm(n) for n in _ROLE_NAMES[role]}
    found = [n for n in names if _norm(n) in wanted]
    if not found:
        raise ValueError(
            f"no {role} keypoint among {names}; pass the names explicitly "
            f"(e.g. {role}_keypoints=[...])"
        )
    return found


def _px_per_cm(ds: xr.Dataset, px_per_cm: float | None) -> float:
    if px_per_cm is not None:
        if not np.isfinite(px_per_cm) or px_per_cm <= 0:
            raise ValueError(f"px_per_cm must be positive, got {px_per_cm}")
        return float(px_per_cm)
    ppm = ds.attrs.get("px_per_mm")
    if ppm is None:
        raise ValueError(
            "thresholds are in cm/s but the pose data has no spatial calibration: "
            "pass px_per_cm (e.g. --px-per-cm 32) or set attrs['px_per_mm']"
        )
    return 10.0 * float(ppm)


def clean_pose(
    ds: xr.Dataset, *, p_cutoff: float = 0.6, max_gap_s: float | None = 1.0, smooth_s: float = 0.2
) -> xr.Dataset:
    """Mask low-confidence points, interpolate gaps up to ``max_gap_s``, Savitzky-Golay smooth.

    Notes
    -----
    DeepLabCut likelihoods below ``p_cutoff`` (DeepLabCut's own default pcutoff is 0.6)
    mark points the network did not see; interpolating them avoids false speed spikes.
    """
    from features import filters

    out = filters.filter_by_confidence(ds, p_cutoff=p_cutoff)
    out = filters.interpolate_gaps(out, max_gap_s=max_gap_s)
    if smooth_s and smooth_s > 0:
        out = filters.filter_savgol(out, window_s=smooth_s, polyorder=2)
    return out


def centroid_speed_cm_s(
    ds: xr.Dataset, keypoints: Sequence[str], *, px_per_cm: float, individual: str | int = 0
) -> xr.DataArray:
    """Speed (cm/s) of the mean position of ``keypoints`` of one individual, dims ``(time,)``."""
    from features.kinematics import compute_speed

    pos = _individual(ds, individual).position.sel(keypoint=list(keypoints))
    centroid = pos.mean("keypoint", skipna=True)
    speed = compute_speed(centroid) / px_per_cm
    speed = speed.squeeze(drop=True) if speed.ndim > 1 else speed
    return speed.rename("speed_cm_s").assign_attrs(units="cm/s")


def _individual(ds: xr.Dataset, individual: str | int) -> xr.Dataset:
    if isinstance(individual, int):
        return ds.isel(individual=[individual])
    return ds.sel(individual=[individual])


def _fps(ds: xr.Dataset) -> float:
    fps = ds.attrs.get("fps")
    if fps is None:
        raise ValueError("behaviour rules need the frame rate: attrs['fps'] is not set (pass --fps)")
    return float(fps)


def extend_bouts(core: np.ndarray, permissive: np.ndarray) -> np.ndarray:
    """Hysteresis: grow each run of ``core`` over the contiguous run of ``permissive`` around it."""
    lab, _ = ndimage.label(permissive | core)
    keep = np.unique(lab[core])
    keep = keep[keep > 0]
    return np.isin(lab, keep)


def _result(values: np.ndarray, ds: xr.Dataset, name: str, params: dict) -> xr.DataArray:
    return xr.DataArray(
        values.astype(bool), dims=("time",), coords={"time": ds.coords["time"].values},
        name=name, attrs={"rule": name, **{k: str(v) if v is None else v for k, v in params.items()}},
    )


def _below(speed: xr.DataArray | np.ndarray, threshold: float) -> np.ndarray:
    v = np.asarray(getattr(speed, "values", speed), dtype=float)
    return np.isfinite(v) & (v < threshold)


def compute_head_body_speed(
    ds: xr.Dataset,
    *,
    px_per_cm: float | None = None,
    p_cutoff: float = 0.6,
    smooth_s: float = 0.2,
    head_keypoints: Sequence[str] | None = None,
    body_keypoints: Sequence[str] | None = None,
) -> xr.Dataset:
    """Speeds (cm/s) of the head and body centroids after cleaning, dims ``(time,)``.

    Returns a Dataset with ``head_speed`` and ``body_speed``; attrs name the keypoints used
    (comma-separated) and the calibration.
    """
    validate_pose(ds, require_fps=True, context="compute_head_body_speed")
    ppc = _px_per_cm(ds, px_per_cm)
    head = select_keypoints(ds, "head", head_keypoints)
    body = [k for k in select_keypoints(ds, "body", body_keypoints) if k not in head]
    if not body:
        raise ValueError(f"no body keypoint left besides the head keypoints {head}")
    clean = clean_pose(ds, p_cutoff=p_cutoff, smooth_s=smooth_s)
    return xr.Dataset(
        {"head_speed": centroid_speed_cm_s(clean, head, px_per_cm=ppc),
         "body_speed": centroid_speed_cm_s(clean, body, px_per_cm=ppc)},
        attrs={"px_per_cm": ppc, "head_keypoints": ",".join(head), "body_keypoints": ",".join(body),
               "smooth_s": smooth_s, "p_cutoff": p_cutoff},
    )


def freezing_from_speeds(
    head_speed_cm_s: np.ndarray,
    body_speed_cm_s: np.ndarray,
    *,
    fps: float,
    enter_speed_cm_s: float = 1.0,
    exit_speed_cm_s: float = 2.0,
    min_bout_s: float = 1.0,
    merge_gap_s: float = 0.25,
) -> np.ndarray:
    """The freezing rule on precomputed head and body centroid speeds, shape ``(n_frames,)``.

    Core: both below ``enter_speed_cm_s`` for >= ``min_bout_s / 2``; grown over the
    surrounding frames where both stay below ``exit_speed_cm_s``; then gaps up to
    ``merge_gap_s`` bridged and bouts shorter than ``min_bout_s`` dropped. NaN speed
    (unknown position) is never freezing.
    """
    if exit_speed_cm_s < enter_speed_cm_s:
        raise ValueError("exit_speed_cm_s must be >= enter_speed_cm_s")
    hs = np.asarray(head_speed_cm_s, dtype=float)
    bs = np.asarray(body_speed_cm_s, dtype=float)
    core = _below(hs, enter_speed_cm_s) & _below(bs, enter_speed_cm_s)
    core = filter_bouts(core, fps=fps, min_bout_s=0.5 * min_bout_s)
    permissive = _below(hs, exit_speed_cm_s) & _below(bs, exit_speed_cm_s)
    frozen = extend_bouts(core, permissive)
    return filter_bouts(frozen, fps=fps, min_bout_s=min_bout_s, merge_gap_s=merge_gap_s)


def detect_freezing(
    ds: xr.Dataset,
    *,
    enter_speed_cm_s: float = 1.0,
    exit_speed_cm_s: float = 2.0,
    min_bout_s: float = 1.0,
    merge_gap_s: float = 0.25,
    px_per_cm: float | None = None,
    p_cutoff: float = 0.6,
    head_keypoints: Sequence[str] | None = None,
    body_keypoints: Sequence[str] | None = None,
) -> xr.DataArray:
    """Freezing per frame: head and body still (see the module Notes for the reasoning).

    Parameters
    ----------
    ds
        Pose Dataset with ``fps``; positions in px.
    enter_speed_cm_s
        A freeze starts where head and body centroids both move slower than this.
    exit_speed_cm_s
        ... and lasts while both stay slower than this (>= ``enter_speed_cm_s``).
    min_bout_s, merge_gap_s
        Bouts shorter than ``min_bout_s`` are dropped after gaps up to ``merge_gap_s``
        are bridged.
    px_per_cm
        Calibration; default ``10 * attrs["px_per_mm"]``.
    p_cutoff
        Confidence below which a point is treated as missing and interpolated.
    head_keypoints, body_keypoints
        Override the automatic choice of keypoints.

    Returns
    -------
    xarray.DataArray
        Boolean ``(time,)`` named ``freezing``.

    Notes
    -----
    A frame where a centroid is unknown (long tracking loss) is not freezing.
    """
    validate_pose(ds, require_fps=True, context="detect_freezing")
    fps = _fps(ds)
    sp = compute_head_body_speed(ds, px_per_cm=px_per_cm, p_cutoff=p_cutoff,
                                 head_keypoints=head_keypoints, body_keypoints=body_keypoints)
    hs, bs = sp["head_speed"], sp["body_speed"]
    ppc, head, body = sp.attrs["px_per_cm"], sp.attrs["head_keypoints"], sp.attrs["body_keypoints"]
    frozen = freezing_from_speeds(hs.values, bs.values, fps=fps, enter_speed_cm_s=enter_speed_cm_s,
                                  exit_speed_cm_s=exit_speed_cm_s, min_bout_s=min_bout_s,
                                  merge_gap_s=merge_gap_s)
    params = {"enter_speed_cm_s": enter_speed_cm_s, "exit_speed_cm_s": exit_speed_cm_s,
              "min_bout_s": min_bout_s, "merge_gap_s": merge_gap_s, "px_per_cm": ppc,
              "p_cutoff": p_cutoff, "head_keypoints": head, "body_keypoints": body}
    return _result(frozen, ds, "freezing", params)


def detect_immobility(
    ds: xr.Dataset,
    *,
    max_speed_cm_s: float = 1.0,
    min_bout_s: float = 1.0,
    merge_gap_s: float = 0.25,
    px_per_cm: float | None = None,
    p_cutoff: float = 0.6,
    body_keypoints: Sequence[str] | None = None,
) -> xr.DataArray:
    """Immobility: the body centroid slower than ``max_speed_cm_s`` for >= ``min_bout_s``.

    Unlike freezing the head may move (sniffing, looking around, grooming).
    """
    validate_pose(ds, require_fps=True, context="detect_immobility")
    fps = _fps(ds)
    ppc = _px_per_cm(ds, px_per_cm)
    body = select_keypoints(ds, "body", body_keypoints)
    bs = centroid_speed_cm_s(clean_pose(ds, p_cutoff=p_cutoff), body, px_per_cm=ppc)
    out = filter_bouts(_below(bs, max_speed_cm_s), fps=fps, min_bout_s=min_bout_s,
                       merge_gap_s=merge_gap_s)
    return _result(out, ds, "immobility", {"max_speed_cm_s": max_speed_cm_s,
                                            "min_bout_s": min_bout_s, "px_per_cm": ppc})


def detect_locomotion(
    ds: xr.Dataset,
    *,
    min_speed_cm_s: float = 3.0,
    min_bout_s: float = 0.3,
    merge_gap_s: float = 0.2,
    px_per_cm: float | None = None,
    p_cutoff: float = 0.6,
    body_keypoints: Sequence[str] | None = None,
) -> xr.DataArray:
    """Locomotion: body centroid faster than ``min_speed_cm_s`` (default 3 cm/s).

    Notes
    -----
    Mice walk at about 5-15 cm/s; turning in place and postural adjustments move the body
    centre at 1-3 cm/s, so 3 cm/s separates translation from those.
    """
    validate_pose(ds, require_fps=True, context="detect_locomotion")
    fps = _fps(ds)
    ppc = _px_per_cm(ds, px_per_cm)
    body = select_keypoints(ds, "body", body_keypoints)
    bs = centroid_speed_cm_s(clean_pose(ds, p_cutoff=p_cutoff), body, px_per_cm=ppc)
    fast = np.isfinite(bs.values) & (bs.values > min_speed_cm_s)
    out = filter_bouts(fast, fps=fps, min_bout_s=min_bout_s, merge_gap_s=merge_gap_s)
    return _result(out, ds, "locomotion", {"min_speed_cm_s": min_speed_cm_s,
                                            "min_bout_s": min_bout_s, "px_per_cm": ppc})


def body_length_ratio(ds: xr.Dataset, *, p_cutoff: float = 0.6, individual: str | int = 0) -> xr.DataArray:
    """Snout-to-tail-base distance divided by its session median (1 = typical stretched length)."""
    snout = select_keypoints(ds, "snout")[0]
    tail = select_keypoints(ds, "tail_base")[0]
    pos = _individual(clean_pose(ds, p_cutoff=p_cutoff), individual).position
    d = np.hypot(*(pos.sel(keypoint=snout) - pos.sel(keypoint=tail)).transpose("space", ...).values)
    d = np.asarray(d).reshape(-1)
    med = np.nanmedian(d)
    return xr.DataArray(d / med, dims=("time",), coords={"time": ds.coords["time"].values},
                        name="body_length_ratio")


def detect_rearing(
    ds: xr.Dataset,
    *,
    max_length_ratio: float = 0.75,
    max_body_speed_cm_s: float = 5.0,
    min_bout_s: float = 0.3,
    merge_gap_s: float = 0.2,
    px_per_cm: float | None = None,
    p_cutoff: float = 0.6,
) -> xr.DataArray:
    """Rearing (top view): the body foreshortened while the body centre is not travelling.

    Parameters
    ----------
    max_length_ratio
        Snout-tail-base distance below this fraction of the session median.
    max_body_speed_cm_s
        The body centre moves slower than this.

    Notes
    -----
    Seen from above, a mouse standing on its hind legs looks 30-50 % shorter. A mouse
    curled while grooming also looks shorter (by 10-25 %), hence the 0.75 default. The
    session median is a good reference only when the animal spends most of the session
    on four legs.
    """
    validate_pose(ds, require_fps=True, context="detect_rearing")
    fps = _fps(ds)
    ppc = _px_per_cm(ds, px_per_cm)
    ratio = body_length_ratio(ds, p_cutoff=p_cutoff).values
    body = select_keypoints(ds, "body")
    bs = centroid_speed_cm_s(clean_pose(ds, p_cutoff=p_cutoff), body, px_per_cm=ppc).values
    rear = np.isfinite(ratio) & (ratio < max_length_ratio) & np.isfinite(bs) & (bs < max_body_speed_cm_s)
    out = filter_bouts(rear, fps=fps, min_bout_s=min_bout_s, merge_gap_s=merge_gap_s)
    return _result(out, ds, "rearing", {"max_length_ratio": max_length_ratio,
                                         "max_body_speed_cm_s": max_body_speed_cm_s})


def detect_grooming(
    ds: xr.Dataset,
    *,
    max_body_speed_cm_s: float = 1.5,
    min_head_speed_cm_s: float = 1.0,
    max_paw_snout_cm: float = 1.5,
    min_bout_s: float = 1.0,
    merge_gap_s: float = 0.5,
    px_per_cm: float | None = None,
    p_cutoff: float = 0.6,
) -> xr.DataArray:
    """Self-grooming: body still, head or forepaws moving, forepaws at the snout.

    Parameters
    ----------
    max_body_speed_cm_s
        The body centre is (nearly) still.
    min_head_speed_cm_s
        The head (or the forepaws when tracked) moves faster than this: stroking.
    max_paw_snout_cm
        Mean forepaw-snout distance below this (only when forepaws are tracked).

    Notes
    -----
    Without forepaw keypoints the rule reduces to "body still, head moving", which also
    catches sniffing in place; report it as such.
    """
    validate_pose(ds, require_fps=True, context="detect_grooming")
    fps = _fps(ds)
    ppc = _px_per_cm(ds, px_per_cm)
    clean = clean_pose(ds, p_cutoff=p_cutoff)
    head = select_keypoints(ds, "head")
    body = [k for k in select_keypoints(ds, "body") if k not in head]
    bs = centroid_speed_cm_s(clean, body, px_per_cm=ppc).values
    moving_part = head
    near = np.ones(bs.shape, dtype=bool)
    try:
        paws = select_keypoints(ds, "forepaws")
    except ValueError:
        paws = []
    if paws:
        moving_part = paws
        snout = select_keypoints(ds, "snout")[0]
        pos = _individual(clean, 0).position
        dist = np.hypot(*(pos.sel(keypoint=paws) - pos.sel(keypoint=snout)).transpose("space", ...).values)
        dist = np.nanmean(np.asarray(dist).reshape(dist.shape[0], -1), axis=1) / ppc
        near = np.isfinite(dist) & (dist < max_paw_snout_cm)
    ms = centroid_speed_cm_s(clean, moving_part, px_per_cm=ppc).values
    from scipy.ndimage import uniform_filter1d

    ms = uniform_filter1d(np.nan_to_num(ms), size=max(1, int(round(0.5 * fps))))
    groom = _below(bs, max_body_speed_cm_s) & (ms > min_head_speed_cm_s) & near
    out = filter_bouts(groom, fps=fps, min_bout_s=min_bout_s, merge_gap_s=merge_gap_s)
    return _result(out, ds, "grooming", {"max_body_speed_cm_s": max_body_speed_cm_s,
                                          "min_head_speed_cm_s": min_head_speed_cm_s,
                                          "max_paw_snout_cm": max_paw_snout_cm})


def detect_states(ds: xr.Dataset, *, px_per_cm: float | None = None) -> xr.Dataset:
    """All rule-based states with their defaults, as one Dataset of boolean ``(time,)`` vars."""
    out = {
        "freezing": detect_freezing(ds, px_per_cm=px_per_cm),
        "immobility": detect_immobility(ds, px_per_cm=px_per_cm),
        "locomotion": detect_locomotion(ds, px_per_cm=px_per_cm),
    }
    for name, fn in (("rearing", detect_rearing), ("grooming", detect_grooming)):
        try:
            out[name] = fn(ds, px_per_cm=px_per_cm)
        except ValueError as err:
            logger.warning("%s not detected: %s", name, err)
    return xr.Dataset(out)
