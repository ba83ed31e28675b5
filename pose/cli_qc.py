"""``ethopose qc VIDEO...``: the video QC gate as a command (see :mod:`pose.qc`)."""

from __future__ import annotations

from pathlib import Path

import typer


def qc(
    videos: list[Path] = typer.Argument(..., help="Video files."),
    pose: list[Path] = typer.Option(None, "--pose", help="Pose file of each video (same order), to compare frame counts."),
    px_per_mm: float | None = typer.Option(None, "--px-per-mm", help="Calibration, checked against --arena-mm and the frame size."),
    arena_mm: float | None = typer.Option(None, "--arena-mm", help="Arena size (side or diameter) in mm."),
    max_frames: int | None = typer.Option(None, "--max-frames", help="Decode at most this many frames per video for the image checks."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write every check of every video to this csv."),
) -> None:
    """Check videos before inference: truncation, frame rate, dropped/duplicated frames, drift, blur, calibration.

    Exit code 1 when any video fails a check.
    """
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from pose.atomic import atomic_path
    from pose.io import load
    from pose.qc import check_video

    if pose and len(pose) != len(videos):
        raise typer.BadParameter(f"{len(pose)} --pose files for {len(videos)} videos: give one per video or none")
    results = []
    for i, video in enumerate(videos):
        frames = load(pose[i]).sizes["time"] if pose else None
        results.append(check_video(video, pose_frames=frames, px_per_mm=px_per_mm, arena_size_mm=arena_mm,
                                   max_frames=max_frames))
    colour = {"pass": "green", "warn": "yellow", "fail": "bold red"}
    table = Table(title="video QC")
    for col in ("video", "status", "frames", "fps", "reasons"):
        table.add_column(col)
    for r in results:
        table.add_row(r.video.name, f"[{colour[r.status]}]{r.status}[/]", str(r.n_frames), f"{r.fps:.3f}",
                      "\n".join(r.reasons) or "-")
    Console().print(table)
    if out is not None:
        rows = pd.concat([r.checks.assign(video=str(r.video)) for r in results], ignore_index=True)
        with atomic_path(out) as tmp:
            rows.to_csv(tmp, index=False)
        typer.echo(f"checks written to {out}")
    if any(r.status == "fail" for r in results):
        raise typer.Exit(1)
