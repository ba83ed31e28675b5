"""``ethopose behavior ...``: rule-based states, agreement, ICC, classifiers, discovery, reports.

Thin commands: parse, call one library function, write atomically. Heavy imports inside.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

logger = logging.getLogger(__name__)

app = typer.Typer(no_args_is_help=True, help="Behaviour states, classifiers, discovery, agreement.")


def _load_pose(path: Path, fps: float | None, px_per_cm: float | None, px_per_mm: float | None = None):
    """Load a pose file; the calibration given in cm (CLI edge) becomes ``px_per_mm``."""
    import pose.io

    ds = pose.io.load(path, fps=fps)
    if ds.attrs.get("fps") is None:
        raise typer.BadParameter(f"{path}: the frame rate is unknown; pass --fps", param_hint="--fps")
    if px_per_cm is not None and px_per_mm is not None:
        raise typer.BadParameter("give --px-per-cm or --px-per-mm, not both")
    if px_per_cm is not None:
        ds.attrs["px_per_mm"] = px_per_cm / 10.0
    elif px_per_mm is not None:
        ds.attrs["px_per_mm"] = float(px_per_mm)
    return ds


def _individuals(ds, individual: str | None, path: Path) -> list[str]:
    """Individuals to analyse: one named, ``all``, or the only one (refuse to guess)."""
    names = [str(i) for i in ds.coords["individual"].values]
    if individual is None:
        if len(names) > 1:
            raise typer.BadParameter(
                f"{path} has {len(names)} individuals {names}: pick one with --individual NAME "
                "or analyse each with --individual all", param_hint="--individual")
        return names
    if individual == "all":
        return names
    if individual not in names:
        raise typer.BadParameter(f"{path}: no individual {individual!r} (has {names})",
                                 param_hint="--individual")
    return [individual]


def _clean(ds, p_cutoff: float):
    from behavior.roles import clean_for_rules

    return clean_for_rules(ds, p_cutoff=p_cutoff)


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
    px_per_mm: float = typer.Option(None, "--px-per-mm", help="Calibration, pixels per mm."),
    out: Path = typer.Option(Path("freezing.csv"), "--out", "-o", help="Per-frame csv (or .parquet)."),
    enter_speed_mm_s: float = typer.Option(10.0, help="Head and body slower than this start a freeze "
                                           "(the tracking noise may raise it; see the log)."),
    exit_speed_mm_s: float = typer.Option(12.5, help="... and keep it while slower than this."),
    window_s: float = typer.Option(None, help="Speed window (s); default chosen from the noise."),
    min_bout_s: float = typer.Option(1.0, help="Shortest freezing bout (s)."),
    merge_gap_s: float = typer.Option(0.25, help="Bridge gaps up to this long (s)."),
    no_calibration: bool = typer.Option(False, "--no-calibration",
                                        help="Thresholds and window exactly as given (no noise floor)."),
    p_cutoff: float = typer.Option(0.6, help="Confidence below which a point is interpolated."),
    individual: str = typer.Option(None, "--individual", help="Individual to analyse, or 'all'."),
) -> None:
    """Detect freezing; write one row per frame: frame, time_s, freezing (0/1).

    The speed window and thresholds are calibrated to the recording (frame rate, px/mm,
    measured tracking jitter); the chosen values and the reasons are printed.
    """
    import json

    import pandas as pd

    from behavior.bouts import bouts_from_vector
    from behavior.freezing import detect_freezing

    ds = _load_pose(pose_file, fps, px_per_cm, px_per_mm)
    names = _individuals(ds, individual, pose_file)
    clean = _clean(ds, p_cutoff)
    tables = []
    for name in names:
        try:
            fz = detect_freezing(clean, enter_speed_mm_s=enter_speed_mm_s, exit_speed_mm_s=exit_speed_mm_s,
                                 window_s=window_s, min_bout_s=min_bout_s, merge_gap_s=merge_gap_s,
                                 calibrate=not no_calibration, individual=name)
        except ValueError as err:
            raise typer.BadParameter(f"{pose_file}: {err}") from err
        cal = json.loads(fz.attrs["calibration"])
        typer.echo(f"{name}: speed window {cal['window_s']:.3f} s ({cal['window_frames']} frames), "
                   f"enter < {cal['enter_speed_mm_s']:.2f} mm/s, exit < {cal['exit_speed_mm_s']:.2f} mm/s, "
                   f"jitter " + ", ".join(f"{k} {v:.2f} px" for k, v in cal["noise_sigma_px"].items())
                   + f" at {cal['px_per_mm']:.3g} px/mm")
        for reason in cal["reasons"]:
            typer.echo(f"  - {reason}")
        table = _frame_table(ds, {"freezing": fz.values})
        if len(names) > 1:
            table.insert(0, "individual", name)
        tables.append(table)
        n_bouts = len(bouts_from_vector(fz.values))
        typer.echo(f"{name}: freezing {100 * fz.values.mean():.1f} % of {fz.size} frames, {n_bouts} bouts")
    _write_frame_table(pd.concat(tables, ignore_index=True), out)
    typer.echo(f"wrote {out}")


@app.command("states")
def states(
    pose_file: Path = typer.Argument(..., exists=True, dir_okay=False),
    fps: float = typer.Option(None, "--fps"),
    px_per_cm: float = typer.Option(None, "--px-per-cm"),
    px_per_mm: float = typer.Option(None, "--px-per-mm"),
    out: Path = typer.Option(Path("states.csv"), "--out", "-o"),
    p_cutoff: float = typer.Option(0.6, help="Confidence below which a point is interpolated."),
    individual: str = typer.Option(None, "--individual", help="Individual to analyse, or 'all'."),
) -> None:
    """All rule-based states (freezing, immobility, locomotion, rearing, grooming) per frame."""
    import pandas as pd

    from behavior.rules import detect_states

    ds = _load_pose(pose_file, fps, px_per_cm, px_per_mm)
    names = _individuals(ds, individual, pose_file)
    clean = _clean(ds, p_cutoff)
    tables = []
    for name in names:
        try:
            st = detect_states(clean, individual=name)
        except ValueError as err:
            raise typer.BadParameter(f"{pose_file}: {err}") from err
        table = _frame_table(ds, {k: st[k].values for k in st.data_vars})
        if len(names) > 1:
            table.insert(0, "individual", name)
        tables.append(table)
        summary = ", ".join(f"{k} {100 * st[k].values.mean():.1f} %" for k in st.data_vars)
        typer.echo(f"{name}: {summary}")
    _write_frame_table(pd.concat(tables, ignore_index=True), out)
    typer.echo(f"wrote {out}")


@app.command("agreement")
def agreement(
    file_a: Path = typer.Argument(..., exists=True, dir_okay=False, help="Reference scoring (e.g. human)."),
    file_b: Path = typer.Argument(..., exists=True, dir_okay=False, help="Scoring under test."),
    behavior: str = typer.Option(None, "--behavior", "-b", help="Behaviour column (case-insensitive)."),
    fps: float = typer.Option(None, "--fps", help="Frame rate for files that do not say."),
    min_iou: float = typer.Option(0.5, help="Bout match: minimum temporal IoU."),
    block_s: float = typer.Option(10.0, help="Block length (s) of the bootstrap CI."),
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
    rate = fps or a.attrs.get("fps") or b.attrs.get("fps")
    typer.echo(f"frames: {fs['n_frames']}   behaviour: {a.name} (A) vs {b.name} (B)")
    typer.echo(f"Cohen's kappa      {fs['kappa']:.4f}")
    if rate:
        ci = ag.bootstrap_agreement(a.to_numpy(), b.to_numpy(), fps=float(rate), block_s=block_s)
        typer.echo(f"  95 % CI          kappa [{ci['kappa_ci_low']:.4f}, {ci['kappa_ci_high']:.4f}]  "
                   f"F1 {ci['f1']:.4f} [{ci['f1_ci_low']:.4f}, {ci['f1_ci_high']:.4f}]  "
                   f"({ci['n_blocks']} blocks of {block_s:g} s, block bootstrap)")
    else:
        typer.echo("  (no CI: the frame rate is unknown; pass --fps)")
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


@app.command("validation-report")
def validation_report(
    reference: Path = typer.Argument(..., exists=True, dir_okay=False, help="Reference scoring (human)."),
    methods: list[Path] = typer.Argument(..., help="Scorings to validate (per-frame csv, .mat, BORIS)."),
    behavior: str = typer.Option("freezing", "--behavior", "-b"),
    fps: float = typer.Option(..., "--fps", help="Frame rate of the scorings."),
    rater: list[Path] = typer.Option(None, "--rater", help="Human rater files for the inter-rater section."),
    block_s: float = typer.Option(20.0, help="Block length for % time, Bland-Altman and ICC."),
    out: Path = typer.Option(Path("validation_report.html"), "--out", "-o"),
) -> None:
    """Self-contained HTML report: kappa, confusion matrices, Bland-Altman, ICC, inter-rater."""
    from behavior.annotations import AnnotationError, load_labels, select_behavior
    from behavior.report import write_validation_report

    def vec(p: Path):
        try:
            return select_behavior(load_labels(p, fps=fps), behavior).to_numpy()
        except AnnotationError as err:
            raise typer.BadParameter(str(err)) from err

    ref = vec(reference)
    meths = {p.stem: vec(p) for p in methods}
    raters = {p.stem: vec(p) for p in rater} if rater else None
    write_validation_report(out, reference=ref, methods=meths, fps=fps, behavior=behavior,
                            reference_name=reference.stem, raters=raters, block_s=block_s)
    typer.echo(f"wrote {out}")


@app.command("train")
def train(
    pose_files: list[Path] = typer.Argument(..., help="Pose files, one per video."),
    labels: list[Path] = typer.Option(..., "--labels", "-l", help="Scoring per pose file, same order."),
    behavior: str = typer.Option(..., "--behavior", "-b", help="Behaviour column to learn."),
    fps: float = typer.Option(None, "--fps"),
    px_per_cm: float = typer.Option(None, "--px-per-cm"),
    out: Path = typer.Option(Path("behavior_model.joblib"), "--out", "-o"),
    window_s: list[float] = typer.Option([0.3, 1.0], "--window-s", help="Temporal windows (s)."),
    min_bout_s: float = typer.Option(0.0, help="Drop predicted bouts shorter than this."),
    max_iter: int = typer.Option(200, help="Boosting iterations."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train a classifier of one behaviour; prints leave-one-video-out CV when >= 2 videos."""
    import numpy as np
    import pandas as pd

    from behavior.annotations import align_to_pose, load_labels, select_behavior
    from behavior.classifier import BehaviorClassifier, cross_validate_grouped, save_model
    from behavior.pose_features import compute_pose_features

    if len(labels) != len(pose_files):
        raise typer.BadParameter(f"{len(pose_files)} pose files but {len(labels)} label files")
    Xs, ys, gs, rate = [], [], [], None
    for i, (pf, lf) in enumerate(zip(pose_files, labels, strict=True)):
        ds = _load_pose(pf, fps, px_per_cm)
        if rate is not None and abs(ds.attrs["fps"] - rate) > 1e-6:
            raise typer.BadParameter(f"{pf}: {ds.attrs['fps']} fps, the first video has {rate}")
        rate = ds.attrs["fps"]
        lab = align_to_pose(load_labels(lf, fps=ds.attrs["fps"]), ds)
        Xs.append(compute_pose_features(ds))
        ys.append(select_behavior(lab, behavior).to_numpy().astype(int))
        gs.append(np.full(len(ys[-1]), i))
    X = pd.concat(Xs, ignore_index=True)
    y, g = np.concatenate(ys), np.concatenate(gs)
    windows = tuple(sorted({1, *(max(3, int(round(w * rate)) | 1) for w in window_s)}))
    clf = BehaviorClassifier(windows_frames=windows, min_bout_frames=int(round(min_bout_s * rate)),
                             max_iter=max_iter, random_state=seed)
    if len(pose_files) >= 2:
        cv = cross_validate_grouped(clf, X, y, g)
        typer.echo(cv.to_string(index=False))
    clf.fit(X, y)
    save_model(clf, out, feature_names=list(X.columns), fps=rate, notes=f"behavior={behavior}")
    typer.echo(f"wrote {out} ({X.shape[1]} features, {len(y)} frames, windows {windows} frames)")


@app.command("predict")
def predict(
    model_file: Path = typer.Argument(..., exists=True, dir_okay=False),
    pose_file: Path = typer.Argument(..., exists=True, dir_okay=False),
    fps: float = typer.Option(None, "--fps"),
    px_per_cm: float = typer.Option(None, "--px-per-cm"),
    out: Path = typer.Option(Path("predicted.csv"), "--out", "-o"),
) -> None:
    """Label a pose file with a trained classifier; one row per frame."""
    from behavior.classifier import ModelMismatchError, load_model, predict_with_model
    from behavior.pose_features import compute_pose_features

    payload = load_model(model_file)
    ds = _load_pose(pose_file, fps, px_per_cm)
    X = compute_pose_features(ds)
    try:
        pred = predict_with_model(payload, X, fps=ds.attrs["fps"])
    except ModelMismatchError as err:
        raise typer.BadParameter(f"{model_file} vs {pose_file}: {err}") from err
    name = payload.get("notes", "").removeprefix("behavior=") or "label"
    _write_frame_table(_frame_table(ds, {name: pred}), out)
    typer.echo(f"wrote {out}")


@app.command("discover")
def discover(
    pose_files: list[Path] = typer.Argument(..., help="Pose files (same fps and calibration)."),
    fps: float = typer.Option(None, "--fps"),
    px_per_cm: float = typer.Option(None, "--px-per-cm"),
    out_dir: Path = typer.Option(Path("discovery"), "--out-dir", "-o"),
    seed: int = typer.Option(0, "--seed"),
    fit_subsample: int = typer.Option(20000, help="Frames embedded with UMAP."),
) -> None:
    """B-SOiD-style clusters: labels per frame, usage, bouts, transitions, example clips."""
    import joblib
    import numpy as np
    import pandas as pd

    from behavior import discovery as dsc
    from behavior.pose_features import compute_pose_features
    from pose.atomic import atomic_path

    dss = [_load_pose(p, fps, px_per_cm) for p in pose_files]
    feats = [compute_pose_features(d, feature_set="all") for d in dss]
    X = pd.concat(feats, ignore_index=True)
    model = dsc.BehaviorDiscovery(fit_subsample=fit_subsample, random_state=seed).fit(X)
    rate = dss[0].attrs["fps"]
    out_dir.mkdir(parents=True, exist_ok=True)
    start = 0
    for p, d, f in zip(pose_files, dss, feats, strict=True):
        lab = model.labels_[start:start + len(f)]
        start += len(f)
        _write_frame_table(_frame_table(d, {"cluster": lab}), out_dir / f"{p.stem}_clusters.csv")
    labels = model.labels_
    for name, table in (("usage", dsc.cluster_usage(labels, fps=rate)),
                        ("bouts", dsc.cluster_bouts(labels, fps=rate)),
                        ("example_clips", dsc.example_clips(labels, fps=rate))):
        _write_frame_table(table, out_dir / f"{name}.csv")
    tm = dsc.transition_matrix(labels)
    with atomic_path(out_dir / "transitions.csv") as tmp:
        tm.to_csv(tmp)
    with atomic_path(out_dir / "model.joblib") as tmp:
        joblib.dump({"model": model, "feature_names": list(X.columns), "fps": rate}, tmp)
    typer.echo(f"{model.n_clusters_} clusters in {len(labels)} frames -> {out_dir} "
               f"(largest: {np.bincount(labels).max() / len(labels):.0%})")
