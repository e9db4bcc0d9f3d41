"""The reproducibility card and the corrector's model card, assembled from what the run recorded (never written by
hand): the report shows both, and the report stage logs them to MLflow as Markdown files.

- **Reproducibility card**: the items of REFORMS (Kapoor et al., Science Advances 2024) that the pipeline can fill:
  data sources with their checksums, the code revision, the versions lock, the compute, the seeds, the commands that
  reproduce the run, the MLflow runs of this pipeline run and the DVC revisions (the experiment, its baseline, and the
  outputs each stage recorded in dvc.lock).
- **Model card** (Mitchell et al., FAT* 2019) for the corrector: intended use, data, quantitative analyses per group
  with their intervals (results/stats.parquet, metrics.json) and the limitations the statistics found (the minimum
  detectable effects of results/power.json, with the number of people at each held-out design).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmark.core.settings import Settings
from benchmark.infra import paths
from benchmark.infra.hashing import sha256_file
from benchmark.infra.processes import available_cores
from benchmark.report.document import Block, Bullets, Heading, Paragraph, Table
from benchmark.report.findings import STALE_POWER, detectable

__all__ = ["CORRECTORS", "Recorded", "model_card", "reproducibility_card"]

#: the methods the model card describes, where they ran
CORRECTORS: tuple[str, ...] = ("corrector", "corrector_tuned")
DVC_YAML, DVC_LOCK = Path("dvc.yaml"), Path("dvc.lock")


@dataclass(frozen=True)
class Recorded:
    """What the report stage knows about the run beyond its files: the pipeline command, the DVC experiment and
    baseline, and the MLflow runs (``mlflow``: tracking URI, experiment, parent run and stage runs, or empty when
    tracking is off)."""

    command: str
    dvc: dict[str, str] = field(default_factory=dict)
    mlflow: dict[str, Any] = field(default_factory=dict)


def _memory_gib() -> str:
    import psutil

    return f"{psutil.virtual_memory().total / 2**30:.1f} GiB"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def dvc_lock_outputs(lock: Path = DVC_LOCK) -> list[tuple[str, str, str]]:
    """(stage, output path, md5) of every output dvc.lock records; empty without a lock."""
    if not lock.exists():
        return []
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    return [(stage, out["path"], out.get("md5", "")) for stage, entry in stages.items() for out in entry.get("outs", [])]


def stage_commands(dvc_yaml: Path = DVC_YAML) -> list[tuple[str, str]]:
    """(stage, command) of each DVC stage, with params.yaml's ``${...}`` left as written."""
    if not dvc_yaml.exists():
        return []
    return [(name, " ".join(stage["cmd"]) if isinstance(stage["cmd"], list) else stage["cmd"])
            for name, stage in (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {}).items()]


def reproduction_command(commit: str, recorded: Recorded) -> str:
    """The commands that rerun this pipeline run from a clone."""
    steps = [f"git checkout {commit}", "make setup"]
    if recorded.dvc.get("dvc.exp_name"):
        steps.append(f"dvc exp apply {recorded.dvc['dvc.exp_name']}")
    return " && ".join(steps + ["dvc repro"])


def reproducibility_items(prov: dict[str, Any], settings: Settings, recorded: Recorded, *,
                          lock: Path = paths.LOCK) -> pd.DataFrame:
    """The card's rows: REFORMS item, what this run recorded (formatted text)."""
    dirty = {True: " (uncommitted changes)", False: "", None: " (status unknown)"}[prov["git_dirty"]]
    rows: list[tuple[str, str]] = []
    for table in prov["inputs"]:
        origin = ", ".join(f"{k} {v}" for k, v in table.items() if k not in ("path", "table sha256"))
        rows.append(("data source", f"{table['path']}: sha256 {table['table sha256']}" + (f"; {origin}" if origin else "")))
    rows += [("code revision", f"git {prov['git_commit']}{dirty}"),
             ("versions lock", f"{lock} sha256 {sha256_file(lock) if lock.exists() else 'missing'}; {prov['lock']}"),
             ("software", f"Python {prov['python']}; " + ", ".join(f"{k} {v}" for k, v in prov["packages"].items())),
             ("compute", f"{_cpu_model()}, {len(available_cores())} of {os.cpu_count()} cores available, "
                         f"{_memory_gib()} memory, {platform.system()} {platform.release()}; "
                         f"corrector trained on train.device = {settings.train.device}"),
             ("seeds", ", ".join(f"{k} = {v}" for k, v in prov["seeds"].items())),
             ("command of this run", recorded.command),
             ("reproduce", reproduction_command(prov["git_commit"], recorded))]
    rows += [("stage command", f"{stage}: {cmd}") for stage, cmd in stage_commands()]
    if recorded.mlflow:
        m = recorded.mlflow
        rows.append(("MLflow", f"{m['uri']}, experiment {m['experiment']!r}: pipeline run {m['parent_name']!r} "
                               f"{m['parent_id']}"))
        rows += [("MLflow stage run", f"{name}: {run_id}") for name, run_id in m["stages"]]
    else:
        rows.append(("MLflow", "tracking off (tracking.enabled: false)"))
    for key in ("dvc.exp_name", "dvc.baseline_rev"):
        if key in recorded.dvc:
            rows.append(("DVC " + ("experiment" if key == "dvc.exp_name" else "baseline revision"), recorded.dvc[key]))
    outs = dvc_lock_outputs()
    rows += [("DVC output", f"{stage}: {path} md5 {md5}") for stage, path, md5 in outs]
    if not outs:
        rows.append(("DVC output", "no dvc.lock (the stages were run by hand, not by DVC)"))
    return pd.DataFrame(rows, columns=["item", "recorded"])


def reproducibility_card(prov: dict[str, Any], settings: Settings, recorded: Recorded, *,
                         lock: Path = paths.LOCK) -> list[Block]:
    """The reproducibility card as report blocks."""
    return [Heading("Reproducibility card"),
            Paragraph("The items of the REFORMS checklist for machine-learning-based science (Kapoor et al., 2024) "
                      "that this pipeline records, filled from this run: where the data came from and their checksums, "
                      "the code and package versions, the machine, the seeds, the commands, and where the run's "
                      "records are (MLflow, DVC). The same card is an artifact of the report's MLflow run."),
            Table(reproducibility_items(prov, settings, recorded, lock=lock))]


def _interval(row: dict[str, Any], metric: str) -> str:
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    value = row.get(metric)
    if value is None:
        return "n/a"
    return f"{value:.2f} [{low:.2f}, {high:.2f}]" if low is not None and high is not None else f"{value:.2f}"


def _difference(row: dict[str, Any], metric: str) -> str:
    diff = row.get(f"{metric}_diff")
    if diff is None:
        return "n/a"
    return (f"{diff:+.2f} [{row[f'{metric}_diff_ci_low']:+.2f}, {row[f'{metric}_diff_ci_high']:+.2f}], "
            f"Holm p = {row[f'{metric}_p_holm']:.3g}")


def headline_rows(doc: dict[str, Any]) -> pd.DataFrame:
    """The correctors' held-out results with intervals and their difference to the reference (metrics.json)."""
    rows = []
    for split, methods in doc["results"].items():
        for method in CORRECTORS:
            for part, tasks in methods.get(method, {}).items():
                if not part.endswith("_test"):
                    continue
                for task, numbers in tasks.items():
                    rows.append({"split": split, "method": method, "test set": part.removesuffix("_test"), "task": task,
                                 "macro [CI]": _interval(numbers, "macro"),
                                 "average gap [CI]": _interval(numbers, "average_gap"),
                                 f"Δ average gap vs {doc['reference']}": _difference(numbers, "average_gap"),
                                 "seeds": str(numbers["n_seeds"])})
    return pd.DataFrame(rows)


def group_rows(stats: pd.DataFrame) -> pd.DataFrame:
    """Per group and emotion, the correctors' held-out accuracy with its interval (the ``cell`` rows of
    results/stats.parquet), one column per task."""
    held_out = stats[stats["method"].isin(CORRECTORS) & (stats["partition"] == "test") & (stats["metric"] == "cell")]
    held_out = held_out.assign(shown=[f"{a:.1f} [{lo:.1f}, {hi:.1f}]" for a, lo, hi in
                                      zip(held_out["estimate"], held_out["ci_low"], held_out["ci_high"])],
                               column=held_out["task"].astype(str) + " accuracy [CI]")
    table = held_out.pivot_table(index=["split", "method", "dataset", "group", "emotion"], columns="column",
                                 values="shown", aggfunc="first", observed=True).reset_index()
    table.columns.name = None
    return table


def limitations(doc: dict[str, Any], power: dict[str, Any] | None) -> list[str]:
    """What the statistics say these data cannot show: the smallest true differences the tests detect at each held-out
    design (power.json), beside the number of people; and that simulated data describe the simulator."""
    out = []
    if doc.get("source") == "sim":
        out.append(f"These results come from simulated data (scenario `{doc.get('scenario', 'not recorded')}`): they "
                   "test the pipeline, not the real frozen models.")
    for dataset, design in sorted(((power or {}).get("designs") or {}).items()):
        if "not_simulated" in design:
            out.append(f"{dataset.upper()}: the power of the tests was not simulated ({design['not_simulated']}).")
            continue
        if "primary_size" not in power:
            out.append(STALE_POWER)
            break
        for task, metrics in design["tasks"].items():
            gap, macro = (detectable(m["mde_rule"], m["largest_effect"], m["power"]["rule"], power["target"])
                          for m in (metrics["average_gap"], metrics["macro"]))
            out.append(f"{dataset.upper()} ({design['subjects']} people), {task}: the verdict rule detects with "
                       f"{power['target']:.0%} power a true change in average gap of {gap} and in macro accuracy of "
                       f"{macro} (upper bounds, from Holm's first step over the {power['primary_size']} primary "
                       "hypotheses); a difference the report does not mark is not evidence of no difference.")
    if power is None:
        out.append("Minimum detectable effects: not computed (run `benchmark power`).")
    out.append("The corrector predicts the protected attribute from the frozen attribute model's outputs; it was "
               "trained on lab photographs of posed expressions and is not meant for other images or for decisions "
               "about people.")
    return out


def model_card(doc: dict[str, Any], stats: pd.DataFrame, power: dict[str, Any] | None,
               settings: Settings) -> list[Block]:
    """The corrector's model card as report blocks."""
    c = settings.train.corrector
    design = "; ".join(f"{name.upper()}: {len(d['groups'])} {doc.get('attribute', 'gender')} groups x "
                       f"{len(d['emotions'])} emotions" for name, d in sorted(doc.get("design", {}).items()))
    headline, groups = headline_rows(doc), group_rows(stats)
    blocks: list[Block] = [
        Heading("Model card: the corrector"),
        Paragraph(f"**Model**: a network ({c.depth} hidden layers of {c.width}, dropout {c.dropout}, input "
                  f"{c.input}) that maps the frozen emotion model's outputs and the attribute model's outputs to "
                  f"corrected probabilities of both (`corrector`; `corrector_tuned`: the configuration the Optuna "
                  f"study chose), {settings.train.n_seeds} seeds per split; logged as MLflow models by the train "
                  "stage. **Intended use**: research on post-hoc bias correction of frozen facial-analysis models, "
                  "measured per attribute group. **Not intended for**: decisions about people, or images unlike the "
                  f"posed lab photographs it was trained on. **Data**: {design} (source `{doc.get('source')}`)."),
    ]
    if not headline.empty:
        blocks.append(Table(headline, caption="Held-out results (percent; Δ: percentage points; metrics.json)"))
    if not groups.empty:
        blocks.append(Table(groups.astype(str), caption="Per group and emotion: held-out accuracy [CI] "
                                                        "(results/stats.parquet)"))
    return blocks + [Paragraph("**Limitations** the statistics found:"), Bullets(tuple(limitations(doc, power)))]
