"""The Claude planner's API errors and time, against the fake over real HTTP.

What retrying later fixes is UNAVAILABLE (429, 5xx, overloaded, timeouts, no time left); what a
person must fix first is FAILED_PRECONDITION naming it (key, model, billing, a prompt too large,
a refusal, a full context window); only a request the API calls malformed otherwise is INTERNAL.
Retries are the planner's own: capped waits, never past the run's deadline, one request id each.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from analyst_service.config import ClaudeSettings
from analyst_service.errors import AnalystError, PlannerError, PlannerUnavailableError
from analyst_service.planning.base import PlanningContext
from analyst_service.planning.claude import ClaudePlanner
from analyst_service.status import to_status
from csv_analyst.v1 import dataset_pb2
from tests.fakes import FakeMessagesApi, Reply, error_reply, message_reply, propose_plan_reply
from tests.unit.analyst_service.planning.claude_helpers import STATUS_COUNTS, outcomes, plan, planner_for, shop_dataset

MODES = [pytest.param(False, id="plain"), pytest.param(True, id="streaming")]


@pytest.fixture
def shop() -> dataset_pb2.Dataset:
    return shop_dataset()


def _rate_limited(**headers: str) -> Reply:
    return error_reply(429, "rate_limit_error", "slow down", {"retry-after-ms": "1", **headers})


def _status_details(status: grpc.Status) -> list[Any]:
    for key, value in status.trailing_metadata:
        if key == "grpc-status-details-bin":
            return list(status_pb2.Status.FromString(value).details)
    return []


# --- retries ------------------------------------------------------------------------------------------

def test_a_rate_limit_is_retried_then_succeeds_with_each_request_id_recorded(shop: dataset_pb2.Dataset) -> None:
    context = PlanningContext()
    with FakeMessagesApi(_rate_limited(), propose_plan_reply(STATUS_COUNTS)) as fake:
        result = plan(planner_for(fake, max_retries=2), shop, context=context)
    assert len(fake.requests) == 2 and result.base_table == "orders"
    # The SDK does not retry on its own (its waits know nothing of the deadline).
    assert [r.headers.get("x-stainless-retry-count") for r in fake.requests] == ["0", "0"]
    [attempt] = context.attempts
    assert attempt.outcome == "accepted" and attempt.stop_reason == "tool_use"
    assert len(attempt.request_ids) == 2 and len(set(attempt.request_ids)) == 2


def test_retry_after_is_capped_by_max_retry_wait(shop: dataset_pb2.Dataset) -> None:
    """The server asks for an hour; the planner waits max_retry_wait_seconds (finishing in seconds)."""
    slow_down = error_reply(429, "rate_limit_error", "slow down", {"retry-after": "3600"})
    with FakeMessagesApi(slow_down, propose_plan_reply(STATUS_COUNTS)) as fake:
        result = plan(planner_for(fake, max_retries=1, max_retry_wait_seconds=0.01, planning_timeout_seconds=60), shop)
    assert result.base_table == "orders" and len(fake.requests) == 2


def test_no_retry_when_the_wait_would_pass_the_deadline(shop: dataset_pb2.Dataset) -> None:
    slow_down = error_reply(429, "rate_limit_error", "slow down", {"retry-after": "30"})
    with FakeMessagesApi(slow_down, propose_plan_reply(STATUS_COUNTS)) as fake:
        with pytest.raises(PlannerUnavailableError) as caught:
            plan(planner_for(fake, max_retries=3, max_retry_wait_seconds=30, planning_timeout_seconds=20), shop)
    assert len(fake.requests) == 1 and caught.value.metadata["retry_after_seconds"] == "30"


def test_the_runs_deadline_is_honoured_before_any_request(shop: dataset_pb2.Dataset) -> None:
    context = PlanningContext(deadline=time.monotonic() - 1)
    with FakeMessagesApi(propose_plan_reply(STATUS_COUNTS)) as fake, pytest.raises(PlannerUnavailableError) as caught:
        plan(planner_for(fake), shop, context=context)
    assert fake.requests == [] and "deadline" in caught.value.message
    assert caught.value.status_code == grpc.StatusCode.UNAVAILABLE


def test_the_deadline_bounds_each_request(shop: dataset_pb2.Dataset) -> None:
    """A reply slower than the time left is abandoned at the deadline, not at timeout_seconds."""
    slow = Reply(body=propose_plan_reply(STATUS_COUNTS).body, delay_seconds=60)
    context = PlanningContext(deadline=time.monotonic() + 2.0)
    with FakeMessagesApi(slow) as fake, pytest.raises(PlannerUnavailableError) as caught:
        plan(planner_for(fake, timeout_seconds=60, max_retries=2), shop, context=context)
    assert len(fake.requests) == 1  # no retry: the deadline has passed
    assert float(caught.value.metadata["timeout_seconds"]) <= 2.0


@pytest.mark.parametrize("streaming", MODES)
def test_a_persistent_rate_limit_is_unavailable_with_a_retry_hint(shop: dataset_pb2.Dataset, streaming: bool) -> None:
    with FakeMessagesApi(*[_rate_limited() for _ in range(3)]) as fake:
        with pytest.raises(PlannerUnavailableError) as caught:
            plan(planner_for(fake, max_retries=2, streaming=streaming), shop)
    error = caught.value
    assert len(fake.requests) == 3
    assert error.status_code == grpc.StatusCode.UNAVAILABLE and error.reason == "PLANNER_UNAVAILABLE"
    assert error.metadata["http_status"] == "429" and error.metadata["retry_after_seconds"] == "0.001"
    assert error.to_run_error().reason == "PLANNER_UNAVAILABLE"
    kinds = {d.type_url.rsplit("/", 1)[-1] for d in _status_details(to_status(error))}
    assert {"google.rpc.ErrorInfo", "google.rpc.RetryInfo"} <= kinds


def test_status_details_parse_as_error_info(shop: dataset_pb2.Dataset) -> None:
    with FakeMessagesApi(_rate_limited()) as fake, pytest.raises(PlannerUnavailableError) as caught:
        plan(planner_for(fake), shop)
    [info] = [d for d in _status_details(to_status(caught.value)) if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    unpacked = error_details_pb2.ErrorInfo()
    info.Unpack(unpacked)
    assert unpacked.reason == "PLANNER_UNAVAILABLE"


@pytest.mark.parametrize("reply, streaming", [
    (error_reply(529, "overloaded_error"), False),
    (error_reply(500, "api_error"), True),
    (Reply(body=message_reply([]).body, stream_error={"type": "overloaded_error", "message": "busy"}), True),
], ids=["529", "500-streaming", "overloaded-mid-stream"])
def test_server_errors_are_unavailable(shop: dataset_pb2.Dataset, reply: Reply, streaming: bool) -> None:
    with FakeMessagesApi(reply) as fake, pytest.raises(PlannerUnavailableError) as caught:
        plan(planner_for(fake, streaming=streaming), shop)
    assert caught.value.status_code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("reply, streaming", [
    (Reply(body=propose_plan_reply(STATUS_COUNTS).body, delay_seconds=5.0), False),
    (Reply(body=propose_plan_reply(STATUS_COUNTS).body, delay_seconds=5.0), True),
    (Reply(body=propose_plan_reply(STATUS_COUNTS).body, stream_stall_seconds=5.0), True),
], ids=["plain", "streaming", "stalled-mid-stream"])
def test_a_slow_api_times_out_as_unavailable(shop: dataset_pb2.Dataset, reply: Reply, streaming: bool) -> None:
    with FakeMessagesApi(reply) as fake, pytest.raises(PlannerUnavailableError) as caught:
        plan(planner_for(fake, timeout_seconds=0.2, streaming=streaming), shop)
    assert caught.value.metadata["timeout_seconds"] == "0.2" and "timeout_seconds" in caught.value.message


def test_a_stream_cut_short_is_unavailable_not_a_bad_plan(shop: dataset_pb2.Dataset) -> None:
    cut = Reply(body=propose_plan_reply(STATUS_COUNTS).body, stream_stall_seconds=0)
    with FakeMessagesApi(cut, propose_plan_reply(STATUS_COUNTS)) as fake, pytest.raises(PlannerUnavailableError):
        plan(planner_for(fake, streaming=True), shop)
    assert len(fake.requests) == 1


def test_an_unreachable_api_is_unavailable(shop: dataset_pb2.Dataset) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    planner = ClaudePlanner(ClaudeSettings(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=0))
    with pytest.raises(PlannerUnavailableError):
        plan(planner, shop)


# --- what a person must fix first -------------------------------------------------------------------

def test_a_refused_key_is_failed_precondition(shop: dataset_pb2.Dataset) -> None:
    with FakeMessagesApi(api_key="the-right-key") as fake, pytest.raises(PlannerError) as caught:
        plan(planner_for(fake, api_key="a-wrong-key", max_retries=2), shop)
    error = caught.value
    assert error.status_code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.metadata["http_status"] == "401" and error.metadata["setting"] == "ANTHROPIC_API_KEY"
    assert len(fake.requests) == 1  # 401 is not retried


@pytest.mark.parametrize("status, kind, setting", [(403, "permission_error", "ANTHROPIC_API_KEY"),
                                                   (404, "not_found_error", "model"),
                                                   (402, "billing_error", "ANTHROPIC_API_KEY")])
def test_config_errors_are_failed_precondition(shop: dataset_pb2.Dataset, status: int, kind: str, setting: str) -> None:
    with FakeMessagesApi(error_reply(status, kind)) as fake, pytest.raises(PlannerError) as caught:
        plan(planner_for(fake, max_retries=2), shop)
    assert caught.value.status_code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.metadata["setting"] == setting and len(fake.requests) == 1


def test_a_prompt_longer_than_the_context_window_is_failed_precondition(shop: dataset_pb2.Dataset) -> None:
    with FakeMessagesApi(propose_plan_reply(STATUS_COUNTS), context_window=500) as fake:
        with pytest.raises(PlannerError) as caught:
            plan(planner_for(fake, max_retries=2), shop)
    error = caught.value
    assert fake.remaining == 1 and len(fake.requests) == 1  # the fake's own 400, not retried
    assert error.status_code == grpc.StatusCode.FAILED_PRECONDITION and error.reason == "PLANNER_ERROR"
    assert error.metadata["http_status"] == "400" and error.metadata["limit"] == "context_window"


def test_a_request_over_the_size_limit_is_failed_precondition(shop: dataset_pb2.Dataset) -> None:
    with FakeMessagesApi(propose_plan_reply(STATUS_COUNTS), max_request_bytes=1000) as fake:
        with pytest.raises(PlannerError) as caught:
            plan(planner_for(fake), shop)
    assert caught.value.status_code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.metadata["http_status"] == "413" and caught.value.metadata["limit"] == "request_size"


@pytest.mark.parametrize("stop_reason", ["refusal", "model_context_window_exceeded", "max_tokens"])
def test_replies_that_end_early_are_failed_precondition(shop: dataset_pb2.Dataset, stop_reason: str) -> None:
    context = PlanningContext()
    ended = message_reply([{"type": "text", "text": "I"}], stop_reason=stop_reason)
    with FakeMessagesApi(ended) as fake, pytest.raises(PlannerError) as caught:
        plan(planner_for(fake, max_tokens=5), shop, context=context)
    error = caught.value
    assert error.status_code == grpc.StatusCode.FAILED_PRECONDITION and error.metadata["stop_reason"] == stop_reason
    assert outcomes(context) == [stop_reason] and context.attempts[0].stop_reason == stop_reason
    assert fake.protocol_errors == []
    if stop_reason == "max_tokens":
        assert "max_tokens=5" in error.message


def test_a_missing_key_fails_before_any_request(shop: dataset_pb2.Dataset) -> None:
    with FakeMessagesApi() as fake, pytest.raises(PlannerError) as caught:
        plan(planner_for(fake, api_key=""), shop)
    assert caught.value.status_code == grpc.StatusCode.FAILED_PRECONDITION and fake.requests == []
    assert caught.value.metadata["setting"] == "ANTHROPIC_API_KEY"


def test_a_request_the_api_calls_malformed_is_internal(shop: dataset_pb2.Dataset) -> None:
    with FakeMessagesApi(error_reply(400, "invalid_request_error", "messages: bad")) as fake:
        with pytest.raises(AnalystError) as caught:
            plan(planner_for(fake), shop)
    assert type(caught.value) is AnalystError and caught.value.status_code == grpc.StatusCode.INTERNAL


# --- one client per process -------------------------------------------------------------------------

def test_questions_share_one_client_and_its_connection(shop: dataset_pb2.Dataset) -> None:
    async def two_questions(planner: ClaudePlanner) -> None:
        for _ in range(2):
            await planner.plan("How many orders per status?", shop, PlanningContext())
        await planner.aclose()

    with FakeMessagesApi(propose_plan_reply(STATUS_COUNTS), propose_plan_reply(STATUS_COUNTS)) as fake:
        asyncio.run(two_questions(planner_for(fake)))
    first, second = fake.requests
    assert first.peer == second.peer  # the same TCP connection: one client, kept alive
