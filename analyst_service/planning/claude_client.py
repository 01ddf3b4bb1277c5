"""Messages API calls for the Claude planner: one client, a deadline, capped retries, typed errors.

The SDK's own retries are off (`max_retries=0` on the client): it would wait as long as a
`retry-after` header asks and knows nothing of the run's deadline. `ModelClient.call` retries
408/409/429/5xx, overloaded and connection failures itself, at most `max_retries` times, waiting
the server's `retry-after-ms`/`retry-after` capped at `max_retry_wait_seconds` (or an exponential
backoff), and never past the deadline: each HTTP attempt's timeout is the smaller of
`timeout_seconds` and the time left. Every attempt's `request-id` and the reply's `stop_reason`
are recorded on the `ModelCall`.

Errors: what retrying later can fix is `PlannerUnavailableError` (UNAVAILABLE, retry hint in the
metadata); what a person must fix first (key, model, billing, a prompt that does not fit) is
`PlannerError` (FAILED_PRECONDITION) naming the setting; only a request the API calls malformed
for another reason is INTERNAL (a bug in this planner).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import anthropic
import httpx2  # the SDK's HTTP client: a stream cut or stalled mid-body raises its errors unwrapped
from anthropic.types import Message

from analyst_service.config import ClaudeSettings
from analyst_service.errors import AnalystError, PlannerError, PlannerUnavailableError
from analyst_service.planning.claude_trace import ModelCall, PlanningTrace

log = logging.getLogger(__name__)

_TRANSIENT_STATUSES = {408, 409, 429, 500, 502, 503, 504, 529}
_TRANSIENT_TYPES = {"rate_limit_error", "overloaded_error", "api_error", "timeout_error"}
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 8.0  # the SDK's exponential backoff, seconds


class _Retry(Exception):
    """An attempt that may be retried: the mapped error if not, and the server's wait hint."""

    def __init__(self, error: AnalystError, hint: float | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.hint = hint


class ModelClient:
    """The process's one `AsyncAnthropic` client (connection reuse) and the retry policy."""

    def __init__(self, settings: ClaudeSettings) -> None:
        """Create the holder; the SDK client is built on first use, in the serving event loop.

        Args:
            settings: Key, base URL, timeouts and retry limits.
        """
        self._settings = settings
        self._client: anthropic.AsyncAnthropic | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> anthropic.AsyncAnthropic:
        """The shared client; a new one only when called from another event loop (tests run one
        loop per test, and an HTTP connection pool cannot cross loops)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = anthropic.AsyncAnthropic(api_key=self._settings.api_key, base_url=self._settings.base_url,
                                                    timeout=self._settings.timeout_seconds, max_retries=0)
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close the client's connections (server shutdown)."""
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.close()
        self._client = None

    async def call(self, request: dict[str, Any], call: ModelCall, trace: PlanningTrace, deadline: float) -> Message:
        """Send one Messages request, retrying transient failures within the deadline.

        Args:
            request: The `messages.create` arguments.
            call: Where latency, request ids and stop_reason are recorded.
            trace: The question's calls so far (for error metadata).
            deadline: `time.monotonic()` by which the call must be over.

        Returns:
            The complete reply.

        Raises:
            PlannerUnavailableError: Still failing after max_retries, or no time left.
            PlannerError: Key, model, billing or prompt size must be fixed first.
            AnalystError: The API refused a request this planner built (INTERNAL).
        """
        settings = self._settings
        started = time.monotonic()
        try:
            for attempt in range(settings.max_retries + 1):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._out_of_time(trace, attempt)
                try:
                    return await self._attempt(request, call, trace, min(settings.timeout_seconds, remaining))
                except _Retry as retry:
                    if attempt == settings.max_retries:
                        raise retry.error from retry
                    wait = min(retry.hint if retry.hint is not None else _backoff(attempt),
                               settings.max_retry_wait_seconds)
                    if time.monotonic() + wait >= deadline:
                        raise retry.error from retry
                    log.info("Claude API attempt %d failed (%s); retrying in %.2f s", attempt + 1, retry.error.message,
                             wait)
                    await asyncio.sleep(wait)
            raise AssertionError("unreachable: the last attempt returns or raises")
        finally:
            call.latency_seconds = time.monotonic() - started

    async def _attempt(self, request: dict[str, Any], call: ModelCall, trace: PlanningTrace,
                       timeout: float) -> Message:
        client = self.client().with_options(timeout=timeout)
        answered = len(call.request_ids)
        try:
            if self._settings.streaming:
                async with client.messages.stream(**request) as stream:
                    call.request_ids.append(stream.request_id or "")
                    response = await stream.get_final_message()
            else:
                response = await client.messages.create(**request)
                call.request_ids.append(response._request_id or "")
        except (anthropic.APIError, httpx2.TransportError) as error:
            if len(call.request_ids) == answered:  # no headers arrived before the failure
                call.request_ids.append(getattr(error, "request_id", None) or "")
            call.outcome = "api_error"
            mapped = self._api_error(error, trace, timeout)
            if _retryable(error):
                raise _Retry(mapped, _retry_after(error)) from error
            raise mapped from error
        call.stop_reason = response.stop_reason or ""
        usage = response.usage
        call.input_tokens += usage.input_tokens
        call.output_tokens += usage.output_tokens
        call.cache_read_tokens += usage.cache_read_input_tokens or 0
        call.cache_write_tokens += usage.cache_creation_input_tokens or 0
        call.tools = [b.name for b in response.content if b.type == "tool_use"]
        if response.stop_reason is None:  # a stream that ended before message_delta/message_stop
            call.outcome = "api_error"
            raise _Retry(PlannerUnavailableError(
                message="the Claude API stream ended before the reply was complete; try again later",
                metadata=trace.metadata()), None)
        return response

    def _out_of_time(self, trace: PlanningTrace, attempt: int) -> PlannerUnavailableError:
        settings = self._settings
        return PlannerUnavailableError(
            message=f"planning ran out of time after {len(trace.calls)} model call(s) and {attempt} retries: the "
                    f"run's deadline or planning_timeout_seconds={settings.planning_timeout_seconds:g} passed; "
                    "ask again with a longer deadline",
            metadata={**trace.metadata(), "planning_timeout_seconds": f"{settings.planning_timeout_seconds:g}"})

    def _api_error(self, error: anthropic.APIError | httpx2.TransportError, trace: PlanningTrace,
                   timeout: float) -> AnalystError:
        settings = self._settings
        metadata = {**trace.metadata(), "base_url": settings.base_url, "max_retries": str(settings.max_retries)}
        if isinstance(error, (anthropic.APITimeoutError, httpx2.TimeoutException)):
            return PlannerUnavailableError(
                message=f"the Claude API did not answer within {timeout:g} s (timeout_seconds, or the time left "
                        f"before the run's deadline) after {settings.max_retries} retries; try again later",
                metadata={**metadata, "timeout_seconds": f"{timeout:g}"})
        if isinstance(error, (anthropic.APIConnectionError, httpx2.TransportError)):
            return PlannerUnavailableError(
                message=f"the Claude API at {settings.base_url} could not be reached after {settings.max_retries} "
                        "retries; try again later", metadata=metadata)
        if not isinstance(error, anthropic.APIStatusError):
            return AnalystError(message=f"the Claude API call failed: {type(error).__name__}", metadata=metadata)
        return status_error(error, settings, metadata)


def status_error(error: anthropic.APIStatusError, settings: ClaudeSettings, metadata: dict[str, str]) -> AnalystError:
    """Map an HTTP error reply of the Messages API to a typed error (see the module docstring)."""
    status = error.status_code
    message = str(error.api_message or "") if hasattr(error, "api_message") else ""
    metadata = {**metadata, "http_status": str(status), "error_type": str(error.type or ""),
                "request_id": error.request_id or ""}
    if status in _TRANSIENT_STATUSES or (status == 200 and error.type in _TRANSIENT_TYPES):
        hint = _retry_after(error)
        if hint is not None:
            metadata["retry_after_seconds"] = f"{hint:g}"
        what = "rate-limiting requests" if status == 429 else f"failing ({error.type or status})"
        return PlannerUnavailableError(
            message=f"the Claude API is {what} after {settings.max_retries} retries (max_retries); "
                    f"retry in {hint or 1:g} s", metadata=metadata)
    if status in (401, 403):
        return PlannerError(message=f"the Claude API refused the API key (HTTP {status}): check "
                                    "ANTHROPIC_API_KEY and its permissions",
                            metadata={**metadata, "setting": "ANTHROPIC_API_KEY"})
    if status == 402:
        return PlannerError(message="the Claude API refused to bill the key's organisation (HTTP 402): check its "
                                    "plan and credit balance, or plan with --planner offline",
                            metadata={**metadata, "setting": "ANTHROPIC_API_KEY"})
    if status == 404:
        return PlannerError(message=f"the Claude API does not know the model {settings.model!r}: "
                                    "check the Claude planner's model setting (--claude-model)",
                            metadata={**metadata, "setting": "model"})
    if status == 413 or (status == 400 and "prompt is too long" in message.lower()):
        return PlannerError(message=f"the planning request for this dataset is too large for the Claude API "
                                    f"(HTTP {status}: {'request too large' if status == 413 else 'prompt too long'}); "
                                    "ask about fewer tables, or plan with --planner offline",
                            metadata={**metadata, "limit": "context_window" if status == 400 else "request_size"})
    return AnalystError(message=f"the Claude API rejected a request the planner built (HTTP {status}); "
                                f"see the service log, request id {error.request_id or 'unknown'}",
                        metadata=metadata)


def _retryable(error: anthropic.APIError | httpx2.TransportError) -> bool:
    if isinstance(error, anthropic.APIStatusError):
        should = error.response.headers.get("x-should-retry")
        if should in ("true", "false"):
            return should == "true"
        return error.status_code in _TRANSIENT_STATUSES or error.type in _TRANSIENT_TYPES
    return isinstance(error, (anthropic.APIConnectionError, httpx2.TransportError))


def _retry_after(error: BaseException) -> float | None:
    if not isinstance(error, anthropic.APIStatusError):
        return None
    headers = error.response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            value = float(headers[name]) / scale
        except (KeyError, ValueError):
            continue
        if value >= 0:
            return value
    return None


def _backoff(attempt: int) -> float:
    return min(_BACKOFF_FIRST * 2.0**attempt, _BACKOFF_MAX) * (1 - 0.25 * random.random())  # noqa: S311 - jitter
