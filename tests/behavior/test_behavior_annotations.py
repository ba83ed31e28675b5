"""Human scoring loaders: BORIS, BehaviorDEPOT (v5 and v7.3), per-frame csv, bout tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from behavior import annotations as an
from behavior.bouts import bouts_from_vector
from pose.dataset import from_numpy
from tests.conftest import shared_path

BORIS_AGG = """Observation id,Observation date,Description,Media file,Total length,FPS,Subject,Behavior,Behavioral category,Modifiers,Behavior type,Start (s),Stop (s),Duration (s),Comment start,Comment stop
fc_day2_m07,2024-03-05 10:12:44,,m07_day2.mp4,10.0,25.0,No focal subject,freezing,defensive,,STATE,1.000,2.500,1.500,,
fc_day2_m07,2024-03-05 10:12:44,,m07_day2.mp4,10.0,25.0,No focal subject,rearing,exploration,,STATE,3.000,3.400,0.400,,
fc_day2_m07,2024-03-05 10:12:44,,m07_day2.mp4,10.0,25.0,No focal subject,freezing,defensive,,STATE,6.040,8.000,1.960,,
fc_day2_m07,2024-03-05 10:12:44,,m07_day2.mp4,10.0,25.0,No focal subject,startle,defensive,,POINT,5.000,5.000,0.000,,
"""

BORIS_RAW = """Observation id,Observation date,Description,Media file,Total length,FPS,Subject,Behavior,Behavioral category,Comment,Status,Time
fc_day2_m07,2024-03-05 10:12:44,,m07_day2.mp4,10.0,25.0,No focal subject,freezing,defensive,,START,1.000
fc_day2_m07,2024-03-05 10:12:44,,m07_day2.mp4,10.0,25.0,No focal subject,freezing,defensive,,STOP,2.500
fc_day2_m07,2024-03-05 10:12:44,,m07_day2.mp4,10.0,25.0,No focal subject,rearing,exploration,,START,3.000
fc_day2_m07,2024-03-05 10:12:44,,m07_day2.mp4,10.0,25.0,No focal subject,rearing,exploration,,STOP,3.400
fc_day2_m07,2024-03-05 10:12:44,,m07_day2.mp4,10.0,25.0,No focal subject,startle,defensive,,POINT,5.000
fc_day2_m07,2024-03-05 10:12:44,,m07_day2.mp4,10.0,25.0,No focal subject,freezing,defensive,,START,6.040
fc_day2_m07,2024-03-05 10:12:44,,m07_day2.mp4,10.0,25.0,No focal subject,freezing,defensive,,STOP,8.000
"""


def _pose(n: int, fps: float):
    return from_numpy(np.zeros((n, 2, 1)), keypoints=["snout"], fps=fps)


@pytest.mark.parametrize("text", [BORIS_AGG, BORIS_RAW], ids=["aggregated", "raw"])
def test_boris_known_frames(tmp_path, text):
    p = tmp_path / "boris.csv"
    p.write_text(text)
    lab = an.load_boris(p)
    assert lab.attrs["fps"] == 25.0 and len(lab) == 250
    assert list(lab.columns) == ["freezing", "rearing", "startle"]
    b = bouts_from_vector(lab["freezing"])
    # 1.0-2.5 s at 25 fps = frames 25..61; 6.04-8.0 s = frames 151..199
    assert b[["start_frame", "end_frame"]].values.tolist() == [[25, 63], [151, 200]]
    assert lab["rearing"].sum() == 10 and lab["startle"].sum() == 1
    aligned = an.align_to_pose(lab, _pose(250, 25.0))
    assert aligned.equals(lab)


def test_boris_fps_mismatch_refused_or_converted(tmp_path):
    p = tmp_path / "boris.csv"
    p.write_text(BORIS_AGG)
    lab = an.load_boris(p)
    with pytest.raises(an.AnnotationError, match="scored at 25 fps but the pose is at 50 fps"):
        an.align_to_pose(lab, _pose(500, 50.0))
    conv = an.align_to_pose(lab, _pose(500, 50.0), convert=True)
    assert len(conv) == 500 and conv.attrs["fps"] == 50.0
    # same recording built directly at 50 fps from the times: identical frames
    direct = an.load_boris(p, target_fps=50.0)
    assert len(direct) == 500
    assert bouts_from_vector(direct["freezing"])[["start_frame", "end_frame"]].values.tolist() == [[50, 125], [302, 400]]
    assert (conv["freezing"] != direct["freezing"]).sum() <= 2
    with pytest.raises(an.AnnotationError, match="not the same recording"):
        an.align_to_pose(lab, _pose(800, 50.0), convert=True)


def test_boris_bad_files(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(an.AnnotationError, match="not a BORIS export"):
        an.load_boris(p)
    p.write_text(BORIS_RAW.replace("STOP,2.500", "START,2.500"))
    with pytest.raises(an.AnnotationError, match="started twice"):
        an.load_boris(p)


def test_frame_csv_and_bout_table(tmp_path):
    p = tmp_path / "labels.csv"
    pd.DataFrame({"frame": range(6), "time_s": np.arange(6) / 2,
                  "freezing": [0, 1, 1, 0, 0, 1]}).to_csv(p, index=False)
    lab = an.load_frame_csv(p, fps=2)
    assert lab["freezing"].tolist() == [0, 1, 1, 0, 0, 1]
    with pytest.raises(an.AnnotationError, match="6 scored frames but the pose has 7"):
        an.align_to_pose(lab, _pose(7, 2.0))
    p.write_text("label\ngroom\n\nrear\ngroom\n")
    lab = an.load_frame_csv(p)
    assert lab.to_dict("list") == {"groom": [1, 0, 0, 1], "rear": [0, 0, 1, 0]}
    p.write_text("freezing\n0\n2\n")
    with pytest.raises(an.AnnotationError, match="row 1: 2 is not 0/1"):
        an.load_frame_csv(p)
    bouts = pd.DataFrame({"behavior": ["groom", "rear"], "start_frame": [1, 4], "stop_frame": [3, 5]})
    lab = an.labels_from_bouts(bouts, n_frames=6, start_col="start_frame", stop_col="stop_frame")
    assert lab["groom"].tolist() == [0, 1, 1, 0, 0, 0] and lab["rear"].tolist() == [0, 0, 0, 0, 1, 0]
    with pytest.raises(an.AnnotationError, match="pass fps"):
        an.labels_from_bouts(bouts.rename(columns={"start_frame": "start_s", "stop_frame": "stop_s"}), n_frames=6)


def test_behaviordepot_v73_demo1():
    lab = an.load_behaviordepot(shared_path("behaviordepot-freezing", "demo1", "hB_demo1_manual_annotations.mat"))
    assert list(lab.columns) == ["Freezing"] and len(lab) == 6000
    # the file's Bouts (MATLAB 1-based, inclusive) agree with the vector
    import h5py

    with h5py.File(shared_path("behaviordepot-freezing", "demo1", "hB_demo1_manual_annotations.mat")) as f:
        mat_bouts = np.asarray(f["hBehavior/Freezing/Bouts"]).T.astype(int)
    b = bouts_from_vector(lab["Freezing"])
    assert np.array_equal(b.start_frame + 1, mat_bouts[:, 0]) and np.array_equal(b.end_frame, mat_bouts[:, 1])
    aligned = an.align_to_pose(lab, _pose(6000, 50.0))
    assert aligned["Freezing"].sum() == 1368


def test_behaviordepot_v5_raters_and_output():
    lab = an.load_behaviordepot(shared_path("behaviordepot-freezing", "raters", "hB_expert1.mat"))
    assert len(lab) == 19541 and lab.attrs["fps"] == 50.0
    with pytest.raises(an.AnnotationError, match="scored at 50 fps but the pose is at 30 fps"):
        an.align_to_pose(lab, _pose(19541, 30.0))
    out = an.load_behaviordepot(shared_path("behaviordepot-freezing", "demo1", "behaviordepot_behavior_output.mat"))
    assert set(out.columns) == {"Freezing", "Moving"} and len(out) == 6000
    with pytest.raises(an.AnnotationError, match="not in the file"):
        an.load_behaviordepot(shared_path("behaviordepot-freezing", "raters", "hB_expert1.mat"), behaviors=["Rearing"])
