"""The chat UI in a real headless Chromium against the real stack (both gRPC services, bwrap, offline planner).

Clicks a suggested prompt of the `ecommerce` dataset and checks the streamed stages, the answer's table
(headers and cells equal to what the same question returns over gRPC) and its SQL; then a follow-up
continues the same thread in a new run. (Screenshots for the README come from docs/screenshots/generate.py,
not from the tests.)
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from gradio_ui.client import AnalystClient
from gradio_ui.render import RunView, result_rows
from tests.conftest import RunningStack
from tests.ui.conftest import ask, choose_dataset

DATASET = "ecommerce"
# A prompt with a short, fully visible answer: one label column and one count (also drawn as a bar chart).
PROMPT = "How many orders are there per status?"
FOLLOW_UP = "What is the total quantity sold per order status?"

pytestmark = [pytest.mark.browser, pytest.mark.bwrap]


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
    assert view.result is not None and view.result.row_count > 0, view.summary()
    return view


def _ids(details: Any) -> tuple[str, str]:
    text = details.inner_text()
    run_id = re.search(r"Run id\s+(r[0-9a-f]+)", text)
    thread = re.search(r"Thread\s+(r[0-9a-f]+)", text)
    assert run_id and thread, text
    return run_id.group(1), thread.group(1)


def test_suggested_prompt_shows_table_and_sql_and_follow_up_keeps_the_thread(
        page: Any, ui_stack: RunningStack) -> None:
    from playwright.sync_api import expect

    expected = _expected_run(ui_stack.analyst_target)
    assert expected.result is not None
    columns = [column.name for column in expected.result.columns]
    rows = [[str(value) for value in row] for row in result_rows(expected.result)]

    choose_dataset(page, DATASET)
    page.locator("#prompts button", has_text=PROMPT).click()

    chat = page.locator("#chat")
    expect(chat.locator("[data-testid=user]")).to_have_text(PROMPT)
    expect(chat).to_contain_text(f"{len(rows)} rows")  # the answer's summary
    # (A repeat from the result cache skips the Queued and Executing stages.)
    for title in ("Planning", "Validating", "Result", "Done"):
        expect(chat.get_by_text(title, exact=True).first).to_be_visible()

    table = chat.locator("table.result-table")
    expect(table).to_have_count(1)
    assert [text.strip() for text in table.locator("thead th").all_inner_texts()] == columns
    shown = [row.split("\t") for row in table.locator("tbody tr").all_inner_texts()]
    assert shown == [[label, f"{int(count):,}"] for label, count in rows]
    expect(chat.locator("img.result-chart.chart-bar")).to_be_visible()  # one label + one count -> bars

    details = chat.locator("details.answer-details")
    details.locator("summary").click()
    sql = details.locator("code.language-sql")
    expect(sql).to_contain_text('FROM "orders"')
    expect(details).to_contain_text("SUCCEEDED")
    # Answered in a bubblewrap sandbox, or repeated from the result cache (asked over gRPC first).
    expect(details).to_contain_text(re.compile(r"Runner mode\s+(bwrap|cache)"))
    first_run, thread = _ids(details)

    # A follow-up in the same chat continues the thread of the first answer, in a new run.
    ask(page, FOLLOW_UP)
    expect(chat.locator("table.result-table")).to_have_count(2)
    expect(table.first.locator("tbody tr")).to_have_count(len(rows))  # the first answer keeps its table
    follow_up = chat.locator("details.answer-details").last
    follow_up.locator("summary").click()
    second_run, second_thread = _ids(follow_up)
    assert second_thread == thread and second_run != first_run
