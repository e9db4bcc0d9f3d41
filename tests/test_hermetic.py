"""The hermeticity guard of tests/conftest.py: each test runs in its own temporary folder, and a test that reads the
working copy's outputs (what `make repro` left in data/, results/, reports/ ...) fails, naming the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

LEAKY_TEST = """
from conftest import REPO


def test_reads_what_the_pipeline_left():
    try:
        open(REPO / "reports" / "tune" / "study.png", "rb").close()
    except FileNotFoundError:  # a fresh working copy has none; the attempt alone must fail the test
        pass
"""


def test_each_test_runs_in_its_own_temporary_folder(tmp_path):
    assert Path.cwd() == tmp_path


def test_a_test_reading_the_working_copys_outputs_fails_naming_the_path(tmp_path):
    (tmp_path / "test_leaky.py").write_text(LEAKY_TEST)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           "test_leaky.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:]
    leaked = REPO / "reports" / "tune" / "study.png"
    assert f"the test touched the working copy's outputs: open {leaked}" in done.stdout
