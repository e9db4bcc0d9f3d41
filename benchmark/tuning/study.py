"""Storage, sampler, pruner and the worker loop of a tuning study; the best configuration out.

Storage is any SQLAlchemy URL (default ``sqlite:///optuna.db``; PostgreSQL for several machines). Trials send
heartbeats, so a trial whose worker was killed is marked FAILED by the next worker (and retried once), and a completed
trial is never lost. Creating a study races when several workers start at once on a fresh database, so creation is
retried: the loser of the race loads the study the winner created.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc

from benchmark.errors import BenchmarkError
from benchmark.probes import check_study_storage
from benchmark.probes import redact_url as redact
from benchmark.tuning.objective import OBJECTIVES

log = logging.getLogger(__name__)
CREATE_ATTEMPTS = 8


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


def open_storage(url: str, *, heartbeat_s: int, max_retry: int) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats; raises BenchmarkError naming the (redacted) URL when it is unreachable
    (a database server is probed first, so a silent one fails within seconds)."""
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
    sampler = (optuna.samplers.TPESampler(seed=sampler_seed) if len(directions) == 1
               else optuna.samplers.NSGAIISampler(seed=sampler_seed))
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
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


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Completed trials of the study."""
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def best_configuration(study: optuna.Study, *, pareto_pick: str) -> dict[str, Any]:
    """The chosen configuration: the best trial (single objective) or a Pareto point (multi-objective).

    ``pareto_pick``: ``max_macro`` (the Pareto trial with the highest macro accuracy), ``min_gap`` (lowest average
    gap) or ``balanced`` (highest macro - average gap).
    """
    done = finished(study)
    if not done:
        raise BenchmarkError(f"tune: study {study.study_name!r} has no completed trial yet; run more trials")
    if len(study.directions) == 1:
        trial = study.best_trial
        return {"trial": trial.number, "value": trial.value, "params": dict(trial.params),
                "cv_macro": trial.user_attrs.get("cv_macro"), "cv_average_gap": trial.user_attrs.get("cv_average_gap")}
    front = study.best_trials
    key = {"max_macro": lambda t: (t.values[0], -t.values[1]), "min_gap": lambda t: (-t.values[1], t.values[0]),
           "balanced": lambda t: (t.values[0] - t.values[1], t.values[0])}[pareto_pick]
    trial = max(front, key=key)
    return {"trial": trial.number, "values": list(trial.values), "params": dict(trial.params),
            "cv_macro": trial.values[0], "cv_average_gap": trial.values[1],
            "pareto": [{"trial": t.number, "cv_macro": t.values[0], "cv_average_gap": t.values[1], "params": dict(t.params)}
                       for t in sorted(front, key=lambda t: t.number)]}
