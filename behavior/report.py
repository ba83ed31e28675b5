"""Validation report: how far an automatic scoring agrees with human scoring (one HTML file).

For a reviewer of a drug study: per-method agreement with the reference scorer (Cohen's
kappa, % agreement, precision / recall / F1, bout F1), confusion matrices, an ethogram
strip, the % time in the behaviour per time block compared with Bland-Altman limits of
agreement and ICC, and the agreement between human raters (pairwise kappa, Fleiss' kappa)
as the ceiling any method can be expected to reach. Self-contained: figures are embedded
PNGs (base64), no network or external files needed.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from behavior import agreement as ag
from behavior.bouts import as_bool_vector

logger = logging.getLogger(__name__)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.note{color:#555;font-size:.92em}
.fig{display:inline-block;margin:.3em}.good{color:#1a7f37}.fair{color:#9a6700}.poor{color:#cf222e}
"""


def kappa_band(kappa: float) -> str:
    """Landis & Koch (1977) wording for a kappa value."""
    if not np.isfinite(kappa):
        return "undefined"
    for lim, word in ((0.0, "poor"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate"),
                      (0.8, "substantial")):
        if kappa <= lim:
            return word
    return "almost perfect"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return ("<img class='fig' alt='figure' src='data:image/png;base64,"
            + base64.b64encode(buf.getvalue()).decode("ascii") + "'>")


def _table(df: pd.DataFrame, digits: int = 3) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.{digits}f}", border=0, escape=True)


def block_fractions(vector: np.ndarray, *, fps: float, block_s: float) -> np.ndarray:
    """% of time in the behaviour per consecutive block of ``block_s`` seconds (full blocks only)."""
    v = as_bool_vector(vector).astype(float)
    n = int(round(block_s * fps))
    k = v.size // n
    if k < 2:
        raise ValueError(f"{v.size} frames give {k} block(s) of {block_s} s: need >= 2 (shorter block_s)")
    return 100 * v[: k * n].reshape(k, n).mean(axis=1)


def build_validation_report(
    reference: np.ndarray,
    methods: Mapping[str, np.ndarray],
    *,
    fps: float,
    behavior: str = "freezing",
    reference_name: str = "human",
    raters: Mapping[str, np.ndarray] | None = None,
    block_s: float = 20.0,
    title: str | None = None,
    ci_block_s: float = 10.0,
) -> str:
    """HTML text of the validation report.

    Parameters
    ----------
    reference
        Reference per-frame scoring (0/1), shape ``(n_frames,)``.
    methods
        Method name -> per-frame scoring of the same frames.
    fps
        Frame rate (for bouts, time blocks and the ethogram axis).
    behavior, reference_name, title
        Wording.
    raters
        Optional human raters' vectors (any common length, may be another video): the
        inter-rater section.
    block_s
        Block length for the % time comparison (Bland-Altman, ICC).
    ci_block_s
        Block length of the bootstrap confidence intervals of kappa and F1
        (:func:`behavior.agreement.bootstrap_agreement`).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from pose._version import __version__

    ref = as_bool_vector(reference, name=reference_name)
    meth = {k: as_bool_vector(v, name=k) for k, v in methods.items()}
    for k, v in meth.items():
        if v.size != ref.size:
            raise ValueError(f"{k} has {v.size} frames, {reference_name} has {ref.size}")
    title = title or f"Validation of automatic {behavior} scoring against {reference_name} scoring"
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='note'>{ref.size} frames at {fps:g} fps ({ref.size / fps:.1f} s). "
             f"Generated {_dt.datetime.now().isoformat(timespec='minutes')} by ethopose {__version__}.</p>"]

    rows = []
    for name, v in meth.items():
        fs = ag.frame_scores(ref, v)
        bs = ag.bout_scores(ref, v)
        ci = ag.bootstrap_agreement(ref, v, fps=fps, block_s=ci_block_s)
        rows.append({"method": name, "Cohen's kappa": fs["kappa"],
                     "kappa 95% CI": f"[{ci['kappa_ci_low']:.3f}, {ci['kappa_ci_high']:.3f}]",
                     "interpretation": kappa_band(fs["kappa"]),
                     "% agreement": 100 * fs["percent_agreement"], "precision": fs["precision"],
                     "recall": fs["recall"], "F1": fs["f1"],
                     "F1 95% CI": f"[{ci['f1_ci_low']:.3f}, {ci['f1_ci_high']:.3f}]", "bout F1 (IoU>=0.5)": bs["f1"],
                     f"% time {reference_name}": 100 * ref.mean(), "% time method": 100 * v.mean()})
    parts += ["<h2>1. Frame-by-frame agreement with the reference</h2>", _table(pd.DataFrame(rows)),
              "<p class='note'>Cohen's kappa corrects the % agreement for chance; Landis &amp; Koch "
              "wording: 0.61-0.80 substantial, &gt; 0.80 almost perfect. Precision: share of frames the "
              "method calls the behaviour that the reference also does; recall: share of the "
              "reference's frames the method finds. A bout counts as found when it overlaps a "
              "reference bout with temporal IoU &ge; 0.5. 95 % CI: percentile interval over 2000 "
              f"resamplings of whole {ci_block_s:g} s blocks (block bootstrap: frames of one video "
              "are not independent).</p>"]

    figs = []
    for name, v in meth.items():
        cm = ag.confusion_matrix(ref.astype(int), v.astype(int), labels=[0, 1]).to_numpy()
        fig, ax = plt.subplots(figsize=(3.2, 2.9))
        ax.imshow(cm, cmap="Blues")
        for i in range(2):
            for j in range(2):
                ax.text(j, i, f"{cm[i, j]}\n({100 * cm[i, j] / cm.sum():.1f} %)", ha="center",
                        va="center", color="black", fontsize=8)
        ax.set_xticks([0, 1], [f"no {behavior}", behavior])
        ax.set_yticks([0, 1], [f"no {behavior}", behavior])
        ax.set_xlabel(name)
        ax.set_ylabel(reference_name)
        ax.set_title("confusion matrix (frames)", fontsize=9)
        figs.append(_png(fig))
    parts += ["<h2>2. Confusion matrices</h2>", "".join(figs)]

    fig, ax = plt.subplots(figsize=(10, 0.5 + 0.45 * (1 + len(meth))))
    t = np.arange(ref.size) / fps
    for i, (_name, v) in enumerate([(reference_name, ref), *meth.items()]):
        ax.fill_between(t, i - 0.4, i + 0.4, where=v, step="mid", color="C0" if i == 0 else "C1")
    ax.set_yticks(range(1 + len(meth)), [reference_name, *meth])
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_title(f"ethogram: {behavior} bouts", fontsize=9)
    parts += ["<h2>3. Ethogram</h2>", _png(fig)]

    ref_blocks = block_fractions(ref, fps=fps, block_s=block_s)
    parts.append(f"<h2>4. % time in {html.escape(behavior)} per {block_s:g} s block: "
                 "Bland-Altman and ICC</h2>")
    ba_rows, ba_figs = [], []
    for name, v in meth.items():
        mb = block_fractions(v, fps=fps, block_s=block_s)
        ba = ag.bland_altman(mb, ref_blocks)
        long = pd.DataFrame({"block": np.r_[np.arange(mb.size), np.arange(mb.size)],
                             "rater": [name] * mb.size + [reference_name] * mb.size,
                             "pct": np.r_[mb, ref_blocks]})
        iccs = ag.icc(long, subject="block", rater="rater", value="pct").set_index("type")
        ba_rows.append({"method": name, "blocks": mb.size, "bias (method - ref), %": ba["bias"],
                        "95% CI of bias": f"[{ba['bias_ci_low']:.2f}, {ba['bias_ci_high']:.2f}]",
                        "limits of agreement, %": f"[{ba['loa_low']:.2f}, {ba['loa_high']:.2f}]",
                        "ICC(2,1) absolute": iccs.loc["ICC2", "icc"],
                        "ICC(2,1) 95% CI": f"[{iccs.loc['ICC2', 'ci_low']:.3f}, {iccs.loc['ICC2', 'ci_high']:.3f}]",
                        "ICC(3,1) consistency": iccs.loc["ICC3", "icc"]})
        fig, ax = plt.subplots(figsize=(4.2, 3.2))
        mean = (mb + ref_blocks) / 2
        ax.scatter(mean, mb - ref_blocks, s=14)
        for yv, style in ((ba["bias"], "-"), (ba["loa_low"], "--"), (ba["loa_high"], "--")):
            ax.axhline(yv, color="C3", ls=style, lw=1)
        ax.set_xlabel(f"mean of {name} and {reference_name} (% time)")
        ax.set_ylabel(f"{name} - {reference_name} (%)")
        ax.set_title(f"Bland-Altman, {block_s:g} s blocks", fontsize=9)
        ba_figs.append(_png(fig))
    parts += [_table(pd.DataFrame(ba_rows)), "".join(ba_figs),
              "<p class='note'>Drug studies compare % time in the behaviour between groups, so this is "
              "the agreement that matters most: bias is the systematic over- (positive) or under-"
              "scoring by the method; 95 % of blocks differ by less than the limits of agreement. "
              "ICC(2,1) measures absolute agreement of the block values (Shrout &amp; Fleiss 1979).</p>"]

    if raters:
        rv = {k: as_bool_vector(v, name=k) for k, v in raters.items()}
        lengths = {v.size for v in rv.values()}
        parts.append("<h2>5. Agreement between human raters</h2>")
        if len(lengths) != 1:
            parts.append("<p>Rater vectors differ in length; not compared.</p>")
        else:
            pw = ag.pairwise_agreement(rv)
            fk = ag.fleiss_kappa(np.stack([v.astype(int) for v in rv.values()], axis=1))
            n = next(iter(lengths))
            parts += [f"<p>{len(rv)} raters, {n} frames (their own recording when it differs in "
                      f"length from the one above). Fleiss' kappa (all raters): <b>{fk:.3f}</b> "
                      f"({kappa_band(fk)}).</p>", _table(pw),
                      "<p class='note'>Human-human agreement is the ceiling for any automatic "
                      "method: a method agreeing with a human as well as two humans agree with "
                      "each other is as reliable as an extra human rater.</p>"]
    body = "\n".join(parts)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{_CSS}</style></head><body>{body}</body></html>")


def write_validation_report(path: str | os.PathLike, **kwargs) -> Path:
    """Build the report (see :func:`build_validation_report`) and write it atomically."""
    from pose.atomic import write_text_atomic

    return write_text_atomic(path, build_validation_report(**kwargs))
