"""Top-down multi-animal pose (pose.pipeline.centroid, pose.pipeline.topdown) on tiny
synthetic projects: two same-looking "animals" of three coloured blobs per frame.

Known answers for the target, peak and crop code; a tiny centroid training (random-initialised
network, one thread, no augmentation) that must find every animal; and (slow) both models
overfit, finding every animal and placing its keypoints within 2 px on the frames they were
trained on (the easy case), and ``ethopose pose infer`` on a video of those frames.
"""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

PARTS = ["head", "body", "tail"]


def _animal(rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
    """(3, 2) head, body, tail keypoints 7 px apart along a random direction."""
    a = rng.uniform(-np.pi, np.pi)
    u = np.array([np.cos(a), np.sin(a)])
    return np.stack([centre + 7 * u, centre, centre - 7 * u])


def _draw(img: np.ndarray, kp: np.ndarray) -> None:
    for j, (x, y) in enumerate(kp):
        colour = [(235, 40, 40), (40, 235, 40), (40, 40, 235)][j]
        cv2.circle(img, (int(round(x)), int(round(y))), 2, colour, -1, cv2.LINE_AA)


def make_pair_project(root, n_frames: int = 6, size_px: int = 64, seed: int = 0):
    """A DeepLabCut multi-animal project (``bodyparts: MULTI!``) of two blob animals per frame.

    Returns the folder and the truth ``(frames, 2 individuals, 3 keypoints, 2)``.
    """
    import pose.io
    from pose.dataset import from_numpy

    rng = np.random.default_rng(seed)
    folder = root / "labeled-data" / "vid"
    folder.mkdir(parents=True)
    truth = np.zeros((n_frames, 2, 3, 2))
    images = []
    for f in range(n_frames):
        while True:
            c = rng.uniform(12, size_px - 13, (2, 2))
            if np.linalg.norm(c[0] - c[1]) > 28:
                break
        img = np.full((size_px, size_px, 3), 20, np.uint8)
        for i in range(2):
            truth[f, i] = _animal(rng, c[i])
            _draw(img, truth[f, i])
        name = f"labeled-data/vid/img{f:04d}.png"
        cv2.imwrite(str(root / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        images.append(name)
    ds = from_numpy(truth.transpose(0, 3, 2, 1), keypoints=PARTS, individuals=["a", "b"])
    ds = ds.assign_coords(image=("time", images))
    ds.attrs["scorer"] = "test"
    pose.io.save(ds, folder / "CollectedData_test.h5")
    cfg = {"Task": "pairs", "scorer": "test", "multianimalproject": True, "individuals": ["a", "b"],
           "multianimalbodyparts": PARTS, "bodyparts": "MULTI!", "TrainingFraction": [1.0], "pcutoff": 0.1,
           "top_view": True, "symmetry_pairs": []}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    return root, truth


def _noaug(crop_px: int = 64):
    from pose.pipeline.augment import AugmentConfig

    return AugmentConfig(crop_px=crop_px, rotation_deg=0, scale_range=(1, 1), flip_prob=0, random_crop=False,
                         brightness_contrast_prob=0, motion_blur_prob=0, noise_prob=0, occlusion_prob=0)


def test_centroid_targets_peak_at_each_centre_and_offsets_point_to_the_nearest():
    from pose.pipeline.centroid import centroid_targets
    from pose.pipeline.model import cell_centres

    anchors = np.array([[10.0, 12.0], [41.5, 30.0], [np.nan, np.nan]])
    heat, weight, offs, mask = centroid_targets(anchors, (16, 16), 4, sigma_px=4.0)
    assert heat.shape == (1, 16, 16) and weight.tolist() == [1.0]
    c = cell_centres(16, 4)
    for x, y in anchors[:2]:
        iy, ix = int(np.argmin(abs(c - y))), int(np.argmin(abs(c - x)))
        g = np.exp(-((c[ix] - x) ** 2 + (c[iy] - y) ** 2) / 32.0)
        assert heat[0, iy, ix] == pytest.approx(g, abs=1e-6)
        # the offset of the cell holding a centre points at it (units of stride)
        assert c[ix] + 4 * offs[0, iy, ix] == pytest.approx(x, abs=1e-5)
        assert c[iy] + 4 * offs[1, iy, ix] == pytest.approx(y, abs=1e-5)
        assert mask[:, iy, ix].tolist() == [1.0, 1.0]
    assert heat.max() <= 1.0 and mask.sum() > 0


def test_find_peaks_recovers_centres_and_suppresses_within_the_radius():
    from pose.pipeline.centroid import find_peaks
    from pose.pipeline.model import cell_centres

    c = cell_centres(32, 4)
    yy, xx = np.meshgrid(c, c, indexing="ij")

    def blob(x, y, a):
        return a * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 5.0**2))

    prob = np.maximum.reduce([blob(21.5, 33.5, 0.9), blob(81.5, 61.5, 0.7), blob(89.5, 61.5, 0.6)])
    offs = np.zeros((2, 32, 32))
    xy, p = find_peaks(prob, offs, 4, radius_px=12.0, threshold=0.2)
    # the third peak lies 8 px from the second (< 12 px radius): suppressed
    assert xy.tolist() == [[21.5, 33.5], [81.5, 61.5]] and p[0] == pytest.approx(0.9)
    xy, _ = find_peaks(prob, offs, 4, radius_px=6.0, threshold=0.2)
    assert len(xy) == 3
    xy, _ = find_peaks(prob, offs, 4, radius_px=6.0, threshold=0.2, max_peaks=1)
    assert xy.tolist() == [[21.5, 33.5]]


def test_split_merged_peaks_separates_two_animals_in_contact_but_not_one():
    """Two centres 7 px apart (sigma 5 px): one maximum in the score map, but the offsets
    point to the nearest centre, so their votes split it into the two centres; one animal
    (votes scattered by 1 px) is not split."""
    from pose.pipeline.centroid import find_peaks, split_merged_peaks
    from pose.pipeline.model import cell_centres

    c = cell_centres(32, 4)
    yy, xx = np.meshgrid(c, c, indexing="ij")
    rng = np.random.default_rng(0)

    def maps(centres):
        prob = np.max([0.8 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 5.0**2)) for x, y in centres], axis=0)
        d = [np.hypot(xx - x, yy - y) for x, y in centres]
        near = np.argmin(d, axis=0)
        tx = np.choose(near, [np.full_like(xx, x) for x, _ in centres])
        ty = np.choose(near, [np.full_like(yy, y) for _, y in centres])
        offs = np.stack([(tx - xx) / 4, (ty - yy) / 4]) + rng.normal(0, 0.25, (2, 32, 32))  # 1 px vote noise
        return prob, offs

    two = np.array([[60.0, 62.0], [66.0, 58.5]])
    prob, offs = maps(two)
    xy, p = find_peaks(prob, offs, 4, radius_px=8.0, threshold=0.2, max_peaks=2)
    assert len(xy) == 1  # merged
    xy, p = split_merged_peaks(prob, offs, 4, xy, p, 2)
    assert len(xy) == 2 and len(p) == 2
    d = np.linalg.norm(xy[:, None] - two[None], axis=-1)
    assert max(d[0, 0], d[1, 1]) < 1.0 or max(d[0, 1], d[1, 0]) < 1.0, xy
    prob, offs = maps(np.array([[60.0, 62.0]]))
    xy, p = find_peaks(prob, offs, 4, radius_px=8.0, threshold=0.2, max_peaks=2)
    xy2, _ = split_merged_peaks(prob, offs, 4, xy, p, 2)
    assert len(xy) == 1 and len(xy2) == 1


def test_crop_around_fills_outside_and_returns_its_origin():
    from pose.pipeline.augment import FILL_RGB
    from pose.pipeline.topdown import crop_around

    frame = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    crop, origin = crop_around(frame, np.array([2.4, 10.0]), 8)
    assert origin.tolist() == [-2.0, 6.0] and crop.shape == (8, 8, 3)
    assert (crop[:, :2] == np.array(FILL_RGB, np.uint8)).all()
    assert (crop[:, 2:] == frame[6:14, 0:6]).all()


def test_instance_project_holds_each_animal_alone_and_keeps_the_frame_split(tmp_path):
    from pose.pipeline.project import load_labels, load_project
    from pose.pipeline.topdown import multi_animal_reason, write_instance_project

    root, truth = make_pair_project(tmp_path / "proj", n_frames=3)
    project = load_project(root)
    multi, why = multi_animal_reason(project)
    assert multi and "2 individuals, 3 of 3 labelled frames" in why
    labels = load_labels(project)
    inst, test = write_instance_project(project, labels, tmp_path / "inst", 24, {labels.images[1]})
    assert test == ["vid_img0001_a.png", "vid_img0001_b.png"]
    crops = load_labels(inst)
    assert inst.config.bodyparts == PARTS and crops.keypoints.shape == (6, 3, 2)
    for r, (f, i) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]):
        kp = crops.keypoints[r]
        # the crop is centred on its animal (jitter <= 6 % of 24 px), labels = that animal only
        assert np.abs(kp[1] - 11.5).max() <= 0.06 * 24 + 1.0
        shift = truth[f, i] - kp
        assert np.allclose(shift, shift[0]) and np.allclose(shift[0], np.round(shift[0]))
    single = make_single(tmp_path / "single")
    assert not multi_animal_reason(single)[0]


def test_instance_jitter_is_bounded_by_the_closest_animals_distance():
    """Far-apart animals keep the centroid-error jitter; animals labelled in contact lower it so
    that the target stays nearer the crop centre than its neighbour (radial jitter < gap / 2)."""
    from pose.pipeline.topdown import JITTER_FRACTION, instance_jitter_px

    body = np.array([[-10.0, 0.0], [0.0, 0.0], [10.0, 0.0]])
    frames = 50
    far = np.stack([np.stack([body + [50, 50], body + [250, 50]]) for _ in range(frames)])
    jitter, why = instance_jitter_px(far, 300)
    assert jitter == pytest.approx(JITTER_FRACTION * 300) and "lowered" not in why
    gaps = np.linspace(12.0, 60.0, frames)  # centre distances of the pair, frame by frame
    near = np.stack([np.stack([body + [50, 50], body + [50 + g, 50]]) for g in gaps])
    jitter, why = instance_jitter_px(near, 300)
    g2 = float(np.percentile(gaps, 2))
    assert jitter == pytest.approx(0.35 * g2, abs=0.01) and "lowered" in why
    assert np.sqrt(2) * jitter < g2 / 2  # for all but the 2 % closest labelled pairs
    single = far[:, :1]  # one animal per frame: no gap, the default
    assert instance_jitter_px(single, 300)[0] == pytest.approx(JITTER_FRACTION * 300)


def make_single(root):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from pipeline_helpers import make_blob_project

    return make_blob_project(root, n_frames=3)[0]


def test_centroid_model_learns_to_find_both_animals(tmp_path):
    """The centroid model alone overfits 4 frames: every centre found, within 2 px."""
    from pose.pipeline.centroid import (
        CentroidConfig,
        CentroidDetector,
        centroid_recall,
        instance_anchors,
        train_centroid_model,
    )

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root, truth = make_pair_project(tmp_path / "proj", n_frames=4)
        frames = [cv2.cvtColor(cv2.imread(str(root / f"labeled-data/vid/img{f:04d}.png")), cv2.COLOR_BGR2RGB)
                  for f in range(len(truth))]
        anchors = list(instance_anchors(truth))
        cfg = CentroidConfig(scale=1.0, crop_px=64, sigma_px=4.0, nms_radius_px=8.0, rotation_deg=0, pretrained=False,
                             neck_channels=16, epochs=6, repeats=8, batch_size=4, lr=3e-3, augment=_noaug(64))
        out = train_centroid_model(frames, anchors, cfg, tmp_path / "centroid", test_images=frames,
                                   test_anchors=anchors)
        torch_det = CentroidDetector(out, runtime="torch", threads=1)
        found = [c for c, _ in torch_det.detect(np.stack(frames))]
        onnx_det = CentroidDetector(out, runtime="onnx", threads=1)
        found_onnx = onnx_det.detect(np.stack(frames))
    finally:
        torch.set_num_threads(n)
    recall = centroid_recall(found, anchors, radius_px=4.0)
    assert recall["recall"] == 1.0 and recall["precision"] == 1.0, recall
    assert recall["mean_distance_px"] < 2.0, recall
    # the ONNX export (the CPU default at inference) finds the same centres as torch
    assert onnx_det.runtime == "onnx" and (out / "centroid.onnx").is_file()
    for (c_onnx, _), c_torch in zip(found_onnx, found, strict=True):
        assert c_onnx.shape == c_torch.shape and np.abs(c_onnx - c_torch).max() < 0.05
    import json

    assert json.loads((out / "centroid.json").read_text())["test"]["recall"] == 1.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Both models overfit 6 frames of 2 animals (no augmentation, one thread)."""
    from pose.pipeline.topdown import train_topdown
    from pose.pipeline.train import TrainConfig

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    root, truth = make_pair_project(tmp_path_factory.mktemp("pairs") / "proj", n_frames=6)
    cfg = TrainConfig(pretrained=False, scale=1.0, epochs=20, repeats=10, batch_size=5, neck_channels=32,
                      stride=4, lr=3e-3, val_fraction=0.0, augment=_noaug(32), evaluate=False)
    model_dir = train_topdown(root, config=cfg, out_dir=root / "model", training_fraction=1.0)
    yield root, model_dir, truth
    torch.set_num_threads(n)


@pytest.mark.slow
def test_trained_topdown_finds_every_animal_and_its_keypoints(trained):
    from scipy.optimize import linear_sum_assignment

    from pose.pipeline.centroid import centroid_recall, instance_anchors
    from pose.pipeline.topdown import TopDownPredictor

    root, model_dir, truth = trained
    frames = np.stack([cv2.cvtColor(cv2.imread(str(root / f"labeled-data/vid/img{f:04d}.png")), cv2.COLOR_BGR2RGB)
                       for f in range(len(truth))])
    pred = TopDownPredictor(model_dir, runtime="torch")
    # crops as the instance model was trained on (its crop_px at its scale), and its anchor channel
    import json

    train_cfg = json.loads((model_dir / "instance" / "train_config.json").read_text())
    assert pred.crop_side_px == int(train_cfg["augment"]["crop_px"] / (train_cfg["scale"] or 1.0))
    assert pred.instance.info.anchor_sigma_px and "instance_anchor_sigma_px" in pred.info.reasons
    found = pred.centroid.detect(frames)
    recall = centroid_recall([c for c, _ in found], list(instance_anchors(truth)), radius_px=4.0)
    assert recall["recall"] == 1.0 and recall["precision"] == 1.0, recall
    assert recall["mean_distance_px"] < 2.0
    xy, conf, score = pred.predict_keypoints(frames)
    assert xy.shape == (6, 2, 3, 2) and (score > 0.2).all()
    errors = []
    for f in range(len(truth)):  # instances are unordered: match them to the truth
        cost = np.linalg.norm(truth[f][:, None] - xy[f][None], axis=-1).mean(axis=-1)
        r, c = linear_sum_assignment(cost)
        errors += np.linalg.norm(truth[f][r] - xy[f][c], axis=-1).ravel().tolist()
    assert np.mean(errors) < 2.0 and np.max(errors) < 5.0, (np.mean(errors), np.max(errors))


@pytest.mark.slow
def test_cli_infer_writes_instances_and_tracks(trained, tmp_path):
    import pose.io
    from pose.pipeline.cli import app

    root, model_dir, truth = trained
    video = tmp_path / "v.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 64))
    for f in range(len(truth)):
        writer.write(cv2.imread(str(root / f"labeled-data/vid/img{f:04d}.png")))
    writer.release()
    out = tmp_path / "tracked.nc"
    res = CliRunner().invoke(app, ["infer", str(model_dir), str(video), "--out", str(out), "--runtime", "torch"])
    assert res.exit_code == 0, res.output
    assert "up to 2 animals per frame" in res.output
    assert "2 animals per frame (most animals labelled in one frame (2); --n-animals to change)" in res.output
    inst = pose.io.load(tmp_path / "tracked_instances.nc")
    assert inst.sizes["individual"] == 2 and inst.sizes["time"] == len(truth)
    assert pose.io.load(out).sizes["individual"] == 2
    # a known count: the strongest peaks, however weak, then the unsure-instance rule (no
    # instance of these two clearly visible animals is dropped), floor and count in the attrs
    out2 = tmp_path / "counted.nc"
    res = CliRunner().invoke(app, ["infer", str(model_dir), str(video), "--out", str(out2), "--runtime", "torch",
                                   "--n-animals", "2"])
    assert res.exit_code == 0, res.output
    inst = pose.io.load(tmp_path / "counted_instances.nc")
    assert 0.0 < inst.attrs["instance_confidence_floor"] <= 1.0 and inst.attrs["dropped_unsure_instances"] == 0
    assert "centroid peaks >= 0.5" in inst.attrs["instance_confidence_floor_reason"]
    assert inst["position"].notnull().any(dim=("space", "keypoint")).sum(dim="individual").min() == 2


@pytest.mark.slow  # ~25 CPU-s: three tiny top-down trainings
def test_topdown_resume_continues_where_it_stopped(tmp_path):
    """A top-down training stopped in its centroid model and resumed ends with the same
    weights (both models) as one that ran through; resume without a started training is refused."""
    from pose.pipeline.topdown import is_topdown_model, train_topdown
    from pose.pipeline.train import TrainConfig

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root, _ = make_pair_project(tmp_path / "proj", n_frames=4)
        cfg = TrainConfig(pretrained=False, scale=1.0, epochs=3, repeats=2, batch_size=4, neck_channels=16,
                          stride=4, lr=3e-3, val_fraction=0.0, augment=_noaug(32), evaluate=False)
        whole = train_topdown(root, config=cfg, out_dir=tmp_path / "whole", training_fraction=1.0)
        part = train_topdown(root, config=cfg, out_dir=tmp_path / "part", training_fraction=1.0, stop_after_epoch=2)
        assert not is_topdown_model(part) and not (part / "instance").exists()
        train_topdown(root, out_dir=part, resume=True)
        with pytest.raises(FileNotFoundError, match="resume"):
            train_topdown(root, out_dir=tmp_path / "never", resume=True)
    finally:
        torch.set_num_threads(n)
    assert is_topdown_model(part)
    import json

    assert json.loads((part / "centroid" / "centroid.json").read_text())["epochs"] == 3
    for sub in ("centroid", "instance"):
        a = torch.load(whole / sub / "weights.pt", weights_only=True)
        b = torch.load(part / sub / "weights.pt", weights_only=True)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), (sub, k)


class _NearestBlob:
    """A stand-in instance model: the keypoints (all at the blob's centre) of the bright blob
    nearest the crop centre, confidence 0.9; 0.05 where the crop holds none."""

    def predict_keypoints(self, crops):
        kps, confs = [], []
        for crop in crops:
            n, _, _, cents = cv2.connectedComponentsWithStats((crop.max(axis=-1) > 100).astype(np.uint8))
            c = (crop.shape[1] - 1) / 2
            if n < 2:
                kps.append(np.full((3, 2), c))
                confs.append(np.full(3, 0.05))
                continue
            best = cents[1:][np.argmin(np.linalg.norm(cents[1:] - c, axis=1))]
            kps.append(np.repeat(best[None], 3, axis=0))
            confs.append(np.full(3, 0.9))
        return np.array(kps), np.array(confs)


def _propagation_case(tmp_path, draw_b):
    """Two disks moving towards each other over 6 frames; the first pass found only A in
    frames 2-4 (one centroid peak for two animals in contact)."""
    import sys
    from pathlib import Path

    from pose.pipeline.topdown import TopDownInfo, TopDownPredictor

    sys.path.insert(0, str(Path(__file__).parent))
    from pipeline_helpers import write_video

    a = np.array([[18.0 + 2 * t, 32.0] for t in range(6)])
    b = np.array([[46.0 - 2 * t, 32.0] for t in range(6)])
    frames = np.zeros((6, 64, 64, 3), np.uint8)
    for t in range(6):
        cv2.circle(frames[t], (int(a[t, 0]), int(a[t, 1])), 3, (255, 255, 255), -1)
        if draw_b[t]:
            cv2.circle(frames[t], (int(b[t, 0]), int(b[t, 1])), 3, (255, 255, 255), -1)
    video = write_video(tmp_path / "pair.avi", frames)
    xy = np.full((6, 2, 3, 2), np.nan)
    conf = np.zeros((6, 2, 3))
    for t in range(6):
        xy[t, 0], conf[t, 0] = a[t], 0.9
        if t not in (2, 3, 4):
            xy[t, 1], conf[t, 1] = b[t], 0.9
    pred = object.__new__(TopDownPredictor)
    pred.info = TopDownInfo(bodyparts=PARTS, individuals=["a", "b"], n_animals=2, crop_side_px=24,
                            animal_size_px=20.0, reasons={})
    pred.crop_side_px, pred.instance, pred.n_animals = 24, _NearestBlob(), 2
    pred.centroid = SimpleNamespace(config=SimpleNamespace(nms_radius_px=6.0))
    return pred, xy, conf, video, b


def test_propagation_keeps_an_animal_whose_centroid_peak_merged(tmp_path):
    """Frames 2-4 lack B: crops at B's previous positions recover it frame after frame."""
    pred, xy, conf, video, b = _propagation_case(tmp_path, [True] * 6)
    added = pred.propagate_instances(xy, conf, str(video), list(range(6)))
    assert added == 3
    for t in (2, 3, 4):
        assert np.abs(xy[t, 1] - b[t]).max() < 1.5, (t, xy[t, 1], b[t])


def test_propagation_adds_nothing_for_an_animal_that_is_gone(tmp_path):
    """B leaves the picture in frame 3: its crop there finds nothing confident (not added), and
    frame 4, with no previous B, gets nothing either; frame 2 (B still there) is recovered."""
    pred, xy, conf, video, b = _propagation_case(tmp_path, [True, True, True, False, False, True])
    added = pred.propagate_instances(xy, conf, str(video), list(range(6)))
    assert added == 1 and np.isfinite(xy[2, 1]).all()
    assert np.isnan(xy[3, 1]).all() and np.isnan(xy[4, 1]).all()


def test_propagation_looks_again_where_an_animal_was_last_seen(tmp_path):
    """B is hidden in frame 2 (its crop there finds nothing) and back in frames 3-4: crops at
    frame 2's instances alone would never look for it again during the contact; the crop at
    its last-seen place (frame 1, within PROPAGATE_MEMORY_S) recovers it in frame 3, and frame
    3's instance in frame 4."""
    pred, xy, conf, video, b = _propagation_case(tmp_path, [True, True, False, True, True, True])
    added = pred.propagate_instances(xy, conf, str(video), list(range(6)))
    assert added == 2 and np.isnan(xy[2, 1]).all()
    for t in (3, 4):
        assert np.abs(xy[t, 1] - b[t]).max() < 1.5, (t, xy[t, 1], b[t])


def test_contact_search_finds_a_touching_animal_that_no_previous_crop_returns(tmp_path):
    """Two disks 9 px apart (one centroid peak), only A found, and the previous frame had
    only A too: the ring crops at the centroid NMS radius around A return B (the blob nearest
    their centre), not A again; with A alone in the frame nothing is added."""
    pred, _, _, _, _ = _propagation_case(tmp_path, [True] * 6)
    frame = np.zeros((64, 64, 3), np.uint8)
    cv2.circle(frame, (30, 32), 3, (255, 255, 255), -1)
    a_kept = [(np.full((3, 2), [30.0, 32.0]), np.full(3, 0.9))]
    alone = pred._search_contacts(frame.copy(), list(a_kept), 2, floor=0.5, min_px=3.0)
    assert len(alone) == 1
    cv2.circle(frame, (39, 32), 3, (255, 255, 255), -1)
    both = pred._search_contacts(frame, list(a_kept), 2, floor=0.5, min_px=3.0)
    assert len(both) == 2 and np.abs(both[1][0] - [39.0, 32.0]).max() < 1.0, both[1][0]


def test_crop_centres_add_the_last_seen_animal_only_within_memory():
    from pose.pipeline.topdown import _crop_centres

    xy = np.full((6, 2, 3, 2), np.nan)
    xy[:, 0] = [10.0, 10.0]
    xy[0, 1] = [40.0, 10.0]  # B seen in row 0 only
    assert len(_crop_centres(xy, 1, 5, 5.0)) == 2  # row 0 holds both
    got = _crop_centres(xy, 4, 5, 5.0)  # rows 1-3 lack B: row 0 is within 5 rows
    assert len(got) == 2 and np.allclose(got[1], [40.0, 10.0])
    assert len(_crop_centres(xy, 4, 2, 5.0)) == 1  # row 0 is older than the memory
    xy[0, 1] = [12.0, 10.0]  # where A is now: not a second place to look
    assert len(_crop_centres(xy, 4, 5, 5.0)) == 1


def test_missing_animals_warning_is_loud_only_past_its_share():
    from pose.dataset import from_numpy
    from pose.pipeline.topdown import missing_animals_warning

    pos = np.ones((100, 2, 3, 2))
    pos[:2, :, :, 1] = np.nan  # 2 % of the frames with one animal: quiet
    ds = from_numpy(pos, keypoints=PARTS, individuals=["instance_0", "instance_1"])
    assert missing_animals_warning(ds, 2) is None
    pos[:10, :, :, 1] = np.nan  # 10 %: loud, with the share
    text = missing_animals_warning(from_numpy(pos, keypoints=PARTS, individuals=["instance_0", "instance_1"]), 2)
    assert text and text.startswith("WARNING: 10.0 % OF THE FRAMES")
