"""Posture-stratified frame selection (``select_frames(method="posture")``): known answers."""

from __future__ import annotations

import cv2
import numpy as np

from pose.pipeline.frames import posture_descriptors, select_frames

FPS = 30.0


def _frames(n_move: int = 120, n_still: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Grey frames of a dark 40 x 10 px ellipse on a light floor: it crosses the image at
    60 px/s, then stays still (a short, round ellipse: a different 'posture'). Returns the
    frames and the still mask."""
    frames, still = [], []
    for i in range(n_move + n_still):
        img = np.full((120, 320), 200, np.uint8)
        if i < n_move:
            centre, axes = (int(40 + 60 * i / FPS), 60), (20, 5)
        else:
            centre, axes = (int(40 + 60 * n_move / FPS), 60), (12, 8)
        cv2.ellipse(img, centre, axes, 30, 0, 360, 30, -1)
        frames.append(img)
        still.append(i >= n_move)
    return np.stack(frames), np.array(still)


def test_descriptors_measure_speed_shape_and_stillness():
    frames, still = _frames()
    d = posture_descriptors(frames, fps=FPS)
    length = float(d["body_length_px"])
    # speed in body lengths per second: 60 px/s moving, 0 still
    assert np.nanmedian(d["speed_bl_s"][10:100]) == np.float64(np.nanmedian(d["speed_bl_s"][10:100]))
    assert abs(np.nanmedian(d["speed_bl_s"][10:100]) * length - 60.0) < 3.0
    assert np.nanmax(d["speed_bl_s"][130:170]) == 0.0
    # elongation: axis ratio 4 moving, 1.5 still (the pixel grid rounds a little)
    assert abs(np.nanmedian(d["elongation"][:100]) - 4.0) < 0.4
    assert abs(np.nanmedian(d["elongation"][130:]) - 1.5) < 0.2
    assert np.nanmedian(d["motion"][130:170]) == 0.0 and np.nanmedian(d["motion"][10:100]) > 5


def test_posture_selection_gives_the_still_frames_their_share(tmp_path):
    frames, still = _frames()
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (320, 120))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    writer.release()
    picked = select_frames(video, 12, method="posture", still_share=0.5)
    # still frames are a third of the video; half the labels come from them (+-1: the
    # +-0.1 s speed lag blurs the first still frames)
    assert len(picked) == 12 and abs(int(still[picked].sum()) - 6) <= 1
    picked = select_frames(video, 12, method="posture", still_share=0.0)
    assert abs(int(still[picked].sum()) - 4) <= 1  # their own share (1/3) when larger
    km = select_frames(video, 12, method="kmeans")
    assert int(still[km].sum()) <= 2  # whole-frame k-means: one appearance for all still frames
