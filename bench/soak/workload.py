"""What the soak clients send: registry prompts (Ask), SQL (some repeated, so the result cache
answers part of it), and bad input. Each request kind names the outcomes it may end with; any
other outcome is an unexpected error.

Outcomes are labels: `SUCCEEDED`, `<STATE>:<ERROR_CODE>` for a run that did not succeed, or
`grpc:<STATUS>` for a call refused before any run existed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from csv_analyst.v1 import analyst_service_pb2 as api

# Overload is an expected, typed answer: the runner's queue is full (RESOURCE_EXHAUSTED).
SHED = frozenset({"FAILED:RUNNER_RESOURCE_EXCEEDED"})
# What the offline planner may answer a question it cannot plan with confidence.
PLANNER_ANSWERS = frozenset({"REJECTED:CLARIFICATION_NEEDED", "REJECTED:PLANNER_ERROR", "REJECTED:VALIDATION_ERROR",
                             "FAILED:CLARIFICATION_NEEDED", "FAILED:PLANNER_ERROR", "FAILED:QUERY_ERROR",
                             "REJECTED:QUERY_ERROR"})


@dataclass(frozen=True)
class Request:
    """One call a client makes, and the outcomes it may have."""

    kind: str  # question | sql | bad
    ask: api.AskRequest | None = None
    submit: api.SubmitRunRequest | None = None
    expected: frozenset[str] = frozenset()


def _sql_requests(rng: random.Random) -> Request:
    """A SQL statement: half of them from a small fixed set (repeats: cache hits), half unique."""
    fixed = [
        ("ecommerce", "SELECT status, count(*) AS orders, sum(total) AS revenue FROM orders GROUP BY status"),
        ("support", "SELECT priority, avg(csat_score) AS csat FROM tickets GROUP BY priority ORDER BY priority"),
        ("sensors", "SELECT location, max(temp) AS hottest FROM sensors GROUP BY location ORDER BY location"),
    ]
    if rng.random() < 0.5:
        dataset, sql = rng.choice(fixed)
    else:
        k = rng.randrange(1, 1000)
        dataset, sql = rng.choice([
            ("ecommerce", f"SELECT status, count(*) AS n FROM orders WHERE total > {k} GROUP BY status ORDER BY n DESC"),
            ("ecommerce", f"SELECT category, sum(quantity) AS sold FROM order_items WHERE order_id % 1000 <> {k} "
                          "GROUP BY category ORDER BY sold DESC LIMIT 5"),
            ("support", f"SELECT category, count(*) AS open FROM tickets WHERE ticket_id % 997 <> {k} "
                        "AND resolved_at IS NULL GROUP BY category"),
            ("sensors", f"SELECT sensor_id, avg(humidity) AS h FROM sensors WHERE temp > {k % 40} "
                        "GROUP BY sensor_id ORDER BY h DESC LIMIT 10"),
        ])
    return Request("sql", submit=api.SubmitRunRequest(dataset_id=dataset, sql=sql), expected=frozenset({"SUCCEEDED"}) | SHED)


def _bad_requests(rng: random.Random) -> Request:
    """Input a user or an attacker may send: each has its typed answer."""
    choice = rng.randrange(6)
    if choice == 0:
        return Request("bad", submit=api.SubmitRunRequest(dataset_id="ecommerce", sql="DROP TABLE orders"),
                       expected=frozenset({"REJECTED:SQL_POLICY_VIOLATION"}))
    if choice == 1:
        return Request("bad", submit=api.SubmitRunRequest(dataset_id="support", sql="SELECT * FROM read_csv('/etc/passwd')"),
                       expected=frozenset({"REJECTED:SQL_POLICY_VIOLATION"}))
    if choice == 2:
        return Request("bad", submit=api.SubmitRunRequest(dataset_id="sensors", sql="SELECT no_such_column FROM sensors"),
                       expected=frozenset({"REJECTED:SQL_POLICY_VIOLATION", "REJECTED:VALIDATION_ERROR",
                                           "FAILED:QUERY_ERROR", "REJECTED:QUERY_ERROR"}) | SHED)
    if choice == 3:
        return Request("bad", submit=api.SubmitRunRequest(dataset_id="no-such-dataset", sql="SELECT 1"),
                       expected=frozenset({"grpc:NOT_FOUND"}))
    if choice == 4:
        return Request("bad", ask=api.AskRequest(dataset_id="ecommerce", question="   "),
                       expected=frozenset({"grpc:INVALID_ARGUMENT"}))
    return Request("bad", ask=api.AskRequest(dataset_id="support", question="why " * 600),
                   expected=frozenset({"grpc:INVALID_ARGUMENT"}))


class Workload:
    """Draws requests: 40% questions, 40% SQL, 20% bad input (seeded, so runs are comparable)."""

    def __init__(self, registry: Path, seed: int) -> None:
        data = json.loads(registry.read_text(encoding="utf-8"))
        self._prompts = [(d["id"], p) for d in data["datasets"] for p in d.get("prompts", [])]
        self._rng = random.Random(seed)

    def next(self) -> Request:
        """The next request."""
        roll = self._rng.random()
        if roll < 0.4:
            dataset, question = self._rng.choice(self._prompts)
            return Request("question", ask=api.AskRequest(dataset_id=dataset, question=question),
                           expected=frozenset({"SUCCEEDED"}) | PLANNER_ANSWERS | SHED)
        if roll < 0.8:
            return _sql_requests(self._rng)
        return _bad_requests(self._rng)
