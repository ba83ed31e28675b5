"""``ethopose run`` (a protocol over a cohort), ``ethopose report`` (rebuild the report), ``ethopose arena-3d``."""

from __future__ import annotations

from pathlib import Path

import typer


def run(
    protocol: str = typer.Argument(..., help="Protocol: a built-in name (open_field, elevated_plus_maze, three_chamber, gait, fear_conditioning) or a .yaml file."),
    cohort: Path = typer.Argument(..., help="Cohort csv: subject_id, group, [dose, sex, session], pose_path or video_path."),
    out: Path = typer.Option(..., "--out", "-o", help="Results folder (created; re-run to resume)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Address of a running dask scheduler (default: a local cluster)."),
    workers: int = typer.Option(2, "--workers", min=0, help="Local worker processes (0: run serially in this process)."),
    model: Path | None = typer.Option(None, "--model", help="Pose model folder, for rows that give a video."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip the HTML report."),
) -> None:
    """Run PROTOCOL over every animal of COHORT, in parallel and resumable; write tables, statistics and report.html."""
    from protocols.batch import CohortError, run_cohort
    from protocols.cluster import WorkerPathError
    from protocols.schema import ProtocolError

    try:
        res = run_cohort(protocol, cohort, out, scheduler=scheduler, n_workers=workers,
                         model_dir=model, report=not no_report)
    except (ProtocolError, CohortError, WorkerPathError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{len(res.processed)} animals analysed, {len(res.skipped)} already done, "
               f"{len(res.failed)} failed")
    for key, why in res.redone.items():
        typer.echo(f"  redone {key}: {'; '.join(why)}", err=True)
    for key, why in res.warned.items():
        typer.echo(f"  flagged {key}: {why}", err=True)
    for key, err in res.failed.items():
        typer.echo(f"  failed {key}: {err}", err=True)
    typer.echo(f"results: {res.out_dir}")
    if res.report_path is not None:
        typer.echo(f"report: {res.report_path}")
    if res.failed:
        typer.echo(f"see {res.out_dir / 'failures.csv'}", err=True)
        raise typer.Exit(1)


def report(
    results: Path = typer.Argument(..., help="Results folder written by 'ethopose run'."),
    scoring: Path | None = typer.Option(None, "--human-scoring", help="Csv of human scoring (subject_id, session, behaviour, frame columns or per-animal endpoint values) for the validation section."),
) -> None:
    """Rebuild report.html of a results folder (e.g. after adding human scoring)."""
    from protocols.report import rebuild_report

    try:
        path = rebuild_report(results, human_scoring=scoring)
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"report: {path}")


def export_nwb(
    results: Path = typer.Argument(..., help="Results folder written by 'ethopose run'."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the NWB files (one per session)."),
    project: Path | None = typer.Option(None, "--project", help="The pose model's labelled project: its training "
                                        "frames are written as ndx-pose PoseTraining."),
    model: Path | None = typer.Option(None, "--model", help="Model folder (split.json: which frames it trained on); "
                                      "default the run's model."),
) -> None:
    """Write one NWB file per session: pose (ndx-pose), bouts, features, endpoints, subject."""
    from protocols.nwb_export import export_results_nwb

    try:
        paths = export_results_nwb(results, out, project=project, model_dir=model)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {len(paths)} NWB files to {out}")


def verify(
    results: Path = typer.Argument(..., help="Results folder written by 'ethopose run' (with manifest.json)."),
) -> None:
    """Hash every file listed in RESULTS/manifest.json again; exit 1 if any changed or is missing."""
    from protocols.manifest import verify_results

    try:
        res = verify_results(results)
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for line in res.lines():
        typer.echo(line)
    if not res.ok:
        raise typer.Exit(1)


def arena_3d(
    views: list[str] = typer.Argument(..., help="CAMERA=ARENA_JSON: one camera's arena.json (corners_px in its image); two or more."),
    calibration: Path = typer.Option(..., "--calibration", help="Calibration TOML (anipose format) of those cameras."),
    out: Path = typer.Option(Path("arena.json"), "--out", "-o", help="The 3D session's arena.json (corners_mm), beside its points3d.nc."),
) -> None:
    """Triangulate the arena floor's corners from each camera's arena.json into a 3D session's arena.json (world mm)."""
    import json

    from features.zones import ArenaError, read_arena
    from pose.atomic import write_text_atomic
    from pose.threed.cameras import CalibrationFileError, load_calibration
    from protocols.geometry import triangulate_arena

    try:
        pairs = [v.split("=", 1) for v in views]
        bad = [v for v, p in zip(views, pairs, strict=True) if len(p) != 2]
        if bad:
            raise ArenaError(f"give each view as CAMERA=ARENA_JSON, got {bad}")
        cameras, _ = load_calibration(calibration)
        corners = triangulate_arena(cameras, {n: read_arena(f, 1.0, 1.0).corners_px for n, f in pairs})
    except (ArenaError, CalibrationFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    write_text_atomic(out, json.dumps({"corners_mm": corners.round(3).tolist(), "calibration": str(calibration),
                                       "views": dict(pairs)}, indent=1))
    typer.echo(f"arena corners (world mm, {pairs[0][0]}'s tl, tr, br, bl): {corners.round(1).tolist()}")
    typer.echo(f"wrote {out}")
