"""From a badly tracked animal to relabelling: its uncertain frames into a pose project.

The Animal QC page lists an animal's worst frames (most keypoints below the confidence
cut-off). :func:`extract_for_labelling` hands them to the refinement loop: it runs
:func:`pose.refine.extract.extract_outlier_frames` (``ethopose pose outliers`` as a library
call) with the ``uncertain`` method at the same cut-off (a frame is a candidate when a body
part is below it), so the frames written into ``<project>/labeled-data/<animal>/`` are
the animal's low-confidence frames, spread over appearance, with the predictions as machine
labels to correct on the labelling page. No Streamlit here (tested alone); every path is
checked against the dashboard root.
"""

from __future__ import annotations

from pathlib import Path

from dashboard.paths import PathOutsideRootError, resolve_inside
from pose.refine.extract import OutlierExtraction


def pose_projects(root: Path) -> list[str]:
    """Pose projects (folders with ``config.yaml``) in ``root`` or one level below, relative to it."""
    found = {str(p.parent.relative_to(root)) for p in root.glob("*/config.yaml")}
    if (root / "config.yaml").is_file():
        found.add(".")
    out = []
    for rel in sorted(found):
        try:
            resolve_inside(root, rel)
        except PathOutsideRootError:
            continue
        out.append(rel)
    return out


def predictions_file(root: Path, meta: dict, results_pose: Path) -> Path:
    """The pose to correct: the cohort's ``pose_path`` (the model's own predictions) when it
    lies inside the root, else the results' cleaned ``pose.nc``."""
    raw = meta.get("pose_path")
    if raw:
        try:
            f = resolve_inside(root, Path(raw), allow_absolute=True)
        except (PathOutsideRootError, FileNotFoundError):
            f = None
        if f is not None and f.is_file():
            return f
    return resolve_inside(root, results_pose, allow_absolute=True)


def keypoint_mismatch(project_keypoints: list[str], pose_keypoints: list[str]) -> str | None:
    """Why the project cannot take these predictions (None when every body part is in it)."""
    missing = [k for k in pose_keypoints if k not in project_keypoints]
    if not missing:
        return None
    return (f"the project's body parts ({', '.join(project_keypoints)}) lack {', '.join(missing)} "
            "of this animal's pose")


def extract_for_labelling(root: Path, project: str, video: Path, predictions: Path, *, name: str,
                          cutoff: float, n_frames: int = 10) -> OutlierExtraction:
    """Write the animal's frames with a body part below ``cutoff`` into ``project`` for labelling.

    Parameters
    ----------
    root
        Dashboard root; ``project``, ``video`` and ``predictions`` must lie inside it.
    project
        Pose project folder, relative to ``root``.
    video
        The animal's video (the frames are decoded from it).
    predictions
        Pose file of every frame of ``video`` (``.nc``, DeepLabCut ``.h5``/``.csv``, SLEAP).
    name
        Folder under ``labeled-data`` (the animal's key).
    cutoff
        Confidence cut-off of the QC page: a frame is a candidate when a body part is below it.
    n_frames
        Frames to extract (fewer when fewer frames have a body part below the cut-off).

    Returns
    -------
    pose.refine.extract.OutlierExtraction
        What was written (``frames``, ``images``, ``folder``, ``n_candidates``).

    Raises
    ------
    ValueError
        The project's body parts lack one of the pose's keypoints (named).
    PathOutsideRootError
        A path outside the root.
    """
    from pose.io import load
    from pose.refine.extract import extract_outlier_frames
    from pose.refine.labels import read_project_info

    project_dir = resolve_inside(root, project)
    video = resolve_inside(root, video, allow_absolute=True)
    ds = load(resolve_inside(root, predictions, allow_absolute=True))
    info = read_project_info(project_dir)
    why = keypoint_mismatch(info.bodyparts, [str(k) for k in ds["keypoint"].values])
    if why:
        raise ValueError(f"{project}: {why}")
    return extract_outlier_frames(project_dir, ds, video, method="uncertain", n_frames=int(n_frames),
                                  threshold=1.0 - float(cutoff), video_name=name)
