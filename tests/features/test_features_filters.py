"""Filters on synthetic truth: each reduces error; Kalman beats SG on dropouts (the Kalman
kernel itself is checked against filterpy in tests/pose/test_kalman.py)."""

from __future__ import annotations

import numpy as np
import pytest

from features import filters
from pose.dataset import PoseValidationError, from_numpy

FPS = 30.0


def _truth(n=1800, n_kp=4, seed=0):
    t = np.arange(n) / FPS
    rng = np.random.default_rng(seed)
    pos = np.empty((n, 2, n_kp, 1))
    for k in range(n_kp):
        for s in range(2):
            f = rng.uniform(0.1, 0.6, 3)
            a = rng.uniform(20, 60, 3)
            ph = rng.uniform(0, 2 * np.pi, 3)
            pos[:, s, k, 0] = 300 + (a[:, None] * np.sin(2 * np.pi * f[:, None] * t + ph[:, None])).sum(0)
    return pos


def _noisy(truth, *, jitter=2.0, outlier_frac=0.0, dropout_runs=0, seed=1, outlier_conf=0.9):
    rng = np.random.default_rng(seed)
    n, _, k, i = truth.shape
    pos = truth + rng.normal(0, jitter, truth.shape)
    conf = rng.uniform(0.8, 1.0, (n, k, i))
    out = rng.random((n, k, i)) < outlier_frac
    jump = rng.normal(0, 80, (n, 2, k, i))
    pos = np.where(out[:, None], pos + jump, pos)
    conf[out] = outlier_conf
    for _ in range(dropout_runs):
        kk = rng.integers(k)
        a = rng.integers(10, n - 40)
        b = a + rng.integers(3, 15)
        pos[a:b, :, kk] = truth[a:b, :, kk] + rng.normal(0, 60, (b - a, 2, 1))
        conf[a:b, kk] = rng.uniform(0.0, 0.1, (b - a, 1))
    return from_numpy(pos, conf, fps=FPS), out


def _rmse(ds, truth, mask=None):
    err = np.sqrt(((ds.position.values - truth) ** 2).sum(axis=1))  # (T, K, I)
    if mask is not None:
        err = err[mask]
    return float(np.sqrt(np.nanmean(err**2)))


def test_confidence_filter_masks_low_confidence_and_records_history():
    truth = _truth()
    ds, _ = _noisy(truth, dropout_runs=20)
    out = filters.filter_by_confidence(ds, p_cutoff=0.5)
    low = ds.confidence.values < 0.5
    assert np.isnan(out.position.values[:, 0][low]).all()
    assert not np.isnan(out.position.values[:, 0][~low]).any()
    assert _rmse(out, truth) < 0.3 * _rmse(ds, truth)
    assert out.attrs["history"][-1]["op"] == "filter_by_confidence"
    assert ds.attrs["history"] == []  # input untouched
    with pytest.raises(ValueError, match="p_cutoff"):
        filters.filter_by_confidence(ds, p_cutoff=1.5)
    with pytest.raises(PoseValidationError, match="position"):
        filters.filter_by_confidence(ds.drop_vars("position"), 0.5)


def test_remove_jumps_removes_outliers_not_motion():
    truth = _truth()
    ds, out_mask = _noisy(truth, outlier_frac=0.03)
    clean = filters.remove_jumps(ds, max_speed_px_s=600.0)
    removed = np.isnan(clean.position.values[:, 0])
    big = out_mask & (np.sqrt((ds.position.values - truth) ** 2).sum(1) > 30)
    assert removed[big].mean() > 0.95  # outliers found
    assert removed[~out_mask].mean() < 0.01  # real motion kept
    assert _rmse(clean, truth) < 0.2 * _rmse(ds, truth)
    with pytest.raises(ValueError, match="max_speed_px_s"):
        filters.remove_jumps(ds, max_speed_px_s=0)


def test_interpolate_gaps_respects_max_gap():
    truth = _truth()
    pos = truth.copy()
    pos[100:104, :, 0] = np.nan  # 4 frames = 0.133 s
    pos[200:220, :, 1] = np.nan  # 20 frames = 0.667 s
    pos[:5, :, 2] = np.nan  # leading gap
    ds = from_numpy(pos, fps=FPS)
    out = filters.interpolate_gaps(ds, max_gap_s=0.2).position.values
    assert not np.isnan(out[100:104, :, 0]).any()
    assert np.isnan(out[200:220, :, 1]).all()
    assert np.isnan(out[:5, :, 2]).all()
    np.testing.assert_allclose(out[100:104, :, 0], truth[100:104, :, 0], atol=1.0)
    # known answer: linear in between
    np.testing.assert_allclose(out[101, 0, 0, 0], truth[99, 0, 0, 0] + 2 / 5 * (truth[104, 0, 0, 0] - truth[99, 0, 0, 0]))
    full = filters.interpolate_gaps(ds, max_gap_s=None).position.values
    assert not np.isnan(full[200:220, :, 1]).any()


def test_interpolate_matches_movement():
    from movement.filtering import interpolate_over_time

    truth = _truth(300)
    pos = truth.copy()
    rng = np.random.default_rng(3)
    pos[rng.random(pos.shape[0]) < 0.2, :, 1] = np.nan
    ds = from_numpy(pos, fps=FPS)
    ours = filters.interpolate_gaps(ds, max_gap_s=2 / FPS).position.values
    ref = interpolate_over_time(ds.position, max_gap=2).values
    np.testing.assert_allclose(ours, ref, equal_nan=True, atol=1e-9)


def test_median_reduces_outlier_error_and_handles_nan():
    truth = _truth()
    ds, _ = _noisy(truth, outlier_frac=0.03)
    med = filters.filter_median(ds, window_s=0.2)
    assert _rmse(med, truth) < 0.3 * _rmse(ds, truth)
    # NaN-aware: a window with NaN uses its valid samples
    x = np.array([1.0, 2.0, np.nan, 4.0, 100.0, 6.0, 7.0])[:, None]
    y = filters.nan_median_filter(x, 3)
    # mirrored edge: window at 0 is [2, 1, 2]; NaN at 2 is skipped in its neighbours' windows
    np.testing.assert_allclose(y[:, 0], [2.0, 1.5, np.nan, 52.0, 6.0, 7.0, 6.0])


def test_savgol_reduces_jitter_and_keeps_runs():
    truth = _truth()
    ds, _ = _noisy(truth, jitter=3.0)
    sg = filters.filter_savgol(ds, window_s=0.3, polyorder=2)
    assert _rmse(sg, truth) < 0.6 * _rmse(ds, truth)
    pos = ds.position.values.copy()
    pos[500:510] = np.nan
    sg2 = filters.filter_savgol(from_numpy(pos, fps=FPS), window_s=0.3).position.values
    assert np.isnan(sg2[500:510]).all() and not np.isnan(sg2[495:500]).any()
    with pytest.raises(ValueError, match="polyorder"):
        filters.filter_savgol(ds, window_s=0.05, polyorder=3)


def test_kalman_beats_savgol_on_dropouts():
    truth = _truth()
    ds, _ = _noisy(truth, jitter=2.0, dropout_runs=60)
    raw = _rmse(ds, truth)
    kal = filters.filter_kalman(ds, measurement_noise_px=2.0)
    sg = filters.filter_savgol(
        filters.interpolate_gaps(filters.filter_by_confidence(ds, 0.5), max_gap_s=1.0),
        window_s=0.3)
    e_kal, e_sg = _rmse(kal, truth), _rmse(sg, truth)
    drop = ds.confidence.values < 0.5
    e_kal_drop, e_sg_drop = _rmse(kal, truth, drop), _rmse(sg, truth, drop)
    print(f"raw {raw:.2f} kalman {e_kal:.2f} savgol {e_sg:.2f} | dropouts: kalman {e_kal_drop:.2f} savgol {e_sg_drop:.2f}")
    assert e_kal < 0.1 * raw
    assert e_kal < 0.6 * e_sg  # measured 1.20 vs 2.95 px
    assert e_kal_drop < 0.4 * e_sg_drop  # measured 2.68 vs 10.10 px
    assert kal.attrs["history"][-1]["op"] == "filter_kalman"
    # causal filter and constant-acceleration model also work and reduce error
    assert _rmse(filters.filter_kalman(ds, smooth=False), truth) < 0.6 * raw
    ca = filters.filter_kalman(ds, model="constant_acceleration")  # ML process noise
    assert _rmse(ca, truth) < 0.6 * e_sg  # measured 1.01 px
    with pytest.raises(ValueError, match="model"):
        filters.filter_kalman(ds, model="brownian")


def test_kalman_max_gap_leaves_long_gaps_nan():
    truth = _truth(600)
    pos = truth.copy()
    pos[100:160, :, 0] = np.nan  # 2 s
    pos[300:305, :, 0] = np.nan
    out = filters.filter_kalman(from_numpy(pos, np.ones(pos.shape[:1] + pos.shape[2:]), fps=FPS),
                                max_gap_s=0.5).position.values
    assert np.isnan(out[100:160, :, 0]).all()
    assert not np.isnan(out[300:305, :, 0]).any()


def test_savgol_nan_equals_scipy_per_run():
    from scipy import signal

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 4)).cumsum(0)
    for _ in range(40):
        a = rng.integers(3000)
        x[a:a + rng.integers(1, 12), rng.integers(4)] = np.nan
    x[:3, 0] = np.nan
    w, p = 9, 2
    out = filters.savgol_nan(x, w, p)
    ref = np.full_like(x, np.nan)
    for s in range(4):
        starts, stops = filters._runs(~np.isnan(x[:, s]))
        for a, b in zip(starts, stops, strict=True):
            n = b - a
            if n >= w:
                ref[a:b, s] = signal.savgol_filter(x[a:b, s], w, p, mode="interp")
            elif n > p:
                ref[a:b, s] = np.polyval(np.polyfit(np.arange(n), x[a:b, s], p), np.arange(n))
            else:
                ref[a:b, s] = x[a:b, s]
    np.testing.assert_allclose(out, ref, atol=1e-9, equal_nan=True)


def test_median_equals_windowed_nanmedian():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3))
    x[rng.random(x.shape) < 0.05] = np.nan
    ours = filters.nan_median_filter(x, 7)
    padded = np.pad(x, ((3, 3), (0, 0)), mode="reflect")  # movement pads with mode="reflect"
    ref = np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, 7, axis=0), axis=-1)
    ref[np.isnan(x)] = np.nan
    np.testing.assert_allclose(ours, ref, atol=1e-12, equal_nan=True)
