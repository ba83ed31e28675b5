"""Benchmark: ethopose features vs movement 0.15 on one hour of 30 fps pose (108,000 frames).

Same synthetic data, same operations, same run: confidence filter, gap interpolation,
rolling median, Savitzky-Golay, velocity/speed/acceleration. Prints a table of best-of-N
wall times and the speed-up ratio. Also times ethopose-only steps (Kalman smoother, zones).

Run: ``python3 bench/features_speed.py [--minutes 60] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

FPS = 30.0
KEYPOINTS = ["snout", "left_ear", "right_ear", "neck", "body_center", "tail_base", "left_hip", "right_hip"]


def make_pose(n_frames: int, seed: int = 0):
    """Smooth random trajectories in a 600 px arena, 2 px jitter, 3 % low-confidence frames
    in short runs (1-10 frames)."""
    from pose.dataset import from_numpy

    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / FPS
    centre = np.stack([300 + 200 * np.sin(0.05 * t) * np.cos(0.013 * t),
                       300 + 200 * np.sin(0.031 * t + 1)], axis=1)
    offsets = rng.normal(0, 15, (len(KEYPOINTS), 2))
    pos = centre[:, :, None] + offsets.T[None] + rng.normal(0, 2.0, (n_frames, 2, len(KEYPOINTS)))
    conf = rng.uniform(0.7, 1.0, (n_frames, len(KEYPOINTS)))
    n_drop = int(0.03 * n_frames * len(KEYPOINTS) / 5)
    for _ in range(n_drop):
        k, a = rng.integers(len(KEYPOINTS)), rng.integers(n_frames - 10)
        conf[a:a + rng.integers(1, 11), k] = rng.uniform(0, 0.3)
    return from_numpy(pos[..., None], conf[..., None], keypoints=KEYPOINTS, fps=FPS)


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import movement
    from movement import filtering as mf
    from movement import kinematics as mk

    from features import filters, kinematics, zones

    n = int(args.minutes * 60 * FPS)
    ds = make_pose(n)
    plural = ds.rename(keypoint="keypoints", individual="individuals")
    p_cutoff, max_gap_s, median_s, sg_s = 0.6, 0.2, 0.2, 0.3
    max_gap = int(round(max_gap_s * FPS))
    w_med = filters.seconds_to_frames(ds, median_s, odd=True)
    w_sg = filters.seconds_to_frames(ds, sg_s, odd=True)

    steps: dict[str, tuple] = {}
    # movement pipeline (plural dims, its own functions)
    m = {}
    m["confidence filter"] = lambda: mf.filter_by_confidence(plural.position, plural.confidence, p_cutoff)
    pos_m = m["confidence filter"]()
    m["gap interpolation"] = lambda: mf.interpolate_over_time(pos_m, max_gap=max_gap)
    pos_m_i = m["gap interpolation"]()
    m["rolling median"] = lambda: mf.rolling_filter(pos_m_i, w_med, statistic="median")
    # mode="nearest": scipy >= 1.17 refuses NaN in the edge windows of mode="interp"
    m["Savitzky-Golay"] = lambda: mf.savgol_filter(pos_m_i, w_sg, polyorder=2, mode="nearest")
    pos_m_s = m["Savitzky-Golay"]()
    m["velocity+speed+accel"] = lambda: (mk.compute_velocity(pos_m_s), mk.compute_speed(pos_m_s),
                                         mk.compute_acceleration(pos_m_s))
    # ethopose pipeline
    e = {}
    e["confidence filter"] = lambda: filters.filter_by_confidence(ds, p_cutoff)
    ds_c = e["confidence filter"]()
    e["gap interpolation"] = lambda: filters.interpolate_gaps(ds_c, max_gap_s=max_gap_s)
    ds_i = e["gap interpolation"]()
    e["rolling median"] = lambda: filters.filter_median(ds_i, window_s=median_s)
    e["Savitzky-Golay"] = lambda: filters.filter_savgol(ds_i, window_s=sg_s, polyorder=2)
    ds_s = e["Savitzky-Golay"]()
    e["velocity+speed+accel"] = lambda: (kinematics.compute_velocity(ds_s.position),
                                         kinematics.compute_speed(ds_s.position),
                                         kinematics.compute_acceleration(ds_s.position))
    for name in m:
        tm, _ = best_of(m[name], args.repeats)
        te, _ = best_of(e[name], args.repeats)
        steps[name] = (tm, te)

    # sanity: same numbers where both define them
    v_m = mk.compute_speed(pos_m_i).values
    v_e = kinematics.compute_speed(ds_i.position).values
    same = np.allclose(v_m, v_e, equal_nan=True, atol=1e-9)

    filters.filter_kalman(ds.isel(time=slice(0, 100)))  # compile (numba cache) outside timing
    t_kal, _ = best_of(lambda: filters.filter_kalman(ds), 1)
    zs = zones.open_field_zones((100, 100, 500, 500))
    t_zone, _ = best_of(lambda: zones.zone_summary(ds_s, zs, keypoint="body_center"), args.repeats)

    print(f"features benchmark: {n} frames ({args.minutes:g} min at {FPS:g} fps) x {len(KEYPOINTS)} keypoints, "
          f"best of {args.repeats}; movement {movement.__version__}")
    print(f"{'operation':<24}{'movement s':>12}{'ethopose s':>12}{'speed-up':>10}")
    tot_m = tot_e = 0.0
    for name, (tm, te) in steps.items():
        tot_m += tm
        tot_e += te
        print(f"{name:<24}{tm:>12.3f}{te:>12.3f}{tm / te:>9.1f}x")
    print(f"{'total':<24}{tot_m:>12.3f}{tot_e:>12.3f}{tot_m / tot_e:>9.1f}x")
    print(f"{'Kalman RTS (ethopose)':<24}{'-':>12}{t_kal:>12.3f}")
    print(f"{'zones summary (ethop.)':<24}{'-':>12}{t_zone:>12.3f}")
    print(f"speed equal to movement on the interpolated data: {same}")


if __name__ == "__main__":
    main()
