"""``ethopose dashboard [DIR]``: serve the Streamlit dashboard on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import typer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dashboard_command(root: Path, port: int | None = None, *, browser: bool = True,
                      address: str = "127.0.0.1") -> list[str]:
    """The ``streamlit run`` command line that serves the dashboard on ``root``."""
    app = Path(__file__).with_name("app.py")
    return [sys.executable, "-m", "streamlit", "run", str(app),
            "--server.address", address, "--server.port", str(port or _free_port()),
            "--server.headless", "false" if browser else "true",
            "--browser.gatherUsageStats", "false", "--", str(root.resolve())]


def dashboard(
    root: Path = typer.Argument(Path("."), help="Results folder of 'ethopose run' (or a folder holding several)."),
    port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (0 = a free one)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser tab."),
) -> None:
    """Open the dashboard on DIR: cohort overview, animal QC, ethograms, endpoints, validation, labelling."""
    if not root.is_dir():
        typer.echo(f"error: {root} is not a folder", err=True)
        raise typer.Exit(2)
    cmd = dashboard_command(root, port or None, browser=not no_browser)
    url = f"http://127.0.0.1:{cmd[cmd.index('--server.port') + 1]}"
    typer.echo(f"serving the dashboard of {root.resolve()} at {url} (Ctrl-C to stop)")
    env = dict(os.environ, ETHOPOSE_DASHBOARD_ROOT=str(root.resolve()))
    raise typer.Exit(subprocess.call(cmd, env=env))
