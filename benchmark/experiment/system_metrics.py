"""The machine's load and memory while a stage works, for its MLflow stage run (off by default).

Switched on by MLflow's own variable ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true``. MLflow's monitor samples only
while a run is open, and a stage opens its run after its work (the train stage logs once the models are trained), so
the stage samples from its start in a daemon thread (psutil, no MLflow import) and its stage run stores the samples
under MLflow's own names (``system/cpu_utilization_percentage`` ...), one step per sample, with their times.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: MLflow's switch for system metrics (mlflow.enable_system_metrics_logging sets it too)
ENV_SWITCH = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"
#: seconds between samples (MLflow's monitor: 10 s; a stage of the small pipeline lasts seconds)
INTERVAL_S = float(os.environ.get("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "2"))


def enabled() -> bool:
    """Whether the user asked for system metrics (MLflow's environment variable)."""
    return os.environ.get(ENV_SWITCH, "").strip().lower() in ("true", "1")


def sample() -> dict[str, float]:
    """One sample: CPU utilisation (% of all cores since the last call), system memory used (MB and %), the 1-minute
    load average, and this process's resident memory (MB)."""
    import psutil

    memory = psutil.virtual_memory()
    return {"system/cpu_utilization_percentage": psutil.cpu_percent(interval=None),
            "system/system_memory_usage_megabytes": (memory.total - memory.available) / 2**20,
            "system/system_memory_usage_percentage": memory.percent,
            "system/load_average_1m": os.getloadavg()[0],
            "system/process_rss_megabytes": psutil.Process().memory_info().rss / 2**20}


class Sampler:
    """Samples every ``interval_s`` seconds in a daemon thread; :meth:`drain` hands over what it has."""

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._samples: list[tuple[int, dict[str, float]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        sample()  # the first cpu_percent call only starts its clock
        self._thread = threading.Thread(target=self._loop, name="system-metrics", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._take()

    def _take(self) -> None:
        taken = (int(time.time() * 1000), sample())
        with self._lock:
            self._samples.append(taken)

    def drain(self) -> list[tuple[int, dict[str, float]]]:
        """The samples so far plus one taken now, as (time in ms, name -> value); the buffer is emptied."""
        self._take()
        with self._lock:
            out, self._samples = self._samples, []
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


#: the sampler of this process's stage, while one runs (see :func:`sampling`)
_running: Sampler | None = None


@contextmanager
def sampling(active: bool) -> Iterator[None]:
    """Sample the system while the block runs when ``active`` (and :func:`enabled`); the stage run takes the samples
    with :func:`drain`."""
    global _running
    if not (active and enabled()):
        yield
        return
    _running = Sampler()
    try:
        yield
    finally:
        _running.stop()
        _running = None


def drain() -> list[tuple[int, dict[str, float]]]:
    """The samples of the running sampler (empty when none runs)."""
    return _running.drain() if _running is not None else []
