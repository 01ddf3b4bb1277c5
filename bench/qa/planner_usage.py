"""Tokens, latency and cost of a model-backed planner, read from a batch's capsule store.

Every run records its planner's model calls as typed `PlannerAttempt`s and its planning time in
`RunStats.planning_duration`; summed per question they give what the accuracy cost.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csv_analyst.v1 import capsule_pb2

# US dollars per million tokens (list prices of Claude Sonnet 4.x: input, output; cache writes are
# 1.25x input, cache reads 0.1x input). Override with --price-in/--price-out for another model.
PRICE_IN, PRICE_OUT = 3.0, 15.0


@dataclass
class PlannerUsage:
    """Totals over the questions of one set."""

    questions: int = 0
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    planning_seconds: list[float] = field(default_factory=list)

    def add_store(self, capsule_db: Path) -> None:
        """Add every run of one capsule database (a batch's throw-away store)."""
        if not capsule_db.exists():
            return
        with sqlite3.connect(f"file:{capsule_db}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT capsule FROM capsules").fetchall()
        for (blob,) in rows:
            run = capsule_pb2.Capsule.FromString(blob).run
            if not run.question:
                continue
            self.questions += 1
            self.planning_seconds.append(run.stats.planning_duration.ToNanoseconds() / 1e9)
            for attempt in run.planner_attempts:
                self.model_calls += 1
                self.input_tokens += attempt.input_tokens
                self.output_tokens += attempt.output_tokens
                self.cache_read_tokens += attempt.cache_read_tokens
                self.cache_write_tokens += attempt.cache_write_tokens

    def cost(self, price_in: float = PRICE_IN, price_out: float = PRICE_OUT) -> float:
        """US dollars for all questions at the given prices per million tokens."""
        return (self.input_tokens * price_in + self.cache_write_tokens * price_in * 1.25
                + self.cache_read_tokens * price_in * 0.1 + self.output_tokens * price_out) / 1e6

    def to_json(self, price_in: float = PRICE_IN, price_out: float = PRICE_OUT) -> dict[str, Any]:
        """Totals, per-question means and latency percentiles."""
        n = max(1, self.questions)
        times = sorted(self.planning_seconds) or [0.0]
        return {"questions": self.questions, "model_calls": self.model_calls, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cache_read_tokens": self.cache_read_tokens,
                "cache_write_tokens": self.cache_write_tokens,
                "calls_per_question": round(self.model_calls / n, 2),
                "tokens_per_question": round((self.input_tokens + self.output_tokens + self.cache_read_tokens
                                              + self.cache_write_tokens) / n),
                "planning_p50_seconds": round(times[len(times) // 2], 3),
                "planning_p95_seconds": round(times[min(len(times) - 1, int(0.95 * len(times)))], 3),
                "cost_usd": round(self.cost(price_in, price_out), 4),
                "cost_per_question_usd": round(self.cost(price_in, price_out) / n, 5)}

    def format(self, price_in: float = PRICE_IN, price_out: float = PRICE_OUT) -> str:
        """One line for the report."""
        j = self.to_json(price_in, price_out)
        return (f"planner: {j['model_calls']} model calls ({j['calls_per_question']}/question), "
                f"{j['tokens_per_question']} tokens/question (cache read {j['cache_read_tokens']}, write "
                f"{j['cache_write_tokens']}), planning p50 {j['planning_p50_seconds']} s / p95 "
                f"{j['planning_p95_seconds']} s, ${j['cost_per_question_usd']}/question")
