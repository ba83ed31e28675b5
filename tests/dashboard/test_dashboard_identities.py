"""Identity review and correction (dashboard.identities, the pose review page) and the 3D view
(dashboard.threed_view), on the virtual social mice with an injected swap and the virtual 3D mouse."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.data import ROOT_ENV
from dashboard.identities import (
    corrections,
    draw_identities,
    identity_colour,
    identity_tracks,
    identity_trajectory_figure,
    max_step_px,
    suspect_table,
    swap_in_place,
    swap_pair,
    undo_depth,
    undo_last,
)
from pose.io import load
from pose.tracking import swap_identities

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
_spec = importlib.util.spec_from_file_location("dashboard_fixtures", Path(__file__).with_name("dashboard_fixtures.py"))
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)
SWAP = fixtures.INJECTED_SWAP_FRAME


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return fixtures.make_pose_review_root(tmp_path_factory.mktemp("review"))


@pytest.fixture
def files(made: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A fresh copy of the review root for each test (the tests write into the files)."""
    root = made["tracked"].parents[1]
    shutil.copytree(root, tmp_path / "root")
    return {k: tmp_path / "root" / v.relative_to(root) for k, v in made.items()} | {"root": tmp_path / "root"}


def test_suspect_table_lists_the_injected_swap(files: dict[str, Path]):
    bad, ok = load(files["tracked"]), load(files["ok"])
    a, b = (str(n) for n in bad.individual.values)
    rows = suspect_table(bad)
    at_swap = rows[rows.frame == SWAP]
    assert sorted(at_swap.individuals) == [a, b] and set(at_swap.kind) == {"jump"}
    # the jump is the distance from one animal's centroid in the frame before to the other's at the swap frame,
    # measured on the tracker's own output (before the swap was injected)
    c = identity_tracks(ok)
    expected = {a: np.linalg.norm(c[SWAP, :, 1] - c[SWAP - 1, :, 0]), b: np.linalg.norm(c[SWAP, :, 0] - c[SWAP - 1, :, 1])}
    for r in at_swap.itertuples():
        assert r.reason == f"jump of {expected[r.individuals]:.0f} px in one frame"
        assert r.time_s == pytest.approx(SWAP / 25.0)
        ic = bad["identity_confidence"].sel(individual=r.individuals).values[SWAP - 1: SWAP + 1]
        assert r.margin == pytest.approx(np.nanmin(ic))
    assert not (suspect_table(ok).frame == SWAP).any()  # the tracker's output has no event there
    assert swap_pair(at_swap.iloc[0], [a, b]) in ((a, b), (b, a))


def test_swap_in_place_equals_swap_identities_and_undo_restores_bytes(files: dict[str, Path]):
    path = files["tracked"]
    before_bytes = path.read_bytes()
    before = load(path)
    a, b = (str(n) for n in before.individual.values)
    assert undo_depth(path) == 0 and not undo_last(path)
    written = swap_in_place(path, a, b, SWAP)
    got, expected = load(path), swap_identities(before, a, b, SWAP)
    for var in ("position", "confidence", "identity_confidence"):
        np.testing.assert_array_equal(got[var].values, expected[var].values)
        np.testing.assert_array_equal(got[var].values, written[var].values)
    np.testing.assert_array_equal(got["position"].values, load(files["ok"])["position"].values)  # the tracker's output again
    assert got.attrs["history"][-1]["op"] == "swap_identities"
    assert corrections(got)[["a", "b", "from_frame"]].values.tolist() == [[a, b, SWAP]]
    assert not (suspect_table(got).frame == SWAP).any()
    swap_in_place(path, a, b, 100)  # a second (wrong) correction, undone first
    assert undo_depth(path) == 2 and corrections(load(path)).from_frame.tolist() == [SWAP, 100]
    assert undo_last(path) and undo_depth(path) == 1
    np.testing.assert_array_equal(load(path)["position"].values, expected["position"].values)
    assert undo_last(path) and undo_depth(path) == 0
    assert path.read_bytes() == before_bytes
    with pytest.raises(ValueError, match="no individual 'mouse_9'"):
        swap_in_place(path, a, "mouse_9", SWAP)
    assert path.read_bytes() == before_bytes and undo_depth(path) == 0  # nothing written, nothing stacked


def test_swap_refuses_a_format_without_history(files: dict[str, Path]):
    from pose.io import save

    h5 = save(load(files["tracked"]), files["root"] / "social" / "tracked.slp")
    with pytest.raises(ValueError, match=r"tracked\.slp: identities are corrected in NetCDF"):
        swap_in_place(h5, "track_0", "track_1", SWAP)


def test_trajectory_figure_shows_each_identity_and_the_corrected_tracks_are_continuous(files: dict[str, Path]):
    bad, ok = load(files["tracked"]), load(files["ok"])
    names = [str(n) for n in bad.individual.values]
    fig = identity_trajectory_figure(identity_tracks(bad), names, SWAP)
    paths = [t for t in fig.data if t.mode == "lines"]
    assert [t.name for t in paths] == names and [t.line.color for t in paths] == [identity_colour(0), identity_colour(1)]
    xy = np.stack([np.stack([np.asarray(t.x, float), np.asarray(t.y, float)], axis=1) for t in paths], axis=2)
    np.testing.assert_allclose(xy, identity_tracks(bad))
    before = max_step_px(xy)
    swap_in_place(files["tracked"], names[0], names[1], SWAP)
    after = max_step_px(identity_tracks(load(files["tracked"])))
    reference = max_step_px(identity_tracks(ok))
    print(f"largest one-frame centroid step: injected {before.round(1)} px, corrected {after.round(1)} px, "
          f"tracker's output {reference.round(1)} px")
    assert (before > 200).all()
    np.testing.assert_allclose(after, reference)


def test_draw_identities_colours_each_animal():
    rgb = np.zeros((100, 120, 3), np.uint8)
    xy = np.full((2, 2, 2), np.nan)
    xy[:, 0, 0], xy[:, 0, 1], xy[:, 1, 1] = (30, 40), (90, 60), (60, 20)
    conf = np.array([[0.9, 0.9], [np.nan, 0.1]])
    out = draw_identities(rgb, xy, conf, 0.5)
    hexrgb = [tuple(int(identity_colour(i)[j:j + 2], 16) for j in (1, 3, 5)) for i in (0, 1)]
    assert tuple(out[40, 30]) == hexrgb[0] and tuple(out[60, 90]) == hexrgb[1]
    assert tuple(out[20, 60]) == hexrgb[1]  # below the cut-off: a cross (its centre) in the identity's colour
    assert out.sum() > 0 and rgb.sum() == 0  # drawn on a copy


def _review_app(root: Path, monkeypatch: pytest.MonkeyPatch, rel: str) -> AppTest:
    monkeypatch.setenv(ROOT_ENV, str(root))
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.session_state["pr_file"] = rel  # as the Animal QC page's "Review identities" button sets it
    at.switch_page("pages/pose_review.py")
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="pr_file").value == rel
    return at


def test_review_page_jumps_to_the_suspect_swaps_and_undoes(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    path = files["tracked"]
    before_bytes = path.read_bytes()
    at = _review_app(files["root"], monkeypatch, "social/tracked.nc")
    table = at.dataframe[0].value
    assert list(table.columns) == ["frame", "time_s", "individuals", "reason", "margin"]
    picks = [o for o in at.selectbox(key="pr_suspect").options if o.startswith(f"frame {SWAP} (16.00 s)")]
    assert len(picks) == 2 and all("jump of" in o for o in picks), picks
    at.selectbox(key="pr_suspect").set_value(picks[0]).run()
    assert at.slider(key="pr_frame").value == SWAP  # row = frame here (every frame present)
    assert {at.selectbox(key="pr_a").value, at.selectbox(key="pr_b").value} == {"track_0", "track_1"}
    assert [c for e in at.get("image") for c in e.captions] == [f"frame {SWAP} (t = 16.00 s)"]
    a, b = at.selectbox(key="pr_a").value, at.selectbox(key="pr_b").value
    at.button(key="pr_swap").click().run()
    assert not at.exception
    assert any(f"Swapped {a} and {b} from frame {SWAP} on" in s.value for s in at.success)
    np.testing.assert_array_equal(load(path)["position"].values, load(files["ok"])["position"].values)
    assert not (at.dataframe[0].value.frame == SWAP).any()  # the suspect is gone from the table
    at.button(key="pr_undo").click().run()
    assert not at.exception
    assert path.read_bytes() == before_bytes
    assert (at.dataframe[0].value.frame == SWAP).sum() == 2
    at.selectbox(key="pr_suspect").set_value(picks[1]).run()  # the list works on the restored table
    assert not at.exception and at.slider(key="pr_frame").value == SWAP


def test_review_page_steps_between_suspects(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    at = _review_app(files["root"], monkeypatch, "social/tracked.nc")
    frames = sorted(set(at.dataframe[0].value.frame))
    at.button(key="pr_next").click().run()
    assert at.slider(key="pr_frame").value == frames[0]
    at.button(key="pr_next").click().run()
    assert at.slider(key="pr_frame").value == frames[1]
    at.button(key="pr_prev").click().run()
    assert at.slider(key="pr_frame").value == frames[0]


def test_review_page_3d_trajectory_and_heights(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    import json

    at = _review_app(files["root"], monkeypatch, "threed/points3d.nc")
    assert "3D trajectory" in [h.value for h in at.header]
    figs = {json.loads(e.proto.spec)["layout"]["meta"]: json.loads(e.proto.spec) for e in at.get("plotly_chart")}
    assert figs["trajectory_3d"]["layout"]["scene"]["aspectmode"] == "data"
    assert figs["trajectory_3d"]["data"][0]["type"] == "scatter3d"
    assert figs["height"]["layout"]["yaxis"]["title"]["text"] == "height above the floor (mm)"
    from dashboard.threed_view import trajectory_3d

    floor = trajectory_3d(load(files["threed"])).floor  # how features.threed found it, said under the figure
    assert f"floor: {floor}" in [c.value for c in at.caption], [c.value for c in at.caption]
    assert "Identities" not in [h.value for h in at.header]  # one animal


def test_trajectory_3d_heights_match_the_virtual_mouse(files: dict[str, Path]):
    from dashboard.threed_view import height_figure, trajectory_3d, trajectory_3d_figure

    ds = load(files["threed"])
    traj = trajectory_3d(ds)
    z = ds["position"].sel(space="z", individual="mouse")  # the virtual world: floor at z = 0, z up
    err = {c: np.abs(traj.table[c].to_numpy() - z.sel(keypoint=k).values)
           for c, k in (("snout_height_mm", "snout"), ("height_mm", "body_center"))}
    print("height error vs truth (mm): " + ", ".join(f"{c} median {np.median(e):.3f} max {e.max():.3f}" for c, e in err.items()))
    assert all(np.median(e) < 0.5 and e.max() < 1.0 for e in err.values())
    fig = trajectory_3d_figure(traj, ds["position"].isel(time=10).transpose("space", "keypoint", "individual").values, 10)
    path = fig.data[0]
    np.testing.assert_allclose(np.asarray(path.z, float), ds["position"].sel(space="z", keypoint="body_center",
                                                                             individual="mouse").values)
    assert fig.layout.scene.aspectmode == "data" and fig.layout.scene.zaxis.title.text == "z (mm)"
    h = height_figure(traj, 0.4)
    snout = next(t for t in h.data if t.meta["column"] == "snout_height_mm")
    np.testing.assert_allclose(np.asarray(snout.y, float), traj.table["snout_height_mm"].to_numpy())
    with pytest.raises(ValueError, match="not a 3D pose"):
        trajectory_3d(load(files["ok"]))


def test_animal_qc_link_names_the_multi_animal_source(files: dict[str, Path], tmp_path: Path):
    from dashboard.data import identity_source, identity_source_rel

    root = files["root"]
    n_suspects = len(suspect_table(load(files["tracked"])))
    assert identity_source(root, {"pose_path": str(files["tracked"])}) == (2, n_suspects)
    assert identity_source_rel(root, {"pose_path": str(files["tracked"])}) == "social/tracked.nc"
    assert identity_source(root, {"pose_path": str(files["threed"])}) is None  # one animal
    outside = tmp_path / "outside.nc"
    shutil.copy(files["tracked"], outside)
    assert identity_source(root, {"pose_path": str(outside)}) is None and identity_source(root, {}) is None
