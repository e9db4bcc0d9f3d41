"""Stage ``fetch``: write one outputs table per dataset from the configured source."""

from __future__ import annotations

import logging
from pathlib import Path

from benchmark import outputs, paths, sources, tracking
from benchmark.config import Settings

log = logging.getLogger(__name__)


def run(settings: Settings, outputs_dir: Path = paths.OUTPUTS_DIR) -> list[Path]:
    """Load every dataset of ``data.datasets`` from ``data.source`` and write ``data/outputs/<dataset>.parquet``."""
    if settings.data.source == "images" and settings.tracking.enabled:
        tracking.probe(settings.tracking)  # the images source logs a run after the (long) extraction
    written = []
    tables = [sources.load(settings.data, dataset) for dataset in settings.data.datasets]
    for dataset, table in zip(settings.data.datasets, tables):
        target = paths.outputs_table(dataset, outputs_dir)
        outputs.write(table, target)
        log.info("fetch: %s: %d images from source %s -> %s", dataset, len(table.frame), settings.data.source, target)
        written.append(target)
    paths.CHIPS_DIR.mkdir(parents=True, exist_ok=True)  # a persistent DVC output; only data.source: images fills it
    if settings.data.source == "images" and settings.tracking.enabled:
        from benchmark.config import as_dict, flatten
        from benchmark.sources import images

        images.log_provenance(dict(zip(settings.data.datasets, tables)), settings.tracking,
                              params=flatten(as_dict(settings.data), "data."))
    return written
