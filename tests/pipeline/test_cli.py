"""The CLI: every stage listed in --help, user errors as one line with exit 1 and no traceback (unless --debug)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmark.cli import cli, main


def test_help_lists_every_stage_with_one_line():
    result = subprocess.run([sys.executable, "-m", "benchmark", "--help"], capture_output=True, text=True, check=True)
    for stage in ("fetch", "train", "evaluate", "report"):
        assert any(line.strip().startswith(stage + " ") for line in result.stdout.splitlines()), stage


def test_every_command_has_help():
    for name, command in cli.commands.items():
        assert command.help, name


def test_user_error_is_one_line_exit_1_without_traceback(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text("data:\n  sorce: sim\n")
    code = main(["fetch", "--params", str(tmp_path / "params.yaml")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().count("\n") == 0
    assert err.startswith("error: ") and "did you mean 'source'" in err
    assert "Traceback" not in err


def test_debug_flag_shows_the_traceback(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text("data:\n  sorce: sim\n")
    code = main(["--debug", "fetch", "--params", str(tmp_path / "params.yaml")])
    assert code == 1
    assert "Traceback" in capsys.readouterr().err


def test_console_script_exits_non_zero_on_user_error(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  n_seeds: -1\n")
    result = subprocess.run([sys.executable, "-m", "benchmark", "train", "--params", str(tmp_path / "params.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'params.yaml'}: train.n_seeds: -1 is out of range; expected a value in [1, inf]"


def test_stages_started_from_another_directory_read_and_write_under_the_project_root(tmp_path, monkeypatch):
    import shutil

    import yaml

    import benchmark

    project = tmp_path / "project"
    (project / "scenarios").mkdir(parents=True)
    shutil.copy(Path(benchmark.__file__).parent / "scenarios" / "paper.yaml", project / "scenarios" / "paper.yaml")   # relative inputs, as in params.yaml
    (project / "params.yaml").write_text(yaml.safe_dump({
        "data": {"input": "scenarios/paper.yaml"}, "power": {"scenario": "scenarios/paper.yaml", "replicates": 10, "rule_resamples": 100},
        "train": {"splits": ["faces->adfes"], "methods": ["uncorrected", "corrector"]},
        "evaluate": {"n_permutations": 50}, "tracking": {"enabled": False}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["-q", "fetch", "--params", "../project/params.yaml"]) == 0
    assert main(["-q", "power", "--params", str(project / "params.yaml")]) == 0
    assert (project / "data" / "outputs" / "faces.parquet").is_file() and (project / "results" / "power.json").is_file()
    assert list(elsewhere.iterdir()) == []
