"""Rearing, grooming and freezing from a predicted pose: kappa vs the virtual mouse's truth over a grid.

Run: ``python3 bench/freezing_posture_states.py [--out bench/results/freezing_posture_states.md]``
(~1-3 CPU-min).

The virtual mouse (``pose.synthetic.openfield``, exact states) is made into what a pose model
writes: the nuisance preset's camera (zoom, rotation), then per keypoint and frame

- Gaussian jitter (px),
- gross errors: a jump of 20-150 px, a share of them with a *high* confidence (0.6-0.95: the
  confidence mask cannot catch them), the rest low (0.05-0.45),
- dropouts (confidence 0.05-0.45),
- left/right swaps: runs of 0.1-0.5 s where every left_*/right_* pair is exchanged, with a
  high confidence (a short-trained model's commonest identity error),

at the levels of :data:`ERROR_LEVELS`; ``short-trained`` is sized to the demo's 10-epoch model
(median keypoint error 3.4 px, mean 23.5 px: the mean is gross errors); ``hidden-forepaws`` is
``heavy`` (``hidden+short-trained``: ``short-trained``) plus, in grooming frames, the forepaws at
their usual place and half the head's foreshortening lost (:func:`hide_forepaws`: what the
demo's 5-minute model, median error 2.4 px and mean 4.3 px, does where the paws are under the
head). Grid: frame rate x
image scale (px/mm) x error level x seed. Every session goes through the behaviour CLI's path:
clean once (:func:`behavior.roles.clean_for_rules`), then the rules with their defaults.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FPS_GRID = (15.0, 30.0, 50.0)
PX_PER_MM_GRID = (0.7, 1.1, 2.0)
#: level -> (jitter sd px, gross-error share, high-confidence share of gross errors,
#: dropout share, left/right swap share of frames)
ERROR_LEVELS = {
    "mild": (1.5, 0.01, 0.0, 0.02, 0.0),
    "heavy": (3.0, 0.04, 0.3, 0.05, 0.02),
    "short-trained": (3.0, 0.15, 0.5, 0.05, 0.05),
    "hidden-forepaws": (3.0, 0.04, 0.3, 0.05, 0.02),
    "hidden+short-trained": (3.0, 0.15, 0.5, 0.05, 0.05),
}
#: levels whose grooming frames are also drawn as the demo's 5-minute model draws them
#: (:func:`hide_forepaws`), on the errors of ``heavy`` and of ``short-trained``
HIDDEN_FOREPAW_LEVELS = ("hidden-forepaws", "hidden+short-trained")
STATES = {"rearing": ("rear",), "grooming": ("groom",), "freezing": ("freeze",)}


def _robustness():
    spec = importlib.util.spec_from_file_location("freezing_robustness", ROOT / "bench" / "freezing_robustness.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _swap_runs(n: int, share: float, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean ``(n,)``: runs of 0.1-0.5 s covering about ``share`` of the frames."""
    out = np.zeros(n, bool)
    if share <= 0:
        return out
    mean_len = 0.3 * fps
    for start in np.flatnonzero(rng.random(n) < share / mean_len):
        out[start:start + int(rng.uniform(0.1, 0.5) * fps)] = True
    return out


def hide_forepaws(pos: np.ndarray, names: list[str], grooming: np.ndarray, *, head_shrink_kept: float = 0.5
                  ) -> np.ndarray:
    """What a model that cannot see the forepaws under a grooming mouse's head writes.

    In ``grooming`` frames each forepaw is put at its usual place (its median offset from the
    neck, in the body's frame, over the frames not grooming), and the snout is moved back
    toward its level-head distance from the ear midpoint, keeping ``head_shrink_kept`` of the
    true foreshortening. The demo's 5-minute model: forepaws 20.6 mm from the snout (truth
    8.2 mm, usual 30 mm), head 0.79 of its median length (truth 0.61).
    """
    out = pos.copy()
    ix = {k: names.index(k) for k in ("snout", "left_ear", "right_ear", "neck", "tail_base",
                                        "left_forepaw", "right_forepaw")}
    neck, tail = pos[:, :, ix["neck"]], pos[:, :, ix["tail_base"]]
    ax = (neck - tail) / np.linalg.norm(neck - tail, axis=1, keepdims=True)
    side = np.stack([-ax[:, 1], ax[:, 0]], axis=1)
    usual = ~grooming
    for paw in ("left_forepaw", "right_forepaw"):
        rel = pos[:, :, ix[paw]] - neck
        along, across = (rel * ax).sum(1), (rel * side).sum(1)
        a0, c0 = np.median(along[usual]), np.median(across[usual])
        out[grooming, :, ix[paw]] = neck[grooming] + a0 * ax[grooming] + c0 * side[grooming]
    ears = (pos[:, :, ix["left_ear"]] + pos[:, :, ix["right_ear"]]) / 2
    v = pos[:, :, ix["snout"]] - ears
    length = np.linalg.norm(v, axis=1)
    level = np.median(length[usual])
    kept = level - head_shrink_kept * (level - length)
    out[grooming, :, ix["snout"]] = ears[grooming] + (v * (kept / length)[:, None])[grooming]
    return out


def predicted_session(seed: int, level: str, *, fps: float, px_per_mm: float, seconds: float = 240.0):
    """(clean pose, true states, raw-error summary) for one simulated predicted-pose session."""
    from behavior.roles import clean_for_rules

    fr = _robustness()
    # the preset camera on the exact keypoints, with 1 px jitter ("none" level): the base
    ds, states = fr.virtual_session(seed, "none", seconds=seconds, fps=fps, clean=False, px_per_mm=px_per_mm)
    base = ds.position.values[..., 0]
    if level in HIDDEN_FOREPAW_LEVELS:
        base = hide_forepaws(base, [str(x) for x in ds.keypoint.values], np.asarray(states) == "groom")
    rng = np.random.default_rng([seed, int(fps), int(100 * px_per_mm), 11])
    sd, gross, hi, drop, swap = ERROR_LEVELS[level]
    pos = base + rng.normal(0, np.sqrt(max(sd**2 - 1.0, 0.0)), base.shape)  # (time, space, keypoint)
    n, _, k = pos.shape
    names = [str(x) for x in ds.keypoint.values]
    exact = pos.copy()
    conf = rng.uniform(0.9, 1.0, (n, k))
    pairs = [(names.index(a), names.index("right_" + a[5:])) for a in names
             if a.startswith("left_") and "right_" + a[5:] in names]
    sw = _swap_runs(n, swap, fps, rng)
    for a, b in pairs:
        pos[sw, :, a], pos[sw, :, b] = exact[sw, :, b], exact[sw, :, a]
    bad = rng.random((n, k)) < gross
    jump = rng.uniform(20, 150, int(bad.sum())) * np.exp(1j * rng.uniform(0, 2 * np.pi, int(bad.sum())))
    pos[:, 0][bad] += jump.real
    pos[:, 1][bad] += jump.imag
    high = bad & (rng.random((n, k)) < hi)
    conf[bad & ~high] = rng.uniform(0.05, 0.45, int((bad & ~high).sum()))
    conf[high] = rng.uniform(0.6, 0.95, int(high.sum()))
    dr = (rng.random((n, k)) < drop) & ~bad
    conf[dr] = rng.uniform(0.05, 0.45, int(dr.sum()))
    err = np.hypot(*(pos - base).transpose(1, 0, 2))  # vs the base (1 px off the truth)
    out = ds.copy(deep=True)
    out["position"].values[..., 0] = pos
    out["confidence"].values[..., 0] = conf
    summary = {"median_error_px": float(np.median(err)), "mean_error_px": float(np.mean(err))}
    return clean_for_rules(out, p_cutoff=0.5, max_gap_s=0.5), states, summary


def run_session(seed: int, level: str, *, fps: float, px_per_mm: float, seconds: float = 240.0) -> dict:
    """Rearing and grooming kappa [CI] vs truth for one session."""
    from behavior.agreement import bootstrap_agreement
    from behavior.rules import detect_freezing, detect_grooming, detect_rearing

    ds, states, summary = predicted_session(seed, level, fps=fps, px_per_mm=px_per_mm, seconds=seconds)
    row = {"fps": fps, "px_per_mm": px_per_mm, "level": level, "seed": seed, **summary}
    for name, fn in (("rearing", detect_rearing), ("grooming", detect_grooming), ("freezing", detect_freezing)):
        r = bootstrap_agreement(np.isin(states, STATES[name]), fn(ds).values, fps=fps, block_s=10.0, n_boot=500)
        row[name] = r["kappa"]
        row[name + "_cell"] = f"{r['kappa']:.3f} [{r['kappa_ci_low']:.2f}, {r['kappa_ci_high']:.2f}]"
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="Write the tables as markdown here.")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=240.0)
    args = ap.parse_args(argv)
    c0 = time.process_time()
    rows = [run_session(s, lv, fps=f, px_per_mm=p, seconds=args.seconds)
            for f, p, lv, s in itertools.product(FPS_GRID, PX_PER_MM_GRID, ERROR_LEVELS, range(args.seeds))]
    df = pd.DataFrame(rows)
    lines = ["# Rearing, grooming and freezing from a simulated predicted pose (virtual mouse, exact truth)", "",
             f"Command: `python3 bench/freezing_posture_states.py{' --out ' + str(args.out) if args.out else ''}`"
             f" ({args.seeds} seeds, {args.seconds:g} s sessions)", "",
             "Error levels (jitter sd px, gross-error share, high-confidence share of gross errors, "
             "dropout share, left/right swap share): "
             + "; ".join(f"{k} {v}" for k, v in ERROR_LEVELS.items()) + ".", "",
             "Simulated keypoint error per level (median / mean px): "
             + "; ".join(f"{lv} {g.median_error_px.median():.1f} / {g.mean_error_px.median():.1f}"
                         for lv, g in df.groupby("level", sort=False)) + ".", ""]
    for name in STATES:
        tab = df.pivot_table(index=["fps", "px_per_mm"], columns=["level", "seed"], values=name + "_cell",
                             aggfunc="first")
        w = df.loc[df[name].idxmin()]
        lines += [f"## {name}: Cohen's kappa [10 s block-bootstrap 95 % CI]", "", tab.to_markdown(), "",
                  f"Worst: {w.fps:g} fps, {w.px_per_mm:g} px/mm, {w.level}, seed {w.seed}: {w[name + '_cell']}; "
                  f">= 0.7: {int((df[name] >= 0.7).sum())}/{len(df)}; median {df[name].median():.3f}.", "",
                  "Worst per level: " + ", ".join(f"{lv} {g[name].min():.3f}"
                                                  for lv, g in df.groupby("level", sort=False)) + ".", ""]
    lines += [f"CPU time {time.process_time() - c0:.0f} s."]
    _robustness().write_report(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
