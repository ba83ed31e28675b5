"""``ethopose pose track`` and ``ethopose pose swap``: identities of a multi-animal pose file.

Thin: parse, call one library function, write. The settings the tracker derives from the
data (body size, gate, coasting, motion noise) are printed with their reasons.
"""

from __future__ import annotations

from pathlib import Path

import typer


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _suspects_path(out: Path) -> Path:
    return out.with_name(out.name.split(".")[0] + "_swap_suspects.csv")


def track(
    pose_file: Path = typer.Argument(..., help="Multi-animal pose file (.h5, .csv, .slp, .analysis.h5, .nc)."),
    out: Path = typer.Option(..., "--out", help="Tracked pose file to write (format from the suffix; .nc keeps identity_confidence)."),
    video: Path = typer.Option(None, "--video", help="The video of POSE_FILE: its frame rate when the file has none, and the animals' colours (used when they differ, e.g. two coats)."),
    n_animals: int = typer.Option(None, "--n-animals", min=1, help="Known number of animals (closed arena): tracks never end. Default: estimated from the per-frame instance counts (printed)."),
    open_set: bool = typer.Option(False, "--open-set", help="Animals enter and leave: no count is estimated, tracks end after --max-coast-s."),
    max_coast_s: float = typer.Option(1.0, "--max-coast-s", min=0.0, help="How long a track without an instance coasts, s."),
    gate_px: float = typer.Option(None, "--gate-px", help="Largest mean keypoint distance (px) to join a track; default derived."),
    low_margin: float = typer.Option(0.25, "--low-margin", help="Identity confidence under which frames are swap suspects."),
    fps: float = typer.Option(None, "--fps", help="Frame rate when neither the file nor the video has one."),
    suspects: Path = typer.Option(None, "--suspects", help="Swap-suspects csv (default: <out stem>_swap_suspects.csv)."),
) -> None:
    """Assign consistent identities to the animals of a multi-animal pose file."""
    from pydantic import ValidationError

    from pose import io as pose_io
    from pose.dataset import PoseValidationError
    from pose.tracking import (
        IdentityLimits,
        TrackingConfig,
        detect_swap_suspects,
        summarize_identity_quality,
        track_identities,
        write_suspects,
    )

    try:
        ds = pose_io.load(pose_file, fps=fps)
    except (pose_io.PoseFileError, PoseValidationError) as exc:
        _fail(str(exc))
    if video is not None:
        if not video.is_file():
            _fail(f"video {video} not found")
        if ds.attrs.get("fps") is None and fps is None:
            from pose.video import VideoReader

            with VideoReader(video) as reader:
                video_fps = reader.fps
            if video_fps == video_fps:  # not NaN
                fps = video_fps
                typer.echo(f"frame rate {fps:g} fps from {video}")
                ds = pose_io.load(pose_file, fps=fps)
        ds.attrs["video_path"] = str(video)
    try:
        config = TrackingConfig(n_animals=n_animals, open_set=open_set, max_coast_s=max_coast_s,
                                gate_px=gate_px, low_margin=low_margin, fps=fps)
        appearance = None
        if video is not None:
            from pose.tracking.appearance import sample_appearance

            typer.echo(f"sampling the animals' colours from {video}")
            appearance = sample_appearance(video, ds)
        result = track_identities(ds, config, appearance)
    except (ValidationError, ValueError) as exc:
        _fail(f"{pose_file}: {exc}")
    s = result.settings
    typer.echo(f"animals: {s.n_animals if s.n_animals is not None else 'open set'} "
               f"({s.reasons.get('n_animals', '')})")
    typer.echo(f"gate {s.gate_px:.1f} px ({s.reasons.get('gate_px', '')}); body {s.body_size_px:.1f} px, "
               f"step {s.step_px:.1f} px")
    if result.episodes is not None:
        e = result.episodes
        typer.echo(f"unsure runs of frames: {e.n_episodes}, {e.n_bridged} bridged as a whole (up to the "
                   f"coasting horizon); identities exchanged after {len(e.relabelled_at)} of them "
                   f"(rows {list(e.relabelled_at)[:10]}{' ...' if len(e.relabelled_at) > 10 else ''})")
    table = detect_swap_suspects(result.pose, low_margin=low_margin)
    quality = summarize_identity_quality(result.pose, table, IdentityLimits(low_margin=low_margin))
    pose_io.save(result.pose, out)
    sus = write_suspects(table, suspects or _suspects_path(out))
    counts = table["kind"].value_counts().to_dict() if len(table) else {}
    typer.echo(f"wrote {out}: {result.pose.sizes['individual']} tracks over "
               f"{result.pose.sizes['time']} frames; {len(table)} swap suspects {counts} -> {sus}")
    typer.echo(f"identity confidence: median {quality['median_identity_confidence']:.2f}, "
               f"{quality['low_confidence_frames_pct']:.2f} % of frames under {low_margin:g}, "
               f"{quality['low_margin_events_per_min']:.1f} low-margin events per minute")
    if quality["identity_quality"] != "ok":
        typer.echo(f"WARNING: IDENTITIES UNRELIABLE: {quality['identity_reason']}. Review the frames "
                   f"in {sus} (ethopose pose swap fixes a swap) before using per-animal results.", err=True)


def swap(
    pose_file: Path = typer.Argument(..., help="Tracked pose file."),
    ids: tuple[str, str] = typer.Option(..., "--ids", help="The two individuals to exchange."),
    from_frame: int = typer.Option(..., "--from-frame", help="First frame number that is swapped."),
    out: Path = typer.Option(..., "--out", help="Corrected pose file to write."),
) -> None:
    """Exchange two identities from a frame on (the correction is kept in the history)."""
    from pose import io as pose_io
    from pose.dataset import PoseValidationError
    from pose.tracking import swap_identities

    try:
        ds = pose_io.load(pose_file)
        fixed = swap_identities(ds, ids[0], ids[1], from_frame)
    except (pose_io.PoseFileError, PoseValidationError, ValueError) as exc:
        _fail(f"{pose_file}: {exc}")
    pose_io.save(fixed, out)
    typer.echo(f"wrote {out}: {ids[0]} <-> {ids[1]} from frame {from_frame} "
               f"({fixed.attrs['history'][-1]['params']['n_rows']} rows)")
