"""The details panel of an answer names its query type and shows a Python run's code, formatted
(issue 14, UI item)."""

from __future__ import annotations

import re
from typing import Any

import grpc
import pytest

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from gradio_ui.app import RunningUI
from tests.conftest import RunningStack

pytestmark = [pytest.mark.browser, pytest.mark.bwrap]

# Written cramped on purpose: the panel lays it out with Python's own unparser.
CODE = "totals=orders.groupby('status',as_index=False)['total'].sum()\nresult_df=totals.sort_values('total',ascending=False)"


def test_a_python_run_shows_its_type_and_code(page: Any, ui: RunningUI, ui_stack: RunningStack) -> None:
    from playwright.sync_api import expect

    with grpc.insecure_channel(ui_stack.analyst_target) as channel:
        run = analyst_service_pb2_grpc.AnalystServiceStub(channel).SubmitRun(
            api.SubmitRunRequest(dataset_id="ecommerce", python_code=CODE), timeout=120).run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error

    page.goto(f"{ui.url}/?run={run.run_id}")
    answer = page.locator("#chat .message-row:has(details.answer-details)").last
    expect(answer.locator("table.result-table")).to_be_visible()
    details = answer.locator("details.answer-details")
    details.locator("summary").click()
    expect(details.locator(".query-type")).to_have_text("Query type: python")
    code = details.locator("code.language-python")
    expect(code).to_be_visible()
    assert code.inner_text().strip().splitlines() == [
        "totals = orders.groupby('status', as_index=False)['total'].sum()",
        "result_df = totals.sort_values('total', ascending=False)"]
    expect(code.locator(".token").first).to_be_visible()  # highlighted
    expect(details.locator("code.language-sql")).to_have_count(0)
    expect(details).to_contain_text(re.compile(r"State\s+SUCCEEDED"))
