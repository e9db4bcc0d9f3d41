"""Fail fast on unreachable services: probe a tracking server or database once, with a short deadline, before work.

A service that is down, mistyped or silent would otherwise stall a stage in its client's own retries (MLflow's HTTP
client retries for minutes, its SQL store about 100 s). :func:`check_service` answers within ``PROBE_TIMEOUT_S``
(plus thread start-up) whatever the failure: connection refused, a host that drops packets, a server that accepts
connections and never answers, a name that does not resolve, a missing database driver.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.infra.errors import BenchmarkError

#: seconds a probe waits for a service's first answer (documented in the README's troubleshooting section)
PROBE_TIMEOUT_S = 5.0
#: URL schemes (before any ``+driver``) of network services; others (sqlite, file paths, databricks ...) are not probed
NETWORK_SCHEMES = ("http", "https", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle")


def redact_url(url: str) -> str:
    """A store URL with any password hidden, for messages, logs and tags (``user:***@host``)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL (e.g. a file path or http URI): hide a userinfo part if any
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}***@{rest.split('@', 1)[1]}" if "@" in rest else url


def _within(seconds: float, call: Callable[[], Any]) -> None:
    """Run ``call`` in a daemon thread; raise what it raised, or TimeoutError when it has not returned in time.

    A thread, because no single client timeout covers name resolution, connecting and a silent server's handshake;
    a call still blocked after the deadline is abandoned (the daemon thread dies with the process).
    """
    outcome: dict[str, BaseException] = {}

    def target() -> None:
        try:
            call()
        except BaseException as err:  # handed to the caller
            outcome["error"] = err

    thread = threading.Thread(target=target, name="service-probe", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]


def _http_answers(url: str, timeout_s: float) -> None:
    """Any HTTP response (even an error status) means the server answers; TLS trouble is left to the client."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        pass
    except urllib.error.URLError as err:
        import ssl

        if not isinstance(err.reason, ssl.SSLError):
            raise


def _database_answers(url: str, timeout_s: float) -> None:
    """Open and close one connection (no tables are created)."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    parsed = sqlalchemy.engine.make_url(url)
    connect_args = {"connect_timeout": max(2, int(timeout_s))} if parsed.get_backend_name() == "postgresql" else {}
    engine = sqlalchemy.create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def _is_missing_driver(err: BaseException) -> bool:
    """ImportError, or SQLAlchemy's NoSuchModuleError for an unknown dialect or driver name."""
    return isinstance(err, ImportError) or type(err).__name__ == "NoSuchModuleError"


def needs_probe(url: str) -> bool:
    """Whether ``url`` names a network service (an HTTP server or a database server), not a local file store."""
    scheme = url.partition("://")[0].split("+", 1)[0].lower() if "://" in url else ""
    return scheme in NETWORK_SCHEMES


#: the first bytes of every SQLite 3 database file
SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other URLs and in-memory databases)."""
    if not url.lower().startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    try:
        database = make_url(url).database
    except Exception:  # not a SQLAlchemy URL: the client says what is wrong with it
        return None
    return Path(database) if database and database != ":memory:" else None


def check_sqlite_file(url: str, *, setting: str, what: str) -> None:
    """Raise BenchmarkError (one line naming the file and the fix) when the file of a sqlite URL exists but is not an
    SQLite database, before a client opens it (SQLAlchemy's error comes late, from inside a stage's work). A missing
    or empty file is fine: the client creates the database."""
    path = sqlite_file(url)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as fh:
        head = fh.read(len(SQLITE_HEADER))
    if head != SQLITE_HEADER:
        raise BenchmarkError(f"{setting}: {what} {redact_url(url)!r}: {path} is not an SQLite database (it starts with "
                             f"{head[:8]!r}); move the file away (a new store is then created there) or point "
                             f"{setting} at the store's real file")


def check_service(url: str, *, setting: str, what: str, fix: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise BenchmarkError (one line: ``setting``, the redacted URL, the cause, ``fix``) unless the HTTP server or
    database at ``url`` answers within ``timeout_s`` seconds. A sqlite URL's file is checked to be a database
    (:func:`check_sqlite_file`); other stores (files, databricks ...) are not probed."""
    check_sqlite_file(url, setting=setting, what=what)
    if not needs_probe(url):
        return
    is_http = url.lower().startswith(("http://", "https://"))
    try:
        _within(timeout_s, lambda: _http_answers(url, timeout_s) if is_http else _database_answers(url, timeout_s))
    except Exception as err:  # refused, unresolvable, silent, bad URL, missing driver ...
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        detail = str(reason).strip().splitlines()[0][:160] if str(reason).strip() else ""
        cause = f"{type(reason).__name__}{': ' + detail if detail else ''}"
        if _is_missing_driver(reason):
            raise BenchmarkError(f"{setting}: {what} {redact_url(url)!r} needs a database driver that is not installed "
                                 f"({cause}); install it, or name an installed one in the URL "
                                 f"(e.g. postgresql+psycopg2://)") from err
        raise BenchmarkError(f"{setting}: {what} {redact_url(url)!r} does not answer ({cause}); {fix}") from err



def check_study_storage(url: str) -> None:
    """:func:`check_service` for an Optuna storage (``tune.storage``, ``--storage`` or ``OPTUNA_STORAGE``)."""
    check_service(url, setting="tune.storage", what="Optuna storage",
                  fix="check the URL (--storage, OPTUNA_STORAGE or tune.storage) and that the database server runs")
