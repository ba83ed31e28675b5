"""Standalone Streamlit app of the labelling page.

Run ``streamlit run dashboard/labelling/app.py -- PROJECT`` (or ``ethopose label PROJECT``).
The project folder comes from ``ETHOPOSE_LABEL_PROJECT`` when set, else the first script
argument.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

from dashboard.labelling.page import show


def _project_dir() -> Path | None:
    env = os.environ.get("ETHOPOSE_LABEL_PROJECT")
    if env:
        return Path(env)
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    return Path(args[0]) if args else None


st.set_page_config(page_title="ethopose labelling", layout="wide")
project = _project_dir()
if project is None:
    st.error("No project given: run `ethopose label PROJECT`.")
else:
    try:
        show(project)
    except Exception as exc:  # noqa: BLE001 - shown without traceback or server paths; logged in full
        import logging

        from dashboard.data import friendly_error

        logging.getLogger("dashboard").exception("labelling page failed")
        st.error(friendly_error(exc))
