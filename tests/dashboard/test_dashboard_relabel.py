"""Worst frames -> outlier extraction -> labelling: the frames a flagged animal's model was unsure
of go into a pose project, with the predictions as machine labels the labelling page shows."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dashboard.paths import PathOutsideRootError
from dashboard.refine_link import (
    extract_for_labelling,
    keypoint_mismatch,
    pose_projects,
    predictions_file,
)

KEYPOINTS = ["snout", "left_ear", "right_ear", "tail_base"]
N_FRAMES = 40
LOW = [5, 12, 13, 21, 30, 37]  # frames with one body part below the cut-off


def _root(tmp_path: Path) -> tuple[Path, Path, Path]:
    from pose.dataset import from_numpy
    from pose.io import save
    from pose.pipeline.project import create_project

    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    video = root / "data" / "m1.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(N_FRAMES):  # every frame different: grey level and a square that moves
        img = np.full((48, 64, 3), 3 * i, np.uint8)
        img[10:20, i:i + 10] = 255
        w.write(img)
    w.release()
    rng = np.random.default_rng(0)
    pos = rng.uniform(5, 40, (N_FRAMES, 2, len(KEYPOINTS), 1))
    conf = np.full((N_FRAMES, len(KEYPOINTS), 1), 0.95)
    for j, f in enumerate(LOW):
        conf[f, j % len(KEYPOINTS), 0] = 0.2
    save(from_numpy(pos, conf, keypoints=KEYPOINTS, fps=25.0), root / "data" / "m1.nc")
    create_project(root / "proj", KEYPOINTS, scorer="tester")
    return root, video, root / "data" / "m1.nc"


def test_uncertain_frames_extracted_with_predictions_to_correct(tmp_path: Path):
    from pose.io import load
    from pose.refine.labels import LabelStore, read_project_info

    root, video, pred = _root(tmp_path)
    assert pose_projects(root) == ["proj"]
    assert predictions_file(root, {"pose_path": str(pred)}, root / "nope.nc") == pred.resolve()
    got = extract_for_labelling(root, "proj", video, pred, name="m1_1", cutoff=0.6, n_frames=4)
    assert got.n_candidates == len(LOW)  # exactly the frames with a body part below 0.6
    assert len(got.frames) == 4 and set(got.frames.tolist()) <= set(LOW)
    assert got.folder == (root / "proj" / "labeled-data" / "m1_1").resolve()
    cap = cv2.VideoCapture(str(video))  # independent reference: OpenCV's decoder
    ds = load(pred)
    store = LabelStore(read_project_info(root / "proj"), "m1_1")
    assert len(store.images) == 4
    for frame, image in zip(got.frames, got.images, strict=True):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(frame))
        ok, bgr = cap.read()
        written = cv2.imread(str(root / "proj" / image))
        assert ok and np.abs(written.astype(int) - bgr.astype(int)).max() <= 2, frame
        xy, c = store.machine_points(image)  # what the labelling page draws as diamonds
        np.testing.assert_allclose(xy, ds["position"].values[frame, :, :, 0].T)
        np.testing.assert_allclose(c, ds["confidence"].values[frame, :, 0])
        assert (c < 0.6).sum() == 1
    cap.release()


def test_refusals_name_the_problem(tmp_path: Path):
    from pose.pipeline.project import create_project

    root, video, pred = _root(tmp_path)
    assert keypoint_mismatch(KEYPOINTS, KEYPOINTS) is None
    create_project(root / "other", ["nose", "tail_base"])
    with pytest.raises(ValueError, match=r"other: the project's body parts \(nose, tail_base\) lack snout, left_ear"):
        extract_for_labelling(root, "other", video, pred, name="m1_1", cutoff=0.6)
    outside = tmp_path / "elsewhere.avi"
    outside.write_bytes(video.read_bytes())
    with pytest.raises(PathOutsideRootError):
        extract_for_labelling(root, "proj", outside, pred, name="m1_1", cutoff=0.6)
    with pytest.raises(PathOutsideRootError):
        extract_for_labelling(root, "../", video, pred, name="m1_1", cutoff=0.6)
    # a pose_path outside the root is not used: the results' own pose file is
    assert predictions_file(root, {"pose_path": str(tmp_path / "x.nc")}, pred) == pred.resolve()
