"""Fixtures of the browser tests: a real stack with its own upload store, the UI launched against it,
and one headless Debian Chromium (driven by Playwright) shared by the tests of a session.

Each test gets a fresh browser context (its own page and downloads) and sees what a user sees.
"""

from __future__ import annotations

import importlib.util
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gradio_ui.app import RunningUI, launch
from tests.conftest import RunningStack, require, start_stack, stop_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Generous: the first answer of a session on a loaded 2-core machine includes cold sandboxes.
TIMEOUT_MS = 120_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def ui_stack(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A real stack (both services, bwrap, offline planner) whose uploads stay in a temporary directory.

    Results may hold up to 1,000 rows, so a 731-row result is whole (the chat shows 200 of them).
    Python mode is on, so a Python run's details can be shown.
    """
    base = tmp_path_factory.mktemp("ui-stack")
    running = start_stack(datasets_dir, base / "capsules.sqlite3", upload_dir=base / "uploads", max_rows=1000,
                          enable_python=True)
    yield running
    stop_stack(running)


@pytest.fixture(scope="session")
def ui(ui_stack: RunningStack) -> Iterator[RunningUI]:
    """The UI launched on a free port against the stack.

    Launched and closed from inside the stack's running asyncio loop, as `csv-analyst serve` does; from a
    thread without a running loop Gradio creates event loops it never closes (`gradio.utils.safe_get_lock`),
    and their ResourceWarnings would surface, as errors, in whichever test runs the garbage collector next.
    """

    async def start() -> RunningUI:
        return launch(ui_stack.analyst_target, "127.0.0.1", _free_port())

    async def stop(running: RunningUI) -> None:
        running.close()

    running: RunningUI = ui_stack.loop.run(start())
    yield running
    ui_stack.loop.run(stop(running))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (never `playwright install`).

    One per test module, not per session: Playwright's synchronous API keeps an event loop
    running in the main thread while it is open, and every later test that calls asyncio.run()
    (most unit tests of the services) would fail with "cannot be called from a running event loop".
    """
    require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    require(importlib.util.find_spec("playwright") is not None, "Playwright for Python is not installed")
    from playwright.sync_api import expect, sync_playwright

    # expect() waits 5 s by default: too short for a first answer on a loaded 2-core machine.
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser: Any, ui: RunningUI) -> Iterator[Any]:
    """A fresh page (own context: no shared storage or downloads) on the UI, datasets loaded."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(ui.url)
        expect(page.locator("#dataset-dropdown input")).to_have_value(re.compile(r"\S"))
        yield page
        # Shown by pytest only when the test failed: what the user saw last.
        print("chat as shown:", page.locator("#chat").inner_text(timeout=5000)[-3000:])
    finally:
        context.close()


def choose_dataset(page: Any, dataset_id: str) -> None:
    """Pick a dataset in the dropdown, as a user does."""
    from playwright.sync_api import expect

    dropdown = page.locator("#dataset-dropdown input")
    chosen = re.compile(rf"\({re.escape(dataset_id)}\)")
    if chosen.search(dropdown.input_value()) and chosen.search(page.locator("#dataset-summary").inner_text()):
        # Already chosen and shown: choosing it again would start a switch (clearing the chat) whose end
        # nothing on the page marks, so a question asked right after could be wiped on a loaded machine.
        return
    dropdown.click()
    page.get_by_role("option", name=re.compile(rf"\({re.escape(dataset_id)}\)")).click()
    expect(dropdown).to_have_value(re.compile(rf"\({re.escape(dataset_id)}\)"))
    # Switching clears the chat and then shows the dataset's summary: a question asked before the
    # switch is over could be wiped by it on a loaded machine.
    expect(page.locator("#dataset-summary")).to_contain_text(f"({dataset_id})")


def replace_plan(page: Any, text: str) -> None:
    """Replace the text of the plan editor (CodeMirror) as a user does: select all, type over it."""
    editor = page.locator("#plan-editor .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def ask(page: Any, question: str) -> None:
    """Type a question and press Ask."""
    page.locator("#question textarea").fill(question)
    page.locator("#ask-button").click()
