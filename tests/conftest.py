"""Shared fixtures: the published outputs in ../shared (skipped with a reason when absent, a failure in CI),
deterministic toy outputs tables built in one place (tests/toy.py), and the hermeticity guard.

Hermetic tests: every test runs in its own temporary folder (the current directory is ``tmp_path``, where every
default path of benchmark/infra/paths.py then points), and a test that reads or writes the working copy's outputs anyway
(data/, results/, reports/, the MLflow and Optuna stores ...) fails, naming the path: opens, SQLite connections and
file-system changes are watched with an audit hook (the test that set up a fixture answers for it), and the whole
run fails if any of those paths changed (pyarrow's own file access, which no hook sees, is caught by that check).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BENCHMARK_SHARED_DIR", REPO.parent / "shared"))
PAPER_OUTPUTS = SHARED / "data" / "paper-outputs"
#: where tests may leave files for a person to look at (browser screenshots, CI artifacts); git-ignored
ARTIFACTS = REPO / "test-artifacts"
#: the working copy's outputs and stores, which no test may read or write
PROTECTED = tuple(REPO / name for name in ("data", "results", "reports", "mlflow.db", "optuna.db", "mlartifacts",
                                           "mlruns", ".locks"))
#: audit events that name a path they read or change (os.stat and directory listings are not watched)
WATCHED_EVENTS = frozenset({"open", "sqlite3.connect", "os.remove", "os.rename", "os.replace", "os.mkdir", "os.rmdir",
                            "shutil.rmtree", "shutil.copyfile", "shutil.move", "os.truncate", "os.chmod", "os.utime"})
_leaks: list[str] = []  # protected paths touched since the last test ended (fixture set-up and collection included)


def _tracked_files() -> frozenset[str]:
    """Files under the protected locations that git tracks (data/.gitignore, reports/.gitkeep): sources, not outputs."""
    names = [str(p.relative_to(REPO)) for p in PROTECTED]
    done = subprocess.run(["git", "ls-files", "-z", "--", *names], cwd=REPO, capture_output=True, text=True)
    return frozenset(str(REPO / f) for f in done.stdout.split("\0") if f) if done.returncode == 0 else frozenset()


TRACKED = _tracked_files()
_BEFORE = pytest.StashKey[dict]()


def _protected(path: object) -> str | None:
    """The path as text when it lies under a protected location, else None."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        return None
    text = os.path.abspath(os.fspath(path))
    if text in TRACKED:
        return None
    for root in PROTECTED:
        if text == str(root) or text.startswith(str(root) + os.sep):
            return text
    return None


def _watch(event: str, args: tuple) -> None:
    if event not in WATCHED_EVENTS:
        return
    for arg in args[:2]:  # the path(s) an event names come first
        found = _protected(arg)
        if found and f"{event} {found}" not in _leaks:
            _leaks.append(f"{event} {found}")


sys.addaudithook(_watch)


@pytest.fixture(scope="session", autouse=True)
def hermetic_session(tmp_path_factory):
    """Session- and module-scoped fixtures run in a temporary folder too, not in the working copy."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(autouse=True)
def hermetic(tmp_path, monkeypatch):
    """Run the test in ``tmp_path``, with the environment put back after it (MLflow, for one, exports the URI it
    is given as MLFLOW_TRACKING_URI, which later tests and their subprocesses would inherit); fail it if it (or a
    fixture it set up) read or wrote the working copy's outputs."""
    monkeypatch.chdir(tmp_path)
    environment = dict(os.environ)
    yield
    if dict(os.environ) != environment:
        os.environ.clear()
        os.environ.update(environment)
    leaks = list(_leaks)
    _leaks.clear()
    assert not leaks, f"the test touched the working copy's outputs: {'; '.join(leaks[:5])}"


def _state(roots: tuple[Path, ...]) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file at or under ``roots``."""
    files = [r for r in roots if r.is_file()] + [p for r in roots if r.is_dir() for p in r.rglob("*") if p.is_file()]
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in files if str(p) not in TRACKED}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = _state(PROTECTED)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when the working copy's outputs changed (what the audit hook cannot see, e.g. pyarrow's writes)."""
    before, after = session.config.stash.get(_BEFORE, None), _state(PROTECTED)
    if before is None or before == after:
        return
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    session.config.get_terminal_writer().line(
        f"FAILED hermeticity: the suite changed the working copy's outputs: {', '.join(changed[:10])}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
    from benchmark.core.design import shipped
    from benchmark.sources import published

    return {name: published.load(shipped()[name], paper_outputs_dir) for name in ("faces", "adfes")}


@pytest.fixture
def toy_table():
    """A small valid outputs table (2 datasets' worth of design for one dataset name); see tests/toy.py."""
    from toy import make_toy_table

    return make_toy_table()
