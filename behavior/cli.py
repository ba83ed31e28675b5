"""CLI commands of this layer (being built)."""

import typer

app = typer.Typer(no_args_is_help=True)
