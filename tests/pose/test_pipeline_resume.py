"""Resume integrity: a checkpoint loads with ``weights_only=True`` and belongs to one training
(split, labels, config, recipe, version); a fresh training never mixes with an old model
folder; temporary files of a killed run are removed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from .pipeline_helpers import make_blob_project

torch = pytest.importorskip("torch")


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs, no except clause catches it."""


def _cfg():
    from pose.pipeline.augment import AugmentConfig
    from pose.pipeline.train import TrainConfig

    return TrainConfig(pretrained=False, epochs=2, batch_size=2, repeats=1, neck_channels=16, stride=8,
                       val_fraction=0.0, mine_period=1, scale=1.0,
                       augment=AugmentConfig(crop_px=64, rotation_deg=0, flip_prob=0, random_crop=False))


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A project and a model folder stopped after epoch 1 of 2 (checkpoint.pt at epoch 1)."""
    from pose.pipeline.train import train_model

    torch.set_num_threads(1)
    root, _ = make_blob_project(tmp_path_factory.mktemp("resume") / "proj", n_frames=6)
    model = train_model(root, config=_cfg(), out_dir=root.parent / "stopped", training_fraction=0.5,
                        stop_after_epoch=1)
    return root, model


def _copy(model, tmp_path):
    return shutil.copytree(model, tmp_path / "m")


def test_checkpoint_loads_with_weights_only_and_resume_finishes(stopped, tmp_path):
    from pose.pipeline.checkpoint import load_checkpoint
    from pose.pipeline.train import train_model

    root, model = stopped
    raw = torch.load(model / "checkpoint.pt", map_location="cpu", weights_only=True)  # no pickled objects
    assert raw["state"]["epoch"] == 1
    assert set(raw["fingerprint"]) == {"split", "labels", "config", "recipe", "version"}
    assert isinstance(raw["rng"]["numpy"][1], torch.Tensor)
    m = _copy(model, tmp_path)
    (m / ".checkpoint.abc123.tmp.pt").write_bytes(b"half a checkpoint")  # a kill inside a save
    (m / ".weights.x9.tmp.pt").write_bytes(b"")
    train_model(root, out_dir=m, resume=True)
    assert not list(m.glob(".*.tmp*"))
    ckpt = load_checkpoint(m / "checkpoint.pt", raw["fingerprint"])
    assert ckpt["state"]["epoch"] == 2 and len(ckpt["state"]["curve"]) == 2
    assert all(isinstance(v, np.ndarray) for v in ckpt["state"]["hard_points"].values())


def test_resume_refuses_a_checkpoint_of_another_split(stopped, tmp_path):
    # What a fresh `pose train` into the folder, killed before its first epoch ended, left
    # with the old code: its new split.json beside the old run's checkpoint. --resume used to
    # "finish" the old weights on the new split (a leaked test error).
    from pose.pipeline.checkpoint import CheckpointMismatchError
    from pose.pipeline.train import train_model

    root, model = stopped
    m = _copy(model, tmp_path)
    split = json.loads((m / "split.json").read_text())
    split["train"], split["test"] = split["test"], split["train"]
    (m / "split.json").write_text(json.dumps(split))
    before = (m / "weights.pt").read_bytes()
    with pytest.raises(CheckpointMismatchError, match=r"different training \(changed: split"):
        train_model(root, out_dir=m, resume=True)
    assert (m / "weights.pt").read_bytes() == before  # nothing trained or written


def test_resume_refuses_changed_labels_and_config(stopped, tmp_path):
    import pose.io
    from pose.pipeline.checkpoint import CheckpointMismatchError
    from pose.pipeline.train import train_model

    root, model = stopped
    m = _copy(model, tmp_path)
    cfg = json.loads((m / "train_config.json").read_text())
    cfg["lr"] = 0.5
    (m / "train_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointMismatchError, match="config"):
        train_model(root, out_dir=m, resume=True)
    shutil.copy(model / "train_config.json", m / "train_config.json")
    proj = shutil.copytree(root, tmp_path / "proj2")
    labels = proj / "labeled-data/vid/CollectedData_test.h5"
    ds = pose.io.load(labels)
    ds["position"][0, 0, 0, 0] += 3.0  # one label moved by 3 px
    pose.io.save(ds, labels)
    with pytest.raises(CheckpointMismatchError, match=r"changed: labels"):
        train_model(proj, out_dir=m, resume=True)


def test_resume_loads_no_pickled_objects(stopped, tmp_path):
    # a checkpoint of the old layout (numpy RNG state, pickled) or a crafted one is refused,
    # not unpickled: with weights_only=False its payload would have run
    from pose.pipeline.checkpoint import CheckpointMismatchError
    from pose.pipeline.train import train_model

    root, model = stopped
    m = _copy(model, tmp_path)
    ckpt = torch.load(m / "checkpoint.pt", weights_only=True)
    ckpt["rng"]["numpy"] = np.random.get_state()
    torch.save(ckpt, m / "checkpoint.pt")
    with pytest.raises(CheckpointMismatchError, match="pickled objects"):
        train_model(root, out_dir=m, resume=True)
    del ckpt["fingerprint"]
    ckpt["rng"] = torch.load(model / "checkpoint.pt", weights_only=True)["rng"]
    torch.save(ckpt, m / "checkpoint.pt")
    with pytest.raises(CheckpointMismatchError, match="no training fingerprint"):
        train_model(root, out_dir=m, resume=True)


def test_fresh_training_into_a_model_folder_refuses_or_clears(stopped, tmp_path, monkeypatch):
    import pose.pipeline.train as train_mod

    root, model = stopped
    m = _copy(model, tmp_path)
    with pytest.raises(FileExistsError, match="already holds a model.*--overwrite"):
        train_mod.train_model(root, config=_cfg(), out_dir=m, training_fraction=0.75)

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(train_mod, "PoseNet", killed)  # dies after the new split, before epoch 1
    with pytest.raises(Killed):
        train_mod.train_model(root, config=_cfg(), out_dir=m, training_fraction=0.75, overwrite=True)
    assert json.loads((m / "split.json").read_text())["test"] != json.loads((model / "split.json").read_text())["test"]
    assert not (m / "checkpoint.pt").exists() and not (m / "weights.pt").exists()
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt.*first epoch"):
        train_mod.train_model(root, out_dir=m, resume=True)


def test_cli_train_refusal_is_one_line(stopped, tmp_path):
    from pose.pipeline.cli import app

    root, model = stopped
    m = _copy(model, tmp_path)
    res = CliRunner().invoke(app, ["train", str(root), "--out", str(m), "--epochs", "1"])
    assert res.exit_code == 1 and "already holds a model" in res.output and "Traceback" not in res.output
    split = json.loads((m / "split.json").read_text())
    split["test"] = split["train"][:1]
    (m / "split.json").write_text(json.dumps(split))
    res = CliRunner().invoke(app, ["train", str(root), "--out", str(m), "--resume"])
    assert res.exit_code == 1 and "different training" in res.output and "Traceback" not in res.output
