"""Prompt injection through the Claude planner: the same questions as the offline suite, asked over
gRPC Ask while a local fake Messages API (real HTTP) plays a model that has been taken over and
answers with malicious tool calls. Every question must end as a normal answer, a clarification or a
rejection, with nothing leaked and no forbidden SQL executed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from analyst_service.config import ClaudeSettings
from analyst_service.planning.claude import ClaudePlanner
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from tests.conftest import RunningStack, start_stack, stop_stack
from tests.fakes.messages_api import FakeMessagesApi, Reply, propose_plan_reply, tool_call_reply
from tests.security.harness import leaks
from tests.security.prompt_injection import INJECTION_QUESTIONS, assert_safe_outcome

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(300)]

STATUS_COUNTS = {"dataset_id": "ecommerce", "base_table": "orders",
                 "select": [{"column": "status"}, {"column": "*", "aggregation": "AGGREGATION_COUNT"}],
                 "group_by": [{"column": "status"}]}


def hijacked_replies(index: int) -> list[Reply]:
    """What a hijacked model answers for question `index`: three kinds of attack in turn."""
    kind = index % 3
    if kind == 0:
        # Straight for the files, then a table outside the dataset: with max_corrections=1 the
        # second refusal ends planning with PLANNER_ERROR.
        return [tool_call_reply("run_sql", {"sql": "SELECT * FROM read_csv('/etc/passwd')"}),
                propose_plan_reply({"dataset_id": "ecommerce", "base_table": "information_schema.tables"})]
    if kind == 1:  # SQL smuggled into a column name, then a valid plan after the refusal
        return [propose_plan_reply({**STATUS_COUNTS, "select": [{"column": "(SELECT getenv('HOME'))"}]}),
                propose_plan_reply(STATUS_COUNTS)]
    # SQL smuggled into a value: it can only ever be a literal. No status holds it: the planner says
    # so once, and the same plan proposed again stands (an empty answer).
    smuggled = {**STATUS_COUNTS, "filters": [
        {"column": "status", "op": "FILTER_OPERATOR_EQ", "values": [{"string_value": "x' OR '1'='1"}]}]}
    return [propose_plan_reply(smuggled), propose_plan_reply(smuggled)]


@pytest.fixture(scope="module")
def hijacked(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, FakeMessagesApi]]:
    # A hijacked model: its replies break the strict schemas and tool_choice on purpose.
    with FakeMessagesApi(check_replies=False) as fake:
        planner = ClaudePlanner(ClaudeSettings(api_key="test-key", base_url=fake.url, max_retries=0,
                                               timeout_seconds=10.0, model="claude-test", max_corrections=1))
        running = start_stack(datasets_dir, tmp_path_factory.mktemp("claude-injection") / "capsules.sqlite3",
                              planner=planner)
        try:
            yield running, fake
        finally:
            stop_stack(running)


@pytest.mark.parametrize("index", range(len(INJECTION_QUESTIONS)))
def test_injected_question_through_a_hijacked_claude_planner(index: int, hijacked: Any) -> None:
    running, fake = hijacked
    question = INJECTION_QUESTIONS[index]
    fake.add(*hijacked_replies(index))
    with grpc.insecure_channel(running.analyst_target) as channel:
        analyst = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        events = [r.event for r in analyst.Ask(api.AskRequest(dataset_id="ecommerce", question=question), timeout=60)]
        capsule = analyst.GetCapsule(api.GetCapsuleRequest(name=events[-1].run.run_id), timeout=10).capsule
    run = assert_safe_outcome(question, events, str(capsule))
    expected = {0: run_pb2.RUN_STATE_REJECTED, 1: run_pb2.RUN_STATE_SUCCEEDED, 2: run_pb2.RUN_STATE_SUCCEEDED}[index % 3]
    assert run.state == expected, (question, run.error)
    if index % 3 == 2:
        assert run.result.row_count == 0  # the smuggled SQL stayed a string that matches nothing
    assert all(a.outcome for a in capsule.run.planner_attempts)
    # What went to the model carries no secret of the service's host either.
    assert leaks("".join(str(r.body) for r in fake.requests)) == []
    assert fake.remaining == 0 and fake.protocol_errors == []
