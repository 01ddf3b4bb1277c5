"""Upload CSV files in the browser, read the ingestion report, and ask about them (issue 13, item 1)."""

from __future__ import annotations

import csv
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.bwrap]

REGIONS = ["North", "South", "East", "West"]


def write_sales(path: Path, rows: int = 120) -> dict[str, float]:
    """A small sales CSV; returns the total revenue per region (what the UI must show, rounded)."""
    totals: dict[str, float] = {}
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["sale_date", "region", "units", "revenue"])
        for i in range(rows):
            region = REGIONS[i % len(REGIONS)]
            revenue = round(100 + (i * 37.37) % 900, 2)
            writer.writerow([(date(2023, 1, 1) + timedelta(days=3 * i)).isoformat(), region, 1 + i % 7, revenue])
            totals[region] = totals.get(region, 0.0) + revenue
    return totals


def test_upload_reports_tables_and_answers_about_them(page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    totals = write_sales(tmp_path / "sales.csv")
    (tmp_path / "regions.csv").write_text("region,manager\nNorth,Ada\nSouth,Bo\nEast,Cy\nWest,Di\n", encoding="utf-8")

    page.locator("#upload input[type=file]").set_input_files([str(tmp_path / "sales.csv"),
                                                              str(tmp_path / "regions.csv")])

    report = page.locator("#upload-report")
    expect(report).to_contain_text("Uploaded")
    expect(report).to_contain_text("sales: 120 rows, 4 columns")
    expect(report).to_contain_text("regions: 4 rows, 2 columns")
    for column, type_name in (("sale_date", "DATE"), ("region", "VARCHAR"), ("units", "BIGINT"), ("revenue", "DOUBLE")):
        expect(report.get_by_role("listitem").filter(has_text=re.compile(rf"^{column} {type_name}:")).first).to_be_visible()
    expect(page.locator("#dataset-dropdown input")).to_have_value(re.compile(r"Uploaded: sales\.csv, regions\.csv "
                                                                             r"\(upload-[0-9a-f]+\)"))

    prompt = "What is the total revenue per region?"
    page.locator("#prompts button", has_text=prompt).click()

    chat = page.locator("#chat")
    expect(chat).to_contain_text(prompt)
    table = chat.locator("table.result-table").last
    expect(table).to_be_visible()
    shown = {row[0]: row[1] for row in
             (cells.split("\t") for cells in table.locator("tbody tr").all_inner_texts())}
    assert shown == {region: f"{total:,.2f}" for region, total in totals.items()}
    assert all("," in value for value in shown.values())  # thousands separators on sums over 1,000


def test_bad_file_shows_the_typed_error_plainly(page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "junk.csv").write_bytes(b"a,b\n\xff\xfe\x00\x01,\x80\x81\n")  # no encoding fits

    page.locator("#upload input[type=file]").set_input_files([str(tmp_path / "empty.csv")])
    report = page.locator("#upload-report")
    expect(report).to_contain_text("Could not upload empty.csv")
    expect(report).to_contain_text("INVALID_ARGUMENT")
    expect(report).to_contain_text("is empty")

    page.locator("#upload input[type=file]").set_input_files([str(tmp_path / "junk.csv")])
    expect(report).to_contain_text("Could not upload junk.csv")
    expect(report).to_contain_text("not valid UTF-8")
    expect(report).to_contain_text("could not be detected")
    expect(page.locator("#dataset-dropdown input")).not_to_have_value(re.compile("upload-"))
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)  # no red badges or toasts


def test_the_report_lists_the_problems_found(page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # Semicolons with decimal commas, a duplicate and an empty header name, an empty column, Latin-1.
    (tmp_path / "prices.csv").write_bytes("item;item;;price;note\nCafé;a;1;1,5;\nThé;b;2;2,25;\n".encode("latin-1"))
    (tmp_path / "clean.csv").write_text("k,v\na,1\n", encoding="utf-8")
    page.locator("#upload input[type=file]").set_input_files([str(tmp_path / "prices.csv"),
                                                              str(tmp_path / "clean.csv")])
    report = page.locator("#upload-report")
    expect(report).to_contain_text("Problems found (6)")
    items = report.get_by_role("listitem")
    for text in ("prices (encoding fixed): the file was not UTF-8",
                 "prices (renamed column): column 2 has 'item' in the header; it is named 'item_1'",
                 "prices (renamed column): column 3 has an empty name in the header",
                 "prices (delimiter detected): values are separated by ';', not commas",
                 "prices (decimal comma): column 'price' has numbers with decimal commas",
                 "prices (empty column): column 'note' is empty in all 2 rows"):
        expect(items.filter(has_text=text)).to_have_count(1)
    expect(items.filter(has_text=re.compile(r"^price DOUBLE:"))).to_have_count(1)  # read as numbers
    expect(report).not_to_contain_text("clean (")


def test_an_upload_can_be_deleted(page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    (tmp_path / "scratch.csv").write_text("k,v\na,1\nb,2\n", encoding="utf-8")
    page.locator("#upload input[type=file]").set_input_files([str(tmp_path / "scratch.csv")])
    dropdown = page.locator("#dataset-dropdown input")
    expect(dropdown).to_have_value(re.compile(r"Uploaded: scratch\.csv \(upload-[0-9a-f]+\)"))
    dataset_id = re.search(r"upload-[0-9a-f]+", dropdown.input_value()).group(0)  # type: ignore[union-attr]
    delete = page.locator("#delete-dataset")
    expect(delete).to_be_visible()

    delete.click()
    expect(page.locator("#upload-report")).to_contain_text(f"Deleted {dataset_id} (Uploaded: scratch.csv)")
    expect(dropdown).not_to_have_value(re.compile(dataset_id))
    dropdown.click()
    expect(page.get_by_role("option", name=re.compile(r"\(ecommerce\)"))).to_be_visible()
    expect(page.get_by_role("option", name=re.compile(dataset_id))).to_have_count(0)
    page.keyboard.press("Escape")
    # The first dataset is selected instead: a demo dataset, which has no delete control.
    expect(dropdown).to_have_value(re.compile(r"\(ecommerce\)"))
    expect(delete).to_be_hidden()
    page.reload()  # a fresh page lists it no more either
    expect(dropdown).to_have_value(re.compile(r"\S"))
    dropdown.click()
    expect(page.get_by_role("option", name=re.compile(r"\(ecommerce\)"))).to_be_visible()
    expect(page.get_by_role("option", name=re.compile(dataset_id))).to_have_count(0)
