"""``ethopose convert``: convert a pose file between formats."""

import typer


def convert(
    input_path: str = typer.Argument(..., help="Pose file to read."),
    output_path: str = typer.Argument(..., help="File to write; the format follows the suffix."),
) -> None:
    """Convert a pose file between DeepLabCut h5/csv, SLEAP, and NetCDF."""
    raise typer.BadParameter("convert is not implemented yet")
