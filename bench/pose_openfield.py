"""Benchmark the pose pipeline on DeepLabCut's open-field demo project.

Trains with a fixed wall-clock budget on DeepLabCut's 95% split (its 6 test frames, given to
``ethopose pose train`` with ``--test-frames``) and on a 50% split (``--training-fraction 0.5``,
seed 0), in full resolution and in the fast half-resolution mode (``--scale 0.5``); evaluates
(test mean error, true RMSE, PCK; on CPU also of the int8-quantized ONNX model), measures
training s/epoch, and inference fps on ``videos/m3v1mp4.mp4`` (decode included) with torch,
onnxruntime and onnxruntime int8, and peak RSS. Prints a table with DeepLabCut's reference
numbers beside.

Every step runs the library's CLI in a child process (shown as the ``ethopose pose ...``
command), so the peak RSS of each step is its own.

Usage (the stages can run separately, e.g. trainings in parallel on different cores)::

    python3 bench/pose_openfield.py --workdir /tmp/pbench --minutes 12 --threads 2
    python3 bench/pose_openfield.py --stage train --runs full95 --taskset 0,1 ...
    python3 bench/pose_openfield.py --stage report --runs full95,fast95 ...
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PROJECT = ROOT.parent / "shared" / "data" / "dlc-openfield"
# DeepLabCut's own 95% split of this project (TrainingFraction 0.95, shuffle 1): its test frames.
DLC_TEST_FRAMES = ["img0044", "img0047", "img0064", "img0067", "img0103", "img0112"]
RUNS = {  # name: (split, scale)
    "full95": ("95", 1.0),
    "fast95": ("95", 0.5),
    "full50": ("50", 1.0),
    "fast50": ("50", 0.5),
}
REFERENCE = [
    ("DeepLabCut 3.0.2 cspnext_s, CPU, random init, 95% split", "25 px mean after 8 min", "10 fps", "10 GB"),
    ("DeepLabCut 3.0.2 ResNet-50, CPU, random init, 95% split", "65 px mean after 21 min", "~3 fps", "13 GB"),
    ("DeepLabCut published, GPU, ImageNet ResNet-50, 50% split", "2.01 px mean", "-", "-"),
    ("Human labelling error", "2.69 px mean", "-", "-"),
]


def run_step(args: list[str], *, taskset: str | None, threads: int | None, log) -> dict:
    """Run ``python -m pose.pipeline.cli ARGS`` in a child; return wall time, peak RSS, output."""
    cmd = [sys.executable, "-m", "pose.pipeline.cli", *args]
    if threads:
        cmd += ["--threads", str(threads)]
    if taskset:
        cmd = ["taskset", "-c", taskset, *cmd]
    shown = "ethopose pose " + " ".join(shlex.quote(a) for a in args + (["--threads", str(threads)] if threads else []))
    if taskset:
        shown = f"taskset -c {taskset} " + shown
    print(f"$ {shown}", file=log, flush=True)
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    rss_gb = usage.ru_maxrss / 1024**2
    print(out[-3000:], file=log, flush=True)
    print(f"  -> {wall:.1f} s wall, peak RSS {rss_gb:.2f} GB", file=log, flush=True)
    if rc:
        raise RuntimeError(f"step failed ({rc}): {shown}\n{out[-2000:]}")
    return {"cmd": shown, "wall_s": wall, "out": out, "peak_rss_gb": rss_gb}


def measure_inference(model: Path, video: Path, runtime: str, device: str, batch: int, threads: int | None,
                      frames: int | None = None) -> dict:
    """In this process: load the model, time ``predict_video`` (decode + inference); peak RSS."""
    import resource

    if threads:
        import torch

        torch.set_num_threads(threads)
    from pose.pipeline.inference import Predictor

    pred = Predictor.from_dir(model, device=device, runtime=runtime)
    pred.predict_video(video, batch_size=batch, stop=2 * batch)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    ds = pred.predict_video(video, batch_size=batch, stop=frames)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    n = int(ds.sizes["time"])
    return {"frames": n, "seconds": wall, "fps": n / wall, "cpu_seconds": cpu, "frames_per_cpu_s": n / cpu,
            "peak_rss_gb": rss_gb}


def stage_train(a, log) -> None:
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    test_file = work / "dlc_test_frames.txt"
    test_file.write_text("\n".join(DLC_TEST_FRAMES) + "\n")
    for name in a.runs:
        split, scale = RUNS[name]
        model = work / f"{name}-{a.device}"
        budget = "--cpu-minutes" if a.cpu_budget else "--minutes"
        args = ["train", str(a.project), "--out", str(model), budget, str(a.minutes), "--epochs", "100000",
                "--device", a.device, "--scale", str(scale), "--seed", "0", "--overwrite"]
        args += ["--test-frames", str(test_file)] if split == "95" else ["--training-fraction", "0.5"]
        if a.resume:
            args = ["train", str(a.project), "--out", str(model), "--resume"]
        r = run_step(args, taskset=a.taskset, threads=a.threads, log=log)
        last = r["out"].strip().splitlines()[-1]
        (model / "bench_train.json").write_text(json.dumps({"cmd": r["cmd"], "wall_s": r["wall_s"], "last_line": last,
                                                            "peak_rss_gb": r["peak_rss_gb"]}))


def stage_report(a, log) -> list[dict]:
    work = Path(a.workdir)
    video = Path(a.project) / "videos" / "m3v1mp4.mp4"
    rows = []
    for name in a.runs:
        model = work / f"{name}-{a.device}"
        train_info = json.loads((model / "bench_train.json").read_text())
        ev_step = run_step(["evaluate", str(model), "--project", str(a.project), "--device", a.device],
                           taskset=a.taskset, threads=a.threads, log=log)
        ev = json.loads((model / "evaluation.json").read_text())
        ev8 = None
        if a.device == "cpu" and "onnx-int8" in a.runtimes:
            run_step(["export-onnx", str(model), "--int8", "--project", str(a.project)], taskset=a.taskset,
                     threads=None, log=log)
            run_step(["evaluate", str(model), "--project", str(a.project), "--runtime", "onnx-int8"],
                     taskset=a.taskset, threads=a.threads, log=log)
            ev8 = json.loads((model / "evaluation_int8.json").read_text())
        import csv

        curve = list(csv.DictReader((model / "training_curve.csv").open()))
        epochs = len(curve)
        elapsed = float(curve[-1]["elapsed_s"]) if curve else float("nan")
        cpu_s = float(curve[-1].get("cpu_s") or "nan") if curve else float("nan")
        row = {"run": name, "device": a.device, "train_cmd": train_info["cmd"], "eval_cmd": ev_step["cmd"],
               "train_peak_rss_gb": train_info["peak_rss_gb"],
               "epochs": epochs, "train_min": elapsed / 60, "s_per_epoch": elapsed / max(1, epochs),
               "train_cpu_min": cpu_s / 60, "cpu_s_per_epoch": cpu_s / max(1, epochs),
               "test": {k: ev["test"].get(k) for k in ("mean_px", "rmse_px", "mean_px_pcutoff", "pck5", "pck10", "n")},
               "train": {k: ev["train"].get(k) for k in ("mean_px", "rmse_px")},
               "test_int8": {k: ev8["test"].get(k) for k in ("mean_px", "rmse_px", "pck5", "pck10")} if ev8 else None,
               "test_images": ev["split"]["test_images"] if name.endswith("95") else f"{len(ev['split']['test_images'])} images",
               "inference": {}}
        if name.endswith("95") or a.device == "cuda":
            runtimes = a.runtimes if a.device == "cpu" else ["torch"]
            if "onnx" in runtimes:
                run_step(["export-onnx", str(model)], taskset=a.taskset, threads=None, log=log)
            for rt in runtimes:
                for batch in a.batches:
                    cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", "infer", "--model", str(model),
                           "--runtime", rt, "--device", a.device, "--batch", str(batch), "--project", str(a.project)]
                    if a.frames:
                        cmd += ["--frames", str(a.frames)]
                    if a.threads:
                        cmd += ["--threads", str(a.threads)]
                    if a.taskset:
                        cmd = ["taskset", "-c", a.taskset, *cmd]
                    env = dict(os.environ, TQDM_DISABLE="1", PYTHONPATH=str(ROOT))
                    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
                    if out.returncode:
                        raise RuntimeError(out.stderr[-2000:])
                    res = json.loads(out.stdout.strip().splitlines()[-1])
                    res["cmd"] = " ".join(cmd[cmd.index(sys.executable):]).replace(sys.executable, "python3")
                    row["inference"][f"{rt}/b{batch}"] = res
                    print(f"inference {name} {rt} batch {batch}: {res}", file=log, flush=True)
            if a.frames:  # smoke/contended runs: the full-video analyze command is skipped
                rows.append(row)
                continue
            an = run_step(["analyze", str(model), str(video), "--out", str(work / f"analyze-{name}"), "--overwrite",
                           "--device", a.device, "--formats", a.formats], taskset=a.taskset, threads=a.threads, log=log)
            row["analyze_cli"] = {"cmd": an["cmd"], "wall_s": an["wall_s"], "peak_rss_gb": an["peak_rss_gb"]}
        rows.append(row)
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'run':<8}{'dev':<5}{'epochs':>7}{'min':>6}{'cpu min':>8}{'s/ep':>7}{'cpu s/ep':>9}{'test mean':>10}"
             f"{'test RMSE':>10}{'mean@p':>8}{'PCK5':>6}{'PCK10':>6}{'train mean':>11}{'int8 mean':>10}"
             "  inference: fps wall / frames per CPU-s (peak RSS GB)"]
    for r in rows:
        t = r["test"]
        inf = ", ".join(f"{k}: {v['fps']:.1f} / {v['frames_per_cpu_s']:.1f} ({v['peak_rss_gb']:.2f})"
                        for k, v in r["inference"].items())
        lines.append(f"{r['run']:<8}{r['device']:<5}{r['epochs']:>7}{r['train_min']:>6.1f}{r['train_cpu_min']:>8.1f}"
                     f"{r['s_per_epoch']:>7.2f}{r['cpu_s_per_epoch']:>9.2f}"
                     f"{t['mean_px']:>10.2f}{t['rmse_px']:>10.2f}{(t['mean_px_pcutoff'] or float('nan')):>8.2f}"
                     f"{t['pck5']:>6.2f}{t['pck10']:>6.2f}{r['train']['mean_px']:>11.2f}"
                     f"{(r.get('test_int8') or {}).get('mean_px') or float('nan'):>10.2f}  {inf}")
    lines.append("")
    lines.append("Reference (from issue 7, same project and split):")
    for name, acc, fps, rss in REFERENCE:
        lines.append(f"  {name:<58} {acc:<26} {fps:<8} {rss}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--project", type=Path, default=DEFAULT_PROJECT)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/pose_openfield_bench"))
    p.add_argument("--stage", choices=["all", "train", "report", "infer"], default="all")
    p.add_argument("--runs", default="full95,fast95,full50", help=f"comma list of {list(RUNS)}")
    p.add_argument("--minutes", type=float, default=12.0, help="training budget per run")
    p.add_argument("--resume", action="store_true", help="continue the trainings in --workdir")
    p.add_argument("--cpu-budget", action="store_true",
                   help="the budget is process CPU time (--cpu-minutes), not wall-clock: for shared machines")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--taskset", default=None, help="CPU list for taskset, e.g. 0,1")
    p.add_argument("--batches", default="8", help="inference batch sizes, comma list")
    p.add_argument("--runtimes", default="onnx,onnx-int8,torch", help="CPU inference runtimes to time, comma list")
    p.add_argument("--formats", default="h5,csv,nc", help="analyze output formats")
    p.add_argument("--model", type=Path)
    p.add_argument("--runtime", default="torch")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=None, help="inference on the first N frames only (smoke test)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    a = p.parse_args()
    if a.stage == "infer":
        video = Path(a.project) / "videos" / "m3v1mp4.mp4"
        print(json.dumps(measure_inference(a.model, video, a.runtime, a.device, a.batch, a.threads, a.frames)))
        return
    a.runs = [r for r in a.runs.split(",") if r]
    a.batches = [int(b) for b in a.batches.split(",")]
    a.runtimes = [r for r in a.runtimes.split(",") if r]
    if not (Path(a.project) / "config.yaml").is_file():
        sys.exit(f"project {a.project} not found (pass --project)")
    log = sys.stdout
    print(f"project {a.project}; 95% split test frames (DeepLabCut's): {', '.join(DLC_TEST_FRAMES)}; "
          f"50% split: --training-fraction 0.5, seed 0", flush=True)
    if a.stage in ("all", "train"):
        stage_train(a, log)
    if a.stage in ("all", "report"):
        rows = stage_report(a, log)
        print(format_rows(rows), flush=True)
        if a.json:
            a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
