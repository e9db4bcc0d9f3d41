"""`benchmark tune`: Optuna studies over corrector variants scored by CV inside the training dataset, each trial an
MLflow child run under one parent per invocation; resumable, crash-safe, and shared by several workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from toy import GENDER, make_toy_table

from benchmark.cli import main
from benchmark.core import outputs

TINY_TUNE = {
    "cv_folds": 2, "n_seeds": 1, "heartbeat_s": 1, "jobs": 1,
    "space": {"depth": [1, 2], "width": [4, 8], "dropout": [0.0, 0.2], "attribute_weight": [0.3, 0.7],
              "lr": [1.0e-3, 1.0e-2], "epochs": [50, 100], "batch_size": [16, 32], "input": ["logits", "probs"]},
}


def _project(root: Path, *, storage: str | None = None, tracking: bool = False, **tune) -> Path:
    """A project folder with toy outputs tables and a params.yaml whose study is tiny."""
    for dataset in ("faces", "adfes"):
        outputs.write(make_toy_table(dataset=dataset, subjects_per_gender=4, images_per_cell=1, seed=len(dataset)),
                      root / "data" / "outputs" / f"{dataset}.parquet")
    params = {
        "tune": {**TINY_TUNE, "storage": storage or f"sqlite:///{root / 'optuna.db'}", **tune},
        "tracking": {"enabled": tracking, "uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": "tune-test"},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    return tmp_path


def _study(root: Path, name: str = "corrector", storage: str | None = None) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage or f"sqlite:///{root / 'optuna.db'}")


def _states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_tune_runs_the_trials_and_writes_the_best_configuration(project):
    _project(project)
    assert main(["tune", "--n-trials", "3"]) == 0
    best = yaml.safe_load((project / "reports" / "tune" / "best_params.yaml").read_text())
    assert set(best["params"]) == {"depth", "width", "dropout", "attribute_weight", "lr", "epochs", "batch_size", "input"}
    assert 0 <= best["cv_macro"] <= 100
    assert len(_study(project).get_trials()) == 3
    for name in ("trials.csv", "importances.json", "study.png"):
        assert (project / "reports" / "tune" / name).exists(), name


def test_tune_never_reads_the_test_dataset(project):
    _project(project, split="faces->adfes")
    (project / "data" / "outputs" / "adfes.parquet").unlink()
    assert main(["tune", "--n-trials", "1"]) == 0


def test_resuming_a_study_continues_it(project):
    _project(project)
    assert main(["tune", "--n-trials", "2"]) == 0
    assert main(["tune", "--n-trials", "2"]) == 0
    assert [t.number for t in _study(project).get_trials()] == [0, 1, 2, 3]


def test_each_trial_is_a_child_run_of_one_parent_per_invocation(project):
    _project(project, tracking=True)
    assert main(["tune", "--n-trials", "3"]) == 0
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["tune-test"])
    parents = runs[runs["tags.benchmark.kind"] == "stage"]   # the invocation's stage run, under its pipeline run
    children = runs[runs["tags.trial"].notna()]
    assert len(parents) == 1 and len(children) == 3 and list(parents["tags.mlflow.runName"]) == ["tune:corrector"]
    assert set(children["tags.mlflow.parentRunId"]) == {parents["run_id"].iloc[0]}
    assert set(children["tags.study"]) == {"corrector"}
    assert children["params.depth"].notna().all() and children["metrics.duration_s"].notna().all()
    assert list(parents["status"]) == ["FINISHED"]


def test_pareto_objective_reports_the_front(project):
    _project(project, objective="pareto")
    assert main(["tune", "--n-trials", "4", "--study", "front"]) == 0
    best = yaml.safe_load((project / "reports" / "tune" / "best_params.yaml").read_text())
    assert best["objective"] == "pareto"
    assert len(best["pareto"]) >= 1
    assert best["trial"] in [p["trial"] for p in best["pareto"]]


def test_reusing_a_study_name_with_another_objective_is_refused(project):
    _project(project)
    assert main(["tune", "--n-trials", "1"]) == 0
    assert main(["tune", "--n-trials", "1", "--objective", "pareto"]) == 1


def test_unreachable_storage_is_one_clear_line(project, capsys):
    _project(project)
    code = main(["tune", "--n-trials", "1", "--storage", "postgresql+psycopg2://u:secret@127.0.0.1:1/none"])
    err = capsys.readouterr().err
    assert code == 1
    assert "tune.storage: Optuna storage" in err and "does not answer" in err and "secret" not in err


WORKER = """
import sys
from benchmark.cli import main
sys.exit(main(["-q", "tune", "--n-trials", *sys.argv[1:]]))
"""


def _worker(root: Path, n_trials: int, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, str(n_trials)], cwd=root, env=env or os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigkill_mid_study_loses_no_completed_trial_and_the_study_continues(project):
    _project(project, space={**TINY_TUNE["space"], "epochs": [400, 600]})
    worker = _worker(project, 50)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            done = [t for t in _study(project).get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
        except (KeyError, Exception):
            done = []
        if len(done) >= 2:
            break
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    at_kill = _study(project).get_trials()
    before = {t.number: t.values for t in at_kill if t.state.name == "COMPLETE"}
    interrupted = [t.number for t in at_kill if t.state.name == "RUNNING"]
    assert len(before) >= 2
    time.sleep(5)  # well past the heartbeat grace period (2 x tune.heartbeat_s; heartbeats are stored to the second)
    assert main(["-q", "tune", "--n-trials", "1"]) == 0
    after = {t.number: t for t in _study(project).get_trials()}
    assert {n: after[n].values for n in before} == before
    assert "RUNNING" not in [t.state.name for t in after.values()]
    assert all(after[n].state.name == "FAIL" for n in interrupted)  # the killed worker's trial, failed by heartbeat


def test_a_start_up_batch_killed_with_sigkill_leaves_no_trial_running_after_the_next_run(project):
    _project(project, space={**TINY_TUNE["space"], "epochs": [800, 1000]})
    stage = subprocess.Popen([sys.executable, "-c", WORKER, "2", "--startup-jobs", "2"], cwd=project,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _states_or_none(project).count("RUNNING") < 2:
        time.sleep(0.3)
    stage.send_signal(signal.SIGKILL)   # its trial processes die with it (PDEATHSIG)
    stage.wait()
    asked = [t.number for t in _study(project).get_trials() if t.state.name == "RUNNING"]
    assert len(asked) == 2
    assert main(["-q", "tune", "--n-trials", "1", "--jobs", "1", "--startup-jobs", "1"]) == 0   # at once: no grace period
    after = {t.number: t.state.name for t in _study(project).get_trials()}
    assert [after[n] for n in asked] == ["FAIL", "FAIL"] and "RUNNING" not in after.values()


def _states_or_none(root: Path) -> list[str]:
    try:
        return _states(_study(root))
    except KeyError:   # the study is not created yet
        return []


def test_a_running_trial_of_a_live_process_or_of_another_machine_is_left_alone(project):
    from benchmark.tuning import study as studies

    study = optuna.create_study(storage=f"sqlite:///{project / 'optuna.db'}", study_name="s")
    mine, elsewhere, gone = study.ask(), study.ask(), study.ask()
    studies.claim(mine)
    study._storage.set_trial_system_attr(elsewhere._trial_id, studies.OWNER_ATTR, "another-host:1:0")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    study._storage.set_trial_system_attr(gone._trial_id, studies.OWNER_ATTR,
                                         f"{__import__('socket').gethostname()}:{dead.stdout.strip()}:0")
    assert studies.fail_abandoned_trials(study) == [gone.number]
    assert _states(study) == ["RUNNING", "RUNNING", "FAIL"]


def test_two_workers_share_a_journal_file_storage_without_a_database_server(project):
    _project(project, storage="journal:///studies/optuna.journal", study="journal")
    workers = [_worker(project, 2) for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err[-2000:]
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(project / "studies" / "optuna.journal")))
    trials = optuna.load_study(study_name="journal", storage=storage).get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}


def test_a_malformed_journal_url_is_one_clear_line(project, capsys):
    _project(project)
    assert main(["tune", "--n-trials", "1", "--storage", "journal:studies.log"]) == 1
    assert "tune.storage: 'journal:studies.log'; a journal file is journal:///relative/path" in capsys.readouterr().err


@pytest.mark.slow
def test_three_workers_on_postgresql_complete_every_trial_once(project):
    url = os.environ.get("BENCHMARK_TEST_PG_URL")
    if not url:
        if os.environ.get("BENCHMARK_REQUIRE_PG") == "1":
            pytest.fail("BENCHMARK_TEST_PG_URL is not set; .ci/run starts PostgreSQL (scripts/pg_test_server.sh)")
        pytest.skip("no PostgreSQL server: eval \"$(scripts/pg_test_server.sh start DIR)\" sets BENCHMARK_TEST_PG_URL")
    name = f"workers-{os.getpid()}-{time.time_ns()}"
    _project(project, storage=url, study=name)
    workers = [_worker(project, 3) for _ in range(3)]
    for w in workers:
        out, err = w.communicate(timeout=600)
        assert w.returncode == 0, err[-2000:]
    trials = _study(project, name, url).get_trials()
    assert len(trials) == 9
    assert sorted(t.number for t in trials) == list(range(9))
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    assert sum(t.state.name == "COMPLETE" for t in trials) >= 5


def test_report_section_shows_the_tuned_configuration_beside_the_papers(project):
    from benchmark.core.settings import CorrectorSettings
    from benchmark.report.document import Figure, Heading, Table
    from benchmark.report.tuning import tuning_blocks

    _project(project)
    assert main(["tune", "--n-trials", "3"]) == 0
    figures = project / "figures"
    figures.mkdir()
    blocks = tuning_blocks(project / "reports" / "tune", paper=CorrectorSettings(), figures_dir=figures)
    assert any(isinstance(b, Heading) and "Tuned corrector" in b.text for b in blocks)
    table = next(b for b in blocks if isinstance(b, Table)).frame
    assert list(table["parameter"]) == sorted(["batch_size", "depth", "dropout", "epochs", "attribute_weight", "input", "lr", "width"])
    assert table.set_index("parameter").loc["width", "paper"] == "24"
    figure = next(b for b in blocks if isinstance(b, Figure))
    assert (figures / figure.file).exists()


def _metrics_results(split: str, partition: str) -> dict:
    def summary(macro: float) -> dict:
        return {f"{m}{suffix}": macro + offset for m in ("macro", "average_gap", "largest_gap")
                for suffix, offset in (("", 0.0), ("_ci_low", -1.0), ("_ci_high", 1.0))}
    return {split: {"corrector": {partition: {"gender": summary(90.0), "emotion": summary(80.0)}},
                    "corrector_tuned": {partition: {"gender": summary(92.0), "emotion": summary(85.0)}}}}


def test_held_out_table_puts_the_tuned_network_beside_the_paper_configuration_on_the_test_dataset():
    from benchmark.report.tuning import held_out_table

    table = held_out_table(_metrics_results("faces->adfes", "adfes_test"), "faces->adfes")
    macro = table.set_index(["task", "metric"]).loc[("emotion", "macro")]
    assert macro["paper configuration [CI]"] == "80.00 [79.00, 81.00]"
    assert macro["tuned [CI]"] == "85.00 [84.00, 86.00]"
    assert len(table) == 6   # 2 tasks x (macro, largest gap, average gap)


def test_held_out_table_is_absent_unless_both_configurations_ran_on_the_tuned_split():
    from benchmark.report.tuning import held_out_table

    results = _metrics_results("faces->adfes", "adfes_test")
    del results["faces->adfes"]["corrector_tuned"]
    assert held_out_table(results, "faces->adfes") is None
    assert held_out_table({}, "faces->adfes") is None


def test_report_has_no_tuning_section_without_a_study(tmp_path):
    from benchmark.core.settings import CorrectorSettings
    from benchmark.report.tuning import tuning_blocks

    assert tuning_blocks(tmp_path / "none", paper=CorrectorSettings(), figures_dir=tmp_path) == []


def test_corrector_tuned_reads_the_chosen_configuration(tmp_path):
    from benchmark.core.settings import CorrectorSettings
    from benchmark.infra.errors import BenchmarkError
    from benchmark.methods.tuned import tuned_corrector_settings

    best = tmp_path / "best_params.yaml"
    with pytest.raises(BenchmarkError, match="no tuned configuration; run `benchmark tune`"):
        tuned_corrector_settings(CorrectorSettings(), best)
    best.write_text(yaml.safe_dump({"params": {"width": 48, "depth": 3, "input": "probs"}}))
    tuned = tuned_corrector_settings(CorrectorSettings(), best)
    assert (tuned.width, tuned.depth, tuned.input, tuned.epochs) == (48, 3, "probs", 500)
    best.write_text(yaml.safe_dump({"params": {"width": -1}}))
    with pytest.raises(BenchmarkError, match="width: -1 is out of range"):
        tuned_corrector_settings(CorrectorSettings(), best)


def test_trial_tickets_let_exactly_n_trials_start_across_processes():
    import multiprocessing

    from benchmark.stages.tune import TrialTickets

    context = multiprocessing.get_context("spawn")
    tickets = TrialTickets(7, context)
    with context.Pool(3, initializer=_keep_tickets, initargs=(tickets,)) as pool:
        claimed = sorted(n for batch in pool.map(_claim_all, range(3)) for n in batch)
    assert claimed == list(range(1, 8))


_pool_tickets = None


def _keep_tickets(tickets) -> None:
    global _pool_tickets
    _pool_tickets = tickets


def _claim_all(_: int) -> list[int]:
    claimed = []
    while (n := _pool_tickets.claim()) is not None:
        claimed.append(n)
    return claimed


@pytest.mark.slow
def test_two_trial_processes_run_every_trial_of_one_invocation(project):
    _project(project, tracking=True, jobs=2)
    assert main(["tune", "--n-trials", "4"]) == 0
    assert len(_study(project).get_trials()) == 4
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["tune-test"])
    assert runs["tags.trial"].notna().sum() == 4


def test_a_start_up_batch_trains_while_mlflow_sets_up_and_its_trials_nest_under_the_parent_run(project, monkeypatch):
    from concurrent.futures import ProcessPoolExecutor

    from benchmark.experiment import tracking
    from benchmark.stages import tune

    events = []

    class RecordingPool(ProcessPoolExecutor):
        def submit(self, *args, **kwargs):
            events.append("trial submitted")
            return super().submit(*args, **kwargs)

    def setup(settings):
        events.append("mlflow set up")
        return real_setup(settings)

    real_setup = tracking.setup
    monkeypatch.setattr(tune, "ProcessPoolExecutor", RecordingPool)
    monkeypatch.setattr(tracking, "setup", setup)
    _project(project, tracking=True)
    assert main(["tune", "--n-trials", "2", "--startup-jobs", "2"]) == 0
    assert events == ["trial submitted", "trial submitted", "mlflow set up"]
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["tune-test"])
    parents = runs[runs["tags.benchmark.kind"] == "stage"]
    assert len(parents) == 1 and list(parents["status"]) == ["FINISHED"]
    assert list(runs.loc[runs["tags.trial"].notna(), "tags.mlflow.parentRunId"]) == [parents["run_id"].iloc[0]] * 2


def _imported_by(statement: str, cwd: Path | None = None) -> list[str]:
    """Which of the heavy libraries a fresh Python process has imported after running ``statement``."""
    code = (f"import sys\n{statement}\n"
            "print(sorted({'torch', 'optuna', 'sqlalchemy', 'mlflow'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True).stdout
    return yaml.safe_load(out.strip().splitlines()[-1])


def test_the_stage_process_never_imports_torch_when_its_trials_all_run_in_the_start_up_batch(project):
    _project(project)
    run = "from benchmark.cli import main\nassert main(['-q', 'tune', '--n-trials', '2', '--startup-jobs', '2']) == 0"
    assert "torch" not in _imported_by(run, cwd=project)


def test_a_start_up_trial_process_imports_neither_optuna_nor_its_storage_nor_mlflow():
    from benchmark.stages import tune

    pickled = {tune.evaluate_in_worker.__module__, tune.die_with_parent.__module__}  # what the pool sends by name
    assert _imported_by("import benchmark.cli\n" + "\n".join(f"import {m}" for m in sorted(pickled))) == []


def test_sampler_seed_is_the_params_seed_only_for_the_first_process_of_a_fresh_study():
    from benchmark.stages.tune import sampler_seed

    assert sampler_seed(7, existing_trials=0, worker=0) == 7
    assert len({sampler_seed(7, existing_trials=0, worker=w) for w in range(4)}) == 4
    assert sampler_seed(7, existing_trials=3, worker=0) != 7


def test_a_resumed_study_does_not_repeat_its_first_configurations(project):
    _project(project)
    assert main(["tune", "--n-trials", "2"]) == 0
    assert main(["tune", "--n-trials", "2"]) == 0
    params = [tuple(sorted(t.params.items())) for t in _study(project).get_trials()]
    assert len(set(params)) == 4


class _PruneAtOnce:
    """A stand-in for optuna.Trial whose pruner stops the trial at its first report."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, float]] = []
        self.params = optuna.trial.FixedTrial({"depth": 1, "width": 8, "dropout": 0.0, "attribute_weight": 0.5,
                                               "lr": 1e-3, "epochs": 100, "batch_size": 16, "input": "logits"})

    def __getattr__(self, name):
        return getattr(self.params, name)

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return True


def test_a_pruned_trial_stops_training_at_the_first_prune_epoch():
    from benchmark.core.protocol import make_folds
    from benchmark.core.settings import CorrectorSettings, TuneSettings
    from benchmark.methods.corrector import Corrector
    from benchmark.stages.tune import search_space
    from benchmark.tuning.objective import Objective

    table = make_toy_table(subjects_per_gender=4, images_per_cell=1)
    folds = make_folds("cv:faces", {"faces": table}, attribute=GENDER, cv_folds=3)
    correctors: list[Corrector] = []

    def make_method(params):
        correctors.append(Corrector(CorrectorSettings(**params)))
        return correctors[-1]

    objective = Objective(folds, make_method, attribute=GENDER, space=search_space(TuneSettings()), seeds=[0], objective="macro",
                          gap_weight=0.5, prune_epochs=[20, 60])
    trial = _PruneAtOnce()
    with pytest.raises(optuna.TrialPruned):
        objective(trial)
    assert [step for step, _ in trial.reports] == [20]
    assert correctors[0].fitted == []     # training never reached its last epoch


def test_study_figure_shows_each_trials_objective_at_the_pruning_epochs_beside_the_history(tmp_path):
    import matplotlib.image

    from benchmark.tuning import summary

    study = optuna.create_study(direction="maximize")
    dist = {"width": optuna.distributions.IntDistribution(8, 128)}
    study.add_trial(optuna.trial.create_trial(params={"width": 8}, distributions=dist, value=91.0,
                                              intermediate_values={100: 90.0, 200: 91.0}))
    study.add_trial(optuna.trial.create_trial(params={"width": 64}, distributions=dist, value=None,
                                              state=optuna.trial.TrialState.PRUNED, intermediate_values={100: 70.0}))
    curves = summary.curves(study)
    assert curves == {0: ("COMPLETE", {100: 90.0, 200: 91.0}), 1: ("PRUNED", {100: 70.0})}
    best = {"trial": 0, "value": 91.0}
    summary.plot(summary.trials_frame(study), best, tmp_path / "with.png", multi=False, trial_curves=curves)
    summary.plot(summary.trials_frame(study), best, tmp_path / "without.png", multi=False)
    wide, narrow = (matplotlib.image.imread(tmp_path / name).shape[1] for name in ("with.png", "without.png"))
    assert wide > 1.5 * narrow   # a second panel


def test_a_study_can_tune_group_recalibrations_fairness_strength(project):
    _project(project, method="group_recalibration", objective="macro_minus_gap", study="fair",
             space={**TINY_TUNE["space"], "strength": [0.0, 16.0]})
    assert main(["tune", "--n-trials", "3"]) == 0
    best = yaml.safe_load((project / "reports" / "tune" / "best_params.yaml").read_text())
    assert best["method"] == "group_recalibration" and set(best["params"]) == {"strength"}
    assert 0.0 <= best["params"]["strength"] <= 16.0
    assert _states(_study(project, "fair")) == ["COMPLETE"] * 3


def test_group_recalibration_tuned_reads_the_strength_and_corrector_tuned_refuses_its_study(tmp_path):
    from benchmark.core.settings import CorrectorSettings
    from benchmark.infra.errors import BenchmarkError
    from benchmark.methods.tuned import tuned_corrector_settings, tuned_strength

    best = tmp_path / "best_params.yaml"
    best.write_text(yaml.safe_dump({"method": "group_recalibration", "split": "faces->adfes",
                                    "params": {"strength": 3.5}}))
    assert tuned_strength(best) == 3.5
    with pytest.raises(BenchmarkError, match="its study tuned 'group_recalibration', but corrector_tuned needs a "
                                             "study of 'corrector'"):
        tuned_corrector_settings(CorrectorSettings(), best)


SMALL_CORRECTOR = {"depth": 1, "width": 4, "dropout": 0.2, "attribute_weight": 0.5, "lr": 1.0e-3, "epochs": 50,
                   "batch_size": 16, "input": "logits"}


def _with_corrector(root: Path, corrector: dict) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump({**params, "train": {"corrector": corrector}}))


def _trials_without_times(root: Path):
    import pandas as pd

    return pd.read_csv(root / "reports" / "tune" / "trials.csv").drop(columns=["duration_s"])  # times differ


def _sequential_and_at_once(tmp_path, monkeypatch, n_trials: int, corrector: dict | None = None) -> dict:
    """A fresh study of ``n_trials`` run by one process with start-up trials one after the other (``sequential``) and
    with them at once in two processes (``at_once``): its trials table without times and best_params.yaml of each."""
    out = {}
    for name, startup_jobs in (("sequential", "1"), ("at_once", "2")):
        root = tmp_path / name
        root.mkdir()
        monkeypatch.chdir(root)
        _project(root)
        if corrector is not None:
            _with_corrector(root, corrector)  # enqueued as trial 0
        assert main(["tune", "--n-trials", str(n_trials), "--jobs", "1", "--startup-jobs", startup_jobs]) == 0
        out[name] = _trials_without_times(root)
        out[name + " best"] = yaml.safe_load((root / "reports" / "tune" / "best_params.yaml").read_text())
    return out


def test_startup_trials_run_at_once_give_the_study_of_one_after_the_other(tmp_path, monkeypatch):
    tables = _sequential_and_at_once(tmp_path, monkeypatch, 4)
    assert len(tables["sequential"]) == 4 and tables["sequential"].equals(tables["at_once"])
    assert tables["sequential best"] == tables["at_once best"]


def test_a_study_from_train_corrector_past_its_startup_trials_is_the_same_at_once_as_one_after_the_other(
        tmp_path, monkeypatch):
    tables = _sequential_and_at_once(tmp_path, monkeypatch, 7, corrector=SMALL_CORRECTOR)
    assert len(tables["sequential"]) == 7 and tables["sequential"].equals(tables["at_once"])


def test_a_resumed_study_draws_new_random_configurations(project):
    _project(project)
    assert main(["tune", "--n-trials", "2", "--jobs", "1", "--startup-jobs", "2"]) == 0
    assert main(["tune", "--n-trials", "2", "--jobs", "1", "--startup-jobs", "2"]) == 0
    configurations = [tuple(sorted(t.params.items())) for t in _study(project).get_trials()]
    assert len(configurations) == 4 and len(set(configurations)) == 4


def test_a_fresh_corrector_study_starts_from_train_corrector(project):
    _project(project)
    _with_corrector(project, SMALL_CORRECTOR)
    assert main(["tune", "--n-trials", "2"]) == 0
    assert _study(project).get_trials()[0].params == SMALL_CORRECTOR


def test_a_study_starts_at_random_when_train_corrector_lies_outside_the_space(project):
    _project(project)  # the paper's width 24 is outside the tiny space's [4, 8]
    assert main(["tune", "--n-trials", "1"]) == 0
    assert _study(project).get_trials()[0].params["width"] <= 8


def _finished_study(trials: list[tuple[dict, float, list[float]]]) -> optuna.Study:
    """An in-memory study of completed trials: (params, value, per-fold values)."""
    study = optuna.create_study(direction="maximize")
    distributions = {"depth": optuna.distributions.IntDistribution(1, 4),
                     "width": optuna.distributions.IntDistribution(8, 128),
                     "epochs": optuna.distributions.IntDistribution(100, 1000, step=50),
                     "batch_size": optuna.distributions.IntDistribution(16, 128)}
    for params, value, folds in trials:
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value,
                                                  user_attrs={"cv_fold_values": folds}))
    return study


def test_cheapest_within_se_picks_the_cheapest_trial_within_one_standard_error_of_the_best():
    from benchmark.tuning.study import best_configuration

    big = {"depth": 4, "width": 89, "epochs": 800, "batch_size": 20}
    small = {"depth": 2, "width": 24, "epochs": 500, "batch_size": 32}
    tiny = {"depth": 1, "width": 8, "epochs": 100, "batch_size": 128}
    study = _finished_study([(small, 95.5, [95.0, 96.0, 95.5]), (big, 96.0, [95.0, 97.0, 96.0]),
                             (tiny, 90.0, [89.0, 91.0, 90.0])])  # best 96.0, its SE 1 / sqrt(3) = 0.577
    chosen = best_configuration(study, pareto_pick="balanced", pick="cheapest_within_se")
    assert (chosen["trial"], chosen["best_trial"]) == (0, 1) and chosen["best_value_se"] == pytest.approx(3 ** -0.5)
    assert best_configuration(study, pareto_pick="balanced", pick="best")["trial"] == 1


def test_cheapest_within_se_refuses_trials_without_fold_values():
    from benchmark.infra.errors import BenchmarkError
    from benchmark.tuning.study import best_configuration

    study = _finished_study([({"depth": 1, "width": 8, "epochs": 100, "batch_size": 16}, 90.0, [])])
    with pytest.raises(BenchmarkError, match="tune.pick: .* no per-fold CV values"):
        best_configuration(study, pareto_pick="balanced", pick="cheapest_within_se")


def test_training_cost_grows_with_steps_and_network_size():
    from benchmark.tuning.study import corrector_parameters, training_cost

    assert corrector_parameters(2, 24) == 1114  # the paper's 10-24-24-10 network with its two heads
    paper = {"depth": 2, "width": 24, "epochs": 500, "batch_size": 32}
    assert training_cost({**paper, "epochs": 1000}) == pytest.approx(2 * training_cost(paper))
    assert training_cost({**paper, "width": 128}) > training_cost(paper) and training_cost({"strength": 1.0}) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_optuna_dashboard_reads_the_study_as_the_readme_says(project, kind):
    import json
    import urllib.request

    from browser import Server, free_port

    storage = {"sqlite": "sqlite:///optuna.db", "journal": "journal:///optuna.journal"}[kind]
    _project(project, storage=storage, study="dashboard")
    assert main(["-q", "tune", "--n-trials", "2"]) == 0
    port = free_port()
    target = {"sqlite": "sqlite:///optuna.db", "journal": "optuna.journal"}[kind]   # as the README writes them
    dashboard = str(Path(sys.executable).with_name("optuna-dashboard"))
    server = Server([dashboard, target, "--host", "127.0.0.1", "--port", str(port)],
                    health_url=f"http://127.0.0.1:{port}/api/studies", cwd=project)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=30) as answer:
            (study,) = [s for s in json.loads(answer.read())["study_summaries"] if s["study_name"] == "dashboard"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}", timeout=30) as answer:
            trials = json.loads(answer.read())["trials"]
    finally:
        server.stop()
    assert sorted(t["number"] for t in trials) == [0, 1]
