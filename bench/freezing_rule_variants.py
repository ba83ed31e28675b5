"""Freezing rule variants on the whole robustness sweep: does a change help every reference?

Run: ``python3 bench/freezing_rule_variants.py [--capture /tmp/freezing_capture.pkl] [--seeds 3]
[--out bench/results/freezing_rule_variants.md]`` (~2 CPU-min for the capture, seconds after).

Every recording of ``bench/freezing_robustness.py`` (demo1's 36 cells and the virtual mouse's
fps x px/mm x error level x seed sessions) goes once through ``ethopose behavior freezing``'s
path (:func:`behavior.freezing.detect_freezing`, defaults); the inputs of its last step,
:func:`behavior.freezing.freezing_from_speeds` (head and body speeds after the gross-error
rejection, the posture exclusions and the calibrated thresholds/window), are kept
(``--capture``: reused when the file exists). The variants then re-run only that last step,
so they see the same speeds, and the table gives, per reference, the worst kappa, how many
recordings reach 0.85 and the median:

- ``dilate``: each bout grown by ``d`` x the speed window's half-width on both sides (a
  still run read by a centred window is shorter than the stillness by up to a window);
  ``after drop`` grows the bouts that passed the minimum-length test only;
- ``corr``: the minimum-bout test on the run plus ``corr`` x (window - 1) frames (the rule:
  0.5);
- ``core``: the core below the enter threshold must last ``core`` x the minimum bout (the
  rule: 0.5).

The virtual mouse is scored against all its freeze frames and against its freezes of >= 1 s
(the rule's minimum bout; the simulator also draws shorter ones).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: (label, keyword arguments of :func:`variant_rule`)
VARIANTS: tuple[tuple[str, dict], ...] = (
    ("rule as shipped (corr 0.5, core 0.5)", {}),
    ("dilate 1 x half-window", {"dilate": 1.0}),
    ("dilate 1 x half-window, corr 0", {"dilate": 1.0, "corr": 0.0}),
    ("dilate 0.5 x half-window after drop", {"dilate": 0.5, "dilate_first": False}),
    ("dilate 1 x half-window after drop", {"dilate": 1.0, "dilate_first": False}),
    ("corr 0.75", {"corr": 0.75}),
    ("corr 1.0 (a full window)", {"corr": 1.0}),
    ("core 0.4", {"core": 0.4}),
    ("core 0.3", {"core": 0.3}),
    ("corr 1.0, core 0.3", {"corr": 1.0, "core": 0.3}),
)


def _sweep():
    spec = importlib.util.spec_from_file_location("freezing_robustness", ROOT / "bench" / "freezing_robustness.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def capture(seeds: int, seconds: float = 300.0) -> list[dict]:
    """Truth, prediction and ``freezing_from_speeds`` inputs of every sweep recording."""
    import behavior.freezing as bf
    from behavior.roles import clean_for_rules

    fr = _sweep()
    shipped = bf.freezing_from_speeds
    seen: dict = {}

    def spy(hs, bs, **kw):
        seen["args"] = (np.array(hs), np.array(bs), kw)
        return shipped(hs, bs, **kw)

    rows: list[dict] = []
    bf.freezing_from_speeds = spy
    try:
        if fr.DEMO1.is_dir():
            ds, human = fr.load_demo1()
            for f, s, j in itertools.product(fr.FPS_GRID, fr.SCALE_GRID, fr.JITTER_GRID):
                rec, truth = fr.make_recording(ds, human, fps=f, scale=s, jitter_px=j)
                fz = bf.detect_freezing(clean_for_rules(rec))
                rows.append({"kind": "demo1", "key": (f, s, j), "truth": truth, "pred": fz.values.copy(),
                             "args": seen["args"]})
        for f in fr.VIRTUAL_FPS:
            for p in fr.VIRTUAL_PX_PER_MM:
                for lv in fr.TRACKING_ERRORS:
                    for sd in range(seeds):
                        d, states = fr.virtual_session(sd, lv, seconds=seconds, fps=f, px_per_mm=p)
                        fz = bf.detect_freezing(d)
                        rows.append({"kind": "virtual", "key": (f, p, lv, sd), "truth": states == "freeze",
                                     "pred": fz.values.copy(), "args": seen["args"]})
    finally:
        bf.freezing_from_speeds = shipped
    return rows


def variant_rule(hs: np.ndarray, bs: np.ndarray, *, fps: float, enter_speed_mm_s: float, exit_speed_mm_s: float,
                 min_bout_s: float, merge_gap_s: float, window_frames: int, dilate: float = 0.0,
                 corr: float = 0.5, core: float = 0.5, dilate_first: bool = True) -> np.ndarray:
    """:func:`behavior.freezing.freezing_from_speeds` with the variant's knobs (defaults: the same)."""
    from scipy import ndimage

    from behavior.bouts import drop_short_bouts, filter_bouts, merge_gaps
    from behavior.roles import _below, extend_bouts

    h = (window_frames - 1) // 2
    still = filter_bouts(_below(hs, enter_speed_mm_s) & _below(bs, enter_speed_mm_s), fps=fps,
                         min_bout_s=core * min_bout_s)
    frozen = extend_bouts(still, _below(hs, exit_speed_mm_s) & _below(bs, exit_speed_mm_s))
    d = int(round(dilate * h))
    known = np.isfinite(hs) & np.isfinite(bs)

    def grow(v: np.ndarray) -> np.ndarray:
        return ndimage.binary_dilation(v, iterations=d) & known if d > 0 else v

    frozen = grow(frozen) if dilate_first else frozen
    frozen = merge_gaps(frozen, max_gap_frames=int(round(merge_gap_s * fps)))
    frozen = drop_short_bouts(frozen, min_frames=max(1, int(round(min_bout_s * fps))
                                                    - int(round(corr * (window_frames - 1)))))
    return frozen if dilate_first else grow(frozen)


def evaluate(rows: list[dict]) -> pd.DataFrame:
    """One row per variant: worst / >= 0.85 / median kappa per reference."""
    from sklearn.metrics import cohen_kappa_score

    from behavior.bouts import drop_short_bouts

    for r in rows:  # the virtual truth without its freezes shorter than the rule's minimum bout
        kw = r["args"][2]
        r["truth_long"] = drop_short_bouts(r["truth"], min_frames=int(round(kw["min_bout_s"] * kw["fps"])))
    out = []
    for label, knobs in VARIANTS:
        ks: dict[str, list] = {"demo1": [], "virtual": [], "virtual >= 1 s": []}
        for r in rows:
            hs, bs, kw = r["args"]
            p = variant_rule(hs, bs, **kw, **knobs)
            ks[r["kind"]].append((cohen_kappa_score(r["truth"], p), r["key"]))
            if r["kind"] == "virtual":
                ks["virtual >= 1 s"].append((cohen_kappa_score(r["truth_long"], p), r["key"]))
        row = {"variant": label}
        for ref, lst in ks.items():
            if not lst:
                continue
            k = np.array([x[0] for x in lst])
            row[ref] = (f"{k.min():.3f} {lst[int(np.argmin(k))][1]}; {int((k >= 0.85).sum())}/{len(k)}; "
                        f"{np.median(k):.3f}")
        out.append(row)
    return pd.DataFrame(out).set_index("variant")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--capture", type=Path, default=Path("/tmp/freezing_capture.pkl"),
                    help="Captured recordings (made when absent, reused when present).")
    ap.add_argument("--seeds", type=int, default=3, help="Virtual-mouse seeds per cell (capture).")
    ap.add_argument("--out", type=Path, default=None, help="Write the table as markdown here.")
    given = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)
    c0 = time.process_time()
    if args.capture.exists():
        rows = pickle.loads(args.capture.read_bytes())
    else:
        rows = capture(args.seeds)
        args.capture.write_bytes(pickle.dumps(rows))
    shipped_ok = all(np.array_equal(variant_rule(*r["args"][:2], **r["args"][2]), r["pred"]) for r in rows)
    table = evaluate(rows)
    lines = ["# Freezing rule variants on the robustness sweep's recordings", "",
             "Command: `" + " ".join(["python3 bench/freezing_rule_variants.py", *given]) + "`", "",
             "Per reference: worst kappa (its recording), recordings >= 0.85, median. demo1: fps, scale, "
             "+jitter px vs the human; virtual: fps, px/mm, error level, seed vs exact truth (all freeze "
             "frames, and only its freezes of >= 1 s).", "", table.to_markdown(), "",
             f"The first row reproduces detect_freezing's output on every recording: {shipped_ok}.", "",
             f"CPU time {time.process_time() - c0:.0f} s."]
    _sweep().write_report(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
