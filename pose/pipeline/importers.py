"""Labels from other tools -> a project (``ethopose pose import SOURCE PROJECT``).

One reader per source format, each returning :class:`ImportedLabels` (one common form),
then one writer, :func:`write_project`, that makes the project: ``config.yaml`` +
``labeled-data/<group>/<image>`` + ``CollectedData_<scorer>.h5`` and ``.csv`` per group.

=====================  ==================================================================
``--format``           source
=====================  ==================================================================
``dlc``                a DeepLabCut or Lightning Pose ``CollectedData*.csv``/``.h5`` whose
                       image paths point anywhere: absolute, or relative to the file's
                       folder or one of its parents (Lightning Pose: the project root)
``sleap``              a SLEAP ``.slp`` / ``.pkg.slp`` with embedded frames (user-labelled
                       instances; tracks become individuals)
``coco``               a COCO keypoints JSON (``images``, ``annotations`` with ``keypoints``
                       ``[x, y, v]`` triplets, ``categories`` with ``keypoints`` names and
                       ``skeleton``); ``v = 0`` (not labelled) -> NaN
``video``              labels of a video's frames (any file :func:`pose.io.load` reads,
                       rows = frames) + ``--video``: the frames are extracted exactly with
                       :class:`pose.video.VideoReader` (frame ``i`` here is frame ``i`` of
                       ``pose analyze``)
=====================  ==================================================================

Coordinates are taken as they are in the source (no half-pixel shift between tools).
Image files are copied byte for byte; frames that exist only as pixels (SLEAP embedded,
video) are written as PNG (lossless).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from pose.atomic import atomic_path

log = logging.getLogger(__name__)

SourceFormat = Literal["auto", "dlc", "sleap", "coco", "video"]
FORMATS: tuple[str, ...] = ("auto", "dlc", "sleap", "coco", "video")


class LabelImportError(ValueError):
    """A source cannot be imported; the message names the file (and row or field)."""


@dataclass(frozen=True)
class LabelledFrame:
    """Where one labelled frame's pixels come from: an image ``path`` (copied as is), RGB
    uint8 ``pixels``, or frame ``frame_index`` of ``video``; it is written to
    ``labeled-data/<group>/<name>``."""

    group: str
    name: str
    path: Path | None = None
    pixels: np.ndarray | None = None
    video: Path | None = None
    frame_index: int | None = None


@dataclass
class ImportedLabels:
    """Labels from any source, in one form.

    Attributes
    ----------
    bodyparts, individuals
        Names (single-animal sources have one individual, ``individual_0``).
    keypoints
        ``(n_frames, n_individuals, n_bodyparts, 2)`` x, y in pixels; NaN = not labelled.
    frames
        One :class:`LabelledFrame` per row of ``keypoints``.
    skeleton
        Edges as pairs of body-part names.
    notes
        Choices made while reading (printed by the CLI), e.g. the frame mapping.
    """

    bodyparts: list[str]
    individuals: list[str]
    keypoints: np.ndarray
    frames: list[LabelledFrame]
    skeleton: list[list[str]] = field(default_factory=list)
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        shape = (len(self.frames), len(self.individuals), len(self.bodyparts), 2)
        if self.keypoints.shape != shape:
            raise LabelImportError(f"{self.source}: keypoints {self.keypoints.shape} do not match {shape}")
        seen: set[tuple[str, str]] = set()
        for f in self.frames:
            if (f.group, f.name) in seen:
                raise LabelImportError(f"{self.source}: two labelled frames would be written to {f.group}/{f.name}")
            seen.add((f.group, f.name))


# -- DeepLabCut / Lightning Pose labels outside a project ----------------------------------------
def read_dlc_labels(path: str | Path, *, image_root: str | Path | None = None) -> ImportedLabels:
    """A ``CollectedData*.csv``/``.h5`` (DeepLabCut or Lightning Pose) with image paths.

    Each image path is looked up as given when absolute, else under ``image_root`` when
    given, else under the file's folder and then each of its parents.

    Raises
    ------
    LabelImportError
        No image index, or an image that cannot be found (names the row and path).
    """
    import pose.io

    path = Path(path)
    ds = pose.io.load(path)
    if "image" not in ds.coords:
        raise LabelImportError(f"{path}: no image paths in the index (frame-numbered labels need --video)")
    roots = [Path(image_root)] if image_root else [path.parent, *path.parent.parents][:4]
    frames = []
    for row, image in enumerate(str(x) for x in ds.coords["image"].values):
        found = _find_image(Path(image), roots)
        if found is None:
            raise LabelImportError(f"{path}: row {row}: image {image} not found (looked under {[str(r) for r in roots]}); "
                               "pass --images DIR")
        group = Path(image).parent.name or path.stem
        frames.append(LabelledFrame(group=group, name=found.name, path=found))
    return _from_dataset(ds, frames, source=str(path))


def _find_image(image: Path, roots: list[Path]) -> Path | None:
    if image.is_absolute():
        return image if image.is_file() else None
    for root in roots:
        if (root / image).is_file():
            return root / image
    return None


def _from_dataset(ds, frames: list[LabelledFrame], *, source: str, notes: list[str] | None = None) -> ImportedLabels:
    pos = ds["position"].values[:, :2]  # (time, 2, keypoint, individual)
    return ImportedLabels(
        bodyparts=[str(k) for k in ds.keypoint.values], individuals=[str(i) for i in ds.individual.values],
        keypoints=np.ascontiguousarray(pos.transpose(0, 3, 2, 1), dtype=float), frames=frames,
        skeleton=[list(e) for e in ds.attrs.get("skeleton") or []], source=source, notes=notes or [],
    )


# -- SLEAP ---------------------------------------------------------------------------------------
def read_sleap_labels(path: str | Path) -> ImportedLabels:
    """User-labelled instances of a SLEAP ``.slp``/``.pkg.slp``, with the frames' pixels
    (embedded images, or the referenced video when it can be opened).

    Tracks become individuals (in the file's track order); untracked instances are
    numbered ``individual_0...`` within each frame.
    """
    import sleap_io as sio

    path = Path(path)
    labels = sio.load_slp(str(path))
    if len(labels.skeletons) != 1:
        raise LabelImportError(f"{path}: {len(labels.skeletons)} skeletons; one is supported")
    skel = labels.skeletons[0]
    nodes = [n.name for n in skel.nodes]
    rows = [(lf, lf.user_instances) for lf in labels.labeled_frames if lf.user_instances]
    if not rows:
        raise LabelImportError(f"{path}: no user-labelled instances")
    tracks = [t.name for t in labels.tracks]
    n_ind = max(len(insts) for _, insts in rows)
    individuals = tracks if tracks else [f"individual_{i}" for i in range(n_ind)]
    kps = np.full((len(rows), len(individuals), len(nodes), 2), np.nan)
    frames = []
    videos = {id(v): i for i, v in enumerate(labels.videos)}
    for r, (lf, insts) in enumerate(rows):
        for j, inst in enumerate(insts):
            slot = tracks.index(inst.track.name) if tracks and inst.track is not None else j
            if slot >= len(individuals):
                raise LabelImportError(f"{path}: frame {lf.frame_idx}: more untracked instances than individuals")
            kps[r, slot] = np.asarray(inst.numpy(), float)[:, :2]
        try:
            img = np.asarray(lf.image)
        except Exception as err:  # noqa: BLE001 - sleap-io's readers raise many types
            raise LabelImportError(f"{path}: frame {lf.frame_idx}: no pixels ({err}); save it with embedded frames "
                               "(a .pkg.slp)") from err
        if img.ndim == 3 and img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        group = _sleap_video_name(lf.video, videos.get(id(lf.video), 0))
        frames.append(LabelledFrame(group=group, name=f"img{lf.frame_idx:05d}.png", pixels=img.astype(np.uint8)))
    skeleton = [[e.source.name, e.destination.name] for e in skel.edges]
    return ImportedLabels(bodyparts=nodes, individuals=individuals, keypoints=kps, frames=frames,
                          skeleton=skeleton, source=str(path))


def _sleap_video_name(video, index: int) -> str:
    """The stem of the video a SLEAP frame came from (the original for embedded frames)."""
    src = getattr(video, "source_video", None) or video
    name = Path(str(getattr(src, "filename", "") or "")).name
    stem = name.split(".")[0] if name else ""
    return stem or f"video{index}"


# -- COCO keypoints ------------------------------------------------------------------------------
def read_coco_labels(path: str | Path, *, image_root: str | Path | None = None) -> ImportedLabels:
    """A COCO keypoints JSON; images are looked up under ``image_root`` or the JSON's folder,
    its ``images/`` subfolder, its parent, or the parent's ``images/``.

    Annotations of one image become individuals ``individual_0...`` in file order; images
    without keypoint annotations are left out (their number is noted). ``v = 0`` -> NaN;
    ``v = 1`` (labelled, occluded) and ``v = 2`` keep their coordinates.
    """
    path = Path(path)
    try:
        coco = json.loads(path.read_text())
        cats = [c for c in coco["categories"] if c.get("keypoints")]
        images, annotations = coco["images"], coco["annotations"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise LabelImportError(f"{path}: not a COCO keypoints file ({err})") from err
    if len(cats) != 1:
        raise LabelImportError(f"{path}: {len(cats)} categories with keypoints; one is supported")
    cat = cats[0]
    bodyparts = [str(k) for k in cat["keypoints"]]
    by_image: dict = {}
    for a in annotations:
        if a.get("category_id", cat["id"]) == cat["id"] and a.get("keypoints"):
            by_image.setdefault(a["image_id"], []).append(a)
    labelled = [im for im in images if im["id"] in by_image]
    if not labelled:
        raise LabelImportError(f"{path}: no keypoint annotations")
    n_ind = max(len(v) for v in by_image.values())
    kps = np.full((len(labelled), n_ind, len(bodyparts), 2), np.nan)
    roots = [Path(image_root)] if image_root else [path.parent, path.parent / "images", path.parent.parent,
                                                    path.parent.parent / "images"]
    frames = []
    for r, im in enumerate(labelled):
        for j, a in enumerate(by_image[im["id"]]):
            trip = np.asarray(a["keypoints"], float)
            if trip.size != 3 * len(bodyparts):
                raise LabelImportError(f"{path}: annotation {a.get('id')}: {trip.size} keypoint values for "
                                   f"{len(bodyparts)} keypoints x 3")
            trip = trip.reshape(-1, 3)
            kps[r, j] = np.where(trip[:, 2:3] > 0, trip[:, :2], np.nan)
        found = _find_image(Path(im["file_name"]), roots)
        if found is None:
            raise LabelImportError(f"{path}: image {im['id']}: {im['file_name']} not found; pass --images DIR")
        group = Path(im["file_name"]).parent.name or path.stem
        frames.append(LabelledFrame(group=group, name=found.name, path=found))
    skeleton = [[bodyparts[a - 1], bodyparts[b - 1]] for a, b in cat.get("skeleton") or []]  # 1-based
    notes = [f"{len(images) - len(labelled)} images without keypoint annotations left out"] if len(labelled) < len(images) else []
    return ImportedLabels(bodyparts=bodyparts, individuals=[f"individual_{i}" for i in range(n_ind)], keypoints=kps,
                          frames=frames, skeleton=skeleton, source=str(path), notes=notes)


# -- labels of a video's frames ------------------------------------------------------------------
def frame_numbers(names: list[str] | None, n_rows: int, n_video_frames: int,
                  frame_offset: int | None = None) -> tuple[np.ndarray, str]:
    """The video frame of each labels row, and the reason for the mapping.

    With image names that end in numbers, frame = number - ``frame_offset``. Without an
    offset: 0 (the names are frame numbers, DeepLabCut's ``img0050.png`` = frame 50) when
    every number is a frame of the video, else the first name's number (the first row is
    frame 0: names offset from the frames, as in Horse-10). Without numbered names, row
    ``i`` is frame ``i - frame_offset`` (offset default 0).

    Raises
    ------
    LabelImportError
        A mapping that puts rows outside the video or two rows on one frame.
    """
    numbers = None
    if names is not None:
        found = [re.search(r"(\d+)$", Path(n).stem) for n in names]
        if all(found):
            numbers = np.array([int(m.group(1)) for m in found])  # type: ignore[union-attr]
    if numbers is None:
        base, what = np.arange(n_rows), "row order"
    else:
        base, what = numbers, "the numbers in the image names"
    if frame_offset is None:
        if numbers is None or (numbers.max() < n_video_frames):
            frame_offset = 0
            reason = f"frames from {what} (offset 0)"
        else:
            frame_offset = int(numbers.min())
            reason = (f"image names run {numbers.min()}..{numbers.max()} but the video has {n_video_frames} frames: "
                      f"the first name is frame 0 (offset {frame_offset}); pass --frame-offset to choose another")
    else:
        reason = f"frames from {what} minus --frame-offset {frame_offset}"
    frames = base - frame_offset
    if frames.min() < 0 or frames.max() >= n_video_frames:
        raise LabelImportError(f"frame mapping ({reason}) gives frames {frames.min()}..{frames.max()}, outside the "
                           f"video's 0..{n_video_frames - 1}; pass --frame-offset")
    if len(np.unique(frames)) != len(frames):
        raise LabelImportError(f"frame mapping ({reason}) puts two rows on one frame")
    return frames, reason


def read_video_labels(path: str | Path, video: str | Path, *, frame_offset: int | None = None) -> ImportedLabels:
    """Labels whose rows are frames of ``video`` (see :func:`frame_numbers` for the mapping);
    the frames are written as ``labeled-data/<video stem>/img<frame>.png``."""
    import pose.io
    from pose.video import VideoReader

    path, video = Path(path), Path(video)
    ds = pose.io.load(path)
    with VideoReader(video) as reader:
        n_video = reader.n_frames
    names = [str(x) for x in ds.coords["image"].values] if "image" in ds.coords else None
    frames, reason = frame_numbers(names, ds.sizes["time"], n_video, frame_offset)
    digits = max(4, len(str(n_video)))
    rows = [LabelledFrame(group=video.stem, name=f"img{f:0{digits}d}.png", video=video, frame_index=int(f))
            for f in frames]
    first = f"{names[0]} -> frame {frames[0]}" if names else f"row 0 -> frame {frames[0]}"
    return _from_dataset(ds, rows, source=str(path), notes=[f"{reason} ({first})"])


# -- one entry point, one writer -----------------------------------------------------------------
def detect_source_format(source: str | Path, video: str | Path | None = None) -> str:
    """``coco`` (.json), ``sleap`` (.slp), ``video`` (with a video), else ``dlc``."""
    name = Path(source).name.lower()
    if name.endswith(".json"):
        return "coco"
    if name.endswith(".slp"):
        return "sleap"
    return "video" if video is not None else "dlc"


def read_labels(source: str | Path, *, fmt: SourceFormat = "auto", video: str | Path | None = None,
                frame_offset: int | None = None, image_root: str | Path | None = None) -> ImportedLabels:
    """Read labels of any supported source (see the module docstring) into one form."""
    if fmt not in FORMATS:
        raise LabelImportError(f"unknown --format {fmt!r}; choose one of {FORMATS}")
    fmt = detect_source_format(source, video) if fmt == "auto" else fmt  # type: ignore[assignment]
    if fmt == "video":
        if video is None:
            raise LabelImportError(f"{source}: --format video needs --video")
        return read_video_labels(source, video, frame_offset=frame_offset)
    if fmt == "coco":
        return read_coco_labels(source, image_root=image_root)
    if fmt == "sleap":
        return read_sleap_labels(source)
    return read_dlc_labels(source, image_root=image_root)


def write_project(labels: ImportedLabels, project: str | Path, *, scorer: str = "imported"):
    """Make a project from imported labels and return it (:class:`pose.pipeline.project.Project`).

    Raises
    ------
    FileExistsError
        ``project`` already has a ``config.yaml``.
    """
    import pose.io
    from pose.dataset import from_numpy
    from pose.pipeline.project import create_project, load_project
    from pose.video import VideoReader

    videos = sorted({f.video for f in labels.frames if f.video is not None})
    proj = create_project(project, labels.bodyparts, videos, skeleton=labels.skeleton, scorer=scorer)
    groups: dict[str, list[int]] = {}
    for r, f in enumerate(labels.frames):
        groups.setdefault(f.group, []).append(r)
    readers: dict[Path, VideoReader] = {}
    try:
        for f in sorted(labels.frames, key=lambda f: (str(f.video), f.frame_index or 0)):  # sequential decoding
            target = proj.labeled_data / f.group / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if f.path is not None:
                with atomic_path(target) as tmp:
                    shutil.copyfile(f.path, tmp)
                continue
            if f.video is not None:
                reader = readers.get(f.video) or readers.setdefault(f.video, VideoReader(f.video))
                pixels = reader.read(int(f.frame_index or 0))
            else:
                pixels = f.pixels
            with atomic_path(target) as tmp:
                if not cv2.imwrite(str(tmp), cv2.cvtColor(np.asarray(pixels), cv2.COLOR_RGB2BGR)):
                    raise OSError(f"cannot write {target}")
    finally:
        for reader in readers.values():
            reader.close()
    for group, rows in groups.items():
        pos = labels.keypoints[rows].transpose(0, 3, 2, 1)  # (time, 2, keypoint, individual)
        ds = from_numpy(pos, keypoints=labels.bodyparts, individuals=labels.individuals)
        ds = ds.assign_coords(image=("time", [f"labeled-data/{group}/{labels.frames[r].name}" for r in rows]))
        ds.attrs["scorer"] = scorer
        for suffix in (".h5", ".csv"):
            out = proj.labeled_data / group / f"CollectedData_{scorer}{suffix}"
            with atomic_path(out) as tmp:
                pose.io.save(ds, tmp)
    log.info("%s: %d labelled frames in %d folders from %s", proj.root, len(labels.frames), len(groups), labels.source)
    return load_project(proj.root)
