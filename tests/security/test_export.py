"""analyst_service.export.to_csv: formula cells are neutralised in every CSV the product exports."""

from __future__ import annotations

import csv
import io

import pytest

from analyst_service.export import FORMULA_TRIGGERS, neutralise, to_csv


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://evil.example","click")', "+1+2", "-2+3", "@SUM(A1:A9)",
                                  "=cmd|' /C calc'!A0", "\t=1", "\r=1"])
def test_formula_cells_get_a_quote_prefix(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize(("cell", "text"), [("plain", "plain"), ("a=b", "a=b"), ("", ""), (None, ""), (-5, "-5"),
                                            (-1.5, "-1.5"), (True, "true"), ("'quoted", "'quoted")])
def test_other_cells_are_unchanged(cell: object, text: str) -> None:
    assert neutralise(cell) == text


def test_to_csv_round_trips_through_a_csv_reader() -> None:
    columns = ["id", "=header", "note"]
    rows = [[1, "=HYPERLINK(\"x\")", "a,b"], [2, "-3", "line\nbreak"], [3, None, 'quote"d']]
    parsed = list(csv.reader(io.StringIO(to_csv(columns, rows))))
    assert parsed[0] == ["id", "'=header", "note"]
    assert parsed[1] == ["1", "'=HYPERLINK(\"x\")", "a,b"]
    assert parsed[2] == ["2", "'-3", "line\nbreak"]
    assert parsed[3] == ["3", "", 'quote"d']
    for row in parsed:
        assert not any(cell.startswith(FORMULA_TRIGGERS) for cell in row)


def test_to_csv_refuses_ragged_rows() -> None:
    with pytest.raises(ValueError):
        to_csv(["a", "b"], [[1]])
