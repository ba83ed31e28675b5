"""Multi-animal pose from a TRAINED top-down model: identities and keypoint error per animal.

Run (bench/results/multi_animal_pose.md comes from these commands; each stage keeps its
outputs in --work and is skipped when they exist, so a stage can be re-run alone)::

    nice -n 10 python3 bench/multi_animal_pose.py virtual --work /tmp/map --cpu-minutes 10
    nice -n 10 python3 bench/multi_animal_pose.py contacts --work /tmp/map
    nice -n 10 python3 bench/multi_animal_pose.py flies --work /tmp/map --cpu-minutes 10
    python3 bench/multi_animal_pose.py report --work /tmp/map --out bench/results/multi_animal_pose.md

``virtual``: :func:`pose.synthetic.social.render_social` renders a training session of two
same-coat virtual mice (frequent contacts, mild nuisances) whose ``--label-frames`` frames are
labelled from the truth (the DeepLabCut multi-animal layout), and a held-out session
(another seed: another camera pose, other paths). :func:`pose.pipeline.topdown.train_topdown`
trains the centroid and centred-instance models on the labels (``--cpu-minutes`` of process
CPU time in all), :class:`pose.pipeline.topdown.TopDownPredictor` predicts every animal of
the held-out video, :func:`pose.tracking.track_identities` links them (``n_animals=2``), and
motmetrics (:func:`pose.tracking.identity_metrics`) scores IDF1 and switches against the
truth. Keypoint error per animal: per frame, predicted instances are matched to the true
animals (Hungarian, mean keypoint distance), independently of the identities.

``contacts``: the virtual stage's instances with the predictor's options for animals in
contact (``split_merged``, ``propagate``, both), each tracked and scored the same way.

``centring``: whether the instance model places the animal whose centre a crop is centred
on, where two animals are close (the premise of ``split_merged`` and ``propagate``).

``flies``: ../shared/data/sleap-flies-tracks (2 flies, 1,500 frames, every frame labelled by
people, the two identities as tracks) imported as a project; the models train on frames
0-749 and predict frames 750-1499 of clip.mp4; errors against the human labels, identities
against the human tracks (IDF1 and switches by motmetrics; identity accuracy = share of
matched animal-frames whose track is the one mapped to that animal over the whole half).

Baselines in the same run: the same instances linked by frame-to-frame Hungarian matching of
centroids (``bench/tracking_identity.centroid_baseline``), and (virtual) the tracker on the
TRUE poses with their order shuffled per frame (what perfect pose would give).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).parent))
from tracking_identity import centroid_baseline  # noqa: E402

SPLIT_MERGED = False  # --split-merged: split centroid peaks merged in contacts (TopDownPredictor)
PROPAGATE = True  # --no-propagate: no crops at the previous frame's instances (TopDownPredictor)
FLIES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sleap-flies-tracks"


def match_errors(truth: np.ndarray, pred: np.ndarray, max_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, match predicted instances to true animals (Hungarian on the mean keypoint
    distance); returns (time, animal, keypoint) errors (NaN where unmatched or unlabelled)
    and the (time, animal) index of the matched instance (-1 = none within ``max_px``).

    ``truth``, ``pred``: (time, 2, keypoint, individual) positions.
    """
    t_n, _, k_n, a_n = truth.shape
    err = np.full((t_n, a_n, k_n), np.nan)
    which = np.full((t_n, a_n), -1)
    for t in range(t_n):
        d = np.linalg.norm(truth[t][:, :, :, None] - pred[t][:, :, None, :], axis=0)  # (K, A, P)
        cost = np.nanmean(d, axis=0)  # (A, P)
        ok = np.isfinite(cost)
        if not ok.any():
            continue
        r, c = linear_sum_assignment(np.where(ok, cost, 1e9))
        for a, p in zip(r, c, strict=True):
            if ok[a, p] and cost[a, p] <= max_px:
                err[t, a] = d[:, a, p]
                which[t, a] = p
    return err, which


def identity_accuracy(which_tracked: np.ndarray) -> tuple[float, dict]:
    """Share of matched animal-frames whose track is the animal's track over the whole
    session (the mapping that maximises the agreement), and that mapping."""
    a_n = which_tracked.shape[1]
    p_n = int(which_tracked.max()) + 1 if (which_tracked >= 0).any() else 1
    counts = np.zeros((a_n, p_n))
    for a in range(a_n):
        for p in range(p_n):
            counts[a, p] = (which_tracked[:, a] == p).sum()
    r, c = linear_sum_assignment(-counts)
    matched = (which_tracked >= 0).sum()
    return float(counts[r, c].sum() / max(matched, 1)), {int(a): int(p) for a, p in zip(r, c, strict=True)}


def error_summary(err: np.ndarray, names: list[str], px_per_mm: float | None) -> dict:
    out = {}
    for a, name in enumerate(names):
        e = err[:, a][np.isfinite(err[:, a])]
        row = {"mean_px": float(e.mean()), "median_px": float(np.median(e)), "p90_px": float(np.percentile(e, 90)),
               "n": int(e.size), "detected": float(np.isfinite(err[:, a]).any(axis=1).mean())}
        if px_per_mm:
            row["mean_mm"] = row["mean_px"] / px_per_mm
        out[name] = row
    return out


def _shuffled(ds: xr.Dataset, seed: int) -> xr.Dataset:
    """The individuals of every frame in a random order (identities removed)."""
    from pose.dataset import from_numpy

    rng = np.random.default_rng(seed)
    pos, conf = ds.position.values.copy(), ds.confidence.values.copy()
    for t in range(pos.shape[0]):
        o = rng.permutation(pos.shape[-1])
        pos[t], conf[t] = pos[t][..., o], conf[t][..., o]
    return from_numpy(pos, conf, keypoints=list(ds.keypoint.values), fps=ds.attrs.get("fps"))


def score(truth: xr.Dataset, inst: xr.Dataset, body_px: float, px_per_mm: float | None) -> dict:
    """Identity metrics of the tracked instances and of the baseline, keypoint errors."""
    from pose.tracking import TrackingConfig, identity_metrics, track_identities

    truth = truth.assign_coords(time=inst.time.values)  # same rows; the video's clock
    truth.attrs["fps"] = inst.attrs.get("fps") or truth.attrs.get("fps")
    c0 = time.process_time()
    tracked = track_identities(inst, TrackingConfig(n_animals=truth.sizes["individual"])).pose
    track_cpu = time.process_time() - c0
    names = [str(x) for x in truth.individual.values]
    m = identity_metrics(truth, tracked)
    base = identity_metrics(truth, centroid_baseline(inst))
    # the frame loop alone (no episode bridging), the tracker's own baseline in the same run
    loop = identity_metrics(truth, track_identities(inst, TrackingConfig(
        n_animals=truth.sizes["individual"], bridge_episodes=False)).pose)
    err, _ = match_errors(truth.position.values, inst.position.values, 0.5 * body_px)
    _, which = match_errors(truth.position.values, tracked.position.values, 0.5 * body_px)
    acc, mapping = identity_accuracy(which)
    detail = switch_detail(truth, inst, tracked, err, body_px)
    return {"switch_detail": detail, "body_px": float(body_px), "idf1": m["idf1"], "switches": m["num_switches"], "switches_per_10_min": m.get("switches_per_10_min"),
            "mota": m["mota"], "baseline_idf1": base["idf1"], "baseline_switches": base["num_switches"],
            "frame_loop_idf1": loop["idf1"], "frame_loop_switches": loop["num_switches"],
            "identity_accuracy": acc, "mapping": mapping, "errors": error_summary(err, names, px_per_mm),
            "frames": int(truth.sizes["time"]), "track_cpu_s": round(track_cpu, 1),
            "found_per_frame": float(np.isfinite(inst.position.values).any(axis=(1, 2)).sum(axis=1).mean())}


def switch_detail(truth: xr.Dataset, inst: xr.Dataset, tracked: xr.Dataset, err: np.ndarray,
                  body_px: float) -> list[dict]:
    """One row per identity switch (motmetrics): the frame, the true animals' centre distance
    (body sizes), the instances found there, each animal's mean keypoint error (px, NaN = no
    instance within half a body), the least identity confidence within +-5 frames and
    whether a swap-suspect event (:func:`pose.tracking.detect_swap_suspects`) holds it."""
    from pose.dataset import frame_numbers
    from pose.tracking import detect_swap_suspects, identity_switch_frames

    rows = identity_switch_frames(truth, tracked)
    sus = detect_swap_suspects(tracked)
    frames = frame_numbers(tracked)
    cent = np.nanmean(truth.position.values[:, :2], axis=2)  # (time, 2, animal)
    found = np.isfinite(inst.position.values).any(axis=(1, 2)).sum(axis=1)
    conf = tracked["identity_confidence"].values
    out = []
    for r in rows:
        lo, hi = max(0, r - 5), r + 6
        covered = bool(((sus["start_frame"] <= frames[r]) & (sus["end_frame"] >= frames[r])).any())
        out.append({"row": int(r), "frame": int(frames[r]),
                    "centre_distance_body": float(np.linalg.norm(cent[r, :, 0] - cent[r, :, 1]) / body_px),
                    "instances": int(found[r]), "error_px": [float(np.nanmean(e)) if np.isfinite(e).any() else None
                                                             for e in err[r]],
                    "min_confidence_pm5": float(np.nanmin(conf[lo:hi])) if np.isfinite(conf[lo:hi]).any() else None,
                    "in_suspect": covered})
    return out


def _train(project: Path, model: Path, cpu_minutes: float, test_frames: list[str] | None, fraction: float | None,
           seed: int, centroid_share: float = 0.3) -> dict:
    from pose.pipeline.topdown import train_topdown
    from pose.pipeline.train import TrainConfig

    if (model / "topdown.json").is_file():
        return json.loads((model / "train_stats.json").read_text())
    c0 = time.process_time()
    # an interrupted training (killed, machine lent out) continues where it stopped
    resume = (model / "topdown_train.json").is_file()
    # evaluate=False: the instance model's own evaluation (every training and test crop) would
    # cost minutes of CPU; the error that matters is the whole pipeline's, measured below
    train_topdown(project, config=TrainConfig(cpu_minutes=cpu_minutes, seed=seed, evaluate=False), out_dir=model,
                  test_frames=test_frames, training_fraction=fraction, centroid_share=centroid_share, overwrite=True,
                  resume=resume)
    cen = json.loads((model / "centroid" / "centroid.json").read_text())
    curve = (model / "instance" / "training_curve.csv").read_text().strip().splitlines()
    stats = {"train_cpu_s": round(time.process_time() - c0, 1), "cpu_minutes": cpu_minutes, "resumed": resume,
             "centroid_share": centroid_share, "centroid_epochs": cen["epochs"], "centroid_test": cen.get("test"),
             "centroid_cpu_s": cen["cpu_s"], "centroid_curve_cpu_s": [c["cpu_s"] for c in cen["curve"]],
             "instance_epochs": len(curve) - 1}
    (model / "train_stats.json").write_text(json.dumps(stats, indent=1))
    return stats


def _infer(model: Path, video: Path, out: Path, start: int, stop: int | None) -> tuple[xr.Dataset, float]:
    import pose.io
    from pose.pipeline.topdown import TopDownPredictor

    if out.is_file():
        ds = pose.io.load(out)
        return ds, float(ds.attrs.get("infer_cpu_s", np.nan))
    c0 = time.process_time()
    ds = TopDownPredictor(model, n_animals=2, threads=1, split_merged=SPLIT_MERGED, propagate=PROPAGATE).predict_video(
        video, start=start, stop=stop)
    ds.attrs["infer_cpu_s"] = round(time.process_time() - c0, 1)
    pose.io.save(ds, out)
    return ds, ds.attrs["infer_cpu_s"]


def run_virtual(args: argparse.Namespace) -> dict:
    import pose.io
    from pose.synthetic.social import render_social
    from pose.tracking import (
        TrackingConfig,
        estimate_body_size_px,
        identity_metrics,
        track_identities,
    )

    work = Path(args.work)
    train_dir, test_dir = work / "virtual_train", work / "virtual_test"
    c0 = time.process_time()
    if not (train_dir / "config.yaml").is_file():
        render_social(train_dir, seconds=args.train_seconds, seed=101 + args.render_seed, n_label_frames=args.label_frames,
                      width=args.width, height=args.height)
    if not (test_dir / "truth.nc").is_file():
        render_social(test_dir, seconds=args.test_seconds, seed=202 + args.render_seed, n_label_frames=0, width=args.width,
                      height=args.height)
    render_cpu = time.process_time() - c0
    stats = _train(train_dir, work / "virtual_model", args.cpu_minutes, None, 0.85, args.seed, args.centroid_share)
    if args.train_only:
        return stats
    truth = pose.io.load(test_dir / "truth.nc")
    n = int(round(args.score_seconds * truth.attrs["fps"])) if args.score_seconds else truth.sizes["time"]
    truth = truth.isel(time=slice(0, n))
    inst, infer_cpu = _infer(work / "virtual_model", test_dir / "video.mp4", work / f"virtual_instances_{n}.nc", 0, n)
    body = estimate_body_size_px(truth.position.values[:, :2])
    row = {"dataset": "virtual pair (same coat)", "render_cpu_s": round(render_cpu, 1), "infer_cpu_s": infer_cpu,
           **stats, **score(truth, inst, body, truth.attrs.get("px_per_mm"))}
    oracle = track_identities(_shuffled(truth, 0), TrackingConfig(n_animals=2)).pose
    mo = identity_metrics(truth, oracle.assign_coords(time=truth.time.values))  # same rows
    row.update(oracle_idf1=mo["idf1"], oracle_switches=mo["num_switches"], px_per_mm=truth.attrs.get("px_per_mm"),
               seconds=n / truth.attrs["fps"])
    (work / "virtual_result.json").write_text(json.dumps(row, indent=1, default=float))
    return row


def _split_merged_rows(model: Path, video: Path, inst: xr.Dataset, start: int) -> tuple[xr.Dataset, dict]:
    """``inst`` with its frames of fewer than 2 instances re-predicted with ``split_merged``:
    the same as a whole ``split_merged=True`` inference (the split is only tried in a frame
    with fewer centres than the count, and such a frame has fewer instances)."""
    from pose.pipeline.topdown import TopDownPredictor
    from pose.video import VideoReader

    pred = TopDownPredictor(model, n_animals=2, threads=1, split_merged=True, propagate=False)
    xy = inst.position.values.copy()
    cf = inst.confidence.values.copy()
    found = np.isfinite(xy).any(axis=(1, 2)).sum(axis=1)
    want = set((np.flatnonzero(found < 2) + start).tolist())
    c0 = time.process_time()
    buf, rows = [], []

    def flush() -> None:
        if buf:
            k, c, _ = pred.predict_keypoints(np.stack(buf))
            for r, a, b in zip(rows, k, c, strict=True):
                xy[r], cf[r] = a.transpose(2, 1, 0), b.T
            buf.clear()
            rows.clear()

    with VideoReader(video) as rd:
        for first, batch in rd.iter_batches(64, start=start, stop=start + inst.sizes["time"]):
            for k, frame in enumerate(batch):
                if first + k in want:
                    buf.append(frame)
                    rows.append(first + k - start)
                    if len(buf) == 8:
                        flush()
        flush()
    out = inst.copy(deep=True)
    out["position"].values[:] = xy
    out["confidence"].values[:] = cf
    after = np.isfinite(xy).any(axis=(1, 2)).sum(axis=1)
    return out, {"rows_recomputed": len(want), "cpu_s": round(time.process_time() - c0, 1),
                 "frames_with_2_after": int(((found < 2) & (after >= 2)).sum())}


def _propagated(model: Path, video: Path, inst: xr.Dataset, start: int) -> tuple[xr.Dataset, dict]:
    """``inst`` after :meth:`pose.pipeline.topdown.TopDownPredictor.propagate_instances`
    (what ``propagate=True`` adds to an inference)."""
    from pose.pipeline.topdown import TopDownPredictor

    pred = TopDownPredictor(model, n_animals=2, threads=1)
    xy = inst.position.values.transpose(0, 3, 2, 1).copy()  # (T, P, K, 2)
    cf = inst.confidence.values.transpose(0, 2, 1).copy()
    c0 = time.process_time()
    added = pred.propagate_instances(xy, cf, video, list(range(start, start + inst.sizes["time"])))
    out = inst.copy(deep=True)
    out["position"].values[:] = xy.transpose(0, 3, 2, 1)
    out["confidence"].values[:] = cf.transpose(0, 2, 1)
    return out, {"added": int(added), "cpu_s": round(time.process_time() - c0, 1)}


def run_contacts(args: argparse.Namespace) -> dict:
    """The saved virtual instances with the contact options of the predictor, each scored:
    ``split_merged``, ``propagate`` and both (no retraining, no full re-inference)."""
    import pose.io
    from pose.tracking import estimate_body_size_px

    work = Path(args.work)
    truth = pose.io.load(work / "virtual_test" / "truth.nc")
    n = int(round(args.score_seconds * truth.attrs["fps"])) if args.score_seconds else truth.sizes["time"]
    inst = pose.io.load(work / f"virtual_instances_{n}.nc")  # the virtual stage's inference
    truth = truth.isel(time=slice(0, inst.sizes["time"]))
    model, video = work / "virtual_model", work / "virtual_test" / "video.mp4"
    body = estimate_body_size_px(truth.position.values[:, :2])
    ppm = truth.attrs.get("px_per_mm")
    split, split_cost = _split_merged_rows(model, video, inst, 0)
    prop, prop_cost = _propagated(model, video, inst, 0)
    both, both_cost = _propagated(model, video, split, 0)
    out = {"frames": int(inst.sizes["time"]), "split_cost": split_cost, "propagate_cost": prop_cost,
           "both_cost": both_cost, "variants": {}}
    for name, ds in (("as inferred", inst), ("split_merged", split), ("propagate", prop),
                     ("split_merged + propagate", both)):
        if name != "as inferred":  # kept for a closer look
            pose.io.save(ds, work / f"virtual_instances_{n}_{name.replace(' + ', '_')}.nc")
        sc = score(truth.copy(), ds, body, ppm)
        out["variants"][name] = {k: sc[k] for k in ("idf1", "switches", "switches_per_10_min", "mota",
                                                     "identity_accuracy", "found_per_frame", "errors")}
        print(name, {k: out["variants"][name][k] for k in ("idf1", "switches", "identity_accuracy", "found_per_frame")},
              flush=True)
    (work / "virtual_contacts.json").write_text(json.dumps(out, indent=1, default=float))
    return out


def run_centring(args: argparse.Namespace, n_frames: int = 120) -> dict:
    """Does the instance model place the animal at the crop centre? On the first ``n_frames``
    frames where the inference lost one of two animals that it had in the frame before, one
    crop is centred on each of the previous frame's instances: the share of frames whose two
    crops give the two true animals (each within 5 px), and the share whose two crops give the
    same animal (median keypoint distance under the duplicate rule)."""
    import pose.io
    from pose.pipeline.topdown import TopDownPredictor, _median_distance, crop_around
    from pose.video import VideoReader

    work = Path(args.work)
    truth = pose.io.load(work / "virtual_test" / "truth.nc")
    inst = pose.io.load(work / f"virtual_instances_{truth.sizes['time']}.nc")
    true_xy = truth.position.values.transpose(0, 3, 2, 1)  # (T, A, K, 2)
    xy = inst.position.values.transpose(0, 3, 2, 1)
    n = np.isfinite(xy).all(axis=-1).any(axis=-1).sum(axis=1)
    frames = [t for t in range(1, len(n)) if n[t] == 1 and n[t - 1] == 2][:n_frames]
    pred = TopDownPredictor(work / "virtual_model", n_animals=2, threads=1)
    dup_px = 0.15 * pred.info.animal_size_px
    both, same, gaps = 0, 0, []
    want = set(frames)
    with VideoReader(work / "virtual_test" / "video.mp4") as rd:
        for first, batch in rd.iter_batches(32, stop=max(frames) + 1 if frames else 0):
            for k, frame in enumerate(batch):
                t = first + k
                if t not in want:
                    continue
                outs = []
                for j in range(2):
                    crop, origin = crop_around(frame, np.nanmean(xy[t - 1, j], axis=0), pred.crop_side_px)
                    kp, _ = pred.instance.predict_keypoints(crop[None])
                    d = [_median_distance(kp[0] + origin, true_xy[t, a]) for a in range(2)]
                    outs.append((kp[0] + origin, int(np.argmin(d)), min(d)))
                same += _median_distance(outs[0][0], outs[1][0]) < dup_px
                both += outs[0][1] != outs[1][1] and outs[0][2] < 5 and outs[1][2] < 5
                gaps.append(float(np.linalg.norm(np.nanmean(true_xy[t, 0], 0) - np.nanmean(true_xy[t, 1], 0))))
    out = {"frames": len(frames), "both_animals_share": both / max(1, len(frames)),
           "same_animal_share": same / max(1, len(frames)),
           "true_centre_distance_px": {"min": min(gaps, default=np.nan), "median": float(np.median(gaps)) if gaps else np.nan,
                                       "max": max(gaps, default=np.nan)}}
    (work / "virtual_centring.json").write_text(json.dumps(out, indent=1, default=float))
    return out


def run_flies(args: argparse.Namespace) -> dict:
    import pose.io
    from pose.pipeline.importers import read_labels, write_project
    from pose.tracking import estimate_body_size_px

    work = Path(args.work)
    slp, video = FLIES / "clip.slp", FLIES / "clip.mp4"
    if not slp.is_file():
        raise SystemExit(f"{slp} not found (../shared/data is needed for the flies part)")
    project = work / "flies_project"
    if not list((project / "labeled-data" / "clip").glob("CollectedData_*.h5")):  # written last
        shutil.rmtree(project, ignore_errors=True)
        write_project(read_labels(slp, fmt="video", video=video), project)
    labels = pose.io.load(slp)  # (time = frame, ..., individual = female, male)
    half = labels.sizes["time"] // 2
    test = [f"img{f:04d}" for f in range(half, labels.sizes["time"])]
    stats = _train(project, work / "flies_model", args.cpu_minutes, test, None, args.seed, args.centroid_share)
    if args.train_only:
        return stats
    inst, infer_cpu = _infer(work / "flies_model", video, work / "flies_instances.nc", half, None)
    truth = labels.isel(time=slice(half, None))
    body = estimate_body_size_px(truth.position.values[:, :2])
    row = {"dataset": "sleap flies, train 0-749, test 750-1499", "infer_cpu_s": infer_cpu, **stats,
           **score(truth, inst, body, None), "seconds": truth.sizes["time"] / inst.attrs["fps"]}
    (work / "flies_result.json").write_text(json.dumps(row, indent=1, default=float))
    return row


def report(args: argparse.Namespace) -> str:
    work = Path(args.work)
    rows = [json.loads(p.read_text()) for p in (work / "virtual_result.json", work / "flies_result.json") if p.is_file()]
    contacts = json.loads((work / "virtual_contacts.json").read_text()) if (work / "virtual_contacts.json").is_file() else None
    lines = ["| dataset | frames | CPU-min budget | centroid recall (held-out labels) | IDF1 | switches | "
             "switches / 10 min | identity accuracy | frame loop only IDF1 / switches | baseline IDF1 / switches | "
             "per-animal error mean (median, p90) px | detected |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        errs = "; ".join(f"{k} {v['mean_px']:.2f} ({v['median_px']:.2f}, {v['p90_px']:.1f})"
                         + (f" = {v['mean_mm']:.2f} mm" if "mean_mm" in v else "") for k, v in r["errors"].items())
        det = ", ".join(f"{v['detected']:.3f}" for v in r["errors"].values())
        cen = r.get("centroid_test") or {}
        lines.append(f"| {r['dataset']} | {r['frames']} | {r['cpu_minutes']} | {cen.get('recall', float('nan')):.3f} | "
                     f"{r['idf1']:.4f} | {int(r['switches'])} | {r['switches_per_10_min'] or float('nan'):.2f} | "
                     f"{r['identity_accuracy']:.4f} | {r.get('frame_loop_idf1', float('nan')):.4f} / "
                     f"{r.get('frame_loop_switches', float('nan')):.0f} | {r['baseline_idf1']:.4f} / {int(r['baseline_switches'])} | "
                     f"{errs} | {det} |")
    lines.append("")
    for r in rows:
        extra = (f"; tracker on the true poses, shuffled: IDF1 {r['oracle_idf1']:.4f}, {int(r['oracle_switches'])} switches"
                 if "oracle_idf1" in r else "")
        lines.append(f"- {r['dataset']}: training {r['train_cpu_s']:.0f} CPU-s (centroid {r['centroid_epochs']} epochs, "
                     f"instance {r['instance_epochs']} epochs), inference {r['infer_cpu_s']:.0f} CPU-s for {r['frames']} frames "
                     f"({r['infer_cpu_s'] / r['frames']:.3f} CPU-s per frame), "
                     f"{r['found_per_frame']:.2f} instances found per frame{extra}")
        det = r.get("switch_detail") or []
        if det:
            near = sum(d["centre_distance_body"] < 1.0 for d in det)
            lone = sum(d["instances"] < 2 for d in det)
            bad = sum(any(e is None or e > 0.25 * r.get("body_px", np.inf) for e in d["error_px"]) for d in det)
            cov = sum(d["in_suspect"] for d in det)
            lines.append(f"  - its {len(det)} switches: {near} with the animals' centres within one body size, {lone} in "
                         f"frames with fewer than 2 instances, {bad} where an animal has no instance within a quarter "
                         f"body (or none), {cov} inside a swap-suspect event; frames "
                         + ", ".join(str(d["frame"]) for d in det[:20]) + (" ..." if len(det) > 20 else ""))
    if contacts:
        lines += ["", f"Virtual pair, the predictor's contact options on the same {contacts['frames']} frames "
                  "(`contacts` stage):", "",
                  "| variant | IDF1 | switches | identity accuracy | instances per frame | per-animal error mean px (detected) |",
                  "|---|---|---|---|---|---|"]
        for name, v in contacts["variants"].items():
            errs = "; ".join(f"{k} {e['mean_px']:.2f} ({e['detected']:.3f})" for k, e in v["errors"].items())
            lines.append(f"| {name} | {v['idf1']:.4f} | {int(v['switches'])} | {v['identity_accuracy']:.4f} | "
                         f"{v['found_per_frame']:.3f} | {errs} |")
        lines.append(f"\nCost: split_merged {contacts['split_cost']}, propagate {contacts['propagate_cost']}, "
                     f"both {contacts['both_cost']}")
    text = "\n".join(lines)
    if args.out:
        Path(args.out).write_text(Path(args.out).read_text().split("<!-- table -->")[0] + "<!-- table -->\n" + text + "\n"
                                  if Path(args.out).is_file() else text + "\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["virtual", "contacts", "centring", "flies", "report"])
    parser.add_argument("--work", default="/tmp/multi_animal_pose")
    parser.add_argument("--cpu-minutes", type=float, default=10.0, help="training budget of each dataset (both models)")
    parser.add_argument("--train-seconds", type=float, default=60.0)
    parser.add_argument("--label-frames", type=int, default=48)
    parser.add_argument("--test-seconds", type=float, default=600.0)
    parser.add_argument("--score-seconds", type=float, default=None, help="predict and score only the first seconds")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--render-seed", type=int, default=0, help="another virtual pair: render seeds 101+N (train), "
                        "202+N (test)")
    parser.add_argument("--centroid-share", type=float, default=0.3, help="share of --cpu-minutes for the centroid model")
    parser.add_argument("--train-only", action="store_true", help="stop after rendering/importing and training")
    parser.add_argument("--split-merged", action="store_true", help="split centroid peaks merged in contacts")
    parser.add_argument("--no-propagate", action="store_true", help="infer without crops at the previous frame's instances")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(1)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    global SPLIT_MERGED, PROPAGATE
    SPLIT_MERGED = args.split_merged
    PROPAGATE = not args.no_propagate
    if args.stage == "virtual":
        print(json.dumps(run_virtual(args), indent=1, default=float))
    elif args.stage == "centring":
        print(json.dumps(run_centring(args), indent=1, default=float))
    elif args.stage == "contacts":
        print(json.dumps(run_contacts(args), indent=1, default=float))
    elif args.stage == "flies":
        print(json.dumps(run_flies(args), indent=1, default=float))
    print(report(args))


if __name__ == "__main__":
    main()
