"""Fakes shared by tests: a local Anthropic Messages API over real HTTP (`messages_api`)."""

from tests.fakes.messages_api import (
    FakeMessagesApi,
    RecordedRequest,
    Reply,
    error_reply,
    message_reply,
    propose_plan_reply,
    text_reply,
    tool_call_reply,
    tool_calls_reply,
)

__all__ = ["FakeMessagesApi", "RecordedRequest", "Reply", "error_reply", "message_reply", "propose_plan_reply",
           "text_reply", "tool_call_reply", "tool_calls_reply"]
