"""Frames as JPEG with keypoints drawn (dashboard.frames), checked pixel by pixel."""

from __future__ import annotations

import cv2
import numpy as np

from dashboard.frames import (
    LOW_CONFIDENCE_RGB,
    arena_canvas,
    colour_key_html,
    draw_keypoints,
    encode_jpeg,
    marker_radius_px,
)
from dashboard.labelling.figure import keypoint_colour


def test_keypoints_drawn_where_they_are_and_low_confidence_crossed():
    rgb = np.zeros((120, 160, 3), np.uint8)
    xy = np.array([[40.0, 110.0, np.nan], [30.0, 80.0, 5.0]])  # (space, keypoint)
    out = draw_keypoints(rgb, xy, np.array([0.9, 0.2, 0.9]), ["a", "b", "c"], 0.5, labels=False)
    assert rgb.max() == 0  # the input is not changed
    assert tuple(out[30, 40]) == keypoint_colour(0)  # confident: filled in its body-part colour
    r = marker_radius_px(160, 120)
    assert tuple(out[80 - r // 2, 110 - r // 2]) == LOW_CONFIDENCE_RGB  # below the cut-off: a cross
    patch = out[80 - r:81 + r, 110 - r:111 + r].reshape(-1, 3)
    assert not (patch == keypoint_colour(1)).all(axis=1).any()  # ...not its body-part disc
    assert out[:, :, :].sum(axis=2)[100:, :20].max() == 0  # the NaN keypoint is not drawn


def test_jpeg_round_trip_and_arena_canvas():
    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), (7, 7), 2)
    jpeg = encode_jpeg(img, quality=90)
    back = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) < img.nbytes
    assert np.abs(back.astype(int) - img).mean() < 5  # JPEG q=90, 4:2:0 chroma
    canvas = arena_canvas([[100, 20], [540, 20], [540, 460], [100, 460]], np.zeros((2, 1)))
    assert canvas.shape == (480, 560, 3) and canvas[20, 300].min() > 100 and canvas[240, 300].max() == 40


def test_colour_key_names_every_body_part_in_its_colour():
    key = colour_key_html(["snout", "<tail>"], 0.6)
    for k, name in enumerate(["snout", "&lt;tail&gt;"]):
        assert "color:rgb({},{},{})".format(*keypoint_colour(k)) in key and name in key
    assert "<tail>" not in key and "color:rgb({},{},{})".format(*LOW_CONFIDENCE_RGB) in key and "below 0.6" in key
