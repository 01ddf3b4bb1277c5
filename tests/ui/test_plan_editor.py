"""Edit the current answer's plan as JSON and run it through SubmitRun (issue 13, item 6)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format

from gradio_ui.client import AnalystClient
from gradio_ui.render import RunView
from tests.conftest import RunningStack
from tests.ui.conftest import ask, choose_dataset, replace_plan

pytestmark = [pytest.mark.browser, pytest.mark.bwrap]

DATASET = "ecommerce"
QUESTION = "How many orders are there per status?"


def _plan(target: str) -> dict[str, Any]:
    """The plan the same question gets over gRPC, as the editor shows it (proto field names)."""
    client = AnalystClient(target)
    try:
        view = RunView()
        for event in client.ask(DATASET, QUESTION):
            view.apply(event)
    finally:
        client.close()
    assert view.plan is not None
    plan: dict[str, Any] = json_format.MessageToDict(view.plan, preserving_proto_field_name=True)
    return plan


def test_edited_plan_runs_and_an_invalid_edit_shows_its_field_path(page: Any, ui_stack: RunningStack) -> None:
    from playwright.sync_api import expect

    plan = _plan(ui_stack.analyst_target)
    assert plan["base_table"] == "orders" and plan["select"]

    choose_dataset(page, DATASET)
    ask(page, QUESTION)
    chat = page.locator("#chat")
    expect(chat.locator("table.result-table")).to_have_count(1)
    editor = page.locator("#plan-editor")
    expect(editor).to_contain_text('"base_table": "orders"')
    status = page.locator("#plan-status")

    # A valid edit: keep two rows only. It runs, and its answer joins the conversation.
    replace_plan(page, json.dumps({**plan, "limit": 2}, indent=2))
    page.locator("#run-plan").click()
    expect(status).to_contain_text("The edited plan ran.")
    expect(chat.locator("table.result-table")).to_have_count(2)
    expect(chat.locator("table.result-table").last.locator("tbody tr")).to_have_count(2)
    expect(chat.locator("[data-testid=user]").last).to_have_text("Run the edited plan")

    # An invalid edit: an unknown column. Refused, with the violation's field path shown.
    broken = {**plan, "select": [{**plan["select"][0], "column": "no_such_column"}, *plan["select"][1:]]}
    replace_plan(page, json.dumps(broken, indent=2))
    page.locator("#run-plan").click()
    expect(status).to_contain_text("VALIDATION_ERROR")
    expect(status.locator("code", has_text="plan.select[0].column")).to_be_visible()
    expect(chat.locator("table.result-table")).to_have_count(2)  # no new table
    expect(editor).to_contain_text("no_such_column")  # the user's text stays to be fixed

    # Not a Plan at all: said plainly, nothing runs.
    replace_plan(page, '{"base_table": "orders", "no_such_field": 1}')
    page.locator("#run-plan").click()
    expect(status).to_contain_text("The plan is not valid JSON for a Plan")
    expect(status).to_contain_text("no_such_field")
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)
