"""Stage ``tune``: an Optuna study over the variants of ``tune.method`` (the corrector's architecture and training, or
``group_recalibration``'s fairness strength) -> reports/tune/ (best_params.yaml, trials, figure).

One MLflow parent run per invocation, one nested child run per finished trial. Several invocations (workers) on one
study share it through the storage (PostgreSQL for several machines).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna

from benchmark.core import protocol
from benchmark.core.settings import Settings, TuneSettings
from benchmark.experiment import tracking
from benchmark.infra import memory, paths, process_locks
from benchmark.infra.processes import (
    available_cores,
    die_with_parent,
    start_workers_ignoring_interrupts,
    stop_workers_on_error,
)
from benchmark.methods import training_footprint
from benchmark.tuning import study as studies
from benchmark.tuning import summary
from benchmark.tuning.mlflow_trials import TrialRunLogger
from benchmark.tuning.objective import EPOCH_STEP, Evaluation, Objective
from benchmark.tuning.worker import build_objective, evaluate_in_worker, search_space

log = logging.getLogger(__name__)
#: how long a worker waits for another worker of the same working copy to finish writing its summary
SUMMARY_LOCK_WAIT_S = 120.0


class TrialTickets:
    """The trials one invocation may start, shared by its trial processes: each takes a ticket before each trial, so
    a process that drew quick trials goes on while another is busy with a long one, and exactly ``n_trials`` start."""

    def __init__(self, n_trials: int, context: Any) -> None:
        self.n_trials = n_trials
        self._taken = context.Value("i", 0)

    def claim(self) -> int | None:
        """The number (1-based) of the trial this process may start now, or None when all are taken."""
        with self._taken.get_lock():
            if self._taken.value >= self.n_trials:
                return None
            self._taken.value += 1
            return self._taken.value


def sampler_seed(base: int, *, existing_trials: int, worker: int) -> int:
    """The sampler's seed for one trial process: ``base`` for the first process of a fresh study (so a single-process
    study, like the DVC stage's, is reproducible); otherwise distinct per process, so parallel, distributed and
    resumed workers do not repeat each other's random start-up configurations."""
    if existing_trials == 0 and worker == 0:
        return base
    return (base * 1_000_003 + existing_trials * 7_919 + worker * 104_729 + os.getpid()) % 2**31


#: the invocation's tickets, in a trial process (set by the pool's initializer; see TrialTickets)
_tickets: TrialTickets | None = None


def _receive_tickets(tickets: TrialTickets) -> None:
    global _tickets
    _tickets = tickets


def _optimize(settings: Settings, outputs_dir: Path, n_trials: int, core: int | None, log_level: int,
              worker: int = 0, study: optuna.Study | None = None) -> list[int]:
    """Run trials of the (existing) study in this process: ``n_trials`` of them, or, in a trial process of a parallel
    invocation, one per ticket it claims; returns the numbers of the trials it ran. A trial process is pinned to one
    CPU ``core``, so the corrector trains its models in this process only and each trial process keeps one core busy.
    ``study``: the invocation's own study object, whose sampler carries on where its start-up batch left off (so one
    process gives the trials of one after the other); else the study is loaded with a seed of this process's own."""
    if core is not None:  # a trial process of a parallel invocation
        die_with_parent()
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {core})
        logging.basicConfig(level=log_level, format="%(message)s", stream=sys.stderr)
    tune = settings.tune
    objective = build_objective(settings, outputs_dir)
    if study is None:
        storage = studies.open_storage(tune.storage, heartbeat_s=tune.heartbeat_s, max_retry=tune.max_retry)
        existing = studies.started_trials(optuna.load_study(study_name=tune.study, storage=storage))
        study = studies.create_or_load(storage, name=tune.study, objective=tune.objective, pruning=tune.pruning,
                                       sampler_seed=sampler_seed(tune.seed, existing_trials=existing, worker=worker))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies.quiet_interrupted_trials()
    ran: list[int] = []

    def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        ran.append(trial.number)

    def claimed(trial: optuna.Trial) -> Any:
        studies.claim(trial)  # the process running it, for a later run to fail it if this one is killed
        return objective(trial)

    if _tickets is None:
        study.optimize(claimed, n_trials=n_trials, callbacks=[_progress(n_trials), record], gc_after_trial=False)
        return ran
    while (ticket := _tickets.claim()) is not None:
        study.optimize(claimed, n_trials=1, callbacks=[_progress(n_trials, ticket), record], gc_after_trial=False)
    return ran


@dataclasses.dataclass
class StartupBatch:
    """Start-up trials asked at once and training in worker processes, most expensive first (see
    :func:`_startup_batch`); ``told`` holds the indices of those already told to the study."""

    study: optuna.Study
    objective: Objective
    trials: list[optuna.Trial]
    configs: list[dict[str, Any]]
    futures: dict[int, Future[Evaluation]]
    pool: ProcessPoolExecutor
    processes: int
    told: set[int]

    def await_idle_process(self) -> None:
        """Return once a process has no trial left to start (the batch's last trials run on fewer cores than it has)."""
        pending = set(self.futures.values())
        while len(pending) >= self.processes:
            _, pending = wait(pending, return_when=FIRST_COMPLETED)

    def finish(self) -> list[int]:
        """Await the trials, then report and tell them in trial order: the study ends as it would after running them
        one after the other (values, reports, user attributes), so a seeded study stays reproducible; only durations
        differ. The summary's imports load on the first core the batch leaves idle. Returns the trial numbers."""
        self.await_idle_process()
        summary.preload()
        progress = _progress(len(self.trials))
        for i, trial in enumerate(self.trials):
            result = self.futures[i].result()
            for epoch, score in result.snapshots:
                trial.report(score, epoch)
            frozen = self.study.tell(trial, self.objective.record(trial, self.configs[i], result))
            self.told.add(i)
            progress(self.study, frozen)
        self.pool.shutdown()
        return [trial.number for trial in self.trials]


def _startup_plan(tune: TuneSettings, study: optuna.Study, startup_jobs: int | None) -> tuple[int, int]:
    """How many of the study's remaining start-up trials this invocation runs (at most ``tune.n_trials``) and in how
    many processes at once: ``startup_jobs`` (0: one per core; None: ``tune.jobs``), at most one per trial."""
    startup = min(studies.startup_trials_left(study, pruning=tune.pruning), tune.n_trials)
    startup_processes = tune.jobs if startup_jobs is None else startup_jobs
    return startup, min(startup, startup_processes or len(available_cores()))


@contextmanager
def _startup_batch(settings: Settings, outputs_dir: Path, study: optuna.Study, objective: Objective,
                   startup_jobs: int | None) -> Iterator[StartupBatch | None]:
    """Ask the start-up trials of :func:`_startup_plan` at once (the sampler draws them at random, whatever the
    results) and train them in their processes, the most expensive first, while the block runs (it ends them with
    :meth:`StartupBatch.finish`); None when fewer than two processes would run them. Leaving the block by an error or
    an interrupt stops the processes and fails the trials not yet told."""
    n_trials, processes = _startup_plan(settings.tune, study, startup_jobs)
    if processes < 2:
        yield None
        return
    trials: list[optuna.Trial] = []
    told: set[int] = set()
    try:
        with warnings.catch_warnings():  # asked trials send no heartbeats; an interrupt fails them below instead
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
            for _ in range(n_trials):
                trials.append(study.ask())
                studies.claim(trials[-1])  # this process tells them: if it dies, the next run fails them
        configs = [objective.space.suggest(trial) for trial in trials]
        order = sorted(range(n_trials), key=lambda i: (-studies.training_cost(configs[i]), i))
        with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=die_with_parent) as pool:
            with stop_workers_on_error(pool):
                with start_workers_ignoring_interrupts():
                    futures = {i: pool.submit(evaluate_in_worker, settings, outputs_dir, configs[i]) for i in order}
                with studies.heartbeats(study, trials, settings.tune.heartbeat_s):
                    yield StartupBatch(study, objective, trials, configs, futures, pool, processes, told)
    finally:
        for i, trial in enumerate(trials):
            if i not in told:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _run_trials(settings: Settings, outputs_dir: Path, study: optuna.Study, batch: StartupBatch | None) -> set[int]:
    """All of this invocation's trials: first the start-up ``batch`` (already training, see :func:`_startup_batch`),
    then the rest in this process (``jobs`` 1) or in one process per core; returns their numbers (other workers on the
    same study run trials at the same time: those are theirs to log)."""
    tune = settings.tune
    cores = available_cores()
    ran: set[int] = set()
    if batch is not None:
        ran |= set(batch.finish())
        remaining = tune.n_trials - len(batch.trials)
        settings = dataclasses.replace(settings, tune=dataclasses.replace(tune, n_trials=remaining))
        tune = settings.tune
        if tune.n_trials == 0:
            return ran
    processes = max(1, min(tune.jobs or len(cores), tune.n_trials))
    level = logging.getLogger().level
    if processes == 1:
        return ran | set(_optimize(settings, outputs_dir, tune.n_trials, None, level, study=study))
    context = multiprocessing.get_context("spawn")
    tickets = TrialTickets(tune.n_trials, context)
    with ProcessPoolExecutor(max_workers=processes, mp_context=context, initializer=_receive_tickets,
                             initargs=(tickets,)) as pool:
        with stop_workers_on_error(pool):  # an interrupt stops the running trials instead of awaiting them
            with start_workers_ignoring_interrupts():  # Ctrl-C reaches this process, which stops them
                futures = [pool.submit(_optimize, settings, outputs_dir, tune.n_trials, cores[i % len(cores)], level, i)
                           for i in range(processes)]
            return ran | {number for future in futures for number in future.result()}


def start_from_defaults(study: optuna.Study, settings: Settings) -> None:
    """Enqueue ``train.corrector``'s configuration as the first trial of a fresh corrector study (when it lies in the
    search space), so the study measures what tuning adds to the paper's configuration."""
    if not settings.tune.start_from_defaults or settings.tune.method != "corrector" or study.get_trials(deepcopy=False):
        return
    space = search_space(settings.tune)
    params = {name: getattr(settings.train.corrector, name) for name in dataclasses.asdict(space)}
    outside = [name for name, value in params.items()
               if not (value in getattr(space, name) if name == "input" else
                       getattr(space, name)[0] <= value <= getattr(space, name)[1])]
    if (params["epochs"] - space.epochs[0]) % EPOCH_STEP:
        outside.append("epochs")
    if outside:
        log.info("tune: train.corrector lies outside tune.space in %s; the study starts from random configurations",
                 ", ".join(outside))
        return
    study.enqueue_trial(params, skip_if_exists=True)


def _run_tracked(settings: Settings, outputs_dir: Path, study: optuna.Study, batch: StartupBatch | None, *,
                 source: str, started: float) -> dict[str, Any]:
    """:func:`_run_trials` under this invocation's MLflow parent run, then one child run per trial it finished;
    returns the best configuration."""
    tune = settings.tune
    tags = {"study": tune.study, "method": tune.method, "storage": tracking.redact_url(tune.storage), "objective": tune.objective,
            "split": tune.split, "source": source, "attribute": settings.data.attribute, "stage": "tune"}
    mlflow = tracking.setup(settings.tracking)
    train_dataset = protocol.parse_split(tune.split).train
    inputs = tracking.table_inputs({train_dataset: paths.outputs_table(train_dataset, outputs_dir)}, context="tuning")
    with tracking.stage_run(mlflow, settings.tracking, f"tune:{tune.study}", stage="tune", tags=tags) as parent:
        tracking.log_inputs(mlflow, inputs.values())
        mlflow.log_params({f"space.{k}": str(v) for k, v in dataclasses.asdict(tune.space).items()
                           if (k == "strength") == (tune.method == "group_recalibration")})
        ran = _run_trials(settings, outputs_dir, study, batch)
        logger = TrialRunLogger(mlflow, parent_run_id=parent.info.run_id, tags=tags, inputs=list(inputs.values()))
        for trial in study.get_trials(deepcopy=False):
            if trial.number in ran and trial.state.is_finished():
                logger(study, trial)
        best = studies.best_configuration(study, pareto_pick=tune.pareto_pick, pick=tune.pick)
        mlflow.log_metrics({"n_complete": len(studies.finished(study)), "best_cv_macro": float(best["cv_macro"]),
                            "wall_s": time.monotonic() - started})
    return best


#: bytes one trial holds in the study (its Optuna record, and the copy the sampler reads): measured 9.2 KB per trial
#: with tracemalloc over 500 trials of the corrector's space with four pruning reports, sqlite storage
TRIAL_BYTES = 10_000


def check_memory(settings: Settings, objective: Objective, *, trials_key: str, startup_jobs: int | None) -> float:
    """Refuse in one line, before the study starts, a number of trials or a search space whose largest trial this
    machine cannot hold in every trial process at once (:func:`benchmark.methods.training_footprint.stack_needs` at
    the upper ends of ``tune.space``); returns the estimate in bytes."""
    tune = settings.tune
    processes = max(tune.jobs or len(available_cores()), (tune.jobs if startup_jobs is None else startup_jobs)
                    or len(available_cores()))
    processes = max(1, min(processes, tune.n_trials))
    needs = [memory.Need(trials_key, tune.n_trials, TRIAL_BYTES * tune.n_trials)]
    fixed = 0.0
    if tune.method == "corrector":
        space = tune.space
        largest = dataclasses.replace(settings.train.corrector, depth=int(space.depth[1]), width=int(space.width[1]),
                                      batch_size=int(space.batch_size[1]))
        train = objective.folds[0].train
        n_emotion = len(train.emotion_classes)
        stack, fixed = training_footprint.stack_needs(
            largest, n_models=processes * len(objective.folds) * tune.n_seeds,
            n_rows=max(len(f.train.frame) for f in objective.folds),
            n_in=n_emotion + len(objective.attribute.outputs), n_out=n_emotion + len(objective.attribute.groups),
            workers=processes, prefix="tune.space", models_key="tune.n_seeds", models_value=tune.n_seeds)
        needs += stack
    return memory.check(needs, fixed=fixed, what=f"study {tune.study!r} ({processes} trial process(es))")


def run(settings: Settings, *, n_trials: int | None = None, study_name: str | None = None, storage: str | None = None,
        jobs: int | None = None, startup_jobs: int | None = None, outputs_dir: Path = paths.OUTPUTS_DIR, out_dir: Path = paths.TUNE_DIR) -> Path:
    """Run ``n_trials`` more trials of the study and write its summary; returns best_params.yaml.

    The study is created here once before any trial process starts. MLflow gets one parent run for this invocation
    (set up while the start-up trials train) and, after the trials, one child run per trial this invocation finished.
    """
    overrides = {"n_trials": n_trials, "study": study_name, "storage": storage, "jobs": jobs}
    tune = dataclasses.replace(settings.tune, **{k: v for k, v in overrides.items() if v is not None})
    settings = dataclasses.replace(settings, tune=tune)
    if settings.tracking.enabled:
        tracking.probe(settings.tracking)  # the storage is probed by open_storage, before the study is created
    objective = build_objective(settings, outputs_dir)  # validates inputs
    check_memory(settings, objective, startup_jobs=startup_jobs,
                 trials_key="tune.n_trials" if n_trials is None else "--n-trials (the DVC stage's tune.pipeline_trials)")
    source = objective.folds[0].train.metadata.get("source", "unknown")
    storage_obj = studies.open_storage(tune.storage, heartbeat_s=tune.heartbeat_s, max_retry=tune.max_retry)
    study = studies.create_or_load(storage_obj, name=tune.study, objective=tune.objective, sampler_seed=tune.seed,
                                   pruning=tune.pruning)
    studies.fail_abandoned_trials(study)  # trials left RUNNING by a killed worker, before counting what started
    if started := studies.started_trials(study):  # resumed: a seed of its own, not the first invocation's draws
        study = studies.create_or_load(storage_obj, name=tune.study, objective=tune.objective, pruning=tune.pruning,
                                       sampler_seed=sampler_seed(tune.seed, existing_trials=started, worker=0))
    start_from_defaults(study, settings)
    started = time.monotonic()
    with _startup_batch(settings, outputs_dir, study, objective, startup_jobs) as batch:  # its trials train from here
        if settings.tracking.enabled:
            best = _run_tracked(settings, outputs_dir, study, batch, source=source, started=started)
        else:
            _run_trials(settings, outputs_dir, study, batch)
            best = studies.best_configuration(study, pareto_pick=tune.pareto_pick, pick=tune.pick)
    meta = {"study": tune.study, "method": tune.method, "objective": tune.objective, "split": tune.split, "source": source,
            "attribute": settings.data.attribute}
    with process_locks.hold("tune-summary", wait_s=SUMMARY_LOCK_WAIT_S, what=f"benchmark tune writing {out_dir}"):
        target = summary.write(study, best, out_dir, meta=meta)  # concurrent workers: one complete summary at a time
    log.info("tune: %d trials in %.1f s; best trial %d -> %s", tune.n_trials, time.monotonic() - started,
             best["trial"], target)
    return target


def _progress(n_trials: int, ticket: int | None = None):
    """A callback that logs one line per finished trial (progress of a long study): the trial's place among this
    invocation's ``n_trials`` (its ticket, or its count in this process), state and value."""
    counter = {"done": 0}

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counter["done"] += 1
        values = None if trial.values is None else [round(v, 2) for v in trial.values]
        log.info("tune: trial %d (%d/%d of this invocation) %s %s", trial.number, ticket or counter["done"], n_trials,
                 trial.state.name, values)

    return report
