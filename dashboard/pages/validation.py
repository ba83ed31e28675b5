"""Validation: agreement of ethopose's results with human scoring (kappa, ICC, Bland-Altman)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.data import get_root, list_files, open_results, require_results
from dashboard.paths import resolve_inside
from dashboard.plots import agreement_scatter, bland_altman_figure, download_config, readable_name

st.title("Validation against human scoring")
root = get_root()
rel = require_results(root)
res = open_results(root, rel)
st.markdown(
    "A human scoring csv (inside the root) is either **per animal** (`subject_id`, `session`, and "
    "endpoint columns such as `freezing_pct`: ICC and Bland-Altman per endpoint) or **per frame** "
    "(`subject_id`, `session`, `frame`, and 0/1 behaviour columns such as `freezing`: Cohen's kappa "
    "per animal)."
)
own = rel.rstrip("/") + "/" if rel != "." else "\0"
candidates = sorted((f for f in list_files(root, (".csv",)) if not f.startswith(own) or "human" in f),
                    key=lambda f: ("human" not in f.lower() and "scor" not in f.lower(), f))
if not candidates:
    st.info("No csv files under the root to compare with.")
    st.stop()
choice = st.selectbox("Human scoring file", candidates, key="val_file")
if st.button("Compare", key="val_go", type="primary"):
    from protocols.validation import validate_against_human

    path = resolve_inside(root, choice)
    with st.status("Comparing with human scoring...", expanded=False) as status:
        try:
            st.session_state["val_result"] = (choice, validate_against_human(root / rel, res.table, path))
            status.update(label="Done", state="complete")
        except (ValueError, KeyError) as exc:
            status.update(label="Failed", state="error")
            st.error(str(exc))
def _pairs(result_name: str, df: pd.DataFrame, human_file: str) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """``{quantity: (human, ethopose, animal labels)}`` to plot, one pair per animal."""
    out = {}
    if result_name == "frames" and len(df):
        for b, sub in df.groupby("behaviour"):
            out[f"{b}_time_pct"] = (sub["human_pct"].to_numpy(float), sub["ethopose_pct"].to_numpy(float),
                                    [f"{a}_{s}" for a, s in zip(sub["subject_id"], sub["session"], strict=True)])
    elif result_name == "endpoints" and len(df):
        human = pd.read_csv(resolve_inside(root, human_file))
        key = ["subject_id", "session"]
        t, h = res.table.copy(), human.copy()
        for x in (t, h):
            x["subject_id"] = x["subject_id"].astype(str)
            x["session"] = x["session"].astype(str) if "session" in x else "1"
        m = t.merge(h, on=key, suffixes=("_ethopose", "_human"))
        for ep in df["endpoint"]:
            out[ep] = (m[f"{ep}_human"].to_numpy(float), m[f"{ep}_ethopose"].to_numpy(float),
                       [f"{a}_{s}" for a, s in zip(m["subject_id"], m["session"], strict=True)])
    return out


if "val_result" in st.session_state and st.session_state["val_result"][0] == choice:
    fmt = st.sidebar.radio("Figure download format", ["svg", "png"], key="fig_format", horizontal=True,
                           help="the camera button at the top right of each figure saves it in this format")
    for name, df in st.session_state["val_result"][1].items():
        st.subheader({"endpoints": "Per-animal endpoints (ICC, Bland-Altman)",
                      "frames": "Per-frame behaviour (Cohen's kappa)"}.get(name, name))
        if df.empty:
            st.warning("Nothing in common between the human scoring and these results "
                       "(check subject_id/session and the column names).")
        st.dataframe(df, hide_index=True)
        for quantity, (human, ours, labels) in _pairs(name, df, choice).items():
            st.markdown(f"**{readable_name(quantity)}**: ethopose against the human score, one point per animal")
            left, right = st.columns(2)
            left.markdown("**Agreement** (identity line dashed)")
            left.plotly_chart(agreement_scatter(human, ours, quantity, labels=labels), key=f"val_scatter_{quantity}",
                              config=download_config(f"{quantity}_agreement", fmt))
            try:
                ba = bland_altman_figure(human, ours, quantity, labels=labels)
            except ValueError as exc:
                right.info(f"Bland-Altman not drawn: {exc}")
            else:
                right.markdown(f"**Bland-Altman** (n = {ba.layout.meta['n']}; shaded: 95 % CI of the bias)")
                right.plotly_chart(ba, key=f"val_ba_{quantity}", config=download_config(f"{quantity}_bland_altman", fmt))
    if st.button("Add this validation to report.html", key="val_report"):
        from protocols.report import rebuild_report

        with st.spinner("Rendering the report..."):
            path = rebuild_report(resolve_inside(root, rel), human_scoring=resolve_inside(root, choice))
        st.success(f"Wrote {path.relative_to(root)}")
