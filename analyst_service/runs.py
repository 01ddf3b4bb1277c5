"""The run lifecycle: plan -> validate -> dispatch to the runner -> relay events -> store capsule.

Every run, succeeded, failed or rejected, is stored as a capsule before its last event is sent.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from google.protobuf import duration_pb2, json_format, timestamp_pb2

from analyst_service.capsules.base import CapsulePage, CapsuleStore
from analyst_service.compiler import compile_plan
from analyst_service.config import AnalystSettings
from analyst_service.datasets import DatasetRegistry
from analyst_service.errors import AnalystError, NotFoundError, RunCancelledError, RunFinishedError
from analyst_service.planning.base import ClarificationNeededError, Planner, PlanningContext
from analyst_service.planning.clarification import build_clarification
from analyst_service.profiling import DatasetProfiler
from analyst_service.validation.sql import check_sql
from csv_analyst.v1 import (
    capsule_pb2,
    dataset_pb2,
    plan_pb2,
    run_pb2,
    runner_dispatch_service_pb2 as dispatch_pb2,
    runner_dispatch_service_pb2_grpc,
    sandbox_pb2,
)

log = logging.getLogger(__name__)

_TERMINAL = {run_pb2.RUN_STATE_SUCCEEDED, run_pb2.RUN_STATE_FAILED, run_pb2.RUN_STATE_REJECTED,
             run_pb2.RUN_STATE_CANCELLED}
_RUNNER_CODES = {
    grpc.StatusCode.RESOURCE_EXHAUSTED: (run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, 8),
    grpc.StatusCode.INVALID_ARGUMENT: (run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, 13),
    grpc.StatusCode.DEADLINE_EXCEEDED: (run_pb2.ERROR_CODE_RUNNER_TIMEOUT, 4),
}


DEADLINE_MARGIN_SECONDS = 0.25  # time left after the sandbox's limit to relay the answer


def _deadline(time_remaining: float | None) -> float | None:
    return None if time_remaining is None else time.monotonic() + time_remaining


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _seconds(value: float) -> duration_pb2.Duration:
    whole = int(value)
    return duration_pb2.Duration(seconds=whole, nanos=int((value - whole) * 1e9))


@dataclass
class _Thread:
    plan: plan_pb2.Plan
    question: str


@dataclass
class _RunRecorder:
    """Builds a run's events (sequence numbers, timestamps) and remembers them for the capsule."""

    run: run_pb2.Run
    events: list[run_pb2.RunEvent] = field(default_factory=list)

    def event(self, stage: int, message: str, **payload: object) -> run_pb2.RunEvent:
        event = run_pb2.RunEvent(run_id=self.run.run_id, sequence=len(self.events) + 1, event_time=_now(),
                                 stage=stage, message=message, **payload)
        self.events.append(event)
        return event


class RunManager:
    """Owns every run of the analyst service."""

    def __init__(self, settings: AnalystSettings, datasets: DatasetRegistry, planner: Planner,
                 runner: runner_dispatch_service_pb2_grpc.RunnerServiceStub, store: CapsuleStore) -> None:
        self._settings = settings
        self._datasets = datasets
        self._planner = planner
        self._runner = runner
        self._store = store
        self._profiler = DatasetProfiler(runner, settings.run_timeout_seconds, settings.run_memory_bytes)
        self._active: dict[str, run_pb2.Run] = {}
        self._stop_requested: set[str] = set()
        self._deadlines: dict[str, float | None] = {}
        self._threads: dict[str, _Thread] = {}

    def get_run(self, name: str) -> run_pb2.Run:
        """Return an active or finished run by `runs/{id}` or id.

        Raises:
            NotFoundError: When there is no such run.
        """
        run_id = name.removeprefix("runs/").removeprefix("capsules/")
        if run_id in self._active:
            return self._active[run_id]
        return self.get_capsule(run_id).run

    async def stop(self, name: str) -> run_pb2.Run:
        """Cancel an active run (see AnalystService.StopRun).

        Raises:
            NotFoundError: When there is no such run.
            RunFinishedError: When the run already finished.
        """
        run_id = name.removeprefix("runs/")
        run = self._active.get(run_id)
        if run is None:
            if self._store.get(run_id) is not None:
                raise RunFinishedError(message=f"run {run_id!r} already finished", metadata={"run_id": run_id})
            raise NotFoundError(message=f"no run {run_id!r}", metadata={"resource_type": "run", "name": f"runs/{run_id}"})
        self._stop_requested.add(run_id)
        await self._cancel_in_runner(run_id)
        return run

    async def _cancel_in_runner(self, run_id: str) -> None:
        try:
            await self._runner.CancelRun(dispatch_pb2.CancelRunRequest(run_id=run_id))
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:  # not at the runner yet, or already done
                log.warning("run %s: runner CancelRun failed: %s", run_id, error.details())

    def _check_not_stopped(self, run: run_pb2.Run) -> None:
        if run.run_id in self._stop_requested:
            raise RunCancelledError(message="the run was cancelled", metadata={"run_id": run.run_id})

    def get_capsule(self, name: str) -> capsule_pb2.Capsule:
        """Return a stored capsule by `capsules/{id}`, `runs/{id}` or id.

        Raises:
            NotFoundError: When there is no such capsule.
        """
        run_id = name.removeprefix("runs/").removeprefix("capsules/")
        capsule = self._store.get(run_id)
        if capsule is None:
            raise NotFoundError(message=f"no capsule for run {run_id!r}",
                                metadata={"resource_type": "capsule", "name": f"capsules/{run_id}"})
        return capsule

    async def ask(self, dataset: dataset_pb2.Dataset, question: str, thread_id: str = "",
                  time_remaining: float | None = None) -> AsyncIterator[run_pb2.RunEvent]:
        """Plan, validate and execute a question, yielding each event."""
        run = self._new_run(dataset, question=question)
        run.thread_id = thread_id or run.run_id
        run.planner = self._planner.name
        thread = self._threads.get(run.thread_id)
        if thread is None and thread_id:
            # A thread from an earlier process (the CLI starts a fresh stack each time): its last
            # answered question is in the capsule store.
            previous = self._store.latest_in_thread(thread_id)
            if previous is not None and previous.run.dataset_id == dataset.dataset_id:
                thread = _Thread(plan=previous.run.plan, question=previous.run.question)
        context = PlanningContext(previous_plan=thread.plan, previous_question=thread.question) if thread else PlanningContext()
        self._deadlines[run.run_id] = _deadline(time_remaining)
        async for event in self._lifecycle(run, dataset, question=question, context=context):
            yield event

    async def submit(self, dataset: dataset_pb2.Dataset, plan: plan_pb2.Plan | None, sql: str,
                     time_remaining: float | None = None) -> run_pb2.Run:
        """Validate and execute a plan or SQL without the planner and return the finished run."""
        run = self._new_run(dataset)
        final = run
        self._deadlines[run.run_id] = _deadline(time_remaining)
        async for event in self._lifecycle(run, dataset, plan=plan, sql=sql):
            if event.stage == run_pb2.STAGE_DONE:
                final = event.run
        return final

    def _new_run(self, dataset: dataset_pb2.Dataset, question: str = "") -> run_pb2.Run:
        run_id = "r" + uuid.uuid4().hex[:20]
        run = run_pb2.Run(name=f"runs/{run_id}", run_id=run_id, dataset_id=dataset.dataset_id, question=question,
                          dataset_version_hash=dataset.version_hash, create_time=_now(),
                          state=run_pb2.RUN_STATE_PLANNING if question else run_pb2.RUN_STATE_VALIDATING)
        self._active[run_id] = run
        self._store.begin(run)
        return run

    def recover_interrupted(self) -> int:
        """Store FAILED capsules for runs a previous process left unfinished; return how many."""
        runs = self._store.interrupted()
        for run in runs:
            run.state = run_pb2.RUN_STATE_FAILED
            run.end_time.CopyFrom(_now())
            run.error.CopyFrom(run_pb2.RunError(
                code=run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, reason="RUNNER_INTERNAL_ERROR", status_code=13,
                message="the service stopped before this run finished; ask again"))
            self._store.put(capsule_pb2.Capsule(name=f"capsules/{run.run_id}", run=run, planner=run.planner))
            log.warning("run %s was left unfinished by a previous process; recorded as FAILED", run.run_id)
        return len(runs)

    async def _lifecycle(self, run: run_pb2.Run, dataset: dataset_pb2.Dataset, *, question: str = "",
                         context: PlanningContext | None = None, plan: plan_pb2.Plan | None = None,
                         sql: str = "") -> AsyncIterator[run_pb2.RunEvent]:
        recorder = _RunRecorder(run)
        try:
            if question or plan is not None:
                # Plans need column types (ad-hoc CSVs) and planners use the data's values.
                dataset = await self._profiler.profile(dataset, [self._datasets.host_path(t) for t in dataset.tables])
            if question:
                yield recorder.event(run_pb2.STAGE_PLANNING, f"planning with the {self._planner.name} planner")
                started = time.perf_counter()
                context = context or PlanningContext()
                try:
                    plan = await self._planner.plan(question, dataset, context)
                finally:
                    run.stats.planning_duration.CopyFrom(_seconds(time.perf_counter() - started))
                    run.planner_attempts.extend(context.attempts)
            run.state = run_pb2.RUN_STATE_VALIDATING
            started = time.perf_counter()
            if plan is not None:
                run.plan.CopyFrom(plan)
                yield recorder.event(run_pb2.STAGE_VALIDATING, "validating the plan", plan=plan)
                sql = compile_plan(plan, dataset, self._settings.max_plan_limit)
            else:
                yield recorder.event(run_pb2.STAGE_VALIDATING, "checking the SQL against the read-only policy", sql=sql)
            run.sql = sql  # recorded even when the policy refuses it, so the capsule says what was refused
            check_sql(sql, {t.name: [c.name for c in t.columns] for t in dataset.tables})  # + exfiltration heuristic
            run.stats.validation_duration.CopyFrom(_seconds(time.perf_counter() - started))
            self._check_not_stopped(run)
            async for event in self._execute(run, dataset, recorder):
                yield event
        except AnalystError as error:
            run.state = {grpc.StatusCode.UNAVAILABLE: run_pb2.RUN_STATE_FAILED,
                         grpc.StatusCode.CANCELLED: run_pb2.RUN_STATE_CANCELLED}.get(error.status_code,
                                                                                    run_pb2.RUN_STATE_REJECTED)
            run.error.CopyFrom(error.to_run_error())
            if isinstance(error, ClarificationNeededError):
                run.clarification.CopyFrom(build_clarification(error, dataset, self._settings.max_plan_limit))
        except Exception as error:  # noqa: BLE001 - a bug must still leave a capsule
            log.exception("run %s failed unexpectedly", run.run_id)
            run.state = run_pb2.RUN_STATE_FAILED
            run.error.CopyFrom(run_pb2.RunError(
                code=run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, reason="RUNNER_INTERNAL_ERROR", status_code=13,
                message=f"internal error ({type(error).__name__}); see the service log for run {run.run_id}"))
        run.end_time.CopyFrom(_now())
        if run.state == run_pb2.RUN_STATE_SUCCEEDED and run.HasField("plan") and question:
            self._threads[run.thread_id] = _Thread(plan=run.plan, question=question)
        message = "done" if run.state == run_pb2.RUN_STATE_SUCCEEDED else f"{run_pb2.RunState.Name(run.state).removeprefix('RUN_STATE_').lower()}: {run.error.message}"
        done = recorder.event(run_pb2.STAGE_DONE, message, run=run)
        self._store.put(capsule_pb2.Capsule(
            name=f"capsules/{run.run_id}", run=run, events=recorder.events, planner=run.planner,
            plan_json=json_format.MessageToJson(run.plan, indent=None, sort_keys=True) if run.HasField("plan") else ""))
        self._active.pop(run.run_id, None)
        self._stop_requested.discard(run.run_id)
        self._deadlines.pop(run.run_id, None)
        yield done

    async def _execute(self, run: run_pb2.Run, dataset: dataset_pb2.Dataset, recorder: _RunRecorder
                       ) -> AsyncIterator[run_pb2.RunEvent]:
        # The caller's deadline reaches the sandbox: the run's time limit never outlives it.
        deadline = self._deadlines.get(run.run_id)
        remaining = None if deadline is None else max(0.05, deadline - time.monotonic())
        run_timeout = self._settings.run_timeout_seconds if remaining is None else \
            max(0.05, min(self._settings.run_timeout_seconds, remaining - DEADLINE_MARGIN_SECONDS))
        request = dispatch_pb2.ExecuteRequest(
            run_id=run.run_id, sql=run.sql, dataset_version=dataset.version_hash,
            tables=[sandbox_pb2.TableSource(name=t.name, path=self._datasets.host_path(t)) for t in dataset.tables],
            limits=run_pb2.ResourceLimits(timeout=_seconds(run_timeout),
                                          memory_bytes=self._settings.run_memory_bytes,
                                          max_rows=self._settings.max_rows))
        run.state = run_pb2.RUN_STATE_QUEUED
        queued_at = time.perf_counter()
        try:
            async for response in self._runner.Execute(request, timeout=remaining):
                if response.runner_mode:
                    run.runner_mode = response.runner_mode
                if response.kind == dispatch_pb2.RUNNER_EVENT_KIND_QUEUED and run.run_id in self._stop_requested:
                    await self._cancel_in_runner(run.run_id)  # StopRun raced with the dispatch
                if response.kind == dispatch_pb2.RUNNER_EVENT_KIND_QUEUED:
                    yield recorder.event(run_pb2.STAGE_QUEUED, f"queued for a sandbox ({response.queue_position} ahead)",
                                         sql=run.sql)
                elif response.kind == dispatch_pb2.RUNNER_EVENT_KIND_STARTED:
                    run.state = run_pb2.RUN_STATE_RUNNING
                    run.start_time.CopyFrom(response.event_time)
                    run.stats.queue_duration.CopyFrom(_seconds(time.perf_counter() - queued_at))
                    yield recorder.event(run_pb2.STAGE_EXECUTING, f"executing in a {response.runner_mode} sandbox")
                elif response.kind == dispatch_pb2.RUNNER_EVENT_KIND_FINISHED:
                    run.limits.CopyFrom(response.limits)
                    run.stats.MergeFrom(response.stats)  # the runner sets only sandbox-side fields
                    if response.HasField("error"):
                        run.error.CopyFrom(response.error)
                        run.state = (run_pb2.RUN_STATE_CANCELLED if response.error.code == run_pb2.ERROR_CODE_CANCELLED
                                     else run_pb2.RUN_STATE_FAILED)
                    else:
                        run.result.CopyFrom(response.result)
                        run.state = run_pb2.RUN_STATE_SUCCEEDED
                        suffix = " (truncated)" if response.result.truncated else ""
                        yield recorder.event(run_pb2.STAGE_RESULT, f"{response.result.row_count} rows{suffix}",
                                             result=response.result)
        except grpc.aio.AioRpcError as error:
            code, status = _RUNNER_CODES.get(error.code(), (run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE, 14))
            run.state = run_pb2.RUN_STATE_FAILED
            run.error.CopyFrom(run_pb2.RunError(
                code=code, reason=run_pb2.ErrorCode.Name(code).removeprefix("ERROR_CODE_"), status_code=status,
                message=f"the runner service answered {error.code().name}: {error.details()}",
                metadata={"runner_target": self._settings.runner_target}))
        if run.state not in _TERMINAL:
            run.state = run_pb2.RUN_STATE_FAILED
            run.error.CopyFrom(run_pb2.RunError(code=run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, reason="RUNNER_INTERNAL_ERROR",
                                                status_code=13, message="the runner ended the run without a result"))

    def list_capsules(self, page_size: int, page_token: str, dataset_id: str = "") -> CapsulePage:
        """Return a page of stored capsules, newest first (see CapsuleStore.list)."""
        return self._store.list(page_size, page_token, dataset_id)
