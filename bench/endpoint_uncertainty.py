"""Coverage of protocols.uncertainty.endpoint_intervals on the virtual mouse, 3 pose-error levels.

Each session: :func:`pose.synthetic.openfield.simulate_open_field` (exact track), then pose
error added to every keypoint (Gaussian jitter whose sd grows as confidence falls, plus
bursts of low-confidence frames with large errors), then the open-field protocol's interval
for distance, centre time and centre entries. Truth: the protocol's own measurement
(filters, feature table, reducers) of the exact body-centre track; centre time also against
``truth.csv``'s definition (raw inside on the exact track, ``true_centre_time_pct``).
Coverage is reported with its exact (Clopper-Pearson) binomial 95 % interval.

The levels are pose-error levels standing in for the video nuisance presets
(``pose.synthetic.nuisance``: none / mild / heavy): rendering and running a pose model per
session does not fit this machine's CPU budget. The same method and settings are used at
every level.

Usage::

    nice -n 10 python3 bench/endpoint_uncertainty.py --sessions 100 --seconds 20 --n-boot 200 \
        --rows rows.csv --out table.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from tqdm import tqdm

from features.zones import ZoneSet
from pose.dataset import from_numpy
from pose.synthetic.openfield import simulate_open_field
from protocols.geometry import ArenaPlacement, compile_zones
from protocols.schema import load_protocol
from protocols.uncertainty import (
    INTERVAL_ENDPOINTS,
    _endpoints,
    basic_interval,
    bootstrap_differences,
    count_interval,
    equal_tailed_count_interval,
)

#: level -> (jitter sd px at confidence 1, fraction of frames in low-confidence bursts, burst error sd px)
LEVELS = {"none": (0.5, 0.0, 0.0), "mild": (1.5, 0.05, 8.0), "heavy": (3.0, 0.15, 20.0)}


def noisy_pose(tr, level: str, rng: np.random.Generator):
    """The simulated pose with tracking error of ``level``."""
    base, frac, burst_sd = LEVELS[level]
    ds = tr.pose
    pos = ds["position"].values.copy()  # (time, space, kp, ind)
    n, _, k, _ = pos.shape
    conf = rng.uniform(0.6, 1.0, (n, k, 1))
    low = np.zeros(n, bool)
    fps = float(ds.attrs["fps"])
    while low.mean() < frac:
        a = rng.integers(0, n)
        low[a:a + int(rng.uniform(0.1, 1.0) * fps)] = True
    sd = base * (1.0 + 2.0 * (1.0 - conf))  # (time, kp, 1)
    err = rng.standard_normal(pos.shape) * sd[:, None]
    if frac > 0:
        conf[low] = rng.uniform(0.05, 0.45, (low.sum(), k, 1))
        err[low] = rng.standard_normal((low.sum(), 2, k, 1)) * burst_sd
    return from_numpy(pos + err, conf, keypoints=[str(x) for x in ds["keypoint"].values],
                      fps=fps, px_per_mm=float(ds.attrs["px_per_mm"]))


def truth(tr, protocol, zones: ZoneSet, ppm: float) -> dict[str, float]:
    """Endpoints of the exact body-centre track through the protocol path (its filters included).

    The estimand is the protocol's own measurement of an error-free track. The exact track
    is smooth (its residual jitter is ~0.02 px, lag-1 autocorrelation of its steps 0.99), so no
    smoothing is applied first: the 0.1 s moving average of earlier versions removed 3-7 mm of
    real path per 30 s that the protocol does measure on a tracked animal, a bias no interval
    of the tracking error can cover.
    """
    ds = tr.pose.sel(keypoint=["body_center"])
    c = ds["position"].values[:, :2, 0, 0]
    out = _endpoints(ds, protocol.filters, zones, "body_center", ppm, protocol.min_dwell_s).iloc[0].to_dict()
    (x0, y0), (x1, y1) = tr.arena["zones"]["center"]["vertices_px"][0], tr.arena["zones"]["center"]["vertices_px"][2]
    inside = (c[:, 0] > x0) & (c[:, 0] < x1) & (c[:, 1] > y0) & (c[:, 1] < y1)
    out["truth_csv_centre_time_pct"] = float(100 * inside.mean())
    return out


def run(n_sessions: int, seconds: float, n_boot: int, seed: int, levels: list[str] | None = None,
        rows_csv: str | None = None) -> pd.DataFrame:
    """Coverage rows per level x session x endpoint (appended to ``rows_csv`` as they come)."""
    protocol = load_protocol("open_field")
    rows = []
    for level in levels or list(LEVELS):
        for i in tqdm(range(n_sessions), desc=level):
            start = len(rows)
            tr = simulate_open_field(seconds, seed=seed + i, center_preference=float((i % 5) / 5 + 0.1),
                                     speed_scale=1.0 + 0.5 * (i % 2))
            b = tr.arena["bounds_px"]
            placement = ArenaPlacement(np.array([[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]], float),
                                       protocol.arena.width_mm, protocol.arena.height_mm)
            zones = compile_zones(protocol, placement)
            ppm = placement.px_per_mm
            t = truth(tr, protocol, zones, ppm)
            ds = noisy_pose(tr, level, np.random.default_rng(10_000 + seed + i))
            t0 = time.process_time()
            # endpoint_intervals' own two steps (the bench also needs the replicates)
            theta, diff, info, worlds = bootstrap_differences(ds, protocol.filters, zones, centre="body_center",
                                                              px_per_mm=ppm, min_dwell_s=protocol.min_dwell_s,
                                                              n_boot=n_boot, seed=i, return_worlds=True)
            cpu = time.process_time() - t0
            for e in INTERVAL_ENDPOINTS:
                v, d = float(theta[e]), diff[e].to_numpy(float)
                lo, hi = basic_interval(e, v, d)
                bias = float(np.nanmean(d))
                tv = t[e]
                rows.append({"level": level, "session": i, "endpoint": e, "truth": tv, "value": v,
                             "lo": lo, "hi": hi, "bias": bias, "sigma_px": info["sigma_px"], "cpu_s": cpu,
                             "covered": bool(lo <= tv <= hi), "naive_covered": bool(lo + bias <= tv <= hi + bias),
                             "fuzzy_covered": fuzzy_coverage(v - tv, d) if e == "centre_entries" else np.nan})
                if e == "centre_entries":
                    rows[-1].update(count_diagnostics(v, tv, d, worlds[e].to_numpy(float)))
                if e == "centre_time_pct":
                    tv = t["truth_csv_centre_time_pct"]
                    rows.append({**rows[-1], "endpoint": "centre_time_pct (truth.csv def.)", "truth": tv,
                                 "covered": bool(lo <= tv <= hi), "naive_covered": bool(lo + bias <= tv <= hi + bias)})
            if rows_csv:
                new = pd.DataFrame(rows[start:])
                new.to_csv(rows_csv, mode="a", header=not Path(rows_csv).exists(), index=False)
    return pd.DataFrame(rows)


def fuzzy_coverage(d_true: float, diff: np.ndarray, level: float = 0.95) -> float:
    """Probability that the randomized (fuzzy) version of a count's interval covers the truth.

    A diagnostic of calibration only: the reported interval of a count has exact quantiles,
    each tail at most ``(1 - level) / 2``; the randomized one drops each boundary value
    with the probability that makes each tail exactly ``(1 - level) / 2``, so its mean
    coverage is ``level`` when the bootstrap's differences are calibrated. ``d_true`` is
    ``value - truth``.
    """
    d = np.asarray(diff, float)
    d = d[np.isfinite(d)]
    a = (1 - level) / 2
    q_lo, q_hi = np.quantile(d, a, method="inverted_cdf"), np.quantile(d, 1 - a, method="inverted_cdf")
    p_lo, p_hi = np.mean(d == q_lo), np.mean(d == q_hi)
    drop_lo = (a - np.mean(d < q_lo)) / p_lo  # share of the boundary atom that belongs to the tail
    drop_hi = (a - np.mean(d > q_hi)) / p_hi
    if not q_lo <= d_true <= q_hi:
        return 0.0
    if q_lo == q_hi:
        return float(max(0.0, 1.0 - drop_lo - drop_hi))
    return float(1.0 - drop_lo if d_true == q_lo else 1.0 - drop_hi if d_true == q_hi else 1.0)


def _hist(x: np.ndarray) -> str:
    """``value:count`` pairs of a whole-number sample, ``;``-separated (the csv keeps the bootstrap)."""
    u, c = np.unique(x[np.isfinite(x)], return_counts=True)
    return ";".join(f"{a:g}:{b}" for a, b in zip(u, c, strict=True))


def _unhist(h: str) -> np.ndarray:
    """The sample back from :func:`_hist`."""
    pairs = [x.split(":") for x in str(h).split(";") if x]
    return np.concatenate([np.full(int(c), float(v)) for v, c in pairs]) if pairs else np.array([])


def floor_mass(value: float, diff: np.ndarray, level: float = 0.95) -> float:
    """The least share of a count's replicates that any whole-number interval holding at least
    ``level`` of them can hold: the coverage floor of a calibrated non-randomized interval.

    When more than ``level`` of the replicates agree with the estimate, every such interval
    holds that atom, so the floor is at least its share (e.g. 0.99 for ``[k, k]`` at 99 %).
    """
    d = np.asarray(diff, float)
    cand, counts = np.unique(np.maximum(value - d[np.isfinite(d)], 0.0), return_counts=True)
    cum = np.concatenate([[0], np.cumsum(counts)])
    i, j = np.triu_indices(cand.size)
    mass = (cum[j + 1] - cum[i]) / cum[-1]
    return float(mass[mass >= level - 1e-12].min())


def count_diagnostics(value: float, truth: float, diff: np.ndarray, world: np.ndarray) -> dict:
    """What a count's bootstrap said about the truth of one session.

    ``own_mass``: the share of the replicates' candidate counts (``value - diff``, at least 0)
    inside the reported (shortest) interval, the coverage a calibrated bootstrap would give
    it; ``et_*``: the same for the equal-tailed interval it replaced; ``p_zero``: the share
    of replicates that count what the world counts (at 0.95 or more the interval is [k, k]
    and nothing narrower or other exists); ``p_below`` / ``p_at``: the bootstrap's mass below
    and at the truth (a randomized PIT is ``p_below + U p_at``); ``post_*``: the same
    interval taken from the posterior worlds' own counts (a pure posterior interval).
    """
    cand = np.maximum(value - diff[np.isfinite(diff)], 0.0)
    lo, hi = count_interval(value, diff)
    et_lo, et_hi = equal_tailed_count_interval(value, diff)
    w = world[np.isfinite(world)]
    p_lo, p_hi = count_interval(0.0, -w)  # the shortest interval of the posterior's own counts
    return {"own_mass": float(np.mean((cand >= lo) & (cand <= hi))),
            "et_lo": et_lo, "et_hi": et_hi, "et_covered": bool(et_lo <= truth <= et_hi),
            "et_mass": float(np.mean((cand >= et_lo) & (cand <= et_hi))),
            "p_zero": float(np.mean(diff[np.isfinite(diff)] == 0)),
            "p_below": float(np.mean(cand < truth)), "p_at": float(np.mean(cand == truth)),
            "post_lo": p_lo, "post_hi": p_hi, "post_covered": bool(p_lo <= truth <= p_hi),
            "post_p_at": float(np.mean(w == truth)), "diff_sd": float(np.std(diff[np.isfinite(diff)])),
            "floor_mass": floor_mass(value, diff),
            "p_too_many": float(np.mean(diff[np.isfinite(diff)] > 0)),
            "p_too_few": float(np.mean(diff[np.isfinite(diff)] < 0)),
            "diff_hist": _hist(diff), "world_hist": _hist(w)}


def coverage_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact binomial) interval of a coverage of ``k`` hits in ``n``."""
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint x level: n, coverage, its binomial CI, widths, raw and corrected errors."""
    rows = []
    for (e, lv), x in df.groupby(["endpoint", "level"], sort=False):
        k, n = int(x.covered.sum()), len(x)
        lo, hi = coverage_ci(k, n)
        corrected = x.value - x.bias - x.truth
        rows.append({"endpoint": e, "level": lv, "n": n, "coverage": k / n, "ci_lo": lo, "ci_hi": hi,
                     "naive": float(x.naive_covered.mean()), "width": float((x.hi - x.lo).mean()),
                     "raw_error": float((x.value - x.truth).mean()), "corrected_error": float(corrected.mean()),
                     "corrected_error_sd": float(corrected.std()), "half_width_sd": float(((x.hi - x.lo) / 3.92).mean()),
                     "sigma": float(x.sigma_px.median()),
                     "fuzzy": float(x.fuzzy_covered.mean()) if "fuzzy_covered" in x else np.nan,
                     "exact": float((x.value == x.truth).mean()),
                     "zero_width": float((x.hi == x.lo).mean())})
    return pd.DataFrame(rows)


def count_table(df: pd.DataFrame) -> str:
    """Markdown: what the entries coverage is made of, per level (rows of :func:`count_diagnostics`)."""
    x = df[df.endpoint == "centre_entries"].copy()
    if x.empty or "own_mass" not in x:
        return ""
    if "floor_mass" not in x:  # rows written before the column: recompute from the kept bootstrap
        ds = [_unhist(h) for h in x.diff_hist]
        x["floor_mass"] = [floor_mass(v, d) for v, d in zip(x.value, ds, strict=True)]
        x["p_too_many"] = [float(np.mean(d > 0)) for d in ds]
        x["p_too_few"] = [float(np.mean(d < 0)) for d in ds]
    lines = ["| level | n | coverage (shortest) | 95 % CI | equal-tailed (before) | mean width shortest / "
             "equal-tailed | interval's own bootstrap mass (mean) | floor: least mass any >= 95 % interval "
             "can hold (mean) | sessions with floor >= 98 % | [k, k] forced (>= 95 % of replicates = 0) | "
             "value = truth | covered when value != truth | P(too many): bootstrap / actual | "
             "P(too few): bootstrap / actual | randomized coverage | posterior worlds' own interval |",
             "|---|" + "---|" * 15]
    for lv in [lv for lv in LEVELS if lv in set(x.level)]:
        r = x[x.level == lv]
        k, n = int(r.covered.sum()), len(r)
        lo, hi = coverage_ci(k, n)
        err = r.value - r.truth
        wrong = r[err != 0]
        lines.append(
            f"| {lv} | {n} | {100 * k / n:.1f} % | {100 * lo:.1f}-{100 * hi:.1f} | {100 * r.et_covered.mean():.1f} % | "
            f"{(r.hi - r.lo).mean():.2f} / {(r.et_hi - r.et_lo).mean():.2f} | {100 * r.own_mass.mean():.1f} % | "
            f"{100 * r.floor_mass.mean():.1f} % | {100 * (r.floor_mass >= 0.98).mean():.0f} % | "
            f"{100 * (r.p_zero >= 0.95).mean():.0f} % | {100 * (err == 0).mean():.0f} % | "
            f"{100 * wrong.covered.mean():.0f} % of {len(wrong)} | {100 * r.p_too_many.mean():.1f} / "
            f"{100 * (err > 0).mean():.1f} % | {100 * r.p_too_few.mean():.1f} / {100 * (err < 0).mean():.1f} % | "
            f"{100 * r.fuzzy_covered.mean():.1f} % | {100 * r.post_covered.mean():.1f} % |")
    return "\n".join(lines)


def table(df: pd.DataFrame) -> str:
    """Markdown: the coverage grid (endpoint x level, with the binomial CI) and the full table."""
    s = summary(df)
    levels = [lv for lv in LEVELS if lv in set(s.level)]
    main = s[~s.endpoint.str.contains("truth.csv")]
    worst = main.loc[(main.coverage - 0.95).abs().idxmax()]
    lines = ["| endpoint | " + " | ".join(levels) + " |", "|---|" + "---|" * len(levels)]
    for e in main.endpoint.unique():
        cells = []
        for lv in levels:
            r = main[(main.endpoint == e) & (main.level == lv)]
            if r.empty:
                cells.append("-")
                continue
            r = r.iloc[0]
            mark = "**" if (r.endpoint, r.level) == (worst.endpoint, worst.level) else ""
            cells.append(f"{mark}{100 * r.coverage:.1f} %{mark} [{100 * r.ci_lo:.0f}, {100 * r.ci_hi:.0f}]")
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    lines += ["", f"Worst cell (farthest from 95 %): {worst.endpoint} at {worst.level}, {100 * worst.coverage:.1f} % "
              f"(95 % Clopper-Pearson interval {100 * worst.ci_lo:.1f}-{100 * worst.ci_hi:.1f} %, n = {worst.n}).", "",
              "| endpoint | level | n | coverage | 95 % CI | without bias correction | mean width | mean raw error "
              "(value - truth) | mean corrected error | its sd | mean interval sd (width / 3.92) | sigma px (est.) "
              "| value = truth | width 0 | randomized coverage (counts) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in s.itertuples():
        lines.append(f"| {r.endpoint} | {r.level} | {r.n} | {100 * r.coverage:.1f} % | {100 * r.ci_lo:.1f}-{100 * r.ci_hi:.1f} | "
                     f"{100 * r.naive:.1f} % | {r.width:.2f} | {r.raw_error:+.2f} | {r.corrected_error:+.2f} | "
                     f"{r.corrected_error_sd:.2f} | {r.half_width_sd:.2f} | {r.sigma:.2f} | "
                     f"{100 * r.exact:.0f} % | {100 * r.zero_width:.0f} % | "
                     + (f"{100 * r.fuzzy:.1f} % |" if np.isfinite(r.fuzzy) else "- |"))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=60)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--n-boot", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the markdown table here")
    p.add_argument("--levels", default=",".join(LEVELS), help="comma-separated levels to run")
    p.add_argument("--rows", default=None, help="append every session's rows to this csv as they come")
    p.add_argument("--from-rows", default=None, help="only tabulate the rows of this csv (no run)")
    a = p.parse_args()
    if a.from_rows:
        df = pd.read_csv(a.from_rows)
    else:
        df = run(a.sessions, a.seconds, a.n_boot, a.seed, a.levels.split(","), a.rows)
    md = table(df)
    counts = count_table(df)
    if counts:
        md += "\n\nCentre entries, what the coverage is made of:\n\n" + counts
    cpu = df.groupby(["level", "session"]).cpu_s.first()
    md += f"\n\nCPU per session interval (n_boot={a.n_boot}, {a.seconds:g} s at 30 fps): median {cpu.median():.2f} s\n"
    print(md)
    if a.out:
        from pose.atomic import write_text_atomic
        write_text_atomic(a.out, md + "\n")


if __name__ == "__main__":
    main()
