"""Shared fixtures: the published outputs in ../shared (skipped with a reason when absent, a failure in CI),
and deterministic toy outputs tables built in one place (tests/toy.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BENCHMARK_SHARED_DIR", REPO.parent / "shared"))
PAPER_OUTPUTS = SHARED / "data" / "paper-outputs"


@pytest.fixture(scope="session")
def paper_outputs_dir() -> Path:
    """../shared/data/paper-outputs; skipped when absent, unless BENCHMARK_REQUIRE_SHARED=1 (CI) makes it a failure."""
    if not (PAPER_OUTPUTS / "faces_emonet_fairface.csv").exists():
        reason = f"the authors' published outputs are not at {PAPER_OUTPUTS} (set BENCHMARK_SHARED_DIR)"
        if os.environ.get("BENCHMARK_REQUIRE_SHARED") == "1":
            pytest.fail(reason + "; BENCHMARK_REQUIRE_SHARED=1 requires them")
        pytest.skip(reason)
    return PAPER_OUTPUTS


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (specs, data); skipped when absent unless BENCHMARK_REQUIRE_SHARED=1."""
    if not SHARED.exists():
        if os.environ.get("BENCHMARK_REQUIRE_SHARED") == "1":
            pytest.fail(f"{SHARED} is missing; BENCHMARK_REQUIRE_SHARED=1 requires it")
        pytest.skip(f"{SHARED} is missing")
    return SHARED


@pytest.fixture(scope="session")
def published_tables(paper_outputs_dir):
    """The published outputs as validated tables: {'faces': OutputsTable, 'adfes': OutputsTable}."""
    from benchmark.design import shipped
    from benchmark.sources import published

    return {name: published.load(shipped()[name], paper_outputs_dir) for name in ("faces", "adfes")}


@pytest.fixture
def toy_table():
    """A small valid outputs table (2 datasets' worth of design for one dataset name); see tests/toy.py."""
    from toy import make_toy_table

    return make_toy_table()
