"""The Endpoints page's sections beyond one factor: group x sex, and the time course in bins.

Numbers come from :mod:`dashboard.design` (the protocol's own endpoint functions per bin;
the type-II two-way ANOVA) and :func:`protocols.stats.compare_groups` (the run's group test,
per bin, Holm/BH-corrected across the bins); figures from :mod:`dashboard.plots`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.data import animals_of, open_animal
from dashboard.design import (
    BINNABLE_ASSAYS,
    binned_endpoints,
    default_bin_s,
    design_factors,
    two_way_anova,
)
from dashboard.plots import (
    download_config,
    p_text,
    readable_name,
    time_course_figure,
    two_way_figure,
)
from protocols.stats import compare_groups, usable_rows


def _fmt_p(p: float) -> str:
    return "–" if not np.isfinite(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def two_way_section(table: pd.DataFrame, endpoint: str, groups: list[str], fmt: str) -> None:
    """Group x factor (sex) when the cohort has both: type-II two-way ANOVA and the figure."""
    for factor in design_factors(table):
        used = table[usable_rows(table)]
        st.subheader(f"Group × {factor}")
        st.plotly_chart(two_way_figure(used, endpoint, factor, groups=groups), key=f"ep_two_way_{factor}",
                        config=download_config(f"{endpoint}_by_group_and_{factor}", fmt))
        try:
            aov = two_way_anova(used, endpoint, factor)
        except ValueError as exc:
            st.info(f"Two-way ANOVA not run: {exc}.")
            continue
        shown = aov.assign(p=[_fmt_p(v) for v in aov["p"]])
        st.dataframe(shown.round({"SS": 3, "F": 2, "partial_eta2": 3}), hide_index=True)
        st.caption(f"Type-II two-way ANOVA of {readable_name(endpoint)} on group × {factor}, "
                   f"{len(used)} animals (the animals of the group test); partial η² per effect.")


@st.cache_data(show_spinner=False, max_entries=32)
def _bins_cached(folder: str, key: str, mtime: float, assay: str, bin_s: float, _frames: pd.DataFrame,
                 fps: float) -> pd.DataFrame:
    return binned_endpoints(_frames, fps, assay, bin_s)


def time_course_section(root, rel: str, res, endpoint: str, groups: list[str], fmt: str) -> None:
    """The endpoint in time bins per group (the protocol's endpoint function on each bin)."""
    assay = res.protocol.assay if res.protocol is not None else None
    st.subheader("Time course")
    if assay not in BINNABLE_ASSAYS:
        st.caption(f"Time bins are available for the {' and '.join(BINNABLE_ASSAYS)} assays (this run: {assay}).")
        return
    animals = [open_animal(root, rel, k) for k in animals_of(root, rel)]
    durations = [float(a.frames["time_s"].iloc[-1] - a.frames["time_s"].iloc[0]) + 1 / a.fps
                 for a in animals if len(a.frames)]
    if not durations:
        return
    suggested, why = default_bin_s(min(durations))
    bin_s = st.number_input("Bin length (s)", min_value=1.0, value=float(suggested), step=float(max(suggested / 5, 1)),
                            key="ep_bin_s", help=f"default: {why}")
    st.caption(f"Default {why}; change it above.")
    keep = set(res.table.loc[usable_rows(res.table), "subject_id"].astype(str))
    rows = []
    for a in animals:
        if str(a.meta.get("subject_id")) not in keep:
            continue
        b = _bins_cached(str(a.folder), a.key, (a.folder / "done").stat().st_mtime, assay, float(bin_s), a.frames, a.fps)
        if endpoint not in b:
            continue
        rows.append(b[["bin", "start_s", "end_s", endpoint]].assign(subject_id=str(a.meta.get("subject_id")),
                                                                   session=a.meta.get("session"), group=a.group))
    if not rows:
        st.caption(f"{readable_name(endpoint)} is not a per-bin endpoint.")
        return
    long = pd.concat(rows, ignore_index=True)
    st.plotly_chart(time_course_figure(long, endpoint, groups=groups), key="ep_time_course",
                    config=download_config(f"{endpoint}_time_course", fmt))
    wide = long.pivot_table(index=["subject_id", "session", "group"], columns="bin", values=endpoint).reset_index()
    bins = sorted(long["bin"].unique())
    wide.columns = [c if isinstance(c, str) else f"bin_{int(c)}" for c in wide.columns]
    tests = compare_groups(wide, [f"bin_{b}" for b in bins])
    edges = long.groupby("bin")[["start_s", "end_s"]].first()
    table = pd.DataFrame({"bin": bins, "from (s)": [edges.loc[b, "start_s"] for b in bins],
                          "to (s)": [edges.loc[b, "end_s"] for b in bins],
                          "test": tests["test"].tolist(), "p (Holm, BH across bins)": [p_text(r) for _, r in tests.iterrows()]})
    st.dataframe(table, hide_index=True)
    st.caption(f"{readable_name(endpoint)} per bin; lines: animals, points: group mean ± SEM. The run's group "
               "test per bin, corrected across the bins. A bout crossing a bin edge counts in both bins.")
