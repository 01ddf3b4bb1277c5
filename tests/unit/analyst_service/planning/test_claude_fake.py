"""The fake Messages API holds clients and scripts to what the real API does (so passing tests mean
something): headers, tool names, strict schemas, tool_choice, strict inputs, computed usage and
caching, count_tokens. Driven with the SDK (and raw HTTP where the SDK would not send the mistake)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import pytest

from tests.fakes import FakeMessagesApi, message_reply, propose_plan_reply, text_reply, tool_calls_reply

LONG_TEXT = "The policy of a planner that explains itself at length. " * 400  # ~ 4,000 tokens
TOOL = {"name": "pick", "strict": True, "description": "Pick one.",
        "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
                         "additionalProperties": False}}


def _create(fake: FakeMessagesApi, **overrides: Any) -> anthropic.types.Message:
    request: dict[str, Any] = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "q"}],
                               **overrides}
    with anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0) as sdk:
        return sdk.messages.create(**request)


def test_a_request_without_anthropic_version_is_refused() -> None:
    with FakeMessagesApi(text_reply("hi")) as fake:
        answer = httpx2.post(f"{fake.url}/v1/messages", json={"model": "m", "max_tokens": 5,
                                                              "messages": [{"role": "user", "content": "q"}]})
    assert answer.status_code == 400 and "anthropic-version" in answer.text and fake.remaining == 1


@pytest.mark.parametrize("tool, problem", [
    ({**TOOL, "name": "x" * 65}, "name"),
    ({**TOOL, "input_schema": {**TOOL["input_schema"], "maxProperties": 1}}, "maxProperties"),
    ({**TOOL, "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}, "additionalProperties"),
], ids=["name-too-long", "unsupported-keyword", "open-object"])
def test_tools_the_api_refuses(tool: dict[str, Any], problem: str) -> None:
    with FakeMessagesApi(text_reply("hi")) as fake, pytest.raises(anthropic.BadRequestError):
        _create(fake, tools=[tool])
    assert problem in fake.protocol_errors[0] and fake.remaining == 1


@pytest.mark.parametrize("reply, choice, problem", [
    (text_reply("no tool"), {"type": "any"}, "forces a tool call"),
    (tool_calls_reply([("pick", {"n": 1}), ("pick", {"n": 2})]), {"type": "any", "disable_parallel_tool_use": True},
     "parallel tool use is disabled"),
    (tool_calls_reply([("pick", {"n": "one"})]), {"type": "auto"}, "is not of type 'integer'"),
    (tool_calls_reply([("run_sql", {"sql": "x"})]), {"type": "auto"}, "does not offer"),
], ids=["text-under-any", "parallel", "strict-input", "unknown-tool"])
def test_replies_the_api_cannot_send_are_script_errors(reply: Any, choice: dict[str, Any], problem: str) -> None:
    with FakeMessagesApi(reply) as fake, pytest.raises(anthropic.BadRequestError):
        _create(fake, tools=[TOOL], tool_choice=choice)
    assert problem in fake.protocol_errors[0]
    with FakeMessagesApi(reply, check_replies=False) as hijacked:  # a hijacked model is scripted on purpose
        _create(hijacked, tools=[TOOL], tool_choice=choice)


def test_a_refusal_owes_no_tool_call() -> None:
    with FakeMessagesApi(message_reply([], stop_reason="refusal")) as fake:
        answer = _create(fake, tools=[TOOL], tool_choice={"type": "any"})
    assert answer.stop_reason == "refusal" and fake.protocol_errors == []


def test_the_fake_refuses_a_tool_use_without_its_result() -> None:
    with FakeMessagesApi(propose_plan_reply({"base_table": "t"})) as fake, pytest.raises(anthropic.BadRequestError):
        _create(fake, messages=[
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_schema", "input": {}}]},
            {"role": "user", "content": "no tool result"}])
    assert "need tool_result blocks first" in fake.protocol_errors[0] and fake.remaining == 1


def test_usage_is_computed_from_identical_prefixes() -> None:
    cached_system = [{"type": "text", "text": LONG_TEXT, "cache_control": {"type": "ephemeral"}}]
    other_system = [{"type": "text", "text": LONG_TEXT + " Changed.", "cache_control": {"type": "ephemeral"}}]
    with FakeMessagesApi(*[text_reply("a")] * 3) as fake:
        first = _create(fake, system=cached_system).usage
        second = _create(fake, system=cached_system, messages=[{"role": "user", "content": "another q"}]).usage
        third = _create(fake, system=other_system).usage
        with anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0) as sdk:
            counted = sdk.messages.count_tokens(model="m", system=cached_system,
                                                messages=[{"role": "user", "content": "q"}]).input_tokens
    assert first.cache_creation_input_tokens > 1024 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens  # the same prefix, read back
    assert second.cache_creation_input_tokens == 0
    assert third.cache_read_input_tokens == 0 and third.cache_creation_input_tokens > 1024  # a changed prefix
    total = first.input_tokens + first.cache_creation_input_tokens + first.cache_read_input_tokens
    assert counted == total and first.output_tokens > 0


def test_a_prefix_below_the_minimum_is_not_cached() -> None:
    short = [{"type": "text", "text": "Short policy.", "cache_control": {"type": "ephemeral"}}]
    with FakeMessagesApi(text_reply("a"), text_reply("b")) as fake:
        first = _create(fake, system=short).usage
        second = _create(fake, system=short).usage
    assert first.cache_creation_input_tokens == second.cache_read_input_tokens == 0
