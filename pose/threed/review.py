"""Review of a triangulation in the videos: the 3D points reprojected into one camera, over its frames.

Each reprojected keypoint is a filled dot; the camera's own 2D pose (the labels or predictions
that were triangulated), when given, is a cross of the same colour, joined to its
reprojection by a thin line, so a camera whose labels disagree with the 3D points (or a
calibration that does not fit the filming) shows as long lines.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import xarray as xr

from pose.atomic import atomic_path
from pose.threed.cameras import Camera
from pose.threed.triangulation import reproject_points3d
from pose.video import VideoReader

__all__ = ["render_reprojection_video"]


def _xy(ds: xr.Dataset, t: int, i: int) -> np.ndarray:
    return ds["position"].isel(time=t, individual=i).transpose("keypoint", "space").values[:, :2]


def render_reprojection_video(
    video: str | Path,
    points3d: xr.Dataset,
    camera: Camera,
    out_path: str | Path,
    *,
    pose2d: xr.Dataset | None = None,
    skeleton: list[list[str]] | None = None,
) -> Path:
    """Draw a 3D pose Dataset reprojected into ``camera`` over that camera's video.

    Parameters
    ----------
    video
        The camera's video; its frames are matched to the Dataset's rows from 0.
    points3d
        3D pose Dataset (``position`` with ``space = x y z``, mm).
    camera
        The camera of ``video`` (from the calibration).
    out_path
        The output video (mp4), written then renamed.
    pose2d
        Optional: the camera's own 2D pose, drawn as crosses joined to the reprojection.
    skeleton
        Optional keypoint-name pairs drawn between reprojected points.

    Returns
    -------
    pathlib.Path
        ``out_path``.
    """
    from pose.pipeline.augment import draw_keypoints

    rep = reproject_points3d(points3d, [camera])[camera.name]
    kp_names = [str(k) for k in points3d.keypoint.values]
    edges = [(kp_names.index(a), kp_names.index(b)) for a, b in (skeleton or [])
             if a in kp_names and b in kp_names]
    n_ind = points3d.sizes["individual"]
    with VideoReader(video) as reader, atomic_path(out_path) as tmp:
        if (reader.width, reader.height) != tuple(camera.size):
            raise ValueError(f"{video}: frames are {reader.width}x{reader.height} px but camera "
                             f"{camera.name!r} of the calibration is {camera.size[0]}x{camera.size[1]}")
        fps = reader.fps if np.isfinite(reader.fps) else 30.0
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (reader.width, reader.height))
        try:
            stop = min(points3d.sizes["time"], reader.n_frames)
            for first, batch in reader.iter_batches(32, stop=stop):
                for t, frame in enumerate(batch, start=first):
                    rgb = np.ascontiguousarray(frame).copy()
                    for i in range(n_ind):
                        xy = _xy(rep, t, i)
                        if pose2d is not None:
                            lab = _xy(pose2d, t, i)
                            for p, q in zip(lab, xy, strict=True):
                                if np.isfinite(p).all() and np.isfinite(q).all():
                                    cv2.line(rgb, tuple(int(round(v)) for v in p), tuple(int(round(v)) for v in q),
                                             (255, 255, 255), 1, cv2.LINE_AA)
                            rgb = draw_keypoints(rgb, lab, radius=4, marker=cv2.MARKER_CROSS)
                        rgb = draw_keypoints(rgb, xy, radius=4, skeleton=edges)
                    writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return Path(out_path)
