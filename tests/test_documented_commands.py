"""Every command the README and docs/*.md show is run by a test, a matrix cell (tests/pipeline/test_matrix.py) or CI's
script (.ci/run), named here; a new documented command without an entry fails this test, and so does an entry whose
test is gone. The settings of every documented `dvc exp run -S ...` are valid params (checked here, in seconds).

Commands are the lines of fenced code blocks that start with a command of the project (``dvc``, ``benchmark``,
``make``, ``scripts/``, ``mlflow``), continuation lines joined and comments dropped, and inline `dvc exp run ...`
spans of the prose.
"""

from __future__ import annotations

import re
import shlex

import pytest
from conftest import REPO

from benchmark.experiment.params import load_settings

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMAND = re.compile(r"^(dvc|benchmark|make|scripts/\S+|mlflow)\s")

#: (pattern a documented command matches, where it runs). Where: ``tests/...py::test_name`` (a test that runs the
#: command or the same command with smaller budgets), ``matrix:<cell id>`` or ``.ci/run``.
RUN_BY: list[tuple[str, str]] = [
    (r"^make repro$", ".ci/run"),
    (r"^make test$", ".ci/run"),
    (r"^dvc repro$", "tests/pipeline/test_pipeline_sim.py::test_default_dvc_repro_writes_the_report_from_the_paper_scenario"),
    (r"^dvc exp run -n fair -S 'train\.methods=", "matrix:gender-sim-null-fair"),
    (r"^dvc exp run -n fair-tuned ", "matrix:gender-table-yaml-declared-fair-tuned"),
    (r"^dvc exp run -S data\.attribute=age_group ", "matrix:age-sim-age"),
    (r"^dvc exp run -S data\.source=published .*data\.attribute=age_group", "matrix:age-published"),
    (r"^dvc exp run -S train\.n_seeds=2$",
     "tests/pipeline/test_dvc_experiments.py::test_an_experiment_reruns_only_the_stages_its_parameter_touches_and_records_its_metrics"),
    (r"^dvc exp run -S train\.corrector\.width=48 -n width48$",
     "tests/pipeline/test_dvc_experiments.py::test_an_experiment_reruns_only_the_stages_its_parameter_touches_and_records_its_metrics"),
    (r"^dvc exp run -n baseline$",
     "tests/pipeline/test_dvc_experiments.py::test_recording_the_workspace_as_a_baseline_experiment_reruns_nothing"),
    (r"^dvc exp show --only-changed$", "tests/pipeline/test_dvc_experiments.py::test_the_readmes_commands_compare_an_experiment_with_head"),
    (r"^dvc metrics diff HEAD width48 --md$", "tests/pipeline/test_dvc_experiments.py::test_the_readmes_commands_compare_an_experiment_with_head"),
    (r"^dvc plots diff HEAD width48$", "tests/pipeline/test_dvc_experiments.py::test_the_readmes_commands_compare_an_experiment_with_head"),
    (r"^dvc remote add -d team ", "tests/pipeline/test_dvc_remote.py::test_pulled_outputs_tables_are_the_pushed_ones"),
    (r"^dvc (repro|push|pull) fetch$", "tests/pipeline/test_dvc_remote.py::test_pulled_outputs_tables_are_the_pushed_ones"),
    (r"^dvc repro --allow-missing$", "tests/pipeline/test_dvc_remote.py::test_the_pulling_machine_runs_train_to_report_without_fetch"),
    (r"^dvc add (data/raw|models)$", "tests/pipeline/test_dvc_remote.py::test_pulled_outputs_tables_are_the_pushed_ones"),
    (r"^benchmark tune --n-trials 30$", "tests/tuning/test_tune.py::test_tune_runs_the_trials_and_writes_the_best_configuration"),
    (r"^benchmark tune --study fair --objective pareto$", "tests/tuning/test_tune.py::test_pareto_objective_reports_the_front"),
    (r"^benchmark tune --study shared --n-trials (1|50 &)$",
     "tests/tuning/test_tune.py::test_three_workers_on_postgresql_complete_every_trial_once"),
    (r"^benchmark ui( --port \d+)?( --open)?$",
     "tests/experiment/test_browser_mlflow.py::test_a_fresh_browser_opens_the_link_on_the_parent_runs_and_shows_their_nested_stage_runs"),
    (r"^dvc (exp run --(queue|temp)( -S \S+ -n \S+)?|queue start -j 2)$",
     "tests/pipeline/test_dvc_queue_tracking.py::test_each_queued_and_temp_experiment_is_one_parent_run_named_after_it_in_the_workspace_store"),
    (r"^mlflow server --backend-store-uri postgresql", "tests/experiment/test_shared_tracking.py::test_every_expected_run_is_there_exactly_once"),
    (r"^benchmark images manifest$", "tests/sources/test_images_scan.py::test_manifest_lists_every_file_with_its_status"),
    (r"^benchmark images manifest --strict$", "tests/pipeline/test_bad_inputs.py::test_bad_image_input_ends_in_one_error_line_naming_the_file"),
    (r"^benchmark images chips --shard 0/4$", "tests/frozen/test_chip_shards.py::test_images_chips_command_runs_shards_and_the_next_run_merges_them"),
    (r"^benchmark fetch$", "tests/frozen/test_chip_shards.py::test_images_chips_command_runs_shards_and_the_next_run_merges_them"),
    (r"^benchmark -q scaling -o docs/scaling$", "tests/tools/test_scaling.py::test_scaling_writes_every_point_with_positive_times_and_memory"),
    (r"^benchmark simulate sample paper ", "tests/sources/test_sim.py::test_cli_simulate_sample_accepts_a_shipped_name"),
    (r"^benchmark simulate fit data/outputs/faces\.parquet data/outputs/adfes\.parquet ",
     "tests/sources/test_sim.py::test_cli_fit_sample_check_round_trip"),
    (r"^benchmark simulate fit .* --cells-by gender,age_group$", "tests/sources/test_sim_age.py::test_cli_simulate_fit_passes_cells_by_to_the_fit"),
    (r"^benchmark simulate check paper ", "tests/sources/test_sim.py::test_cli_fit_sample_check_round_trip"),
    (r"^benchmark simulate check age ", "tests/sources/test_sim_age.py::test_cli_simulate_check_reports_the_age_group_accuracies_per_cell"),
    (r"^scripts/fit_scenarios\.sh", "tests/sources/test_sim.py::test_shipped_scenario_is_the_fit_of_the_published_outputs"),
    (r"^benchmark simulate coverage --dataset adfes --scenario (paper|null) --comparison (methods|aa) --replicates 500 "
     r"--measured benchmark/stats/coverage\.csv$",
     "tests/studies/test_coverage.py::test_the_documented_command_merges_its_study_into_the_measured_table"),
    (r"^benchmark simulate coverage --dataset faces .*--ci-methods (calibrated,bca,bound\S*|bound,bca) --rows ",
     "tests/studies/test_coverage.py::test_the_documented_row_level_command_writes_rows_and_families"),
    (r"^benchmark simulate plasmode --outputs ", "tests/studies/test_plasmode.py::test_the_documented_plasmode_command_writes_rows_and_families"),
    (r"^benchmark simulate widths --outputs ", "tests/studies/test_plasmode.py::test_the_documented_widths_command_gives_bca_a_ratio_of_one"),
    (r"^benchmark simulate table studies$",
     "tests/studies/test_coverage.py::test_the_docs_table_pools_a_designs_studies_and_keeps_their_lowest_row"),
]
#: documented commands no test runs, and why (measurements of the whole default pipeline: minutes each)
NOT_RUN: dict[str, str] = {
    r"^scripts/time_pipeline\.sh ": "times the whole default pipeline in two clones for docs/PERFORMANCE.md (tens of "
                                    "minutes); the pipeline itself is the matrix's and test_pipeline_sim's",
    r"^benchmark -q scaling -o docs/scaling/statistics --curves evaluate_subjects,evaluate_images ":
        "measures the statistics up to a million images for docs/PERFORMANCE.md (about ten minutes of one core); the "
        "same command at the default grid is test_scaling's, the million-image path test_chunks' at a smaller size",
}


def _commands(text: str) -> list[str]:
    """The commands of one page (see the module docstring)."""
    found, block, pending = [], False, ""
    for line in text.splitlines():
        if line.startswith("```"):
            block = not block
            continue
        if not block:
            continue
        line = pending + line.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        command = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
        if COMMAND.match(command + " "):
            found.append(re.sub(r"\s+", " ", command))
    for span in re.findall(r"`(dvc exp run [^`]+)`", text):
        found.append(re.sub(r"\s+", " ", span).strip())
    return found


def documented() -> list[tuple[str, str]]:
    """(page, command) for every page."""
    return [(page.name, command) for page in PAGES for command in _commands(page.read_text())]


def _runner(command: str) -> str | None:
    matches = [where for pattern, where in RUN_BY if re.search(pattern, command)]
    matches += [f"not run: {why}" for pattern, why in NOT_RUN.items() if re.search(pattern, command)]
    return matches[0] if len(matches) == 1 else None


@pytest.mark.parametrize(("page", "command"), documented())
def test_every_documented_command_is_run_somewhere_named_here(page, command):
    assert _runner(command) is not None, f"{page}: `{command}` has no entry (or several) in RUN_BY / NOT_RUN"


@pytest.mark.parametrize("where", sorted({where for _, where in RUN_BY}))
def test_each_named_runner_exists(where):
    if where.startswith("matrix:"):
        assert f'Cell("{where.split(":", 1)[1]}"' in (REPO / "tests" / "pipeline" / "test_matrix.py").read_text()
    elif where == ".ci/run":
        assert "make repro" in (REPO / ".ci" / "run").read_text() and "make test" in (REPO / ".ci" / "run").read_text()
    else:
        path, name = where.split("::")
        assert re.search(rf"^def {re.escape(name)}\(", (REPO / path).read_text(), re.M), where


def test_every_entry_is_still_documented():
    commands = [command for _, command in documented()]
    unused = [p for p, _ in RUN_BY if not any(re.search(p, c) for c in commands)]
    unused += [p for p in NOT_RUN if not any(re.search(p, c) for c in commands)]
    assert unused == []


def _exp_overrides(command: str) -> dict[str, object]:
    """The -S key=value pairs of a `dvc exp run` command as params overrides (YAML values; placeholders such as
    <folder ...> become a path)."""
    import yaml

    command = re.sub(r"<[^>]+>", "/tmp/published-csvs", command)
    words = shlex.split(command)
    pairs = [words[i + 1] for i, word in enumerate(words) if word == "-S"]
    return {key: yaml.safe_load(value) for key, value in (pair.split("=", 1) for pair in pairs)}


@pytest.mark.parametrize(("page", "command"), [(p, c) for p, c in documented() if c.startswith("dvc exp run")])
def test_the_settings_of_every_documented_experiment_are_valid_params(page, command):
    load_settings(REPO / "params.yaml", overrides=_exp_overrides(command))


def test_commands_are_read_from_blocks_continuations_and_prose():
    text = "x\n```bash\ndvc repro   # the pipeline\nbenchmark a \\\n  --b c\nls -l\n```\nSee `dvc exp run -S a=1\n-S b=2`."
    assert _commands(text) == ["dvc repro", "benchmark a --b c", "dvc exp run -S a=1 -S b=2"]


def test_the_matrix_cells_run_the_documented_experiments_settings():
    from pipeline.test_matrix import CELLS, FAIR, FAIR_TUNED  # noqa: F401 (the matrix names the README's lists)

    readme = (REPO / "README.md").read_text()
    fair = next(c for p, c in documented() if c.startswith("dvc exp run -n fair -S"))
    fair_tuned = next(c for p, c in documented() if c.startswith("dvc exp run -n fair-tuned"))
    assert _exp_overrides(fair) == {"train.methods": FAIR}
    assert _exp_overrides(fair_tuned) == FAIR_TUNED
    assert "fair-tuned" in readme
