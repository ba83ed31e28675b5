"""``ethopose behavior ...``: rule-based states, agreement, ICC, classifiers, discovery, reports.

Thin commands: parse, call one library function, write atomically. Heavy imports inside.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

logger = logging.getLogger(__name__)

app = typer.Typer(no_args_is_help=True, help="Behaviour states, classifiers, discovery, agreement.")


def _load_pose(path: Path, fps: float | None, px_per_cm: float | None):
    import pose.io

    ds = pose.io.load(path, fps=fps)
    if ds.attrs.get("fps") is None:
        raise typer.BadParameter(f"{path}: the frame rate is unknown; pass --fps", param_hint="--fps")
    if px_per_cm is not None:
        ds.attrs["px_per_mm"] = px_per_cm / 10.0
    return ds


def _write_frame_table(df, out: Path) -> None:
    from pose.atomic import atomic_path

    with atomic_path(out) as tmp:
        if out.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)


def _frame_table(ds, columns: dict):
    import numpy as np
    import pandas as pd

    from pose.dataset import frame_numbers

    table = pd.DataFrame({"frame": frame_numbers(ds), "time_s": ds.coords["time"].values})
    for name, values in columns.items():
        table[name] = np.asarray(values).astype(int)
    return table


@app.command("freezing")
def freezing(
    pose_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Pose file (DLC, SLEAP, NetCDF)."),
    fps: float = typer.Option(None, "--fps", help="Frame rate (needed when the file does not say)."),
    px_per_cm: float = typer.Option(None, "--px-per-cm", help="Calibration, pixels per cm."),
    out: Path = typer.Option(Path("freezing.csv"), "--out", "-o", help="Per-frame csv (or .parquet)."),
    enter_speed_cm_s: float = typer.Option(1.0, help="Head and body slower than this start a freeze."),
    exit_speed_cm_s: float = typer.Option(2.0, help="... and keep it while slower than this."),
    min_bout_s: float = typer.Option(1.0, help="Shortest freezing bout."),
    merge_gap_s: float = typer.Option(0.25, help="Bridge gaps up to this long."),
    p_cutoff: float = typer.Option(0.6, help="Confidence below which a point is interpolated."),
) -> None:
    """Detect freezing; write one row per frame: frame, time_s, freezing (0/1)."""
    from behavior.bouts import bouts_from_vector
    from behavior.rules import detect_freezing

    ds = _load_pose(pose_file, fps, px_per_cm)
    fz = detect_freezing(ds, enter_speed_cm_s=enter_speed_cm_s, exit_speed_cm_s=exit_speed_cm_s,
                         min_bout_s=min_bout_s, merge_gap_s=merge_gap_s, p_cutoff=p_cutoff)
    _write_frame_table(_frame_table(ds, {"freezing": fz.values}), out)
    n_bouts = len(bouts_from_vector(fz.values))
    typer.echo(f"{out}: freezing {100 * fz.values.mean():.1f} % of {fz.size} frames, {n_bouts} bouts")


@app.command("states")
def states(
    pose_file: Path = typer.Argument(..., exists=True, dir_okay=False),
    fps: float = typer.Option(None, "--fps"),
    px_per_cm: float = typer.Option(None, "--px-per-cm"),
    out: Path = typer.Option(Path("states.csv"), "--out", "-o"),
) -> None:
    """All rule-based states (freezing, immobility, locomotion, rearing, grooming) per frame."""
    from behavior.rules import detect_states

    ds = _load_pose(pose_file, fps, px_per_cm)
    st = detect_states(ds)
    _write_frame_table(_frame_table(ds, {k: st[k].values for k in st.data_vars}), out)
    summary = ", ".join(f"{k} {100 * st[k].values.mean():.1f} %" for k in st.data_vars)
    typer.echo(f"{out}: {summary}")


@app.command("agreement")
def agreement(
    file_a: Path = typer.Argument(..., exists=True, dir_okay=False, help="Reference scoring (e.g. human)."),
    file_b: Path = typer.Argument(..., exists=True, dir_okay=False, help="Scoring under test."),
    behavior: str = typer.Option(None, "--behavior", "-b", help="Behaviour column (case-insensitive)."),
    fps: float = typer.Option(None, "--fps", help="Frame rate for files that do not say."),
    min_iou: float = typer.Option(0.5, help="Bout match: minimum temporal IoU."),
) -> None:
    """Frame- and bout-level agreement of two per-frame scorings of one behaviour."""
    from behavior import agreement as ag
    from behavior.annotations import AnnotationError, load_labels, select_behavior

    try:
        a = select_behavior(load_labels(file_a, fps=fps), behavior)
        b = select_behavior(load_labels(file_b, fps=fps), behavior)
    except AnnotationError as err:
        raise typer.BadParameter(str(err)) from err
    if len(a) != len(b):
        raise typer.BadParameter(f"{file_a} has {len(a)} frames but {file_b} has {len(b)}")
    fs = ag.frame_scores(a.to_numpy(), b.to_numpy())
    bs = ag.bout_scores(a.to_numpy(), b.to_numpy(), min_iou=min_iou)
    typer.echo(f"frames: {fs['n_frames']}   behaviour: {a.name} (A) vs {b.name} (B)")
    typer.echo(f"Cohen's kappa      {fs['kappa']:.4f}")
    typer.echo(f"percent agreement  {100 * fs['percent_agreement']:.2f} %")
    typer.echo(f"frame precision    {fs['precision']:.4f}  recall {fs['recall']:.4f}  F1 {fs['f1']:.4f}")
    typer.echo(f"bout  precision    {bs['precision']:.4f}  recall {bs['recall']:.4f}  F1 {bs['f1']:.4f}"
               f"  (IoU >= {min_iou}; {bs['n_true']} A bouts, {bs['n_pred']} B bouts)")


@app.command("icc")
def icc(
    table: Path = typer.Argument(..., exists=True, dir_okay=False, help="Long-format csv."),
    subject: str = typer.Option(..., "--subject", help="Column of the rated subjects."),
    rater: str = typer.Option(..., "--rater", help="Column of the raters / methods."),
    value: str = typer.Option(..., "--value", help="Column of the measurements."),
    omit_missing: bool = typer.Option(False, help="Drop subjects with a missing rating."),
) -> None:
    """Intraclass correlations (six Shrout-Fleiss forms) with F test and 95 % CI."""
    import pandas as pd

    from behavior.agreement import icc as compute_icc

    df = pd.read_csv(table)
    try:
        res = compute_icc(df, subject=subject, rater=rater, value=value,
                          nan_policy="omit" if omit_missing else "raise")
    except ValueError as err:
        raise typer.BadParameter(f"{table}: {err}") from err
    typer.echo(f"{res.attrs['n_subjects']} subjects x {res.attrs['n_raters']} raters")
    typer.echo(f"{'type':6s} {'ICC':>7s} {'F':>9s} {'df1':>5s} {'df2':>6s} {'p':>10s}  95% CI          description")
    for r in res.itertuples():
        typer.echo(f"{r.type:6s} {r.icc:7.4f} {r.F:9.3f} {r.df1:5d} {r.df2:6d} {r.pval:10.3g}  "
                   f"[{r.ci_low:6.3f}, {r.ci_high:6.3f}]  {r.description}")
