"""Sources of the outputs table; each turns its input into one validated table per dataset.

- ``published``: the paper authors' per-image outputs, pinned (``data.input``: the folder holding their CSVs).
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


#: source name -> loader(data settings, dataset) -> outputs table
LOADERS: dict[str, Callable[["DataSettings", str], "OutputsTable"]] = {
    "published": _published,
}


def load(settings: "DataSettings", dataset: str) -> "OutputsTable":
    """The outputs table of ``dataset`` from the source named by ``data.source``."""
    return LOADERS[settings.source](settings, dataset)
