"""Budgets against this machine's memory (benchmark/infra/memory.py): what is available, and the one line for a
budget that does not fit. The stages' estimates are exercised by the bad-input catalogue (tests/pipeline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.infra import memory
from benchmark.infra.errors import BenchmarkError

GIB = 2**30


def test_available_memory_is_positive_and_at_most_the_machines():
    available = memory.available_bytes()
    total = next(int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                 if line.startswith("MemTotal:"))
    assert 0 < available <= total


def test_sizes_are_said_in_binary_units():
    assert memory.human(16 * 2**40) == "16.0 TiB" and memory.human(1536) == "1.5 KiB" and memory.human(12) == "12 B"


def test_budgets_that_fit_return_the_estimate():
    needs = [memory.Need("evaluate.n_resamples", 10_000, GIB), memory.Need("evaluate.n_permutations", 10_000, GIB)]
    assert memory.check(needs, what="x", fixed=GIB, limit=4 * GIB) == 3 * GIB


def test_a_budget_beyond_the_limit_names_the_largest_share_the_estimate_the_limit_and_what_fits():
    needs = [memory.Need("evaluate.n_resamples", 100_000, 6 * GIB), memory.Need("evaluate.n_permutations", 10, GIB)]
    with pytest.raises(BenchmarkError) as info:
        memory.check(needs, what="the statistics of cv:faces", limit=4 * GIB)
    assert str(info.value) == ("evaluate.n_resamples: 100,000 makes the statistics of cv:faces need about 7.0 GiB of "
                               "memory, more than the 4.0 GiB this machine has available; lower evaluate.n_resamples "
                               "to at most about 50,000 or run on a machine with more memory")


def test_a_size_that_does_not_grow_memory_in_proportion_gets_no_largest_value():
    with pytest.raises(BenchmarkError, match=r"train.corrector.width: 4,096 .* available; lower "
                                             r"train.corrector.width or run on"):
        memory.check([memory.Need("train.corrector.width", 4096, 8 * GIB, linear=False)], what="x", limit=GIB)
