"""Prometheus metrics of the analyst service (prometheus-client; `serve --metrics-port N`).

Runs by final state and query type, the time each stage took, and the Claude planner's model
calls and tokens. Observed once per run, when its capsule is stored (runs.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from csv_analyst.v1 import run_pb2

RUNS = Counter("csv_analyst_runs_total", "Runs by final state and query type", ["state", "query_type"])
STAGE_SECONDS = Histogram("csv_analyst_stage_seconds", "Time a run spent in each stage", ["stage"],
                          buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
RESULT_CACHE = Counter("csv_analyst_result_cache_total", "Exact result cache look-ups", ["result"])
PLANNER_ATTEMPTS = Counter("csv_analyst_planner_attempts_total", "Model calls of model-backed planners", ["planner"])
PLANNER_TOKENS = Counter("csv_analyst_planner_tokens_total", "Tokens of model-backed planners", ["planner", "kind"])

_STAGES = (("planning", "planning_duration"), ("validation", "validation_duration"), ("queue", "queue_duration"),
           ("sandbox", "sandbox_duration"), ("query", "query_duration"))


def observe_run(run: run_pb2.Run) -> None:
    """Count a finished run and the time of each stage it went through."""
    state = run_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_").lower()
    query_type = run_pb2.QueryType.Name(run.query_type).removeprefix("QUERY_TYPE_").lower()
    RUNS.labels(state=state, query_type=query_type).inc()
    for stage, field in _STAGES:
        if run.stats.HasField(field):
            STAGE_SECONDS.labels(stage=stage).observe(getattr(run.stats, field).ToMicroseconds() / 1e6)
    for attempt in run.planner_attempts:
        PLANNER_ATTEMPTS.labels(planner=run.planner or "unknown").inc()
        for kind in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            value = getattr(attempt, kind)
            if value:
                PLANNER_TOKENS.labels(planner=run.planner or "unknown", kind=kind.removesuffix("_tokens")).inc(value)


def run_log_fields(run: run_pb2.Run) -> dict[str, object]:
    """The fields of a finished run's log line (no question text, SQL or rows)."""
    fields: dict[str, object] = {
        "run_id": run.run_id, "dataset_id": run.dataset_id, "dataset_version": run.dataset_version_hash[:16],
        "state": run_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_").lower(),
        "query_type": run_pb2.QueryType.Name(run.query_type).removeprefix("QUERY_TYPE_").lower(),
        "error_code": run.error.reason, "executor": run.runner_mode, "planner": run.planner,
    }
    for stage, field in _STAGES:
        if run.stats.HasField(field):
            fields[f"{stage}_ms"] = round(getattr(run.stats, field).ToMicroseconds() / 1000, 1)
    return fields
