"""The figure of ``benchmark scaling`` (:mod:`benchmark.tools.scaling`): one log-log panel per curve with the measured
points and their fitted power law (dashed, exponents in the legend), and a panel of the memory each point's work
added."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the non-interactive backend)
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from benchmark.infra import atomic
from benchmark.tools.scaling import CURVE_AXES, Point, PowerLaw, ScalingRun  # noqa: E402

TITLES = {"trainer_rows": "trainer: time per model-epoch vs training rows",
          "trainer_models": "trainer: time per epoch vs K models (one stack)",
          "evaluate_subjects": "evaluate: one comparison vs subjects",
          "evaluate_resamples": "evaluate: one comparison vs resamples",
          "evaluate_images": "evaluate: one comparison vs images without person ids",
          "report": "report stage vs splits, a line per methods"}


def _fit_line(ax: Axes, x: list[float], exponent: float, prefactor: float, *, color: str, label: str | None) -> None:
    grid = np.geomspace(min(x), max(x), 50)
    ax.plot(grid, prefactor * grid ** exponent, "--", color=color, linewidth=1, label=label)


def _curve_panel(ax: Axes, curve: str, points: list[Point], fit: PowerLaw | None) -> None:
    x, y = zip(*(p.fitted() for p in points))
    ax.plot(x, y, "o-", color="C0", label="measured")
    if fit is not None:
        _fit_line(ax, list(x), fit.exponent, fit.prefactor, color="C0",
                  label=f"fit: {fit.variable}^{fit.exponent:.2f} (largest two: ^{fit.tail_exponent:.2f})")
    if curve == "trainer_models":   # the same runs per model: a falling line is the gain of training models together
        ax.plot(x, [cost / k for k, cost in zip(x, y)], "s-", color="C1", label="per model")
    cost, variable = CURVE_AXES[curve]
    ax.set(xlabel=variable, ylabel=cost, title=TITLES[curve], xticks=x)


def _report_panel(ax: Axes, points: list[Point], fits: list[PowerLaw]) -> None:
    """Seconds against splits, a line per number of methods; the joint fit a * splits^b * methods^c dashed."""
    exponents = {f.variable: f for f in fits if f.curve == "report"}
    for i, methods in enumerate(sorted({p.methods for p in points})):
        mine = sorted((p for p in points if p.methods == methods), key=lambda p: p.splits)
        x = [p.splits for p in mine]
        ax.plot(x, [p.cpu_seconds for p in mine], "o-", color=f"C{i}", label=f"{methods} methods")
        if "splits" in exponents and len(x) >= 2:
            fit = exponents["splits"]
            factor = methods ** exponents["methods"].exponent if "methods" in exponents else 1.0
            label = ("fit: " + ", ".join(f"{v}^{f.exponent:.2f}" for v, f in exponents.items())) if i == 0 else None
            _fit_line(ax, x, fit.exponent, fit.prefactor * factor, color=f"C{i}", label=label)
    ax.set(xlabel="splits", ylabel="CPU s per report", title=TITLES["report"],
           xticks=sorted({p.splits for p in points}))


def _memory_panel(ax: Axes, points: list[Point], curves: list[str]) -> None:
    """What each point's work added to its process's resident memory at the peak, against the point's size relative
    to its curve's smallest; the process's own peak (with the interpreter and its libraries) is in the table."""
    for i, curve in enumerate(curves):
        mine = sorted((p.fitted()[0], p.work_rss_mb) for p in points if p.curve == curve and p.work_rss_mb)
        if mine:
            size, added = zip(*mine)
            style = "o" if curve == "report" else "o-"   # the report's sizes repeat (1 x 4 = 2 x 2)
            ax.plot(np.asarray(size) / size[0], added, style, color=f"C{i}", label=curve)
    ax.set(xlabel="size / smallest size (report: splits x methods)", ylabel="MiB",
           title="memory the work added at its peak (peak - start RSS)")


def draw(points: list[Point], fits: list[PowerLaw]) -> Figure:
    """The scaling figure: a panel per measured curve (in the order of ``points``), then memory."""
    curves = list(dict.fromkeys(p.curve for p in points))
    fig, grid = plt.subplots(2, 3, figsize=(15, 9), squeeze=False)
    panels = list(grid.flat)
    for ax in panels:   # before drawing: choosing the scale resets the ticks the panels set
        ax.set_xscale("log")
        ax.set_yscale("log")
    for ax, curve in zip(panels, curves):
        mine = [p for p in points if p.curve == curve]
        if curve == "report":
            _report_panel(ax, mine, fits)
        else:
            _curve_panel(ax, curve, mine, next((f for f in fits if f.curve == curve), None))
    _memory_panel(panels[len(curves)], points, curves)
    for ax in panels[len(curves) + 1:]:
        ax.set_visible(False)
    for ax in panels[:len(curves) + 1]:
        for axis in (ax.xaxis, ax.yaxis):   # plain numbers on the decades and the measured sizes, none in between
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        ax.title.set_fontsize(10)
    fig.tight_layout()
    return fig


def write_figure(result: ScalingRun, output_dir: Path) -> Path:
    """``scaling.png`` in ``output_dir``, written atomically."""
    fig = draw(result.points, result.fits)
    target = output_dir / "scaling.png"
    try:
        atomic.write_with(target, lambda tmp: fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None}))
    finally:
        plt.close(fig)
    return target
