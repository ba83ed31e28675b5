"""Gait on triangulated 3D poses against the virtual mice's truth: the spread and the worst case.

Two virtual mice, each seen by a virtual rig (:func:`pose.synthetic.multicam.make_rig`),
projected with Gaussian 2D noise, triangulated (:func:`pose.threed.triangulation.triangulate_poses`,
no smoothing) and put into a tilted world (as a calibration's first camera would), then
:func:`features.gait.detect_step_cycles` with the floor found from the paws:

- the 3D gait mouse (:func:`pose.synthetic.multicam.simulate_gait_3d`): walk (stride 60 mm, duty
  0.65, 100 fps) and trot (70 mm at 300 mm/s, duty 0.5); constant truth;
- the open-field mouse (trots, turns, rears; 30 fps): detected cycles matched to the true ones
  (both toe-offs within 1.5 frames), true stride = the true paw's displacement on the floor.

Reported per cell: cycles, stride length error (median, %), duty factor error (mean), paw lift
error (median swing peak, hind paws, mm; gait mouse), and for the open field the share of
true cycles matched and the forepaw stances inside a rear (3D vs the top view).

``nice -n 10 python3 bench/gait_3d.py --out bench/results/gait_3d.md``
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import pandas as pd

PAWS = ["left_hindpaw", "right_hindpaw", "left_forepaw", "right_forepaw"]


def _tilt(ds):
    from pose.threed.cameras import rodrigues

    r = rodrigues(np.array([0.9, -0.4, 0.3]))
    pos = np.einsum("ij,tjkn->tikn", r, ds.position.values) + np.array([120.0, -40.0, 600.0])[None, :, None, None]
    return ds.assign(position=(ds.position.dims, pos, ds.position.attrs))


def _triangulate(truth, n_cameras: int, noise_px: float, seed: int):
    from pose.synthetic.multicam import make_rig, project_poses
    from pose.threed.triangulation import triangulate_poses

    cams = make_rig(n_cameras, seed=seed)
    tri, _ = triangulate_poses(project_poses(truth, cams, noise_px=noise_px, seed=seed + 100), cams)
    return _tilt(tri)


def _cycles(ds) -> pd.DataFrame:
    from features.gait import detect_step_cycles

    return pd.concat([detect_step_cycles(ds, p) for p in PAWS], ignore_index=True)


def gait_mouse_rows(seeds: list[int]) -> list[dict]:
    from pose.synthetic.multicam import simulate_gait_3d

    rows = []
    for (gait, speed, stride, secs), n_cam, noise, seed in itertools.product(
            [("walk", 150.0, 60.0, 2.0), ("trot", 300.0, 70.0, 1.0)], [2, 3], [0.5, 1.0, 2.0], seeds):
        ds, truth = simulate_gait_3d(secs, 100.0, seed, gait=gait, speed_mm_s=speed, stride_length_mm=stride)
        cyc = _cycles(_triangulate(ds, n_cam, noise, seed))
        hind = cyc[cyc["paw"].str.contains("hind")]
        rows.append({"mouse": f"gait {gait}", "cameras": n_cam, "noise_px": noise, "seed": seed, "cycles": len(cyc),
                     "stride_err_pct": 100 * (cyc["stride_length"].median() / truth.stride_length_mm - 1),
                     "duty_err": cyc["duty_factor"].mean() - truth.duty_factor,
                     "lift_err_mm": hind["swing_height"].median() - 8.0})
    return rows



def _stances_in_rear(cyc: pd.DataFrame, t: np.ndarray, rear: np.ndarray) -> int:
    n = 0
    for a, b in zip(cyc["swing_end_s"], cyc["stance_end_s"], strict=True):
        m = (t >= a) & (t <= b)
        n += int(m.any() and np.median(rear[m]) >= 0.5)
    return n


def open_field_rows(seeds: list[int], seconds: float) -> list[dict]:
    from features.gait import detect_step_cycles
    from pose.synthetic.multicam import lift_to_3d, match_true_cycles, open_field_true_cycles
    from pose.synthetic.openfield import simulate_open_field

    rows = []
    for noise, seed in itertools.product([1.0, 2.0], seeds):
        sim = simulate_open_field(seconds, fps=30, seed=seed)
        truth = lift_to_3d(sim)
        tc = open_field_true_cycles(sim, truth)
        tri = _triangulate(truth, 3, noise, seed)
        cyc = _cycles(tri)
        m = match_true_cycles(cyc, tc)
        t, rear = truth.time.values, np.asarray(sim.posture["rear"])
        fore = cyc[cyc["paw"].str.contains("fore")]
        top = pd.concat([detect_step_cycles(tri.sel(space=["x", "y"]), p) for p in ("left_forepaw", "right_forepaw")],
                        ignore_index=True)
        rows.append({"mouse": "open field", "cameras": 3, "noise_px": noise, "seed": seed, "cycles": len(cyc),
                     "matched_pct": 100 * len(m) / len(tc),
                     "stride_err_pct": 100 * (np.median(m[:, 0] / m[:, 1]) - 1),
                     "duty_err": float(np.mean(m[:, 2] - m[:, 3])),
                     "fore_stances_in_rear_3d": _stances_in_rear(fore, t, rear),
                     "fore_stances_in_rear_top_view": _stances_in_rear(top, t, rear)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--open-field-s", type=float, default=60.0)
    ap.add_argument("--out", default=None, help="also write the tables to this markdown file")
    args = ap.parse_args()
    seeds = list(range(1, args.seeds + 1))
    t0 = time.process_time()
    g = pd.DataFrame(gait_mouse_rows(seeds))
    o = pd.DataFrame(open_field_rows(seeds, args.open_field_s))
    cpu = time.process_time() - t0
    lines = ["# Gait on triangulated 3D poses (virtual mice)", "",
             f"`nice -n 10 python3 bench/gait_3d.py --seeds {args.seeds} --open-field-s {args.open_field_s:g} --out "
             f"{args.out}` "
             f"({cpu / 60:.1f} min CPU). Floor found from the paws in a tilted world; no 3D smoothing.", "",
             "## 3D gait mouse (100 fps; walk: stride 60 mm, duty 0.65; trot: 70 mm, 0.5; hind lift 8 mm)", "",
             g.round(3).to_markdown(index=False), "",
             f"worst: stride {g['stride_err_pct'].abs().max():.2f} %, duty {g['duty_err'].abs().max():.3f}, "
             f"lift {g['lift_err_mm'].abs().max():.2f} mm", "",
             f"## Open-field mouse (30 fps, {args.open_field_s:g} s, 3 cameras; matched true cycles)", "",
             o.round(3).to_markdown(index=False), "",
             f"worst: stride {o['stride_err_pct'].abs().max():.2f} %, duty {o['duty_err'].abs().max():.3f}; "
             f"forepaw stances inside a rear: 3D {int(o['fore_stances_in_rear_3d'].sum())}, top view "
             f"{int(o['fore_stances_in_rear_top_view'].sum())}", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        from pose.atomic import write_text_atomic

        write_text_atomic(args.out, text)


if __name__ == "__main__":
    main()
