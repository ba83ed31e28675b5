"""``ethopose label PROJECT``: open the labelling page in the browser (served on 127.0.0.1)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import typer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def label_command(project: Path, port: int | None = None, *, browser: bool = True) -> list[str]:
    """The ``streamlit run`` command line that serves the labelling page of ``project``."""
    from dashboard.serve import secure_options

    app = Path(__file__).with_name("app.py")
    return [
        sys.executable, "-m", "dashboard.serve", "run", str(app),
        "--server.address", "127.0.0.1",
        "--server.port", str(port or _free_port()),
        "--server.headless", "false" if browser else "true",
        *secure_options(),
        "--", str(project.resolve()),
    ]


def label(
    project: Path = typer.Argument(..., help="Project folder (with config.yaml and labeled-data/)."),
    port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (0 = a free one)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser tab."),
) -> None:
    """Label body parts in the browser; every click is saved to CollectedData_<scorer>.h5/.csv."""
    from pose.refine.labels import read_project_info

    try:
        read_project_info(project)
    except (FileNotFoundError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    cmd = label_command(project, port or None, browser=not no_browser)
    typer.echo(f"serving the labelling page of {project} at http://127.0.0.1:{cmd[cmd.index('--server.port') + 1]}")
    from dashboard.cli import run_child

    raise typer.Exit(run_child(cmd))
