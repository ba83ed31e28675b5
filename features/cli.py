"""``ethopose features ...``: gait step cycles, per-frame feature tables, filtering.

Thin commands: parse, call one library function, write atomically. Heavy imports live inside
the commands.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

logger = logging.getLogger(__name__)

app = typer.Typer(no_args_is_help=True, help="Filtering, kinematics, zones and gait.")


def _load(path: str, fps: float | None, px_per_mm: float | None = None):
    from pose.dataset import PoseValidationError
    from pose.io import PoseFileError, load

    try:
        ds = load(path, fps=fps)
    except (PoseFileError, PoseValidationError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if px_per_mm is not None:
        if not px_per_mm > 0:
            typer.echo(f"error: --px-per-mm must be positive, got {px_per_mm}", err=True)
            raise typer.Exit(code=1)
        ds.attrs["px_per_mm"] = float(px_per_mm)
    if ds.attrs.get("fps") is None:
        typer.echo(f"error: {path}: the frame rate is not in the file; pass --fps", err=True)
        raise typer.Exit(code=1)
    return ds


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=1) from exc


@app.command("gait")
def gait(
    pose_file: str = typer.Argument(..., help="Pose file (DeepLabCut .h5/.csv, SLEAP, .nc)."),
    paw: list[str] = typer.Option(None, "--paw", help="Paw keypoint (repeat for several); names may contain spaces."),
    out: str = typer.Option("steps.csv", "--out", help="Step-cycle table (.csv)."),
    fps: float | None = typer.Option(None, "--fps", help="Frame rate (needed for DeepLabCut files)."),
    px_per_mm: float | None = typer.Option(None, "--px-per-mm", help="Calibration: lengths in mm."),
    p_cutoff: float = typer.Option(0.5, "--p-cutoff", help="Drop samples below this confidence."),
    belt_speed_px_s: float = typer.Option(0.0, "--belt-speed-px-s", help="Treadmill belt velocity along +x (px/s)."),
    individual: int = typer.Option(0, "--individual", help="Index of the individual."),
    summary: str | None = typer.Option(None, "--summary", help="Also write the gait summary (.json)."),
    floor: str | None = typer.Option(None, "--floor", help="3D pose: the floor ('z=0', 'point=X,Y,Z;normal=NX,NY,NZ', "
                                     "'board:calibration.toml'); default: found from the paws."),
) -> None:
    """Detect step cycles (toe-off, touch-down, next toe-off) of each paw and write a table.

    Columns: paw, cycle, swing_start_s (toe-off), swing_end_s (touch-down), stance_end_s
    (next toe-off), stride_length, stride_time_s, cadence_hz, swing_s, stance_s,
    duty_factor, speed, length_unit.
    """
    import pandas as pd

    from features.gait import detect_step_cycles, summarize_gait

    ds = _load(pose_file, fps, px_per_mm)
    paws = list(paw or [])
    if not paws:
        paws = [str(k).strip() for k in ds["keypoint"].values if "paw" in str(k).lower()]
        if not paws:
            _fail(ValueError(f"{pose_file}: no --paw given and no keypoint named '*paw*'"))
    tables = []
    for p in paws:
        try:
            tables.append(detect_step_cycles(ds, p, individual=individual, p_cutoff=p_cutoff,
                                             belt_speed_px_s=belt_speed_px_s, floor=floor))
        except KeyError as exc:
            _fail(ValueError(f"{pose_file}: {exc.args[0]}"))
        except ValueError as exc:  # a bad --floor, or no floor found in a 3D pose
            _fail(ValueError(f"{pose_file}: {exc}"))
    if ds.sizes.get("space") == 3:
        from features.threed import resolve_floor

        typer.echo(f"floor: {resolve_floor(ds, floor).how}")
    cycles = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    ppm = ds.attrs.get("px_per_mm")
    if ppm and not cycles.empty:
        cycles["stride_length"] = cycles["stride_length"] / ppm
        cycles["speed"] = cycles["speed"] / ppm
        cycles["length_unit"] = "mm"
    from pose.atomic import atomic_path

    with atomic_path(out) as tmp:
        cycles.to_csv(tmp, index=False)
    for p in paws:
        n = int((cycles.paw == p.strip()).sum()) if not cycles.empty else 0
        typer.echo(f"{p.strip()}: {n} step cycles")
    if not cycles.empty and (len(paws) > 1 or summary):
        summ = summarize_gait(cycles, ds, floor=floor)
        typer.echo(summ["per_paw"].to_string(index=False))
        if summary:
            from pose.atomic import write_text_atomic

            payload = {k: json.loads(v.to_json(orient="records")) for k, v in summ.items()}
            payload.update(pose_file=pose_file, fps=ds.attrs.get("fps"), paws=paws)
            write_text_atomic(summary, json.dumps(payload, indent=2))
            typer.echo(f"wrote {summary}")
    typer.echo(f"wrote {out}")


@app.command("compute")
def compute(
    pose_file: str = typer.Argument(..., help="Pose file (DeepLabCut .h5/.csv, SLEAP, .nc)."),
    out: str = typer.Option(..., "--out", help="Per-frame feature table (.parquet or .csv)."),
    fps: float | None = typer.Option(None, "--fps", help="Frame rate (needed for DeepLabCut files)."),
    px_per_mm: float | None = typer.Option(None, "--px-per-mm", help="Calibration: lengths in mm."),
    zones_file: str | None = typer.Option(None, "--zones", help="Zones JSON (generic or arena.json)."),
    keypoint: str | None = typer.Option(None, "--keypoint", help="Reference keypoint (default body centre)."),
    p_cutoff: float = typer.Option(0.6, "--p-cutoff", help="Drop samples below this confidence."),
    max_gap_s: float = typer.Option(0.2, "--max-gap-s", help="Interpolate gaps up to this long."),
    smooth_s: float = typer.Option(0.2, "--smooth-s", help="Savitzky-Golay window in s (0: none)."),
    min_dwell_s: float = typer.Option(0.5, "--min-dwell-s", help="Minimum zone visit/exit duration."),
    floor: str | None = typer.Option(None, "--floor", help="3D pose: the floor ('z=0', 'point=X,Y,Z;normal=NX,NY,NZ', "
                                     "'board:calibration.toml'); default: found from the paws. Zones are then in mm "
                                     "on it."),
) -> None:
    """Clean the pose, compute the per-frame feature table and a per-session summary.

    Writes OUT and, beside it, OUT's stem + ``.summary.csv`` and ``.summary.json``.
    """
    from features import filters
    from features.table import compute_feature_table, summarize_session
    from features.zones import load_zones
    from pose.atomic import atomic_path, write_text_atomic

    ds = _load(pose_file, fps, px_per_mm)
    zones = None
    if zones_file:
        try:
            zones = load_zones(zones_file)
        except (ValueError, FileNotFoundError) as exc:
            _fail(exc)
        if ds.attrs.get("px_per_mm") is None and zones.px_per_mm and ds.sizes.get("space") != 3:
            ds.attrs["px_per_mm"] = float(zones.px_per_mm)
    steps = filters.standard_steps(threshold=p_cutoff, max_gap_s=max_gap_s,
                                   smooth="savgol" if smooth_s > 0 else "none", window_s=smooth_s)
    try:
        ds = filters.clean(ds, steps)
        if ds.sizes.get("space") == 3:  # triangulated (mm): heights and zones on the floor
            from features.threed import compute_feature_table_3d

            table = compute_feature_table_3d(ds, zones, keypoint=keypoint, floor=floor, min_dwell_s=min_dwell_s)
            typer.echo(f"floor: {table.attrs['floor']}")
        elif floor is not None:
            _fail(ValueError(f"{pose_file}: --floor is for 3D poses; this one is 2D"))
        else:
            table = compute_feature_table(ds, zones, keypoint=keypoint, min_dwell_s=min_dwell_s)
    except (ValueError, KeyError) as exc:
        _fail(exc)
    summary = summarize_session(table)
    out_path = Path(out)
    with atomic_path(out_path) as tmp:
        if out_path.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    base = out_path.with_suffix("")
    with atomic_path(f"{base}.summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    meta = {"pose_file": pose_file, "reference_keypoint": table.attrs.get("reference_keypoint"),
            "length_unit": table.attrs.get("length_unit"), "px_per_mm": ds.attrs.get("px_per_mm"),
            "fps": ds.attrs.get("fps"), "history": ds.attrs.get("history", []),
            "summary": json.loads(summary.to_json(orient="records"))}
    write_text_atomic(f"{base}.summary.json", json.dumps(meta, indent=2, default=str))
    typer.echo(summary.to_string(index=False))
    typer.echo(f"wrote {out_path} ({len(table)} rows) and {base}.summary.csv/.json")


@app.command("filter")
def filter_cmd(
    pose_file: str = typer.Argument(..., help="Pose file to clean."),
    out: str = typer.Option(..., "--out", help="Output pose file (format by suffix, e.g. .nc, .h5)."),
    fps: float | None = typer.Option(None, "--fps", help="Frame rate."),
    p_cutoff: float = typer.Option(0.6, "--p-cutoff", help="Confidence cutoff."),
    max_speed_px_s: float | None = typer.Option(None, "--max-speed-px-s", help="Remove jumps faster than this."),
    max_gap_s: float = typer.Option(0.2, "--max-gap-s", help="Interpolate gaps up to this long."),
    method: str = typer.Option("savgol", "--method", help="savgol | median | kalman | none."),
    window_s: float = typer.Option(0.2, "--window-s", help="Window for savgol/median (s)."),
) -> None:
    """Confidence masking, jump removal, gap interpolation and smoothing of a pose file.

    With ``--method kalman`` the Kalman model skips samples below ``--p-cutoff`` and bridges
    gaps up to ``--max-gap-s``; ``--max-speed-px-s`` removes jumps before it (as for the
    other methods).
    """
    from features import filters
    from pose.io import save

    ds = _load(pose_file, fps)
    if method not in ("savgol", "median", "kalman", "none"):
        _fail(ValueError(f"--method must be savgol, median, kalman or none, got {method!r}"))
    steps = filters.standard_steps(threshold=p_cutoff, max_gap_s=max_gap_s, smooth=method,  # type: ignore[arg-type]
                                   window_s=window_s, max_speed_px_s=max_speed_px_s)
    try:
        ds = filters.clean(ds, steps)
    except ValueError as exc:
        _fail(exc)
    save(ds, out)
    typer.echo(f"wrote {out}")
