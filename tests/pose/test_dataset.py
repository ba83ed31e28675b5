import numpy as np
import pytest

from pose.dataset import (
    PoseValidationError,
    append_history,
    frame_numbers,
    from_numpy,
    rename_legacy_dims,
    validate_pose,
)


def _ds(n=10, fps=30.0):
    pos = np.random.default_rng(0).normal(size=(n, 2, 3, 1))
    conf = np.full((n, 3, 1), 0.9)
    return from_numpy(pos, conf, keypoints=["a", "b", "c"], individuals=["m"], fps=fps)


def test_from_numpy_layout_and_time_in_seconds():
    ds = _ds()
    assert ds.position.dims == ("time", "space", "keypoint", "individual")
    assert ds.confidence.dims == ("time", "keypoint", "individual")
    assert ds.time.values[3] == pytest.approx(0.1)
    assert ds.attrs["time_unit"] == "seconds"
    np.testing.assert_array_equal(frame_numbers(ds), np.arange(10))


def test_from_numpy_without_fps_uses_frames():
    ds = from_numpy(np.zeros((4, 2, 1)))
    assert ds.attrs["time_unit"] == "frames"
    np.testing.assert_array_equal(ds.time.values, np.arange(4))
    assert np.isnan(ds.confidence.values).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"confidence": np.ones((9, 3, 1))}, "confidence shape"),
        ({"keypoints": ["a", "b"]}, "2 keypoint names for 3"),
        ({"keypoints": ["a", "a", "b"]}, "duplicate keypoint"),
        ({"fps": -1}, "fps must be a positive"),
    ],
)
def test_from_numpy_rejects_bad_input(kwargs, match):
    with pytest.raises(PoseValidationError, match=match):
        from_numpy(np.zeros((10, 2, 3, 1)), **kwargs)


def test_validate_names_missing_variable_and_dim():
    ds = _ds()
    with pytest.raises(PoseValidationError, match="no 'confidence' variable"):
        validate_pose(ds.drop_vars("confidence"), context="f.h5")
    legacy = ds.rename({"keypoint": "keypoints"})
    with pytest.raises(PoseValidationError, match=r"missing dimension\(s\) \['keypoint'\].*plural"):
        validate_pose(legacy)
    validate_pose(rename_legacy_dims(legacy))
    bad = ds.copy()
    bad["confidence"] = bad.confidence * 5
    with pytest.raises(PoseValidationError, match=r"must lie in \[0, 1\]"):
        validate_pose(bad)
    with pytest.raises(PoseValidationError, match="needs the frame rate"):
        validate_pose(from_numpy(np.zeros((3, 2, 1))), require_fps=True)


def test_append_history_copies_and_records():
    ds = _ds()
    out = append_history(ds, "filter_median", {"window_s": np.float64(0.2)})
    assert ds.attrs["history"] == []
    assert out.attrs["history"][-1]["op"] == "filter_median"
    assert out.attrs["history"][-1]["params"] == {"window_s": 0.2}


def test_movement_functions_accept_our_dataset():
    kin = pytest.importorskip("movement.kinematics")
    ds = from_numpy(
        np.stack([np.arange(30.0) * 2, np.zeros(30)], axis=1)[:, :, None, None], fps=10
    )
    speed = kin.compute_speed(ds.position)
    # 2 px per frame at 10 fps = 20 px/s
    np.testing.assert_allclose(speed.values[1:-1].ravel(), 20.0)


@pytest.mark.parametrize("bad", [1e30, -2e6, np.inf, -np.inf])
def test_non_physical_positions_are_refused_naming_frame_keypoint_field(bad):
    pos = np.zeros((5, 2, 2, 1))
    pos[3, 1, 1, 0] = bad
    with pytest.raises(PoseValidationError, match=r"s\.h5: 'position' y = .* at frame 3, keypoint 'b', individual 'm'"):
        validate_pose(from_numpy(np.zeros((5, 2, 2, 1)), keypoints=["a", "b"], individuals=["m"]).copy(
            data={"position": pos, "confidence": np.full((5, 2, 1), np.nan)}), context="s.h5")
    pos[3, 1, 1, 0] = 9.9e5  # large but finite and within range: a coordinate
    from_numpy(pos, keypoints=["a", "b"], individuals=["m"])


def test_frame_named_in_range_error_uses_frame_numbers():
    pos = np.zeros((4, 2, 1, 1))
    pos[2, 0, 0, 0] = 1e30
    with pytest.raises(PoseValidationError, match=r"x = 1e\+30 at frame 12, keypoint 'keypoint_0'"):
        from_numpy(pos, frame_index=[10, 11, 12, 13], fps=25)


def test_non_numeric_fps_attr_is_a_validation_error():
    ds = from_numpy(np.zeros((3, 2, 1, 1)))
    ds.attrs["fps"] = "30"
    with pytest.raises(PoseValidationError, match=r"attrs\['fps'\] must be positive or None, got '30'"):
        validate_pose(ds)
