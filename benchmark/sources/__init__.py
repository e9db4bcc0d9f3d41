"""Sources of the outputs table; each turns its input into one validated table per declared dataset.

- ``published``: the paper authors' per-image outputs, pinned (``data.input``: the folder holding their CSVs).
- ``sim``: a simulated sample from a scenario fitted to the published outputs (``data.input``: the scenario file).
- ``images``: the user's images through face chips and frozen models (``data.input``: the raw image folder with one
  sub-folder per dataset, named in the dataset's declared scheme; ``data.images`` picks the models, device and chips).
- ``table``: the user's own per-image outputs, ``<dataset>.csv`` or ``.parquet`` in the outputs-table layout of the
  dataset's declaration (``data.input``: their folder); any emotion label space.

A loader is called with the data settings and the dataset's declaration (:class:`benchmark.core.design.DatasetDesign`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmark.core.design import DatasetDesign
    from benchmark.core.outputs import OutputsTable
    from benchmark.core.settings import DataSettings

Loader = Callable[["DataSettings", "DatasetDesign"], "OutputsTable"]


def _published(settings: DataSettings, design: DatasetDesign) -> OutputsTable:
    from benchmark.sources import published

    return published.load(design, Path(settings.input), download=settings.published.download)


def _sim(settings: DataSettings, design: DatasetDesign) -> OutputsTable:
    from benchmark.sources import sim

    return sim.load(settings, design)


def _images(settings: DataSettings, design: DatasetDesign) -> OutputsTable:
    from benchmark.sources import images

    return images.load(design, settings)


def _table(settings: DataSettings, design: DatasetDesign) -> OutputsTable:
    from benchmark.sources import table

    return table.load(Path(settings.input), design, attribute=settings.attribute)


#: source name -> loader(data settings, dataset declaration) -> outputs table
LOADERS: dict[str, Loader] = {
    "published": _published,
    "sim": _sim,
    "images": _images,
    "table": _table,
}


def load(settings: DataSettings, design: DatasetDesign) -> OutputsTable:
    """The outputs table of the dataset ``design`` declares, from the source named by ``data.source``."""
    return LOADERS[settings.source](settings, design)
