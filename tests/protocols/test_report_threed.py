"""The report's 3D section: a triangulated session's path in mm (equal axes, floor frame) and its heights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from protocols.report_threed import _equal_box, is_3d, path_columns, plot_heights, plot_trajectories_3d
from protocols.results import AnimalResult


@pytest.fixture(scope="module")
def frames3d() -> tuple[pd.DataFrame, np.ndarray]:
    """The virtual mouse (rears) through 3 cameras at 1 px, its 3D feature table, and the snout's true height."""
    from features.threed import compute_feature_table_3d
    from pose.synthetic.multicam import lift_to_3d, make_rig, project_poses
    from pose.synthetic.openfield import simulate_open_field
    from pose.threed.triangulation import triangulate_poses

    truth = lift_to_3d(simulate_open_field(20.0, fps=15, seed=4))
    cams = make_rig(3, seed=4)
    tri, _ = triangulate_poses(project_poses(truth, cams, noise_px=1.0, seed=5), cams)
    return compute_feature_table_3d(tri), truth.position.sel(keypoint="snout", space="z").values.ravel()


def _animal(key: str, frames: pd.DataFrame, folder: Path) -> AnimalResult:
    return AnimalResult(key, {"group": "a", "subject_id": key}, {}, frames, {}, [], 15.0, folder)


def test_equal_box_is_in_proportion_to_the_data() -> None:
    import matplotlib.pyplot as plt

    fig = plt.figure()
    ax = fig.add_subplot(projection="3d")
    xyz = np.array([[0.0, 0.0, 0.0], [400.0, 200.0, 50.0]])
    _equal_box(ax, xyz)
    assert np.asarray(ax.get_box_aspect()) / ax.get_box_aspect()[0] == pytest.approx([1.0, 0.5, 0.125])
    assert ax.get_xlim() == pytest.approx((0, 400)) and ax.get_zlim() == pytest.approx((0, 50))
    plt.close(fig)


def test_3d_figures_draw_the_floor_frame_path_and_the_heights(frames3d, tmp_path) -> None:
    import matplotlib.pyplot as plt

    frames, snout_true = frames3d
    a = _animal("m1", frames, tmp_path)
    assert is_3d(a) and not is_3d(_animal("flat", frames.drop(columns=["z_mm"]), tmp_path))
    cols, labels = path_columns(frames)
    assert cols == ["floor_x_mm", "floor_y_mm", "height_mm"] and labels[2] == "height (mm)"
    assert path_columns(frames.drop(columns=["height_mm"]))[0] == ["x_mm", "y_mm", "z_mm"]
    fig = plot_trajectories_3d([a], {"a": "#1f77b4"})
    ax = fig.axes[0]
    x, y, z = ax.lines[0].get_data_3d()
    np.testing.assert_allclose(z, frames["height_mm"])
    spans = [np.ptp(v[np.isfinite(v)]) for v in (x, y, z)]
    assert np.asarray(ax.get_box_aspect()) / ax.get_box_aspect()[0] == pytest.approx(np.divide(spans, spans[0]))
    plt.close(fig)
    fig = plot_heights([a])
    lines = {ln.get_label(): ln for ln in fig.axes[0].lines}
    assert set(lines) == {"height", "snout height", "max height"}
    snout = lines["snout height"].get_ydata()
    assert np.nanmedian(np.abs(snout - snout_true)) < 1.5  # mm: the plotted height is the snout's
    np.testing.assert_allclose(snout, frames["snout_height_mm"])
    plt.close(fig)


def test_render_report_shows_the_3d_section_for_a_3d_session(frames3d, tmp_path) -> None:
    from protocols.report import render_report
    from protocols.schema import load_protocol

    frames, _ = frames3d
    for key, group in (("m1", "a"), ("m2", "b")):
        d = tmp_path / "animals" / key
        d.mkdir(parents=True)
        frames.to_parquet(d / "frames.parquet")
        (d / "geometry.json").write_text("{}")
        (d / "endpoints.json").write_text(json.dumps({"meta": {"group": group, "subject_id": key}, "endpoints": {},
                                                      "fps": 15.0}))
        (d / "done").write_text("{}")
    table = pd.DataFrame({"subject_id": ["m1", "m2"], "group": ["a", "b"], "distance_mm": [1.0, 2.0]})
    page = render_report(tmp_path, load_protocol("open_field"), table, {}, {})
    assert "<h2>3D trajectories</h2>" in page and "<h2>Height above the floor</h2>" in page
    assert "<h2>Trajectories</h2>" not in page  # the 2D view needs x_px: not drawn for 3D sessions
    assert page.count("stance points") == 2  # each session's floor, and how it was found
