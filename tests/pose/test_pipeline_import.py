"""``ethopose pose import``: labels of other tools -> a project, round trips per format.

Each test makes a tiny source, imports it, loads the project's CollectedData back with
``load_labels`` and compares coordinates (and pixels) with the source's.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from pose.pipeline.importers import LabelImportError, frame_numbers, read_labels, write_project
from pose.pipeline.project import load_labels

from .pipeline_helpers import write_video

BODYPARTS = ["nose", "left_ear", "right_ear"]


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _images(folder: Path, n: int, seed: int = 0, suffix: str = ".png") -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        out.append(folder / f"frame{i:03d}{suffix}")
        cv2.imwrite(str(out[-1]), rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    return out


def _dlc_file(path: Path, images: list[str], kps: np.ndarray) -> Path:
    import pose.io
    from pose.dataset import from_numpy

    ds = from_numpy(kps.transpose(0, 2, 1), keypoints=BODYPARTS, individuals=["individual_0"])
    ds = ds.assign_coords(image=("time", images))
    ds.attrs["scorer"] = "someone"
    return pose.io.save(ds, path)


def _lightning_pose_csv(path: Path, images: list[str], kps: np.ndarray) -> Path:
    """A CollectedData.csv as Lightning Pose / DeepLabCut write it (3 header rows, one path
    column; NaN as an empty field), written by hand, not by our own writer."""
    rows = [",".join(["scorer"] + ["someone"] * (2 * len(BODYPARTS))),
            ",".join(["bodyparts"] + [b for b in BODYPARTS for _ in "xy"]),
            ",".join(["coords"] + ["x", "y"] * len(BODYPARTS))]
    for im, k in zip(images, kps, strict=True):
        rows.append(",".join([im] + ["" if np.isnan(v) else repr(float(v)) for v in k.ravel()]))
    path.write_text("\n".join(rows) + "\n")
    return path


def _labels_of(project) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    ls = load_labels(project)
    return ({im: ls.keypoints[i] for i, im in enumerate(ls.images)},
            {im: _rgb(project.root / im) for im in ls.images})


@pytest.mark.parametrize("paths", ["absolute", "relative"])
def test_dlc_csv_outside_a_project(tmp_path, paths):
    files = _images(tmp_path / "elsewhere" / "sessionA", 4)
    kps = np.random.default_rng(1).uniform(0, 30, (4, 3, 2))
    kps[2, 1] = np.nan
    names = [str(f) if paths == "absolute" else f"sessionA/{f.name}" for f in files]
    src = _lightning_pose_csv(tmp_path / "elsewhere" / "CollectedData.csv", names, kps)
    project = write_project(read_labels(src), tmp_path / "proj")
    coords, pixels = _labels_of(project)
    assert sorted(coords) == [f"labeled-data/sessionA/{f.name}" for f in files]
    for i, f in enumerate(files):
        key = f"labeled-data/sessionA/{f.name}"
        np.testing.assert_allclose(coords[key], kps[i], equal_nan=True)
        assert (project.root / key).read_bytes() == f.read_bytes()  # copied byte for byte
    assert project.config.bodyparts == BODYPARTS and project.raw["scorer"] == "imported"


def test_dlc_csv_with_a_missing_image_names_the_row(tmp_path):
    files = _images(tmp_path / "d" / "s", 2)
    src = _dlc_file(tmp_path / "d" / "CollectedData_x.csv", [f"s/{files[0].name}", "s/gone.png"],
                    np.zeros((2, 3, 2)))
    with pytest.raises(LabelImportError, match=r"row 1: image s/gone.png not found"):
        read_labels(src)


def test_coco_keypoints_json(tmp_path):
    files = _images(tmp_path / "coco" / "images", 3, suffix=".jpg")
    rng = np.random.default_rng(2)
    truth = rng.uniform(0, 30, (3, 2, 3, 2)).round(2)  # image, individual, keypoint, xy
    anns, visible = [], np.ones((3, 2, 3), int) * 2
    visible[0, 0, 2] = 0  # not labelled -> NaN
    visible[1, 1, 0] = 1  # labelled but occluded -> kept
    for i in range(3):
        for j in range(2 if i < 2 else 1):  # the last image has one animal
            trip = np.concatenate([truth[i, j], visible[i, j, :, None]], axis=1).ravel().tolist()
            anns.append({"id": len(anns) + 1, "image_id": 10 + i, "category_id": 1, "keypoints": trip,
                         "num_keypoints": 3})
    coco = {"images": [{"id": 10 + i, "file_name": f.name, "width": 40, "height": 30} for i, f in enumerate(files)]
            + [{"id": 99, "file_name": "unlabelled.jpg", "width": 40, "height": 30}],
            "annotations": anns,
            "categories": [{"id": 1, "name": "mouse", "keypoints": BODYPARTS, "skeleton": [[1, 2], [1, 3]]}]}
    (tmp_path / "coco" / "annotations").mkdir()
    src = tmp_path / "coco" / "annotations" / "keypoints.json"
    src.write_text(json.dumps(coco))
    labels = read_labels(src)
    assert labels.notes == ["1 images without keypoint annotations left out"]
    project = write_project(labels, tmp_path / "proj")
    assert project.config.skeleton == [["nose", "left_ear"], ["nose", "right_ear"]]
    ls = load_labels(project)
    assert ls.names == [f"individual_{j}/{b}" for j in range(2) for b in BODYPARTS]
    expect = np.where(visible[..., None] > 0, truth, np.nan)
    expect[2, 1] = np.nan  # no second animal in the last image
    np.testing.assert_allclose(ls.keypoints, expect.reshape(3, 6, 2), equal_nan=True)
    assert (project.root / ls.images[0]).read_bytes() == files[0].read_bytes()


def test_sleap_package_with_embedded_frames(tmp_path):
    sio = pytest.importorskip("sleap_io")
    rng = np.random.default_rng(3)
    src_video = write_video(tmp_path / "src.avi", rng.integers(0, 255, (6, 30, 40, 3), dtype=np.uint8))
    skel = sio.Skeleton(list(BODYPARTS))  # sleap-io turns the list it is given into Nodes
    skel.add_edge("nose", "left_ear")
    tracks = [sio.Track("mouse_a"), sio.Track("mouse_b")]
    video = sio.Video.from_filename(str(src_video))
    truth = rng.uniform(2, 28, (2, 2, 3, 2))
    truth[1, 0, 1] = np.nan
    frames = []
    for r, fi in enumerate((1, 4)):
        insts = [sio.Instance.from_numpy(truth[r, j], skeleton=skel, track=tracks[j]) for j in range(2)]
        frames.append(sio.LabeledFrame(video=video, frame_idx=fi, instances=insts))
    pkg = tmp_path / "labels.pkg.slp"
    sio.save_slp(sio.Labels(labeled_frames=frames, skeletons=[skel], videos=[video], tracks=tracks), str(pkg),
                 embed="user", verbose=False)
    src_video.unlink()  # only the embedded frames are left
    embedded = [lf.image for lf in sio.load_slp(str(pkg)).labeled_frames]
    project = write_project(read_labels(pkg), tmp_path / "proj")
    ls = load_labels(project)
    assert ls.images == ["labeled-data/src/img00001.png", "labeled-data/src/img00004.png"]
    assert ls.names == [f"{t}/{b}" for t in ("mouse_a", "mouse_b") for b in BODYPARTS]
    np.testing.assert_allclose(ls.keypoints, truth.reshape(2, 6, 2), equal_nan=True)
    for im, pixels in zip(ls.images, embedded, strict=True):
        np.testing.assert_array_equal(_rgb(project.root / im), pixels)
    assert project.config.skeleton == [["nose", "left_ear"]]


@pytest.mark.parametrize(("names", "n_video", "offset", "expect", "why"), [
    (["v/0050.png", "v/0051.png", "v/0052.png"], 3, None, [0, 1, 2], "first name is frame 0"),
    (["v/img0002.png", "v/img0005.png"], 10, None, [2, 5], "offset 0"),
    (["v/img0002.png", "v/img0005.png"], 10, 2, [0, 3], "--frame-offset 2"),
    (None, 5, None, [0, 1, 2], "row order"),
])
def test_frame_mapping_from_names_and_rows(names, n_video, offset, expect, why):
    frames, reason = frame_numbers(names, 3 if names is None else len(names), n_video, offset)
    assert frames.tolist() == expect and why in reason


def test_frame_mapping_outside_the_video_is_refused():
    with pytest.raises(LabelImportError, match="outside the video"):
        frame_numbers(["a/0001.png", "a/0050.png"], 2, 10, 0)


def test_labels_of_video_frames_extract_the_exact_frames(tmp_path):
    from pose.video import VideoReader

    rng = np.random.default_rng(4)
    video = write_video(tmp_path / "walk.avi", rng.integers(0, 255, (12, 30, 40, 3), dtype=np.uint8))
    kps = rng.uniform(0, 30, (5, 3, 2))
    names = [f"labeled-data/walk/{i:04d}.png" for i in range(20, 25)]  # row i = frame i, names offset 20
    src = _dlc_file(tmp_path / "walk_gt.h5", names, kps)
    labels = read_labels(src, video=video)
    assert "offset 20" in labels.notes[0]
    project = write_project(labels, tmp_path / "proj")
    ls = load_labels(project)
    assert ls.images == [f"labeled-data/walk/img{i:04d}.png" for i in range(5)]
    np.testing.assert_allclose(ls.keypoints, kps)
    with VideoReader(video) as r:
        for i, im in enumerate(ls.images):
            np.testing.assert_array_equal(_rgb(project.root / im), r.read(i))
    assert str(video.resolve()) in project.raw["video_sets"]
    # the user's mapping wins: names taken as frame numbers minus 13 -> frames 7..11
    ls2 = load_labels(write_project(read_labels(src, video=video, frame_offset=13), tmp_path / "proj2"))
    with VideoReader(video) as r:
        np.testing.assert_array_equal(_rgb(tmp_path / "proj2" / ls2.images[0]), r.read(7))


def test_cli_import_prints_the_mapping_and_refuses_an_existing_project(tmp_path):
    from pose.pipeline.cli import app

    video = write_video(tmp_path / "v.avi", np.zeros((4, 30, 40, 3), np.uint8))
    src = _dlc_file(tmp_path / "gt.csv", [f"x/{i:04d}.png" for i in range(10, 13)], np.ones((3, 3, 2)))
    runner = CliRunner()
    res = runner.invoke(app, ["import", str(src), str(tmp_path / "p"), "--video", str(video)])
    assert res.exit_code == 0, res.output
    assert "offset 10" in res.output and "3 labelled frames" in res.output
    res = runner.invoke(app, ["import", str(src), str(tmp_path / "p"), "--video", str(video)])
    assert res.exit_code == 1 and "exists already" in res.output and "Traceback" not in res.output


def test_horse10_labels_of_video_frames(tmp_path):
    from pose.video import VideoReader
    from tests.conftest import shared_path

    folder = shared_path("horse10-shadow")
    src, video = folder / "BrownHorseinShadow_gt.h5", folder / "BrownHorseinShadow.mp4"
    labels = read_labels(src, video=video)
    assert "offset 50" in labels.notes[0]
    project = write_project(labels, tmp_path / "horse")
    ls = load_labels(project)
    import pose.io

    truth = pose.io.load(src).position.values[:, :2, :, 0].transpose(0, 2, 1)
    assert len(ls.images) == 308
    np.testing.assert_allclose(ls.keypoints, truth, equal_nan=True)
    with VideoReader(video) as r:
        for i in (0, 1, 150, 307):
            np.testing.assert_array_equal(_rgb(project.root / ls.images[i]), r.read(i))
