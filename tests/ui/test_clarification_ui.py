"""A clarification in the chat UI, in real headless Chromium against the real stack: the planner's
readings appear as buttons, and clicking one runs that reading in a sandbox."""

from __future__ import annotations

import importlib.util
import re

import pytest

from gradio_ui.app import RunningUI
from gradio_ui.client import AnalystClient
from tests.conftest import RunningStack, require
from tests.ui.test_chat_ui import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, ui  # noqa: F401 - the UI fixture

pytestmark = [pytest.mark.browser, pytest.mark.bwrap]
DATASET = "ecommerce"
UNCLEAR = "number of completed orders in the warehouse"  # "warehouse" matches nothing in the dataset


def _expected_count(target: str) -> tuple[str, str]:
    """The first reading's explanation and the count it returns, straight over gRPC."""
    client = AnalystClient(target)
    try:
        final = [e.run for e in client.ask(DATASET, UNCLEAR) if e.HasField("run")][-1]
        assert final.error.reason == "CLARIFICATION_NEEDED", final.error
        option = final.clarification.options[0]
        run = client.submit_plan(DATASET, option.plan)
    finally:
        client.close()
    return option.explanation, str(run.result.rows[0].values[0].int_value)


def test_clarification_readings_are_buttons_that_run(local_stack: RunningStack, ui: RunningUI) -> None:  # noqa: F811
    require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    require(importlib.util.find_spec("playwright") is not None, "Playwright for Python is not installed")
    from playwright.sync_api import expect, sync_playwright

    explanation, count = _expected_count(local_stack.analyst_target)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(ui.url)
            dropdown = page.locator("#dataset-dropdown input")
            dropdown.click()
            page.get_by_role("option", name=re.compile(rf"\({DATASET}\)")).click()
            expect(dropdown).to_have_value(re.compile(rf"\({DATASET}\)"))

            page.locator("#question textarea").fill(UNCLEAR)
            page.locator("#ask-button").click()
            chat = page.locator("#chat")
            expect(chat).to_contain_text("CLARIFICATION_NEEDED")
            reading = page.locator("#reading-0")
            expect(reading).to_be_visible()
            expect(reading).to_contain_text(explanation)
            expect(page.locator("#reading-1")).to_be_hidden()  # one reading offered, one button

            reading.click()
            expect(chat).to_contain_text("Reading 1:")
            expect(chat.get_by_text(re.compile(r"1 row: see the table"))).to_have_count(1)
            table = page.locator("#result-table")
            expect(table).to_contain_text("Result: 1 row")
            expect(table.get_by_test_id("cell-0-0")).to_have_text(count)
            expect(reading).to_be_hidden()  # the answer replaces the question
        finally:
            browser.close()
