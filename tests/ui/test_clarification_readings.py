"""A clarification in the chat UI: the planner's readings appear as buttons, and clicking one runs
that reading in a sandbox as the next answer (issue 10's structured clarifications; issue 13, item 5)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc
from gradio_ui.client import AnalystClient
from tests.conftest import RunningStack
from tests.ui.conftest import ask, choose_dataset

pytestmark = [pytest.mark.browser, pytest.mark.bwrap]
DATASET = "ecommerce"
UNCLEAR = "number of completed orders in the warehouse"  # "warehouse" matches nothing in the dataset


def _first_reading(target: str) -> tuple[str, int, int]:
    """The first reading's explanation, how many readings there are, and the count the reading gives."""
    client = AnalystClient(target)
    try:
        final = [e.run for e in client.ask(DATASET, UNCLEAR) if e.HasField("run")][-1]
        assert final.error.reason == "CLARIFICATION_NEEDED", final.error
        options = final.clarification.options
        run = client.submit_plan(DATASET, options[0].plan)
    finally:
        client.close()
    return options[0].explanation, len(options), run.result.rows[0].values[0].int_value


def test_readings_are_buttons_that_run(page: Any, ui_stack: RunningStack) -> None:
    from playwright.sync_api import expect

    explanation, offered, count = _first_reading(ui_stack.analyst_target)
    choose_dataset(page, DATASET)
    # The dataset's questions are shown once switching datasets (which clears the chat) is done.
    expect(page.locator("#prompts button").first).to_be_visible()
    ask(page, UNCLEAR)
    chat = page.locator("#chat")
    expect(chat.locator("[data-testid=user]")).to_have_text(UNCLEAR)
    reading = page.locator("#reading-0")
    expect(reading).to_be_visible()
    expect(reading).to_contain_text(explanation)
    for index in range(offered, 3):
        expect(page.locator(f"#reading-{index}")).to_be_hidden()  # one button per reading offered
    reading.click()
    expect(chat).to_contain_text("Reading 1:")
    expect(chat).to_contain_text(f"{count:,}")
    expect(reading).to_be_hidden()  # the answer replaces the question
    # The reading ran in the question's thread: the thread's next question is planned knowing it.
    with grpc.insecure_channel(ui_stack.analyst_target) as channel:
        chosen, asked = analyst_service_pb2_grpc.AnalystServiceStub(channel).ListCapsules(
            api.ListCapsulesRequest(page_size=2), timeout=10).capsules
    assert asked.run.question == UNCLEAR and asked.run.clarification.options
    assert chosen.run.question == "" and chosen.run.thread_id == asked.run.thread_id != ""
