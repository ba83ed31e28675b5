"""Rendering the virtual mouse: keypoints lie on the drawn body, files reload, same seed."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from pose import io as pose_io
from pose.synthetic import KEYPOINTS, simulate_gait, simulate_open_field
from pose.synthetic.draw import PALETTES, draw_mouse_side, draw_mouse_top, make_fur_texture
from pose.synthetic.nuisance import NuisanceConfig
from pose.synthetic.render import render_gait, render_open_field

GREY = 205


def _differs(frame, xy, bg=GREY, min_diff=25):
    x, y = int(round(xy[0])), int(round(xy[1]))
    return int(np.abs(frame[y, x].astype(int) - bg).max()) >= min_diff


def test_every_keypoint_is_on_a_drawn_pixel_top_view():
    truth = simulate_open_field(60, seed=1)
    pos = truth.pose.position.values[..., 0]
    ppm = truth.pose.attrs["px_per_mm"]
    tex = make_fur_texture(1)
    frames = np.arange(0, pos.shape[0], 6)
    misses = {k: 0 for k in KEYPOINTS}
    for i in frames:
        frame = np.full((480, 640, 3), GREY, np.uint8)
        kp = {k: pos[i, :, j] for j, k in enumerate(KEYPOINTS)}
        draw_mouse_top(frame, kp, ppm, tex, PALETTES["black"], rear=truth.posture["rear"][i])
        for k in KEYPOINTS:
            misses[k] += not _differs(frame, kp[k])
    assert set(truth.states[frames]) >= {"rear", "walk", "turn"}
    assert misses == {k: 0 for k in KEYPOINTS}


def test_every_keypoint_is_on_a_drawn_pixel_side_view():
    truth = simulate_gait(2, seed=0, view="side", treadmill=True)
    names = [str(k) for k in truth.pose.keypoint.values]
    pos = truth.pose.position.values[..., 0]
    tex = make_fur_texture(0)
    for i in range(0, pos.shape[0], 5):
        frame = np.full((360, 640, 3), GREY, np.uint8)
        kp = {k: pos[i, :, j] for j, k in enumerate(names)}
        draw_mouse_side(frame, kp, truth.pose.attrs["px_per_mm"], tex, PALETTES["black"])
        missing = [k for k in names if not _differs(frame, kp[k])]
        assert missing == [], f"frame {i}: nothing drawn at {missing}"


def _frames_cv2(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


@pytest.fixture(scope="module")
def clean_session(tmp_path_factory):
    out = tmp_path_factory.mktemp("of_clean")
    return render_open_field(out, seconds=4, seed=2, width=320, height=240,
                             nuisances=NuisanceConfig.preset("none"), n_label_frames=8)


def test_outputs_exist_and_reload(clean_session):
    s = clean_session
    out = s.out_dir
    n = 4 * 30
    for name in ("video.mp4", "truth.nc", "truth.h5", "behavior.csv", "gait_events.csv",
                 "arena.json", "config.yaml"):
        assert (out / name).is_file(), name
    assert len(_frames_cv2(s.video_path)) == n
    with av.open(str(s.video_path)) as c:
        assert sum(1 for _ in c.decode(video=0)) == n
    nc = pose_io.load(out / "truth.nc")
    np.testing.assert_allclose(nc.position.values, s.pose.position.values)
    h5 = pose_io.load(out / "truth.h5", fps=30)
    np.testing.assert_allclose(h5.position.values, s.pose.position.values, atol=1e-9)
    beh = pd.read_csv(out / "behavior.csv")
    assert list(beh.columns) == ["frame", "time_s", "state"] and len(beh) == n
    assert (beh.state.to_numpy() == s.states).all()
    arena = json.loads((out / "arena.json").read_text())
    assert arena["px_per_mm"] == pytest.approx(s.pose.attrs["px_per_mm"])
    assert set(arena["zones"]) == {"arena", "center", "periphery"}
    labels = pose_io.load(out / "labeled-data" / "video" / "CollectedData_synthetic.h5")
    assert labels.sizes["time"] == 8
    for img, t in zip(labels.image.values, labels.time.values, strict=True):
        assert (out / img).is_file()
        frame = int(str(img).split("img")[-1].split(".")[0])
        np.testing.assert_allclose(labels.position.sel(time=t).values[..., 0],
                                   s.pose.position.values[frame, :, :, 0], atol=1e-9)
    import yaml

    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["scorer"] == "synthetic" and cfg["bodyparts"] == list(KEYPOINTS)
    assert cfg["TrainingFraction"] == [0.95] and cfg["pcutoff"] == 0.6
    assert ["left_ear", "right_ear"] in cfg["symmetry_pairs"] and cfg["top_view"] is True


def test_pose_pipeline_reads_the_folder_as_a_project(clean_session):
    from pose.pipeline.project import load_labels, load_project

    project = load_project(clean_session.out_dir)
    assert project.config.bodyparts == list(KEYPOINTS)
    assert len(project.config.flip_pairs()) == 3
    labels = load_labels(project)
    assert len(labels.images) == 8
    frames = [int(p.split("img")[-1].split(".")[0]) for p in labels.images]
    np.testing.assert_allclose(labels.keypoints,
                               clean_session.pose.position.values[frames, :, :, 0]
                               .transpose(0, 2, 1), atol=1e-9)


def test_video_shows_the_mouse_at_the_truth(clean_session):
    """Decoded video: the black trunk is where the truth says, on the light floor."""
    s = clean_session
    frames = _frames_cv2(s.video_path)
    pos = s.pose.position.values[..., 0]
    for i in range(0, len(frames), 3):
        grey = cv2.cvtColor(frames[i], cv2.COLOR_BGR2GRAY)
        for k in ("body_center", "neck", "tail_base"):
            x, y = np.round(pos[i, :, KEYPOINTS.index(k)]).astype(int)
            assert grey[y, x] < 110, f"frame {i} {k}: grey {grey[y, x]}"
        # a point 40 mm beside the body centre, inside the arena, is floor
        x, y = np.round(pos[i, :, KEYPOINTS.index("body_center")]).astype(int)
        side = [grey[y, x + d] for d in (-45, 45) if 0 <= x + d < grey.shape[1]]
        assert max(side) > 150


def test_same_seed_same_truth_files(tmp_path):
    kw = dict(seconds=2, seed=5, width=160, height=120, n_label_frames=3)
    a = render_open_field(tmp_path / "a", **kw)
    b = render_open_field(tmp_path / "b", **kw)
    np.testing.assert_array_equal(pose_io.load(a.files["truth_nc"]).position.values,
                                  pose_io.load(b.files["truth_nc"]).position.values)
    for name in ("behavior.csv", "gait_events.csv", "arena.json"):
        assert (a.out_dir / name).read_bytes() == (b.out_dir / name).read_bytes(), name
    pngs = sorted((a.out_dir / "labeled-data" / "video").glob("*.png"))
    assert len(pngs) == 3
    for png in pngs:  # the rendered frames themselves are identical
        assert png.read_bytes() == (b.out_dir / "labeled-data" / "video" / png.name).read_bytes()


def test_camera_transform_keeps_truth_in_the_arena(tmp_path):
    cfg = NuisanceConfig(rotation_deg=12, scale_jitter=0.1, n_occluders=2)
    s = render_open_field(tmp_path, seconds=3, seed=11, width=320, height=240, nuisances=cfg,
                          n_label_frames=10)
    assert abs(s.scene["camera"]["rotation_deg"]) > 0
    poly = np.array(s.scene["zones"]["arena"]["vertices_px"], np.float32)
    pts = s.pose.position.values[..., 0].transpose(0, 2, 1).reshape(-1, 2)
    inside = [cv2.pointPolygonTest(poly, (float(x), float(y)), False) >= 0 for x, y in pts]
    assert all(inside)


def test_gait_render_writes_exact_events(tmp_path):
    s = render_gait(tmp_path, seconds=1, seed=0, width=320, height=180, fps=100,
                    n_label_frames=4, gait="trot", view="bottom", treadmill=True)
    ev = pd.read_csv(tmp_path / "gait_events.csv")
    assert set(ev.paw) == {"left_forepaw", "right_forepaw", "left_hindpaw", "right_hindpaw"}
    assert json.loads((tmp_path / "arena.json").read_text())["cadence_hz"] == pytest.approx(2.5)
    assert len(_frames_cv2(s.video_path)) == 100


def test_nuisance_config_is_strict():
    with pytest.raises(ValidationError, match="noise_sdd"):
        NuisanceConfig(noise_sdd=3)
    with pytest.raises(ValidationError, match="crf"):
        NuisanceConfig(crf=80)
    with pytest.raises(ValueError, match="nuisance level"):
        NuisanceConfig.preset("extreme")
