"""Self-contained HTML report of a cohort run (plots embedded as base64 PNG).

Sections: summary and provenance, group statistics (tests, effect sizes, corrected
p-values), per-endpoint box/strip plots, dose-response, trajectories with zones, occupancy
heatmaps, ethograms, gait plots (gait protocol), optional validation against human
scoring, failures, and the full provenance (ethopose version, model, protocol YAML with
its filter parameters, each animal's pose history).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pose.atomic import write_text_atomic
from protocols.results import AnimalResult, finished_animals, load_animal, load_results
from protocols.schema import Protocol, protocol_yaml

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1150px;color:#222}
h1{font-size:1.7em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0} td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.sig{background:#e4f4e4;font-weight:600} .note{color:#555;font-size:.9em}
pre{background:#f7f7f7;padding:.7em;overflow-x:auto;font-size:.8em} img{max-width:100%}
details{margin:.3em 0} .scroll{overflow-x:auto}
table.prov td{text-align:left}
"""
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _img(fig: Any, alt: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table_html(df: pd.DataFrame, *, highlight: str | None = None, digits: int = 3) -> str:
    if df is None or df.empty:
        return '<p class="note">(none)</p>'
    out = ["<div class='scroll'><table><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns) + "</tr>"]
    for _, r in df.iterrows():
        sig = highlight is not None and highlight in df and pd.notna(r[highlight]) and r[highlight] < 0.05
        cells = []
        for v in r.to_numpy():
            if isinstance(v, float | np.floating):
                txt = "" if not np.isfinite(v) else (f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}")
            else:
                txt = html.escape(str(v))
            cells.append(f"<td>{txt}</td>")
        out.append(f'<tr{" class=sig" if sig else ""}>' + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table></div>"


def _group_colours(groups: list[str]) -> dict[str, str]:
    return {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(sorted(groups, key=str))}


def plot_group_endpoints(table: pd.DataFrame, endpoints: list[str], tests: pd.DataFrame) -> str:
    """Box plot + individual animals per group for every endpoint, titled with p and effect."""
    import matplotlib.pyplot as plt

    groups = sorted(table["group"].astype(str).unique())
    colours = _group_colours(groups)
    n = len(endpoints)
    ncol = min(4, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 3.0 * nrow), squeeze=False)
    rng = np.random.default_rng(0)
    t = tests.set_index("endpoint") if len(tests) else pd.DataFrame()
    for ax, ep in zip(axes.ravel(), endpoints, strict=False):
        data = [pd.to_numeric(table.loc[table.group.astype(str) == g, ep], errors="coerce").dropna() for g in groups]
        ax.boxplot(data, widths=0.5, showfliers=False)
        ax.set_xticks(range(1, len(groups) + 1), groups)
        for i, (g, d) in enumerate(zip(groups, data, strict=True)):
            ax.scatter(i + 1 + rng.uniform(-0.12, 0.12, len(d)), d, color=colours[g], s=22, zorder=3)
        title = ep
        if ep in t.index and pd.notna(t.loc[ep, "p"]):
            title += f"\np={t.loc[ep, 'p']:.3g}, {t.loc[ep, 'effect_size_name']}={t.loc[ep, 'effect_size']:.2f}"
        ax.set_title(title, fontsize=9)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _img(fig, "endpoints by group")


def _draw_zones(ax: Any, geometry: dict[str, Any]) -> None:
    from matplotlib.patches import Circle, Polygon

    corners = geometry.get("arena_corners_px")
    if corners:
        ax.add_patch(Polygon(corners, closed=True, fill=False, ec="k", lw=1.2))
    for z in geometry.get("zones", {}).values():
        if z["type"] == "circle":
            ax.add_patch(Circle(z["centre"], z["radius"], fill=False, ec="0.4", ls="--", lw=0.8))
        else:
            for ring in [z["vertices"], *z.get("holes", [])]:
                ax.add_patch(Polygon(ring, closed=True, fill=False, ec="0.4", ls="--", lw=0.8))


def plot_trajectories(animals: list[AnimalResult], colours: dict[str, str]) -> str:
    """Centre-keypoint path of each animal over its arena and zones."""
    import matplotlib.pyplot as plt

    n = len(animals)
    ncol = min(4, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.0 * ncol, 3.0 * nrow), squeeze=False)
    for ax, a in zip(axes.ravel(), animals, strict=False):
        ax.plot(a.frames["x_px"], a.frames["y_px"], lw=0.6, color=colours.get(a.group, "k"))
        _draw_zones(ax, a.geometry)
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.set_title(f"{a.key} ({a.group})", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _img(fig, "trajectories")


def occupancy_histogram(
    frames: pd.DataFrame, geometry: dict[str, Any] | None = None, bins: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Occupancy (fraction of tracked frames per bin) of the centre keypoint.

    Returns ``(hist (bins_x, bins_y), x_edges, y_edges)``; the bins span the arena's
    bounding box when ``geometry`` has arena corners, else the track's extent.
    """
    xy = frames[["x_px", "y_px"]].dropna().to_numpy()
    corners = (geometry or {}).get("arena_corners_px")
    rng = None
    if corners:
        c = np.asarray(corners, float)
        rng = [[c[:, 0].min(), c[:, 0].max()], [c[:, 1].min(), c[:, 1].max()]]
    if not len(xy):
        return np.zeros((bins, bins)), np.arange(bins + 1.0), np.arange(bins + 1.0)
    h, xe, ye = np.histogram2d(xy[:, 0], xy[:, 1], bins=bins, range=rng)
    return h / max(h.sum(), 1), xe, ye


def plot_heatmaps(animals: list[AnimalResult]) -> str:
    """Occupancy heatmap of each animal (fraction of time per bin, log colour scale)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    n = len(animals)
    ncol = min(4, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.0 * ncol, 3.0 * nrow), squeeze=False)
    for ax, a in zip(axes.ravel(), animals, strict=False):
        h, xe, ye = occupancy_histogram(a.frames, a.geometry)
        ax.imshow(np.where(h.T > 0, h.T, np.nan), origin="upper", extent=(xe[0], xe[-1], ye[-1], ye[0]),
                  cmap="magma", norm=LogNorm(), aspect="equal")
        _draw_zones(ax, a.geometry)
        ax.set_title(a.key, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _img(fig, "occupancy heatmaps")


def ethogram_columns(frames: pd.DataFrame) -> list[str]:
    """Boolean per-frame columns to draw in an ethogram (behaviours and zone occupancy)."""
    return [c for c in frames.columns if frames[c].dtype == bool and not c.startswith("snout_in_")]


def plot_ethograms(animals: list[AnimalResult]) -> str:
    """One band per animal, one row per behaviour/zone: time on x, coloured where true."""
    import matplotlib.pyplot as plt

    cols = sorted({c for a in animals for c in ethogram_columns(a.frames)})
    if not cols:
        return '<p class="note">No per-frame behaviours or zones in this protocol.</p>'
    colours = {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(cols)}
    fig, ax = plt.subplots(figsize=(11, 0.32 * len(animals) * len(cols) + 1.2))
    y = 0.0
    ticks, labels = [], []
    for a in animals[::-1]:
        t = a.frames["time_s"].to_numpy()
        dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
        for c in cols:
            if c in a.frames:
                v = a.frames[c].to_numpy(bool)
                edges = np.flatnonzero(np.diff(np.r_[0, v.astype(int), 0]))
                spans = [(t[s], (e - s) * dt) for s, e in zip(edges[::2], edges[1::2], strict=True)]
                ax.broken_barh(spans, (y, 0.8), color=colours[c])
            y += 1
        ticks.append(y - len(cols) / 2)
        labels.append(a.key)
        y += 0.6
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("time (s)")
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colours[c]) for c in cols], labels=cols,
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="state")
    fig.tight_layout()
    return _img(fig, "ethograms")


def plot_gait(animals: list[AnimalResult], table: pd.DataFrame, colours: dict[str, str]) -> str:
    """Stride length against cadence per animal, and the centre's speed over time."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    if {"stride_length_mm", "cadence_hz"} <= set(table.columns):
        for g, sub in table.groupby(table["group"].astype(str)):
            a1.scatter(sub["cadence_hz"], sub["stride_length_mm"], color=colours.get(g, "k"), label=g)
        a1.set_xlabel("cadence (Hz)")
        a1.set_ylabel("stride length (mm)")
        a1.legend(fontsize=8)
    for a in animals:
        a2.plot(a.frames["time_s"], a.frames["speed_mm_s"], lw=0.7, color=colours.get(a.group, "k"))
    a2.set_xlabel("time (s)")
    a2.set_ylabel("body speed (mm/s)")
    fig.tight_layout()
    return _img(fig, "gait")


def _provenance(protocol: Protocol, run_info: dict[str, Any], animals: list[AnimalResult]) -> str:
    filt = [f.model_dump() for f in protocol.filters]
    parts = [
        "<table class='prov'>",
        f"<tr><td>ethopose version</td><td>{html.escape(str(run_info.get('ethopose_version', '?')))}</td></tr>",
        f"<tr><td>pose model</td><td>{html.escape(str(run_info.get('model_dir') or 'none (pose files given)'))}</td></tr>",
        f"<tr><td>protocol</td><td>{html.escape(protocol.name)} ({protocol.assay})</td></tr>",
        f"<tr><td>filters (in order)</td><td>{html.escape(json.dumps(filt))}</td></tr>",
        f"<tr><td>cohort</td><td>{html.escape(str(run_info.get('cohort_csv', '?')))}</td></tr>",
        f"<tr><td>scheduler / workers</td><td>{html.escape(str(run_info.get('scheduler')))} / {run_info.get('n_workers')}</td></tr>",
        f"<tr><td>run</td><td>{html.escape(str(run_info.get('started')))} to {html.escape(str(run_info.get('finished')))}</td></tr>",
        "</table>",
        "<details><summary>Protocol YAML (as run)</summary><pre>"
        + html.escape(protocol_yaml(protocol)) + "</pre></details>",
    ]
    for a in animals:
        src = a.meta.get("pose_path") or a.meta.get("video_path")
        parts.append(f"<details><summary>Pose history of {html.escape(a.key)} ({html.escape(str(src))})</summary><pre>"
                     + html.escape(json.dumps(a.history, indent=1)) + "</pre></details>")
    return "\n".join(parts)


_QC_COLUMNS = ("subject_id", "session", "group", "qc_flag", "qc_reasons", "qc_low_confidence_pct",
               "qc_jumps_per_min", "qc_interpolated_pct", "qc_swap_suspects_per_min", "coverage_pct", "quality_flag")


def _quality_section(table: pd.DataFrame, exclusions: pd.DataFrame) -> list[str]:
    """Per-animal data and tracking quality, and the animals left out of the statistics."""
    if not len(table) or "qc_flag" not in table:
        return []
    cols = [c for c in _QC_COLUMNS if c in table]
    flagged = table[table["qc_flag"].astype(str) != "ok"]
    h = ["<h2>Data and tracking quality</h2>",
         "<p class='note'>Measured on each animal's pose as loaded: % of required-keypoint samples below the "
         "confidence cut-off, jumps of the centre per minute, % of frames filled in by the filters, identity-swap "
         "suspects per minute (several animals in the file); and problems "
         "of the input (truncated video, frame-count mismatch). Limits: the protocol's <code>qc</code> section "
         "(fail above a limit, warn above its warn fraction).</p>",
         f"<p><b>{len(flagged)}</b> of {len(table)} animals flagged.</p>",
         _table_html(flagged[cols] if len(flagged) else flagged)]
    if exclusions is not None and len(exclusions):
        n_used = len(table) - len(exclusions)
        h += ["<h3>Excluded from the statistics</h3>",
              f"<p><b>The group statistics use {n_used} of {len(table)} animals.</b> Left out by the protocol's "
              "QC rules:</p>", _table_html(exclusions)]
    else:
        h.append(f"<p>No animal was excluded from the statistics ({len(table)} used).</p>")
    return h


def _interval_section(table: pd.DataFrame) -> list[str]:
    """Pose-uncertainty intervals (protocols.uncertainty) and the endpoints they could explain."""
    from protocols.uncertainty import interval_summary

    summ = interval_summary(table) if len(table) else pd.DataFrame()
    if not len(summ):
        return []
    eps = list(summ["endpoint"])
    per = table[[c for c in ("subject_id", "group") if c in table]].copy()
    for e in eps:
        per[e] = [f"{v:.4g} [{lo:.4g}, {hi:.4g}]" for v, lo, hi in zip(table[e], table[f"{e}_lo"], table[f"{e}_hi"], strict=True)]
    wide = summ[summ["wider_than_difference"]]
    h = ["<h2>Pose-uncertainty intervals</h2>",
         "<p class='note'>95 % intervals from the tracking error alone (parametric bootstrap of the animal's own "
         "jitter and of the frames it was not tracked in, bias-corrected; protocols.uncertainty). Their coverage of "
         "the truth on the virtual mouse is in bench/results/endpoint_uncertainty.md. An endpoint is flagged when "
         "its median interval is wider than the difference between the group means: tracking error alone could "
         "account for the group effect.</p>"]
    if len(wide):
        h.append(f"<p><b>Interval wider than the group difference: {html.escape(', '.join(wide['endpoint']))}.</b></p>")
    h += [_table_html(summ), "<h3>Per animal: value [lo, hi]</h3>", _table_html(per)]
    return h


def _manifest_section(manifest: dict[str, Any]) -> str:
    if not manifest:
        return '<p class="note">No manifest.json (results written by an older ethopose).</p>'
    rows = "".join(f"<tr><td>{html.escape(str(e.get('role')))}</td><td>{html.escape(str(e.get('animal', '')))}</td>"
                   f"<td>{html.escape(str(e.get('path')))}</td><td>{e.get('bytes')}</td>"
                   f"<td><code>{html.escape(str(e.get('sha256', ''))[:16])}</code></td></tr>"
                   for e in manifest.get("inputs", []))
    pk = ", ".join(f"{k} {v}" for k, v in manifest.get("packages", {}).items())
    return "\n".join([
        "<h3>Manifest (manifest.json; check with <code>ethopose verify</code>)</h3><table class='prov'>",
        f"<tr><td>command</td><td><code>{html.escape(' '.join(map(str, manifest.get('command', []))))}</code></td></tr>",
        f"<tr><td>started / finished</td><td>{html.escape(str(manifest.get('started')))} / "
        f"{html.escape(str(manifest.get('finished')))}</td></tr>",
        f"<tr><td>seeds</td><td>{html.escape(json.dumps(manifest.get('seeds', {})))}</td></tr>",
        f"<tr><td>packages</td><td>{html.escape(pk)}</td></tr></table>",
        "<details><summary>Input files and their SHA-256 "
        f"({len(manifest.get('inputs', []))})</summary><table class='prov'><tr><th>role</th><th>animal</th>"
        f"<th>path</th><th>bytes</th><th>sha256 (first 16)</th></tr>{rows}</table></details>"])


def render_report(
    root: Path, protocol: Protocol, table: pd.DataFrame, stats: dict[str, pd.DataFrame],
    run_info: dict[str, Any], *, validation: dict[str, pd.DataFrame] | None = None,
    failures: pd.DataFrame | None = None, max_animals: int = 16,
    exclusions: pd.DataFrame | None = None, manifest: dict[str, Any] | None = None,
) -> str:
    """The report as one HTML string (no files read except the animals' folders)."""
    from protocols.stats import endpoint_columns

    keys = finished_animals(root)
    animals = [load_animal(root, k) for k in keys[:max_animals]]
    colours = _group_colours(list(table["group"].astype(str).unique()) if len(table) else [])
    endpoints = [c for c in endpoint_columns(table) if not c.startswith("qc_")] if len(table) else []
    out_ids = set() if exclusions is None or not len(exclusions) else set(exclusions["subject_id"].astype(str))
    plotted = table[~table["subject_id"].astype(str).isin(out_ids)] if len(table) else table
    tests = stats.get("group_tests", pd.DataFrame())
    h = [f"<!doctype html><html><head><meta charset='utf-8'><title>ethopose report: {html.escape(protocol.name)}</title>",
         f"<style>{_CSS}</style></head><body>",
         f"<h1>ethopose report: {html.escape(protocol.name)}</h1>",
         f"<p>{html.escape(protocol.description)}</p>",
         f"<p><b>{len(table)}</b> animals analysed in {table['group'].nunique() if len(table) else 0} groups; "
         f"<b>{0 if failures is None else len(failures)}</b> failed. ethopose {html.escape(str(run_info.get('ethopose_version', '?')))}.</p>",
         *_quality_section(table, exclusions if exclusions is not None else pd.DataFrame()),
         "<h2>Group comparison</h2>",
         "<p class='note'>Two groups: Welch's t-test and Mann-Whitney U, effect = Hedges' g of (group - reference), "
         "the reference being the first group in sorted order. More groups: one-way ANOVA and Kruskal-Wallis, effect = "
         "eta squared. p_holm / p_bh: Holm and Benjamini-Hochberg corrections across the endpoints. "
         "Rows with p_holm &lt; 0.05 are highlighted.</p>"]
    if len(tests):
        cols = [c for c in ("endpoint", "groups", "test", "statistic", "p", "p_holm", "p_bh", "effect_size_name",
                            "effect_size", "mean_difference", "test_np", "p_np", "p_np_holm") if c in tests]
        h.append(_table_html(tests[cols], highlight="p_holm"))
    h += _interval_section(plotted)
    if endpoints and len(table):
        h += ["<h2>Endpoints by group</h2>", plot_group_endpoints(plotted, endpoints, tests),
              "<h3>Group summary</h3>", _table_html(stats.get("group_summary", pd.DataFrame()))]
    dr = stats.get("dose_response", pd.DataFrame())
    if dr is not None and len(dr):
        h += ["<h2>Dose-response</h2><p class='note'>Spearman correlation and least-squares line on dose.</p>",
              _table_html(dr)]
    h += ["<h2>Per-animal endpoints</h2>", _table_html(table)]
    if animals:
        from protocols.report_threed import is_3d, threed_section

        flat = [a for a in animals if not is_3d(a)]
        if protocol.assay == "gait":
            h += ["<h2>Gait</h2>", plot_gait(animals, table, colours)]
        elif flat:
            h += ["<h2>Trajectories</h2>", plot_trajectories(flat, colours),
                  "<h2>Occupancy heatmaps</h2>", plot_heatmaps(flat)]
        h += threed_section(animals, colours)  # triangulated sessions: 3D path (mm) and heights
        h += ["<h2>Ethograms</h2>", plot_ethograms(animals)]
        if len(keys) > max_animals:
            h.append(f"<p class='note'>Plots show the first {max_animals} of {len(keys)} animals.</p>")
    if validation:
        h.append("<h2>Validation against human scoring</h2>")
        for name, df in validation.items():
            h += [f"<h3>{html.escape(name)}</h3>", _table_html(df)]
    if failures is not None and len(failures):
        h += ["<h2>Failures</h2>", _table_html(failures)]
    h += ["<h2>Provenance</h2>", _provenance(protocol, run_info, animals), _manifest_section(manifest or {}),
          "</body></html>"]
    return "\n".join(h)


def write_report(
    root: Path, protocol: Protocol, table: pd.DataFrame, stats: dict[str, pd.DataFrame],
    run_info: dict[str, Any], *, validation: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Write ``root/report.html`` atomically and return its path."""
    res = load_results(root)
    text = render_report(Path(root), protocol, table, stats, run_info, validation=validation, failures=res.failures,
                         exclusions=res.exclusions, manifest=res.manifest)
    return write_text_atomic(Path(root) / "report.html", text)


def rebuild_report(root: str | Path, *, human_scoring: str | Path | None = None) -> Path:
    """Re-render ``report.html`` from a results folder, optionally with human scoring."""
    res = load_results(Path(root))
    validation = None
    if human_scoring is not None:
        from protocols.validation import validate_against_human

        validation = validate_against_human(res.root, res.table, Path(human_scoring))
    assert res.protocol is not None
    return write_report(res.root, res.protocol, res.table, res.stats, res.run_info, validation=validation)
