"""Freezing on BehaviorDEPOT demo1 vs the human: defaults, then a sensitivity grid.

Run: ``python3 bench/freezing_demo1.py`` (needs ``../shared/data``; ~30 s on 2 cores).

Prints Cohen's kappa against the human vector for ethopose's default (self-calibrating) rule and for
BehaviorDEPOT's own classifier (baseline, same run), then kappa over a grid of the rule's
thresholds (enter speed x exit speed, smoothing window, minimum bout, confidence cutoff),
so one can see whether the default sits on a plateau or a knife edge.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project, not bench/<name>.py, for `import features`
DEMO1 = ROOT.parent / "shared" / "data" / "behaviordepot-freezing" / "demo1"


def main() -> int:
    if not DEMO1.is_dir():
        print(f"skip: {DEMO1} is absent")
        return 0
    import pose.io
    from behavior.agreement import cohen_kappa
    from behavior.annotations import load_behaviordepot
    from behavior.freezing import detect_freezing
    from behavior.noise import slope_speed
    from behavior.roles import centroid_track, clean_for_rules
    from behavior.rules import freezing_from_speeds

    raw = pose.io.load(DEMO1 / "demo1_tracking.csv", fps=50)
    raw.attrs["px_per_mm"] = 3.2
    ds = clean_for_rules(raw)
    human = load_behaviordepot(DEMO1 / "hB_demo1_manual_annotations.mat")["Freezing"].to_numpy()
    bdepot = load_behaviordepot(DEMO1 / "behaviordepot_behavior_output.mat")["Freezing"].to_numpy()
    t0 = time.perf_counter()
    ours = detect_freezing(ds).values
    dt = time.perf_counter() - t0
    print("demo1 (6000 frames, 50 fps, 32 px/cm), Cohen's kappa vs the human scorer")
    print(f"  ethopose defaults          {cohen_kappa(human, ours):.4f}   ({dt:.2f} s)")
    print(f"  BehaviorDEPOT (baseline)   {cohen_kappa(human, bdepot):.4f}")
    from pose.dataset import from_numpy

    print("same video subsampled (emulates a held-out video at a lower frame rate), defaults:")
    for step in (2, 3, 5):
        sub = ds.isel(time=slice(0, None, step))
        lo = from_numpy(sub.position.values, sub.confidence.values,
                        keypoints=[str(k) for k in ds.keypoint.values], fps=50 / step, px_per_mm=3.2)
        k = cohen_kappa(human[::step], detect_freezing(lo).values)
        print(f"  {50 / step:5.1f} fps                 {k:.4f}")

    rows = []
    head, body = ["Nose", "Left Ear", "Right Ear"], ["Tailbase", "Left Leg", "Right Leg", "Mid-Back"]
    for smooth_s, p_cut in itertools.product([0.1, 0.2, 0.3, 0.4], [0.6, 0.9]):
        c = clean_for_rules(raw, p_cutoff=p_cut).isel(individual=[0])
        h = max(1, int(round((smooth_s * 50 - 1) / 2)))
        hs, bs = (slope_speed(centroid_track(c, kps), fps=50, half_width=h) / 3.2 for kps in (head, body))
        for enter, ratio, min_bout in itertools.product(
            [0.5, 0.75, 1.0, 1.25, 1.5], [1.0, 1.5, 2.0, 2.5, 3.0], [0.75, 1.0, 1.25]
        ):
            pred = freezing_from_speeds(hs, bs, fps=50, enter_speed_mm_s=10 * enter,
                                        exit_speed_mm_s=10 * enter * ratio, min_bout_s=min_bout)
            rows.append({"smooth_s": smooth_s, "p_cutoff": p_cut, "enter_cm_s": enter,
                         "exit_ratio": ratio, "min_bout_s": min_bout,
                         "kappa": cohen_kappa(human, pred)})
    grid = pd.DataFrame(rows)
    pd.set_option("display.width", 140)
    base = grid[(grid.p_cutoff == 0.6) & (grid.min_bout_s == 1.0) & (grid.smooth_s == 0.2)]
    print("\nkappa, smoothing 0.2 s, p_cutoff 0.6, min bout 1.0 s: enter speed (rows) x exit/enter (cols)")
    print(base.pivot(index="enter_cm_s", columns="exit_ratio", values="kappa").round(3).to_string())
    at = grid[(grid.enter_cm_s == 1.0) & (grid.exit_ratio == 2.0)]
    print("\nkappa at enter 1.0 / exit 2.0 cm/s: smoothing (rows) x min bout (cols), p_cutoff 0.6 | 0.9")
    for p_cut in (0.6, 0.9):
        print(f"p_cutoff {p_cut}")
        print(at[at.p_cutoff == p_cut].pivot(index="smooth_s", columns="min_bout_s", values="kappa").round(3).to_string())
    near = grid[(grid.enter_cm_s.between(0.75, 1.25)) & (grid.exit_ratio.between(1.5, 2.5))
                & (grid.smooth_s.between(0.1, 0.3))]
    print(f"\nneighbourhood of the default (enter 0.75-1.25, exit x1.5-2.5, smoothing 0.1-0.3 s, "
          f"all min bouts and cutoffs; {len(near)} settings): kappa median {near.kappa.median():.3f}, "
          f"10-90 % [{near.kappa.quantile(0.1):.3f}, {near.kappa.quantile(0.9):.3f}], "
          f"share >= 0.873 (BehaviorDEPOT) {100 * (near.kappa >= 0.873).mean():.0f} %")
    print(f"whole grid ({len(grid)} settings): best {grid.kappa.max():.3f}, median {grid.kappa.median():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
