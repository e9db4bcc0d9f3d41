"""One writer per working copy and stage: a second invocation of a stage is refused with one line naming the holder's
pid and writes nothing; a lock left by a dead process is taken over; concurrent tune workers serialise their
summaries instead of being refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from toy import make_toy_table

from benchmark.cli import main
from benchmark.core import outputs
from benchmark.infra import paths, process_locks
from benchmark.infra.errors import BenchmarkError

HOLD = """
import sys, time
from benchmark.infra import process_locks
with process_locks.hold(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(600)
"""


def _project(root: Path) -> None:
    for dataset in ("faces", "adfes"):
        outputs.write(make_toy_table(dataset=dataset, seed=len(dataset)), root / "data" / "outputs" / f"{dataset}.parquet")
    params = {"data": {"source": "table", "input": "tables"}, "tracking": {"enabled": False},
              "train": {"methods": ["uncorrected"], "splits": ["faces->adfes"]}, "evaluate": {"reference": "uncorrected"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def _holder(root: Path, name: str) -> subprocess.Popen:
    """A process of ours holding the lock ``name`` of the working copy ``root`` until killed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, name], cwd=root, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_second_train_in_the_same_working_copy_is_refused_naming_the_holder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _project(tmp_path)
    holder = _holder(tmp_path, "train")
    try:
        code = main(["train"])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err == (f"error: {paths.LOCKS_DIR / 'train.lock'}: another `benchmark train` (pid {holder.pid}) is writing "
                   f"the same files in this working copy; wait for it to finish, or stop it")
    assert not (tmp_path / "results").exists()


def test_stages_writing_other_files_run_while_one_holds_its_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _project(tmp_path)
    holder = _holder(tmp_path, "evaluate")
    try:
        assert main(["-q", "train"]) == 0
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_holder_is_taken_over(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _project(tmp_path)
    holder = _holder(tmp_path, "train")
    holder.kill()  # SIGKILL: no cleanup; its pid stays in the lock file
    holder.wait()
    assert (tmp_path / paths.LOCKS_DIR / "train.lock").read_text().strip() == str(holder.pid)
    assert main(["-q", "train"]) == 0
    assert (tmp_path / "results" / "predictions.parquet").exists()


def test_a_lock_file_naming_a_dead_pid_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = tmp_path / "locks"
    folder.mkdir()
    (folder / "fetch.lock").write_text(dead.stdout)
    with process_locks.hold("fetch", folder=folder) as path:
        assert path.read_text().strip() == str(os.getpid())


def test_waiting_for_a_lock_gives_up_after_the_wait_naming_the_holder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    holder = _holder(tmp_path, "tune-summary")
    started = time.monotonic()
    try:
        with pytest.raises(BenchmarkError, match=rf"another `x` \(pid {holder.pid}\)"):
            with process_locks.hold("tune-summary", wait_s=0.5, what="x"):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert time.monotonic() - started >= 0.5
