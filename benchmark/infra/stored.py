"""Reading the files one stage leaves for another (JSON, YAML, parquet, CSV, plain text): a file that is not what it
claims to be (truncated, another format, another program's table) is one line naming it, what is wrong and the
command that writes it again, never a parser's traceback. A missing file is the caller's to explain (it knows why
it may be absent). The tables of :mod:`benchmark.infra.parquet` (outputs, predictions) have their own reader."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmark.infra import textfiles
from benchmark.infra.errors import BenchmarkError


def _unreadable(path: Path, kind: str, err: BaseException, producer: str) -> BenchmarkError:
    detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
    reason = f"{type(err).__name__}: {detail}" if detail else type(err).__name__
    return BenchmarkError(f"{path}: not a readable {kind} file ({reason}); delete it and rerun `{producer}`")


def _require_columns(path: Path, frame: pd.DataFrame, columns: Iterable[str], producer: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BenchmarkError(f"{path}: no column(s) {', '.join(missing)}, so not a file written by `{producer}`; "
                             f"delete it and rerun `{producer}`")
    return frame


def _not_text(path: Path, err: BenchmarkError, producer: str) -> BenchmarkError:
    """textfiles' encoding line with the fix for a file the pipeline writes (rewrite it) instead of "save it"."""
    problem = str(err).removeprefix(f"{path}: ").rsplit("; save", 1)[0]
    return BenchmarkError(f"{path}: {problem}; delete it and rerun `{producer}`")


def read_text(path: Path | str, *, producer: str) -> str:
    """The UTF-8 text of ``path`` (``producer``: the command that writes it, named in the error)."""
    path = Path(path)
    try:
        return textfiles.read_text(path)
    except BenchmarkError as err:
        raise _not_text(path, err, producer) from None
    except IsADirectoryError as err:
        raise _unreadable(path, "text", err, producer) from err


def read_json(path: Path | str, *, producer: str, keys: Iterable[str] = ()) -> dict[str, Any]:
    """A JSON object from ``path`` with (at least) ``keys``."""
    path = Path(path)
    text = read_text(path, producer=producer)
    try:
        document = json.loads(text)
    except ValueError as err:
        raise _unreadable(path, "JSON", err, producer) from err
    return _mapping(path, document, "a JSON object", producer, keys)


def read_yaml(path: Path | str, *, producer: str, keys: Iterable[str] = ()) -> dict[str, Any]:
    """A YAML mapping from ``path`` with (at least) ``keys`` (strict: UTF-8, each key once)."""
    path = Path(path)
    try:
        document = textfiles.load_yaml(path)
    except BenchmarkError as err:
        raise _not_text(path, err, producer) from None
    except yaml.YAMLError as err:
        raise _unreadable(path, "YAML", err, producer) from err
    return _mapping(path, document, "a YAML mapping", producer, keys)


def _mapping(path: Path, document: Any, kind: str, producer: str, keys: Iterable[str]) -> dict[str, Any]:
    """``document`` if it is a mapping with (at least) ``keys``; else one line naming ``path`` and ``producer``."""
    if not isinstance(document, dict):
        raise BenchmarkError(f"{path}: expected {kind} written by `{producer}`, got {type(document).__name__}; "
                             f"delete it and rerun `{producer}`")
    missing = [k for k in keys if k not in document]
    if missing:
        raise BenchmarkError(f"{path}: no {', '.join(missing)}, so not a file written by this version of "
                             f"`{producer}`; rerun `{producer}`")
    return document


def read_parquet(path: Path | str, *, producer: str, columns: Iterable[str] = ()) -> pd.DataFrame:
    """A parquet table from ``path`` with (at least) ``columns``."""
    path = Path(path)
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a file that is not parquet (ArrowInvalid, OSError)
        if isinstance(err, FileNotFoundError):
            raise
        raise _unreadable(path, "parquet", err, producer) from err
    return _require_columns(path, frame, columns, producer)


def read_csv(path: Path | str, *, producer: str, columns: Iterable[str] = ()) -> pd.DataFrame:
    """A CSV table the pipeline wrote (read with pandas' defaults, as written) with (at least) ``columns``."""
    path = Path(path)
    read_text(path, producer=producer)
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as err:
        raise _unreadable(path, "CSV", err, producer) from err
    return _require_columns(path, frame, columns, producer)
