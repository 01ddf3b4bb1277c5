"""A scripted conversation with the Claude planner through the real services and bwrap sandbox, the
model played by the local fake Messages API over real HTTP:

- the model asks back (`clarify`): the run is REJECTED with CLARIFICATION_NEEDED and the readings,
  its capsule kept; the analyst chooses a reading (`ask --thread --choose`'s SubmitRun in the
  thread); the next question's request carries the question, the clarification and the choice, and
  its answer builds on the chosen reading;
- a plan whose dry run fails in the engine comes back to the model as a correction;
- asked for Python (AskRequest.allow_python), the model answers with a pandas program that runs in
  the sandbox and is recorded as a Python run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from analyst_service.choices import choose
from analyst_service.config import ClaudeSettings
from analyst_service.planning.claude import ClaudePlanner
from csv_analyst_app.cli import main
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from tests.conftest import RunningStack, start_stack, stop_stack
from tests.fakes import FakeMessagesApi, RecordedRequest, propose_plan_reply, tool_call_reply

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(300)]

REVENUE = {"base_table": "orders", "select": [{"column": "total", "aggregation": "AGGREGATION_SUM", "alias": "revenue"}]}
ORDERS = {"base_table": "orders", "select": [{"column": "*", "aggregation": "AGGREGATION_COUNT", "alias": "orders"}]}
ORDERS_BY_STATUS = {**ORDERS, "select": [{"column": "status"}, *ORDERS["select"]], "group_by": [{"column": "status"}],
                    "order_by": [{"key": "status"}]}
PROGRAM = "result_df = orders.groupby('status', as_index=False)['total'].count().sort_values('status')"


@pytest.fixture(scope="module")
def claude_stack(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[tuple[RunningStack, FakeMessagesApi]]:
    with FakeMessagesApi() as fake:
        planner = ClaudePlanner(ClaudeSettings(api_key="test-key", base_url=fake.url, max_retries=0,
                                               timeout_seconds=10.0, model="claude-test"))
        running = start_stack(datasets_dir, tmp_path_factory.mktemp("claude-conversation") / "capsules.sqlite3",
                              planner=planner, enable_python=True)
        try:
            yield running, fake
        finally:
            stop_stack(running)


def _ask(running: RunningStack, question: str, thread: str = "", allow_python: bool = False) -> run_pb2.Run:
    with grpc.insecure_channel(running.analyst_target) as channel:
        analyst = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        request = api.AskRequest(dataset_id="ecommerce", question=question, thread_id=thread, allow_python=allow_python)
        events = [r.event for r in analyst.Ask(request, timeout=120)]
    return events[-1].run


def _capsule(running: RunningStack, run_id: str) -> Any:
    with grpc.insecure_channel(running.analyst_target) as channel:
        analyst = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        return analyst.GetCapsule(api.GetCapsuleRequest(name=run_id), timeout=10).capsule


def _choose(running: RunningStack, thread: str, number: int) -> dict[str, Any]:
    async def chosen() -> dict[str, Any]:
        async with grpc.aio.insecure_channel(running.analyst_target) as channel:
            return await choose(analyst_service_pb2_grpc.AnalystServiceStub(channel), thread, number, [])
    return asyncio.run(chosen())


def _texts(request: RecordedRequest) -> str:
    return str(request.body["messages"])


def test_the_model_asks_the_analyst_chooses_and_the_next_answer_builds_on_the_choice(claude_stack: Any) -> None:
    running, fake = claude_stack
    fake.add(tool_call_reply("clarify", {"message": "Do 'sales' mean revenue or the number of orders?",
                                         "readings": [REVENUE, ORDERS]}))
    asked = _ask(running, "What were the sales?")
    assert asked.state == run_pb2.RUN_STATE_REJECTED
    assert asked.error.code == run_pb2.ERROR_CODE_CLARIFICATION_NEEDED
    assert asked.clarification.message == "Do 'sales' mean revenue or the number of orders?"
    assert [o.plan.select[0].column for o in asked.clarification.options] == ["total", "*"]
    assert all(o.sql.startswith("SELECT") and o.explanation for o in asked.clarification.options)
    kept = _capsule(running, asked.run_id)
    assert kept.run.clarification == asked.clarification and kept.run.planner_attempts[0].outcome == "clarification"

    answer = _choose(running, asked.thread_id, 2)
    assert answer["status"] == "SUCCEEDED" and answer["thread_id"] == asked.thread_id
    [[orders]] = answer["rows"]
    chosen_run = _capsule(running, answer["run_id"]).run
    assert chosen_run.thread_id == asked.thread_id and chosen_run.plan.select[0].column == "*"

    fake.add(propose_plan_reply(ORDERS_BY_STATUS))
    follow_up = _ask(running, "split that by status", thread=asked.thread_id)
    request = fake.requests[-1]  # the question asked back, its readings, the reading chosen and its answer
    messages = request.messages
    assert "What were the sales?" in str(messages[0]["content"])
    [clarify] = messages[1]["content"]
    assert clarify["name"] == "clarify" and len(clarify["input"]["readings"]) == 2
    result_block = messages[2]["content"][0]
    assert result_block["tool_use_id"] == clarify["id"]
    assert "The analyst chose reading 2" in result_block["content"] and str(orders) in result_block["content"]
    assert "split that by status" in _texts(request)
    assert follow_up.state == run_pb2.RUN_STATE_SUCCEEDED and follow_up.thread_id == asked.thread_id
    assert [c.name for c in follow_up.result.columns] == ["status", "orders"]
    assert sum(row.values[1].int_value for row in follow_up.result.rows) == orders
    assert fake.protocol_errors == []


def test_a_reply_in_words_continues_the_thread(claude_stack: Any) -> None:
    running, fake = claude_stack
    fake.add(tool_call_reply("clarify", {"message": "Revenue or orders?", "readings": [REVENUE, ORDERS]}),
             propose_plan_reply(REVENUE))
    asked = _ask(running, "How big were the sales?")
    assert asked.error.code == run_pb2.ERROR_CODE_CLARIFICATION_NEEDED
    answered = _ask(running, "revenue, please", thread=asked.thread_id)
    request = fake.requests[-1]
    assert "How big were the sales?" in str(request.messages[0]["content"])
    assert request.messages[1]["content"][0]["name"] == "clarify"
    assert "reply to your clarification" in request.messages[2]["content"][-1]["text"]
    assert answered.state == run_pb2.RUN_STATE_SUCCEEDED and answered.result.columns[0].name == "revenue"
    assert fake.protocol_errors == []


def test_a_plan_that_fails_in_the_engine_is_corrected_before_it_runs(claude_stack: Any) -> None:
    running, fake = claude_stack
    broken = {**ORDERS, "filters": [{"column": "order_date", "op": "FILTER_OPERATOR_GE",
                                     "values": [{"string_value": "last spring"}]}]}
    fixed = {**ORDERS, "filters": [{"column": "order_date", "op": "FILTER_OPERATOR_GE",
                                    "values": [{"string_value": "2024-03-01"}]}]}
    fake.add(propose_plan_reply(broken), propose_plan_reply(fixed))
    run = _ask(running, "How many orders since last spring?")
    [correction] = fake.requests[-1].tool_results()
    assert correction["is_error"] and "DRY_RUN" in correction["content"] and "last spring" in correction["content"]
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED and [a.outcome for a in run.planner_attempts] == ["rejected",
                                                                                                    "accepted"]
    assert run.plan.filters[0].values[0].string_value == "2024-03-01" and fake.protocol_errors == []


def test_asked_for_python_the_model_answers_with_a_program_run_in_the_sandbox(claude_stack: Any) -> None:
    running, fake = claude_stack
    fake.add(tool_call_reply("execute_python", {"code": PROGRAM}))
    run = _ask(running, "Orders per status, with pandas", allow_python=True)
    assert "execute_python" in fake.requests[-1].tool_names()
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error
    assert run.query_type == run_pb2.QUERY_TYPE_PYTHON and run.python_code == PROGRAM and not run.HasField("plan")
    assert [c.name for c in run.result.columns] == ["status", "total"] and run.result.row_count == 4
    capsule = _capsule(running, run.run_id)
    assert capsule.run.python_code == PROGRAM and capsule.run.query_type == run_pb2.QUERY_TYPE_PYTHON

    fake.add(propose_plan_reply(ORDERS))
    plain = _ask(running, "How many orders?")  # not asked for Python: the tool is not offered
    assert "execute_python" not in fake.requests[-1].tool_names() and plain.query_type == run_pb2.QUERY_TYPE_PLAN
    assert fake.protocol_errors == []


def test_python_on_a_server_without_python_mode_is_failed_precondition(local_stack: RunningStack) -> None:
    with grpc.insecure_channel(local_stack.analyst_target) as channel:
        analyst = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            list(analyst.Ask(api.AskRequest(dataset_id="ecommerce", question="Orders per status, with pandas",
                                            allow_python=True), timeout=30))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--enable-python" in (caught.value.details() or "")


def test_ask_python_on_the_command_line_answers_with_a_program(datasets_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`ask --python` is the explicit request: the embedded stack runs Python and the tool is offered."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "cli-key")
    with FakeMessagesApi(tool_call_reply("execute_python", {"code": PROGRAM}), api_key="cli-key") as fake:
        code = main(["ask", "--planner", "claude", "--claude-base-url", fake.url, "--claude-retries", "0",
                     "--datasets-dir", str(datasets_dir), "--capsule-db", str(tmp_path / "capsules.sqlite3"),
                     "--cache-dir", str(tmp_path / "materialized"), "--dataset", "ecommerce", "--json", "--python",
                     "Orders per status, with pandas"])
    answer = json.loads(capsys.readouterr().out)
    assert code == 0 and answer["status"] == "SUCCEEDED" and answer["row_count"] == 4, answer
    assert "execute_python" in fake.requests[0].tool_names() and fake.protocol_errors == []
