"""The chat UI in a real headless Chromium against the real stack (both gRPC services, bwrap, offline planner).

Clicks a suggested prompt of the `ecommerce` dataset and checks the streamed stages, the result table
(headers and cells equal to what the same question returns over gRPC) and the SQL in the details panel.
Saves docs/screenshots/chat.png for the README.
"""

from __future__ import annotations

import importlib.util
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gradio_ui.app import RunningUI, launch
from gradio_ui.client import AnalystClient
from gradio_ui.render import RunView, result_rows
from tests.conftest import RunningStack, require

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "chat.png"
DATASET = "ecommerce"
# A prompt with a short, fully visible answer: one label column and one count (also drawn as a bar chart).
PROMPT = "How many orders are there per status?"
FOLLOW_UP = "What is the total quantity sold per order status?"
TIMEOUT_MS = 60_000

pytestmark = [pytest.mark.browser, pytest.mark.bwrap]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture()
def ui(local_stack: RunningStack) -> Iterator[RunningUI]:
    """The UI launched on a free port against the local stack.

    Launched and closed from inside the stack's running asyncio loop, as `csv-analyst serve` does; from a
    thread without a running loop Gradio creates event loops it never closes (`gradio.utils.safe_get_lock`),
    and their ResourceWarnings would surface, as errors, in whichever test runs the garbage collector next.
    """

    async def start() -> RunningUI:
        return launch(local_stack.analyst_target, "127.0.0.1", _free_port())

    async def stop(running: RunningUI) -> None:
        running.close()

    running: RunningUI = local_stack.loop.run(start())
    yield running
    local_stack.loop.run(stop(running))


def _expected_run(target: str) -> RunView:
    """The same question asked straight over gRPC: the UI must show exactly this result."""
    client = AnalystClient(target)
    try:
        prompts = list(client.get_dataset(DATASET).prompts)
        assert PROMPT in prompts, f"{PROMPT!r} is no longer a suggested prompt of {DATASET}: {prompts}"
        view = RunView()
        for event in client.ask(DATASET, PROMPT):
            view.apply(event)
    finally:
        client.close()
    assert view.result is not None and view.result.row_count > 0, view.answer()
    return view


def test_suggested_prompt_shows_table_and_sql(local_stack: RunningStack, ui: RunningUI) -> None:
    require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    require(importlib.util.find_spec("playwright") is not None, "Playwright for Python is not installed")
    from playwright.sync_api import expect, sync_playwright

    expected = _expected_run(local_stack.analyst_target)
    assert expected.result is not None
    columns = [column.name for column in expected.result.columns]
    rows = [[str(value) for value in row] for row in result_rows(expected.result)]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(ui.url)

            # The dropdown defaults to the first dataset; choose ecommerce explicitly, as a user would.
            dropdown = page.locator("#dataset-dropdown input")
            expect(dropdown).to_have_value(re.compile(r"\S"))
            dropdown.click()
            page.get_by_role("option", name=re.compile(rf"\({DATASET}\)")).click()
            expect(dropdown).to_have_value(re.compile(rf"\({DATASET}\)"))

            page.locator("#prompts button", has_text=PROMPT).click()

            chat = page.locator("#chat")
            expect(chat).to_contain_text(PROMPT)
            expect(chat).to_contain_text(re.compile(r"\d+ rows?"))  # the final answer of the turn
            for title in ("Planning", "Validating", "Queued", "Executing", "Result"):
                expect(chat).to_contain_text(title)

            # Gradio's Dataframe is an ARIA grid with virtualised rows: read headers and cells by role/test id.
            table = page.locator("#result-table")
            expect(table).to_contain_text(f"Result: {len(rows)} row")
            expect(table.get_by_role("grid")).to_have_attribute("aria-rowcount", str(len(rows) + 1))
            assert [text.strip() for text in table.get_by_role("columnheader").all_inner_texts()] == columns
            shown = [[table.get_by_test_id(f"cell-{r}-{c}").inner_text().strip() for c in range(len(columns))]
                     for r in range(len(rows))]
            assert shown == rows
            assert all(text for text in shown[0]), f"empty cell in the first row: {shown[0]}"
            expect(page.locator("#result-bar")).to_be_visible()  # one label + one count column -> bar chart

            page.get_by_text("Run details").click()
            sql = page.locator("#run-sql")
            expect(sql).to_be_visible()
            for line in expected.sql.splitlines():
                expect(sql).to_contain_text(line.strip())
            expect(sql).to_contain_text('FROM "orders"')
            stats = page.locator("#run-stats")
            expect(stats).to_contain_text("SUCCEEDED")
            expect(stats).to_contain_text("bwrap")  # answered inside a real bubblewrap sandbox
            first_run = re.search(r"Run id\s+(r[0-9a-f]+)", stats.inner_text())
            thread = re.search(r"Thread\s+(r[0-9a-f]+)", stats.inner_text())
            assert first_run and thread, stats.inner_text()

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # A follow-up in the same chat continues the thread of the first answer.
            page.locator("#question textarea").fill(FOLLOW_UP)
            page.locator("#ask-button").click()
            expect(chat.get_by_text(re.compile(r"\d+ rows?: see the table"))).to_have_count(2)
            expect(stats).to_contain_text(re.compile(rf"Thread\s+{thread.group(1)}"))
            expect(stats).to_contain_text(re.compile(rf"Run id\s+(?!{first_run.group(1)})r[0-9a-f]+"))  # a new run
        finally:
            browser.close()
