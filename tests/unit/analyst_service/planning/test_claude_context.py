"""Bounded context: what the Claude planner sends stays within a token budget measured with the SDK's
`count_tokens` against the fake, whatever the dataset's width and profile; the question's columns
and exact cell spellings are linked before the call; the cached prefix is long enough to cache."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from analyst_service.planning.base import PlanningContext
from analyst_service.planning.claude_prompt import system_blocks
from analyst_service.planning.claude_tools import (
    GET_SCHEMA_MAX_CHARS,
    GET_SCHEMA_MAX_COLUMNS,
    tool_definitions,
)
from csv_analyst.v1 import dataset_pb2
from tests.fakes import FakeMessagesApi, RecordedRequest, propose_plan_reply, tool_call_reply
from tests.unit.analyst_service.planning.claude_helpers import (
    STATUS_COUNTS,
    column,
    outcomes,
    plan,
    planner_for,
    shop_dataset,
)

# A planning conversation of six calls on any dataset stays under this many input tokens.
TOKEN_BUDGET = 40_000
MIN_CACHEABLE_TOKENS = 1024  # Sonnet/Opus; the tools + policy + overview prefix must reach it


def wide_dataset(tables: int = 3, columns: int = 120, values: int = 200) -> dataset_pb2.Dataset:
    """A dataset far past every cap: many columns, every text column with its full profile."""
    return dataset_pb2.Dataset(dataset_id="wide", title="Wide", tables=[
        dataset_pb2.Table(name=f"t{t}", row_count=10_000, columns=[
            column(f"c{t}_{c}", "VARCHAR", [f"value {c}-{v} " + "x" * 60 for v in range(values)],
                   description="A long column description. " * 20) for c in range(columns)])
        for t in range(tables)])


def count_tokens(fake: FakeMessagesApi, request: RecordedRequest) -> int:
    """The SDK's count_tokens of a recorded request, against the fake."""
    body = request.body
    with anthropic.Anthropic(api_key="test-key", base_url=fake.url, max_retries=0) as client:
        counted = client.messages.count_tokens(model=body["model"], system=body["system"], tools=body["tools"],
                                               tool_choice=body["tool_choice"], messages=body["messages"])
    return counted.input_tokens


def test_a_wide_dataset_stays_within_the_token_budget_across_schema_calls() -> None:
    dataset = wide_dataset()
    look_ups = [tool_call_reply("get_schema", {"table": f"t{t % 3}"}) for t in range(5)]
    final = propose_plan_reply({"base_table": "t0", "select": [{"column": "c0_0"}]})
    with FakeMessagesApi(*look_ups, final) as fake:
        plan(planner_for(fake, max_model_calls=6, max_corrections=5), dataset, "How many c0 0 values?")
        sent = list(fake.requests)  # count_tokens requests are recorded too
        counts = [count_tokens(fake, r) for r in sent]
    assert fake.protocol_errors == [] and len(counts) == 6
    assert max(counts) <= TOKEN_BUDGET, counts
    assert counts == sorted(counts)  # the conversation grows by bounded tool results
    everything = sum(len(json.dumps(list(c.profile.top_values))) for t in dataset.tables for c in t.columns)
    assert everything > 10 * TOKEN_BUDGET  # what an unbounded get_schema would have sent
    for request in sent[1:]:
        [result] = request.tool_results()
        assert len(result["content"]) <= GET_SCHEMA_MAX_CHARS + 100  # the tags around the JSON


def test_the_overview_of_a_wide_dataset_lists_every_column_without_values() -> None:
    dataset = wide_dataset(tables=1, columns=60, values=50)
    text = system_blocks(dataset)[1]["text"]
    assert all(f"c0_{c} (VARCHAR)" in text for c in range(60))
    assert "value 0-0" not in text and "get_schema" in text


def test_get_schema_is_capped_and_filterable() -> None:
    dataset = wide_dataset(tables=1, columns=40, values=200)
    asks = [tool_call_reply("get_schema", {"table": "t0"}),
            tool_call_reply("get_schema", {"table": "t0", "columns": ["c0_7", "nope"], "contains": "7-19 "}),
            propose_plan_reply({"base_table": "t0"})]
    with FakeMessagesApi(*asks) as fake:
        plan(planner_for(fake, max_corrections=3), dataset, "Show t0")
    first = json.loads(fake.requests[1].tool_results()[0]["content"].split("\n")[1])
    assert len(first["columns"]) == GET_SCHEMA_MAX_COLUMNS and "c0_39" in first["more_columns"]
    assert "values_cut" in first
    second = json.loads(fake.requests[2].tool_results()[0]["content"].split("\n")[1])
    [only] = second["columns"]
    assert only["name"] == "c0_7" and [v.split(" x")[0] for v in only["sample_values"]] == ["value 7-19"]
    assert second["unknown_columns"] == ["nope"]


def test_linked_columns_and_exact_cell_spellings_come_before_the_question() -> None:
    dataset = shop_dataset()
    by_country = {"base_table": "orders", "joins": [{"table": "customers"}],
                  "select": [{"column": "*", "aggregation": "AGGREGATION_COUNT", "alias": "orders"}],
                  "filters": [{"column": "customers.country", "op": "FILTER_OPERATOR_EQ",
                               "values": [{"string_value": "Japan"}]}]}
    with FakeMessagesApi(propose_plan_reply(by_country)) as fake:
        plan(planner_for(fake), dataset, "How many orders came from japan?")
    linked_block, question_block = fake.requests[0].blocks(0)
    linked: dict[str, Any] = json.loads(linked_block["text"].split("<linked_schema>")[1].split("</linked_schema>")[0])
    assert {"phrase": "japan", "column": "customers.country", "values": ["Japan"]} in linked["values"]
    assert "customers.country" in [c["column"] for c in linked["columns"]]
    assert "japan" in question_block["text"]
    # After the cached prefix: the system blocks do not change with the question.
    with FakeMessagesApi(propose_plan_reply(STATUS_COUNTS)) as other:
        plan(planner_for(other), dataset, "How many orders per status?")
    assert other.requests[0].body["system"] == fake.requests[0].body["system"]


def test_the_cached_prefix_is_above_the_minimum_and_is_read_back() -> None:
    dataset = shop_dataset()
    context = PlanningContext()
    with FakeMessagesApi(propose_plan_reply({"base_table": "orders", "select": [{"column": "nope"}]}),
                         propose_plan_reply(STATUS_COUNTS), min_cacheable_tokens=MIN_CACHEABLE_TOKENS) as fake:
        plan(planner_for(fake), dataset, context=context)
        first = fake.requests[0].body
        prefix = {**first, "messages": [{"role": "user", "content": "x"}]}
        prefix["system"] = [{k: v for k, v in b.items()} for b in first["system"]]
        prefix_tokens = count_tokens(fake, RecordedRequest("POST", "/v1/messages", {}, prefix))
    assert prefix_tokens >= MIN_CACHEABLE_TOKENS, prefix_tokens
    written, read = context.attempts
    assert written.cache_write_tokens >= MIN_CACHEABLE_TOKENS and written.cache_read_tokens == 0
    assert read.cache_read_tokens >= written.cache_write_tokens  # the whole first turn comes back from the cache
    assert outcomes(context) == ["rejected", "accepted"]


@pytest.mark.parametrize("tool", ["get_schema", "propose_plan", "clarify"])
def test_tool_definitions_are_the_same_objects_every_call(tool: str) -> None:
    """Byte-identical tools keep the cached prefix valid from one question to the next."""
    first = next(t for t in tool_definitions() if t["name"] == tool)
    again = next(t for t in tool_definitions() if t["name"] == tool)
    assert first is again
