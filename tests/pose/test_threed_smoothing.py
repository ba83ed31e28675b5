"""3D uncertainty from the residuals and the geometry, and Kalman smoothing that makes speed unbiased."""

from __future__ import annotations

import numpy as np
import pytest

from pose.synthetic.multicam import lift_to_3d, make_rig, project_poses
from pose.synthetic.openfield import simulate_open_field
from pose.threed.smoothing import SmoothingInputError, smooth_points3d
from pose.threed.triangulation import triangulate_poses
from pose.threed.uncertainty import estimate_noise_px


def _speed(position) -> np.ndarray:
    from features.kinematics import compute_speed

    return compute_speed(position.sel(keypoint="body_center")).values.ravel()


@pytest.fixture(scope="module", params=[(3, 1.0, 1.0), (2, 2.0, 2.0)], ids=["3cam-1px", "2cam-2px-fast"])
def rig_session(request):
    n_cameras, noise_px, speed_scale = request.param
    truth = lift_to_3d(simulate_open_field(40.0, fps=30, seed=5, speed_scale=speed_scale))
    cams = make_rig(n_cameras, seed=2)
    ds, _ = triangulate_poses(project_poses(truth, cams, noise_px=noise_px, seed=6), cams)
    return truth, ds, noise_px


def test_noise_estimate_is_chi_square_exact() -> None:
    rng = np.random.default_rng(0)
    n_used = rng.integers(2, 5, 4000)
    res = 1.7**2 * rng.chisquare(2 * n_used - 3)
    res[:200] *= 100.0  # 5 % gross outliers barely move the median-based estimate
    assert estimate_noise_px(res, n_used) == pytest.approx(1.7, rel=0.05)
    assert np.isnan(estimate_noise_px(np.array([1.0]), np.array([1])))


def test_position_std_matches_the_actual_3d_error(rig_session) -> None:
    truth, ds, noise_px = rig_session
    assert float(np.nanmedian(ds["noise_px"].values)) == pytest.approx(noise_px, rel=0.1)
    z = (ds.position.values - truth.position.values) / ds["position_std"].values
    for axis in range(3):  # the predicted 1-sigma is the real one, per axis (depth included)
        assert np.nanstd(z[:, axis]) == pytest.approx(1.0, abs=0.15)


def test_smoothing_removes_the_speed_bias(rig_session) -> None:
    truth, ds, _ = rig_session
    sm = smooth_points3d(ds)
    s_true, s_raw, s_sm = _speed(truth.position), _speed(ds.position), _speed(sm.position)
    ok = np.isfinite(s_true) & np.isfinite(s_raw)
    assert s_raw[ok].mean() / s_true[ok].mean() - 1 > 0.04  # noise adds speed
    assert abs(s_sm[ok].mean() / s_true[ok].mean() - 1) <= 0.02
    fast = ok & (s_true > np.percentile(s_true[ok], 90))  # real fast movements are not shaved off
    assert abs(s_sm[fast].mean() / s_true[fast].mean() - 1) <= 0.03
    err_raw = np.nanmedian(np.linalg.norm(ds.position.values - truth.position.values, axis=1))
    err_sm = np.nanmedian(np.linalg.norm(sm.position.values - truth.position.values, axis=1))
    assert err_sm < 0.8 * err_raw
    assert np.array_equal(np.isnan(sm.position.values), np.isnan(ds.position.values))  # gaps stay gaps
    assert sm["process_noise"].dims == ("keypoint",) and (sm["process_noise"] > 0).all()
    assert sm.attrs["history"][-1]["op"] == "smooth_points3d"


def test_process_noise_override_and_bad_input(rig_session) -> None:
    _, ds, _ = rig_session
    loose = smooth_points3d(ds, process_noise_mm_s2=1e6)  # huge process noise: follows the raw points
    fitted = smooth_points3d(ds)
    dev = [np.nanmedian(np.abs(s.position.values - ds.position.values)) for s in (loose, fitted)]
    assert dev[0] < 0.1 * dev[1]
    assert float(loose["process_noise"].sel(keypoint="snout")) == 1e6
    # a keypoint that never moves: the likelihood wants zero process noise (one straight line
    # through the whole recording); the floor keeps the smoothing time constant <= 0.25 s
    still = ds.position.values[:1] + np.random.default_rng(3).normal(size=ds.position.shape) * ds.position_std.values
    sm = smooth_points3d(ds.assign(position=(ds.position.dims, still)))
    floor = np.sqrt(np.nanmedian(ds.position_std.sel(keypoint="tail_base").values ** 2)) / 0.25**2
    assert "tail_base" in sm.attrs["history"][-1]["params"]["floored_keypoints"]
    assert float(sm.process_noise.sel(keypoint="tail_base")) == pytest.approx(floor, rel=1e-6)
    with pytest.raises(SmoothingInputError, match="position_std"):
        smooth_points3d(ds.drop_vars("position_std"))
