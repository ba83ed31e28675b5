"""The dashboard never reads or writes outside its root: resolve_inside refuses escapes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dashboard.paths import PathOutsideRootError, files_inside, resolve_inside


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "results" / "animals").mkdir(parents=True)
    (r / "results" / "a.csv").write_text("x\n1\n")
    (tmp_path / "secret.txt").write_text("secret")
    return r


def test_inside_paths_resolve(root: Path):
    assert resolve_inside(root, "") == root.resolve()
    assert resolve_inside(root, "results/a.csv") == (root / "results" / "a.csv").resolve()
    assert resolve_inside(root, "results/./animals") == (root / "results" / "animals").resolve()
    assert resolve_inside(root, "not/yet/there.csv") == (root / "not" / "yet" / "there.csv").resolve()
    assert resolve_inside(root, root / "results" / "a.csv", allow_absolute=True).name == "a.csv"


@pytest.mark.parametrize("bad", ["..", "../secret.txt", "results/../../secret.txt", "results/..", "~/x", "a\x00b"])
def test_traversal_refused(root: Path, bad: str):
    with pytest.raises(PathOutsideRootError):
        resolve_inside(root, bad)


def test_absolute_refused_unless_allowed_and_inside(root: Path, tmp_path: Path):
    with pytest.raises(PathOutsideRootError, match="refusing absolute path"):
        resolve_inside(root, str(root / "results"))
    with pytest.raises(PathOutsideRootError, match="outside the root"):
        resolve_inside(root, tmp_path / "secret.txt", allow_absolute=True)
    with pytest.raises(PathOutsideRootError, match="refusing absolute path"):
        resolve_inside(root, "/etc/passwd")


def test_symlinks_escaping_refused(root: Path, tmp_path: Path):
    os.symlink(tmp_path / "secret.txt", root / "results" / "link.txt")
    os.symlink(tmp_path, root / "up")
    os.symlink(root / "results" / "a.csv", root / "inner_link.csv")
    with pytest.raises(PathOutsideRootError, match="outside the root"):
        resolve_inside(root, "results/link.txt")
    with pytest.raises(PathOutsideRootError, match="outside the root"):
        resolve_inside(root, "up/secret.txt")
    assert resolve_inside(root, "inner_link.csv") == (root / "results" / "a.csv").resolve()
    with pytest.raises(PathOutsideRootError):
        files_inside(root, "results")
    (root / "results" / "link.txt").unlink()
    assert [p.name for p in files_inside(root, "results")] == ["a.csv", "animals"]


def test_missing_root(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        resolve_inside(tmp_path / "nope", "x")


def test_video_frames_only_from_inside_the_root(root: Path, tmp_path: Path):
    import cv2
    import numpy as np

    from dashboard.data import frame_jpeg, video_inside_root, video_reader
    from protocols.results import AnimalResult

    def write_video(path: Path) -> None:
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
        for i in range(5):
            w.write(np.full((48, 64, 3), 40 * i, np.uint8))
        w.release()

    inside, outside = root / "results" / "m1.avi", tmp_path / "m2.avi"
    write_video(inside)
    write_video(outside)

    def animal(video: Path) -> AnimalResult:
        return AnimalResult("m_1", {"video_path": str(video), "pose_path": str(root / "results" / "p.nc")},
                            {}, None, {}, [], 10.0, root / "results")

    found = video_inside_root(root, animal(inside), {"video_path": None})
    assert found == inside.resolve()
    frame = video_reader(found).read(3)  # pose.video's reader, kept open between reruns
    cap = cv2.VideoCapture(str(found))  # independent reference: OpenCV's decoder
    cap.set(cv2.CAP_PROP_POS_FRAMES, 3)
    ok, bgr = cap.read()
    cap.release()
    assert ok and frame.shape == (48, 64, 3) and abs(float(frame.mean()) - 120) < 10
    assert np.abs(frame.astype(int) - bgr[..., ::-1]).max() <= 2
    nan = np.full((2, 1), np.nan)
    jpeg = frame_jpeg(str(found), found.stat().st_mtime, 3, nan, np.zeros(1), ("c",), 0.5)
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert jpeg[:2] == b"\xff\xd8" and np.abs(decoded.astype(int) - bgr).mean() < 3
    assert video_inside_root(root, animal(outside), {"video_path": None}) is None
    rel = AnimalResult("m_1", {"pose_path": str(root / "results" / "p.nc")}, {}, None, {}, [], 10.0, root)
    assert video_inside_root(root, rel, {"video_path": "m1.avi"}) == inside.resolve()
    assert video_inside_root(root, rel, {"video_path": "../../m2.avi"}) is None
