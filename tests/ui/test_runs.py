"""Downloads, shareable links and the footer of an answer (issue 13, items 4 and 8)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gradio_ui.client import AnalystClient
from gradio_ui.app import RunningUI
from tests.conftest import RunningStack
from tests.ui.conftest import ask, choose_dataset

pytestmark = [pytest.mark.browser, pytest.mark.bwrap]

DATASET = "ecommerce"
QUESTION = "How many orders are there per status?"
# Asked by no other test: answered in a real sandbox, not repeated from the result cache.
FRESH_QUESTION = "How many orders have a total of more than 500?"


def _answer_run_id(page: Any) -> str:
    details = page.locator("#chat details.answer-details").last
    details.locator("summary").click()
    found = re.search(r"Run id\s+(r[0-9a-f]+)", details.inner_text())
    assert found, details.inner_text()
    return found.group(1)


def test_capsule_download_and_footer(page: Any, ui_stack: RunningStack, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    choose_dataset(page, DATASET)
    ask(page, FRESH_QUESTION)
    expect(page.locator("#chat table.result-table")).to_have_count(1)
    run_id = _answer_run_id(page)

    client = AnalystClient(ui_stack.analyst_target)
    try:
        version = client.get_dataset(DATASET).version_hash
    finally:
        client.close()
    footer = page.locator("#footer")
    expect(footer).to_contain_text("Runner mode: bwrap")
    expect(footer).to_contain_text(f"Dataset {DATASET} version {version[:12]}")
    expect(footer).to_contain_text(run_id)

    with page.expect_download() as download_info:
        page.locator("#capsule-download").click()
    download = download_info.value
    assert download.suggested_filename == f"capsule-{run_id}.json"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    capsule = json.loads(saved.read_text(encoding="utf-8"))
    assert capsule["name"] == f"capsules/{run_id}"
    assert capsule["run"]["run_id"] == run_id
    assert capsule["run"]["state"] == "RUN_STATE_SUCCEEDED"
    assert capsule["run"]["question"] == FRESH_QUESTION


def test_chart_download_is_the_answer_chart_as_png(page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    choose_dataset(page, DATASET)
    ask(page, QUESTION)
    expect(page.locator("#chat img.result-chart.chart-bar")).to_be_visible()
    with page.expect_download() as download_info:
        page.locator("#chart-download").click()
    download = download_info.value
    assert re.fullmatch(r"chart-r[0-9a-f]+\.png", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    ask(page, "What is the average order total for completed orders?")  # one number: no chart
    expect(page.locator("#chat table.result-table")).to_have_count(2)
    expect(page.locator("#chart-download")).to_be_hidden()


def test_shared_link_opens_the_run_in_a_fresh_page(page: Any, browser: Any, ui: RunningUI) -> None:
    from playwright.sync_api import expect

    choose_dataset(page, DATASET)
    ask(page, QUESTION)
    answer_table = page.locator("#chat table.result-table")
    expect(answer_table).to_have_count(1)
    rows = answer_table.locator("tbody tr").all_inner_texts()
    run_id = _answer_run_id(page)
    link = page.locator("#chat a.share-link")
    expect(link).to_have_attribute("href", f"?run={run_id}")

    fresh = browser.new_context(viewport={"width": 1400, "height": 1600})  # no state shared with the first page
    try:
        shared = fresh.new_page()
        shared.goto(f"{ui.url}/?run={run_id}")
        chat = shared.locator("#chat")
        expect(chat.locator("[data-testid=user]")).to_have_text(QUESTION)
        expect(chat.locator("table.result-table")).to_have_count(1)
        assert chat.locator("table.result-table tbody tr").all_inner_texts() == rows
        expect(chat.locator("img.result-chart.chart-bar")).to_be_visible()
        details = chat.locator("details.answer-details")
        details.locator("summary").click()
        expect(details).to_contain_text(run_id)
        expect(details.locator("code.language-sql")).to_contain_text('FROM "orders"')
        expect(shared.locator("#dataset-dropdown input")).to_have_value(re.compile(rf"\({DATASET}\)"))
        expect(shared.locator("#footer")).to_contain_text(run_id)
        expect(shared.locator("#plan-editor")).to_contain_text('"base_table": "orders"')

        shared.goto(f"{ui.url}/?run=rdoesnotexist")
        expect(shared.locator("#chat")).to_contain_text("There is no run `rdoesnotexist`".replace("`", ""))
    finally:
        fresh.close()
