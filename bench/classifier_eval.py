"""Supervised behaviour classifiers: held-out evaluation on the virtual mouse and on demo1.

Run: ``python3 bench/classifier_eval.py`` (a few minutes on 2 cores).

1. Virtual mouse (``pose.synthetic.simulate_open_field``, 30 fps): one binary
   :class:`~behavior.classifier.BehaviorClassifier` per true state, trained on sessions with
   seeds 0-3 and tested on seeds 4-5 (other animals, never seen). Frame precision / recall /
   F1 and bout F1 per behaviour; the rule-based detectors on the same test sessions are the
   baseline where a rule exists.
2. The supervised route as a user runs it (``ethopose behavior train`` / ``predict``): label
   a few minutes of one behaviour (grooming, rearing) in sessions of some virtual mice with
   predicted-pose errors, train, predict on other mice at every tracking-error level (the
   nuisance presets' camera plus jitter, outliers, dropouts: ``bench/freezing_robustness.py``);
   kappa vs the exact truth with a 10 s block-bootstrap 95 % CI (``--supervised`` runs only this).
3. BehaviorDEPOT demo1 freezing (one video, 6000 frames): grouped cross-validation over 5
   contiguous 24 s blocks (leave one block out). There is only one video, so the blocks are
   of the same animal and session: this measures generalisation over time, not to new
   animals.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project, not bench/<name>.py, for `import features`
DEMO1 = ROOT.parent / "shared" / "data" / "behaviordepot-freezing" / "demo1"
TRAIN_SEEDS, TEST_SEEDS = (0, 1, 2, 3), (4, 5)
SECONDS, FPS = 300.0, 30.0


def virtual_mouse() -> pd.DataFrame:
    from behavior.agreement import bout_f1, frame_scores
    from behavior.classifier import BehaviorClassifier
    from behavior.pose_features import compute_pose_features
    from behavior.rules import detect_states
    from pose.synthetic import simulate_open_field

    sessions = {s: simulate_open_field(SECONDS, fps=FPS, seed=s) for s in TRAIN_SEEDS + TEST_SEEDS}
    feats = {s: compute_pose_features(t.pose) for s, t in sessions.items()}
    Xtr = pd.concat([feats[s] for s in TRAIN_SEEDS], ignore_index=True)
    ytr = np.concatenate([sessions[s].states for s in TRAIN_SEEDS])
    Xte = pd.concat([feats[s] for s in TEST_SEEDS], ignore_index=True)
    yte = np.concatenate([sessions[s].states for s in TEST_SEEDS])
    rule_map = {"freeze": "freezing", "rear": "rearing", "groom": "grooming"}
    rules_te = {name: np.concatenate([detect_states(sessions[s].pose)[name].values for s in TEST_SEEDS])
                for name in rule_map.values()}
    rows = []
    for state in sorted(np.unique(ytr)):
        t0 = time.perf_counter()
        clf = BehaviorClassifier(windows_frames=(1, 9, 31), max_iter=100, min_bout_frames=5,
                                 random_state=0)
        clf.fit(Xtr, ytr == state)
        pred = clf.predict(Xte)
        s = frame_scores(yte == state, pred)
        row = {"behavior": state, "test_frames_true": int((yte == state).sum()),
               "precision": s["precision"], "recall": s["recall"], "f1": s["f1"],
               "bout_f1": bout_f1(yte == state, pred), "fit_s": time.perf_counter() - t0}
        if state in rule_map:
            row["rule_f1"] = frame_scores(yte == state, rules_te[rule_map[state]])["f1"]
        rows.append(row)
    return pd.DataFrame(rows)


def supervised_route(workdir: Path, *, behaviour: str = "groom", train_seeds=(0, 1, 2),
                     test_seeds=(10, 11), levels=("none", "mild", "heavy"), seconds: float = 180.0,
                     max_iter: int = 100) -> pd.DataFrame:
    """Train with ``ethopose behavior train`` on labelled sessions, ``predict`` new ones; kappa table."""
    import importlib.util

    from typer.testing import CliRunner

    import pose.io
    from behavior.agreement import bootstrap_agreement
    from behavior.cli import app

    spec = importlib.util.spec_from_file_location("freezing_robustness", ROOT / "bench" / "freezing_robustness.py")
    fr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fr)
    workdir.mkdir(parents=True, exist_ok=True)
    runner = CliRunner()

    def write(seed: int, level: str) -> tuple[Path, Path, np.ndarray]:
        ds, states = fr.virtual_session(seed, level, seconds=seconds, clean=False)
        pf, lf = workdir / f"s{seed}_{level}.nc", workdir / f"s{seed}_{level}_labels.csv"
        pose.io.save(ds, pf)
        pd.DataFrame({behaviour: (states == behaviour).astype(int)}).to_csv(lf, index=False)
        return pf, lf, states == behaviour

    train = [write(s, "mild") for s in train_seeds]
    model = workdir / f"{behaviour}.joblib"
    args = ["train", *[str(p) for p, _, _ in train]]
    for _, lf, _ in train:
        args += ["-l", str(lf)]
    res = runner.invoke(app, [*args, "-b", behaviour, "--max-iter", str(max_iter), "--min-bout-s", "0.3",
                              "--out", str(model)])
    if res.exit_code != 0:
        raise RuntimeError(res.output) from res.exception
    rows = []
    for seed in test_seeds:
        for level in levels:
            pf, _, truth = write(seed, level)
            out = workdir / f"pred_s{seed}_{level}.csv"
            res = runner.invoke(app, ["predict", str(model), str(pf), "--out", str(out)])
            if res.exit_code != 0:
                raise RuntimeError(res.output) from res.exception
            pred = pd.read_csv(out)[behaviour].to_numpy()
            ci = bootstrap_agreement(truth, pred, fps=FPS, block_s=10.0)
            rows.append({"behaviour": behaviour, "test_seed": seed, "level": level,
                         "true_pct": 100 * truth.mean(), "kappa": ci["kappa"],
                         "kappa_ci": f"[{ci['kappa_ci_low']:.2f}, {ci['kappa_ci_high']:.2f}]",
                         "f1": ci["f1"]})
    return pd.DataFrame(rows)


def demo1() -> pd.DataFrame | None:
    if not DEMO1.is_dir():
        print(f"skip demo1: {DEMO1} is absent")
        return None
    import pose.io
    from behavior.annotations import load_behaviordepot
    from behavior.classifier import BehaviorClassifier, cross_validate_grouped
    from behavior.pose_features import compute_pose_features

    ds = pose.io.load(DEMO1 / "demo1_tracking.csv", fps=50)
    X = compute_pose_features(ds, px_per_cm=32)
    y = load_behaviordepot(DEMO1 / "hB_demo1_manual_annotations.mat")["Freezing"].to_numpy()
    groups = np.arange(len(y)) // 1200
    clf = BehaviorClassifier(windows_frames=(1, 15, 51), max_iter=100, min_bout_frames=25,
                             random_state=0)
    return cross_validate_grouped(clf, X, y, groups)


def main() -> int:
    import tempfile

    from threadpoolctl import threadpool_limits

    pd.set_option("display.width", 140)
    if "--supervised" in sys.argv:
        with threadpool_limits(2), tempfile.TemporaryDirectory() as tmp:
            t0 = time.process_time()
            tables = [supervised_route(Path(tmp) / b, behaviour=b) for b in ("groom", "rear")]
            table = pd.concat(tables, ignore_index=True)
            print("supervised route (ethopose behavior train on seeds 0-2 at 'mild', 180 s each; "
                  "predict on seeds 10-11 at every level), kappa vs exact truth [95 % CI]")
            print(table.round(3).to_markdown(index=False))
            print(f"worst kappa {table.kappa.min():.3f}; CPU {time.process_time() - t0:.0f} s")
        return 0
    with threadpool_limits(2):
        t0 = time.perf_counter()
        vm = virtual_mouse()
        print(f"virtual mouse: train seeds {TRAIN_SEEDS}, test seeds {TEST_SEEDS}, "
              f"{SECONDS:.0f} s each at {FPS:.0f} fps ({time.perf_counter() - t0:.0f} s)")
        print(vm.round(3).to_string(index=False))
        print(f"macro F1 {vm.f1.mean():.3f}, macro bout F1 {vm.bout_f1.mean():.3f}")
        cv = demo1()
        if cv is not None:
            print("\ndemo1 freezing, leave-one-block-out CV (5 contiguous 24 s blocks of one video)")
            print(cv.round(3).to_string(index=False))
            print(f"mean F1 {cv.f1.mean():.3f}, mean bout F1 {cv.bout_f1.mean():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
