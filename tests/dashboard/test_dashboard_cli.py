"""``ethopose dashboard``: binds to 127.0.0.1, refuses a missing folder."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dashboard.cli import dashboard_command
from ethopose.cli import app


def test_command_binds_localhost(tmp_path: Path):
    cmd = dashboard_command(tmp_path, 8123, browser=False)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8123"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[-1] == str(tmp_path.resolve()) and cmd[-2] == "--"
    assert cmd[cmd.index("run") + 1].endswith("dashboard/app.py") and cmd[2] == "dashboard.serve"


def test_missing_folder_is_refused(tmp_path: Path):
    res = CliRunner().invoke(app, ["dashboard", str(tmp_path / "nope"), "--no-browser"])
    assert res.exit_code == 2 and "is not a folder" in res.output
