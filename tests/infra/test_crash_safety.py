"""SIGKILL during a stage: the results file is the old complete version or the new complete one, never a mixture;
rerunning restarts cleanly; the killed process's MLflow run does not stay RUNNING."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from toy import make_toy_table

from benchmark.cli import main
from benchmark.core import outputs
from benchmark.infra import atomic

pytestmark = pytest.mark.slow


def test_a_killed_writer_leaves_the_old_file_and_its_temporary_is_cleaned_by_the_next_write(tmp_path):
    target = tmp_path / "metrics.json"
    atomic.write_text(target, "old\n")
    child = (f"import os, signal\nfrom benchmark.infra import atomic\n"
             f"with atomic.atomic_path({str(target)!r}) as tmp:\n"
             f"    tmp.write_text('half')\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, "-c", child]).returncode == -9
    assert target.read_text() == "old\n"
    assert len(list(tmp_path.glob(".metrics.json.*.tmp"))) == 1
    atomic.write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert list(tmp_path.glob(".metrics.json.*.tmp")) == []


def _project(root: Path) -> None:
    for dataset in ("faces", "adfes"):
        outputs.write(make_toy_table(dataset=dataset, subjects_per_gender=10, images_per_cell=2, seed=len(dataset)),
                      root / "data" / "outputs" / f"{dataset}.parquet")
    params = {
        "data": {"source": "table", "input": "tables"},
        "train": {"methods": ["uncorrected", "corrector"], "splits": ["faces->adfes", "cv:faces"], "n_seeds": 4,
                  "corrector": {"epochs": 400}},
        "evaluate": {"reference": "uncorrected", "n_resamples": 200, "n_permutations": 200},
        "tracking": {"enabled": True, "uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": "crash"},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))


KILL_AT_RENAME = """
import os, signal, sys
from benchmark.infra import atomic
real_replace = os.replace

def replace_or_die(src, dst):
    if str(dst).endswith(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)   # the new file is complete in its temporary, the old one untouched
    return real_replace(src, dst)

atomic.os.replace = replace_or_die
from benchmark.cli import main
sys.exit(main(["-q", sys.argv[1]]))
"""


def _kill_at_the_final_rename(root: Path, stage: str, target: str) -> None:
    """Run ``stage`` in a subprocess that SIGKILLs itself at the worst moment: its result is fully written to a
    temporary file and about to replace ``target``."""
    result = subprocess.run([sys.executable, "-c", KILL_AT_RENAME, stage, target], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert result.returncode == -signal.SIGKILL


@pytest.mark.parametrize("stage, target", [("train", "results/predictions.parquet"),
                                           ("evaluate", "reports/metrics.json")])
def test_sigkill_during_a_stage_keeps_the_old_results_and_a_rerun_completes(tmp_path, monkeypatch, stage, target):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _project(tmp_path)
    assert main(["-q", "train"]) == 0
    assert main(["-q", "evaluate"]) == 0
    old = (tmp_path / target).read_bytes()
    _kill_at_the_final_rename(tmp_path, stage, target)
    assert (tmp_path / target).read_bytes() == old
    assert len(list((tmp_path / target).parent.glob("*.tmp"))) == 1  # the killed writer's complete temporary
    assert main(["-q", stage]) == 0
    assert (tmp_path / target).read_bytes() == old  # same params and seeds: the new complete file is identical
    assert list((tmp_path / target).parent.glob("*.tmp")) == []
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["crash"])
    assert "RUNNING" not in set(runs["status"])
