"""`ethopose pose reprojection-video`: the 3D points drawn where the camera sees them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from pose import io as pio
from pose.synthetic.multicam import lift_to_3d, make_rig, project_poses
from pose.synthetic.openfield import simulate_open_field
from pose.threed.cameras import save_calibration
from pose.threed.triangulation import triangulate_poses


def test_reprojection_video_draws_the_points_where_the_camera_sees_them(tmp_path: Path) -> None:
    from ethopose.cli import app

    truth = lift_to_3d(simulate_open_field(0.4, fps=30, seed=2))
    cams = make_rig(3, seed=4)
    poses = project_poses(truth, cams, noise_px=0.3, seed=5)
    ds, _ = triangulate_poses(poses, cams)
    pio.save(ds, tmp_path / "points3d.nc")
    pio.save(poses["cam1"], tmp_path / "cam1.h5")
    save_calibration(cams, tmp_path / "calibration.toml")
    w, h = cams[1].size
    video = tmp_path / "session_cam1.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for _ in range(ds.sizes["time"]):
        writer.write(np.zeros((h, w, 3), np.uint8))
    writer.release()
    out = tmp_path / "review.mp4"
    result = CliRunner().invoke(app, ["pose", "reprojection-video", str(video), "--points3d", str(tmp_path / "points3d.nc"),
                                      "--calibration", str(tmp_path / "calibration.toml"),
                                      "--pose2d", str(tmp_path / "cam1.h5"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "camera 'cam1'" in result.output  # the camera came from the video's file name
    cap = cv2.VideoCapture(str(out))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 5)
    ok, frame = cap.read()
    assert ok
    grey = frame.max(axis=2)
    uv = cams[1].project(truth.position.isel(time=5, individual=0).transpose("keypoint", "space").values)
    for u, v in np.round(uv).astype(int):  # a dot at every true projection...
        assert grey[v - 1:v + 2, u - 1:u + 2].max() > 80
    assert (grey > 40).mean() < 0.01  # ...and nothing much elsewhere
    bad = CliRunner().invoke(app, ["pose", "reprojection-video", str(video), "--points3d", str(tmp_path / "cam1.h5"),
                                   "--calibration", str(tmp_path / "calibration.toml")])
    assert bad.exit_code != 0 and "not a 3D pose file" in bad.output
