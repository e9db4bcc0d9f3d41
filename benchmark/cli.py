"""The ``benchmark`` command: one subcommand per pipeline stage, thin over the library.

User mistakes raise :class:`~benchmark.infra.errors.BenchmarkError`; they are printed as one line on stderr with exit code 1
(with the traceback only under ``--debug``). A stage holds its working-copy lock (:mod:`benchmark.infra.process_locks`) while it
runs; Ctrl-C and SIGTERM unwind it cleanly (exit 130 and 143) and a full disk is one line too.

Commands that work on a project (the stages, doctor, images, ui) work in its root, the folder of ``--params``
(:func:`benchmark.infra.paths.project_root`), so relative paths in params.yaml and the default locations mean the same
files from any directory; their own path arguments are resolved against the directory they were started in first.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import click

from benchmark.core.settings import TRAIN_DEVICES
from benchmark.infra import paths
from benchmark.infra.errors import BenchmarkError

PARAMS_OPTION = click.option("--params", "params_path", type=click.Path(path_type=Path), default=paths.PARAMS,
                             show_default=True, metavar="PATH", help="params.yaml to read.")


def _exclusive(stage: str) -> AbstractContextManager[Path]:
    """The working copy's lock of ``stage``: a second invocation writing the same files is refused with one line."""
    from benchmark.infra import process_locks

    return process_locks.hold(stage)


def _settings(params_path: Path, overrides: dict | None = None):
    from benchmark.experiment.params import load_settings

    return load_settings(params_path, overrides)


def _project_settings(params_path: Path, overrides: dict | None = None):
    """The validated settings of ``params_path``, after moving into its project root (the folder of params.yaml)."""
    params = Path(params_path).resolve()
    if params.is_file():
        os.chdir(paths.project_root(params))
    return _settings(params, overrides)


@contextmanager
def _stage(name: str, settings) -> Iterator[None]:
    """A stage's run: its working-copy lock (except tune, whose workers share a study) and, when MLflow's system
    metrics are switched on, the machine's load and memory sampled from here for the stage's MLflow run."""
    from benchmark.experiment import system_metrics

    with (_exclusive(name) if name != "tune" else _nothing()), system_metrics.sampling(settings.tracking.enabled):
        yield


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(package_name="crossmodal-bias-benchmark")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """Reproducible benchmark for post-hoc, cross-modal bias correction in facial analysis."""
    ctx.obj = {"debug": debug}
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr)


@cli.command()
@PARAMS_OPTION
def fetch(params_path: Path) -> None:
    """Write the per-image outputs tables (data/outputs/) from the configured source."""
    from benchmark.stages import fetch as stage

    settings = _project_settings(params_path)
    with _stage("fetch", settings):
        written = stage.run(settings)
    for path in written:
        click.echo(f"wrote {path}")


@cli.command()
@PARAMS_OPTION
def train(params_path: Path) -> None:
    """Run every method over every split, fold and seed (results/predictions.parquet)."""
    from benchmark.stages import train as stage

    settings = _project_settings(params_path)
    with _stage("train", settings):
        click.echo(f"wrote {stage.run(settings)}")


@cli.command()
@PARAMS_OPTION
def evaluate(params_path: Path) -> None:
    """Compute the paper's metrics and their statistics (results/stats.parquet, reports/metrics.json)."""
    from benchmark.stages import evaluate as stage

    settings = _project_settings(params_path)
    with _stage("evaluate", settings):
        click.echo("wrote " + ", ".join(map(str, stage.run(settings))))


@cli.command()
@PARAMS_OPTION
def report(params_path: Path) -> None:
    """Write reports/report.md, the self-contained reports/report.html and reports/figures/."""
    from benchmark.stages import report as stage

    settings = _project_settings(params_path)
    with _stage("report", settings):
        click.echo("wrote " + ", ".join(map(str, stage.run(settings))))


@cli.command()
@PARAMS_OPTION
@click.option("--study", "study_name", metavar="NAME", help="Study name (default: tune.study).")
@click.option("--n-trials", type=click.IntRange(min=1), help="Trials this worker runs (default: tune.n_trials).")
@click.option("--storage", metavar="URL", envvar="OPTUNA_STORAGE",
              help="SQLAlchemy URL of the study storage (default: tune.storage, sqlite:///optuna.db; env OPTUNA_STORAGE).")
@click.option("--objective", type=click.Choice(["macro", "macro_minus_gap", "pareto"]),
              help="Single objective (macro, macro_minus_gap) or multi-objective pareto (default: tune.objective).")
@click.option("--jobs", type=click.IntRange(min=0), help="Trial processes, each on one core; 0 = one per core (default: tune.jobs).")
@click.option("--startup-jobs", type=click.IntRange(min=0),
              help="Processes for a fresh study's random start-up trials, run at once with the same result as one "
                   "after the other; 0 = one per core (default: --jobs).")
def tune(params_path: Path, study_name: str | None, n_trials: int | None, storage: str | None,
         objective: str | None, jobs: int | None, startup_jobs: int | None) -> None:
    """Run an Optuna study over corrector variants (reports/tune/best_params.yaml); each trial an MLflow run."""
    from benchmark.experiment import tracking
    from benchmark.infra import probes

    overrides = {"tune.objective": objective} if objective else None
    if storage is not None:   # a relative SQLite or journal file named here is relative to where the command started
        storage = paths.resolve_location(storage, Path.cwd())
    settings = _project_settings(params_path, overrides)
    probes.check_study_storage(storage or settings.tune.storage)  # before the stage's imports (torch: seconds)
    if settings.tracking.enabled:
        tracking.probe(settings.tracking)
    from benchmark.stages import tune as stage

    with _stage("tune", settings):
        target = stage.run(settings, n_trials=n_trials, study_name=study_name, storage=storage, jobs=jobs,
                           startup_jobs=startup_jobs)
    click.echo(f"wrote {target}")


@cli.command()
@PARAMS_OPTION
def doctor(params_path: Path) -> None:
    """Print what is present and what is missing (GPU, data, weights, tracking, storage, versions), with fixes."""
    from benchmark.tools.doctor import run_checks

    checks = run_checks(_project_settings(params_path))
    for check in checks:
        click.echo(check.line())
    missing = sum(check.ok is False for check in checks)
    click.echo(f"{missing} missing" if missing else "everything needed is present")


@cli.command()
@PARAMS_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface mlflow ui listens on.")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--open", "open_browser", is_flag=True, help="Also open the link in the default web browser.")
def ui(params_path: Path, host: str, port: int, open_browser: bool) -> None:
    """Serve the project's MLflow store (mlflow ui) and print the link to its runs, compared in the machine-learning
    view; Ctrl-C stops it. A tracking server's link is printed without serving."""
    from benchmark.experiment import tracking
    from benchmark.tools import mlflow_ui

    settings = _project_settings(params_path)
    uri = tracking.tracking_uri(settings.tracking)
    experiment = mlflow_ui.experiment_id(settings.tracking)
    if uri.startswith(("http://", "https://")):
        click.echo(mlflow_ui.runs_link(uri, experiment))
        return
    served = mlflow_ui.Served(uri, host=host, port=port, cwd=Path.cwd())
    link = mlflow_ui.runs_link(served.base, experiment)
    click.echo(f"MLflow UI for {uri}: {link}  (Ctrl-C stops it)")
    if open_browser:
        import webbrowser

        webbrowser.open(link)
    served.wait()


@cli.group()
def simulate() -> None:
    """Fit, sample and check simulation scenarios (the `sim` source; docs/SIMULATION.md)."""


SCENARIO_ARGUMENT = click.argument("scenario", metavar="SCENARIO")


@simulate.command("fit")
@click.argument("tables", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Scenario YAML to write.")
@click.option("--name", required=True, help="Scenario name, recorded in the file and in every sampled table.")
@click.option("--dependence", type=click.Choice(["observed", "none"]), default="observed", show_default=True,
              help="observed: keep the tables' cross-modal dependence; none: remove it (a null scenario).")
@click.option("--description", default="", help="One line saying what the scenario is for.")
@click.option("--cells-by", type=click.Choice(["gender", "gender,age_group"]), default="gender", show_default=True,
              help="Attributes whose true groups (with the emotion) make the cells; gender,age_group also models the "
                   "age model's outputs (the tables must declare age_group and carry its outputs).")
def simulate_fit(tables: tuple[Path, ...], output: Path, name: str, dependence: str, description: str,
                 cells_by: str) -> None:
    """Fit a scenario to outputs tables (parquet files written by `benchmark fetch`)."""
    from benchmark.sources import sim_fit

    written = sim_fit.fit_files(list(tables), output=output, name=name, dependence=dependence,
                                description=description, cells_by=tuple(cells_by.split(",")))
    click.echo(f"wrote {written}")


@simulate.command("sample")
@SCENARIO_ARGUMENT
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), required=True,
              help="Folder for <dataset>.parquet outputs tables.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--scale", type=click.IntRange(min=1), default=1, show_default=True, help="Multiplies the number of subjects.")
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="params.yaml whose data.declarations / data.declare declare datasets besides the shipped ones.")
def simulate_sample(scenario: str, output_dir: Path, seed: int, scale: int, params_path: Path | None) -> None:
    """Sample outputs tables of every dataset of SCENARIO (a scenario YAML, or a shipped name: paper, null, age), each as
    its declaration names its emotions: the shipped declarations, and those of --params when given."""
    from benchmark.core import design
    from benchmark.experiment import params
    from benchmark.sources import sim

    declared = params.catalogue(_settings(params_path)) if params_path is not None else design.shipped()
    for path in sim.write_sample(scenario, output_dir, declared, seed=seed, scale=scale):
        click.echo(f"wrote {path}")


@simulate.command("check")
@SCENARIO_ARGUMENT
@click.argument("tables", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--scale", type=click.IntRange(min=1), default=50, show_default=True,
              help="Size of the simulated sample, in multiples of the design.")
def simulate_check(scenario: str, tables: tuple[Path, ...], seed: int, scale: int) -> None:
    """Print how a large sample of SCENARIO differs from the outputs TABLES it was fitted on."""
    from benchmark.sources import sim_check

    click.echo(sim_check.check_files(scenario, list(tables), scale=scale, seed=seed))


@simulate.command("coverage")
@click.option("--scenario", default="paper", show_default=True, help="Scenario YAML or a shipped name (paper, null).")
@click.option("--dataset", required=True, help="The declared dataset whose design is replicated (faces, adfes).")
@click.option("--attribute", default="gender", show_default=True, help="Protected attribute (cells: its groups).")
@click.option("--comparison", type=click.Choice(["methods", "aa", "composite"]), default="methods", show_default=True,
              help="methods: --method vs --reference, fitted once; aa: --reference run twice on jittered outputs; "
                   "composite: --reference vs a set with its metrics but its errors on whole persons.")
@click.option("--method", default="corrector", show_default=True)
@click.option("--reference", default="uncorrected", show_default=True)
@click.option("--train-dataset", default=None, help="Dataset the methods are fitted on [default: the other shipped one].")
@click.option("--train-scale", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--replicates", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--scale", type=click.IntRange(min=1), default=1, show_default=True,
              help="Multiplies the number of subjects of each replicate (1: the real design).")
@click.option("--truth-scale", type=click.IntRange(min=1), default=200, show_default=True,
              help="Size of the sample the truth is computed on, in multiples of the design.")
@click.option("--aa-noise", type=float, default=1.0, show_default=True, help="sd (logits) of the A/A jitter.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Replicate r is sampled with seed + r (the methods' training sample with seed + 1000003).")
@click.option("--truth-seed", type=click.IntRange(min=0), default=None,
              help="Seed of the truth sample [default: seed + 2000003].")
@click.option("--ci-methods", default=None,
              help="Comma-separated interval methods (or calibrated variants: calibrated-exact, calibrated-persons, "
                   "...) run side by side on the same replicates [default: evaluate.ci_method].")
@click.option("--n-resamples", type=click.IntRange(min=1), default=None, help="[default: evaluate.n_resamples]")
@click.option("--n-permutations", type=click.IntRange(min=1), default=None, help="[default: evaluate.n_permutations]")
@click.option("--rows", type=click.Path(path_type=Path), default=None,
              help="Also write row-level coverage (every metric row, per interval method) as CSV, and the per-family "
                   "table with its lowest and highest rows beside it (<rows>.families.csv).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Also write the per-family summary as CSV (and the per-replicate records beside it, .parquet).")
@click.option("--measured", type=click.Path(path_type=Path), default=None,
              help="Also merge the summary into this measured-coverage table (the report's marks read the shipped "
                   "benchmark/stats/coverage.csv), replacing the rows of the same study.")
@PARAMS_OPTION
def simulate_coverage(scenario: str, dataset: str, attribute: str, comparison: str, method: str, reference: str,
                      train_dataset: str | None, train_scale: int, replicates: int, scale: int, truth_scale: int,
                      aa_noise: float, seed: int, truth_seed: int | None, ci_methods: str | None,
                      n_resamples: int | None, n_permutations: int | None, rows: Path | None, output: Path | None,
                      measured: Path | None, params_path: Path) -> None:
    """Measure how often the intervals hold the simulator's truth, and how often the tests reject, over REPLICATES
    samples of a dataset's design (the evaluate section's statistics; docs/STATISTICS.md)."""
    from benchmark.experiment import params
    from benchmark.stats import CI_METHODS, StatsConfig, coverage_table
    from benchmark.studies import coverage_study

    settings = _settings(params_path)
    study = coverage_study.CoverageStudy(scenario=scenario, dataset=dataset, attribute=attribute, comparison=comparison,
                                   method=method, reference=reference, train_dataset=train_dataset,
                                   train_scale=train_scale, replicates=replicates, scale=scale,
                                   truth_scale=truth_scale, aa_noise=aa_noise, seed=seed, truth_seed=truth_seed)
    config = _budgets(StatsConfig.from_settings(settings.evaluate), n_resamples, n_permutations)
    methods = coverage_study.interval_methods(ci_methods)
    result = coverage_study.measure_coverage(study, settings, declared=params.catalogue(settings), config=config,
                                             ci_methods=methods)
    click.echo(coverage_study.to_markdown(result, command="benchmark " + " ".join(sys.argv[1:])))
    click.echo(f"{result.seconds:.0f} s of statistics ({result.seconds / replicates:.2f} s per replicate)")
    written = coverage_study.write(result, output) if output is not None else []
    written += coverage_study.write_rows(result.records, rows) if rows is not None else []
    for path in written:
        click.echo(f"wrote {path}")
    if measured is not None:
        if methods and methods[0] not in CI_METHODS:
            raise BenchmarkError(f"--measured: the first of --ci-methods ({methods[0]!r}) is a variant; the measured "
                                 f"table takes one of {', '.join(CI_METHODS)}")
        config = dataclasses.replace(config, ci_method=methods[0]) if methods else config
        click.echo(f"wrote {coverage_table.merge_measured(measured, coverage_study.measured_rows(result, config=config))}")


def _budgets(config, n_resamples: int | None, n_permutations: int | None):
    """``config`` with the budgets given on the command line (None: the config's)."""
    return dataclasses.replace(config, n_resamples=n_resamples or config.n_resamples,
                               n_permutations=n_permutations or config.n_permutations)


@simulate.command("plasmode")
@click.option("--outputs", "folder", type=click.Path(path_type=Path), required=True,
              help="Folder of the authors' published outputs CSVs (the `published` source).")
@click.option("--dataset", default="faces", show_default=True,
              help="The published dataset whose persons are the population.")
@click.option("--attribute", default="gender", show_default=True)
@click.option("--sizes", default="female=10,male=12", show_default=True,
              help="Persons per attribute group in each subsample (group=n, comma-separated; default: ADFES's design).")
@click.option("--method", default="crossmodal_linear", show_default=True,
              help="Compared rule, fitted once on the other dataset's published outputs.")
@click.option("--reference", default="uncorrected", show_default=True)
@click.option("--agreement", type=click.FloatRange(-1.0, 1.0), default=0.0, show_default=True,
              help="> 0: move that share of each cell's images to random persons of the cell (weaker agreement of a "
                   "person's images); < 0: to the persons most often wrong (stronger); 0: the real persons.")
@click.option("--replicates", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--ci-methods", default=None, help="Comma-separated interval methods [default: evaluate.ci_method].")
@click.option("--n-resamples", type=click.IntRange(min=1), default=None, help="[default: evaluate.n_resamples]")
@click.option("--n-permutations", type=click.IntRange(min=1), default=None, help="[default: evaluate.n_permutations]")
@click.option("--rows", type=click.Path(path_type=Path), required=True,
              help="Row-level coverage CSV (and <rows>.families.csv beside it).")
@PARAMS_OPTION
def simulate_plasmode(folder: Path, dataset: str, attribute: str, sizes: str, method: str, reference: str,
                      agreement: float, replicates: int, seed: int, ci_methods: str | None, n_resamples: int | None,
                      n_permutations: int | None, rows: Path, params_path: Path) -> None:
    """Coverage on real people: subsamples of the published outputs' persons, truth = the metric over all of them
    (docs/STATISTICS.md)."""
    from benchmark.stats import StatsConfig, rowcoverage
    from benchmark.studies import coverage_study, plasmode

    settings = _settings(params_path)
    study = plasmode.PlasmodeStudy(dataset=dataset, attribute=attribute, method=method, reference=reference,
                                   sizes=plasmode.parse_sizes(sizes), replicates=replicates, agreement=agreement,
                                   seed=seed)
    config = _budgets(StatsConfig.from_settings(settings.evaluate), n_resamples, n_permutations)
    records, _ = plasmode.run(study, settings, folder, config=config,
                              ci_methods=coverage_study.interval_methods(ci_methods))
    click.echo(rowcoverage.family_table(records).to_string(index=False))
    for path in coverage_study.write_rows(records, rows):
        click.echo(f"wrote {path}")


@simulate.command("widths")
@click.option("--outputs", "folder", type=click.Path(path_type=Path), required=True,
              help="Folder of the authors' published outputs CSVs (the `published` source).")
@click.option("--attribute", default="gender", show_default=True)
@click.option("--ci-methods", default="calibrated,bca,bound", show_default=True,
              help="Comma-separated interval methods (bca is always added: the ratios are to it).")
@click.option("--n-resamples", type=click.IntRange(min=1), default=None, help="[default: evaluate.n_resamples]")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Also write the table as CSV.")
@PARAMS_OPTION
def simulate_widths(folder: Path, attribute: str, ci_methods: str, n_resamples: int | None, output: Path | None,
                    params_path: Path) -> None:
    """Median interval width per family on the full published FACES and ADFES outputs, and its ratio to BCa's."""
    from benchmark.infra import atomic
    from benchmark.stats import StatsConfig
    from benchmark.studies import coverage_study, plasmode

    settings = _settings(params_path)
    config = _budgets(StatsConfig.from_settings(settings.evaluate), n_resamples, 100)
    methods = coverage_study.interval_methods(ci_methods)
    methods += () if "bca" in methods else ("bca",)
    table = plasmode.published_widths(settings, folder, config=config, ci_methods=methods, attribute=attribute)
    click.echo(table.to_string(index=False))
    if output is not None:
        atomic.write_text(output, table.to_csv(index=False))
        click.echo(f"wrote {output}")


@simulate.command("table")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def simulate_table(folder: Path) -> None:
    """docs/STATISTICS.md's validation tables (coverage and width per family and design for calibrated, BCa and
    bound; rejection rates; plasmode; widths on the published outputs) from FOLDER's row-level study tables."""
    from benchmark.studies import coverage_docs

    click.echo(coverage_docs.tables(folder))


@cli.command()
@PARAMS_OPTION
def power(params_path: Path) -> None:
    """Simulate the smallest differences the tests detect with 80 % power at each held-out design (results/power.json)."""
    from benchmark.stages import power as stage

    click.echo(f"wrote {stage.run(_project_settings(params_path))}")


@cli.group()
def images() -> None:
    """The raw FACES / ADFES images under data.input (for data.source: images)."""


@images.command("manifest")
@PARAMS_OPTION
@click.option("--strict", is_flag=True, help="Any problem (name, unreadable, duplicate, count) is an error (exit 1).")
def images_manifest(params_path: Path, strict: bool) -> None:
    """Check every image of data.datasets under data.input and write data/chips/manifest_<dataset>.csv."""
    from benchmark.experiment import params
    from benchmark.sources import images as source

    settings = _project_settings(params_path)
    for design in params.run_designs(settings).values():
        scan, path = source.scan_and_report(design, settings.data, strict=strict or settings.data.images.strict)
        click.echo(f"wrote {path} ({len(scan.entries)} files, {len(scan.usable)} usable, {len(scan.problems)} problems)")


@images.command("chips")
@PARAMS_OPTION
@click.option("--shard", default=None, metavar="I/N",
              help="Only shard I of N (0 <= I < N) of each dataset's images, with its own index; run the N shards on "
                   "any machines sharing data/chips (or copy their folders together); the next fetch merges them.")
def images_chips(params_path: Path, shard: str | None) -> None:
    """Detect faces and cut the chips of data.datasets into data/chips, without running the models."""
    from benchmark.experiment import params
    from benchmark.frozen.chips import Shard
    from benchmark.sources import images as source

    settings = _project_settings(params_path)
    part = Shard.parse(shard) if shard is not None else None
    for design in params.run_designs(settings).values():
        scan, records = source.chip_dataset(design, settings.data, shard=part)
        made = sum(r.chip is not None for r in records.values())
        where = "" if part is None else f" ({part.name()})"
        click.echo(f"{scan.folder}{where}: {made} chips, {len(records) - made} images without one (no face or unreadable)")


@images.command("import")
@PARAMS_OPTION
@click.argument("archive", type=click.Path(path_type=Path))
@click.option("--dataset", required=True, help="Which declared dataset the archive holds (faces, adfes, yours).")
def images_import(params_path: Path, archive: Path, dataset: str) -> None:
    """Unpack a dataset archive (zip/tar) into data.input/<dataset>/, refusing members that escape that folder."""
    from benchmark.experiment import params
    from benchmark.sources import archive as archives

    archive = archive.absolute()
    settings = _project_settings(params_path)
    declared = params.catalogue(settings)
    if dataset not in declared:
        raise BenchmarkError(f"--dataset: {dataset!r} is not declared; declared: {', '.join(declared)}")
    click.echo(f"wrote {archives.extract(archive, Path(settings.data.input) / dataset)}")


@cli.command()
@click.option("--models", "-k", type=click.IntRange(1), default=64, show_default=True,
              help="Networks the vectorised trainer trains at once.")
@click.option("--reference-models", type=click.IntRange(0), default=1, show_default=True,
              help="Networks the reference loop trains, one after the other (about 35 s each here).")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Override the paper's 500 epochs (quick runs).")
@click.option("--workers", type=click.IntRange(1), default=None, help="Threads of the vectorised trainer [default: CPUs].")
@click.option("--device", type=click.Choice(TRAIN_DEVICES), default="cpu", show_default=True,
              help="cuda: also train the same networks on the GPU and report models/s against the CPU trainer "
                   "(auto: cuda when available).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="Also write the timings as JSON.")
def bench(models: int, reference_models: int, epochs: int | None, workers: int | None, device: str,
          json_path: Path | None) -> None:
    """Time the reference training loop against the vectorised trainer, on the CPU and with --device cuda also on the
    GPU (paper configuration, FACES-sized data)."""
    from benchmark.infra import atomic
    from benchmark.tools import bench as library

    result = library.run_bench(models=models, reference_models=reference_models, epochs=epochs, workers=workers,
                               device=device)
    for line in library.summary_lines(result):
        click.echo(line)
    if json_path is not None:
        atomic.write_json(json_path, result.as_dict())
        click.echo(f"wrote {json_path}")


@cli.command()
@click.option("--resamples", type=click.IntRange(1), default=1000, show_default=True,
              help="Bootstrap resamples of both tools.")
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True,
              help="Timed runs of each tool per dataset; the fastest is reported.")
@click.option("--published", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None, metavar="DIR",
              help="Folder of the authors' published CSVs [default: the simulated FACES and ADFES].")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="Also write the timings as JSON.")
def peers(resamples: int, repeats: int, published: Path | None, json_path: Path | None) -> None:
    """Time Fairlearn's MetricFrame bootstrap against the project's statistics on the same predictions with the same
    number of resamples (needs the optional extra 'fairness')."""
    from benchmark.infra import atomic
    from benchmark.tools import peers as library

    points = library.run_peers(resamples=resamples, repeats=repeats, published=published)
    for line in library.peer_lines(points):
        click.echo(line)
    if json_path is not None:
        atomic.write_json(json_path, [p.as_dict() for p in points])
        click.echo(f"wrote {json_path}")


@cli.command()
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), required=True, metavar="DIR",
              help="Where to write scaling.csv, scaling.json and scaling.png.")
@click.option("--curves", default="trainer_rows,trainer_models,evaluate_subjects,evaluate_resamples,evaluate_images,report",
              show_default=True, help="Which curves to measure (comma-separated).")
@click.option("--rows-scales", default="1,3,10,30,100", show_default=True,
              help="trainer_rows: sizes of the simulated FACES training table, in multiples of its 2,052 rows.")
@click.option("--rows-models", type=int, default=10, show_default=True, help="trainer_rows: networks trained at once.")
@click.option("--row-epochs", type=int, default=400_000, show_default=True,
              help="Every trainer point trains rows x epochs = this (epochs = round(this / rows), at least 1).")
@click.option("--models", default="1,2,4,10,20,40", show_default=True,
              help="trainer_models: K networks at once on 2,052 rows.")
@click.option("--subjects-scales", default="1,2,5,10,30", show_default=True,
              help="evaluate_subjects: multiples of the FACES design's 171 subjects.")
@click.option("--subjects-resamples", type=int, default=10_000, show_default=True,
              help="evaluate_subjects: resamples (= permutations) of each comparison.")
@click.option("--resamples", default="1000,3000,10000,30000", show_default=True,
              help="evaluate_resamples: resamples (= permutations) of a FACES-sized comparison.")
@click.option("--images", default="10000,100000,1000000", show_default=True,
              help="evaluate_images: images without person ids (each its own subject), about (multiples of 2,052).")
@click.option("--report-splits", default="1,2,4", show_default=True, help="report: how many of the 4 default splits.")
@click.option("--report-methods", default="2,4,6", show_default=True, help="report: how many of 6 methods.")
@click.option("--repeats", type=int, default=2, show_default=True,
              help="Timed runs per point; the fastest is reported.")
def scaling(output_dir: Path, curves: str, rows_scales: str, rows_models: int, row_epochs: int, models: str,
            subjects_scales: str, subjects_resamples: int, resamples: str, images: str, report_splits: str,
            report_methods: str, repeats: int) -> None:
    """Measure how the trainer, the statistics and the report grow with the data (time and peak memory per point,
    each in its own process on one core), fit power laws and write a table and a figure."""
    from benchmark.tools import scaling as library
    from benchmark.tools.scaling_figure import write_figure

    grid = library.grid_from_options(
        curves=curves, rows_scales=rows_scales, rows_models=rows_models, row_epochs=row_epochs, models=models,
        subjects_scales=subjects_scales, subjects_resamples=subjects_resamples, resamples=resamples, images=images,
        report_splits=report_splits, report_methods=report_methods, repeats=repeats)
    library.check_output_dir(output_dir)
    result = library.run_scaling(grid, on_point=lambda p: click.echo(library.point_line(p)))
    for fit in result.fits:
        click.echo(library.fit_line(fit))
    for path in [*library.write_tables(result, output_dir), write_figure(result, output_dir)]:
        click.echo(f"wrote {path}")


def _interrupted(received: KeyboardInterrupt) -> int:
    """Say in one line that a signal stopped the command; return its exit code (128 + the signal's number)."""
    from benchmark.infra.processes import Terminated

    number = signal.SIGTERM if isinstance(received, Terminated) else signal.SIGINT
    click.echo(f"error: interrupted by {number.name}; files being written were discarded (outputs keep their "
               f"previous complete version) and any MLflow run of the stage is marked KILLED", err=True)
    return 128 + number


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning BenchmarkError, interrupts and a full disk into one line on stderr.

    Exit codes: 0 done, 1 a user error or a full disk, 2 a usage error (click), 130 Ctrl-C, 143 SIGTERM.
    """
    from benchmark.infra.atomic import disk_full_message, is_disk_full
    from benchmark.infra.processes import interruption, sigterm_as_interrupt

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        with sigterm_as_interrupt():
            cli.main(args=args, prog_name="benchmark", standalone_mode=False)
    except click.exceptions.Abort as err:
        if isinstance(err.__cause__, KeyboardInterrupt):
            return _interrupted(err.__cause__)
        click.echo("Aborted.", err=True)  # an aborted prompt, not a signal
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except BenchmarkError as err:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {err}", err=True)
        return 1
    except click.exceptions.Exit as err:
        return err.exit_code
    except Exception as err:
        if (received := interruption(err)) is not None:  # a library stopped mid-clean-up raised something else
            return _interrupted(received)
        if not is_disk_full(err):
            raise
        if debug:
            traceback.print_exc()
        click.echo(f"error: {disk_full_message(getattr(err, 'filename', None))}", err=True)
        return 1
    return 0
