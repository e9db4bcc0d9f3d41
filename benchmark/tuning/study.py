"""Storage, sampler, pruner and the worker loop of a tuning study; the best configuration out.

Storage is any SQLAlchemy URL (default ``sqlite:///optuna.db``; PostgreSQL for several machines) or an Optuna journal
file, ``journal:///path/study.journal`` (several processes without a database server; see :func:`open_storage`).
Trials send heartbeats (database storages), so a trial whose worker was killed is marked FAILED by the next worker
(and retried once), and a completed trial is never lost; each trial also records the process that runs it, so the
next run of the study fails the trials whose process on this machine is gone (:func:`fail_abandoned_trials`: journal
storages have no heartbeats, and a start-up batch's trials are not run by ``Study.optimize``). Creating a study races
when several workers start at once on a fresh database, so creation is retried: the loser of the race loads the study
the winner created.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy.exc
from optuna.storages._heartbeat import is_heartbeat_enabled  # what Study.optimize asks before it sends heartbeats

from benchmark.infra import paths
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.probes import check_study_storage
from benchmark.infra.probes import redact_url as redact
from benchmark.tuning.objective import OBJECTIVES

log = logging.getLogger(__name__)
CREATE_ATTEMPTS = 8
#: trials the TPE sampler draws at random before it models the results
SAMPLER_STARTUP_TRIALS = 10
#: finished trials before the median pruner may stop a trial
PRUNER_STARTUP_TRIALS = 5
#: a journal-file storage's URL prefix: ``journal:///relative/path`` or ``journal:////absolute/path``
JOURNAL_PREFIX = "journal:///"
#: the trial system attribute naming the process that runs a trial (``host:pid:start time in ms``)
OWNER_ATTR = "benchmark:owner"


def _make_sqlite_folder(url: str) -> None:
    """Create the folder of a file-based SQLite URL, which SQLite will not do itself."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)


class _InterruptWithoutTraceback(logging.Filter):
    """Optuna logs a trial stopped by Ctrl-C or SIGTERM as a failed trial with a traceback; keep the warning (which
    trial was lost) but drop the traceback: the interrupt is expected, and the CLI says in one line what happened."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_interrupted_trials() -> None:
    """Install :class:`_InterruptWithoutTraceback` on Optuna's trial-running logger (once per process)."""
    logger = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _InterruptWithoutTraceback) for f in logger.filters):
        logger.addFilter(_InterruptWithoutTraceback())


def journal_storage(url: str) -> optuna.storages.JournalStorage:
    """An Optuna journal-file storage for ``journal:///path`` (relative to the current directory, the project root):
    one append-only file that processes on this machine, or on machines sharing the folder over NFS, write under
    Optuna's symlink lock (no database server). Its limits (docs/TUNING.md): no heartbeats (a killed worker's trial is
    failed only by a later run on the same machine, :func:`fail_abandoned_trials`), writes are serialised (fine while a
    trial takes seconds), and a lock left by a killed writer is broken after Optuna's 30 s grace period."""
    from optuna.storages.journal import JournalFileBackend

    path = Path(paths.resolve_location(url, Path.cwd())[len(JOURNAL_PREFIX):])
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except OSError as err:
        raise BenchmarkError(f"tune.storage: cannot open the journal file {path} ({err.strerror or err}); "
                             "check the path and its folder's permissions") from err


def open_storage(url: str, *, heartbeat_s: int, max_retry: int) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats, or a journal file (:func:`journal_storage`); raises BenchmarkError naming the
    (redacted) URL when it is unreachable (a database server is probed first, so a silent one fails within seconds)."""
    if url.startswith("journal:"):
        if not url.startswith(JOURNAL_PREFIX):
            raise BenchmarkError(f"tune.storage: {url!r}; a journal file is journal:///relative/path or "
                                 "journal:////absolute/path")
        return journal_storage(url)
    check_study_storage(url)
    _make_sqlite_folder(url)
    last: Exception | None = None
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental; we rely on them knowingly
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=heartbeat_s, grace_period=2 * heartbeat_s,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
                    engine_kwargs={"pool_pre_ping": True})
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as err:  # table-creation race
            last = err
            time.sleep(0.2 * (attempt + 1))
        except Exception as err:  # unreachable server, bad URL, missing driver ...
            raise BenchmarkError(
                f"tune.storage: cannot open Optuna storage {redact(url)!r} ({type(err).__name__}: "
                f"{str(err).splitlines()[0][:160]}); check the URL and that the database server is reachable") from err
    raise BenchmarkError(f"tune.storage: could not create the tables of {redact(url)!r} ({last})")


def create_or_load(storage: optuna.storages.RDBStorage, *, name: str, objective: str, sampler_seed: int,
                   pruning: bool) -> optuna.Study:
    """Create the study, or load it when it exists (also when another worker created it a moment ago)."""
    directions, prunable = OBJECTIVES[objective]
    sampler = (optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=SAMPLER_STARTUP_TRIALS)
               if len(directions) == 1
               else optuna.samplers.NSGAIISampler(seed=sampler_seed))
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=0)
              if pruning and prunable else optuna.pruners.NopPruner())
    for attempt in range(CREATE_ATTEMPTS):
        try:
            study = optuna.create_study(storage=storage, study_name=name, directions=list(directions),
                                        sampler=sampler, pruner=pruner, load_if_exists=True)
            break
        except (optuna.exceptions.DuplicatedStudyError, sqlalchemy.exc.IntegrityError):
            time.sleep(0.2 * (attempt + 1))
    else:
        raise BenchmarkError(f"tune: could not create or load study {name!r}")
    existing = [d.name.lower() for d in study.directions]
    if existing != list(directions):
        raise BenchmarkError(
            f"tune.objective: study {name!r} already exists with directions {existing}, but objective {objective!r} "
            f"needs {list(directions)}; use another --study name")
    return study


def process_identity(pid: int | None = None) -> str:
    """``host:pid:start time in ms`` of a process (this one by default): with its start time a reused pid is told
    apart."""
    import psutil

    process = psutil.Process(pid)
    return f"{socket.gethostname()}:{process.pid}:{int(process.create_time() * 1000)}"


def claim(trial: optuna.Trial) -> None:
    """Record this process as the one running ``trial`` (:data:`OWNER_ATTR`)."""
    trial.storage.set_trial_system_attr(trial._trial_id, OWNER_ATTR, process_identity())


def _owner_gone(owner: str) -> bool:
    """Whether the process ``host:pid:start`` of this machine has ended (False for another machine's)."""
    import psutil

    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        return process_identity(int(pid)) != owner
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True


def fail_abandoned_trials(study: optuna.Study) -> list[int]:
    """Fail the study's RUNNING trials that no process runs any more: those whose heartbeat stopped (database
    storages, after the grace period) and those whose recorded process on this machine is gone (any storage, at once,
    e.g. a start-up batch killed with SIGKILL). Returns the numbers of the trials failed here."""
    if is_heartbeat_enabled(study._storage):
        with warnings.catch_warnings():  # marked experimental, like the heartbeats it reads
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = trial.system_attrs.get(OWNER_ATTR)
        if owner and _owner_gone(owner):
            try:
                study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            except RuntimeError:  # finished by its process a moment ago after all
                continue
            failed.append(trial.number)
    if failed:
        log.warning("tune: study %r: trial(s) %s were left RUNNING by a process that is gone; marked FAILED",
                    study.study_name, ", ".join(map(str, failed)))
    return failed


@contextmanager
def heartbeats(study: optuna.Study, trials: list[optuna.Trial], interval_s: float) -> Iterator[None]:
    """Send heartbeats for ``trials`` (asked, not run by ``Study.optimize``, which sends its own) from a daemon thread
    while the block runs, so another machine's worker fails them if this process dies (database storages)."""
    storage = study._storage
    if not is_heartbeat_enabled(storage) or not trials:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            for trial in trials:
                try:
                    storage.record_heartbeat(trial._trial_id)
                except Exception:  # a finished trial, or a moment without the database: the next beat retries
                    pass
            if stop.wait(interval_s):
                return

    thread = threading.Thread(target=beat, name="trial-heartbeats", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def started_trials(study: optuna.Study) -> int:
    """Trials of the study that have started (any state but WAITING: an enqueued configuration has drawn nothing)."""
    return len(study.get_trials(deepcopy=False, states=tuple(s for s in optuna.trial.TrialState
                                                            if s != optuna.trial.TrialState.WAITING)))


def startup_trials_left(study: optuna.Study, *, pruning: bool) -> int:
    """How many more trials of a single-objective study are drawn at random and can never be pruned: their
    configurations do not depend on any result, so they may run at once and give the study they would give one after
    the other (0 for a multi-objective study, whose sampler is population based)."""
    if len(study.directions) != 1:
        return 0
    started = started_trials(study)
    limit = min(SAMPLER_STARTUP_TRIALS, PRUNER_STARTUP_TRIALS) if pruning else SAMPLER_STARTUP_TRIALS
    return max(0, limit - started)


def trial_seconds(trial: optuna.trial.FrozenTrial) -> float | None:
    """How long a finished trial took: its own training time where it ran in a start-up batch (whose trials all start
    when the batch is asked), else from its start to its end; None while it runs."""
    if "training_s" in trial.user_attrs:
        return float(trial.user_attrs["training_s"])
    if trial.datetime_start and trial.datetime_complete:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    return None


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Completed trials of the study."""
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


#: per-step cost of the vectorised trainer ~ (1 + parameters / this): measured 122 us per step for the paper's
#: 1,114-parameter network and 349 us for a 52,234-parameter one (docs/PERFORMANCE.md, per-step table)
PARAMETERS_PER_STEP_OVERHEAD = 26_000


def corrector_parameters(depth: int, width: int, inputs: int = 10, outputs: int = 10) -> int:
    """Weights and biases of a corrector network: ``inputs`` -> ``depth`` hidden layers of ``width`` -> ``outputs``."""
    return (inputs + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * outputs


def training_cost(params: dict[str, Any]) -> float:
    """Relative cost of training one configuration on a fixed table: steps (epochs / batch size) x per-step cost;
    0 for a method trained without epochs (every such configuration costs the same)."""
    if "epochs" not in params:
        return 0.0
    size = corrector_parameters(params["depth"], params["width"])
    return params["epochs"] / params["batch_size"] * (1.0 + size / PARAMETERS_PER_STEP_OVERHEAD)


def _standard_error(trial: optuna.trial.FrozenTrial) -> float | None:
    values = trial.user_attrs.get("cv_fold_values") or []
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None


def _single(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {"trial": trial.number, "value": trial.value, "params": dict(trial.params),
            "cv_macro": trial.user_attrs.get("cv_macro"), "cv_average_gap": trial.user_attrs.get("cv_average_gap")}


def cheapest_within_se(study: optuna.Study) -> dict[str, Any]:
    """The one-standard-error rule (Breiman et al. 1984; Hastie et al., ESL 7.10): among the completed trials whose
    CV value is within one standard error over folds of the best trial's, the cheapest to train
    (:func:`training_cost`; ties: the higher value, then the earlier trial). Says which trial was best and by how
    much it led, so a reader sees what the cheaper choice gave up."""
    best = study.best_trial
    se = _standard_error(best)
    if se is None:
        raise BenchmarkError(f"tune.pick: trial {best.number} of study {study.study_name!r} has no per-fold CV values "
                             "(a study from before they were recorded); use tune.pick: best or a new --study")
    close = [t for t in finished(study) if t.value >= best.value - se]
    chosen = min(close, key=lambda t: (training_cost(t.params), -t.value, t.number))
    return {**_single(chosen), "pick": "cheapest_within_se", "best_trial": best.number, "best_value": best.value,
            "best_value_se": se, "relative_cost": training_cost(chosen.params) / (training_cost(best.params) or 1.0)}


def best_configuration(study: optuna.Study, *, pareto_pick: str, pick: str = "best") -> dict[str, Any]:
    """The chosen configuration: ``pick`` among the trials (single objective: ``best`` or
    :func:`cheapest_within_se`) or a Pareto point (multi-objective).

    ``pareto_pick``: ``max_macro`` (the Pareto trial with the highest macro accuracy), ``min_gap`` (lowest average
    gap) or ``balanced`` (highest macro - average gap).
    """
    done = finished(study)
    if not done:
        raise BenchmarkError(f"tune: study {study.study_name!r} has no completed trial yet; run more trials")
    if len(study.directions) == 1:
        return cheapest_within_se(study) if pick == "cheapest_within_se" else {**_single(study.best_trial), "pick": "best"}
    front = study.best_trials
    key = {"max_macro": lambda t: (t.values[0], -t.values[1]), "min_gap": lambda t: (-t.values[1], t.values[0]),
           "balanced": lambda t: (t.values[0] - t.values[1], t.values[0])}[pareto_pick]
    trial = max(front, key=key)
    return {"trial": trial.number, "values": list(trial.values), "params": dict(trial.params),
            "cv_macro": trial.values[0], "cv_average_gap": trial.values[1],
            "pareto": [{"trial": t.number, "cv_macro": t.values[0], "cv_average_gap": t.values[1], "params": dict(t.params)}
                       for t in sorted(front, key=lambda t: t.number)]}
