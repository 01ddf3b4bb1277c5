"""Every answer keeps its own table, chart and details in the conversation (issue 13, item 2).

Three questions about the `ecommerce` demo dataset: revenue by month (a line chart, months as
"Jan 2024", money with thousands separators and two decimals), orders per status (a bar chart) and
one average (one row: no chart). All three tables stay in the chat, with cells equal to what the same
questions return over gRPC, and each answer's details show its plan and its SQL laid out and highlighted.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from gradio_ui.client import AnalystClient
from gradio_ui.render import RunView, result_rows
from tests.conftest import RunningStack
from tests.ui.conftest import ask, choose_dataset

pytestmark = [pytest.mark.browser, pytest.mark.bwrap]

DATASET = "ecommerce"
BY_MONTH = "What is the total revenue by month?"
PER_STATUS = "How many orders are there per status?"
ONE_NUMBER = "What is the average order total for completed orders?"
MONEY = re.compile(r"^-?\d{1,3}(,\d{3})*\.\d{2}$")


def _rows(target: str, question: str) -> list[list[Any]]:
    """The same question asked straight over gRPC."""
    client = AnalystClient(target)
    try:
        view = RunView()
        for event in client.ask(DATASET, question):
            view.apply(event)
    finally:
        client.close()
    assert view.result is not None and view.result.row_count > 0, view.summary()
    return result_rows(view.result)


def _table(answer: Any) -> list[list[str]]:
    return [row.split("\t") for row in answer.locator("table.result-table tbody tr").all_inner_texts()]


def test_each_answer_keeps_its_table_chart_and_details(page: Any, ui_stack: RunningStack) -> None:
    from playwright.sync_api import expect

    months = _rows(ui_stack.analyst_target, BY_MONTH)
    statuses = _rows(ui_stack.analyst_target, PER_STATUS)
    assert len(months) >= 2 and len(statuses) >= 2

    choose_dataset(page, DATASET)
    chat = page.locator("#chat")
    answers = chat.locator(".message-row:has(table.result-table)")
    for count, question in enumerate((BY_MONTH, PER_STATUS, ONE_NUMBER), start=1):
        ask(page, question)
        expect(answers).to_have_count(count)
    expect(chat.locator("table.result-table")).to_have_count(3)

    by_month, per_status, one_number = answers.nth(0), answers.nth(1), answers.nth(2)
    # Months as months, money with thousands separators and two decimals, in the result's order.
    assert _table(by_month) == [[datetime.fromisoformat(str(month)).strftime("%b %Y"), f"{revenue:,.2f}"]
                                for month, revenue in months]
    assert all(MONEY.match(revenue) for _, revenue in _table(by_month))
    assert _table(per_status) == [[str(status), f"{count:,}"] for status, count in statuses]
    assert len(_table(one_number)) == 1

    # A line over time, bars over categories, and no chart for a single number.
    expect(by_month.locator("img.result-chart.chart-line")).to_be_visible()
    expect(per_status.locator("img.result-chart.chart-bar")).to_be_visible()
    expect(one_number.locator("img.result-chart")).to_have_count(0)

    # Every turn ends with a Done stage.
    expect(chat.get_by_text("Done", exact=True)).to_have_count(3)

    # The first answer's details (collapsed until asked for): its plan and its SQL, laid out and highlighted.
    details = by_month.locator("details.answer-details")
    sql = details.locator("code.language-sql")
    expect(sql).to_be_hidden()
    details.locator("summary").click()
    expect(sql).to_be_visible()
    text = sql.inner_text()
    assert re.search(r"^FROM \"orders\"", text, re.MULTILINE), text  # one clause per line
    assert "DATE_TRUNC" in text.upper()
    expect(sql.locator(".token.keyword").first).to_be_visible()
    expect(details.locator("code.language-json")).to_contain_text('"base_table": "orders"')
    expect(details.locator(".query-type")).to_have_text("Query type: plan")
    expect(details).to_contain_text("SUCCEEDED")
    # Answered in a bubblewrap sandbox, or repeated from the result cache (the same question went over gRPC first).
    expect(details).to_contain_text(re.compile(r"Runner mode\s+(bwrap|cache)"))
