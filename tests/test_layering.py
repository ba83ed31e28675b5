"""Layers point one way (import-linter) and the analysis layers never import torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import PROJECT_ROOT


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )


def test_import_linter_contract_kept() -> None:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install import-linter)")
    result = subprocess.run([exe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_top_level_packages_do_not_import_torch() -> None:
    result = _run_python(
        """
        import sys
        import pose, features, behavior
        print("torch" in sys.modules)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", "importing pose/features/behavior imported torch"


def test_no_analysis_module_imports_torch() -> None:
    """Every module of features, behavior and pose (outside pose.pipeline) is torch-free."""
    result = _run_python(
        """
        import importlib, pkgutil, sys
        offenders = []
        for top in ("pose", "features", "behavior"):
            pkg = importlib.import_module(top)
            for info in pkgutil.walk_packages(pkg.__path__, top + "."):
                if info.name.startswith("pose.pipeline"):
                    continue
                importlib.import_module(info.name)
                if "torch" in sys.modules:
                    offenders.append(info.name)
                    break
        print(offenders)
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]", f"first module importing torch: {result.stdout.strip()}"
