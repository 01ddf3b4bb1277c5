"""Dry runs for planners: one small read-only SELECT over a dataset in a sandbox, rows as text.

A planner checks a plan before accepting it (does any row hold the filter value the model
wrote?). The SQL passes the same policy as a run's, the sandbox gets a short time limit and a row
cap, and nothing is recorded: a probe is part of planning, not a run. A query that fails in the
engine (a cast that cannot convert, say) raises `ProbeQueryError` with the engine's message, so
the planner can correct the plan; any other failure (policy, a busy or slow sandbox) answers None
(the planner then judges nothing), so a busy runner never fails a question through a probe.
"""

from __future__ import annotations

import logging
import uuid

import grpc

from analyst_service.dispatch import seconds
from analyst_service.errors import AnalystError
from analyst_service.planning.base import ProbeQueryError
from analyst_service.validation.sql import check_sql
from csv_analyst.runner.v1 import runner_dispatch_service_pb2 as dispatch_pb2, runner_dispatch_service_pb2_grpc, sandbox_pb2
from csv_analyst.v1 import dataset_pb2, run_pb2, value_pb2

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 2.0
MIN_PROBE_SECONDS = 0.2  # less time than this left before the deadline: no probe
PROBE_MAX_ROWS = 10


def cell_text(value: value_pb2.Value) -> str:
    """A result cell as text (NULL for a null)."""
    kind = value.WhichOneof("kind")
    return "NULL" if kind in (None, "null_value") else str(getattr(value, kind))


async def probe_rows(runner: runner_dispatch_service_pb2_grpc.RunnerServiceStub, dataset: dataset_pb2.Dataset,
                     host_paths: list[str], sql: str, *, memory_bytes: int, runner_target: str,
                     timeout_seconds: float = PROBE_TIMEOUT_SECONDS) -> list[list[str]] | None:
    """Run `sql` over the dataset in a sandbox.

    Args:
        runner: The RunnerService stub.
        dataset: The dataset (its tables are the query's tables).
        host_paths: The tables' files, in dataset order.
        sql: One read-only SELECT.
        memory_bytes: The sandbox's memory limit.
        runner_target: For the log.
        timeout_seconds: The sandbox's time limit (the caller keeps it within its deadline).

    Returns:
        Up to PROBE_MAX_ROWS rows as text, or None when the policy refused the SQL or it did not run.

    Raises:
        ProbeQueryError: The query ran and failed in the engine (QUERY_ERROR).
    """
    try:
        check_sql(sql, {t.name: [c.name for c in t.columns] for t in dataset.tables})
    except AnalystError:
        log.warning("a planner's probe was refused by the SQL policy: %s", sql)
        return None
    request = dispatch_pb2.ExecuteRequest(
        run_id="p" + uuid.uuid4().hex[:20], sql=sql, dataset_version=dataset.version_hash,
        tables=[sandbox_pb2.TableSource(name=t.name, path=p) for t, p in zip(dataset.tables, host_paths, strict=True)],
        limits=run_pb2.ResourceLimits(timeout=seconds(timeout_seconds), memory_bytes=memory_bytes,
                                      max_rows=PROBE_MAX_ROWS))
    call = runner.Execute(request, timeout=timeout_seconds + 1)
    try:
        async for response in call:
            if response.kind == dispatch_pb2.RUNNER_EVENT_KIND_FINISHED:
                if response.HasField("error"):
                    if response.error.code == run_pb2.ERROR_CODE_QUERY_ERROR:
                        raise ProbeQueryError(response.error.message)
                    return None
                return [[cell_text(v) for v in row.values] for row in response.result.rows]
    except grpc.aio.AioRpcError as error:
        log.warning("a planner's probe: the runner service at %s answered %s", runner_target, error.code().name)
    finally:
        call.cancel()
    return None
