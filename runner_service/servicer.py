"""RunnerService: admission, one sandbox per run, streamed events."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from csv_analyst.v1 import run_pb2
from csv_analyst.runner.v1 import runner_dispatch_service_pb2 as dispatch_pb2, runner_dispatch_service_pb2_grpc
from runner_service import metrics
from runner_service.admission import Admission, QueueFullError
from runner_service.config import RunnerSettings
from runner_service.data_roots import REFUSAL, DataRoots
from runner_service.executors.base import Executor, SandboxRequest, SandboxStartError, TableFile
from runner_service.materialize import Materializer
from runner_service.status import rich_status

log = logging.getLogger(__name__)
RUN_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def effective_limits(requested: run_pb2.ResourceLimits, settings: RunnerSettings) -> run_pb2.ResourceLimits:
    """Fill unset limits with defaults and cap the rest at the service maximums."""
    timeout = requested.timeout.ToMilliseconds() / 1000 if requested.HasField("timeout") else 0
    # Unset and non-positive values take the default (the servicer refuses negative ones first).
    timeout = min(timeout if timeout > 0 else settings.default_timeout_seconds, settings.max_timeout_seconds)
    memory = requested.memory_bytes if requested.memory_bytes > 0 else settings.default_memory_bytes
    max_rows = requested.max_rows if requested.max_rows > 0 else settings.default_max_rows
    return run_pb2.ResourceLimits(
        timeout=duration_pb2.Duration(seconds=int(timeout), nanos=int((timeout % 1) * 1e9)),
        memory_bytes=min(memory, settings.max_memory_bytes),
        max_rows=min(max_rows, settings.max_rows_cap),
        threads=settings.threads,
        max_processes=settings.max_processes,
        max_output_bytes=settings.max_output_bytes,
    )


class RunnerServicer(runner_dispatch_service_pb2_grpc.RunnerServiceServicer):
    """Queues runs and executes each one in a fresh sandbox."""

    def __init__(self, settings: RunnerSettings, executor: Executor, materializer: Materializer | None = None,
                 data_roots: DataRoots | None = None) -> None:
        self._settings = settings
        self._executor = executor
        self._materializer = materializer
        self._roots = data_roots or DataRoots(settings.data_roots)
        self._admission = Admission(settings.concurrency(), settings.max_queue)
        metrics.QUEUE_DEPTH.set_function(lambda: self._admission.waiting)
        pool = getattr(executor, "pool", None)
        if pool is not None:
            metrics.WARM_POOL_SIZE.set_function(pool.count)
        self._runs: set[str] = set()  # every run id this service is holding (queued or running)
        self._queued: set[str] = set()
        self._cancelled: set[str] = set()
        self._refills: set[asyncio.Future[None]] = set()

    async def Execute(self, request: dispatch_pb2.ExecuteRequest, context: grpc.aio.ServicerContext
                      ) -> AsyncIterator[dispatch_pb2.ExecuteResponse]:
        host_paths = await self._check_request(request, context)
        if request.run_id in self._runs:
            await context.abort_with_status(rich_status(
                grpc.StatusCode.ALREADY_EXISTS, "RUN_EXISTS", f"run {request.run_id!r} is already queued or running",
                {"run_id": request.run_id}))
        try:
            position = self._admission.admit()
        except QueueFullError as error:
            metrics.ADMISSION_REJECTIONS.inc()
            await context.abort_with_status(rich_status(
                grpc.StatusCode.RESOURCE_EXHAUSTED, "QUEUE_FULL", str(error), {"max_queue": str(error.max_queue)}, 1.0))
        self._runs.add(request.run_id)
        try:
            async for response in self._execute(request, host_paths, position, context):
                yield response
        finally:
            self._runs.discard(request.run_id)

    async def _execute(self, request: dispatch_pb2.ExecuteRequest, host_paths: list[str], position: int,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[dispatch_pb2.ExecuteResponse]:
        sequence = 0

        def event(kind: int, **fields: object) -> dispatch_pb2.ExecuteResponse:
            nonlocal sequence
            sequence += 1
            now = timestamp_pb2.Timestamp()
            now.GetCurrentTime()
            return dispatch_pb2.ExecuteResponse(run_id=request.run_id, kind=kind, sequence=sequence, event_time=now,
                                                runner_mode=self._executor.name, **fields)

        limits = effective_limits(request.limits, self._settings)
        self._queued.add(request.run_id)
        yield event(dispatch_pb2.RUNNER_EVENT_KIND_QUEUED, queue_position=position)
        async with self._admission.slot():
            self._queued.discard(request.run_id)
            if request.run_id in self._cancelled:
                self._cancelled.discard(request.run_id)
                yield event(dispatch_pb2.RUNNER_EVENT_KIND_FINISHED, limits=limits, error=run_pb2.RunError(
                    code=run_pb2.ERROR_CODE_CANCELLED, reason="CANCELLED", message="the run was cancelled", status_code=1))
                return
            tables = tuple(TableFile(t.name, path) for t, path in zip(request.tables, host_paths, strict=True))
            database = self._materializer.lookup(request.dataset_version, tables) if self._materializer else ""
            if self._materializer:
                metrics.MATERIALISED.labels(result="hit" if database else "miss").inc()
            sandbox_request = SandboxRequest(run_id=request.run_id, sql=request.sql, python_code=request.python_code,
                                             limits=limits, tables=tables,
                                             database_path=database)
            started = asyncio.Event()
            execution = asyncio.create_task(self._executor.execute(sandbox_request, started.set))
            waiter = asyncio.create_task(started.wait())
            try:
                await asyncio.wait({execution, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if started.is_set():
                    yield event(dispatch_pb2.RUNNER_EVENT_KIND_STARTED)
                outcome = await execution
            except SandboxStartError as error:
                log.error("run %s: sandbox did not start: %s", request.run_id, error)
                await context.abort_with_status(rich_status(
                    grpc.StatusCode.UNAVAILABLE, "SANDBOX_START_FAILED",
                    f"no sandbox could be started for run {request.run_id}; the service log has the details",
                    {"executor": self._executor.name}))
            finally:
                waiter.cancel()
                if not execution.done():
                    # The caller went away: closing the stream cancels the run and kills its sandbox.
                    await self._executor.cancel(request.run_id)
                    execution.cancel()
            stats = run_pb2.RunStats(
                sandbox_duration=_duration(outcome.wall_seconds),
                query_duration=_duration(outcome.result.query_seconds),
                rows_produced=outcome.result.rows_produced,
                stdout=outcome.stdout, stderr=outcome.stderr)
            finished = event(dispatch_pb2.RUNNER_EVENT_KIND_FINISHED, limits=limits, stats=stats)
            if outcome.result.HasField("error"):
                finished.error.CopyFrom(outcome.result.error)
            else:
                finished.result.CopyFrom(outcome.result.result)
            # Refill warm sandboxes once the call has ended (however it ends), so neither the
            # query nor the answer's way back waits for it (a refill competing with the query for
            # the CPU doubled latency when measured on 2 cores; one still in the call held its
            # end back by 2-3 ms).
            if getattr(self._executor, "replenish", None) is not None:
                context.add_done_callback(self._replenish_later)
            log.info("run finished in the sandbox", extra={
                "run_id": request.run_id, "executor": self._executor.name, "materialised": bool(database),
                "sandbox_ms": round(outcome.wall_seconds * 1000, 1),
                "query_type": "python" if request.python_code else "sql",
                "error_code": outcome.result.error.reason if outcome.result.HasField("error") else ""})
            yield finished

    def _replenish_later(self, _context: object) -> None:
        refill = asyncio.ensure_future(self._executor.replenish())  # type: ignore[attr-defined]
        self._refills.add(refill)
        refill.add_done_callback(self._refills.discard)

    async def CancelRun(self, request: dispatch_pb2.CancelRunRequest, context: grpc.aio.ServicerContext
                        ) -> dispatch_pb2.CancelRunResponse:
        if request.run_id in self._queued:
            self._cancelled.add(request.run_id)
            return dispatch_pb2.CancelRunResponse(cancelled=True)
        if await self._executor.cancel(request.run_id):
            return dispatch_pb2.CancelRunResponse(cancelled=True)
        await context.abort_with_status(rich_status(
            grpc.StatusCode.NOT_FOUND, "RUN_NOT_FOUND", f"no queued or running run {request.run_id!r}",
            {"run_id": request.run_id}))
        raise AssertionError("unreachable")

    async def _check_request(self, request: dispatch_pb2.ExecuteRequest, context: grpc.aio.ServicerContext
                             ) -> list[str]:
        """Refuse a malformed request; return the resolved host path of each table file."""
        problems = []
        if not RUN_ID.match(request.run_id):
            problems.append(("run_id", "must be 1-63 lowercase letters, digits or dashes"))
        if bool(request.sql.strip()) == bool(request.python_code.strip()):
            problems.append(("sql", "exactly one of sql and python_code is required"))
        limits = request.limits
        for name, value in (("timeout", limits.timeout.ToNanoseconds()), ("memory_bytes", limits.memory_bytes),
                            ("max_rows", limits.max_rows)):
            if value < 0:
                problems.append((f"limits.{name}", "must not be negative (0 means the default)"))
        if problems:
            await context.abort_with_status(rich_status(
                grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", f"{problems[0][0]}: {problems[0][1]}",
                {"field": problems[0][0]}))
        # Only files under the data roots, symlinks resolved; the refusal is the same whether the
        # path exists or not, and does not repeat it.
        host_paths = []
        for index, table in enumerate(request.tables):
            resolved = await asyncio.to_thread(self._roots.resolve, table.path)
            if resolved is None:
                log.warning("run %s: refused table path %r", request.run_id, table.path)
                await context.abort_with_status(rich_status(
                    grpc.StatusCode.PERMISSION_DENIED, "PATH_NOT_SERVED", f"tables[{index}].path {REFUSAL}",
                    {"field": f"tables[{index}].path"}))
            host_paths.append(str(resolved))
        return host_paths


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=int((seconds - whole) * 1e9))
