"""Project errors leave the ``ethopose`` CLI as one ``error:`` line with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ethopose.cli import PROJECT_ERROR_EXIT, app, is_project_error


def _error_classes() -> list[type[Exception]]:
    from behavior.annotations import AnnotationError
    from behavior.classifier import ModelMismatchError
    from pose.dataset import PoseValidationError
    from pose.io.errors import PoseFileError
    from pose.video import VideoDecodeError, VideoError
    from protocols.batch import CohortError
    from protocols.endpoints import SessionError
    from protocols.geometry import ArenaError
    from protocols.schema import ProtocolError

    return [AnnotationError, ModelMismatchError, PoseValidationError, VideoError, VideoDecodeError,
            CohortError, SessionError, ArenaError, ProtocolError, lambda msg: PoseFileError("x.h5", msg)]


def _bad_csv(tmp_path: Path) -> Path:
    bad = tmp_path / "broken.csv"
    bad.write_text("scorer,me,me\nbodyparts,a,a\ncoords,x,y\n0,1.0\n")
    return bad


def test_bad_input_file_one_line_naming_it(tmp_path: Path) -> None:
    bad = _bad_csv(tmp_path)
    result = CliRunner().invoke(app, ["convert", str(bad), str(tmp_path / "out.nc")])
    assert result.exit_code == PROJECT_ERROR_EXIT == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0], result.output
    assert "line 4 has 2 fields" in lines[0] and "Traceback" not in result.output


def test_verbose_adds_the_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--verbose", "convert", str(_bad_csv(tmp_path)), str(tmp_path / "o.nc")])
    assert result.exit_code == 2
    assert "Traceback" in result.output and "PoseFileError" in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.parametrize("make", _error_classes(), ids=lambda c: getattr(c, "__name__", "PoseFileError"))
def test_every_project_error_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make) -> None:
    import pose.io

    exc = make("frame 12, field 'x': something is wrong\nsecond line")

    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(pose.io, "load", boom)
    result = CliRunner().invoke(app, ["convert", str(tmp_path / "a.csv"), str(tmp_path / "b.nc")])
    assert result.exit_code == 2, result.output
    prefix = "x.h5: " if str(exc).startswith("x.h5") else ""
    assert result.output.strip().splitlines() == [f"error: {prefix}frame 12, field 'x': something is wrong; second line"]


def test_foreign_exceptions_are_not_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug (not a project error) keeps its traceback: it must be seen and fixed."""
    import pose.io

    monkeypatch.setattr(pose.io, "load", lambda *a, **k: {}["missing"])
    result = CliRunner().invoke(app, ["convert", str(tmp_path / "a.csv"), str(tmp_path / "b.nc")])
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)
    assert not is_project_error(KeyError("x")) and not is_project_error(ValueError("x"))


def test_python_m_ethopose_subprocess(tmp_path: Path) -> None:
    bad = _bad_csv(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "ethopose", "convert", str(bad), str(tmp_path / "o.nc")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0], proc.stderr
    assert proc.stdout == ""


def test_value_error_raised_by_project_code_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """"Missing calibration" is a plain ValueError raised by features code: one line too."""
    import numpy as np

    import pose.io
    from features.kinematics import to_mm
    from pose.dataset import from_numpy

    def load_without_calibration(*args, **kwargs):
        return to_mm(from_numpy(np.zeros((3, 2, 1, 1))).position)

    monkeypatch.setattr(pose.io, "load", load_without_calibration)
    result = CliRunner().invoke(app, ["convert", str(tmp_path / "a.csv"), str(tmp_path / "b.nc")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["error: to_mm needs px_per_mm (argument, or attrs['px_per_mm'] of ds)"]
    with pytest.raises(ValueError) as info:
        np.zeros(2).reshape(3)  # raised inside numpy: a bug, not an input error
    assert not is_project_error(info.value)
