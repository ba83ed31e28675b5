"""Locked down: loopback-only Host/Origin (DNS rebinding), no metrics, cohort paths inside the root."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from dashboard.cli import dashboard_command
from dashboard.paths import cohort_paths_outside
from dashboard.serve import refusal
from tests.browser_support import wait_http


@pytest.mark.parametrize(("host", "origin", "path", "status"), [
    ("127.0.0.1:8501", None, "/", None),
    ("localhost:8501", "http://localhost:8501", "/_stcore/stream", None),
    ("[::1]:8501", "http://[::1]:8501", "/", None),
    ("evil.example.com:8501", None, "/", 403),
    ("evil.example.com:8501", "http://evil.example.com:8501", "/_stcore/stream", 403),
    ("127.0.0.1:8501", "http://evil.example.com", "/_stcore/stream", 403),
    ("127.0.0.1:8501", "null", "/_stcore/stream", 403),
    ("127.0.0.1.evil.example.com", None, "/", 403),
    ("user@127.0.0.1", None, "/", 403),
    (None, None, "/", 403),
    ("127.0.0.1:8501", None, "/_stcore/metrics", 404),
])
def test_refusal_rules(host, origin, path, status):
    why = refusal(host, origin, path)
    assert (why[0] if why else None) == status


def _handshake(port: int, host: str, origin: str | None, path: str = "/_stcore/stream") -> int:
    """Raw HTTP request (forged headers allowed); returns the status code."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    if path.endswith("stream"):
        lines += ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol: streamlit"]
    if origin:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = s.recv(4096).decode("latin-1")
    return int(head.split()[1])


def test_server_refuses_forged_host_foreign_origin_and_metrics(tmp_path: Path):
    cmd = dashboard_command(tmp_path, None, browser=False)
    port = int(cmd[cmd.index("--server.port") + 1])
    assert "minimal" in cmd and cmd[cmd.index("--client.showErrorDetails") + 1] == "none"
    env = dict(os.environ, ETHOPOSE_DASHBOARD_ROOT=str(tmp_path))
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        assert wait_http(f"http://127.0.0.1:{port}/_stcore/health", 120) == b"ok"
        me = f"127.0.0.1:{port}"
        assert _handshake(port, me, None, "/") == 200
        assert _handshake(port, me, f"http://{me}") == 101  # the app's own websocket
        assert _handshake(port, f"evil.example.com:{port}", None, "/") == 403
        assert _handshake(port, f"evil.example.com:{port}", f"http://evil.example.com:{port}") == 403
        assert _handshake(port, me, "http://evil.example.com") == 403
        assert _handshake(port, me, None, "/_stcore/metrics") == 404
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def test_cohort_paths_outside_the_root_are_named(tmp_path: Path):
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "m1.nc").write_text("x")
    (tmp_path / "secret.nc").write_text("x")
    os.symlink(tmp_path / "secret.nc", root / "data" / "link.nc")
    csv = root / "data" / "cohort.csv"
    csv.write_text("subject_id,group,pose_path\n"
                   "m1,a,m1.nc\n"
                   f"m2,a,{tmp_path / 'secret.nc'}\n"
                   "m3,b,../../secret.nc\n"
                   "m4,b,link.nc\n"
                   f"m5,b,{root / 'data' / 'm1.nc'}\n")
    problems = cohort_paths_outside(root, "data/cohort.csv")
    assert len(problems) == 3, problems
    for line, sid in ((3, "m2"), (4, "m3"), (5, "m4")):
        assert any(f"data/cohort.csv line {line} (subject '{sid}'), column 'pose_path'" in p for p in problems)
    assert not any(str(tmp_path) in p.split(":", 1)[0] for p in problems)
    csv.write_text("subject_id,group,pose_path\nm1,a,m1.nc\n")
    assert cohort_paths_outside(root, "data/cohort.csv") == []


def test_run_page_refuses_a_cohort_reading_outside_the_root(tmp_path: Path):
    from streamlit.testing.v1 import AppTest

    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "elsewhere.nc").write_text("x")
    (root / "cohort.csv").write_text(f"subject_id,group,pose_path\nm1,a,{tmp_path / 'elsewhere.nc'}\n")
    page = Path(__file__).resolve().parents[2] / "dashboard" / "pages" / "run.py"
    at = AppTest.from_file(str(page), default_timeout=120)
    at.session_state["root"] = str(root)
    at.run()
    at.button(key="run_start").click().run()
    errors = [e.value for e in at.error]
    assert any("cohort.csv line 2 (subject 'm1'), column 'pose_path'" in e and "outside the dashboard root" in e
               for e in errors), errors
    assert not (root / "results" / "dashboard_run.log").exists()  # nothing was started
