"""Endpoints by group, with the statistics of the run."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from dashboard.data import get_root, open_results, require_results
from protocols.stats import endpoint_columns

st.title("Endpoints by group")
root = get_root()
rel = require_results(root)
res = open_results(root, rel)
if res.table.empty:
    st.warning("No animal finished in this results folder.")
    st.stop()
eps = endpoint_columns(res.table)
ep = st.selectbox("Endpoint", eps, key="ep_endpoint")
tests = res.stats.get("group_tests")
row = tests[tests["endpoint"] == ep] if tests is not None and len(tests) else None
fig = px.box(res.table, x="group", y=ep, points="all", color="group", hover_data=["subject_id", "sex", "dose"])
fig.update_layout(height=420, showlegend=False)
st.plotly_chart(fig, key="ep_box")
if row is not None and len(row):
    r = row.iloc[0]
    c1, c2, c3 = st.columns(3)
    c1.metric(r["test"], f"p = {r['p']:.3g}", help=f"Holm-corrected p = {r['p_holm']:.3g}; BH = {r['p_bh']:.3g}")
    c2.metric(r["effect_size_name"] or "effect size", f"{r['effect_size']:.2f}")
    c3.metric(r["test_np"], f"p = {r['p_np']:.3g}")
st.subheader("All endpoints")
st.dataframe(tests, hide_index=True)
st.subheader("Group summary")
st.dataframe(res.stats.get("group_summary"), hide_index=True)
dr = res.stats.get("dose_response")
if dr is not None and len(dr):
    st.subheader("Dose-response")
    st.dataframe(dr, hide_index=True)
    if res.table["dose"].notna().any():
        st.plotly_chart(px.scatter(res.table, x="dose", y=ep, color="group", trendline=None), key="ep_dose")
