"""Validation: agreement of ethopose's results with human scoring (kappa, ICC, Bland-Altman)."""

from __future__ import annotations

import streamlit as st

from dashboard.data import get_root, list_files, open_results, require_results
from dashboard.paths import resolve_inside

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
if "val_result" in st.session_state and st.session_state["val_result"][0] == choice:
    for name, df in st.session_state["val_result"][1].items():
        st.subheader({"endpoints": "Per-animal endpoints (ICC, Bland-Altman)",
                      "frames": "Per-frame behaviour (Cohen's kappa)"}.get(name, name))
        if df.empty:
            st.warning("Nothing in common between the human scoring and these results "
                       "(check subject_id/session and the column names).")
        st.dataframe(df, hide_index=True)
    if st.button("Add this validation to report.html", key="val_report"):
        from protocols.report import rebuild_report

        with st.spinner("Rendering the report..."):
            path = rebuild_report(resolve_inside(root, rel), human_scoring=resolve_inside(root, choice))
        st.success(f"Wrote {path.relative_to(root)}")
