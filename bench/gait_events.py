"""Bench: gait event detection (toe-off / touch-down) across the spread, old vs current detector.

Cells: the exact virtual mouse (``pose.synthetic.simulate_gait``) and the same tracks with
0.5 / 1 / 2 px Gaussian noise, at 50 / 100 / 200 fps, for a walk (150 mm/s) and two trots
(250 and 120 mm/s); plus the AutoGaitA beam runs against the authors' hand-marked step cycles
(``../shared/data/autogaita-beam``, skipped when absent). Per cell: mean duty factor error,
median |error| of toe-off and touch-down (ms, nearest truth event), and their signed median
(bias). Detectors: ``old`` = ``features/gait.py`` before 872f26f (from git), ``872f26f`` =
the commit that made the exact case exact, ``current`` = the working tree.

Run: ``python3 bench/gait_events.py [--out bench/results/gait_events.md]``
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pose.synthetic import simulate_gait  # noqa: E402

PAWS = ["left_hindpaw", "right_hindpaw", "left_forepaw", "right_forepaw"]
CASES = [("walk", 150.0, 60.0), ("trot", 250.0, 50.0), ("trot", 120.0, 40.0)]
FPS = [50.0, 100.0, 200.0]
NOISE_PX = [0.0, 0.5, 1.0, 2.0]


def _load(rev: str | None, name: str):
    """The gait module at git revision ``rev`` (None: the working tree)."""
    if rev is None:
        path = ROOT / "features" / "gait.py"
    else:
        src = subprocess.run(["git", "show", f"{rev}:features/gait.py"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        path = Path(tempfile.mkdtemp()) / f"{name}.py"
        path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"gait_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _event_errors(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    truth = truth[np.isfinite(truth)]
    if not len(found) or not len(truth):
        return np.array([])
    return np.array([x - truth[np.argmin(np.abs(truth - x))] for x in found])


class _Det:
    """A gait module with fixed keyword arguments for detect_step_cycles."""

    def __init__(self, mod, kw):
        self.mod, self.kw = mod, kw

    def detect_step_cycles(self, ds, paw):
        return self.mod.detect_step_cycles(ds, paw, **self.kw)


def synthetic_cell(det, gait, speed, stride, fps, noise_px, seed=2):
    g = simulate_gait(6.0, fps=fps, seed=seed, gait=gait, speed_mm_s=speed, stride_length_mm=stride)
    ds = g.pose
    if noise_px > 0:
        rng = np.random.default_rng(1000 + int(fps) + int(10 * noise_px))
        ds = ds.copy(deep=True)
        ds["position"].values = ds["position"].values + rng.normal(0, noise_px, ds["position"].shape)
    duty, off, on, n = [], [], [], 0
    for p in PAWS:
        c = det.detect_step_cycles(ds, p)
        ev = g.events[g.events.paw == p]
        n += len(c)
        duty += list(c.duty_factor - g.duty_factor)
        off += list(_event_errors(c.swing_start_s.to_numpy(float), ev.toe_off_s.to_numpy(float)))
        on += list(_event_errors(c.swing_end_s.to_numpy(float), ev.touch_down_s.to_numpy(float)))
    n_truth = 4 * (int(6.0 * g.cadence_hz) - 2)
    return {"cycles": f"{n}/{n_truth}", "duty_err": float(np.mean(duty)) if duty else np.nan,
            "off_ms": 1000 * float(np.median(np.abs(off))) if off else np.nan,
            "on_ms": 1000 * float(np.median(np.abs(on))) if on else np.nan,
            "off_bias_ms": 1000 * float(np.median(off)) if off else np.nan,
            "on_bias_ms": 1000 * float(np.median(on)) if on else np.nan}


def beam_cell(det, folder: Path, step: int = 1):
    """Against the hand marks; ``step`` > 1 keeps every step-th frame (a lower frame rate)."""
    import pose.io

    human = pd.read_csv(folder / "step_cycles_human.csv")
    off, on, duty, found = [], [], [], 0
    for mouse, h in human.groupby("mouse"):
        (path,) = folder.glob(f"PCCD3_Mouse{mouse}_*.csv")
        ds = pose.io.load(path, fps=100)
        if step > 1:
            ds = ds.isel(time=slice(None, None, step)).assign_attrs(fps=100.0 / step)
        cyc = det.detect_step_cycles(ds, "Hind paw tao ")
        for r in h.itertuples():
            c = cyc.iloc[np.argmin(np.abs(cyc.swing_start_s.to_numpy() - r.swing_start_s))]
            found += abs(c.swing_start_s - r.swing_start_s) < 0.05 and abs(c.stance_end_s - r.stance_end_s) < 0.05
            off += [c.swing_start_s - r.swing_start_s, c.stance_end_s - r.stance_end_s]
            on.append(c.swing_end_s - r.swing_end_s)
            hd = (r.stance_end_s - r.swing_end_s) / (r.stance_end_s - r.swing_start_s)
            duty.append(c.duty_factor - hd)
    off, on = np.asarray(off), np.asarray(on)
    return {"cycles": f"{found}/{len(human)}", "duty_err": float(np.mean(duty)),
            "off_ms": 1000 * float(np.median(np.abs(off))), "on_ms": 1000 * float(np.median(np.abs(on))),
            "off_bias_ms": 1000 * float(np.median(off)), "on_bias_ms": 1000 * float(np.median(on)),
            "off_max_ms": 1000 * float(np.abs(off).max()), "on_max_ms": 1000 * float(np.abs(on).max())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    ap.add_argument("--revs", default="872f26f^,872f26f,current,current:visible",
                    help="comma-separated git revisions of features/gait.py ('current' = working tree)")
    args = ap.parse_args(argv)
    dets = {}
    for r in args.revs.split(","):
        # "current:visible" = the working tree with events="visible"; "current:onset@0.05" also
        # sets speed_noise_fraction=0.05
        rev, _, ev = r.partition(":")
        ev, _, frac = ev.partition("@")
        kw = ({"events": ev} if ev else {}) | ({"speed_noise_fraction": float(frac)} if frac else {})
        mod = _load(None if rev == "current" else rev, rev.replace("^", "_parent"))
        dets[r] = _Det(mod, kw)
    rows = []
    for gait, speed, stride in CASES:
        for fps in FPS:
            for noise in NOISE_PX:
                for name, det in dets.items():
                    r = synthetic_cell(det, gait, speed, stride, fps, noise)
                    rows.append({"case": f"{gait}{int(speed)}", "fps": int(fps), "noise_px": noise,
                                 "detector": name, **r})
    folder = ROOT.parent / "shared" / "data" / "autogaita-beam"
    if folder.exists():
        for step in (1, 2):
            for name, det in dets.items():
                rows.append({"case": "beam-human", "fps": 100 // step, "noise_px": np.nan, "detector": name,
                             **beam_cell(det, folder, step)})
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines = ["# Gait event detection across the spread", "",
             f"Command: `python3 bench/gait_events.py --out bench/results/gait_events.md` (revs {args.revs}; "
             f"'current' = working tree on {head}).",
             "beam-human: AutoGaitA beam runs vs the authors' hand marks (10 cycles, 3 mice); 50 fps = every",
             "2nd frame. cycles = found within +-50 ms of both toe-offs. current = events=\"onset\" (default);",
             "current:visible = events=\"visible\" (the pre-872f26f rule, kept for hand-mark comparison).",
             "duty_err = mean(detected - true duty factor); off/on_ms = median |toe-off / touch-down error| (ms);",
             "*_bias_ms = signed median error (+ = late). Synthetic truth duty 0.65 walk, 0.50 trot.", ""]
    worst = []
    for name in dets:
        syn = df[(df.detector == name) & (df.case != "beam-human")]
        noisy = syn[syn.noise_px > 0]
        i = noisy.duty_err.abs().idxmax()
        worst.append(f"- **{name}**: worst |duty err| exact {syn[syn.noise_px == 0].duty_err.abs().max():.3f}, "
                     f"noisy {abs(noisy.duty_err[i]):.3f} ({noisy.case[i]} {noisy.fps[i]} fps {noisy.noise_px[i]} px); "
                     f"worst toe-off {noisy.off_ms.max():.1f} ms, touch-down {noisy.on_ms.max():.1f} ms (noisy); "
                     f"mean |duty err| noisy {noisy.duty_err.abs().mean():.3f}")
        for b in df[(df.detector == name) & (df.case == "beam-human")].itertuples():
            worst.append(f"  - beam {b.fps} fps: cycles {b.cycles}, toe-off {b.off_ms:.1f} ms, touch-down "
                         f"{b.on_ms:.1f} ms, duty - human {b.duty_err:+.3f}")
    lines += ["## Worst cells", "", *worst, "", "## All cells", "",
              df.to_markdown(index=False, floatfmt=".3f"), ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
