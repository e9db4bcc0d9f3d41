"""The code passes the project's linter configuration (ruff: pyflakes, pycodestyle, import order, bugbear, pyupgrade;
``[tool.ruff]`` in pyproject.toml), so CI, which runs the tests, runs the linter too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    beside = Path(sys.executable).with_name("ruff")
    return [str(beside)] if beside.exists() else [shutil.which("ruff") or "ruff"]


def test_the_code_passes_the_linter():
    done = subprocess.run([*_ruff(), "check", "--no-cache", "--output-format", "concise", "."], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
