"""``ethopose dashboard [DIR]``: serve the Streamlit dashboard on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

import typer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM when this process dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_child(cmd: Sequence[str], env: Mapping[str, str] | None = None, *, grace_s: float = 5.0) -> int:
    """Run a server (Streamlit) as a child that ends with this process.

    The child gets its own process group; SIGTERM, SIGINT and SIGHUP sent to this process
    are passed on to the whole group, and the group is killed when this process returns
    (or, on Linux, dies). Returns the child's exit code.
    """
    proc = subprocess.Popen(list(cmd), env=None if env is None else dict(env), start_new_session=True,
                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    forwarded: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        forwarded.append(signum)
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass

    sigs = [s for s in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {s: signal.signal(s, forward) for s in sigs}
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:  # pragma: no cover - SIGINT is handled by forward()
                continue
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        try:  # whatever the child left behind in its group
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    return 128 + forwarded[0] if forwarded and code < 0 else code


def dashboard_command(root: Path, port: int | None = None, *, browser: bool = True,
                      address: str = "127.0.0.1") -> list[str]:
    """The ``streamlit run`` command line that serves the dashboard on ``root``."""
    from dashboard.serve import secure_options

    app = Path(__file__).with_name("app.py")
    return [sys.executable, "-m", "dashboard.serve", "run", str(app),
            "--server.address", address, "--server.port", str(port or _free_port()),
            "--server.headless", "false" if browser else "true",
            *secure_options(), "--", str(root.resolve())]


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
    raise typer.Exit(run_child(cmd, env=env))
