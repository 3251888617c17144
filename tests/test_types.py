"""The project type-checks: mypy, configured in pyproject.toml, reports no error.

Run from the repository root so that mypy reads `[tool.mypy]` there (the packages it checks,
the pydantic plugin, `check_untyped_defs`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_reports_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    stdout, stderr, status = api.run([])
    assert status == 0, f"mypy exited {status}:\n{stdout}{stderr}"
    assert stdout.startswith("Success: no issues found"), stdout
