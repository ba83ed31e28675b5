"""The Streamlit child of ``ethopose dashboard`` / ``ethopose label`` ends with its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait(pred, timeout_s: float = 20.0) -> bool:
    end = time.time() + timeout_s
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def _parent(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """A process that runs a 'server' (which itself starts a grandchild) through run_child."""
    pids = tmp_path / "pids"
    server = textwrap.dedent(f"""
        import os, subprocess, sys, time
        g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{g.pid}}")
        time.sleep(600)
    """)
    code = f"import sys; from dashboard.cli import run_child; sys.exit(run_child([sys.executable, '-c', {server!r}]))"
    # SIGINT as at a terminal: a test run started in the background (``pytest &``, nohup)
    # inherits SIGINT ignored, and Python then never raises KeyboardInterrupt in the parent
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[2],
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert _wait(lambda: pids.is_file() and len(pids.read_text().split()) == 2), "server did not start"
    return proc, pids


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_server_and_its_children_end_with_the_parent(tmp_path, sig):
    proc, pids = _parent(tmp_path)
    server, grandchild = map(int, pids.read_text().split())
    assert _alive(server) and _alive(grandchild)
    proc.send_signal(sig)
    proc.wait(timeout=20)
    if sig != signal.SIGKILL:
        assert proc.returncode in (128 + sig, -sig, 0, 1), proc.returncode
        assert _wait(lambda: not _alive(grandchild)), "grandchild left running"
    assert _wait(lambda: not _alive(server)), f"server left running after {sig.name}"
    if sig == signal.SIGKILL and _alive(grandchild):  # the kernel's PDEATHSIG reaches the server only
        os.kill(grandchild, signal.SIGKILL)


@pytest.mark.slow
def test_sigterm_to_ethopose_dashboard_ends_streamlit(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "ethopose", "dashboard", str(tmp_path), "--no-browser",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> bool:
        with socket.socket() as c:
            return c.connect_ex(("127.0.0.1", port)) == 0

    try:
        assert _wait(listening, 90), "dashboard did not start"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert _wait(lambda: not listening(), 30), "streamlit still serving after SIGTERM to ethopose dashboard"
    finally:
        if proc.poll() is None:
            proc.kill()
