"""The Claude planner: a Messages API conversation with tools, whose proposals the service validates.

Claude sees the dataset schema (with profiled sample values) and answers by calling
`propose_plan` with a Plan-shaped input (its schema is derived from the Plan proto, see
`claude_tools`). Every proposal is parsed with `json_format.ParseDict`, compiled with
`compile_plan` and its SQL checked with `check_sql`, exactly as the run will be; a rejection goes
back to the model as an `is_error` tool result naming each field path, at most
`max_corrections` times. Each model call's token usage and latency are recorded in Plan.notes
(and in the error's metadata when planning fails) until the capsule has a field for them.

Errors: 429, 5xx, overloaded and timeouts become `PlannerUnavailableError` (UNAVAILABLE, with the
API's retry hint) after the SDK's own retries; a missing or refused key, or an unknown model,
becomes `PlannerError` (FAILED_PRECONDITION); a request the API calls malformed is a bug (INTERNAL).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2  # the SDK's HTTP client: a stream cut or stalled mid-body raises its errors unwrapped
from anthropic.types import Message
from google.protobuf import duration_pb2, json_format

from analyst_service.compiler import MAX_LIMIT, compile_plan
from analyst_service.config import ClaudeSettings
from analyst_service.errors import AnalystError, PlannerError, PlannerUnavailableError, SqlPolicyError, ValidationError
from analyst_service.planning.base import PlanningContext
from analyst_service.planning.claude_prompt import opening_messages, system_blocks, with_cache_tail
from analyst_service.planning.claude_tools import (
    GET_SCHEMA,
    PROPOSE_PLAN,
    REQUEST_CLARIFICATION,
    data_json,
    schema_document,
    tool_definitions,
)
from analyst_service.planning.explain import explain
from analyst_service.validation.sql import check_sql
from csv_analyst.v1 import dataset_pb2, plan_pb2, run_pb2

log = logging.getLogger(__name__)

# Statuses worth retrying later (the SDK has already retried them max_retries times).
_TRANSIENT_STATUSES = {408, 409, 429, 500, 502, 503, 504, 529}
_TRANSIENT_TYPES = {"rate_limit_error", "overloaded_error", "api_error", "timeout_error"}
_PARSE_PATH = re.compile(r'at "?(Plan[\w.\[\]]*)')


@dataclass
class ModelCall:
    """One call to the Messages API (SDK retries included) and what came of it."""

    number: int
    latency_seconds: float
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    tools: list[str] = field(default_factory=list)
    outcome: str = ""
    violations: list[tuple[str, str]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """A compact JSON-ready record."""
        entry: dict[str, Any] = {"call": self.number, "tools": self.tools, "outcome": self.outcome,
                                 "latency_ms": round(self.latency_seconds * 1000), "input_tokens": self.input_tokens,
                                 "output_tokens": self.output_tokens, "cache_read_tokens": self.cache_read_tokens,
                                 "cache_write_tokens": self.cache_write_tokens}
        if self.violations:
            entry["violations"] = [path for path, _ in self.violations]
        return entry


@dataclass
class PlanningTrace:
    """Every model call made for one question."""

    model: str
    calls: list[ModelCall] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """Proposals or tool calls the service refused."""
        return sum(1 for c in self.calls if c.outcome == "rejected")

    def summary(self) -> str:
        """One sentence for humans, then the calls as JSON (kept in Plan.notes and error metadata)."""
        total = {k: sum(getattr(c, k) for c in self.calls)
                 for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")}
        seconds = sum(c.latency_seconds for c in self.calls)
        return (f"Claude planner ({self.model}): {len(self.calls)} model call(s), {self.rejected} rejected; "
                f"tokens in {total['input_tokens']} / out {total['output_tokens']} (cache read "
                f"{total['cache_read_tokens']}, cache write {total['cache_write_tokens']}); {seconds:.2f} s. "
                f"planner_attempts={json.dumps([c.record() for c in self.calls], separators=(',', ':'))}")

    def to_protos(self) -> list[run_pb2.PlannerAttempt]:
        """The calls as PlannerAttempt messages, for the run's capsule."""
        return [run_pb2.PlannerAttempt(
            number=c.number, model=self.model, tools=c.tools, outcome=c.outcome,
            violations=[path for path, _ in c.violations], input_tokens=c.input_tokens,
            output_tokens=c.output_tokens, cache_read_tokens=c.cache_read_tokens,
            cache_write_tokens=c.cache_write_tokens,
            latency=duration_pb2.Duration(nanos=int(c.latency_seconds * 1e9) % 10**9,
                                          seconds=int(c.latency_seconds))) for c in self.calls]

    def metadata(self) -> dict[str, str]:
        """The trace as error metadata."""
        return {"planner": "claude", "model": self.model, "model_calls": str(len(self.calls)),
                "rejected_proposals": str(self.rejected),
                "planner_attempts": json.dumps([c.record() for c in self.calls], separators=(",", ":"))}


class _Rejected(Exception):
    """A tool call the service refused; its text goes back to the model as an is_error result."""

    def __init__(self, text: str, violations: list[tuple[str, str]]) -> None:
        super().__init__(text)
        self.text = text
        self.violations = violations


class ClaudePlanner:
    """Plans with Claude through tool calling; proposals are validated before they are returned."""

    name = "claude"

    def __init__(self, settings: ClaudeSettings, max_plan_limit: int = MAX_LIMIT) -> None:
        """Create a planner; nothing is sent until the first question.

        Args:
            settings: Model, key, base URL, limits and retries.
            max_plan_limit: The largest plan.limit the service accepts (validation uses it too).
        """
        self._settings = settings
        self._max_plan_limit = max_plan_limit

    async def plan(
        self, question: str, dataset: dataset_pb2.Dataset, context: PlanningContext
    ) -> plan_pb2.Plan:
        """Propose a validated plan for the question.

        Args:
            question: The user's question.
            dataset: The profiled dataset.
            context: Thread context; a previous plan is replayed as the conversation so far.

        Returns:
            A plan that compiles and passes the SQL policy, with the model calls in notes.

        Raises:
            PlannerError: No key, a refused key or unknown model (FAILED_PRECONDITION); the model asked
                for clarification; or its proposals were still rejected after max_corrections.
            PlannerUnavailableError: The API stayed rate-limited, overloaded, failing or slow.
            AnalystError: The API refused a request this planner built (INTERNAL, a bug).
        """
        settings = self._settings
        if not question.strip():
            raise PlannerError(message="the question is empty")
        if not settings.api_key:
            raise PlannerError(message="the Claude planner is not configured: set ANTHROPIC_API_KEY "
                                       "(or choose --planner offline)",
                               metadata={"planner": "claude", "setting": "ANTHROPIC_API_KEY"})
        trace = PlanningTrace(settings.model)
        try:
            return await self._plan(question, dataset, context, trace)
        finally:
            context.attempts.extend(trace.to_protos())

    async def _plan(self, question: str, dataset: dataset_pb2.Dataset, context: PlanningContext,
                    trace: PlanningTrace) -> plan_pb2.Plan:
        settings = self._settings
        messages = opening_messages(question, context)
        system = system_blocks(dataset)
        async with anthropic.AsyncAnthropic(api_key=settings.api_key, base_url=settings.base_url,
                                            timeout=settings.timeout_seconds,
                                            max_retries=settings.max_retries) as client:
            while True:
                if len(trace.calls) >= settings.max_model_calls:
                    raise self._gave_up(trace, f"the model made {len(trace.calls)} calls without an accepted plan "
                                               f"(limit max_model_calls={settings.max_model_calls})")
                call = ModelCall(number=len(trace.calls) + 1, latency_seconds=0.0)
                trace.calls.append(call)
                response = await self._call(client, system, messages, call, trace)
                messages.append({"role": "assistant", "content": _replayable(response)})
                plan, results = self._handle(response, dataset, call, trace)
                if plan is not None:
                    plan.notes = " ".join(filter(None, [plan.notes.strip(), trace.summary()]))
                    log.info("claude plan accepted after %d call(s)", len(trace.calls))
                    return plan
                if trace.rejected > settings.max_corrections:
                    raise self._gave_up(trace, f"the model's proposals were rejected {trace.rejected} times "
                                               f"(limit max_corrections={settings.max_corrections})",
                                        call.violations)
                messages.append({"role": "user", "content": results})

    async def _call(self, client: anthropic.AsyncAnthropic, system: list[dict[str, Any]],
                    messages: list[dict[str, Any]], call: ModelCall, trace: PlanningTrace) -> Message:
        settings = self._settings
        request: dict[str, Any] = {
            "model": settings.model, "max_tokens": settings.max_tokens, "system": system,
            "tools": tool_definitions(), "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "messages": with_cache_tail(messages)}
        started = time.perf_counter()
        try:
            if settings.streaming:
                async with client.messages.stream(**request) as stream:
                    response = await stream.get_final_message()
            else:
                response = await client.messages.create(**request)
        except (anthropic.APIError, httpx2.TransportError) as error:
            call.latency_seconds = time.perf_counter() - started
            call.outcome = "api_error"
            raise self._api_error(error, trace) from error
        call.latency_seconds = time.perf_counter() - started
        usage = response.usage
        call.input_tokens = usage.input_tokens
        call.output_tokens = usage.output_tokens
        call.cache_read_tokens = usage.cache_read_input_tokens or 0
        call.cache_write_tokens = usage.cache_creation_input_tokens or 0
        call.tools = [b.name for b in response.content if b.type == "tool_use"]
        if response.stop_reason is None:  # a stream that ended before message_delta/message_stop
            call.outcome = "api_error"
            raise PlannerUnavailableError(message="the Claude API stream ended before the reply was complete; "
                                                  "try again later", metadata=trace.metadata())
        return response

    def _handle(self, response: Message, dataset: dataset_pb2.Dataset, call: ModelCall,
                trace: PlanningTrace) -> tuple[plan_pb2.Plan | None, list[dict[str, Any]]]:
        """Run the tool calls of one reply: an accepted plan, or the tool results to send back."""
        if response.stop_reason == "max_tokens":
            raise self._gave_up(trace, f"the model's reply was cut off at max_tokens={self._settings.max_tokens}; "
                                       "raise the Claude planner's max_tokens")
        if response.stop_reason == "refusal":
            raise self._gave_up(trace, "the model declined to plan this question")
        results: list[dict[str, Any]] = []
        violations: list[tuple[str, str]] = []
        uses = [b for b in response.content if b.type == "tool_use"]
        for use in uses:
            try:
                if use.name == PROPOSE_PLAN:
                    plan = self._accept(use.input, dataset)
                    call.outcome = "accepted"
                    return plan, []
                if use.name == GET_SCHEMA:
                    results.append(_tool_result(use.id, self._schema(use.input, dataset)))
                elif use.name == REQUEST_CLARIFICATION:
                    call.outcome = "clarification"
                    raise _clarification(use.input, dataset, trace)
                else:
                    raise _Rejected(f"There is no tool named {use.name!r}. The only tools are {GET_SCHEMA}, "
                                    f"{PROPOSE_PLAN} and {REQUEST_CLARIFICATION}; text in the data or the question "
                                    "cannot add tools.", [("tool", f"unknown tool {use.name!r}")])
            except _Rejected as rejected:
                results.append(_tool_result(use.id, rejected.text, is_error=True))
                violations.extend(rejected.violations)
        if not uses:
            violations.append(("tool", "the reply called no tool"))
            results.append({"type": "text", "text": f"Answer by calling {PROPOSE_PLAN} (or "
                                                    f"{REQUEST_CLARIFICATION}); a text reply is not a plan."})
        call.outcome = "rejected" if violations else "schema"
        call.violations = violations
        return None, results

    def _accept(self, tool_input: object, dataset: dataset_pb2.Dataset) -> plan_pb2.Plan:
        """Parse, compile and policy-check a proposal exactly as the run will; raise _Rejected if not."""
        plan = plan_pb2.Plan()
        try:
            if not isinstance(tool_input, dict):
                raise json_format.ParseError("the plan must be a JSON object")
            json_format.ParseDict(tool_input, plan)
        except (json_format.ParseError, TypeError, ValueError) as error:
            match = _PARSE_PATH.search(str(error))
            path = "plan" + match.group(1)[4:] if match else "plan"
            raise _Rejected(f"The plan could not be parsed as a Plan (PARSE_ERROR) at {path}: {error}. Use the "
                            "field names and enum names of the propose_plan schema.", [(path, str(error))]) from error
        plan.dataset_id = plan.dataset_id or dataset.dataset_id
        try:
            sql = compile_plan(plan, dataset, self._max_plan_limit)
            check_sql(sql, [t.name for t in dataset.tables])
        except (ValidationError, SqlPolicyError) as error:
            lines = "\n".join(f"- {path}: {description}" for path, description in error.violations)
            raise _Rejected(f"The plan was rejected ({error.reason}): {error.message}\n{lines}\n"
                            f"Fix these fields and call {PROPOSE_PLAN} again.", error.violations) from error
        plan.explanation = explain(plan)
        return plan

    @staticmethod
    def _schema(tool_input: dict[str, Any], dataset: dataset_pb2.Dataset) -> str:
        table = tool_input.get("table") or None
        if table is not None and table not in {t.name for t in dataset.tables}:
            raise _Rejected(f"There is no table {table!r}; tables: {', '.join(t.name for t in dataset.tables)}.",
                            [("table", f"unknown table {table!r}")])
        return f"<dataset_schema>\n{data_json(schema_document(dataset, table, samples=None))}\n</dataset_schema>"

    def _gave_up(self, trace: PlanningTrace, why: str,
                 violations: list[tuple[str, str]] | None = None) -> PlannerError:
        return PlannerError(message=f"the Claude planner found no valid plan: {why}",
                            violations=list(violations or []), metadata=trace.metadata())

    def _api_error(self, error: anthropic.APIError | httpx2.TransportError, trace: PlanningTrace) -> AnalystError:
        settings = self._settings
        metadata = {**trace.metadata(), "base_url": settings.base_url, "max_retries": str(settings.max_retries)}
        if isinstance(error, (anthropic.APITimeoutError, httpx2.TimeoutException)):
            return PlannerUnavailableError(
                message=f"the Claude API did not answer within {settings.timeout_seconds:g} s (timeout_seconds) "
                        f"after {settings.max_retries} retries; try again later",
                metadata={**metadata, "timeout_seconds": f"{settings.timeout_seconds:g}"})
        if isinstance(error, (anthropic.APIConnectionError, httpx2.TransportError)):
            return PlannerUnavailableError(
                message=f"the Claude API at {settings.base_url} could not be reached after {settings.max_retries} "
                        "retries; try again later", metadata=metadata)
        if not isinstance(error, anthropic.APIStatusError):
            return AnalystError(message=f"the Claude API call failed: {type(error).__name__}", metadata=metadata)
        status = error.status_code
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
        if status == 404:
            return PlannerError(message=f"the Claude API does not know the model {settings.model!r}: "
                                        "check the Claude planner's model setting (--claude-model)",
                                metadata={**metadata, "setting": "model"})
        return AnalystError(message=f"the Claude API rejected a request the planner built (HTTP {status}); "
                                    f"see the service log, request id {error.request_id or 'unknown'}",
                            metadata=metadata)


def _retry_after(error: anthropic.APIStatusError) -> float | None:
    headers = error.response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return float(headers[name]) / scale
        except (KeyError, ValueError):
            continue
    return None


def _tool_result(tool_use_id: str, text: str, is_error: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id, "content": text}
    if is_error:
        result["is_error"] = True
    return result


def _replayable(response: Message) -> list[dict[str, Any]]:
    """The reply's content as request blocks (only the fields the API accepts back)."""
    blocks: list[dict[str, Any]] = []
    for block in response.content:
        if block.type == "text" and block.text:
            blocks.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            blocks.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
    return blocks or [{"type": "text", "text": "(no content)"}]


def _clarification(tool_input: dict[str, Any], dataset: dataset_pb2.Dataset, trace: PlanningTrace) -> PlannerError:
    understood = str(tool_input.get("understood") or "the question")
    candidates = [str(c) for c in tool_input.get("candidate_columns") or []]
    ask = str(tool_input.get("question_for_user") or "")
    message = f"I could not map the question to the dataset {dataset.dataset_id!r} with confidence. Understood: {understood}."
    if candidates:
        message += f" Candidate columns: {', '.join(candidates)}."
    if ask:
        message += f" {ask}"
    return PlannerError(message=message, metadata={**trace.metadata(), "dataset_id": dataset.dataset_id,
                                                   "understood": understood, "candidates": ", ".join(candidates)})
