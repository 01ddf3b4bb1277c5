"""The record of the Claude planner's model calls for one question (capsule and error metadata)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import duration_pb2

from csv_analyst.v1 import run_pb2


@dataclass
class ModelCall:
    """One call to the Messages API (its HTTP retries included) and what came of it."""

    number: int
    latency_seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    tools: list[str] = field(default_factory=list)
    outcome: str = ""
    violations: list[tuple[str, str]] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    stop_reason: str = ""

    def record(self) -> dict[str, Any]:
        """A compact JSON-ready record."""
        entry: dict[str, Any] = {"call": self.number, "tools": self.tools, "outcome": self.outcome,
                                 "stop_reason": self.stop_reason, "request_ids": self.request_ids,
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
    warned_values: set[str] = field(default_factory=set)  # unknown-value corrections already sent

    @property
    def rejected(self) -> int:
        """Proposals or tool calls the service refused."""
        return sum(1 for c in self.calls if c.outcome == "rejected")

    def totals(self) -> dict[str, int]:
        """Token totals over the calls."""
        return {k: sum(getattr(c, k) for c in self.calls)
                for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")}

    def to_protos(self) -> list[run_pb2.PlannerAttempt]:
        """The calls as PlannerAttempt messages, for the run's capsule."""
        return [run_pb2.PlannerAttempt(
            number=c.number, model=self.model, tools=c.tools, outcome=c.outcome,
            violations=[path for path, _ in c.violations], input_tokens=c.input_tokens,
            output_tokens=c.output_tokens, cache_read_tokens=c.cache_read_tokens,
            cache_write_tokens=c.cache_write_tokens, request_ids=c.request_ids, stop_reason=c.stop_reason,
            latency=duration_pb2.Duration(nanos=int(c.latency_seconds * 1e9) % 10**9,
                                          seconds=int(c.latency_seconds))) for c in self.calls]

    def metadata(self) -> dict[str, str]:
        """The trace as error metadata (the capsule has the typed attempts too)."""
        return {"planner": "claude", "model": self.model, "model_calls": str(len(self.calls)),
                "rejected_proposals": str(self.rejected),
                "planner_attempts": json.dumps([c.record() for c in self.calls], separators=(",", ":"))}
