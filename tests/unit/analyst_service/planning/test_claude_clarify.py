"""The Claude planner asks back with `clarify` (readings validated like proposals), and the thread's
next question is planned with the question asked back, the readings and what the analyst did."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from google.protobuf import json_format

from analyst_service.planning.base import ClarificationNeededError, PlanningContext, ThreadTurn
from analyst_service.planning.claude_tools import clarify_schema
from csv_analyst.v1 import plan_pb2, run_pb2
from tests.fakes import FakeMessagesApi, RecordedRequest, propose_plan_reply, tool_call_reply
from tests.unit.analyst_service.planning.claude_helpers import STATUS_COUNTS, outcomes, plan, planner_for, shop_dataset

REVENUE = {"base_table": "orders", "select": [{"column": "total", "aggregation": "AGGREGATION_SUM", "alias": "revenue"}]}
ORDERS = {"base_table": "orders", "select": [{"column": "*", "aggregation": "AGGREGATION_COUNT", "alias": "orders"}]}


def clarify_reply(message: str, readings: list[dict[str, Any]]) -> Any:
    """The model asking back; the input is checked against clarify's schema (the fake checks only
    strict tools, and clarify is not strict)."""
    tool_input = {"message": message, "readings": readings}
    jsonschema.Draft202012Validator(clarify_schema()).validate(tool_input)
    return tool_call_reply("clarify", tool_input)


def as_plan(document: dict[str, Any]) -> plan_pb2.Plan:
    return json_format.ParseDict(document, plan_pb2.Plan(dataset_id="shop"))


def test_clarify_raises_the_structured_clarification_with_valid_readings_only() -> None:
    broken = {"base_table": "orders", "select": [{"column": "no_such_column"}]}
    context = PlanningContext()
    with FakeMessagesApi(clarify_reply("Is 'sales' the revenue or the number of orders?",
                                       [REVENUE, broken, ORDERS])) as fake:
        with pytest.raises(ClarificationNeededError) as caught:
            plan(planner_for(fake), shop_dataset(), "What are the sales?", context)
    error = caught.value
    assert error.error_code == run_pb2.ERROR_CODE_CLARIFICATION_NEEDED
    assert error.message == "Is 'sales' the revenue or the number of orders?"
    assert [o.select[0].column for o in error.options] == ["total", "*"]  # the broken reading is dropped
    assert all(o.explanation and o.dataset_id == "shop" for o in error.options)
    assert outcomes(context) == ["clarification"] and fake.protocol_errors == []


def test_readings_that_are_all_invalid_come_back_as_a_correction() -> None:
    broken = {"base_table": "orders", "select": [{"column": "no_such_column"}]}
    context = PlanningContext()
    with FakeMessagesApi(clarify_reply("Which one?", [broken]), clarify_reply("Which one?", [REVENUE])) as fake:
        with pytest.raises(ClarificationNeededError) as caught:
            plan(planner_for(fake), shop_dataset(), "What are the sales?", context)
    [feedback] = fake.requests[1].tool_results()
    assert feedback["is_error"] and "clarify.readings[0].select[0].column" in feedback["content"]
    assert list(context.attempts[0].violations) == ["clarify.readings[0].select[0].column"]
    assert len(caught.value.options) == 1 and outcomes(context) == ["rejected", "clarification"]


def _clarified_turn() -> ThreadTurn:
    clarification = run_pb2.Clarification(message="Is 'sales' the revenue or the number of orders?", options=[
        run_pb2.ClarificationOption(explanation="Sum of total.", plan=as_plan(REVENUE)),
        run_pb2.ClarificationOption(explanation="Count of orders.", plan=as_plan(ORDERS))])
    return ThreadTurn(question="What are the sales?", clarification=clarification,
                      error="the planner asked for clarification")


def _replayed(request: RecordedRequest) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    first, asked, answered = request.messages
    return first, asked, answered


def test_a_chosen_reading_is_replayed_with_the_question_and_the_clarification() -> None:
    chosen = ThreadTurn(plan=as_plan(ORDERS), succeeded=True, answer="1 row(s) (orders): 40")
    context = PlanningContext(history=(_clarified_turn(), chosen), previous_plan=as_plan(ORDERS),
                              previous_question="What are the sales?", previous_answer="1 row(s) (orders): 40")
    by_status = {**ORDERS, "select": [{"column": "status"}, *ORDERS["select"]], "group_by": [{"column": "status"}]}
    with FakeMessagesApi(propose_plan_reply(by_status)) as fake:
        result = plan(planner_for(fake), shop_dataset(), "and per status?", context)
    first, asked, answered = _replayed(fake.requests[0])
    assert "What are the sales?" in first["content"][-1]["text"]
    [clarify] = asked["content"]
    assert clarify["name"] == "clarify" and clarify["input"]["message"].startswith("Is 'sales'")
    assert [r["select"][0]["column"] for r in clarify["input"]["readings"]] == ["total", "*"]
    jsonschema.Draft202012Validator(clarify_schema()).validate(clarify["input"])
    result_block, *_, question = answered["content"]
    assert result_block["type"] == "tool_result" and result_block["tool_use_id"] == clarify["id"]
    assert "The analyst chose reading 2" in result_block["content"] and "40" in result_block["content"]
    assert "and per status?" in question["text"] and "follow-up" in question["text"]
    assert result.group_by[0].column == "status" and fake.protocol_errors == []


def test_a_reply_in_words_is_planned_as_the_answer_to_the_clarification() -> None:
    context = PlanningContext(history=(_clarified_turn(),))
    with FakeMessagesApi(propose_plan_reply(REVENUE)) as fake:
        result = plan(planner_for(fake), shop_dataset(), "the money", context)
    _, asked, answered = _replayed(fake.requests[0])
    assert asked["content"][0]["name"] == "clarify"
    result_block, *_, question = answered["content"]
    assert "shown your message and the 2 valid reading(s)" in result_block["content"]
    assert "reply to your clarification" in question["text"] and "the money" in question["text"]
    assert result.select[0].column == "total" and fake.protocol_errors == []


def test_a_turn_without_an_answer_is_replayed_with_why() -> None:
    refused = ThreadTurn(question="Delete the orders table", error="the question asks for no analysis")
    answered = ThreadTurn(question="How many orders per status?", plan=as_plan(STATUS_COUNTS), succeeded=True,
                          answer="4 row(s)")
    context = PlanningContext(history=(answered, refused))
    with FakeMessagesApi(propose_plan_reply(ORDERS)) as fake:
        plan(planner_for(fake), shop_dataset(), "How many orders?", context)
    messages = fake.requests[0].messages
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[1]["content"][0]["name"] == "propose_plan"
    assert "Delete the orders table" in messages[2]["content"][-1]["text"]
    assert "asks for no analysis" in messages[3]["content"][0]["text"]
    assert fake.protocol_errors == []
