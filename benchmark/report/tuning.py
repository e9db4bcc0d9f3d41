"""The report's tuning section: what the Optuna study chose, next to the paper's configuration, with parameter
importances and the study's figure (Pareto front or optimisation history)."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import yaml

from benchmark.config import CorrectorSettings
from benchmark.report.document import Block, Figure, Heading, Paragraph, Table
from benchmark.tuning import summary

FIGURE_NAME = "tune_study.png"


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def tuning_blocks(tune_dir: Path, *, paper: CorrectorSettings, figures_dir: Path) -> list[Block]:
    """Blocks for the tuning section; empty when no study has been run (no best_params.yaml)."""
    best_path = tune_dir / summary.BEST_PARAMS
    if not best_path.exists():
        return []
    best = yaml.safe_load(best_path.read_text())
    trials = pd.read_csv(tune_dir / summary.TRIALS_CSV)
    states = trials["state"].value_counts().to_dict()
    paper_params = asdict(paper)
    rows = [{"parameter": k, "paper": _fmt(paper_params.get(k)), "tuned": _fmt(v)} for k, v in sorted(best["params"].items())]
    blocks: list[Block] = [
        Heading("Tuned corrector (Optuna study)"),
        Paragraph(f"Study **{best['study']}** ({best['objective']} objective) scored each configuration by "
                  f"subject-grouped cross-validation inside the training dataset of **{best['split']}** only; the test "
                  f"dataset was never seen. Trials: {', '.join(f'{n} {s.lower()}' for s, n in sorted(states.items()))}. "
                  f"Chosen trial {best['trial']}: CV macro accuracy {best['cv_macro']:.2f} %, CV average gap "
                  f"{best['cv_average_gap']:.2f} points. Its held-out results are the `corrector_tuned` rows of the "
                  f"methods comparison above (when `corrector_tuned` is in train.methods)."),
        Table(pd.DataFrame(rows), caption="The paper's configuration beside the tuned one"),
    ]
    importances = json.loads((tune_dir / summary.IMPORTANCES).read_text())
    if importances:
        frame = pd.DataFrame({"parameter": list(importances), "importance (fANOVA)": [f"{v:.3f}" for v in importances.values()]})
        blocks.append(Table(frame, caption="Which parameters mattered (fANOVA importance of the first objective)"))
    figure = tune_dir / summary.FIGURE
    if figure.exists():
        shutil.copyfile(figure, figures_dir / FIGURE_NAME)
        title = "Pareto front: CV macro accuracy against CV average gap" if best["objective"] == "pareto" \
            else "Optimisation history: CV objective by trial"
        blocks.append(Figure(FIGURE_NAME, title))
    return blocks
