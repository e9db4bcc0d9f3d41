"""Budgets checked against what this machine can hold, before a stage works.

A stage estimates the memory its budgets will make it hold, from the design and the budgets, with the estimate
functions that sit beside the code they describe (:mod:`benchmark.stats.footprint` for the statistics,
:func:`benchmark.studies.power_study.footprint`, :mod:`benchmark.methods.training_footprint` for a stack of
networks). Each estimate is a list of :class:`Need`: the key a user set, its value, and the bytes that key's value
accounts for (a budget that grows an array's rows: resamples x subjects, permutations x subjects, replicates x
images). :func:`check` adds them and refuses, in one line naming the key with the largest share, the estimate and the
limit, when they exceed the memory available now (Linux's ``MemAvailable``, or a smaller cgroup limit). Code that
works in chunks replaces its estimate by the chunk's size rather than bypassing the check.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmark.infra.errors import BenchmarkError

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human(n_bytes: float) -> str:
    """``17592186044416`` -> ``'16.0 TiB'``."""
    value, unit = float(n_bytes), 0
    while abs(value) >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.1f} {_UNITS[unit]}" if unit else f"{int(value)} B"


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """Bytes this process's cgroup (v2) may still use, when it has a limit."""
    try:
        group = Path("/proc/self/cgroup").read_text().strip().split("\n")[0].split("::", 1)[1]
        base = Path("/sys/fs/cgroup") / group.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((base / "memory.current").read_text().strip()))
    except (OSError, ValueError, IndexError):
        return None


def available_bytes() -> int:
    """Memory this process could use now without swapping: ``MemAvailable`` of /proc/meminfo (or the cgroup's room
    when smaller); elsewhere the free physical pages."""
    found = [b for b in (_meminfo_available(), _cgroup_room()) if b is not None]
    if found:
        return min(found)
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Need:
    """The memory one setting makes a stage hold: ``bytes`` for its value ``value``; ``linear``: the bytes grow in
    proportion to the value (so the largest value that fits can be said)."""

    key: str
    value: float
    bytes: float
    linear: bool = True


def check(needs: Sequence[Need], *, what: str, fixed: float = 0.0, limit: int | None = None) -> float:
    """Raise BenchmarkError (one line: the key with the largest share, its value, the estimate, the limit and what
    would fit) when ``fixed`` plus the needs exceed ``limit`` (default: :func:`available_bytes`); return the total
    estimate in bytes. ``what`` names the work, e.g. "the statistics of cv:faces".
    """
    total = fixed + sum(n.bytes for n in needs)
    limit = available_bytes() if limit is None else limit
    if total <= limit or not needs:
        return total
    worst = max(needs, key=lambda n: n.bytes)
    room = limit - (total - worst.bytes)
    fix = f"lower {worst.key}"
    if worst.linear and worst.bytes > 0 and room > 0 and int(worst.value * room / worst.bytes) >= 1:
        fix += f" to at most about {int(worst.value * room / worst.bytes):,}"
    value = f"{int(worst.value):,}" if float(worst.value).is_integer() else f"{worst.value:g}"
    raise BenchmarkError(f"{worst.key}: {value} makes {what} need about {human(total)} of memory, more than the "
                         f"{human(limit)} this machine has available; {fix} or run on a machine with more memory")
