"""A synthetic open-field cohort with a known group difference (for tests, demos, benchmarks).

:func:`write_synthetic_cohort` simulates virtual mice with
:func:`pose.synthetic.openfield.simulate_open_field` (no rendering), writes each one's pose
(``.nc``) and ``arena.json``, the cohort table, and ``truth.csv``: the endpoints measured
on the exact simulated body-centre track (no filtering), against which a run's numbers
can be checked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pose.atomic import atomic_path, write_text_atomic

Defect = Literal["truncated", "wrong_fps", "bad_tracking"]

#: Default groups: the "treated" mice move faster (speed_scale 1.5) and prefer the centre.
DEFAULT_GROUPS: dict[str, dict[str, float]] = {
    "control": {"speed_scale": 1.0, "center_preference": 0.2, "dose": 0.0},
    "treated": {"speed_scale": 1.5, "center_preference": 0.6, "dose": 1.0},
}


def _play_faster(pose, factor: float):
    """The same movements played ``factor`` times faster: every speed times ``factor``."""
    if factor == 1.0:
        return pose
    out = pose.assign_coords(time=pose["time"].values / factor)
    out.attrs = dict(pose.attrs, fps=float(pose.attrs["fps"]) * factor)
    return out


def _damage(pose, defect: str, rng: np.random.Generator):
    """A damaged copy of a pose for :func:`write_synthetic_cohort`'s ``defects``."""
    if defect == "truncated":
        n = pose.sizes["time"]
        out = pose.isel(time=slice(0, int(0.3 * n))).copy()
        out.attrs.update(video_truncated=True, n_frames_expected=int(n), n_frames_read=int(0.3 * n))
        return out
    if defect == "wrong_fps":
        return pose
    if defect != "bad_tracking":
        raise ValueError(f"unknown defect {defect!r}; use 'truncated', 'wrong_fps' or 'bad_tracking'")
    out = pose.copy(deep=True)
    n, fps = out.sizes["time"], float(out.attrs["fps"])
    low = np.zeros(n, bool)
    while low.mean() < 0.6:
        start, length = rng.integers(0, n), int(rng.uniform(0.2, 2.0) * fps)
        low[start:start + length] = True
    conf = out["confidence"].values
    conf[low] = 0.1
    out["confidence"] = (out["confidence"].dims, conf)
    pos = out["position"].values
    k = list(out.coords["keypoint"].values).index("body_center")
    jumps = rng.choice(np.flatnonzero(~low), size=max(1, int(0.01 * n)), replace=False)
    pos[jumps, 0, k, :] += 200.0
    out["position"] = (out["position"].dims, pos)
    return out


def _truth_endpoints(pose, arena: dict, fps: float, smooth_s: float = 0.1) -> dict[str, float]:
    c = pose["position"].sel(keypoint="body_center").isel(individual=0).values  # (time, space)
    ppm = float(arena["px_per_mm"])
    w = max(1, int(round(smooth_s * fps)) | 1)  # odd moving-average window
    kernel = np.ones(w) / w
    cs = np.column_stack([np.convolve(np.pad(c[:, i], w // 2, mode="edge"), kernel, mode="valid")
                          for i in range(2)])
    v = np.linalg.norm(np.gradient(cs, 1.0 / fps, axis=0), axis=1) / ppm
    (x0, y0), (x1, y1) = arena["zones"]["center"]["vertices_px"][0], arena["zones"]["center"]["vertices_px"][2]
    inside = (c[:, 0] > x0) & (c[:, 0] < x1) & (c[:, 1] > y0) & (c[:, 1] < y1)
    return {"true_mean_speed_mm_s": float(v.mean()), "true_centre_time_pct": float(100 * inside.mean())}


def write_synthetic_cohort(
    folder: str | Path,
    *,
    n_per_group: int = 4,
    seconds: float = 60.0,
    fps: float = 30.0,
    groups: Mapping[str, Mapping[str, float]] | None = None,
    seed: int = 0,
    defects: Mapping[str, Defect] | None = None,
) -> Path:
    """Simulate a cohort and write its pose files, cohort csv and truth table.

    Parameters
    ----------
    folder
        Output folder; gets ``<subject>/pose.nc``, ``<subject>/arena.json``,
        ``cohort.csv`` and ``truth.csv``.
    n_per_group
        Animals per group.
    seconds, fps
        Session length and frame rate.
    groups
        ``group -> {"speed_scale", "center_preference", "speed_factor", "dose"}``;
        ``speed_scale`` and ``center_preference`` go to
        :func:`pose.synthetic.openfield.simulate_open_field`; ``speed_factor`` plays the
        simulated session back that many times faster (frame rate times the factor), which
        multiplies every speed exactly (default 1). Default :data:`DEFAULT_GROUPS`.
    seed
        Base seed; animal ``i`` uses ``seed + i``.
    defects
        ``subject_id -> defect`` for QC tests: ``"truncated"`` (only the first 30 % of the
        frames, marked ``video_truncated`` as pose inference marks a cut-off video),
        ``"wrong_fps"`` (the cohort's fps column says twice the file's), ``"bad_tracking"``
        (the body parts' confidence drops below 0.5 in 60 % of the frames, in bursts of
        0.2-2 s, and the centre jumps 200 px in 1 % of the frames). The truth table is
        that of the clean simulation.

    Notes
    -----
    The true speed is measured on the exact track after a centred moving average over
    0.1 s: the virtual mouse's body centre carries a frame-to-frame oscillation (lag-1
    autocorrelation of its steps about -0.5) that raw frame differences count as speed.
    ``truth.csv`` is always measured on the exact track that is written.

    Returns
    -------
    pathlib.Path
        The cohort csv.
    """
    from pose.io import save
    from pose.synthetic.openfield import simulate_open_field

    folder = Path(folder)
    groups = dict(groups or DEFAULT_GROUPS)
    rows, truth = [], []
    i = 0
    for g, params in groups.items():
        for j in range(n_per_group):
            sid = f"{g[:4]}{j + 1:02d}"
            factor = float(params.get("speed_factor", 1.0))
            tr = simulate_open_field(seconds * factor, fps=fps, seed=seed + i,
                                     speed_scale=float(params.get("speed_scale", 1.0)),
                                     center_preference=float(params.get("center_preference", 0.3)))
            pose = _play_faster(tr.pose, factor)
            defect = (defects or {}).get(sid)
            pose_out = _damage(pose, defect, np.random.default_rng(seed + 1000 + i)) if defect else pose
            sub = folder / sid
            sub.mkdir(parents=True, exist_ok=True)
            with atomic_path(sub / "pose.nc") as tmp:
                save(pose_out, tmp)
            write_text_atomic(sub / "arena.json", json.dumps(tr.arena, indent=1))
            rows.append({"subject_id": sid, "group": g, "dose": params.get("dose", ""),
                         "sex": "F" if j % 2 else "M", "session": 1, "pose_path": f"{sid}/pose.nc",
                         "fps": 2 * fps * factor if defect == "wrong_fps" else ""})
            truth.append({"subject_id": sid, "group": g, **_truth_endpoints(pose, tr.arena, fps * factor)})
            i += 1
    with atomic_path(folder / "truth.csv") as tmp:
        pd.DataFrame(truth).to_csv(tmp, index=False)
    table = pd.DataFrame(rows)
    if not (table["fps"] != "").any():
        table = table.drop(columns="fps")
    with atomic_path(folder / "cohort.csv") as tmp:
        table.to_csv(tmp, index=False)
    return folder / "cohort.csv"
