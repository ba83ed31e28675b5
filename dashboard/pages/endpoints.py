"""Endpoints by group, with the statistics of the run (figures ready to publish)."""

from __future__ import annotations

import streamlit as st

from dashboard.data import get_root, open_results, require_results
from dashboard.design_view import time_course_section, two_way_section
from dashboard.plots import (
    download_config,
    endpoint_figure,
    endpoints_with_intervals,
    group_colours,
    p_text,
    readable_name,
)
from protocols.stats import endpoint_columns, usable_rows

st.title("Endpoints by group")
root = get_root()
rel = require_results(root)
res = open_results(root, rel)
if res.table.empty:
    st.warning("No animal finished in this results folder.")
    st.stop()
eps, intervals = endpoints_with_intervals(endpoint_columns(res.table))
ep = st.selectbox("Endpoint", eps, key="ep_endpoint", format_func=lambda c: f"{readable_name(c)} · {c}")
fmt = st.sidebar.radio("Figure download format", ["svg", "png"], key="fig_format", horizontal=True,
                       help="the camera button at the top right of each figure saves it in this format")
tests = res.stats.get("group_tests")
row = tests[tests["endpoint"] == ep] if tests is not None and len(tests) else None
groups = sorted(res.table["group"].dropna().astype(str).unique())
fig = endpoint_figure(res.table, ep, groups=groups, interval=intervals.get(ep))
st.plotly_chart(fig, key="ep_box", config=download_config(f"{ep}_by_group", fmt))
used = usable_rows(res.table)
counts = res.table[used].groupby("group")[ep].count()
left_out = res.table[~used].groupby("group")[ep].count()
st.caption(" · ".join(f"{g}: n = {int(counts.get(g, 0))}"
                      + (f" (+{int(left_out[g])} left out, grey ×)" if left_out.get(g, 0) else "") for g in groups)
           + (" · error bars: per-animal interval from "
              f"`{intervals[ep][0]}` / `{intervals[ep][1]}`" if ep in intervals else "")
           + f" · camera button (top right of the figure): download as {fmt.upper()}")
if row is not None and len(row):
    r = row.iloc[0]
    c1, c2, c3 = st.columns(3)
    for col, which, name in ((c1, "parametric", r["test"]), (c3, "rank", r["test_np"])):
        text = p_text(r, which=which)
        small = text.startswith("n too small")
        col.metric("test" if small else str(name), "n too small" if small else text.split(" (")[0],
                   help="raw p; beside it the Holm- and Benjamini-Hochberg-corrected p across this run's endpoints")
        col.caption(text)
    effect = r.get("effect_size")
    c2.metric(r["effect_size_name"] or "effect size", "–" if effect != effect else f"{effect:.2f}")
    if r.get("n_excluded", 0):
        st.caption(f"left out of the test: {r['excluded']}")
two_way_section(res.table, ep, groups, fmt)
time_course_section(root, rel, res, ep, groups, fmt)
st.subheader("All endpoints")
if tests is not None and len(tests):
    shown = tests.copy()
    shown.insert(1, "name", [readable_name(e) for e in shown["endpoint"]])
    shown.insert(2, "p (corrected)", [p_text(r) for _, r in shown.iterrows()])
    st.dataframe(shown, hide_index=True)
st.subheader("Group summary")
st.dataframe(res.stats.get("group_summary"), hide_index=True)
dr = res.stats.get("dose_response")
if dr is not None and len(dr):
    st.subheader("Dose-response")
    st.dataframe(dr, hide_index=True)
    if res.table["dose"].notna().any():
        import plotly.express as px

        dose_fig = px.scatter(res.table, x="dose", y=ep, color="group",
                              color_discrete_map=group_colours(groups),
                              labels={"dose": "Dose", ep: readable_name(ep), "group": "Group"})
        dose_fig.update_layout(template="simple_white")
        st.plotly_chart(dose_fig, key="ep_dose", config=download_config(f"{ep}_dose_response", fmt))
