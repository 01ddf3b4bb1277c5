"""Dispatch one validated run to the RunnerService and relay its events into the run."""

from __future__ import annotations

import logging
import time

import grpc
from google.protobuf import duration_pb2

from analyst_service.compiler import honest_default_limit
from analyst_service.live import LiveRun
from csv_analyst.v1 import dataset_pb2, run_pb2
from csv_analyst.runner.v1 import runner_dispatch_service_pb2 as dispatch_pb2, runner_dispatch_service_pb2_grpc, sandbox_pb2

log = logging.getLogger(__name__)
TERMINAL_STATES = frozenset({run_pb2.RUN_STATE_SUCCEEDED, run_pb2.RUN_STATE_FAILED, run_pb2.RUN_STATE_REJECTED,
                             run_pb2.RUN_STATE_CANCELLED})
DEADLINE_MARGIN_SECONDS = 0.25  # time left after the sandbox's limit to relay the answer
# The runner call itself ends this long after the caller's deadline: a SubmitRun whose deadline
# passes while it waits in the queue is cancelled by its caller (cause caller_deadline) first.
RUNNER_CALL_GRACE_SECONDS = 1.0
_RUNNER_CODES = {
    grpc.StatusCode.RESOURCE_EXHAUSTED: (run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, 8),
    grpc.StatusCode.INVALID_ARGUMENT: (run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, 13),
    grpc.StatusCode.PERMISSION_DENIED: (run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, 13),
    grpc.StatusCode.UNAUTHENTICATED: (run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, 13),
    grpc.StatusCode.ALREADY_EXISTS: (run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, 13),
    grpc.StatusCode.DEADLINE_EXCEEDED: (run_pb2.ERROR_CODE_RUNNER_TIMEOUT, 4),
}
# What a client is told when the runner service refuses or fails a call (details go to the log).
_RUNNER_MESSAGES = {
    grpc.StatusCode.RESOURCE_EXHAUSTED: "every sandbox is busy and the queue is full; try again in a few seconds",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the run did not finish before the request's deadline",
    grpc.StatusCode.INVALID_ARGUMENT: "the sandbox service refused the run; the service log has the details",
    grpc.StatusCode.PERMISSION_DENIED: "the sandbox service refused the dataset's files; the service log has the details",
    grpc.StatusCode.UNAUTHENTICATED: "the sandbox service refused this service's credential; an operator must check "
                                     "the runner credential",
    grpc.StatusCode.ALREADY_EXISTS: "the sandbox service refused the run; the service log has the details",
}


def seconds(value: float) -> duration_pb2.Duration:
    """A Duration of value seconds."""
    whole = int(value)
    return duration_pb2.Duration(seconds=whole, nanos=int((value - whole) * 1e9))


async def execute(live: LiveRun, dataset: dataset_pb2.Dataset, host_paths: list[str],
                  runner: runner_dispatch_service_pb2_grpc.RunnerServiceStub, *, timeout_seconds: float,
                  memory_bytes: int, max_rows: int, deadline: float | None, runner_target: str) -> None:
    """Run live.run's SQL in a sandbox and record its events, result or error.

    Cancelling the calling task closes the Execute stream, which makes the runner kill the
    sandbox (RunnerService.Execute: closing the stream cancels the run).

    Args:
        deadline: time.monotonic() by which the caller wants the answer: the sandbox's time limit
            never outlives it.
    """
    run = live.run
    remaining = None if deadline is None else max(0.05, deadline - time.monotonic())
    run_timeout = timeout_seconds if remaining is None else \
        max(0.05, min(timeout_seconds, remaining - DEADLINE_MARGIN_SECONDS))
    request = dispatch_pb2.ExecuteRequest(
        run_id=run.run_id, sql=run.sql, python_code=run.python_code, dataset_version=dataset.version_hash,
        tables=[sandbox_pb2.TableSource(name=t.name, path=p) for t, p in zip(dataset.tables, host_paths, strict=True)],
        limits=run_pb2.ResourceLimits(timeout=seconds(run_timeout), memory_bytes=memory_bytes, max_rows=max_rows))
    run.state = run_pb2.RUN_STATE_QUEUED
    queued_at = time.perf_counter()
    try:
        call_timeout = None if remaining is None else remaining + RUNNER_CALL_GRACE_SECONDS
        async for response in runner.Execute(request, timeout=call_timeout):
            if response.runner_mode:
                run.runner_mode = response.runner_mode
            if response.kind == dispatch_pb2.RUNNER_EVENT_KIND_QUEUED:
                live.event(run_pb2.STAGE_QUEUED, f"queued for a sandbox ({response.queue_position} ahead)", sql=run.sql)
            elif response.kind == dispatch_pb2.RUNNER_EVENT_KIND_STARTED:
                run.state = run_pb2.RUN_STATE_RUNNING
                run.start_time.CopyFrom(response.event_time)
                run.stats.queue_duration.CopyFrom(seconds(time.perf_counter() - queued_at))
                live.event(run_pb2.STAGE_EXECUTING, f"executing in a {response.runner_mode} sandbox")
            elif response.kind == dispatch_pb2.RUNNER_EVENT_KIND_FINISHED:
                run.limits.CopyFrom(response.limits)
                run.stats.MergeFrom(response.stats)  # the runner sets only sandbox-side fields
                if response.HasField("error"):
                    run.error.CopyFrom(response.error)
                    run.state = (run_pb2.RUN_STATE_CANCELLED if response.error.code == run_pb2.ERROR_CODE_CANCELLED
                                 else run_pb2.RUN_STATE_FAILED)
                else:
                    run.result.CopyFrom(response.result)
                    if run.HasField("plan") and not run.plan.limit:
                        honest_default_limit(run.result)
                    run.state = run_pb2.RUN_STATE_SUCCEEDED
                    suffix = " (truncated)" if run.result.truncated else ""
                    live.event(run_pb2.STAGE_RESULT, f"{run.result.row_count} rows{suffix}", result=run.result)
    except grpc.aio.AioRpcError as error:
        # The runner's own words (addresses, paths, diagnostics) go to the log, not to the client.
        log.error("run %s: the runner service at %s answered %s: %s", run.run_id, runner_target,
                  error.code().name, error.details())
        code, status = _RUNNER_CODES.get(error.code(), (run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE, 14))
        run.state = run_pb2.RUN_STATE_FAILED
        run.error.CopyFrom(run_pb2.RunError(
            code=code, reason=run_pb2.ErrorCode.Name(code).removeprefix("ERROR_CODE_"), status_code=status,
            message=_RUNNER_MESSAGES.get(error.code(), "the sandbox service is unavailable; try again shortly")
            + f" (run {run.run_id})"))
    if run.state not in TERMINAL_STATES:
        run.state = run_pb2.RUN_STATE_FAILED
        run.error.CopyFrom(run_pb2.RunError(code=run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, reason="RUNNER_INTERNAL_ERROR",
                                            status_code=13, message="the runner ended the run without a result"))
