"""What a study leaves in reports/tune/: the trials table, parameter importances, the Pareto-front (or history) figure
and the chosen configuration (best_params.yaml, read by the ``corrector_tuned`` method through
:mod:`benchmark.methods.tuned`)."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml

from benchmark.infra import atomic, paths
from benchmark.tuning.study import finished, trial_seconds

log = logging.getLogger(__name__)


def preload() -> None:
    """Import what :func:`write` needs beyond this module (fANOVA's scikit-learn, matplotlib: seconds of CPU), e.g.
    while a core waits for the last trials."""
    import matplotlib

    matplotlib.use("Agg")
    for module in ("matplotlib.pyplot", "optuna.importance"):
        importlib.import_module(module)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value(s), CV macro and gap, duration (s), parameters."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name}
        if t.values is not None:
            if len(t.values) == 1:
                row["value"] = t.values[0]
            else:
                row["cv_macro"], row["cv_average_gap"] = t.values
        row.setdefault("cv_macro", t.user_attrs.get("cv_macro"))
        row.setdefault("cv_average_gap", t.user_attrs.get("cv_average_gap"))
        if (seconds := trial_seconds(t)) is not None:
            row["duration_s"] = round(seconds, 3)
        row.update({f"param_{k}": v for k, v in t.params.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def importances(study: optuna.Study) -> dict[str, float]:
    """fANOVA importances of the parameters for the (first) objective; empty with fewer than 2 completed trials."""
    if len(finished(study)) < 2:
        return {}
    target = None if len(study.directions) == 1 else (lambda t: t.values[0])
    try:
        values = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), target=target)
    except (RuntimeError, ValueError) as err:  # e.g. a parameter that never varied
        log.warning("tune: parameter importances unavailable (%s)", err)
        return {}
    return {k: round(float(v), 4) for k, v in values.items()}


def curves(study: optuna.Study) -> dict[int, tuple[str, dict[int, float]]]:
    """Trial number -> (state, CV objective reported at each pruning epoch, plus the final epoch)."""
    return {t.number: (t.state.name, dict(sorted(t.intermediate_values.items())))
            for t in study.get_trials(deepcopy=False) if t.intermediate_values}


def _plot_curves(ax: Any, trial_curves: dict[int, tuple[str, dict[int, float]]]) -> None:
    """CV objective against epoch per trial: completed trials grey, pruned ones red, ending where they stopped."""
    labelled: set[str] = set()
    for state, values in trial_curves.values():
        pruned = state == "PRUNED"
        label = "pruned trial" if pruned else "completed trial"
        ax.plot(list(values), list(values.values()), "-", marker="x" if pruned else ".", lw=0.9,
                color="tab:red" if pruned else "0.55", alpha=0.8, label=None if label in labelled else label)
        labelled.add(label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("CV objective (%)")
    ax.set_title("Pruning: CV objective at each pruning epoch")


def plot(frame: pd.DataFrame, best: dict[str, Any], target: Path, *, multi: bool,
         trial_curves: dict[int, tuple[str, dict[int, float]]] | None = None, method: str = "corrector") -> None:
    """Pareto front (macro vs average gap) for a multi-objective study, else the optimisation history, beside the
    trials' CV objective by epoch when ``trial_curves`` (see :func:`curves`) has any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = frame[frame["state"] == "COMPLETE"]
    with_curves = not multi and bool(trial_curves)
    fig, axes = plt.subplots(1, 2 if with_curves else 1, figsize=(11.5 if with_curves else 6.4, 4.4), squeeze=False)
    ax = axes[0, 0]
    if multi:
        ax.scatter(done["cv_average_gap"], done["cv_macro"], s=18, color="0.6", label="trials")
        front = pd.DataFrame(best.get("pareto", []))
        if not front.empty:
            front = front.sort_values("cv_average_gap")
            ax.plot(front["cv_average_gap"], front["cv_macro"], "o-", color="tab:blue", label="Pareto front")
        ax.scatter([best["cv_average_gap"]], [best["cv_macro"]], marker="*", s=160, color="tab:red", label="chosen")
        ax.set_xlabel("CV average gap (percentage points, lower is fairer)")
        ax.set_ylabel("CV macro accuracy (%)")
        ax.set_title(f"Accuracy-fairness trade-off of {method} variants")
    else:
        ax.scatter(done["trial"], done["value"], s=18, color="0.5", label="completed trial")
        ax.plot(done["trial"], done["value"].cummax(), color="tab:blue", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel("CV objective (%)")
        ax.set_title(f"Optimisation history of the {method} study")
    if with_curves:
        _plot_curves(axes[0, 1], trial_curves)
    for a in axes.flat:
        a.legend()
        a.grid(alpha=0.3)
    fig.tight_layout()
    atomic.write_with(target, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def write(study: optuna.Study, best: dict[str, Any], out_dir: Path, *, meta: dict[str, Any]) -> Path:
    """Write trials.csv, importances.json, study.png and best_params.yaml into ``out_dir``; return the last."""
    frame = trials_frame(study)
    atomic.write_text(out_dir / paths.TUNE_TRIALS, frame.to_csv(index=False))
    atomic.write_json(out_dir / paths.TUNE_IMPORTANCES, importances(study))
    plot(frame, best, out_dir / paths.TUNE_FIGURE, multi=len(study.directions) > 1, trial_curves=curves(study),
         method=str(meta.get("method", "corrector")))
    target = out_dir / paths.TUNE_BEST_PARAMS
    atomic.write_text(target, yaml.safe_dump({**meta, **best}, sort_keys=True))
    return target
