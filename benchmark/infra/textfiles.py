"""Strict reading of the text files users give us (CSV tables, YAML): no silent coercion.

pandas' and PyYAML's defaults guess where they should refuse: a duplicated column becomes ``emo_sad.1``, an unnamed
one ``Unnamed: 3``, a row with a field too many shifts every column onto the index, a short row is padded with NaN,
an empty cell becomes NaN (and then the person "nan"), ``NA`` or ``null`` become missing, ``007`` becomes 7, and a
key given twice in YAML silently keeps the last value. Here every value of a CSV stays text until a column is
converted on purpose, and each such problem is one :class:`~benchmark.infra.errors.BenchmarkError` line naming the file,
the line or column, what was found and what is expected.

Encoding: UTF-8 (a UTF-8 byte-order mark is allowed and dropped: it marks the encoding, it is not data). UTF-16 and
UTF-32 files (marked by their byte-order mark) and any other non-UTF-8 bytes are refused, naming the line.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from benchmark.infra.errors import BenchmarkError

if TYPE_CHECKING:  # pandas and numpy are imported where used: validating params.yaml stays light
    import pandas as pd

#: the delimiter a CSV must use, and the others a misdelimited header is tried with (for the hint)
DELIMITER = ","
OTHER_DELIMITERS = (";", "\t", "|")
#: byte-order marks of encodings other than UTF-8, longest first (UTF-32 LE starts with UTF-16 LE's mark)
FOREIGN_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


def decode(path: Path | str, data: bytes) -> str:
    """The text of a UTF-8 file (a leading UTF-8 byte-order mark dropped); one clear line for any other encoding."""
    for bom, encoding in FOREIGN_BOMS:
        if data.startswith(bom):
            raise BenchmarkError(f"{path}: the file is {encoding} text (byte-order mark {bom.hex(' ').upper()}); "
                                 f"save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise BenchmarkError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02X} at line {line}, column {column}); "
                             f"save the file as UTF-8") from None


def read_text(path: Path | str) -> str:
    """Read a UTF-8 text file strictly (see :func:`decode`)."""
    return decode(path, Path(path).read_bytes())


@dataclass(frozen=True)
class CsvTable:
    """A CSV read as text.

    Attributes
    ----------
    path : Path
        The file, for messages.
    frame : DataFrame of shape (n_rows, n_columns)
        Every value a ``str`` exactly as written (no NaN, no numbers, no stripping), columns named by the header.
    lines : list of int, length n_rows
        The file line on which each row starts (the header is line 1), for messages.
    """

    path: Path
    frame: pd.DataFrame
    lines: list[int]

    def where(self, row: int, column: str) -> str:
        """``<path> line <n> column '<column>'`` for row index ``row``."""
        return f"{self.path} line {self.lines[row]} column '{column}'"


def _delimiter_hint(header: list[str]) -> str:
    """A note naming the delimiter a one-column header is really split by, if any."""
    if len(header) != 1:
        return ""
    for other in OTHER_DELIMITERS:
        if len(header[0].split(other)) > 1:
            shown = {"\t": "tab"}.get(other, repr(other))
            return f"; the file looks {shown}-separated: save it comma-separated (delimiter ',')"
    return ""


def _check_header(path: Path, header: list[str]) -> None:
    """Column names: present, not blank, not padded with spaces, each once."""
    hint = _delimiter_hint(header)
    if hint:
        raise BenchmarkError(f"{path}: the header is one column {header[0][:80]!r}{hint}")
    seen: set[str] = set()
    for number, name in enumerate(header, start=1):
        if not name.strip():
            raise BenchmarkError(f"{path}: column {number} of the header has no name; every column needs a unique name "
                                 f"(a trailing delimiter adds an empty column)")
        if name != name.strip():
            raise BenchmarkError(f"{path}: column name {name!r} has leading or trailing spaces; expected {name.strip()!r}")
        if name in seen:
            raise BenchmarkError(f"{path}: column {name!r} appears twice in the header; each column must appear once")
        seen.add(name)


def read_csv(path: Path | str) -> CsvTable:
    """Read a comma-separated UTF-8 file with a header row, every value as text.

    Refused, each with one line: another encoding, an empty file, a header split by another delimiter, blank, padded
    or repeated column names, and rows with more or fewer fields than the header (naming the line).
    Lines that are entirely empty are skipped; quoted fields may span lines.
    """
    import pandas as pd

    path = Path(path)
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITER, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise BenchmarkError(f"{path}: the file is empty; expected a header row, then the rows")
        _check_header(path, header)
        rows, lines = [], []
        start = reader.line_num + 1
        for record in reader:
            if record:
                if len(record) != len(header):
                    raise BenchmarkError(f"{path} line {start}: {len(record)} field(s), the header has {len(header)}; "
                                         f"every row needs one value per column (a stray delimiter or quote?)")
                rows.append(record)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as err:
        raise BenchmarkError(f"{path} line {reader.line_num}: malformed CSV ({err}); check the quoting") from None
    return CsvTable(path, pd.DataFrame(rows, columns=header, dtype=object), lines)


def check_identifiers(frame: pd.DataFrame, columns: Iterable[str], *, where: Callable[[int, str], str]) -> None:
    """Identifier and label columns hold text (or integers): no missing, empty, blank or space-padded value, each of
    which would silently become another person, image or label ("nan", ""). ``where(row, column)`` names a cell in
    messages. Columns absent from ``frame`` are left to the caller's own check of required columns."""
    import numpy as np

    for column in columns:
        if column not in frame.columns:
            continue
        for row, value in enumerate(frame[column].tolist()):
            if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
                continue
            if not isinstance(value, str):
                missing = value is None or (isinstance(value, float) and math.isnan(value))
                found = "missing value" if missing else f"{value!r} is a {type(value).__name__}, not text"
                raise BenchmarkError(f"{where(row, column)}: {found}; every row needs a text value in this column")
            if not value.strip():
                raise BenchmarkError(f"{where(row, column)}: empty value; every row needs a value in this column")
            if value != value.strip():
                raise BenchmarkError(f"{where(row, column)}: {value!r} has leading or trailing spaces; "
                                     f"expected {value.strip()!r}")


def to_numbers(table: CsvTable, columns: Iterable[str]) -> pd.DataFrame:
    """The table's frame with ``columns`` converted to float64, each value parsed on its own.

    An empty cell or a value that is not a number is one line naming the line, the column and the value
    (``nan`` and ``inf`` parse, and are left to the caller's checks of finite values).
    """
    import pandas as pd

    frame = table.frame.copy()
    for column in columns:
        values = []
        for row, text in enumerate(frame[column]):
            try:
                values.append(float(text))
            except ValueError:
                problem = "empty value" if not text.strip() else f"{text[:40]!r} is not a number"
                hint = " (a decimal comma? use '.')" if DECIMAL_COMMA.match(text.strip()) else ""
                raise BenchmarkError(f"{table.where(row, column)}: {problem}{hint}; expected a number") from None
        frame[column] = pd.Series(values, index=frame.index, dtype="float64")
    return frame


class _UniqueKeyLoader(yaml.CSafeLoader):
    """PyYAML's safe loader on libyaml's parser (about 10x the pure-Python parser: a simulation scenario is
    thousands of nodes), refusing a key that appears twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in first:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (lines {first[key]} and {line}); give each key once",
                    key_node.start_mark)
            first[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path | str) -> Any:
    """Parse a UTF-8 YAML file safely, refusing repeated keys.

    Raises BenchmarkError for the encoding and ``yaml.YAMLError`` (first line: the problem) for the syntax, so callers
    keep their own "not valid YAML" message.
    """
    return yaml.load(read_text(path), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)

