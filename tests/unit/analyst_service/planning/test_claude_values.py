"""Filter literals no row can hold come back to the model once, with the spellings that exist."""

from __future__ import annotations

from typing import Any

from analyst_service.planning.base import PlanningContext
from tests.fakes import FakeMessagesApi, propose_plan_reply
from tests.unit.analyst_service.planning.claude_helpers import outcomes, plan, planner_for, shop_dataset


def _by_country(value: str) -> dict[str, Any]:
    return {"base_table": "orders", "joins": [{"table": "customers"}],
            "select": [{"column": "*", "aggregation": "AGGREGATION_COUNT", "alias": "orders"}],
            "filters": [{"column": "customers.country", "op": "FILTER_OPERATOR_EQ", "values": [{"string_value": value}]}]}


def test_a_miscased_value_is_corrected_with_the_spelling_that_exists() -> None:
    context = PlanningContext()
    with FakeMessagesApi(propose_plan_reply(_by_country("japan")), propose_plan_reply(_by_country("Japan"))) as fake:
        result = plan(planner_for(fake), shop_dataset(), "How many orders from japan?", context)
    [feedback] = fake.requests[1].tool_results()
    assert feedback["is_error"] and "UNKNOWN_VALUE" in feedback["content"]
    assert "'japan' is not a value of customers.country" in feedback["content"] and "'Japan' is" in feedback["content"]
    assert list(context.attempts[0].violations) == ["plan.filters[0].values[0]"]
    assert result.filters[0].values[0].string_value == "Japan" and outcomes(context) == ["rejected", "accepted"]


def test_the_same_unknown_value_proposed_again_stands() -> None:
    """"How many orders from France?" has an answer: zero. One correction, then the plan runs."""
    context = PlanningContext()
    with FakeMessagesApi(propose_plan_reply(_by_country("France")), propose_plan_reply(_by_country("France"))) as fake:
        result = plan(planner_for(fake), shop_dataset(), "How many orders from France?", context)
    assert "its values are 'Japan', 'Germany'" in fake.requests[1].tool_results()[0]["content"]
    assert result.filters[0].values[0].string_value == "France" and outcomes(context) == ["rejected", "accepted"]


def test_columns_with_more_values_than_the_profile_are_not_judged() -> None:
    dataset = shop_dataset()
    dataset.tables[1].columns[1].profile.distinct_count = 500  # the profile keeps only the top values
    with FakeMessagesApi(propose_plan_reply(_by_country("japan"))) as fake:
        result = plan(planner_for(fake), dataset, "How many orders from japan?")
    assert result.filters[0].values[0].string_value == "japan" and len(fake.requests) == 1


def test_a_dry_run_that_cannot_run_judges_nothing() -> None:
    """The sandbox is busy or the probe failed: the plan is not held back (the run itself will tell)."""
    dataset = shop_dataset()
    dataset.tables[1].columns[1].profile.distinct_count = 500
    asked: list[str] = []

    async def unavailable(sql: str) -> list[list[str]] | None:
        asked.append(sql)
        return None

    with FakeMessagesApi(propose_plan_reply(_by_country("japan"))) as fake:
        result = plan(planner_for(fake), dataset, "How many orders from japan?", PlanningContext(probe=unavailable))
    # The value look-up, then the whole-plan dry run: neither could run, so nothing is held back.
    assert asked[0] == 'SELECT 1 FROM "customers" WHERE "country" = \'japan\' LIMIT 1'
    assert len(asked) == 2 and asked[1].endswith("AS dry_run LIMIT 1")
    assert result.filters[0].values[0].string_value == "japan" and len(fake.requests) == 1
