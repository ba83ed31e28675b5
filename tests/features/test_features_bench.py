"""The features pipeline is faster than movement's on the same data (slow: run with -m slow)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest


@pytest.mark.slow
def test_pipeline_at_least_5x_faster_than_movement():
    from movement import filtering as mf
    from movement import kinematics as mk

    from features import filters, kinematics

    spec = importlib.util.spec_from_file_location(
        "bench_features", Path(__file__).resolve().parents[2] / "bench" / "features_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ds = bench.make_pose(30 * 60 * 10)  # 10 minutes at 30 fps
    plural = ds.rename(keypoint="keypoints", individual="individuals")
    filters.filter_median(ds.isel(time=slice(0, 100)), 0.2)  # compile outside timing

    def ours():
        d = filters.interpolate_gaps(filters.filter_by_confidence(ds, 0.6), max_gap_s=0.2)
        filters.filter_median(d, 0.2)
        s = filters.filter_savgol(d, 0.3)
        return kinematics.compute_speed(s.position), kinematics.compute_acceleration(s.position)

    def theirs():
        p = mf.interpolate_over_time(mf.filter_by_confidence(plural.position, plural.confidence, 0.6), max_gap=6)
        mf.rolling_filter(p, 7, statistic="median")
        s = mf.savgol_filter(p, 9, polyorder=2, mode="nearest")  # scipy >= 1.17: no NaN at interp edges
        return mk.compute_speed(s), mk.compute_acceleration(s)

    def best(fn):
        out = np.inf
        for _ in range(2):
            t0 = time.perf_counter()
            fn()
            out = min(out, time.perf_counter() - t0)
        return out

    t_ours, t_theirs = best(ours), best(theirs)
    print(f"ethopose {t_ours:.3f} s, movement {t_theirs:.3f} s, ratio {t_theirs / t_ours:.1f}x")
    assert t_theirs / t_ours >= 5.0
