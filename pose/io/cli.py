"""``ethopose convert``: convert a pose file between formats."""

from __future__ import annotations

import typer


def convert(
    input_path: str = typer.Argument(..., help="Pose file to read (.h5, .csv, .slp, .analysis.h5, .nc)."),
    output_path: str = typer.Argument(..., help="File to write; the format follows the suffix."),
    fps: float | None = typer.Option(None, "--fps", help="Frame rate (sets time in seconds)."),
) -> None:
    """Convert a pose file between DeepLabCut h5/csv, SLEAP .slp/.analysis.h5, and NetCDF.

    A bad input raises PoseFileError / PoseValidationError, which the ``ethopose`` app
    prints as one ``error: <file>: <what>`` line with exit code 2.
    """
    from pose.dataset import append_history
    from pose.io import load, save

    ds = load(input_path, fps=fps)
    ds = append_history(ds, "convert", {"input": input_path, "output": output_path, "fps": fps})
    save(ds, output_path)
    sizes = ", ".join(f"{k}={v}" for k, v in ds.sizes.items())
    typer.echo(f"wrote {output_path} ({sizes})")
