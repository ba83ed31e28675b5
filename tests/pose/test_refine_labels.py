"""The label store: edits saved at once in DeepLabCut's layout, atomically, with a backup."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pose.refine.labels import LabelStore, read_project_info

_spec = importlib.util.spec_from_file_location(
    "refine_helpers", Path(__file__).with_name("refine_helpers.py")
)
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    return fixtures.make_project(tmp_path)


def test_new_project_lists_images_and_has_no_labels(project: Path) -> None:
    store = LabelStore(read_project_info(project), "vidA")
    assert store.images == [f"labeled-data/vidA/img{i:03d}.png" for i in range(3)]
    assert np.isnan(store.xy).all()
    assert not store.h5_path.exists()


def test_set_point_saves_dlc_layout_readable_by_pandas(project: Path) -> None:
    store = LabelStore(read_project_info(project), "vidA")
    store.set_point("img001.png", "snout", 12.5, 30.0)
    df = pd.read_hdf(store.h5_path)
    assert df.columns.names == ["scorer", "bodyparts", "coords"]
    assert df.loc[("labeled-data", "vidA", "img001.png"), ("tester", "snout", "x")] == 12.5
    assert df.loc[("labeled-data", "vidA", "img001.png"), ("tester", "snout", "y")] == 30.0
    assert np.isnan(df.loc[("labeled-data", "vidA", "img001.png"), ("tester", "tail_base", "x")])
    csv = pd.read_csv(store.csv_path, header=[0, 1, 2], index_col=[0, 1, 2])
    assert csv.iloc[0][("tester", "snout", "y")] == 30.0
    # reopen: nothing lost
    again = LabelStore(read_project_info(project), "vidA")
    assert again.point("img001.png", "snout") == (12.5, 30.0)


def test_move_clear_and_not_visible_round_trip(project: Path) -> None:
    store = LabelStore(read_project_info(project), "vidA")
    store.set_point("img000.png", "left_ear", 5, 6)
    store.move_point("img000.png", "left_ear", 7, 8)
    store.mark_not_visible("img000.png", "tail_base")
    store.set_point("img002.png", "right_ear", 1, 2)
    store.clear_point("img002.png", "right_ear")
    again = LabelStore(read_project_info(project), "vidA")
    assert again.point("img000.png", "left_ear") == (7.0, 8.0)
    assert again.is_not_visible("img000.png", "tail_base")
    assert np.isnan(again.point("img000.png", "tail_base")).all()
    assert np.isnan(again.point("img002.png", "right_ear")).all()
    assert again.n_done("img000.png") == 2


def test_backup_keeps_previous_version(project: Path) -> None:
    store = LabelStore(read_project_info(project), "vidA")
    store.set_point("img000.png", "snout", 1, 1)
    store.set_point("img000.png", "snout", 2, 2)
    bak = pd.read_hdf(store.h5_path.with_name(store.h5_path.name + ".bak"))
    assert bak.iloc[0][("tester", "snout", "x")] == 1.0
    assert pd.read_hdf(store.h5_path).iloc[0][("tester", "snout", "x")] == 2.0


def test_crash_between_write_and_rename_keeps_last_saved_labels(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LabelStore(read_project_info(project), "vidA")
    store.set_point("img000.png", "snout", 10, 20)

    def crash(*args, **kwargs):
        raise OSError("simulated power cut before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        store.set_point("img000.png", "snout", 99, 99)
    monkeypatch.undo()
    leftovers = [p.name for p in store.folder.iterdir() if ".tmp" in p.name]
    assert leftovers == []
    again = LabelStore(read_project_info(project), "vidA")
    assert again.point("img000.png", "snout") == (10.0, 20.0)


def test_damaged_h5_falls_back_to_csv(project: Path) -> None:
    store = LabelStore(read_project_info(project), "vidA")
    store.set_point("img001.png", "snout", 3, 4)
    store.h5_path.write_bytes(b"not an hdf5 file")
    again = LabelStore(read_project_info(project), "vidA")
    assert again.point("img001.png", "snout") == (3.0, 4.0)


def test_bad_input_names_what_is_wrong(project: Path) -> None:
    store = LabelStore(read_project_info(project), "vidA")
    with pytest.raises(KeyError, match="'nose' is not a body part"):
        store.set_point("img000.png", "nose", 1, 1)
    with pytest.raises(KeyError, match="img999.png: not an image"):
        store.set_point("img999.png", "snout", 1, 1)
    with pytest.raises(ValueError, match="must be finite"):
        store.set_point("img000.png", "snout", float("nan"), 1)
    with pytest.raises(FileNotFoundError, match="no such video folder"):
        LabelStore(read_project_info(project), "nope")
    (project / "config.yaml").write_text("bodyparts: []\n")
    with pytest.raises(ValueError, match="invalid project config:(.|\n)*bodyparts"):
        read_project_info(project)


def test_reads_deeplabcut_demo_labels(shared_data: Path, tmp_path: Path) -> None:
    import shutil

    src = shared_data / "dlc-openfield"
    proj = tmp_path / "of"
    shutil.copytree(src / "labeled-data", proj / "labeled-data")
    shutil.copy(src / "config.yaml", proj / "config.yaml")
    info = read_project_info(proj)
    store = LabelStore(info, "m4s1")
    ref = pd.read_hdf(src / "labeled-data" / "m4s1" / f"CollectedData_{info.scorer}.h5")
    assert len(store.images) == 116
    first = "/".join(ref.index[0]) if isinstance(ref.index[0], tuple) else ref.index[0]
    x = ref.iloc[0][(info.scorer, "snout", "x")]
    assert store.point(first.split("/")[-1], "snout")[0] == pytest.approx(x)


def test_set_points_replaces_a_whole_frame(project: Path) -> None:
    store = LabelStore(read_project_info(project), "vidA")
    xy = np.array([[1.0, 2.0], [3.0, 4.0], [np.nan, np.nan], [7.0, 8.0]])
    store.set_points("img002.png", xy, not_visible=["right_ear"])
    again = LabelStore(read_project_info(project), "vidA")
    np.testing.assert_array_equal(again.xy[2], xy)
    assert again.is_not_visible("img002.png", "right_ear") and again.n_done("img002.png") == 4
    with pytest.raises(ValueError, match=r"must have shape \(4, 2\)"):
        store.set_points("img002.png", xy[:2])
