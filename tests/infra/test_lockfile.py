"""The lock of exact versions (constraints.txt): written from pip's resolution report, read back strictly, installable
from PyPI alone, covering every declared dependency; the report says whether the running environment matches it."""

from __future__ import annotations

import pytest
import tomllib
from conftest import REPO
from packaging.requirements import Requirement

from benchmark.infra import version_lock
from benchmark.infra.errors import BenchmarkError

LOCK = REPO / "constraints.txt"


def _report(*pins: tuple[str, str]) -> dict:
    return {"install": [{"metadata": {"name": name, "version": version}} for name, version in pins]}


def test_lock_text_pins_every_resolved_package_sorted_by_canonical_name():
    text = version_lock.lock_text(_report(("PyYAML", "6.0.4"), ("ruamel.yaml", "0.19.1"), ("my-project", "0.1.0")),
                              exclude=("My_Project",), extra=("fer==25.10.3",), python="CPython 3.11.7",
                              platform="linux-x86_64")
    assert text.startswith("# ") and "CPython 3.11.7 on linux-x86_64" in text
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        "fer==25.10.3", "pyyaml==6.0.4", "ruamel-yaml==0.19.1"]


def test_read_lock_round_trips_lock_text(tmp_path):
    path = tmp_path / "constraints.txt"
    path.write_text(version_lock.lock_text(_report(("numpy", "2.4.6"), ("Flask", "3.1.3")), python="p", platform="q"))
    assert version_lock.read_lock(path) == {"numpy": "2.4.6", "flask": "3.1.3"}


@pytest.mark.parametrize("line", ["numpy>=2", "-e .", "torch @ file:///opt/wheels/torch.whl", "numpy"])
def test_a_line_that_is_not_an_exact_pin_is_one_error_naming_file_and_line(tmp_path, line):
    path = tmp_path / "constraints.txt"
    path.write_text(f"# header\nscipy==1.17.1\n{line}\n")
    with pytest.raises(BenchmarkError, match=r"constraints.txt:3: .* is not a name==version pin; refresh with make lock"):
        version_lock.read_lock(path)


def test_status_line_says_the_environment_matches_when_every_pin_is_installed(tmp_path):
    path = tmp_path / "constraints.txt"
    path.write_text("numpy==2.4.6\npandas==3.1.1\n")
    line = version_lock.status_line(path, installed={"numpy": "2.4.6", "pandas": "3.1.1", "extra": "1.0"})
    assert line == f"the environment matches the lock {path} (2 packages, exact versions)"


def test_status_line_names_each_package_that_differs_or_is_missing(tmp_path):
    path = tmp_path / "constraints.txt"
    path.write_text("numpy==2.4.6\noptuna==5.1.0\npandas==3.1.1\n")
    line = version_lock.status_line(path, installed={"numpy": "2.4.6", "optuna": "5.0.0"})
    assert "differs from the lock" in line and "in 2 of 3 packages" in line
    assert "optuna 5.0.0 (locked 5.1.0)" in line and "pandas missing (locked 3.1.1)" in line


def test_status_line_without_a_lock_file_says_so(tmp_path):
    assert version_lock.status_line(tmp_path / "none.txt", installed={}).startswith("no lock file at")


def test_the_lock_pins_the_local_torch_builds_and_names_no_local_path():
    pins = version_lock.read_lock(LOCK)   # read_lock refuses anything but name==version, so no path or URL can hide
    assert (pins["torch"], pins["torchvision"]) == ("2.14.1", "0.29.1")


def test_the_lock_covers_every_declared_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"]) + [r for extra in ("test", "images") for r in project["optional-dependencies"][extra]]
    names = {version_lock.canonical(Requirement(requirement).name) for requirement in declared}
    assert names - set(version_lock.read_lock(LOCK)) == set()


def test_the_running_environment_is_the_locked_one():
    differing = version_lock.compare(version_lock.read_lock(LOCK), version_lock.installed_versions())
    assert differing == [], f"installed != locked (name, installed, locked): {differing}; run make setup"
