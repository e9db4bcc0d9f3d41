"""Ctrl-C (SIGINT) and SIGTERM end a stage cleanly: exit 130 / 143 with one line, the stage's MLflow run marked
KILLED, no partial or temporary file, the previous complete outputs kept, and worker processes stopped."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from toy import make_toy_table

from benchmark.core import outputs

pytestmark = pytest.mark.slow

#: generous upper bound on how long a stage may take to end after the signal (catches a hang, not a benchmark)
STOP_BOUND_S = 30.0


def _tables(root: Path) -> None:
    for dataset in ("faces", "adfes"):
        outputs.write(make_toy_table(dataset=dataset, subjects_per_gender=6, images_per_cell=2, seed=len(dataset)),
                      root / "data" / "outputs" / f"{dataset}.parquet")


def _params(root: Path, **sections) -> None:
    params = {"data": {"source": "table", "input": "tables"},
              "tracking": {"enabled": True, "uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": "interrupt"},
              **sections}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def _run_statuses(root: Path) -> list[str]:
    """Statuses of the MLflow runs in the project's store (read with sqlite3: no MLflow import, no locking games)."""
    if not (root / "mlflow.db").exists():
        return []
    with sqlite3.connect(root / "mlflow.db", timeout=10) as db:
        try:
            return [row[0] for row in db.execute("select status from runs")]
        except sqlite3.OperationalError:  # tables not created yet
            return []


def _interrupts_at_default() -> None:
    """In a stage's process before it starts: Ctrl-C at its default disposition. A test run started in the
    background (``nohup make test &``) passes SIGINT on ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tmp")] + [p for p in root.rglob(".figures.*")]


TUNE = {"cv_folds": 2, "n_seeds": 1, "heartbeat_s": 1, "pruning": False, "study": "interrupt",
        "space": {"depth": [1, 2], "width": [4, 8], "dropout": [0.0, 0.2], "attribute_weight": [0.3, 0.7],
                  "lr": [1.0e-3, 1.0e-2], "epochs": [800, 1000], "batch_size": [16, 32], "input": ["logits", "probs"]}}


@pytest.mark.parametrize("sent, jobs, exit_code", [(signal.SIGTERM, 1, 143), (signal.SIGINT, 2, 130)],
                         ids=["sigterm_one_process", "sigint_with_trial_processes"])
def test_a_signal_during_tune_ends_it_cleanly_with_its_mlflow_run_killed(tmp_path, sent, jobs, exit_code):
    _tables(tmp_path)
    _params(tmp_path, tune={**TUNE, "storage": f"sqlite:///{tmp_path / 'optuna.db'}", "jobs": jobs})
    child = subprocess.Popen([sys.executable, "-m", "benchmark", "-q", "tune", "--n-trials", "50"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                             preexec_fn=_interrupts_at_default)
    deadline = time.monotonic() + 120
    while "RUNNING" not in _run_statuses(tmp_path) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.3)
    assert child.poll() is None, child.communicate()
    time.sleep(2.0)  # into the trials
    sent_at = time.monotonic()
    if sent == signal.SIGINT:
        os.killpg(child.pid, sent)  # Ctrl-C in a terminal reaches the whole process group
    else:
        child.send_signal(sent)  # `kill PID` reaches the main process only
    _, err = child.communicate(timeout=120)
    stopped_after = time.monotonic() - sent_at
    assert child.returncode == exit_code, err[-2000:]
    assert err.strip().splitlines()[-1].startswith(f"error: interrupted by {sent.name}")
    assert "Traceback" not in err, err[-2000:]
    assert stopped_after < STOP_BOUND_S
    assert _run_statuses(tmp_path) == ["KILLED", "KILLED"]   # the stage run and its pipeline run
    assert not (tmp_path / "reports" / "tune").exists()  # interrupted before its summary: nothing half-written
    assert _temporaries(tmp_path) == []
    assert _session_ends(child.pid)  # its trial processes are gone too


def _session_ends(session: int, within_s: float = 10.0) -> bool:
    """Whether every process of ``session`` has exited within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-s", str(session)], capture_output=True).returncode == 1:
            return True
        time.sleep(0.2)
    return False


TERM_INSIDE_WRITE = """
import os, signal, sys
import pyarrow.parquet as pq
real_write = pq.write_table

def write_then_term(table, where, *args, **kwargs):
    real_write(table, where, *args, **kwargs)   # the new file is complete in its temporary ...
    os.kill(os.getpid(), signal.SIG{name})       # ... and the signal arrives before the rename
pq.write_table = write_then_term
from benchmark.cli import main
sys.exit(main(["-q", "train"]))
"""


@pytest.mark.parametrize("name, exit_code", [("TERM", 143), ("INT", 130)])
def test_a_signal_while_train_writes_keeps_the_previous_predictions(tmp_path, name, exit_code):
    _tables(tmp_path)
    _params(tmp_path, train={"methods": ["uncorrected"], "splits": ["faces->adfes"]},
            evaluate={"reference": "uncorrected"})
    previous = tmp_path / "results" / "predictions.parquet"
    previous.parent.mkdir()
    previous.write_bytes(b"the previous complete file")
    done = subprocess.run([sys.executable, "-c", TERM_INSIDE_WRITE.replace("{name}", name)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, preexec_fn=_interrupts_at_default)
    assert done.returncode == exit_code, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: interrupted by SIG{name}")
    assert previous.read_bytes() == b"the previous complete file"
    assert _temporaries(tmp_path) == []
