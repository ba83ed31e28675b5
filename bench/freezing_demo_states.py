"""Behaviour states on the demo's own predicted pose, over several demo runs (seeds).

Run the demo for each seed first (each trains its own pose model, ~10 min here)::

    nice -n 10 ethopose demo --out /tmp/h1_demo1 --seed 1
    python3 bench/freezing_demo_states.py /tmp/h1_demo0 /tmp/h1_demo1 ... [--out bench/results/freezing_demo_states.md]
        [--transfer-model /tmp/h1_demo1/model --transfer-seeds 2 3]

For every run this re-scores the saved clean predicted pose (``pose_filtered.nc``) with the
current rules through the demo's own scoring (:func:`ethopose.demo.score_behaviour`), scores
the simulator's exact pose through the demo's cleaning too (what the rules can reach), and,
for grooming and freezing, the rules with the opt-in head-bowed cue
(``max_head_length_ratio=0.85``), so the table shows what the cue changes. It also prints the pose
model's forepaw-snout and head-length medians in true grooming frames, predicted vs true.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STATE_ORDER = ("locomotion", "rearing", "freezing", "grooming")


def _kappa(truth: np.ndarray, detected: np.ndarray, fps: float) -> dict:
    from behavior.agreement import bootstrap_agreement

    return bootstrap_agreement(truth.astype(int), detected.astype(int), fps=fps,
                               block_s=float(np.clip(len(truth) / fps / 10, 1.0, 10.0)))


def _cell(r: dict) -> str:
    return f"{r['kappa']:.2f} [{r['kappa_ci_low']:.2f}, {r['kappa_ci_high']:.2f}]"


def _grooming_geometry(pose, states: np.ndarray, px_per_mm: float) -> dict:
    from behavior.posture import head_length_ratio, paw_snout_distance_mm

    n = min(len(states), pose.sizes["time"])
    g = states[:n] == "groom"
    paw = paw_snout_distance_mm(pose, px_per_mm=px_per_mm)[:n]
    head = head_length_ratio(pose).values[:n]
    return {"paw_snout_mm": float(np.nanmedian(paw[g])), "head_ratio": float(np.nanmedian(head[g]))}


def score_run(run: Path, work: Path, label: str | None = None) -> list[dict]:
    """Rows (run, pose source, rule variant, state, kappa) for one demo output folder."""
    from behavior.freezing import detect_freezing
    from behavior.posture import detect_grooming
    from ethopose.demo import TRUE_STATE_GROUPS, demo_steps, score_behaviour
    from features.filters import clean
    from pose.io import load

    states = pd.read_csv(run / "session" / "behavior.csv")["state"].to_numpy(str)
    summary = json.loads((run / "summary.json").read_text())
    pred = load(run / "pose_filtered.nc")
    truth = clean(load(run / "session" / "truth.nc"), demo_steps())
    ppm = float(pred.attrs["px_per_mm"])
    seed = summary.get("seed", "?")
    err = summary.get("pose_model", {})
    rows = []
    for source, pose in (("predicted", pred), ("truth", truth)):
        n = min(len(states), pose.sizes["time"])
        sc = score_behaviour(pose, states, ppm, work)
        geo = _grooming_geometry(pose, states, ppm)
        base = {"run": label or run.name, "seed": seed, "pose": source,
                "mean_error_px": err.get("mean_error_px", float("nan")) if source == "predicted" else 0.0, **geo}
        for name in STATE_ORDER:
            rows.append({**base, "rule": "default", "state": name, "kappa": sc[name]["kappa"],
                         "cell": f"{sc[name]['kappa']:.2f} [{sc[name]['ci_low']:.2f}, {sc[name]['ci_high']:.2f}]"})
        fps = float(pose.attrs["fps"])
        for name, fn in (("grooming", lambda p: detect_grooming(p, max_head_length_ratio=0.85)),
                         ("freezing", lambda p: detect_freezing(p, grooming_head_length_ratio=0.85))):
            r = _kappa(np.isin(states[:n], TRUE_STATE_GROUPS[name]), fn(pose).values[:n], fps)
            rows.append({**base, "rule": "head cue 0.85", "state": name, "kappa": r["kappa"], "cell": _cell(r)})
    return rows


def transfer_session(model_dir: Path, seed: int, out: Path, seconds: float = 40.0) -> Path:
    """A new demo session (``seed``) analysed by an existing demo model, laid out like a demo run.

    The same functions as ``ethopose demo`` (render, predict, clean, features); the model was
    trained on another session's frames, so this is the harder, out-of-session case.
    """
    from ethopose.demo import analyse_session, render_session
    from pose.atomic import write_text_atomic
    from pose.pipeline.inference import Predictor

    session = render_session(out / "session", seconds, seed)
    pred = Predictor.from_dir(model_dir).predict_video(session.video_path)
    pred.attrs["px_per_mm"] = float(session.scene["px_per_mm"])
    truth = session.pose
    n = min(pred.sizes["time"], truth.sizes["time"])
    err = np.linalg.norm(pred.position.values[:n] - truth.position.sel(keypoint=pred.keypoint.values).values[:n], axis=1)
    analyse_session(pred, session.files["arena"], out)
    write_text_atomic(out / "summary.json", json.dumps({
        "seed": f"{seed} (model: {model_dir})",
        "pose_model": {"mean_error_px": float(np.nanmean(err)), "median_error_px": float(np.nanmedian(err))}}))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", type=Path, nargs="+", help="ethopose demo output folders")
    ap.add_argument("--out", type=Path, default=None, help="Write the tables as markdown here.")
    ap.add_argument("--transfer-model", type=Path, default=None,
                    help="Also analyse new sessions (--transfer-seeds) with this demo model into "
                         "--transfer-dir/transfer_seed<N> (then scored like the runs).")
    ap.add_argument("--transfer-seeds", type=int, nargs="*", default=[])
    ap.add_argument("--transfer-dir", type=Path, default=Path("/tmp"))
    args = ap.parse_args(argv)
    c0 = time.process_time()
    for seed in args.transfer_seeds:
        out = args.transfer_dir / f"transfer_seed{seed}"
        if not (out / "pose_filtered.nc").exists():
            transfer_session(args.transfer_model, seed, out)
        args.runs.append(out)
    work = Path("/tmp") / "freezing_demo_states"
    work.mkdir(exist_ok=True)
    names = [r.name for r in args.runs]  # two transfer folders may share a name: add the parent's
    labels = [f"{r.parent.name}/{r.name}" if names.count(r.name) > 1 else r.name for r in args.runs]
    df = pd.DataFrame([row for run, lab in zip(args.runs, labels, strict=True) for row in score_run(run, work, lab)])
    tab = df.pivot_table(index=["run", "pose", "rule"], columns="state", values="cell", aggfunc="first")
    tab = tab[[s for s in STATE_ORDER if s in tab.columns]].fillna("")
    geo = df.groupby(["run", "pose"])[["mean_error_px", "paw_snout_mm", "head_ratio"]].first()
    lines = ["# Behaviour states on the demo's own predicted pose (virtual mouse, exact truth)", "",
             "Command: `python3 bench/freezing_demo_states.py " + " ".join(str(r) for r in args.runs)
             + (f" --out {args.out}`" if args.out else "`"), "",
             "Cohen's kappa vs the simulator's states [block-bootstrap 95 % CI]; 'default' = the rules as "
             "the demo runs them (grooming from the forepaws), 'head cue 0.85' = grooming (and freezing's "
             "grooming exclusion) with the opt-in head-bowed cue.", "", tab.to_markdown(), "",
             "Pose in true grooming frames (median): forepaw-snout distance (mm), head length / its "
             "session median; mean keypoint error of the model (px).", "", geo.round(2).to_markdown(), ""]
    d = df[(df.pose == "predicted") & (df.rule == "default")]
    lines += ["Worst over runs, predicted pose, default rules: "
              + ", ".join(f"{s} {d[d.state == s].kappa.min():.3f}" for s in STATE_ORDER) + ".", "",
              f"CPU time {time.process_time() - c0:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from pose.atomic import write_text_atomic

        write_text_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
