"""A large result: the chat shows 200 of its rows, the Current answer panel pages through every row
(ReadResult), and the full result downloads as CSV, formulas neutralised, through ExportResult
(issue 13, item 3)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import replace_plan

pytestmark = [pytest.mark.browser, pytest.mark.bwrap]

ROWS = 731


def first_cells(page: Any) -> list[str]:
    """The first cell of every row of the page the pager shows."""
    return [row.split("\t")[0] for row in page.locator("#result-page tbody tr").all_inner_texts()]


def test_a_731_row_result_pages_and_downloads_in_full(page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    source = tmp_path / "ledger.csv"
    with source.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["entry", "note", "amount"])
        for i in range(ROWS):
            writer.writerow([i, "=1+2" if i == 0 else f"note {i}", round(i * 1.25, 2)])
    page.locator("#upload input[type=file]").set_input_files([str(source)])
    expect(page.locator("#upload-report")).to_contain_text(f"ledger: {ROWS} rows")
    dataset_id = re.search(r"\((upload-[0-9a-f]+)\)", page.locator("#dataset-dropdown input").input_value())
    assert dataset_id

    # Every row, in file order: a plan no question of the offline planner asks for, so edit one.
    page.locator("#prompts button", has_text="How many rows are in ledger?").click()
    chat = page.locator("#chat")
    expect(chat.locator("table.result-table")).to_have_count(1)
    replace_plan(page, json.dumps({"dataset_id": dataset_id.group(1), "base_table": "ledger",
                                   "order_by": [{"key": "entry"}], "limit": 1000}))
    page.locator("#run-plan").click()
    expect(page.locator("#plan-status")).to_contain_text("The edited plan ran.")

    tables = chat.locator("table.result-table")
    expect(tables).to_have_count(2)
    expect(chat.locator("details.answer-table summary").last).to_have_text(
        f"Table (showing 200 of {ROWS} rows; page through all under Current answer or download the CSV)")
    expect(tables.last.locator("tbody tr")).to_have_count(200)

    pager, previous, following = page.locator("#result-page"), page.locator("#page-previous"), page.locator("#page-next")
    expect(pager).to_contain_text(f"Rows 1–200 of {ROWS}")
    expect(previous).to_be_disabled()
    following.click()
    expect(pager).to_contain_text(f"Rows 201–400 of {ROWS}")
    expect(pager.locator("tbody tr")).to_have_count(200)
    assert first_cells(page) == [str(i) for i in range(200, 400)]  # page 2 is rows 201-400, in order
    following.click()
    following.click()
    expect(pager).to_contain_text(f"Rows 601–{ROWS} of {ROWS}")
    assert first_cells(page) == [str(i) for i in range(600, ROWS)]
    expect(following).to_be_disabled()
    previous.click()
    expect(pager).to_contain_text(f"Rows 401–600 of {ROWS}")
    assert first_cells(page)[:2] == ["400", "401"]

    with page.expect_download() as download_info:
        page.locator("#csv-download").click()
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert rows[0] == ["entry", "note", "amount"]
    assert len(rows) == ROWS + 1
    assert rows[1] == ["0", "'=1+2", "0.0"]  # the formula cell is neutralised, numbers stay numbers
    assert rows[-1] == [str(ROWS - 1), f"note {ROWS - 1}", str(round((ROWS - 1) * 1.25, 2))]
