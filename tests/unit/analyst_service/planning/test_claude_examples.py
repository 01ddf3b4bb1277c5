"""Few-shot examples from verified runs: similar ones, still valid on today's dataset, after the cached prefix."""

from __future__ import annotations

import json

from google.protobuf import json_format

from analyst_service.planning.base import PlanningContext
from analyst_service.planning.claude_examples import select_examples
from csv_analyst.v1 import plan_pb2
from tests.fakes import FakeMessagesApi, propose_plan_reply
from tests.unit.analyst_service.planning.claude_helpers import STATUS_COUNTS, plan, planner_for, shop_dataset

BY_STATUS = json_format.ParseDict(STATUS_COUNTS, plan_pb2.Plan(dataset_id="shop", notes="n", explanation="e"))
REVENUE = json_format.ParseDict({"base_table": "orders", "select": [{"column": "total", "aggregation": "AGGREGATION_SUM"}]},
                                plan_pb2.Plan())
GONE = json_format.ParseDict({"base_table": "orders", "select": [{"column": "discount"}]}, plan_pb2.Plan())


def test_similar_valid_examples_are_chosen_most_similar_first() -> None:
    candidates = [("What is the total revenue?", REVENUE), ("How many orders per status?", BY_STATUS),
                  ("How many orders had a discount per status?", GONE), ("Number of orders for each status", BY_STATUS)]
    chosen = select_examples("How many orders per status in 2024?", candidates, shop_dataset())
    assert [c["question"] for c in chosen] == ["How many orders per status?", "Number of orders for each status"]
    assert chosen[0]["plan"]["group_by"] == [{"column": "status"}]
    assert not {"dataset_id", "explanation", "notes"} & set(chosen[0]["plan"])


def test_examples_go_after_the_cached_prefix() -> None:
    context = PlanningContext(examples=[("How many orders per status?", BY_STATUS)])
    with FakeMessagesApi(propose_plan_reply(STATUS_COUNTS), propose_plan_reply(STATUS_COUNTS)) as fake:
        plan(planner_for(fake), shop_dataset(), "Count orders per status", context)
        plan(planner_for(fake), shop_dataset(), "Count orders per status")
    with_examples, without = fake.requests
    assert with_examples.body["system"] == without.body["system"]  # the cached prefix does not change
    [shown] = [b["text"] for b in with_examples.blocks(0) if "<examples>" in b["text"]]
    examples = json.loads(shown.split("<examples>")[1].split("</examples>")[0])
    assert examples == [{"question": "How many orders per status?", "plan": {**STATUS_COUNTS}}]
    assert not any("<examples>" in b["text"] for b in without.blocks(0))
