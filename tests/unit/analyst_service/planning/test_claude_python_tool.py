"""`execute_python` is offered only when the analyst asked for Python (and the server runs it), and a
program goes through the restricted-Python policy before the planner hands it on."""

from __future__ import annotations

from analyst_service.planning.base import PlanningContext, PythonProgram
from tests.fakes import FakeMessagesApi, propose_plan_reply, tool_call_reply
from tests.unit.analyst_service.planning.claude_helpers import STATUS_COUNTS, outcomes, plan, planner_for, shop_dataset

PROGRAM = "result_df = orders.groupby('status', as_index=False)['total'].sum()"


def test_without_the_request_the_tool_is_not_offered_and_a_call_is_refused() -> None:
    context = PlanningContext()
    with FakeMessagesApi(tool_call_reply("execute_python", {"code": PROGRAM}), propose_plan_reply(STATUS_COUNTS),
                         check_replies=False) as fake:  # a model calling a tool it was not offered
        result = plan(planner_for(fake), shop_dataset(), context=context)
    assert "execute_python" not in fake.requests[0].tool_names()
    [refusal] = fake.requests[1].tool_results()
    assert refusal["is_error"] and "There is no tool named" in refusal["content"]
    assert result.base_table == "orders" and outcomes(context) == ["rejected", "accepted"]


def test_when_asked_for_python_the_program_is_the_answer() -> None:
    context = PlanningContext(python_allowed=True)
    with FakeMessagesApi(tool_call_reply("execute_python", {"code": PROGRAM})) as fake:
        result = plan(planner_for(fake), shop_dataset(), "Revenue per status, in pandas", context)
    assert fake.requests[0].tool_names() == ["get_schema", "propose_plan", "clarify", "execute_python"]
    assert result == PythonProgram(PROGRAM) and outcomes(context) == ["accepted"] and fake.protocol_errors == []


def test_a_program_the_policy_refuses_comes_back_naming_the_construct() -> None:
    context = PlanningContext(python_allowed=True)
    with FakeMessagesApi(tool_call_reply("execute_python", {"code": "import os\nresult = os.listdir('/')"}),
                         tool_call_reply("execute_python", {"code": PROGRAM})) as fake:
        result = plan(planner_for(fake), shop_dataset(), "List files with Python", context)
    [refusal] = fake.requests[1].tool_results()
    assert refusal["is_error"] and "PYTHON_POLICY_VIOLATION" in refusal["content"] and "line 1" in refusal["content"]
    assert list(context.attempts[0].violations) == ["code"]
    assert result == PythonProgram(PROGRAM) and outcomes(context) == ["rejected", "accepted"]
