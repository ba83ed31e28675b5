"""Unsupervised discovery: B-SOiD's recipe vs ethopose's, side by side in one run.

Run: ``python3 bench/discovery.py [--frames 100000]`` (several minutes on 2 cores).

Data: the virtual mouse (``pose.synthetic.simulate_open_field``, 30 fps, seeds 0, 1, ...
until ``--frames`` frames), 24 per-frame pose features (keypoint speeds, egocentric
coordinates, heading angular velocity, body length; smoothed 0.1 s), true states known.

- baseline, B-SOiD's recipe: standardise, UMAP (60 neighbours, 3-D, min_dist 0) of every
  frame, HDBSCAN (min cluster size 1 % of the frames); noise frames then labelled by a
  k-nearest-neighbour classifier trained on the clustered ones (B-SOiD uses a random
  forest; k-NN is cheaper, which favours the baseline), so both label every frame.
- ethopose: :class:`behavior.discovery.BehaviorDiscovery` (standardise, UMAP of a 20k-frame
  subsample with 30 neighbours, HDBSCAN 1 %, k-NN classifier labels all frames).

Both are scored against the true states with the adjusted Rand index and V-measure.
The machine's load is printed: timings from a shared runner vary.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project, not bench/<name>.py, for `import features`

FEATURES_24 = (
    [f"speed_{k}" for k in ("snout", "left_ear", "right_ear", "neck", "body_center", "tail_base",
                           "left_forepaw", "right_forepaw", "left_hindpaw", "right_hindpaw")]
    + ["angular_velocity", "body_length"]
    + [f"ego_{a}_{k}" for k in ("snout", "neck", "tail_base", "left_forepaw", "right_forepaw",
                                "left_hindpaw") for a in ("x", "y")]
)


def make_data(n_frames: int):
    import pandas as pd

    from behavior.pose_features import compute_pose_features
    from pose.synthetic import simulate_open_field

    feats, states, seed = [], [], 0
    while sum(len(s) for s in states) < n_frames:
        need = n_frames - sum(len(s) for s in states)
        secs = min(3600.0, need / 30 + 1)
        truth = simulate_open_field(secs, fps=30, seed=seed)
        feats.append(compute_pose_features(truth.pose)[FEATURES_24])
        states.append(truth.states)
        seed += 1
    X = pd.concat(feats, ignore_index=True).to_numpy()[:n_frames]
    y = np.concatenate(states)[:n_frames]
    X = np.where(np.isfinite(X), X, np.nanmedian(X, axis=0))
    return X, y


def bsoid(X: np.ndarray, seed: int) -> np.ndarray:
    import hdbscan
    import umap
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    Z = StandardScaler().fit_transform(X)
    emb = umap.UMAP(n_neighbors=60, n_components=3, min_dist=0.0, random_state=seed,
                    n_jobs=1).fit_transform(Z)
    lab = hdbscan.HDBSCAN(min_cluster_size=max(5, int(0.01 * len(X)))).fit_predict(emb)
    good = lab >= 0
    if np.unique(lab[good]).size < 2:
        return np.zeros(len(X), dtype=int)
    clf = KNeighborsClassifier(n_neighbors=15)
    out = lab.copy()
    out[~good] = clf.fit(Z[good], lab[good]).predict(Z[~good])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    from behavior.discovery import BehaviorDiscovery, score_against_truth

    t0 = time.perf_counter()
    X, y = make_data(args.frames)
    print(f"data: {X.shape[0]} frames x {X.shape[1]} features, {np.unique(y).size} true states "
          f"({time.perf_counter() - t0:.0f} s to simulate); load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    rows = []
    with threadpool_limits(2):
        # warm the numba JIT of umap / pynndescent on a tiny problem so neither side pays it
        BehaviorDiscovery(fit_subsample=None, n_neighbors=10, random_state=0).fit(X[:2000])
        if not args.skip_baseline:
            t = time.perf_counter()
            lab = bsoid(X, args.seed)
            rows.append(("B-SOiD recipe (UMAP 60 nn, all frames)", time.perf_counter() - t, lab))
        t = time.perf_counter()
        model = BehaviorDiscovery(random_state=args.seed).fit(X)
        rows.append(("ethopose BehaviorDiscovery (20k subsample)", time.perf_counter() - t, model.labels_))
    base = rows[0][1]
    print(f"{'method':45s} {'time_s':>8s} {'ratio':>6s} {'clusters':>8s} {'ARI':>6s} {'V':>6s}")
    for name, dt, lab in rows:
        s = score_against_truth(lab, y)
        print(f"{name:45s} {dt:8.1f} {dt / base:6.2f} {np.unique(lab).size:8d} {s['ari']:6.3f} "
              f"{s['v_measure']:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
