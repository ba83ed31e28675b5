"""Publication-ready figures of the result pages, as pure functions (tested without a browser).

- :func:`readable_name`: ``mean_speed_mm_s`` -> ``"Mean speed (mm/s)"``: every axis gets a
  readable name and its unit, read from the endpoint's name (ethopose names carry their
  units: ``_mm`` when the arena is calibrated, ``_px`` when it is not).
- :data:`OKABE_ITO`, :func:`group_colours`: Okabe & Ito's colour-blind-safe palette, the
  reference (control) group first.
- :func:`endpoint_figure`: box per group with every animal as a point; per-animal
  intervals (``<endpoint>_lo``/``_hi`` columns, protocols.uncertainty) as a segment beside each animal.
- :func:`p_text`: the raw p beside the Holm- and BH-corrected ones, or "n too small".
- :func:`agreement_scatter`, :func:`bland_altman_figure`: human vs ethopose with the
  identity line, and differences vs means with the bias and limits of agreement
  (:func:`behavior.agreement.bland_altman`).
- :func:`download_config`: plotly's camera button saves the figure as SVG or PNG.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from protocols.stats import FLAG_COLUMN, usable_rows

#: Okabe & Ito (2008) palette, black last
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
_UNITS = [("_mm_s", "mm/s"), ("_px_s", "px/s"), ("_deg_s", "°/s"), ("_mm", "mm"), ("_px", "px"), ("_pct", "%"),
          ("_deg", "°"), ("_hz", "Hz"), ("_s", "s"), ("_count", "count"), ("_per_min", "per min")]
_WORDS = {"pct": "%", "qc": "QC"}
FONT = {"family": "Arial, Helvetica, sans-serif", "size": 14, "color": "#000000"}
INTERVAL_SUFFIXES = ("_lo", "_hi")


def split_unit(name: str) -> tuple[str, str | None]:
    """``("mean_speed", "mm/s")`` from ``"mean_speed_mm_s"``; no unit -> ``(name, None)``."""
    for suffix, unit in _UNITS:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], unit
    return name, None


def readable_name(name: str) -> str:
    """An axis title: words, capital first letter, unit in brackets (``"Centre time (%)"``)."""
    base, unit = split_unit(str(name))
    words = [_WORDS.get(w, w) for w in re.split(r"_+", base) if w]
    text = " ".join(words)
    text = text[:1].upper() + text[1:] if text else str(name)
    return f"{text} ({unit})" if unit else text


def endpoints_with_intervals(columns: Sequence[str]) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Endpoint columns without their interval columns, and ``{endpoint: (lo, hi)}`` where both exist."""
    cols = list(columns)
    pairs = {c: (f"{c}_lo", f"{c}_hi") for c in cols if f"{c}_lo" in cols and f"{c}_hi" in cols}
    bounds = {b for lo_hi in pairs.values() for b in lo_hi}
    return [c for c in cols if c not in bounds], pairs


def group_colours(groups: Sequence[str], reference: str | None = None) -> dict[str, str]:
    """Okabe-Ito colour per group; ``reference`` (default the first) gets the first colour."""
    order = list(dict.fromkeys(map(str, groups)))
    if reference is not None and str(reference) in order:
        order.remove(str(reference))
        order.insert(0, str(reference))
    return {g: OKABE_ITO[i % len(OKABE_ITO)] for i, g in enumerate(order)}


def _jitter(n: int, seed: int, width: float = 0.12) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-width, width, n)


def endpoint_figure(table: pd.DataFrame, endpoint: str, *, group_col: str = "group",
                    groups: Sequence[str] | None = None, interval: tuple[str, str] | None = None,
                    height: int = 440) -> go.Figure:
    """Box per group and every animal as a point (with its interval when given).

    Parameters
    ----------
    table
        Per-animal table (``endpoints.csv``).
    endpoint
        Column to plot; its readable name and unit label the y axis.
    groups
        Group order (default: sorted); colours follow :func:`group_colours`.
    interval
        ``(lo, hi)`` columns of per-animal intervals, drawn as a segment lo..hi at each animal (not as error bars around its value: a bias-corrected interval need not contain it).

    Animals the statistics leave out (a QC flag other than ``ok``,
    :func:`protocols.stats.usable_rows`) are drawn as grey crosses beside their group and do
    not enter its box, so the figure shows the same animals as the test.
    """
    groups = [str(g) for g in (groups if groups is not None else sorted(table[group_col].dropna().unique(), key=str))]
    colours = group_colours(groups)
    used = usable_rows(table)
    fig = go.Figure()
    for i, g in enumerate(groups):
        in_group = table[group_col].astype(str) == g
        left_out = table[in_group & ~used]
        if len(left_out):
            flags = (left_out[FLAG_COLUMN].astype(str) if FLAG_COLUMN in left_out
                     else pd.Series("flagged", index=left_out.index))
            ids_out = (left_out["subject_id"].astype(str) if "subject_id" in left_out
                       else pd.Series(left_out.index.astype(str), index=left_out.index))
            fig.add_trace(go.Scatter(
                x=np.full(len(left_out), i + 0.3), y=pd.to_numeric(left_out[endpoint], errors="coerce"),
                mode="markers", name=f"{g}: left out", showlegend=False,
                marker={"symbol": "x-thin", "size": 10, "color": "#888888", "line": {"color": "#888888", "width": 2}},
                text=[f"{a} (left out: {f})" for a, f in zip(ids_out, flags, strict=True)],
                hovertemplate="%{text}: %{y:.3g}<extra></extra>"))
        sub = table[in_group & used]
        y = pd.to_numeric(sub[endpoint], errors="coerce").to_numpy(float)
        fig.add_trace(go.Box(x=np.full(len(y), i), y=y, name=g, marker_color=colours[g], boxpoints=False,
                             line={"width": 1.5}, fillcolor="rgba(0,0,0,0)", showlegend=False, hoverinfo="skip"))
        x = i + _jitter(len(y), i)
        if interval is not None:
            # Each interval as its own segment lo..hi: a bias-corrected interval need not
            # contain the raw value (distance at heavy pose error), so no error bar around y.
            lo = pd.to_numeric(sub[interval[0]], errors="coerce").to_numpy(float)
            hi = pd.to_numeric(sub[interval[1]], errors="coerce").to_numpy(float)
            fig.add_trace(go.Scatter(
                x=np.column_stack([x, x, np.full(len(x), np.nan)]).ravel(),
                y=np.column_stack([lo, hi, np.full(len(x), np.nan)]).ravel(),
                mode="lines", name=f"{g}: 95 % interval", showlegend=False, hoverinfo="skip",
                line={"color": colours[g], "width": 1}))
        ids = sub["subject_id"].astype(str).to_numpy() if "subject_id" in sub else np.array([""] * len(y))
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name=g,
                                 marker={"color": colours[g], "size": 9, "line": {"color": "black", "width": 0.5}},
                                 text=ids, hovertemplate="%{text}: %{y:.3g}<extra>" + g + "</extra>"))
    fig.update_xaxes(tickvals=list(range(len(groups))), ticktext=groups, title_text="Group",
                     range=[-0.6, len(groups) - 0.4], showline=True, linecolor="black", ticks="outside")
    fig.update_yaxes(title_text=readable_name(endpoint), showline=True, linecolor="black", ticks="outside",
                     zeroline=False, gridcolor="#eeeeee")
    fig.update_layout(height=height, template="simple_white", font=FONT, showlegend=False,
                      margin={"l": 70, "r": 20, "t": 30, "b": 60})
    return fig


def _fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def p_text(row: pd.Series | dict, *, which: Literal["parametric", "rank"] = "parametric") -> str:
    """``"p = 0.012 (Holm 0.048, BH 0.030)"``; ``"n too small ..."`` when the test was not run."""
    key = "p" if which == "parametric" else "p_np"
    p = row.get(key)
    if p is None or not np.isfinite(float(p)):
        test = str(row.get("test", ""))
        why = test[test.find("(") + 1: test.rfind(")")] if "(" in test else "need >= 2 animals per group"
        return f"n too small ({why})"
    holm, bh = row.get(f"{key}_holm"), row.get(f"{key}_bh")
    corrected = ", ".join(f"{n} {float(v):.3g}" for n, v in (("Holm", holm), ("BH", bh))
                          if v is not None and np.isfinite(float(v)))
    return _fmt_p(float(p)) + (f" ({corrected})" if corrected else "")


def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def agreement_scatter(human: Sequence[float], ours: Sequence[float], name: str, *,
                      labels: Sequence[str] | None = None, height: int = 420) -> go.Figure:
    """ethopose against the human score, one point per animal, with the identity line y = x."""
    h, e = _paired(human, ours)
    lo = float(min(h.min(), e.min())) if h.size else 0.0
    hi = float(max(h.max(), e.max())) if h.size else 1.0
    pad = 0.05 * max(hi - lo, 1e-9)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[lo - pad, hi + pad], y=[lo - pad, hi + pad], mode="lines", name="identity (y = x)",
                             line={"color": "#555555", "dash": "dash", "width": 1}))
    fig.add_trace(go.Scatter(x=h, y=e, mode="markers", name="animals", text=list(labels) if labels is not None else None,
                             marker={"color": OKABE_ITO[0], "size": 9, "line": {"color": "black", "width": 0.5}},
                             hovertemplate="%{text}: human %{x:.3g}, ethopose %{y:.3g}<extra></extra>"))
    title = readable_name(name)
    fig.update_xaxes(title_text=f"{title}, human", range=[lo - pad, hi + pad], showline=True, linecolor="black")
    fig.update_yaxes(title_text=f"{title}, ethopose", range=[lo - pad, hi + pad], showline=True, linecolor="black",
                     scaleanchor="x", scaleratio=1)
    # no in-figure title (it collides with plotly's toolbar in a half-width column; the page
    # heads the figure): ``meta`` names it
    fig.update_layout(height=height, template="simple_white", font=FONT, meta={"kind": "agreement", "n": int(h.size)},
                      legend={"orientation": "h", "y": -0.2}, margin={"l": 70, "r": 20, "t": 30, "b": 60})
    return fig


def bland_altman_figure(human: Sequence[float], ours: Sequence[float], name: str, *,
                        labels: Sequence[str] | None = None, height: int = 420) -> go.Figure:
    """Bland-Altman: ethopose - human against their mean; bias (with its 95 % CI) and limits of agreement.

    Raises
    ------
    ValueError
        Fewer than 2 complete pairs (from :func:`behavior.agreement.bland_altman`).
    """
    from behavior.agreement import bland_altman

    h, e = _paired(human, ours)
    ba = bland_altman(e, h)
    mean, diff = (h + e) / 2, e - h
    x0, x1 = float(mean.min()), float(mean.max())
    pad = 0.08 * max(x1 - x0, 1e-9)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=mean, y=diff, mode="markers", name="animals",
                             text=list(labels) if labels is not None else None,
                             marker={"color": OKABE_ITO[0], "size": 9, "line": {"color": "black", "width": 0.5}},
                             hovertemplate="%{text}: mean %{x:.3g}, difference %{y:.3g}<extra></extra>"))
    fig.add_hrect(y0=ba["bias_ci_low"], y1=ba["bias_ci_high"], fillcolor=OKABE_ITO[1], opacity=0.15, line_width=0)
    # labels: the bias above its line on the left, the limits right, above (+) and below (-) their
    # lines, so they stay apart when the limits come close (a small n, equal differences)
    for y, label, dash, where in ((ba["bias"], f"bias {ba['bias']:.3g}", "solid", "top left"),
                                  (ba["loa_low"], f"−1.96 SD {ba['loa_low']:.3g}", "dash", "bottom right"),
                                  (ba["loa_high"], f"+1.96 SD {ba['loa_high']:.3g}", "dash", "top right")):
        fig.add_hline(y=y, line={"color": OKABE_ITO[5] if dash == "solid" else "#555555", "dash": dash, "width": 1},
                      annotation_text=label, annotation_position=where)
    fig.add_hline(y=0, line={"color": "#bbbbbb", "width": 1})
    title = readable_name(name)
    base, unit = split_unit(name)
    fig.update_xaxes(title_text=f"Mean of human and ethopose: {title}", range=[x0 - pad, x1 + pad], showline=True,
                     linecolor="black")
    fig.update_yaxes(title_text="ethopose − human" + (f" ({unit})" if unit else ""), showline=True, linecolor="black")
    fig.update_layout(height=height, template="simple_white", font=FONT, showlegend=False,
                      meta={"kind": "bland_altman", "n": int(ba["n"])}, margin={"l": 70, "r": 20, "t": 30, "b": 60})
    return fig


def download_config(filename: str, fmt: Literal["svg", "png"] = "svg") -> dict:
    """plotly config: the camera button of the figure saves it as ``fmt`` (PNG at 3x scale)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", filename).strip("_") or "figure"
    return {"displaylogo": False, "toImageButtonOptions": {"format": fmt, "filename": safe, "scale": 3 if fmt == "png" else 1},
            "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


_SYMBOLS = ["circle", "triangle-up", "square", "diamond", "cross", "x"]


def two_way_figure(table: pd.DataFrame, endpoint: str, factor: str, *, group_col: str = "group",
                   groups: Sequence[str] | None = None, height: int = 440) -> go.Figure:
    """Every animal as a point by group (colour) and ``factor`` level (symbol, side by side),
    each cell's mean +- SEM as a bar beside its points."""
    groups = [str(g) for g in (groups if groups is not None else sorted(table[group_col].dropna().unique(), key=str))]
    levels = sorted(table[factor].dropna().astype(str).unique())
    colours = group_colours(groups)
    width = 0.5 / max(len(levels), 1)
    fig = go.Figure()
    for i, g in enumerate(groups):
        for j, lev in enumerate(levels):
            sub = table[(table[group_col].astype(str) == g) & (table[factor].astype(str) == lev)]
            y = pd.to_numeric(sub[endpoint], errors="coerce").dropna().to_numpy(float)
            x0 = i + (j - (len(levels) - 1) / 2) * width
            ids = sub["subject_id"].astype(str).tolist() if "subject_id" in sub else None
            fig.add_trace(go.Scatter(
                x=x0 + _jitter(len(y), 10 * i + j, width / 4), y=y, mode="markers", name=f"{factor} {lev}",
                legendgroup=lev, showlegend=i == 0, text=ids,
                marker={"color": colours[g], "symbol": _SYMBOLS[j % len(_SYMBOLS)], "size": 9,
                        "line": {"color": "black", "width": 0.5}},
                hovertemplate="%{text}: %{y:.3g}<extra>" + f"{g}, {factor} {lev}" + "</extra>"))
            if len(y):
                sem = float(y.std(ddof=1) / np.sqrt(len(y))) if len(y) > 1 else 0.0
                fig.add_trace(go.Scatter(x=[x0 + width / 3], y=[float(y.mean())], mode="markers", showlegend=False,
                                         marker={"color": "black", "symbol": "line-ew-open", "size": 14},
                                         error_y={"type": "data", "array": [sem], "color": "black", "width": 4},
                                         hoverinfo="skip"))
    fig.update_xaxes(tickvals=list(range(len(groups))), ticktext=groups, title_text="Group",
                     range=[-0.6, len(groups) - 0.4], showline=True, linecolor="black", ticks="outside")
    fig.update_yaxes(title_text=readable_name(endpoint), showline=True, linecolor="black", ticks="outside",
                     zeroline=False, gridcolor="#eeeeee")
    fig.update_layout(height=height, template="simple_white", font=FONT, legend={"title": {"text": factor.capitalize()}},
                      margin={"l": 70, "r": 20, "t": 30, "b": 60})
    return fig


def time_course_figure(bins: pd.DataFrame, endpoint: str, *, groups: Sequence[str] | None = None,
                       height: int = 440) -> go.Figure:
    """Mean +- SEM per group over the time bins, every animal as a thin line.

    Parameters
    ----------
    bins
        One row per animal and bin: ``subject_id``, ``group``, ``bin``, ``start_s``, ``end_s``
        and ``endpoint`` (:func:`dashboard.design.binned_endpoints` per animal).
    """
    bins = bins.reset_index(drop=True)
    groups = [str(g) for g in (groups if groups is not None else sorted(bins["group"].dropna().unique(), key=str))]
    colours = group_colours(groups)
    minutes = float(bins["end_s"].max()) >= 180
    scale, unit = (60.0, "min") if minutes else (1.0, "s")
    mid = (bins["start_s"] + bins["end_s"]) / 2 / scale
    fig = go.Figure()
    for g in groups:
        sub = bins[bins["group"].astype(str) == g].assign(mid=mid)
        for sid, one in sub.groupby("subject_id", sort=True):
            fig.add_trace(go.Scatter(x=one["mid"], y=one[endpoint], mode="lines", showlegend=False,
                                     line={"color": colours[g], "width": 0.8}, opacity=0.35,
                                     hovertemplate=f"{sid}: " + "%{y:.3g}<extra>" + g + "</extra>"))
        agg = sub.groupby("bin").agg(mid=("mid", "first"), mean=(endpoint, "mean"), sd=(endpoint, "std"),
                                     n=(endpoint, "count")).reset_index()
        sem = (agg["sd"] / np.sqrt(agg["n"])).fillna(0.0)
        fig.add_trace(go.Scatter(x=agg["mid"], y=agg["mean"], mode="lines+markers", name=g,
                                 line={"color": colours[g], "width": 2.5},
                                 marker={"color": colours[g], "size": 8, "line": {"color": "black", "width": 0.5}},
                                 error_y={"type": "data", "array": sem, "color": colours[g], "thickness": 1.5, "width": 4},
                                 hovertemplate="%{x:.3g} " + unit + ": mean %{y:.3g}<extra>" + g + "</extra>"))
    fig.update_xaxes(title_text=f"Time ({unit}, bin centre)", showline=True, linecolor="black", ticks="outside",
                     rangemode="tozero")
    fig.update_yaxes(title_text=readable_name(endpoint), showline=True, linecolor="black", ticks="outside",
                     zeroline=False, gridcolor="#eeeeee")
    fig.update_layout(height=height, template="simple_white", font=FONT, legend={"title": {"text": "Group"}},
                      margin={"l": 70, "r": 20, "t": 30, "b": 60})
    return fig
