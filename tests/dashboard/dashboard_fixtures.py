"""A small results folder for the dashboard tests (4 synthetic mice, 20 s each)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd


def _add_badly_tracked(data: Path, cohort: Path) -> None:
    """A fifth control mouse ('bad01'): cont02's pose with 60 % of the frames at confidence 0.05."""
    from pose.io import load, save

    (data / "bad01").mkdir()
    shutil.copy(data / "cont02" / "arena.json", data / "bad01" / "arena.json")
    ds = load(data / "cont02" / "pose.nc")
    conf = ds["confidence"].values.copy()
    rng = np.random.default_rng(7)
    conf[rng.random(conf.shape[0]) < 0.6] = 0.05
    ds["confidence"].values[...] = conf
    save(ds, data / "bad01" / "pose.nc")
    with cohort.open("a") as f:
        f.write("bad01,control,0.0,M,1,bad01/pose.nc\n")


def _write_video(data: Path, key: str, cohort: Path) -> None:
    """A 640x480 video for ``key`` (a bright blob at its centre keypoint on a dark floor), named
    in a ``video_path`` column of the cohort."""
    import cv2

    from pose.io import load

    pos = load(data / key / "pose.nc")["position"].isel(individual=0).values  # (time, space, keypoint)
    xy = np.nanmean(pos, axis=2)
    w = cv2.VideoWriter(str(data / key / "video.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 480))
    for i in range(len(xy)):
        img = np.full((480, 640, 3), 30, np.uint8)
        cv2.rectangle(img, (100, 20), (540, 460), (90, 90, 90), 2)
        if np.isfinite(xy[i]).all():
            cv2.circle(img, (int(xy[i, 0]), int(xy[i, 1])), 18, (230, 230, 230), -1)
        cv2.putText(img, f"frame {i}", (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        w.write(img)
    w.release()
    table = pd.read_csv(cohort, dtype=str, keep_default_na=False)
    table["video_path"] = np.where(table["subject_id"] == key, f"{key}/video.avi", "")
    table.to_csv(cohort, index=False)


def _write_failed_model(results: Path) -> None:
    """``results/model/evaluation.json`` of a pose model that failed (test error 31 % of the animal)."""
    import json

    (results / "model").mkdir()
    (results / "model" / "evaluation.json").write_text(json.dumps({
        "pcutoff": 0.6, "animal_size_px": 130.0,
        "train": {"n_images": 40, "mean_px": 30.0, "normalized_error": 0.23, "pck_size10": 0.3},
        "test": {"n_images": 10, "mean_px": 40.3, "normalized_error": 0.31, "pck_size10": 0.1}}))


def _write_pose_project(root: Path, pose_file: Path) -> None:
    """``root/pose_project``: an empty pose project with the cohort's body parts (for relabelling)."""
    from pose.io import load
    from pose.pipeline.project import create_project

    keypoints = [str(k) for k in load(pose_file)["keypoint"].values]
    create_project(root / "pose_project", keypoints, scorer="tester")


def make_results_root(root: Path, *, bad_animal: bool = False) -> Path:
    """Write a synthetic cohort under ``root/data`` and its results under ``root/results``.

    ``bad_animal`` adds a badly tracked fifth mouse (its QC flag fails, so it is left out of
    the group statistics and the groups keep two animals each) with a video (``video_path``),
    a failed pose model evaluation in ``results/model/evaluation.json`` and an empty pose
    project ``pose_project`` with the cohort's body parts (the worst frames go there).
    """
    from protocols.batch import run_cohort
    from protocols.synthetic_cohort import write_synthetic_cohort

    cohort = write_synthetic_cohort(root / "data", n_per_group=2, seconds=20.0, fps=25.0)
    if bad_animal:
        _add_badly_tracked(root / "data", cohort)
        _write_video(root / "data", "bad01", cohort)
    run_cohort("open_field", cohort, root / "results", n_workers=0, progress=False)
    if bad_animal:
        _write_failed_model(root / "results")
        _write_pose_project(root, root / "data" / "bad01" / "pose.nc")
    # per-frame human scoring of 'rearing' for the validation page: the results' own
    # vector with a few frames flipped
    rows = []
    for key in ("cont01_1", "trea01_1"):
        frames = pd.read_parquet(root / "results" / "animals" / key / "frames.parquet")
        v = frames["rearing"].to_numpy(int).copy()
        v[:10] = 1 - v[:10]
        rows += [{"subject_id": key.split("_")[0], "session": 1, "frame": i, "rearing": int(x)}
                 for i, x in enumerate(v)]
    pd.DataFrame(rows).to_csv(root / "data" / "human_rearing.csv", index=False)
    return root


#: the frame from which the social fixture's two mice have their identities swapped (they are
#: ~250 px apart there, so both tracks jump)
INJECTED_SWAP_FRAME = 400


def make_pose_review_root(root: Path) -> dict[str, Path]:
    """Pose files for the review page under ``root``.

    ``social/tracked.nc``: two same-coat virtual mice (20 s at 25 fps, frequent contacts),
    detections with low noise and shuffled instance order tracked by
    :func:`pose.tracking.track_identities` (so it has an identity confidence), then
    ``track_0`` and ``track_1`` swapped from :data:`INJECTED_SWAP_FRAME` on;
    ``social/tracked_ok.nc``: the tracker's output without the injected swap;
    ``threed/points3d.nc``: the virtual mouse in world mm (20 s at 25 fps, z up, floor at
    z = 0), as ``ethopose pose triangulate`` writes it.
    """
    from pose.io import save
    from pose.synthetic.multicam import lift_to_3d
    from pose.synthetic.openfield import simulate_open_field
    from pose.synthetic.social import DetectionNoise, simulate_detections, simulate_social
    from pose.tracking import TrackingConfig, swap_identities, track_identities

    (root / "social").mkdir(parents=True, exist_ok=True)
    (root / "threed").mkdir(parents=True, exist_ok=True)
    truth = simulate_social(20.0, fps=25.0, seed=3).pose
    detections, _ = simulate_detections(truth, DetectionNoise.preset("low"), seed=0)
    tracked = track_identities(detections, TrackingConfig(n_animals=2)).pose
    a, b = (str(n) for n in tracked.individual.values)
    swapped = swap_identities(tracked, a, b, INJECTED_SWAP_FRAME)
    swapped.attrs["history"] = swapped.attrs["history"][:-1]  # a tracker's mistake, not a recorded correction
    return {"ok": save(tracked, root / "social" / "tracked_ok.nc"),
            "tracked": save(swapped, root / "social" / "tracked.nc"),
            "threed": save(lift_to_3d(simulate_open_field(20.0, fps=25.0, seed=1)), root / "threed" / "points3d.nc")}
