"""Cohort overview: protocol, animals per group, failures, run provenance."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.data import get_root, open_results, selected_results
from dashboard.qc_table import animal_key, qc_table, style_qc

st.title("Cohort overview")
root = get_root()
rel = selected_results(root)
if rel is None:
    st.info(f"No 'ethopose run' results under {root}. Use **Run a protocol** or "
            "`ethopose run PROTOCOL COHORT.csv --out DIR`.")
    st.stop()
res = open_results(root, rel)
proto = res.protocol
info = res.run_info
c1, c2, c3, c4 = st.columns(4)
c1.metric("Protocol", proto.name if proto else "?")
c2.metric("Animals analysed", len(res.table))
c3.metric("Groups", int(res.table["group"].nunique()) if len(res.table) else 0)
c4.metric("Failed", len(res.failures))
if proto is not None:
    st.caption(proto.description)
if len(res.table):
    meta = [c for c in ("group", "sex", "dose") if c in res.table]
    counts = res.table.groupby(meta[:2], dropna=False).size().rename("animals").reset_index()
    st.subheader("Animals per group")
    st.dataframe(counts, hide_index=True)
    st.subheader("Tracking quality")
    qc = qc_table(res.table)
    n_bad = int((qc["flag"] != "ok").sum())
    st.caption("Per animal: share of keypoint samples below the confidence cut-off, centre jumps per minute, "
               "frames filled in by the filters; limits from the protocol's `qc:` rules. "
               + (f"**{n_bad} animal(s) flagged**: open one to see its worst frames." if n_bad else "All animals ok."))
    st.table(style_qc(qc))
    flagged = [animal_key(r) for _, r in qc.iterrows() if r["flag"] != "ok"]
    if flagged:
        c_pick, c_go = st.columns([3, 1], vertical_alignment="bottom")
        pick = c_pick.selectbox("Flagged animal", flagged, key="ov_flagged")
        if c_go.button("Open its worst frames", key="ov_open_qc"):
            st.session_state["qc_animal"] = pick
            st.session_state["qc_worst"] = True
            st.switch_page("pages/animal_qc.py")
    st.subheader("Per-animal endpoints")
    st.dataframe(res.table, hide_index=True)
if len(res.failures):
    st.subheader("Failures")
    st.dataframe(res.failures, hide_index=True)
with st.expander("Run provenance"):
    st.json({k: v for k, v in info.items() if k not in ("processed", "skipped")})
report = root / rel / "report.html"
if report.is_file():
    st.download_button("Download report.html", report.read_bytes(), file_name=f"{proto.name if proto else 'ethopose'}_report.html",
                       mime="text/html")
if len(res.cohort):
    with st.expander("Cohort table"):
        st.dataframe(pd.DataFrame(res.cohort), hide_index=True)
