"""runner.ingest in-process: strict CSV loading that refuses ragged and silently dropped rows and
reports renamed columns (the sandboxed path is covered by test_hostile_csv.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from runner.ingest import CsvIngestError, load_csv


@pytest.mark.parametrize(("content", "issue", "line"), [
    (b"a,b,c\n1,2,3\n4,5\n6,7,8\n", "ragged_rows", 3),
    (b"a,b,c\n1,2,3\n4,5,6,7\n", "ragged_rows", 3),  # DuckDB alone loads 0 rows here
    (b"a;b;c\n1;2;3\n4;5\n", "ragged_rows", 3),
    (b"a,b\n1,caf\xe9\n", "invalid_utf8", 2),
])
def test_refused(tmp_path: Path, content: bytes, issue: str, line: int) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(CsvIngestError) as info:
        load_csv(duckdb.connect(), "t", str(path))
    assert info.value.issue == issue and info.value.line == line
    assert info.value.metadata()["table"] == "t"


@pytest.mark.parametrize(("content", "rows", "note"), [
    (b"a,a,b\n1,2,3\n", 1, "'a_1'"),
    (b"a,,b\n1,2,3\n", 1, "an empty name"),
    (b"a,b\n", 0, "no data rows"),
    (b'id,text\n1,"two\nlines"\n2,x\n', 2, ""),
    (b"\xef\xbb\xbfid,v\n1,x\n", 1, ""),
])
def test_loaded_with_notes(tmp_path: Path, content: bytes, rows: int, note: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    connection = duckdb.connect()
    report = load_csv(connection, "t", str(path))
    assert report.rows == rows == connection.execute("SELECT count(*) FROM t").fetchone()[0]  # type: ignore[index]
    if note:
        assert note in capsys.readouterr().err
    else:
        assert not report.notes


def _notes(tmp_path: Path, content: bytes) -> tuple[duckdb.DuckDBPyConnection, list[tuple[str, str]]]:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    connection = duckdb.connect()
    report = load_csv(connection, "t", str(path))
    return connection, [(note.kind, note.message) for note in report.notes]


def test_a_semicolon_file_with_decimal_commas_is_read_as_numbers(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    connection, notes = _notes(tmp_path, b"item;price;qty;code\nA;1,5;3;x1\nB;2,25;4;x2\nC;-10;1;x3\n")
    assert connection.execute("SELECT sum(price), typeof(price) FROM t GROUP BY 2").fetchall() == [(-6.25, "DOUBLE")]
    assert [kind for kind, _ in notes] == ["delimiter_detected", "decimal_comma"]
    assert "';'" in notes[0][1] and "'price'" in notes[1][1]
    assert "runner: table 't': [decimal_comma] column 'price'" in capsys.readouterr().err


@pytest.mark.parametrize("content", [
    b"item;price\nA;1,5\nB;n/a\n",          # one value is not a number: the column stays text
    b"item;version\nA;1.5\nB;2.0\n",        # decimal points: DuckDB's own number reading
    b"item,price\nA,\"1,5\"\nB,\"2,5\"\n",  # a comma file: a quoted 1,5 is text, not a decimal comma
])
def test_no_decimal_comma_reading_where_it_does_not_fit(tmp_path: Path, content: bytes) -> None:
    _, notes = _notes(tmp_path, content)
    assert "decimal_comma" not in [kind for kind, _ in notes]


def test_tab_separated_file_notes_its_delimiter(tmp_path: Path) -> None:
    connection, notes = _notes(tmp_path, b"a\tb\n1\t2\n")
    assert notes == [("delimiter_detected", "values are separated by '\\t', not commas")]
    assert connection.execute("SELECT a + b FROM t").fetchall() == [(3,)]


def test_decimal_commas_of_a_semicolon_file_are_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.csv"
    path.write_text("city;price;code;note\nBergen;1,5;007;a,b\nNarvik;1.234,25;010;c\nMolde;;011;d\n",
                    encoding="utf-8")
    connection = duckdb.connect()
    load_csv(connection, "t", str(path))
    rows = connection.execute("SELECT price, note FROM t ORDER BY city").fetchall()
    assert rows == [(1.5, "a,b"), (None, "d"), (1234.25, "c")]  # text with commas stays text
    assert "'price'" in capsys.readouterr().err


def test_commas_of_a_comma_separated_file_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('city,price\nBergen,"1,5"\nNarvik,"2,25"\n', encoding="utf-8")
    connection = duckdb.connect()
    load_csv(connection, "t", str(path))
    assert connection.execute("SELECT price FROM t ORDER BY city").fetchall() == [("1,5",), ("2,25",)]
