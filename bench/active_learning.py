"""Active learning on the virtual mouse: do outlier frames find errors, and does fixing them help?

1. Render session A (black mouse, mild nuisances) with labelled frames; train model 0 on it.
2. Render session B with a domain shift: agouti coat, darker uneven lighting, more camera
   noise and another camera scale. Predict B with model 0; per-frame error against B's exact
   truth (``truth.nc``): the largest keypoint error in the frame.
3. Precision of "frame has an error > 10 px" among the frames each outlier method selects
   (jump, fit, uncertain; n frames each, k-means spread) vs. random frames (the baseline,
   measured in the same run, averaged over 200 draws).
4. The loop: extract n outlier frames of B into A's project (``pose.refine.extract``),
   correct them from the truth (what a person would do in ``ethopose label``), merge
   (iteration 0 -> 1), retrain from model 0's weights. Controls with the same extra training
   time: n random B frames corrected the same way, and no new frames at all.
5. Error on the B frames that none of the runs trained on, for every model (table).

Run (numbers in the issue's closing note come from this command)::

    python3 bench/active_learning.py --out /tmp/ethopose_al

Smaller/faster: ``--seconds 10 --train-minutes 1 --retrain-minutes 0.5``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from pose import io as pose_io
from pose.refine.extract import extract_outlier_frames, image_name, read_frames
from pose.refine.labels import LabelStore, read_project_info
from pose.refine.merge import merge_refined_labels
from pose.refine.outliers import (
    compute_outlier_scores,
    detect_outlier_frames,
    select_diverse_frames,
)

ERROR_BOUND_PX = 10.0


def frame_errors(pred, truth, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame largest and mean keypoint error (px) over keypoints inside the image."""
    p = pred["position"].values[:, :2, :, 0]
    t = truth["position"].values[:, :2, :, 0]
    n = min(len(p), len(t))
    p, t = p[:n], t[:n]
    inside = (t[:, 0] >= 0) & (t[:, 0] < width) & (t[:, 1] >= 0) & (t[:, 1] < height)
    err = np.where(inside, np.linalg.norm(p - t, axis=1), np.nan)
    return np.nanmax(err, axis=1), np.nanmean(err, axis=1)


def correct_from_truth(project: Path, video: str, images: list[str], truth, width: int, height: int) -> None:
    """Label the extracted frames with the exact truth (the "person" of the loop)."""
    info = read_project_info(project)
    store = LabelStore(info, video)
    names = [str(k) for k in truth.coords["keypoint"].values]
    for image in images:
        frame = int(Path(image).stem.removeprefix("img"))
        xy = np.full((len(info.bodyparts), 2), np.nan)
        hidden = []
        for j, kp in enumerate(info.bodyparts):
            x, y = truth["position"].values[frame, :2, names.index(kp), 0]
            if 0 <= x < width and 0 <= y < height:
                xy[j] = (x, y)
            else:
                hidden.append(kp)
        store.set_points(image, xy, not_visible=hidden)


def add_random_frames(project: Path, video: str, video_path: Path, frames: list[int], n_total: int,
                      truth, width: int, height: int) -> list[str]:
    """Write random frames of a video into the project and label them from the truth."""
    import cv2

    folder = project / "labeled-data" / video
    folder.mkdir(parents=True, exist_ok=True)
    pixels = read_frames(video_path, frames)
    images = []
    for f in frames:
        name = image_name(f, n_total)
        cv2.imwrite(str(folder / name), cv2.cvtColor(pixels[f], cv2.COLOR_RGB2BGR))
        images.append(f"labeled-data/{video}/{name}")
    correct_from_truth(project, video, images, truth, width, height)
    return images


def train(project: Path, out: Path, minutes: float, *, init_from: Path | None, test_frames: list[str] | None,
          seed: int, scale: float) -> Path:
    from pose.pipeline.train import TrainConfig, train_model

    cfg = TrainConfig(minutes=minutes, epochs=10_000, patience=10_000, batch_size=8, seed=seed,
                      device="cpu", lr=1e-3 if init_from is None else 5e-4, scale=scale)
    return train_model(project, config=cfg, out_dir=out, init_from=init_from, test_frames=test_frames)


def precision_table(pred, bad: np.ndarray, video: Path, n_frames: int, seed: int,
                    rng: np.random.Generator | None = None) -> dict:
    """Precision of "frame has an error > 10 px" among the frames each method selects.

    Each method keeps the frames above its threshold (jump/fit: 20 px, uncertain: a body part
    below confidence 0.6), then ``n_frames`` of them spread by k-means on appearance; the
    baseline is ``n_frames`` random frames (mean over 200 draws).
    """
    from pose.refine.extract import compute_appearance

    rng = rng if rng is not None else np.random.default_rng(seed)
    n_total = len(bad)
    random_prec = float(np.mean([bad[rng.choice(n_total, n_frames, replace=False)].mean()
                                 for _ in range(200)]))
    out = {"random": {"selected": n_frames, "precision": random_prec,
                      "candidates": n_total, "candidate_precision": float(bad.mean())}}
    all_frames = read_frames(video, range(n_total))
    for method, thr in (("jump", 20.0), ("fit", 20.0), ("uncertain", 0.4)):
        scores = compute_outlier_scores(pred, method)
        cand = detect_outlier_frames(scores, thr)
        top = cand[:400]
        app = compute_appearance([all_frames[int(i)] for i in top]) if len(top) else None
        sel = select_diverse_frames(top, scores.values[top], app, n_frames, random_state=seed) if len(top) else top
        out[method] = {"selected": int(len(sel)),
                       "precision": float(bad[sel].mean()) if len(sel) else float("nan"),
                       "candidates": int(len(cand)),
                       "candidate_precision": float(bad[cand].mean()) if len(cand) else float("nan")}
    return out


def precision_on_session(model: Path, session: Path, n_frames: int, seed: int,
                         bounds_px: tuple[float, ...] = (ERROR_BOUND_PX,),
                         bad_by: str = "max") -> dict:
    """:func:`precision_table` of a trained model on a rendered session folder (``video.mp4``, ``truth.nc``)."""
    import cv2

    from pose.pipeline.inference import predict_video

    truth = pose_io.load(session / "truth.nc")
    cap = cv2.VideoCapture(str(session / "video.mp4"))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    pred = predict_video(model, session / "video.mp4")
    err_max, err_mean = frame_errors(pred, truth, w, h)
    out = {"model": str(model), "session": str(session), "frames": len(err_max),
           "mean_px": float(np.nanmean(err_mean)), "bad_by": bad_by, "by_bound": {}}
    frame_err = err_max if bad_by == "max" else err_mean
    for bound in bounds_px:
        out["by_bound"][f"{bound:g}px"] = {
            "bad_fraction": float(np.mean(frame_err > bound)),
            "precision": precision_table(pred, frame_err > bound, session / "video.mp4", n_frames, seed),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ethopose_al"))
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--n-label", type=int, default=60, help="labelled frames of session A")
    ap.add_argument("--n-frames", type=int, default=20, help="outlier frames per method / loop")
    ap.add_argument("--method", default="uncertain", help="outlier method used in the loop")
    ap.add_argument("--train-minutes", type=float, default=4.0)
    ap.add_argument("--retrain-minutes", type=float, default=2.0)
    ap.add_argument("--scale", type=float, default=0.5, help="network input scale (0.5 = half size)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bound-px", type=float, nargs="+", default=[ERROR_BOUND_PX],
                    help="with --precision-only: error bounds defining a bad frame")
    ap.add_argument("--bad-by", choices=["max", "mean"], default="max",
                    help="with --precision-only: a frame's error is its largest or its mean keypoint error")
    ap.add_argument("--precision-only", nargs=2, metavar=("MODEL_DIR", "SESSION_DIR"), type=Path,
                    help="only the precision table of a trained model on a rendered session")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.precision_only:
        res = precision_on_session(*args.precision_only, args.n_frames, args.seed, tuple(args.bound_px),
                                   args.bad_by)
        print(f"{res['session']}: {res['frames']} frames, mean error {res['mean_px']:.2f} px")
        for bound, v in res["by_bound"].items():
            print(f"\nframe's {res['bad_by']} keypoint error > {bound} on {100 * v['bad_fraction']:.1f}% of frames")
            _print_precision(v["precision"])
        return
    results = run(args)
    print(json.dumps(results["summary"], indent=1))


def run(args: argparse.Namespace) -> dict:
    """The whole benchmark; returns the tables as dicts (the slow test calls this)."""
    from pose.pipeline.inference import predict_video
    from pose.synthetic.nuisance import NuisanceConfig
    from pose.synthetic.render import render_open_field

    t_start = time.perf_counter()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    w, h = args.width, args.height
    sess_a = render_open_field(out / "A", seconds=args.seconds, seed=args.seed, width=w, height=h,
                               n_label_frames=args.n_label)
    shift = NuisanceConfig(gradient_strength=0.5, noise_sd=8, flicker_amplitude=0.05,
                           scale_jitter=0.2, rotation_deg=8)
    sess_b = render_open_field(out / "B", seconds=args.seconds, seed=args.seed + 1, width=w, height=h,
                               nuisances=shift, n_label_frames=1, coat="agouti")
    truth_b = pose_io.load(out / "B" / "truth.nc")
    project = out / "A"
    video_b = project / "videos" / "sessionB.mp4"
    video_b.parent.mkdir(exist_ok=True)
    shutil.copy(sess_b.video_path, video_b)
    cam = {s: sess.pose.attrs["history"][-1]["params"]["camera_scale"] for s, sess in (("A", sess_a), ("B", sess_b))}

    model0 = train(project, out / "models" / "iter0", args.train_minutes, init_from=None, test_frames=None,
                   seed=args.seed, scale=args.scale)
    test_a = json.loads((model0 / "split.json").read_text())["test"]
    pred0 = predict_video(model0, video_b)
    err_max0, err_mean0 = frame_errors(pred0, truth_b, w, h)
    bad = err_max0 > ERROR_BOUND_PX
    n_total = len(err_max0)

    # precision of each method's selection vs random selection
    rng = np.random.default_rng(args.seed)
    precision = precision_table(pred0, bad, video_b, args.n_frames, args.seed, rng)
    # the loop: outliers -> corrected from truth -> merge -> retrain from model 0
    res = extract_outlier_frames(project, pred0, video_b, method=args.method, n_frames=args.n_frames,
                                 threshold=0.4 if args.method == "uncertain" else 20.0)
    correct_from_truth(project, "sessionB", res.images, truth_b, w, h)
    merge = merge_refined_labels(project, model_dir=model0)
    model_al = train(project, out / "models" / "iter1-outliers", args.retrain_minutes, init_from=model0,
                     test_frames=test_a, seed=args.seed, scale=args.scale)
    # control 1: the same number of random B frames, corrected the same way
    ctrl = out / "control_random"
    shutil.copytree(project, ctrl, ignore=shutil.ignore_patterns("models"))
    shutil.rmtree(ctrl / "labeled-data" / "sessionB")
    pool = np.setdiff1d(np.arange(n_total), res.frames)
    rand_frames = sorted(int(f) for f in rng.choice(pool, len(res.frames), replace=False))
    add_random_frames(ctrl, "sessionB", video_b, rand_frames, n_total, truth_b, w, h)
    model_rand = train(ctrl, out / "models" / "iter1-random", args.retrain_minutes, init_from=model0,
                       test_frames=test_a, seed=args.seed, scale=args.scale)
    # control 2: no new frames, the same extra training
    ctrl0 = out / "control_none"
    shutil.copytree(project, ctrl0, ignore=shutil.ignore_patterns("models"))
    shutil.rmtree(ctrl0 / "labeled-data" / "sessionB")
    model_none = train(ctrl0, out / "models" / "iter1-none", args.retrain_minutes, init_from=model0,
                       test_frames=test_a, seed=args.seed, scale=args.scale)

    held_out = np.setdiff1d(np.arange(n_total), np.union1d(res.frames, rand_frames))
    table = {}
    for name, model, pred in (("model 0 (A only)", model0, pred0),
                              ("+ no new frames", model_none, None),
                              (f"+ {len(rand_frames)} random B frames", model_rand, None),
                              (f"+ {len(res.frames)} outlier B frames ({args.method})", model_al, None)):
        pred = pred if pred is not None else predict_video(model, video_b)
        emax, emean = frame_errors(pred, truth_b, w, h)
        table[name] = {
            "mean_px": float(np.nanmean(emean[held_out])),
            "median_px": float(np.nanmedian(emean[held_out])),
            "frames_err_gt10px": float(np.mean(emax[held_out] > ERROR_BOUND_PX)),
            "model_dir": str(model),
        }
    base = table["model 0 (A only)"]["mean_px"]
    for row in table.values():
        row["ratio_to_model0"] = row["mean_px"] / base
    summary = {
        "command": "python3 bench/active_learning.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "frames_B": n_total, "held_out_B_frames": int(len(held_out)),
        "camera_scale": cam, "bad_frames_B_model0": float(bad.mean()),
        "precision_err_gt10px": precision, "error_on_B": table,
        "merge": {"iteration": merge.new_iteration, "frames": len(merge.images)},
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    _print_tables(summary)
    return {"summary": summary}


def _print_precision(table: dict) -> None:
    print(f"{'selection':<12}{'n':>5}{'precision':>11}{'vs random':>11}{'candidates':>12}{'cand. prec.':>13}")
    rnd = table["random"]["precision"]
    for k, v in table.items():
        ratio = v["precision"] / rnd if rnd > 0 else float("inf")
        print(f"{k:<12}{v['selected']:>5}{v['precision']:>11.2f}{ratio:>10.2f}x{v['candidates']:>12}"
              f"{v['candidate_precision']:>13.2f}")


def _print_tables(s: dict) -> None:
    print(f"\nB: {s['frames_B']} frames; model 0 has an error > {ERROR_BOUND_PX:g} px on "
          f"{100 * s['bad_frames_B_model0']:.1f}% of them")
    _print_precision(s["precision_err_gt10px"])
    print(f"\nerror on {s['held_out_B_frames']} held-out B frames")
    print(f"{'model':<40}{'mean px':>9}{'median px':>11}{'frames >10px':>14}{'ratio':>8}")
    for k, v in s["error_on_B"].items():
        print(f"{k:<40}{v['mean_px']:>9.2f}{v['median_px']:>11.2f}{100 * v['frames_err_gt10px']:>13.1f}%"
              f"{v['ratio_to_model0']:>8.2f}")
    print(f"\nwall time {s['wall_s']} s")


if __name__ == "__main__":
    main()
