"""Files and folders the pipeline writes get the permissions the user's umask gives (issue 21): atomic writes make
their temporaries with tempfile (0600 / 0700) and rename them into place, so without a fix a team's shared results
folder could not read what a stage wrote."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from benchmark.infra import atomic


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_umask_is_read_without_changing_it(umask):
    assert atomic.current_umask() == umask
    assert os.umask(umask) == umask


def test_atomically_written_files_get_the_mode_open_would_give(tmp_path, umask):
    atomic.write_text(tmp_path / "report.md", "# report\n")
    atomic.write_json(tmp_path / "metrics.json", {"a": 1})
    atomic.write_with(tmp_path / "predictions.parquet", lambda tmp: pd.DataFrame({"x": [1]}).to_parquet(tmp))
    for name in ("report.md", "metrics.json", "predictions.parquet"):
        assert _mode(tmp_path / name) == 0o666 & ~umask, name


def test_a_replaced_file_gets_the_current_umasks_mode_not_the_old_files(tmp_path, umask):
    target = tmp_path / "metrics.json"
    target.write_text("{}")
    target.chmod(0o600)
    atomic.write_json(target, {"a": 1})
    assert _mode(target) == 0o666 & ~umask


def test_a_folder_replaced_as_a_whole_gets_the_mode_mkdir_would_give(tmp_path, umask):
    figures = tmp_path / "reports" / "figures"
    fresh = atomic.fresh_dir(figures)
    (fresh / "a.png").write_bytes(b"png")
    atomic.replace_dir(fresh, figures)
    assert _mode(figures) == 0o777 & ~umask
    assert _mode(figures / "a.png") == 0o666 & ~umask
