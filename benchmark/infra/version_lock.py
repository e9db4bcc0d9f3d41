"""The lock of exact package versions (``constraints.txt``, pip constraints that ``make setup`` installs with) and
how the running environment compares with it.

The lock is written from pip's installation report of a fresh resolution (``make lock``: ``pip install --dry-run
--ignore-installed --report``), i.e. what a clean machine would install today, one ``name==version`` line per
package, names in PEP 503 form, sorted.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmark.infra import paths, stored
from benchmark.infra.errors import BenchmarkError

__all__ = ["canonical", "compare", "installed_versions", "lock_text", "read_lock", "status_line"]

HEADER = """\
# Exact versions of every package `make setup` installs (pip constraints: pip install -c constraints.txt ...).
# Resolved from PyPI for {python} on {platform}; refresh with `make lock` (docs in README, "Versions").
# The report's provenance says whether the environment that ran it matches this file.
"""
_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)\s*$")


def canonical(name: str) -> str:
    """A distribution name in PEP 503 normal form (``PyYAML`` -> ``pyyaml``, ``ruamel.yaml`` -> ``ruamel-yaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_text(report: dict[str, Any], *, exclude: tuple[str, ...] = (), extra: tuple[str, ...] = (),
              python: str, platform: str) -> str:
    """The lock file from pip's ``--report`` JSON: every package it would install, minus ``exclude`` (the project
    itself), plus ``extra`` pins (``name==version``, for packages installed with ``--no-deps``)."""
    pins = {canonical(item["metadata"]["name"]): item["metadata"]["version"] for item in report["install"]}
    for pin in extra:
        match = _LINE.match(pin)
        if match is None:
            raise BenchmarkError(f"extra pin {pin!r}: expected name==version")
        pins[canonical(match[1])] = match[2]
    for name in exclude:
        pins.pop(canonical(name), None)
    body = "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))
    return HEADER.format(python=python, platform=platform) + body


def read_lock(path: Path = paths.LOCK) -> dict[str, str]:
    """Canonical name -> locked version. Raises BenchmarkError naming the file and line of anything else."""
    pins = {}
    for number, line in enumerate(stored.read_text(path, producer="make lock").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line.strip())
        if match is None:
            raise BenchmarkError(f"{path}:{number}: {line.strip()!r} is not a name==version pin; refresh with make lock")
        pins[canonical(match[1])] = match[2]
    return pins


def installed_versions() -> dict[str, str]:
    """Canonical name -> version of every distribution installed in the running environment."""
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def compare(locked: dict[str, str], installed: dict[str, str]) -> list[tuple[str, str | None, str]]:
    """(name, installed version or None when missing, locked version) for every locked package that differs."""
    return [(name, installed.get(name), version) for name, version in sorted(locked.items())
            if installed.get(name) != version]


def status_line(path: Path = paths.LOCK, *, installed: dict[str, str] | None = None, shown: int = 8) -> str:
    """One sentence for the report: whether the running environment matches the lock, and which packages differ
    (the first ``shown`` of them)."""
    if not path.exists():
        return f"no lock file at {path}: the package versions are not checked against a lock"
    locked = read_lock(path)
    differing = compare(locked, installed_versions() if installed is None else installed)
    if not differing:
        return f"the environment matches the lock {path} ({len(locked)} packages, exact versions)"
    listed = ", ".join(f"{name} {have or 'missing'} (locked {want})" for name, have, want in differing[:shown])
    more = f" and {len(differing) - shown} more" if len(differing) > shown else ""
    return (f"the environment differs from the lock {path} in {len(differing)} of {len(locked)} packages: "
            f"{listed}{more}; `make setup` installs the locked versions")
