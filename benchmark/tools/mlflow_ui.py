"""``benchmark ui``: serve the project's MLflow store with ``mlflow ui`` and give the link that opens on the comparison.

MLflow 3's UI opens an experiment in its GenAI mode (traces) unless the browser has chosen the machine-learning mode
before; the URL parameter ``workflowType=machine_learning`` chooses it, and ``#/experiments/<id>/runs`` is the runs
view, where each pipeline run is a parent run with its stage runs nested under it. A tracking server (``http://``)
is not served again: its link is printed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmark.core.settings import TrackingSettings
from benchmark.experiment import tracking
from benchmark.infra.errors import BenchmarkError

#: the UI's query parameter and value that select the machine-learning mode (runs, metrics, models)
WORKFLOW = "workflowType=machine_learning"
#: seconds ``mlflow ui`` may take to answer /health (8-13 s measured on two cores, docs/FACTS)
START_TIMEOUT_S = 90.0


def runs_link(base: str, experiment_id: str) -> str:
    """The runs view of an experiment in the machine-learning mode."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{WORKFLOW}"


def experiment_id(settings: TrackingSettings) -> str:
    """The project's experiment id in its store (created when missing, as a stage would)."""
    mlflow = tracking.setup(settings)
    return mlflow.get_experiment_by_name(settings.experiment).experiment_id


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


class Served:
    """``mlflow ui`` on ``host:port`` for ``uri``, in its own process group (it starts workers), stopped as a whole."""

    def __init__(self, uri: str, *, host: str, port: int, cwd: Path) -> None:
        mlflow_bin = Path(sys.executable).with_name("mlflow")
        command = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow", "ui", "--backend-store-uri", uri,
                   "--host", host, "--port", str(port), "--workers", "1"]
        self.base = f"http://{host}:{port}"
        self.process = subprocess.Popen(command, cwd=cwd, start_new_session=True, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(f"{self.base}/health"):
            if self.process.poll() is not None:
                detail = (self.process.stderr.read() or "").strip().splitlines()[-1:] or ["no message"]
                raise BenchmarkError(f"mlflow ui exited with {self.process.returncode} ({detail[0][:200]}); "
                                     f"is port {port} free? choose another with --port")
            if time.monotonic() > deadline:
                self.stop()
                raise BenchmarkError(f"mlflow ui did not answer on {self.base} within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.5)

    def wait(self) -> None:
        """Until the server ends or Ctrl-C / SIGTERM (then it is stopped)."""
        try:
            self.process.wait()
        finally:
            self.stop()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
