"""A full disk (ENOSPC) while writing: the previous complete file stays, the partial copy is removed, and the user
gets one line saying what happened. The disk is a small tmpfs mounted for the test (root only: skipped elsewhere
with the reason, a failure in CI)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from toy import make_toy_table

from benchmark.cli import main
from benchmark.core import outputs
from benchmark.infra import atomic
from benchmark.infra.errors import BenchmarkError

DISK_SIZE = "512k"


@pytest.fixture
def mount_small_disk():
    """``mount(folder)`` mounts a ``DISK_SIZE`` tmpfs on ``folder`` (unmounted after the test)."""
    mounted: list[Path] = []

    def mount(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            reason = f"cannot mount a tmpfs ({done.stderr.strip() or done.returncode}): the disk-full tests need root"
            if os.environ.get("CI") == "true":
                pytest.fail(reason + "; CI runs as root and must run them")
            pytest.skip(reason)
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _fill(folder: Path) -> None:
    """Fill the file system of ``folder`` to the last block (unbuffered writes until ENOSPC)."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def test_a_write_to_a_full_disk_keeps_the_previous_file_and_says_so(tmp_path, mount_small_disk):
    small_disk = mount_small_disk(tmp_path / "disk")
    target = small_disk / "metrics.json"
    atomic.write_text(target, "previous\n")
    _fill(small_disk)
    with pytest.raises(BenchmarkError, match="metrics.json: the disk is full .* the previous complete file is kept"):
        atomic.write_bytes(target, b"x" * 100_000)
    assert target.read_text() == "previous\n"
    assert list(small_disk.glob("*.tmp")) == []


def test_train_on_a_full_disk_exits_with_one_line_and_keeps_the_previous_predictions(tmp_path, monkeypatch, capsys,
                                                                                    mount_small_disk):
    monkeypatch.chdir(tmp_path)
    for dataset in ("faces", "adfes"):
        outputs.write(make_toy_table(dataset=dataset, seed=len(dataset)), tmp_path / "data" / "outputs" / f"{dataset}.parquet")
    params = {"data": {"source": "table", "input": "tables"}, "tracking": {"enabled": False},
              "train": {"methods": ["uncorrected"], "splits": ["faces->adfes"]}, "evaluate": {"reference": "uncorrected"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    results = mount_small_disk(tmp_path / "results")
    assert main(["-q", "train"]) == 0
    previous = (results / "predictions.parquet").read_bytes()
    _fill(results)
    capsys.readouterr()
    assert main(["train"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: results/predictions.parquet: the disk is full (No space left on device)")
    assert "\n" not in err and "Traceback" not in err
    assert (results / "predictions.parquet").read_bytes() == previous
    assert list(results.glob("*.tmp")) == []
