"""Ethogram: behaviours and zone occupancy over time, per animal."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard.data import get_root, open_animal, require_animals, require_results
from dashboard.plots import OKABE_ITO
from protocols.report import ethogram_columns

st.title("Ethogram")
root = get_root()
rel = require_results(root)
keys = require_animals(root, rel)
chosen = st.multiselect("Animals", keys, default=keys[: min(8, len(keys))], key="eth_animals")
animals = [open_animal(root, rel, k) for k in chosen]
cols = sorted({c for a in animals for c in ethogram_columns(a.frames)})
if not cols:
    st.info("This protocol has no per-frame behaviours or zones to draw.")
    st.stop()
show = st.multiselect("States", cols, default=cols, key="eth_states")
fig = go.Figure()
palette = OKABE_ITO  # colour-blind safe, as the other figures
for ci, c in enumerate(show):
    xs, ys = [], []
    for a in animals:
        if c not in a.frames:
            continue
        t = a.frames["time_s"].to_numpy()
        v = a.frames[c].to_numpy(bool)
        edges = np.flatnonzero(np.diff(np.r_[0, v.astype(int), 0]))
        for s, e in zip(edges[::2], edges[1::2], strict=True):
            xs += [t[s], t[min(e, len(t) - 1)], None]
            ys += [f"{a.key} · {c}"] * 2 + [None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"width": 12, "color": palette[ci % len(palette)]}, name=c))
order = [f"{a.key} · {c}" for a in animals for c in show]
fig.update_yaxes(categoryorder="array", categoryarray=order[::-1])
fig.update_layout(height=max(300, 28 * len(animals) * len(show) + 120), xaxis_title="time (s)",
                  margin={"l": 10, "r": 10, "t": 20})
st.plotly_chart(fig, key="eth_fig")
rows = []
for a in animals:
    for c in show:
        if c in a.frames:
            rows.append({"animal": a.key, "group": a.group, "state": c,
                         "time %": 100 * a.frames[c].mean(), "seconds": a.frames[c].sum() / (a.fps or 1)})
st.dataframe(rows, hide_index=True)
