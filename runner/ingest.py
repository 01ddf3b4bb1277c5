"""Load one untrusted CSV file as a DuckDB table, strictly, inside the sandbox.

DuckDB's reader is forgiving by default, which turns broken files into wrong answers (measured
with DuckDB 2.0.1): rows of uneven width make the sniffer collapse every row into one column
named like `a,b,c`, or pick the widest row as the schema and silently load zero rows; duplicate
and empty header names are renamed (`a_1`, `column1`). So the load is strict (`strict_mode`,
no `ignore_errors`, no `null_padding`) and then checked: a table whose single column is named
like a delimited header, or whose row count differs from the file's line count, is re-read
record by record with Python's csv module (exact, but only on suspicion, because it is ~20x
slower than DuckDB); ragged rows and dropped rows become a typed `CsvIngestError`. Renamed
columns, a delimiter other than a comma, decimal commas and header-only files load, each with a
note on stderr (`runner: table 'NAME': [kind] message`; it lands in the run's capsule, and the
analyst turns the notes of a profiling run into the dataset's ingestion problems).

Decimal commas: DuckDB reads `1,5` in a semicolon-separated file as the text '1,5'. When every
value of a text column of such a file is a number with a decimal comma (dots allowed between
thousands), that column is converted to DOUBLE, and each converted column is noted.
"""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass, field

import duckdb

# DuckDB's reader memory grows with its buffer size times the number of columns, and the buffer
# must exceed the longest line. Under the sandbox's address-space cap (4x a 256 MB memory_limit)
# a 2,000-column file loads with a 1 MB buffer but not with an 8 MB one, while a 5 MB text
# field needs the larger buffer. So the first attempt uses the small buffer and only a file
# with a longer line is read again with the large one. Longer lines fail with a typed error.
FIRST_MAX_LINE_BYTES = 1 << 20
MAX_LINE_BYTES = 8 << 20
# Bytes of the file read to take its header (for renamed-column notes).
HEADER_PROBE_BYTES = 1 << 20
_DELIMITERS = (",", ";", "\t", "|")
READ_OPTIONS = "header = true, strict_mode = true, ignore_errors = false, null_padding = false"


def _read_options(max_line_bytes: int) -> str:
    # DuckDB's parallel reader refuses large files ("does not support a full read") when the
    # buffer is barely above the longest line; twice the line size reads them (measured on a
    # 47 MB, 1e6-row file).
    return f"{READ_OPTIONS}, max_line_size = {max_line_bytes}, buffer_size = {2 * max_line_bytes}"


@dataclass
class CsvIngestError(Exception):
    """A CSV file that cannot be loaded without losing or inventing data.

    Attributes:
        table: The table the file was to become.
        issue: A short snake_case kind: ragged_rows, dropped_rows, invalid_utf8, line_too_long,
            out_of_memory, unreadable.
        message: Actionable English naming the table and, when known, the line.
        line: 1-based line (record) number of the first offending row, 0 when unknown.
    """

    table: str
    issue: str
    message: str
    line: int = 0

    def __str__(self) -> str:
        return self.message

    def metadata(self) -> dict[str, str]:
        """Every value of the message, for RunError.metadata."""
        values = {"table": self.table, "issue": self.issue, "stage": "load"}
        if self.line:
            values["line"] = str(self.line)
        return values


@dataclass(frozen=True)
class Note:
    """One thing loading a file noticed or fixed without refusing it.

    Attributes:
        kind: snake_case: renamed_column, delimiter_detected, decimal_comma, no_rows.
        message: English, naming the column or value.
    """

    kind: str
    message: str


@dataclass
class LoadReport:
    """What loading one file noticed without refusing it."""

    table: str
    rows: int = 0
    notes: list[Note] = field(default_factory=list)


NOTE_PREFIX = "runner: table "
# A number written with a decimal comma, optionally with dots between thousands: 1,5 / -12,25 / 1.234,5.
_DECIMAL_COMMA = r"[-+]?[0-9]{1,3}(\.[0-9]{3})*(,[0-9]+)?|[-+]?[0-9]+(,[0-9]+)?"


def identifier(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """Quote a string literal for DuckDB."""
    return "'" + text.replace("'", "''") + "'"


def load_csv(connection: duckdb.DuckDBPyConnection, table: str, path: str) -> LoadReport:
    """Create `table` from the CSV at `path` or raise CsvIngestError; notes go to stderr.

    Args:
        connection: A connection whose allowed_directories contains path.
        table: The table name (from the service's registry, quoted here).
        path: The file inside the sandbox.

    Returns:
        The row count and the notes written to stderr.

    Raises:
        CsvIngestError: For ragged rows, silently dropped rows, invalid UTF-8, over-long lines
            or any file DuckDB cannot parse.
    """
    attempts = (FIRST_MAX_LINE_BYTES, MAX_LINE_BYTES) if _longest_line(path) < FIRST_MAX_LINE_BYTES else (MAX_LINE_BYTES,)
    for max_line_bytes in attempts:
        try:
            connection.execute(f"CREATE TABLE {identifier(table)} AS "
                               f"SELECT * FROM read_csv({literal(path)}, {_read_options(max_line_bytes)})")
            break
        except duckdb.Error as error:
            # With the small buffer a long line shows up as any sniffing or parsing error.
            problem = _classify(table, error)
            if problem.issue in ("out_of_memory", "invalid_utf8") or max_line_bytes == MAX_LINE_BYTES:
                raise problem from error
    columns = [row[0] for row in connection.execute(f"DESCRIBE {identifier(table)}").fetchall()]
    rows = int(connection.execute(f"SELECT count(*) FROM {identifier(table)}").fetchone()[0])  # type: ignore[index]
    report = LoadReport(table, rows)
    collapsed = len(columns) == 1 and any(d in columns[0] for d in _DELIMITERS)
    if collapsed or rows != _physical_records(connection, path):
        _check_records(table, path, columns, rows, columns[0] if collapsed else "")
    first = _first_line(path)
    delimiter = _delimiter(first, len(columns)) if first else ","
    header = _header(first, delimiter, columns)
    if header is not None:
        for index, (raw, loaded) in enumerate(zip(header, columns, strict=False)):
            if raw.strip() != loaded:
                shown = repr(raw) if raw.strip() else "an empty name"
                report.notes.append(Note("renamed_column",
                                         f"column {index + 1} has {shown} in the header; it is named {loaded!r}"))
    if len(columns) > 1 and delimiter != ",":
        report.notes.append(Note("delimiter_detected", f"values are separated by {delimiter!r}, not commas"))
    if delimiter == ";" and rows:
        report.notes += _read_decimal_commas(connection, table)
    if rows == 0:
        report.notes.append(Note("no_rows", "the file has a header but no data rows"))
    for note in report.notes:
        print(f"{NOTE_PREFIX}{table!r}: [{note.kind}] {note.message}", file=sys.stderr)
    return report


def _text_columns(connection: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in connection.execute(f"DESCRIBE {identifier(table)}").fetchall() if row[1] == "VARCHAR"]


def _read_decimal_commas(connection: duckdb.DuckDBPyConnection, table: str) -> list[Note]:
    """Turn text columns of decimal-comma numbers into DOUBLE; a note for each column converted.

    DuckDB reads 1,5 in a semicolon file as text, and a later "first number in the cell" reading
    would drop the comma (1,5 becoming 15). Only a column whose every non-empty cell is such a
    number (dots allowed between thousands: 1.234,5), with at least one comma, is converted, one
    column at a time, so text and the file's other columns are left as DuckDB read them.
    """
    notes = []
    for name in _text_columns(connection, table):
        column = identifier(name)
        other, with_comma = connection.execute(
            f"SELECT count(*) FILTER (WHERE NOT regexp_full_match(trim({column}), {literal(_DECIMAL_COMMA)})), "
            f"count(*) FILTER (WHERE contains({column}, ',')) FROM {identifier(table)} "
            f"WHERE {column} IS NOT NULL AND trim({column}) <> ''").fetchone() or (1, 0)
        if other or not with_comma:
            continue
        connection.execute(f"ALTER TABLE {identifier(table)} ALTER COLUMN {column} TYPE DOUBLE USING "
                           f"CAST(NULLIF(replace(replace(trim({column}), '.', ''), ',', '.'), '') AS DOUBLE)")
        notes.append(Note("decimal_comma", f"column {name!r} has numbers with decimal commas (such as 1,5); "
                                           "they are read as numbers"))
    return notes


def _longest_line(path: str) -> int:
    """Length of the longest physical line (0 for files too small to hold a long line)."""
    try:
        if os.path.getsize(path) < FIRST_MAX_LINE_BYTES:
            return 0
        with open(path, "rb") as handle:
            return max((len(line) for line in handle), default=0)
    except OSError:
        return 0


def _classify(table: str, error: duckdb.Error) -> CsvIngestError:
    text = str(error)
    line = 0
    marker = "CSV Error on Line: "
    if marker in text:
        digits = text.split(marker, 1)[1].split()[0]
        line = int(digits) if digits.isdigit() else 0
    where = f" (line {line})" if line else ""
    if "invalid unicode" in text.lower():
        return CsvIngestError(table, "invalid_utf8", f"the CSV file of table {table!r} is not valid UTF-8{where}; "
                              "save it as UTF-8 and try again", line)
    if "maximum line size of" in text.lower():
        return CsvIngestError(table, "line_too_long", f"a line of the CSV file of table {table!r} is longer than "
                              f"{MAX_LINE_BYTES >> 20} MB{where}", line)
    if isinstance(error, duckdb.OutOfMemoryException):
        return CsvIngestError(table, "out_of_memory", f"the CSV file of table {table!r} needs more memory to load "
                              "than the run's memory limit (run_memory) allows")
    first = text.strip().splitlines()[0][:300] if text.strip() else type(error).__name__
    return CsvIngestError(table, "unreadable", f"the CSV file of table {table!r} could not be read{where}: {first}", line)


def _physical_records(connection: duckdb.DuckDBPyConnection, path: str) -> int:
    """Data lines of the file (non-empty lines after the header), counted by DuckDB quickly.

    Equal to the number of records unless quoted fields contain newlines; a difference only
    triggers the exact check, it never refuses a file by itself.
    """
    try:
        lines = connection.execute(
            f"SELECT count(*) FROM read_csv({literal(path)}, columns = {{'line': 'VARCHAR'}}, header = false, "
            f"auto_detect = false, delim = '\\x1f', quote = '', escape = '', "
            f"max_line_size = {MAX_LINE_BYTES}, buffer_size = {2 * MAX_LINE_BYTES}, "
            f"strict_mode = false) WHERE line IS NOT NULL AND trim(line, ' \\r') <> ''").fetchone()
    except duckdb.Error:
        return -1  # could not count: take the exact path
    return max(0, int(lines[0]) - 1) if lines else -1  # type: ignore[index]


def _open(path: str):  # type: ignore[no-untyped-def]
    return open(path, encoding="utf-8-sig", errors="replace", newline="")


def _delimiter(header_line: str, width: int) -> str:
    """The delimiter that splits the header into `width` fields (else the most frequent one)."""
    for delimiter in _DELIMITERS:
        if len(next(csv.reader([header_line], delimiter=delimiter))) == width:
            return delimiter
    return max(_DELIMITERS, key=header_line.count)


def _check_records(table: str, path: str, columns: list[str], rows: int, collapsed_name: str) -> None:
    """Re-read the file record by record; raise on ragged or dropped rows.

    Args:
        collapsed_name: The one column's name when DuckDB collapsed every row into it; the
            delimiter is then the one that name contains most often.
    """
    csv.field_size_limit(MAX_LINE_BYTES)
    with _open(path) as handle:
        first = handle.readline()
        handle.seek(0)
        width = len(columns)
        delimiter = max(_DELIMITERS, key=collapsed_name.count) if collapsed_name else _delimiter(first, width)
        reader = csv.reader(handle, delimiter=delimiter)
        header_width = 0
        records = 0
        try:
            for record in reader:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                if not header_width:
                    header_width = len(record)
                    continue
                records += 1
                if len(record) != header_width:
                    raise CsvIngestError(
                        table, "ragged_rows",
                        f"row {records} (line {reader.line_num}) of the CSV file of table {table!r} has "
                        f"{len(record)} fields but the header has {header_width}; fix the file (every row needs "
                        "the same number of fields)", reader.line_num)
        except csv.Error as error:
            raise CsvIngestError(table, "unreadable", f"the CSV file of table {table!r} could not be read "
                                 f"(line {reader.line_num}): {error}", reader.line_num) from error
    if header_width and header_width != width:
        raise CsvIngestError(table, "ragged_rows", f"the CSV file of table {table!r} has a {header_width}-field "
                             f"header but DuckDB detected {width} columns; check the delimiter and quoting")
    if records != rows:
        raise CsvIngestError(table, "dropped_rows", f"the CSV file of table {table!r} has {records} data rows but "
                             f"only {rows} could be loaded; fix the file")


def _first_line(path: str) -> str:
    """The file's first line (the header), without its line end; empty when unreadable."""
    try:
        with _open(path) as handle:
            return handle.readline(HEADER_PROBE_BYTES).rstrip("\r\n")
    except OSError:
        return ""


def _header(first: str, delimiter: str, columns: list[str]) -> list[str] | None:
    if not first:
        return None
    header = next(csv.reader([first], delimiter=delimiter), [])
    return header if len(header) == len(columns) else None
