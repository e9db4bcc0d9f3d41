"""The ``benchmark`` command: one subcommand per pipeline stage, thin over the library.

User mistakes raise :class:`~benchmark.errors.BenchmarkError`; they are printed as one line on stderr with exit code 1
(with the traceback only under ``--debug``).
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import click

from benchmark import paths
from benchmark.errors import BenchmarkError

PARAMS_OPTION = click.option("--params", "params_path", type=click.Path(path_type=Path), default=paths.PARAMS,
                             show_default=True, metavar="PATH", help="params.yaml to read.")


def _settings(params_path: Path):
    from benchmark.config import load_settings

    return load_settings(params_path)


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

    for path in stage.run(_settings(params_path)):
        click.echo(f"wrote {path}")


@cli.command()
@PARAMS_OPTION
def train(params_path: Path) -> None:
    """Run every method over every split, fold and seed (results/predictions.parquet)."""
    from benchmark.stages import train as stage

    click.echo(f"wrote {stage.run(_settings(params_path))}")


@cli.command()
@PARAMS_OPTION
def evaluate(params_path: Path) -> None:
    """Compute the paper's metrics and statistics (reports/metrics.json)."""
    from benchmark.stages import evaluate as stage

    click.echo(f"wrote {stage.run(_settings(params_path))}")


@cli.command()
@PARAMS_OPTION
def report(params_path: Path) -> None:
    """Write reports/report.md and the self-contained reports/report.html."""
    from benchmark.stages import report as stage

    click.echo(f"wrote {stage.run(_settings(params_path))}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning BenchmarkError into one line on stderr and exit code 1."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="benchmark", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
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
    return 0
