"""The training recipe derived from a project's labels (pose.pipeline.recipe), the bounded
cost of training on large frames, and the warning of a model that failed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pose.pipeline.recipe import (
    MODEST_ROTATION_DEG,
    TARGET_EXTENT_PX,
    RecipeOverrides,
    animal_size_px,
    axial_spread_deg,
    body_axis,
    derive_recipe,
    keypoint_spacing_px,
    match_flip_pairs,
)

sys.path.insert(0, str(Path(__file__).parent))
from pipeline_helpers import make_blob_project  # noqa: E402

MOUSE = ["snout", "left_ear", "right_ear", "tail_base"]
# body frame (x forward, y to the left... image y down): snout ahead, ears behind it, tail base
BODY = np.array([[1.0, 0.0], [0.55, -0.25], [0.55, 0.25], [-1.0, 0.0]])


def _animals(n: int, length_px: float, centre: tuple[float, float], angles_deg: np.ndarray,
             seed: int = 0) -> np.ndarray:
    """``(n, 4, 2)`` mouse keypoints, half-length ``length_px``, rotated by ``angles_deg``."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, len(BODY), 2))
    for i, a in enumerate(np.radians(angles_deg)):
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        out[i] = BODY @ rot.T * length_px + np.array(centre) + rng.normal(0, 2, 2)
    return out


def test_statistics_known_answers():
    kps = _animals(10, 50.0, (200, 200), np.zeros(10))
    kps[:, :, :] = kps[0]  # identical frames: extent = bbox diagonal of one animal
    assert animal_size_px(kps, MOUSE) == pytest.approx(np.hypot(100.0, 25.0), rel=1e-6)
    # nearest neighbour: the ears are 25 px apart, snout-ear hypot(22.5, 12.5)
    assert keypoint_spacing_px(kps, MOUSE) == pytest.approx(np.median([25.7391, 25.0, 25.0, 77.5]), rel=1e-3)
    assert axial_spread_deg(np.zeros(20)) == pytest.approx(0.0, abs=1e-6)
    assert axial_spread_deg(np.r_[np.zeros(10), np.full(10, 180.0)]) == pytest.approx(0.0, abs=1e-6)  # an axis
    assert axial_spread_deg(np.linspace(-180, 180, 72, endpoint=False)) > 60


def test_top_view_shown_by_the_data_rotates_fully_side_view_modestly():
    rng = np.random.default_rng(0)
    top = _animals(60, 50.0, (320, 240), rng.uniform(-180, 180, 60))
    side = _animals(60, 50.0, (320, 240), rng.choice([0.0, 180.0], 60) + rng.normal(0, 5, 60))
    r_top = derive_recipe(top, MOUSE, (480, 640))
    r_side = derive_recipe(side, MOUSE, (480, 640))
    assert r_top.rotation_deg == 180 and r_top.view == "top"
    assert r_side.rotation_deg == MODEST_ROTATION_DEG and r_side.view == "other"
    assert "spreads" in r_side.reasons["rotation_deg"]
    # a declared view wins over the data, and a given rotation over both
    assert derive_recipe(side, MOUSE, (480, 640), overrides=RecipeOverrides(view="top")).rotation_deg == 180
    assert derive_recipe(top, MOUSE, (480, 640), overrides=RecipeOverrides(view="side")).rotation_deg == 20
    assert derive_recipe(top, MOUSE, (480, 640), overrides=RecipeOverrides(rotation_deg=45)).rotation_deg == 45
    assert r_top.flip_pairs == [("left_ear", "right_ear")]


def test_insect_axis_head_to_abdomen_by_name():
    """A fly's axis is head -> abdomen (SLEAP's fly skeleton), not the two farthest leg tips."""
    names = ["head", "thorax", "abdomen", "forelegL4", "forelegR4", "hindlegL4", "hindlegR4"]
    body = np.array([[1.0, 0.0], [0.3, 0.0], [-1.0, 0.0], [1.2, 0.9], [1.2, -0.9], [-1.1, 1.0], [-1.1, -1.0]])
    rng = np.random.default_rng(1)
    kps = np.stack([body @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]).T * 40 + (320, 240)
                    for a in np.radians(rng.uniform(-180, 180, 40))])
    pair, _, how = body_axis(kps, names)
    assert set(pair) == {0, 2} and how == "head-tail pair by name"
    assert derive_recipe(kps, names, (480, 640)).rotation_deg == 180


def test_mirror_layout_head_fixed_two_views():
    """A head-fixed mouse seen from the top and (mirror) bottom: fixed axis, LH/RH pairs."""
    names = ["nose_top", "paw1LH_top", "paw2LF_top", "paw3RF_top", "paw4RH_top",
             "nose_bottom", "paw1LH_bottom", "paw2LF_bottom", "paw3RF_bottom", "paw4RH_bottom", "tailbase_top"]
    rng = np.random.default_rng(1)
    base = np.array([[200, 60], [150, 40], [180, 45], [180, 95], [150, 100],
                     [200, 260], [150, 240], [180, 245], [180, 295], [150, 300], [60, 70]], float)
    kps = base[None] + rng.normal(0, 3, (40, len(names), 2))
    r = derive_recipe(kps, names, (406, 396))
    assert r.rotation_deg == MODEST_ROTATION_DEG
    assert sorted(r.flip_pairs) == sorted([("paw1LH_top", "paw4RH_top"), ("paw2LF_top", "paw3RF_top"),
                                           ("paw1LH_bottom", "paw4RH_bottom"), ("paw2LF_bottom", "paw3RF_bottom")])


@pytest.mark.parametrize(("names", "pairs"), [
    (["snout", "leftear", "rightear", "tailbase"], [("leftear", "rightear")]),
    (["Left Ear", "Right Ear", "Nose"], [("Left Ear", "Right Ear")]),
    (["ear_l", "ear_r", "EarLeft", "EarRight"], [("ear_l", "ear_r"), ("EarLeft", "EarRight")]),
    (["LEar", "REar"], [("LEar", "REar")]),
    (["forepawL", "forepawR", "LF_paw", "RF_paw", "hl", "hr"], [("forepawL", "forepawR"), ("LF_paw", "RF_paw"),
                                                                ("hl", "hr")]),
    (["paw1LH_top", "paw4RH_top", "paw1LH_bottom", "paw4RH_bottom"],
     [("paw1LH_top", "paw4RH_top"), ("paw1LH_bottom", "paw4RH_bottom")]),
    (["Nearknee", "Offknee", "Nearfrontfoot", "Offfrontfoot"], []),  # not left/right names: no flips
    (["a", "b", "c"], []),
    (["left_paw", "nose"], []),  # no partner: never a blind flip
    (["paw1L", "paw2L", "paw1R"], [("paw1L", "paw1R")]),  # exact partner; paw2L stays unpaired
    (["pawL1", "pawL2", "pawR3", "pawR4"], []),  # ambiguous once digits are ignored: no pair
])
def test_flip_pairs_from_names(names, pairs):
    assert match_flip_pairs(names) == pairs


def test_declared_pairs_and_no_flips():
    kps = _animals(20, 40.0, (100, 100), np.zeros(20))
    assert derive_recipe(kps, MOUSE, (200, 200), declared_pairs=[]).flip_pairs == []
    assert derive_recipe(kps, MOUSE, (200, 200), overrides=RecipeOverrides(flip_pairs=[])).flip_pairs == []
    with pytest.raises(ValueError, match="nose"):
        derive_recipe(kps, MOUSE, (200, 200), declared_pairs=[("nose", "snout")])


def test_scale_maps_any_animal_to_the_same_network_size():
    """A small mouse in a 1280x1024 arena and a large one filling 396x406: same cost per sample."""
    rng = np.random.default_rng(2)
    small = _animals(50, 30.0, (640, 512), rng.uniform(-180, 180, 50))  # ~65 px in 1280x1024
    large = _animals(50, 150.0, (198, 203), rng.normal(0, 5, 50))  # ~310 px filling 396x406
    mid = _animals(50, 60.0, (320, 240), rng.uniform(-180, 180, 50))
    sizes = []
    for kps, hw in ((small, (1024, 1280)), (large, (406, 396)), (mid, (480, 640))):
        r = derive_recipe(kps, MOUSE, hw)
        sizes.append(r.animal_size_px * r.scale)
        assert r.crop_px <= 320
    assert max(sizes) / min(sizes) < 1.4
    assert all(0.7 * TARGET_EXTENT_PX <= s <= 1.4 * TARGET_EXTENT_PX for s in sizes)
    r_small = derive_recipe(small, MOUSE, (1024, 1280))
    assert r_small.scale > 1.5  # up-sampled: the small mouse gets enough pixels
    assert derive_recipe(large, MOUSE, (406, 396)).scale < 0.5
    assert derive_recipe(mid, MOUSE, (480, 640)).scale == 1.0  # close to the target: frames as they are


def test_project_config_recipe_section_and_view(tmp_path):
    import yaml

    from pose.pipeline.project import load_project

    root, _ = make_blob_project(tmp_path / "p", n_frames=2)
    cfg = yaml.safe_load((root / "config.yaml").read_text())
    cfg.pop("top_view")
    cfg.update(view="side", recipe={"scale": 0.5, "sigma_px": 2.5})
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    ov = load_project(root).config.recipe_overrides()
    assert (ov.view, ov.scale, ov.sigma_px, ov.crop_px) == ("side", 0.5, 2.5, None)
    cfg["recipe"] = {"scal": 1}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="scal"):
        load_project(root)


def test_one_epoch_training_warns_that_the_model_failed(tmp_path, capsys):
    """A deliberately failed training (1 epoch, random init) says so, and evaluation.json
    carries the normalized error and the animal size it used."""
    import torch

    from pose.pipeline.project import load_labels, load_project
    from pose.pipeline.train import TrainConfig, train_model

    root, _ = make_blob_project(tmp_path / "p", n_frames=6, size_px=64)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = TrainConfig(pretrained=False, epochs=1, repeats=1, batch_size=6, neck_channels=16, scale=1.0,
                          val_fraction=0.0, mine_period=0)
        model_dir = train_model(root, config=cfg, out_dir=tmp_path / "m", training_fraction=1.0)
    finally:
        torch.set_num_threads(n)
    err = capsys.readouterr().err
    assert "WARNING: the pose model has FAILED" in err and "Likely causes" in err
    assert "training recipe" in err and "flip_pairs" in err  # the recipe is printed first
    ev = json.loads((model_dir / "evaluation.json").read_text())
    labels = load_labels(load_project(root))
    assert ev["animal_size_px"] == pytest.approx(animal_size_px(labels.keypoints, labels.names))
    assert ev["train"]["normalized_error"] == pytest.approx(ev["train"]["mean_px"] / ev["animal_size_px"])
    assert ev["train"]["normalized_error"] > 0.1
    recipe = json.loads((model_dir / "recipe.json").read_text())
    assert recipe["scale"] == 1.0 and recipe["reasons"]["scale"] == "given"
    assert recipe["flip_pairs"] == [["left_spot", "right_spot"]]


def test_quality_warning_silent_for_a_good_model():
    from pose.pipeline.evaluate import quality_warning, size_metrics

    errors = np.full((10, 4), 2.0)
    m = size_metrics(errors, 100.0)
    assert m == {"normalized_error": pytest.approx(0.02), "pck_size10": 1.0}
    good = {"animal_size_px": 100.0, "train": {"mean_px": 2.0, **m}, "test": {"mean_px": 2.0, **m}}
    assert quality_warning(good) is None
    bad_test = {**good, "test": {"mean_px": 30.0, **size_metrics(np.full((4, 4), 30.0), 100.0)}}
    text = quality_warning(bad_test)
    assert text is not None and "test error 30.0 px = 0.30" in text and "label more frames" in text


@pytest.mark.slow
def test_training_rss_bounded_on_large_frames(tmp_path):
    """1280x1024 frames, a mouse of ~300 px: a few training steps stay far below 3 GB."""
    script = textwrap.dedent(f"""
        import resource, sys
        import numpy as np, cv2, yaml, torch
        torch.set_num_threads(2)
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pipeline_helpers import make_blob_project
        import pose.io
        from pose.dataset import from_numpy
        from pose.pipeline.train import TrainConfig, train_model
        root = __import__("pathlib").Path({str(tmp_path / "big")!r})
        folder = root / "labeled-data" / "vid"
        folder.mkdir(parents=True)
        rng = np.random.default_rng(0)
        names = ["snout", "left_ear", "right_ear", "tail_base"]
        body = np.array([[150, 0], [80, -40], [80, 40], [-150, 0]], float)
        kps, images = [], []
        for i in range(40):
            a = rng.uniform(-np.pi, np.pi)
            rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            k = body @ rot.T + rng.uniform(300, 700, 2)
            img = rng.integers(0, 60, (1024, 1280, 3), dtype=np.uint8)
            for x, y in k:
                cv2.circle(img, (int(x), int(y)), 12, (230, 230, 230), -1)
            name = f"labeled-data/vid/img{{i:04d}}.png"
            cv2.imwrite(str(root / name), img)
            kps.append(k); images.append(name)
        ds = from_numpy(np.array(kps).transpose(0, 2, 1), keypoints=names, individuals=["individual_0"])
        ds = ds.assign_coords(image=("time", images)); ds.attrs["scorer"] = "t"
        pose.io.save(ds, folder / "CollectedData_t.h5")
        (root / "config.yaml").write_text(yaml.safe_dump({{"Task": "big", "scorer": "t", "bodyparts": names}}))
        cfg = TrainConfig(pretrained=False, epochs=1, repeats=1, batch_size=8, evaluate=False)
        model = train_model(root, config=cfg, out_dir=root / "m", training_fraction=0.9)
        import json
        r = json.loads((model / "recipe.json").read_text())
        print(json.dumps({{"rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
                          "scale": r["scale"], "crop": r["crop_px"]}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["scale"] < 0.5 and res["crop"] <= 320
    assert res["rss_gb"] <= 3.0, res
