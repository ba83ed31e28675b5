"""Does pose training work on any lab's project? One command, the same budget, many projects.

Trains ``ethopose pose train PROJECT --cpu-minutes M --seed 0`` (no per-project flag: the
recipe comes from each project's labels, :mod:`pose.pipeline.recipe`) on

- ``dlc-openfield``: DeepLabCut's open field (640x480 top view, real labels), DeepLabCut's
  95 % split (its 6 test frames, as in ``bench/pose_openfield.py``);
- ``horse10-shadow``: Horse-10's brown horse (288x162 side view, moving camera, 22 keypoints,
  real labels of 308 video frames): the project is built by extracting exactly the labelled
  frames from the video (:class:`pose.video.VideoReader`; row i = video frame i);
- virtual-mouse projects (:mod:`pose.synthetic`, exact labels): ``synth-side-gait`` (side
  view on a beam, 640x360, the mouse fills the frame's width), ``synth-bottom-large``
  (bottom view through a glass floor, 416x416, a large animal filling the frame),
  ``synth-openfield-heavy`` (top view, heavy nuisance), ``synth-openfield-hires`` (a
  1280x1024 arena with a small mouse);

then reads the evaluation that training writes (torch runtime; held-back frames: the 95 %
split for the open field, ``--training-fraction 0.8 --seed 0`` elsewhere, the issue's
command) and prints: test mean px, RMSE, PCK@5/10 px, normalized error (mean / animal size),
PCK@0.1 size, epochs, CPU s/epoch, training peak RSS, whether training warned of failure,
and the recipe of each project.

The synthetic projects' ``config.yaml`` loses its ``top_view``/``symmetry_pairs`` keys, so
that, as for a new user's project, the recipe is judged from the labels alone.

Usage::

    python3 bench/pose_generalization.py --workdir /tmp/posegen            # 30 CPU-min each
    python3 bench/pose_generalization.py --workdir /tmp/posegen --cpu-minutes 4 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pose_openfield import DLC_TEST_FRAMES, run_step  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PROJECTS = ("dlc-openfield", "horse10-shadow", "synth-side-gait", "synth-bottom-large",
            "synth-openfield-heavy", "synth-openfield-hires")
N_LABELS = 120  # labelled frames of each virtual-mouse project


def build_horse(out: Path) -> Path:
    """A project of the Horse-10 video's labelled frames, extracted exactly (row i = frame i)."""
    import cv2

    import pose.io
    from pose.video import VideoReader

    if (out / "config.yaml").is_file():
        return out
    src = SHARED / "horse10-shadow"
    ds = pose.io.load(src / "BrownHorseinShadow_gt.h5")
    images = [str(x) for x in ds.coords["image"].values]
    folder = out / "labeled-data" / "BrownHorseinShadow"
    folder.mkdir(parents=True, exist_ok=True)
    with VideoReader(src / "BrownHorseinShadow.mp4") as video:
        if len(video) < len(images):
            raise ValueError(f"{src}: video has {len(video)} frames, labels {len(images)}")
        for i, name in enumerate(images):
            cv2.imwrite(str(out / name), cv2.cvtColor(video.read(i), cv2.COLOR_RGB2BGR))
    pose.io.save(ds, folder / "CollectedData_Byron.h5")
    cfg = {"Task": "horse10-shadow", "scorer": "Byron", "bodyparts": [str(k) for k in ds.keypoint.values],
           "TrainingFraction": [0.8], "pcutoff": 0.6}
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def build_synthetic(name: str, out: Path) -> Path:
    """Render a virtual-mouse project; the config keeps no view or left/right declaration."""
    from pose.synthetic.nuisance import NuisanceConfig
    from pose.synthetic.render import render_gait, render_open_field

    if (out / "config.yaml").is_file():
        return out
    mild, heavy = NuisanceConfig.preset("mild"), NuisanceConfig.preset("heavy")
    if name == "synth-side-gait":
        render_gait(out, 6.0, 1, 640, 360, 100.0, mild, N_LABELS, view="side")
    elif name == "synth-bottom-large":
        render_gait(out, 6.0, 2, 416, 416, 100.0, mild, N_LABELS, view="bottom", gait="trot")
    elif name == "synth-openfield-heavy":
        render_open_field(out, 40.0, 3, 640, 480, 30.0, heavy, N_LABELS)
    elif name == "synth-openfield-hires":
        render_open_field(out, 40.0, 4, 1280, 1024, 30.0, mild, N_LABELS)
    else:
        raise ValueError(name)
    cfg_path = out / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    for key in ("top_view", "symmetry_pairs"):
        cfg.pop(key, None)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def build(name: str, work: Path) -> tuple[Path, list[str]]:
    """The project folder and its split arguments for ``ethopose pose train``."""
    if name == "dlc-openfield":
        test_file = work / "dlc_test_frames.txt"
        test_file.write_text("\n".join(DLC_TEST_FRAMES) + "\n")
        return SHARED / "dlc-openfield", ["--test-frames", str(test_file)]
    folder = work / "projects" / name
    project = build_horse(folder) if name == "horse10-shadow" else build_synthetic(name, folder)
    return project, ["--training-fraction", "0.8"]


def run_project(name: str, a, log) -> dict:
    import csv

    work = Path(a.workdir)
    t0 = time.perf_counter()
    project, split_args = build(name, work)
    build_s = time.perf_counter() - t0
    model = work / "models" / (name + a.tag)
    args = ["train", str(project), "--out", str(model), "--cpu-minutes", str(a.cpu_minutes), "--epochs", "100000",
            "--seed", "0", "--device", "cpu", *split_args, *a.train_args.split()]
    r = run_step(args, taskset=None, threads=a.threads, log=log)
    ev = json.loads((model / "evaluation.json").read_text())
    recipe = json.loads((model / "recipe.json").read_text())
    curve = list(csv.DictReader((model / "training_curve.csv").open()))
    cpu_s = float(curve[-1]["cpu_s"]) if curve else float("nan")
    keys = ("mean_px", "rmse_px", "pck5", "pck10", "normalized_error", "pck_size10", "n", "n_images")
    return {"project": name, "train_cmd": r["cmd"], "build_s": round(build_s, 1), "frame_hw": recipe["frame_hw"],
            "recipe": recipe, "epochs": len(curve), "train_cpu_min": cpu_s / 60,
            "cpu_s_per_epoch": cpu_s / max(1, len(curve)), "train_wall_s": r["wall_s"],
            "train_peak_rss_gb": r["peak_rss_gb"], "warned": "WARNING: the pose model has FAILED" in r["out"],
            "animal_size_px": ev.get("animal_size_px"),
            "test": {k: ev["test"].get(k) for k in keys}, "train": {k: ev["train"].get(k) for k in keys}}


def _f(v, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, int | float) and np.isfinite(v) else "-"


def format_rows(rows: list[dict]) -> str:
    head = ("| project | frame | test mean px | test RMSE | PCK@5 | PCK@10 | norm. error test (train) | "
            "PCK@0.1 size | epochs | CPU s/epoch | peak RSS GB | failure warning |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        t, tr = r["test"], r["train"]
        h, w = r["frame_hw"]
        lines.append(f"| {r['project']} | {w}x{h} | {_f(t['mean_px'], '.2f')} | {_f(t['rmse_px'], '.2f')} | "
                     f"{_f(t['pck5'], '.2f')} | {_f(t['pck10'], '.2f')} | {_f(t['normalized_error'], '.3f')} "
                     f"({_f(tr['normalized_error'], '.3f')}) | {_f(t['pck_size10'], '.2f')} | {r['epochs']} | "
                     f"{_f(r['cpu_s_per_epoch'], '.1f')} | {_f(r['train_peak_rss_gb'], '.2f')} | "
                     f"{'yes' if r['warned'] else 'no'} |")
    lines.append("")
    lines.append("Recipes (chosen from each project's labels; reasons in each model's recipe.json):")
    lines.append("")
    lines.append("| project | animal size px | scale | crop px | sigma px | rotation deg | view | flip pairs |")
    lines.append("|" + "---|" * 8)
    for r in rows:
        c = r["recipe"]
        lines.append(f"| {r['project']} | {c['animal_size_px']:.0f} | {c['scale']:g} | {c['crop_px']} | "
                     f"{c['sigma_px']:g} | {c['rotation_deg']:g} | {c['view']} | {len(c['flip_pairs'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="/tmp/pose_generalization")
    ap.add_argument("--cpu-minutes", type=float, default=30.0, help="training budget per project (CPU time)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--projects", default=",".join(PROJECTS), help="comma-separated subset (default: all)")
    ap.add_argument("--out", default=None, help="results .json (default: WORKDIR/pose_generalization.json)")
    ap.add_argument("--train-args", default="", help="extra `ethopose pose train` options (a variant to compare)")
    ap.add_argument("--tag", default="", help="suffix of the model folders (keeps variants apart)")
    a = ap.parse_args(argv)
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(a.out) if a.out else work / "pose_generalization.json"
    rows = []
    with (work / "bench.log").open("a") as log:
        for name in a.projects.split(","):
            rows.append(run_project(name, a, log))
            out.write_text(json.dumps({"cpu_minutes": a.cpu_minutes, "threads": a.threads, "rows": rows}, indent=1))
            print(format_rows(rows[-1:]).splitlines()[2], flush=True)
    print(format_rows(rows))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
