"""The whole plan runs once before a Claude proposal is accepted: an engine error, or an empty result
with a filter value no profiled value matches, comes back to the model once as a correction."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from analyst_service.planning.base import PlanningContext, ProbeQueryError
from analyst_service.planning.claude_dry_run import dry_run_sql, unprofiled_values
from csv_analyst.v1 import plan_pb2
from tests.fakes import FakeMessagesApi, propose_plan_reply
from tests.unit.analyst_service.planning.claude_helpers import outcomes, plan, planner_for, shop_dataset


def _status(op: str, value: str) -> dict[str, Any]:
    return {"base_table": "orders", "select": [{"column": "*", "aggregation": "AGGREGATION_COUNT", "alias": "n"}],
            "filters": [{"column": "status", "op": op, "values": [{"string_value": value}]}]}


class Sandbox:
    """A probe that answers the whole-plan dry run with scripted rows (or an engine error)."""

    def __init__(self, *answers: list[list[str]] | Exception | None) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    async def __call__(self, sql: str) -> list[list[str]] | None:
        self.asked.append(sql)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_the_dry_run_wraps_the_plans_sql_and_asks_for_one_row() -> None:
    assert dry_run_sql('SELECT "status" FROM "orders" ORDER BY 1 LIMIT 5') == \
        'SELECT 1 FROM (SELECT "status" FROM "orders" ORDER BY 1 LIMIT 5) AS dry_run LIMIT 1'


def test_an_empty_result_from_an_unprofiled_contains_value_is_corrected() -> None:
    sandbox = Sandbox([], [["1"]])
    context = PlanningContext(probe=sandbox)
    with FakeMessagesApi(propose_plan_reply(_status("FILTER_OPERATOR_CONTAINS", "canceled")),
                         propose_plan_reply(_status("FILTER_OPERATOR_CONTAINS", "Cancel"))) as fake:
        result = plan(planner_for(fake), shop_dataset(), "How many cancelled orders?", context)
    [feedback] = fake.requests[1].tool_results()
    assert feedback["is_error"] and "DRY_RUN" in feedback["content"] and "returns no row" in feedback["content"]
    assert ("'canceled' matches none of the profiled values of orders.status; closest profiled values: 'cancelled'"
            in feedback["content"])
    assert list(context.attempts[0].violations) == ["plan.filters[0].values[0]"]
    assert sandbox.asked[0].startswith("SELECT 1 FROM (SELECT") and sandbox.asked[0].endswith("AS dry_run LIMIT 1")
    assert result.filters[0].values[0].string_value == "Cancel" and outcomes(context) == ["rejected", "accepted"]


def test_an_empty_result_with_known_values_is_the_answer() -> None:
    sandbox = Sandbox([])
    context = PlanningContext(probe=sandbox)
    with FakeMessagesApi(propose_plan_reply(_status("FILTER_OPERATOR_EQ", "pending"))) as fake:
        result = plan(planner_for(fake), shop_dataset(), "How many pending orders?", context)
    assert len(fake.requests) == 1 and len(sandbox.asked) == 1 and result.filters[0].values[0].string_value == "pending"


def test_an_engine_error_is_corrected_once_then_the_same_plan_stands() -> None:
    sandbox = Sandbox(ProbeQueryError("Conversion Error: Could not convert string 'soon' to DATE"))
    context = PlanningContext(probe=sandbox)
    odd = {**_status("FILTER_OPERATOR_EQ", "pending"), "filters": [
        {"column": "order_date", "op": "FILTER_OPERATOR_GE", "values": [{"string_value": "soon"}]}]}
    with FakeMessagesApi(propose_plan_reply(odd), propose_plan_reply(odd)) as fake:
        plan(planner_for(fake), shop_dataset(), "How many orders soon?", context)
    [feedback] = fake.requests[1].tool_results()
    assert feedback["is_error"] and "Could not convert string" in feedback["content"]
    assert len(sandbox.asked) == 1  # proposed again unchanged: accepted without another dry run
    assert outcomes(context) == ["rejected", "accepted"]


def test_a_dry_run_that_cannot_run_holds_nothing_back() -> None:
    sandbox = Sandbox(None)
    with FakeMessagesApi(propose_plan_reply(_status("FILTER_OPERATOR_CONTAINS", "canceled"))) as fake:
        result = plan(planner_for(fake), shop_dataset(), "How many cancelled orders?", PlanningContext(probe=sandbox))
    assert len(fake.requests) == 1 and result.filters[0].values[0].string_value == "canceled"


def test_unprofiled_values_cover_each_text_operator() -> None:
    dataset = shop_dataset()
    for op, value, flagged in (("FILTER_OPERATOR_STARTSWITH", "Ship", False), ("FILTER_OPERATOR_STARTSWITH", "hip", True),
                               ("FILTER_OPERATOR_ENDSWITH", "led", False), ("FILTER_OPERATOR_IN", "Pending", True),
                               ("FILTER_OPERATOR_NE", "nothing", False)):
        proposal = json_format.ParseDict(_status(op, value), plan_pb2.Plan())
        assert bool(unprofiled_values(proposal, dataset)) is flagged, (op, value)
