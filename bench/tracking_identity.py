"""Identity tracking on the virtual mice: IDF1 and identity switches per 10 minutes.

Run (the table in bench/results/tracking_identity.md comes from this command)::

    python3 bench/tracking_identity.py --grid-seconds 120 --long-seconds 600 \
        --out bench/results/tracking_identity.md

What is measured: :func:`pose.synthetic.social.simulate_social` moves 2 or 3 mice with
frequent close contacts (approach, nose-to-body contact, following, one mouse running over
another); :func:`pose.synthetic.social.simulate_detections` turns the exact poses into what a
multi-animal pose network outputs (keypoint noise, confidence dropouts with wrong peaks,
missing instances, occlusion of the lower mouse, parts taken from the other mouse in contact)
and SHUFFLES THE INSTANCE ORDER IN EVERY FRAME. No network is trained here: the tracker sees
simulated detections, not a model's predictions on rendered video.
:func:`pose.tracking.track_identities` then links them (default settings, derived from the
data; ``--n-animals`` given as in a closed arena). Metrics by motmetrics
(:func:`pose.tracking.identity_metrics`) over the animals that were detected in each frame
(``idf1``), and over all animals (``idf1_all``: the detector's misses count too).

Baseline in the same run: frame-to-frame Hungarian matching of instance centroids (no motion
model, no keypoint cost, no coasting), the simplest tracker; ``vs_baseline`` = switches of
the baseline / switches of the tracker.

Coat (``--coat-seconds``, 0 = skip): the grid is pose-only, where the coat cannot matter. The
coat part renders 2-mouse videos (320x240) with the same coat (black, black) and with two
coats (black, agouti), simulates detections on the rendered truth (high noise) and tracks
them without and with the appearance cue sampled from the video
(:func:`pose.tracking.appearance.sample_appearance`; the tracker uses it only when it
separates the animals).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment

from pose.dataset import frame_numbers, from_numpy
from pose.synthetic.social import (
    DetectionNoise,
    detected_individuals,
    simulate_detections,
    simulate_social,
)
from pose.tracking import (
    TrackingConfig,
    detect_swap_suspects,
    estimate_n_animals,
    identity_metrics,
    instance_centroids,
    summarize_identity_quality,
    suspects_cover,
    track_identities,
)


def centroid_baseline(det: xr.Dataset) -> xr.Dataset:
    """Frame-to-frame Hungarian matching of centroids to the previous frame's (the baseline)."""
    pos, conf = det.position.values, det.confidence.values
    cent = instance_centroids(pos[:, :2], conf).transpose(0, 2, 1)  # (time, I, 2)
    n_t, n_i = cent.shape[:2]
    order = np.tile(np.arange(n_i), (n_t, 1))
    last = cent[0].copy()
    for t in range(1, n_t):
        c = np.nan_to_num(cent[t], nan=1e6)
        ref = np.nan_to_num(last, nan=-1e6)
        rows, cols = linear_sum_assignment(np.linalg.norm(ref[:, None] - c[None], axis=2))
        order[t, rows] = cols
        new = cent[t][order[t]]
        last = np.where(np.isnan(new), last, new)
    out = np.take_along_axis(pos, order[:, None, None, :], axis=3)
    return from_numpy(out, np.take_along_axis(conf, order[:, None, :], axis=2), fps=det.attrs["fps"])


def run_one(seconds: float, n_animals: int, level: str, seed: int, open_set: bool = True,
            extras: bool = True) -> dict:
    """One run; ``extras=False`` skips idf1_all and the baseline (NaN), e.g. for long runs
    on a busy machine."""
    truth = simulate_social(seconds, seed=seed, n_animals=n_animals)
    det, source = simulate_detections(truth.pose, DetectionNoise.preset(level), seed=seed)
    present = detected_individuals(det, source)
    c0 = time.process_time()
    res = track_identities(det, TrackingConfig(n_animals=n_animals))
    cpu = time.process_time() - c0
    m = identity_metrics(truth.pose, res.pose, present=present, with_switch_frames=True)
    nan = {"idf1": np.nan, "switches_per_10_min": np.nan}
    m_all = identity_metrics(truth.pose, res.pose) if extras else nan
    suspects = detect_swap_suspects(res.pose)
    quality = summarize_identity_quality(res.pose, suspects)
    switches = m["switch_rows"]
    half_s = int(round(0.5 * truth.pose.attrs["fps"]))
    # the default run (no --n-animals): the count is estimated; the same count tracks the same
    n_valid = (~np.isnan(det.position.values[:, :2]).any(axis=1)).sum(axis=1)
    est = estimate_n_animals(n_valid >= res.settings.min_keypoints).n_animals
    if est == n_animals:
        m_est = m
    else:
        m_est = identity_metrics(truth.pose, track_identities(det, TrackingConfig()).pose, present=present)
    m_open = (identity_metrics(truth.pose, track_identities(det, TrackingConfig(open_set=True)).pose,
                               present=present) if open_set else {"idf1": np.nan, "switches_per_10_min": np.nan})
    base = identity_metrics(truth.pose, centroid_baseline(det), present=present) if extras else nan
    minutes = seconds / 60.0
    close = np.linalg.norm(np.diff(truth.pose.position.sel(keypoint="body_center").values[:, :, :2], axis=2),
                           axis=1) if n_animals == 2 else None
    return {
        "animals": n_animals, "noise": level, "seed": seed, "minutes": minutes,
        "contacts_per_min": float((truth.interactions.kind == "contact").sum() / minutes),
        "close_fraction": float(np.mean(close[:, 0] < 93 * truth.pose.attrs["px_per_mm"])) if close is not None else np.nan,
        "idf1": m["idf1"], "idf1_all": m_all["idf1"], "switches": m["num_switches"],
        "switches_per_10_min": m["switches_per_10_min"],
        "baseline_idf1": base["idf1"], "baseline_switches_per_10_min": base["switches_per_10_min"],
        "track_cpu_s_per_min": cpu / minutes,
        "estimated_n": est if est is not None else 0, "estimated_idf1": m_est["idf1"],
        "estimated_switches_per_10_min": m_est["switches_per_10_min"],
        "open_set_idf1": m_open["idf1"], "open_set_switches_per_10_min": m_open["switches_per_10_min"],
        "low_conf_frames_pct": quality["low_confidence_frames_pct"],
        "low_margin_per_min": quality["low_margin_events_per_min"],
        "identity_quality": quality["identity_quality"],
        "switches_in_suspects": suspects_cover(switches, suspects, frame_numbers(res.pose), half_s),
    }


def run_coat(seconds: float, coats: tuple[str, str], seed: int, workdir: Path) -> dict:
    from pose.synthetic.social import render_social
    from pose.tracking.appearance import sample_appearance

    s = render_social(workdir / f"{'_'.join(coats)}_{seed}", seconds=seconds, seed=seed, coats=coats,
                      width=320, height=240, n_label_frames=0)
    det, source = simulate_detections(s.pose, DetectionNoise.preset("high"), seed=seed)
    present = detected_individuals(det, source)
    row = {"coats": "/".join(coats), "seed": seed, "minutes": seconds / 60.0}
    app = sample_appearance(s.video_path, det)
    for name, appearance in (("pose_only", None), ("with_video", app)):
        res = track_identities(det, TrackingConfig(n_animals=2), appearance)
        m = identity_metrics(s.pose, res.pose, present=present)
        row[f"{name}_idf1"] = m["idf1"]
        row[f"{name}_switches"] = m["num_switches"]
        if appearance is not None:
            row["appearance_weight"] = res.settings.appearance_weight
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid-seconds", type=float, default=120.0, help="0: no grid")
    parser.add_argument("--long-seconds", type=float, default=600.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="grid seeds")
    parser.add_argument("--long-seeds", type=int, nargs="+", default=None,
                        help="seeds of the 10-minute runs (default: --seeds)")
    parser.add_argument("--coat-seconds", type=float, default=60.0)
    parser.add_argument("--lean", action="store_true",
                        help="long runs without idf1_all and the centroid baseline (a busy machine)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/tracking_identity.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    long_seeds = args.long_seeds if args.long_seeds is not None else args.seeds
    rows: list[dict] = []
    coat_rows: list[dict] = []
    t0 = time.perf_counter()
    import tempfile

    for n_animals in (2, 3) if args.grid_seconds > 0 else ():
        for level in ("low", "medium", "high"):
            for seed in args.seeds:
                rows.append({**run_one(args.grid_seconds, n_animals, level, seed), "part": "grid"})
                print(rows[-1], flush=True)
                write_report(args, rows, coat_rows, long_seeds, t0)
    for seed in long_seeds:  # the done-when: 2 same-coat mice, 10 min, medium noise
        rows.append({**run_one(args.long_seconds, 2, "medium", seed, open_set=False, extras=not args.lean),
                     "part": "long"})
        print(rows[-1], flush=True)
        write_report(args, rows, coat_rows, long_seeds, t0)
    if args.coat_seconds > 0:
        with tempfile.TemporaryDirectory() as tmp:
            for seed in args.seeds[:1]:
                for coats in (("black", "black"), ("black", "agouti")):
                    coat_rows.append(run_coat(args.coat_seconds, coats, seed, Path(tmp)))
                    print(coat_rows[-1], flush=True)
                    write_report(args, rows, coat_rows, long_seeds, t0)
    print(write_report(args, rows, coat_rows, long_seeds, t0, final=True))


def write_report(args: argparse.Namespace, rows: list[dict], coat_rows: list[dict],
                 long_seeds: list[int], t0: float, final: bool = False) -> str:
    """Write the markdown table (after every run, so a partial run leaves its numbers)."""
    import pandas as pd

    df = pd.DataFrame(rows)
    cols = ["animals", "noise", "seed", "minutes", "contacts_per_min", "close_fraction", "idf1", "idf1_all", "switches",
            "switches_per_10_min", "baseline_idf1", "baseline_switches_per_10_min", "track_cpu_s_per_min",
            "low_conf_frames_pct", "low_margin_per_min", "identity_quality", "switches_in_suspects"]
    count_cols = ["animals", "noise", "seed", "estimated_n", "estimated_idf1", "estimated_switches_per_10_min",
                  "open_set_idf1", "open_set_switches_per_10_min"]
    long = df[df.part == "long"][cols]
    grid = df[df.part == "grid"]
    summary = grid.groupby(["animals", "noise"], sort=False).agg(
        idf1_min=("idf1", "min"), idf1_mean=("idf1", "mean"), idf1_all_mean=("idf1_all", "mean"),
        switches_per_10_min_max=("switches_per_10_min", "max"),
        baseline_idf1_mean=("baseline_idf1", "mean"),
        baseline_switches_per_10_min_mean=("baseline_switches_per_10_min", "mean"),
        open_set_idf1_min=("open_set_idf1", "min"),
        open_set_switches_per_10_min_max=("open_set_switches_per_10_min", "max"),
        unreliable_runs=("identity_quality", lambda q: int((q != "ok").sum()))).reset_index()
    worst = grid.sort_values(["idf1"]).iloc[0] if len(grid) else None
    lines = [
        "# Identity tracking on the virtual mice (simulated detections, instance order shuffled per frame)",
        "",
        f"Command: `python3 bench/tracking_identity.py --grid-seconds {args.grid_seconds:g} "
        f"--long-seconds {args.long_seconds:g} --coat-seconds {args.coat_seconds:g} "
        f"--seeds {' '.join(map(str, args.seeds))} --long-seeds {' '.join(map(str, long_seeds))}"
        f"{' --lean' if args.lean else ''}` "
        f"({time.perf_counter() - t0:.0f} s wall on the shared machine"
        f"{'' if final else '; PARTIAL: the run was still going'}).",
        "",
        "Detections are SIMULATED from the exact poses (noise, dropouts, misses, occlusion, part mixing),",
        "not predicted by a trained multi-animal network (none can be trained in this session).",
        "The tracker is pose-only: same and different coats give identical detections, so coat is not a",
        "factor here. `idf1`: over the animals detected in each frame; `idf1_all`: over all animals.",
        "Baseline: frame-to-frame Hungarian matching of centroids.",
        "",
        f"## Done-when: 2 same-coat mice, {args.long_seconds / 60:g} min, medium noise",
        "",
        long.to_markdown(index=False, floatfmt=".4f"),
        "",
        "" if not len(long) else
        f"Worst {args.long_seconds / 60:g}-minute run: seed {int(long.sort_values('switches').iloc[-1].seed)}, "
        f"{long.switches.max():g} switches (bar: <= 1 per 10 min on every seed); IDF1 min {long.idf1.min():.4f}.",
        "",
        f"## Grid: {args.grid_seconds / 60:g} min per run, seeds {args.seeds}",
        "",
        summary.to_markdown(index=False, floatfmt=".4f"),
        "",
        "" if worst is None else
        f"Worst run: {int(worst.animals)} animals, {worst.noise} noise, seed {int(worst.seed)}: "
        f"IDF1 {worst.idf1:.4f}, {worst.switches_per_10_min:.2f} switches per 10 min.",
        "",
        f"## Coat: 2 mice, rendered {args.coat_seconds / 60:g} min videos, high detection noise",
        "",
        pd.DataFrame(coat_rows).to_markdown(index=False, floatfmt=".4f") if coat_rows else "(skipped)",
        "",
        "### All grid runs",
        "",
        grid[cols].to_markdown(index=False, floatfmt=".4f") if len(grid) else "",
        "",
        "### Animal count: estimated (no --n-animals) and open set (--open-set)",
        "",
        df[count_cols + ["part"]].to_markdown(index=False, floatfmt=".4f") if len(df) else "",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
