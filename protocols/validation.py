"""Agreement between ethopose's results and human scoring (the report's validation section).

Two kinds of human scoring csv are accepted:

- **per animal** (no ``frame`` column): ``subject_id``, optional ``session``, and one column
  per endpoint scored by hand (e.g. ``freezing_pct``). Each shared endpoint gets the
  intraclass correlation (ICC2, absolute agreement, and ICC3, consistency) and the
  Bland-Altman bias and limits of agreement between human and ethopose.
- **per frame** (a ``frame`` column): ``subject_id``, optional ``session``, ``frame`` and one
  0/1 column per behaviour (e.g. ``freezing``). Each animal and behaviour gets Cohen's
  kappa between the human vector and ethopose's per-frame behaviour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from behavior.agreement import bland_altman, cohen_kappa, icc
from protocols.results import load_animal


def _with_session(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["session"] = df["session"].astype(str) if "session" in df else "1"
    df["subject_id"] = df["subject_id"].astype(str)
    return df


def validate_endpoints(table: pd.DataFrame, human: pd.DataFrame) -> pd.DataFrame:
    """ICC and Bland-Altman of every endpoint scored both by ethopose and by a human.

    Returns
    -------
    pandas.DataFrame
        One row per endpoint: ``endpoint, n, icc2, icc2_ci_low, icc2_ci_high, icc3,
        bias, loa_low, loa_high``.
    """
    t, h = _with_session(table), _with_session(human)
    shared = [c for c in h.columns if c in t.columns and c not in ("subject_id", "session", "group", "sex", "dose")]
    m = t.merge(h, on=["subject_id", "session"], suffixes=("_ethopose", "_human"))
    rows = []
    for ep in shared:
        a, b = m[f"{ep}_ethopose"].to_numpy(float), m[f"{ep}_human"].to_numpy(float)
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 3:
            continue
        long = pd.DataFrame({"subject": np.r_[np.arange(ok.sum()), np.arange(ok.sum())],
                             "rater": ["ethopose"] * int(ok.sum()) + ["human"] * int(ok.sum()),
                             "value": np.r_[a[ok], b[ok]]})
        res = icc(long, subject="subject", rater="rater", value="value").set_index("type")
        ba = bland_altman(a[ok], b[ok])
        rows.append({"endpoint": ep, "n": int(ok.sum()), "icc2": res.loc["ICC2", "icc"],
                     "icc2_ci_low": res.loc["ICC2", "ci_low"], "icc2_ci_high": res.loc["ICC2", "ci_high"],
                     "icc3": res.loc["ICC3", "icc"], **{k: ba[k] for k in ("bias", "loa_low", "loa_high") if k in ba}})
    return pd.DataFrame(rows)


def validate_frames(root: Path, human: pd.DataFrame) -> pd.DataFrame:
    """Cohen's kappa per animal and behaviour between human and ethopose frame labels.

    Returns
    -------
    pandas.DataFrame
        ``subject_id, session, behaviour, n_frames, kappa, human_pct, ethopose_pct``.
    """
    h = _with_session(human)
    behaviours = [c for c in h.columns if c not in ("subject_id", "session", "frame")]
    rows = []
    for (sid, session), sub in h.groupby(["subject_id", "session"]):
        try:
            animal = load_animal(root, f"{sid}_{session}")
        except FileNotFoundError:
            continue
        frames = sub["frame"].to_numpy(int)
        ok = (frames >= 0) & (frames < len(animal.frames))
        for b in behaviours:
            if b not in animal.frames:
                continue
            human_v = sub[b].to_numpy(float)[ok] > 0.5
            ours = animal.frames[b].to_numpy(bool)[frames[ok]]
            rows.append({"subject_id": sid, "session": session, "behaviour": b,
                         "n_frames": int(ok.sum()), "kappa": cohen_kappa(human_v.astype(int), ours.astype(int)),
                         "human_pct": 100 * human_v.mean(), "ethopose_pct": 100 * ours.mean()})
    return pd.DataFrame(rows)


def validate_against_human(root: Path, table: pd.DataFrame, human_csv: Path) -> dict[str, pd.DataFrame]:
    """Read a human scoring csv and compare it with the results (see module docstring)."""
    human = pd.read_csv(human_csv)
    if "subject_id" not in human.columns:
        raise ValueError(f"{human_csv}: human scoring needs a 'subject_id' column; has {list(human.columns)}")
    if "frame" in human.columns:
        return {"frames": validate_frames(root, human)}
    return {"endpoints": validate_endpoints(table, human)}
