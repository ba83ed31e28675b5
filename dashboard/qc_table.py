"""Tracking-quality traffic light per animal, from the QC columns of ``endpoints.csv``.

``ethopose run`` writes ``qc_flag`` (ok / warn / fail), ``qc_reasons`` and the measures
``qc_low_confidence_pct``, ``qc_jumps_per_min``, ``qc_interpolated_pct`` per animal
(:func:`protocols.qc.tracking_qc`), and the coverage flag ``quality_flag``. A results folder
written before the tracking QC existed has only ``quality_flag``: the light then says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: the light's text: a plain bullet and the word (emoji are empty boxes where no colour-emoji font is
#: installed, e.g. headless Chromium on a server); the colour is the cell's background
LIGHTS = {"ok": "● ok", "warn": "● warn", "fail": "● fail", "unknown": "○ unknown"}
#: cell background per flag (ColorBrewer RdYlGn ends, readable with the emoji and the word)
COLOURS = {"ok": "#a6d96a", "warn": "#fee08b", "fail": "#d73027", "unknown": "#e0e0e0"}
MEASURES = {"qc_low_confidence_pct": "% below cut-off", "qc_jumps_per_min": "jumps / min",
            "qc_interpolated_pct": "% interpolated", "qc_swap_suspects_per_min": "swap suspects / min"}
_ORDER = {"fail": 0, "warn": 1, "unknown": 2, "ok": 3}


def _text(v: object) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()


def qc_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per animal: ``flag`` (ok / warn / fail / unknown), ``tracking`` (the light),
    the measures present, and ``reasons``; the worst animals first.

    ``flag`` comes from ``qc_flag``; without it, from ``quality_flag`` (anything but ``ok``
    fails, named in the reasons); without either it is ``unknown``.
    """
    rows = []
    for _, r in table.iterrows():
        flag, reasons = _text(r.get("qc_flag")), _text(r.get("qc_reasons"))
        cover = _text(r.get("quality_flag"))
        if flag not in ("ok", "warn", "fail"):
            if cover:
                flag = "ok" if cover == "ok" else "fail"
                reasons = "; ".join(x for x in (reasons, "" if cover == "ok" else f"coverage: {cover}",
                                                "no tracking QC recorded (older run)") if x)
            else:
                flag, reasons = "unknown", "no tracking QC recorded (older run)"
        row = {"subject_id": r.get("subject_id"), "session": r.get("session"), "group": r.get("group"),
               "flag": flag, "tracking": LIGHTS[flag]}
        row.update({label: float(r[col]) for col, label in MEASURES.items() if col in table.columns})
        row["reasons"] = reasons
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    return out.sort_values("flag", key=lambda s: s.map(_ORDER), kind="stable").reset_index(drop=True)


def style_qc(qc: pd.DataFrame):
    """A pandas Styler of ``qc`` without its ``flag`` column, the ``tracking`` cell coloured by flag."""
    flags = qc["flag"]
    shown = qc.drop(columns="flag")

    def colour(row: pd.Series) -> list[str]:
        ink = "color: white; font-weight: bold" if flags[row.name] == "fail" else "color: black"
        return [f"background-color: {COLOURS[flags[row.name]]}; {ink}" if c == "tracking" else "" for c in row.index]

    numbers = {c: "{:.1f}" for c in MEASURES.values() if c in shown.columns}
    return shown.style.apply(colour, axis=1).format(numbers, na_rep="–").hide(axis="index")


def animal_key(row: pd.Series) -> str:
    """The results folder's animal key of a QC row (``<subject>_<session>``)."""
    return f"{row['subject_id']}_{row['session']}"


def worst_frames(conf: np.ndarray, cutoff: float, keypoints: list[str], n: int = 10) -> pd.DataFrame:
    """The ``n`` frames with the most keypoints below the cut-off (missing counts as below),
    ties broken by the lowest mean confidence.

    Parameters
    ----------
    conf
        Confidence, shape ``(time, keypoint)``.
    """
    c = np.asarray(conf, float)
    below = ~(np.nan_to_num(c, nan=-1.0) >= cutoff)
    n_below = below.sum(axis=1)
    mean = np.nan_to_num(c, nan=0.0).mean(axis=1)
    order = np.lexsort((mean, -n_below))[:n]
    return pd.DataFrame({"frame": order.astype(int), "keypoints below cut-off": n_below[order].astype(int),
                         "mean confidence": mean[order],
                         "which": [", ".join(k for k, b in zip(keypoints, below[i], strict=True) if b) for i in order]})
