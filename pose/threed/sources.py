"""Calibration inputs: images or videos per camera, synchronised frame keys, detection, picture.

Camera names come from the file names (the known camera name the path contains, or the
file's parent folder, or the stem), or explicitly as ``NAME=PATH``. Frames of different
cameras are matched by a key: for images, the file stem with the camera name removed
(``back-0219-3.jpg`` and ``top-0219-3.jpg`` are the same instant); when those keys do not
match across cameras, the position in sorted order. For videos, the frame number.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pose.atomic import atomic_path
from pose.threed.board import Board, Detection, choose_legacy_pattern, detect_board

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".webm")


class CalibrationInputError(ValueError):
    """Bad calibration input (unreadable file, unknown camera, board never found); names file and camera."""


def parse_named_paths(items: Sequence[str]) -> tuple[dict[str, list[Path]], list[Path]]:
    """Split ``NAME=PATH`` items (named) from plain paths."""
    named: dict[str, list[Path]] = {}
    plain = []
    for item in items:
        name, sep, path = item.partition("=")
        if sep and name and not Path(item).exists():
            named.setdefault(name, []).append(Path(path))
        else:
            plain.append(Path(item))
    return named, plain


def _expand(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        return images or files[:1]
    if not path.exists():
        raise CalibrationInputError(f"{path}: file not found")
    return [path]


def _name_pattern(name: str) -> re.Pattern[str]:
    """A camera name as a whole word; a numeric name also after letters (``cam3``) or zero-padded
    (``cam03``), never inside a number."""
    n = re.escape(name.lower())
    if name.isdigit():
        return re.compile(rf"(?<![0-9])0*{re.escape(str(int(name)))}(?![0-9])")
    return re.compile(rf"(^|[^a-z0-9]){n}([^a-z]|$)")


def camera_name_of(path: Path, known: Sequence[str] = ()) -> str:
    """Camera name of a file: a known name its path contains, else its folder or stem.

    The file name is searched first, then its folders from the nearest up. A numeric
    name (``3``) matches a number that is not part of a longer one (``cam3``, ``cam03``, ``3.h5``);
    when several names match, one after ``cam``/``camera``/``view`` wins.

    A folder called ``calibration_images`` (or similar) is skipped in favour of its parent.
    """
    # the most specific part first: the file's own name, then its folders from the nearest up
    parts = [path.stem.lower()] + [p.lower() for p in reversed(path.parent.parts)]
    for part in parts:
        hits = [n for n in known if _name_pattern(n).search(part)]
        if len(hits) > 1:  # "cam3" in "mouse1_cam3": a name after cam/camera/view wins
            tagged = [n for n in hits if re.search(rf"(cam|camera|view)[-_ ]?{re.escape(n.lower())}(?![a-z0-9])", part)]
            hits = tagged or hits
        if hits:
            return max(hits, key=len)
    parent = path.parent
    while parent.name and re.search(r"calib|images|frames", parent.name, re.I):
        parent = parent.parent
    if path.suffix.lower() in IMAGE_SUFFIXES and parent.name:
        return parent.name
    return path.stem


def group_by_camera(items: Sequence[str], cameras: Sequence[str] = ()) -> dict[str, list[Path]]:
    """``{camera: [files]}`` from command-line items (``NAME=PATH`` or plain paths / folders).

    Plain image files without a camera-named folder take their camera from the file stem's
    leading letters (``left01.jpg`` -> ``left``).
    """
    named, plain = parse_named_paths(items)
    out: dict[str, list[Path]] = {k: [f for p in v for f in _expand(p)] for k, v in named.items()}
    files = [f for p in plain for f in _expand(p)]
    known = list(cameras) + list(out)
    if not known:
        stems = {re.match(r"[A-Za-z_\-]*[A-Za-z]", f.stem) for f in files}
        if all(stems) and 1 < len({m.group(0) for m in stems}) <= 16:  # type: ignore[union-attr]
            known = sorted({m.group(0).rstrip("_-") for m in stems})  # type: ignore[union-attr]
    for f in files:
        out.setdefault(camera_name_of(f, known), []).append(f)
    return {k: sorted(v) for k, v in out.items()}


def _read_gray(path: Path, camera: str) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise CalibrationInputError(f"{path} (camera {camera!r}): not a readable image")
    return img


def iter_frames(camera: str, files: Sequence[Path], max_video_frames: int = 100
                ) -> Iterator[tuple[str, np.ndarray]]:
    """``(key, grey image)`` of a camera's images (key from the stem) or video (frame number).

    A video is sampled evenly to at most ``max_video_frames`` frames.
    """
    import cv2

    for path in files:
        if path.suffix.lower() in VIDEO_SUFFIXES:
            cap = cv2.VideoCapture(str(path))
            if not cap.isOpened():
                raise CalibrationInputError(f"{path} (camera {camera!r}): not a readable video")
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            step = max(1, int(np.ceil(n / max_video_frames)))
            logger.info("%s: %d frames, using every %d-th (at most %d)", path, n, step, max_video_frames)
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                if i % step == 0:
                    yield str(i), cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                i += 1
            cap.release()
        else:
            stem = re.sub(re.escape(camera), "", path.stem, flags=re.I).strip("-_ ") or path.stem
            yield stem, _read_gray(path, camera)


def _sync_keys(keys: Mapping[str, list[str]]) -> dict[str, dict[str, str]]:
    """Map each camera's raw frame keys to shared keys (themselves, or their sorted position)."""
    sets = [set(v) for v in keys.values()]
    if len(sets) == 1 or all(len(s & sets[0]) >= 0.5 * min(len(s), len(sets[0])) for s in sets[1:]):
        return {c: {k: k for k in v} for c, v in keys.items()}
    lens = {c: len(v) for c, v in keys.items()}
    logger.warning("frame names do not match across cameras; pairing images by sorted order (%s)", lens)
    if len(set(lens.values())) != 1:
        raise CalibrationInputError(
            f"cannot pair the cameras' calibration frames: their names differ and their counts "
            f"differ too ({lens}); name them alike (e.g. left01.jpg / right01.jpg)"
        )
    return {c: {k: f"{i:05d}" for i, k in enumerate(v)} for c, v in keys.items()}


def detect_all(sources: Mapping[str, Sequence[Path]], board: Board, *, max_video_frames: int = 100,
               ) -> tuple[dict[str, dict[str, Detection]], dict[str, dict[str, str]], dict[str, tuple[int, int]],
                          dict[str, dict[str, Path]]]:
    """Detect the board in every frame of every camera.

    Returns
    -------
    detections, rejected, sizes, frame_files
        ``{camera: {key: Detection}}``, ``{camera: {key: reason}}`` for frames without a
        board, ``{camera: (width, height)}`` and ``{camera: {key: file}}``.

    Raises
    ------
    CalibrationInputError
        A camera whose images differ in size, or in which the board is never found
        (naming the camera and its files).
    """
    raw: dict[str, dict[str, Detection | None]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    files_of: dict[str, dict[str, Path]] = {}
    total = sum(len(v) for v in sources.values())
    bar = tqdm(total=total, desc="detect board", unit="file", disable=None)
    for cam, files in sources.items():
        raw[cam], files_of[cam] = {}, {}
        for path in files:
            for key, gray in iter_frames(cam, [path], max_video_frames):
                size = (gray.shape[1], gray.shape[0])
                if sizes.setdefault(cam, size) != size:
                    raise CalibrationInputError(
                        f"{path} (camera {cam!r}): image size {size} differs from the camera's "
                        f"first image {sizes[cam]}"
                    )
                if board.kind == "charuco" and board.legacy_pattern is None:
                    board = choose_legacy_pattern([gray], board)
                    logger.info("ChArUco layout: %s", "legacy (OpenCV < 4.6)" if board.legacy_pattern else "current")
                raw[cam][key] = detect_board(gray, board)
                files_of[cam][key] = path
            bar.update(1)
    bar.close()
    mapping = _sync_keys({c: list(v) for c, v in raw.items()})
    detections: dict[str, dict[str, Detection]] = {}
    rejected: dict[str, dict[str, str]] = {}
    for cam, dets in raw.items():
        m = mapping[cam]
        detections[cam] = {m[k]: d for k, d in dets.items() if d is not None}
        rejected[cam] = {m[k]: "board not detected" for k, d in dets.items() if d is None}
        files_of[cam] = {m[k]: f for k, f in files_of[cam].items()}
        if not detections[cam]:
            names = sorted({str(f) for f in sources[cam]})
            raise CalibrationInputError(
                f"camera {cam!r}: the {board.kind} board ({board.board_x}x{board.board_y}) was never "
                f"detected in {len(dets)} frame(s) of {names[:3]}{' ...' if len(names) > 3 else ''}; "
                "check board_x/board_y (checkerboard: inner corners; ChArUco: squares)"
            )
        logger.info("camera %s: board found in %d of %d frames", cam, len(detections[cam]), len(dets))
    return detections, rejected, sizes, files_of


def save_corner_picture(
    path: str | os.PathLike,
    frame_files: Mapping[str, Mapping[str, Path]],
    detections: Mapping[str, Mapping[str, Detection]],
    reprojected: Mapping[str, Mapping[str, np.ndarray]],
    rms_px: Mapping[str, float],
    tile_width_px: int = 640,
) -> Path:
    """A PNG with, per camera, its view with most corners: detected (green), reprojected (red)."""
    import cv2

    tiles = []
    for cam, dets in detections.items():
        usable = [k for k in dets if k in reprojected.get(cam, {})] or list(dets)
        key = max(usable, key=lambda k: len(dets[k].ids))
        src = frame_files[cam][key]
        frames = dict(iter_frames(cam, [src], max_video_frames=10**9)) if src.suffix.lower() in VIDEO_SUFFIXES else None
        gray = frames[key] if frames is not None else _read_gray(src, cam)
        img = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        rad = max(2, int(round(img.shape[1] / 200)))
        for x, y in dets[key].image_points:
            cv2.circle(img, (int(round(x)), int(round(y))), rad, (0, 255, 0), -1)
        for x, y in reprojected.get(cam, {}).get(key, np.empty((0, 2))):
            if np.isfinite([x, y]).all():
                cv2.drawMarker(img, (int(round(x)), int(round(y))), (0, 0, 255), cv2.MARKER_CROSS, 3 * rad, 1)
        scale = tile_width_px / img.shape[1]
        img = cv2.resize(img, (tile_width_px, int(round(img.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        label = f"{cam} frame {key}: {len(dets[key].ids)} corners, RMS {rms_px.get(cam, float('nan')):.2f} px"
        cv2.putText(img, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3)
        cv2.putText(img, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
        tiles.append(img)
    height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    cols = 2 if len(tiles) > 2 else len(tiles)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)]
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.vstack(rows)):
            raise OSError(f"{path}: could not write the PNG")
    return Path(path)
