"""Sources of the outputs table; each turns its input into one validated table per dataset.

- ``published``: the paper authors' per-image outputs, pinned (``data.input``: the folder holding their CSVs).
- ``sim``: a simulated sample from a scenario fitted to the published outputs (``data.input``: the scenario file).
- ``images``: the user's FACES / ADFES images through face chips and frozen models (``data.input``: the raw image
  folder with ``faces/`` and ``adfes/``; ``data.images`` picks the models, device and chip settings).
- ``table``: the user's own per-image outputs, ``<dataset>.csv`` or ``.parquet`` in the outputs-table layout
  (``data.input``: their folder); any emotion label space.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmark.config import DataSettings
    from benchmark.outputs import OutputsTable


def _published(settings: "DataSettings", dataset: str) -> "OutputsTable":
    from benchmark.sources import published

    return published.load(dataset, Path(settings.input), download=settings.published.download)


def _sim(settings: "DataSettings", dataset: str) -> "OutputsTable":
    from benchmark.sources import sim

    return sim.load(settings, dataset)


def _images(settings: "DataSettings", dataset: str) -> "OutputsTable":
    from benchmark.sources import images

    return images.load(dataset, settings)


def _table(settings: "DataSettings", dataset: str) -> "OutputsTable":
    from benchmark.sources import table

    return table.load(Path(settings.input), dataset)


#: source name -> loader(data settings, dataset) -> outputs table
LOADERS: dict[str, Callable[["DataSettings", str], "OutputsTable"]] = {
    "published": _published,
    "sim": _sim,
    "images": _images,
    "table": _table,
}


def load(settings: "DataSettings", dataset: str) -> "OutputsTable":
    """The outputs table of ``dataset`` from the source named by ``data.source``."""
    return LOADERS[settings.source](settings, dataset)
