"""The run lifecycle: plan -> validate -> dispatch to the runner -> relay events -> store capsule.

Every run is a task of this manager, not of the call that started it: however it ends (answer,
rejection, failure, StopRun, the SubmitRun caller going away, the service shutting down), its
`finally` stores a capsule before the last event is published. Callers and WatchRun followers
only read its events. In-flight records name their owning process, so recovery after a crash
touches only runs whose owner is gone, never those of another live process sharing the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from analyst_service.capsules.base import CapsulePage, CapsuleStore, InFlight, RunPage, RunQuery
from analyst_service.capsules.owners import Owner
from analyst_service.capsules.records import build_capsule, replay_events
from analyst_service.capsules.stores import CapsuleStoreUnavailableError
from analyst_service.capsules.results import ResultFileError
from analyst_service.compiler import compile_plan
from analyst_service.config import AnalystSettings
from analyst_service.datasets import DatasetRegistry
from analyst_service.dispatch import DEADLINE_MARGIN_SECONDS, execute, seconds
from analyst_service.errors import (
    AnalystError,
    NotFoundError,
    RunFinishedError,
    RunStateError,
    store_unavailable,
)
from analyst_service.live import LiveRun, now
from analyst_service.logs import RUN_ID
from analyst_service.metrics import RESULT_CACHE, observe_run, run_log_fields
from analyst_service.planning.base import ClarificationNeededError, Planner, PlanningContext, PythonProgram
from analyst_service.planning.clarification import build_clarification
from analyst_service.probes import MIN_PROBE_SECONDS, PROBE_TIMEOUT_SECONDS, probe_rows
from analyst_service.profiling import DatasetProfiler
from analyst_service.result_cache import ResultCache
from analyst_service.threads import ThreadMemory, follow_up_of
from analyst_service.validation.python import check_python_program
from analyst_service.validation.sql import check_sql
from csv_analyst.v1 import capsule_pb2, dataset_pb2, plan_pb2, result_pb2, run_pb2
from csv_analyst.runner.v1 import runner_dispatch_service_pb2_grpc

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_SECONDS = 10.0
WATCH_POLL_SECONDS = 0.25  # how often WatchRun looks for the capsule of another process's run
# A caller cancelled this close to its deadline was cancelled by the deadline.
DEADLINE_SLACK_SECONDS = 0.05
EXAMPLE_CANDIDATES = 100  # recent capsules of a dataset a few-shot planner chooses examples from
# A capsule that cannot be stored because the store is away is tried again, backing off to this.
STORE_RETRY_MAX_SECONDS = 5.0


def _deadline(time_remaining: float | None) -> float | None:
    return None if time_remaining is None else time.monotonic() + time_remaining


def _run_id(name: str) -> str:
    return name.removeprefix("runs/").removeprefix("capsules/")


def _without_rows(run: run_pb2.Run) -> run_pb2.Run:
    copy = run_pb2.Run()
    copy.CopyFrom(run)
    del copy.result.rows[:]
    return copy


def _cancelled_error(cause: str, message: str, run_id: str) -> run_pb2.RunError:
    return run_pb2.RunError(code=run_pb2.ERROR_CODE_CANCELLED, reason="CANCELLED", status_code=1, message=message,
                            metadata={"cause": cause, "run_id": run_id})


class RunManager:
    """Owns every run of this analyst process."""

    def __init__(self, settings: AnalystSettings, datasets: DatasetRegistry, planner: Planner,
                 runner: runner_dispatch_service_pb2_grpc.RunnerServiceStub, store: CapsuleStore) -> None:
        self._settings = settings
        self._datasets = datasets
        self._planner = planner
        self._runner = runner
        self._store = store
        self._profiler = DatasetProfiler(runner, settings.run_timeout_seconds, settings.run_memory_bytes)
        self._results = ResultCache(settings.result_cache_bytes, settings.result_cache_ttl_seconds) \
            if settings.result_cache_bytes > 0 else None
        self._live: dict[str, LiveRun] = {}
        self._threads = ThreadMemory(store)
        self._owner = Owner.current().token()
        self._closing = False

    # ---- reading runs -------------------------------------------------------------------

    async def get_run(self, name: str) -> run_pb2.Run:
        """Return a run by `runs/{id}` or id: live here, stored, or in flight in another process.

        Raises:
            NotFoundError: When there is no such run.
        """
        run_id = _run_id(name)
        live = self._live.get(run_id)
        if live is not None:
            return live.run
        capsule = await asyncio.to_thread(self._store.get, run_id)
        if capsule is not None:
            return capsule.run
        record = await asyncio.to_thread(self._store.in_flight_run, run_id)
        if record is not None:
            return record.run
        # A run of another process sharing the store may have finished between the two look-ups.
        capsule = await asyncio.to_thread(self._store.get, run_id)
        if capsule is not None:
            return capsule.run
        raise NotFoundError(message=f"no run {run_id!r}", metadata={"resource_type": "run", "name": f"runs/{run_id}"})

    async def profile(self, dataset: dataset_pb2.Dataset) -> dataset_pb2.Dataset:
        """The dataset with its columns, types and value profiles, read in a sandbox.

        Raises:
            InvalidRequestError: When a file cannot be read as CSV.
        """
        return await self._profiler.profile(dataset, [self._datasets.host_path(t) for t in dataset.tables])

    async def get_capsule(self, name: str) -> capsule_pb2.Capsule:
        """Return a stored capsule by `capsules/{id}`, `runs/{id}` or id.

        Raises:
            NotFoundError: When there is no such capsule.
        """
        run_id = _run_id(name)
        capsule = await asyncio.to_thread(self._store.get, run_id)
        if capsule is None:
            raise NotFoundError(message=f"no capsule for run {run_id!r}",
                                metadata={"resource_type": "capsule", "name": f"capsules/{run_id}"})
        return capsule

    async def watch(self, name: str, after_sequence: int = 0) -> AsyncIterator[run_pb2.RunEvent]:
        """Yield a run's events after after_sequence: stored ones, then live ones, until DONE.

        Raises:
            NotFoundError: When there is no such run.
        """
        run_id = _run_id(name)
        while True:
            live = self._live.get(run_id)
            if live is not None:
                async for event in live.follow(after_sequence):
                    yield event
                return
            capsule = await asyncio.to_thread(self._store.get, run_id)
            if capsule is not None:
                for event in replay_events(capsule):
                    if event.sequence > after_sequence:
                        yield event
                return
            record = await asyncio.to_thread(self._store.in_flight_run, run_id)
            if record is None:
                if run_id in self._live or await asyncio.to_thread(self._store.get, run_id) is not None:
                    continue  # it started, or (in another process) finished, between the two look-ups
                raise NotFoundError(message=f"no run {run_id!r}",
                                    metadata={"resource_type": "run", "name": f"runs/{run_id}"})
            if await asyncio.to_thread(self._store.owner_is_gone, record.owner):
                await asyncio.to_thread(self._recover, record)
                continue
            # Another live process runs it: its capsule appears in the shared store when it ends.
            await asyncio.sleep(WATCH_POLL_SECONDS)

    async def list_runs(self, page_size: int, page_token: str, query: RunQuery) -> RunPage:
        """A page of runs matching query, newest first, without result rows; runs in flight
        (in this process or another sharing the store) come first, on the first page.

        Raises:
            ValueError: For a page token the store did not issue.
        """
        page = await asyncio.to_thread(self._store.list_runs, page_size, page_token, query)
        if page_token:
            return page
        records = await asyncio.to_thread(self._store.in_flight)
        in_flight = []
        for record in records:
            live = self._live.get(record.run.run_id)
            run = live.run if live is not None else record.run
            if query.matches(run):
                in_flight.append(_without_rows(run))
        finished = {run.run_id for run in page.runs}
        return RunPage([r for r in in_flight if r.run_id not in finished] + page.runs, page.next_page_token)

    async def list_capsules(self, page_size: int, page_token: str, dataset_id: str = "",
                            max_bytes: int = 0) -> CapsulePage:
        """Return a page of stored capsules, newest first (see CapsuleStore.list)."""
        return await asyncio.to_thread(self._store.list, page_size, page_token, dataset_id, max_bytes)

    async def full_result(self, name: str) -> tuple[capsule_pb2.Capsule, result_pb2.ResultTable]:
        """The capsule of a succeeded run and every row of its result.

        Raises:
            NotFoundError: When there is no such capsule.
            RunStateError: When the run did not succeed or its result file is missing or corrupt.
        """
        capsule = await self.get_capsule(name)
        run = capsule.run
        if run.state != run_pb2.RUN_STATE_SUCCEEDED:
            raise RunStateError(message=f"run {run.run_id!r} has no result: it ended "
                                        f"{run_pb2.RunState.Name(run.state).removeprefix('RUN_STATE_')}",
                                metadata={"run_id": run.run_id, "state": run_pb2.RunState.Name(run.state)})
        if not capsule.HasField("full_result"):
            return capsule, run.result
        try:
            return capsule, await asyncio.to_thread(self._store.results.get, capsule.full_result)
        except ResultFileError as error:
            raise RunStateError(message=f"the stored result of run {run.run_id!r} is unavailable: {error}",
                                metadata={"run_id": run.run_id, "sha256": capsule.full_result.sha256}) from None

    # ---- starting and stopping runs ----------------------------------------------------

    async def ask(self, dataset: dataset_pb2.Dataset, question: str, thread_id: str = "",
                  time_remaining: float | None = None, allow_python: bool = False) -> AsyncIterator[run_pb2.RunEvent]:
        """Plan, validate and execute a question, yielding its events. Closing the iterator
        detaches: the run goes on (see AnalystService.Ask).

        `allow_python`: the user asked for Python and the server runs it (the servicer checks
        both), so a planner may answer with a restricted pandas program."""
        run = self._new_run(dataset, question=question)
        run.query_type = run_pb2.QUERY_TYPE_PLAN
        run.thread_id = thread_id or run.run_id
        run.planner = self._planner.name
        # Every earlier turn of the thread (a clarification and the reading chosen included).
        history = await self._threads.turns(thread_id, dataset.dataset_id)
        previous_plan, previous_question, previous_answer = follow_up_of(history)
        deadline = _deadline(time_remaining)
        # Planning ends by the caller's deadline, leaving the margin to answer.
        planning_deadline = None if deadline is None else deadline - DEADLINE_MARGIN_SECONDS
        context = PlanningContext(
            previous_plan=previous_plan, previous_question=previous_question, previous_answer=previous_answer,
            deadline=planning_deadline,
            examples=await asyncio.to_thread(self._examples, dataset.dataset_id)
            if getattr(self._planner, "wants_examples", False) else [],
            probe=self._prober(dataset, planning_deadline), history=history, python_allowed=allow_python)
        live = self._start(run, deadline, dataset, question=question, context=context)
        async for event in live.follow():
            if live.refused is not None:
                raise live.refused
            yield event

    def _examples(self, dataset_id: str) -> list[tuple[str, plan_pb2.Plan]]:
        """(question, plan) of the dataset's recent succeeded runs, newest first (few-shot material)."""
        page = self._store.list(EXAMPLE_CANDIDATES, "", dataset_id)
        return [(c.run.question, c.run.plan) for c in page.capsules
                if c.run.state == run_pb2.RUN_STATE_SUCCEEDED and c.run.question and c.run.HasField("plan")]

    def _prober(self, dataset: dataset_pb2.Dataset,
                deadline: float | None) -> Callable[[str], Awaitable[list[list[str]] | None]]:
        """A planner's dry runs over this dataset, each ending by the planning deadline (see
        analyst_service.probes)."""
        async def probe(sql: str) -> list[list[str]] | None:
            timeout = PROBE_TIMEOUT_SECONDS if deadline is None else min(PROBE_TIMEOUT_SECONDS,
                                                                         deadline - time.monotonic())
            if timeout < MIN_PROBE_SECONDS:
                return None  # no time left to check: the plan is judged without it
            return await probe_rows(self._runner, dataset, [self._datasets.host_path(t) for t in dataset.tables], sql,
                                    memory_bytes=self._settings.run_memory_bytes,
                                    runner_target=self._settings.runner_target, timeout_seconds=timeout)
        return probe

    async def submit(self, dataset: dataset_pb2.Dataset, plan: plan_pb2.Plan | None, sql: str,
                     time_remaining: float | None = None, python_code: str = "", thread_id: str = "") -> run_pb2.Run:
        """Validate and execute a plan or SQL without the planner and return the finished run.

        With a `thread_id` the run joins that conversation thread (a reading chosen from its last
        clarification, say): the thread's next question is planned knowing it.

        When the calling task is cancelled (the caller cancelled, disconnected or its deadline
        passed), the run is cancelled with that cause; it still stores its capsule.
        """
        deadline = _deadline(time_remaining)
        run = self._new_run(dataset)
        run.query_type = (run_pb2.QUERY_TYPE_PYTHON if python_code else
                          run_pb2.QUERY_TYPE_PLAN if plan is not None else run_pb2.QUERY_TYPE_SQL)
        run.python_code = python_code
        run.thread_id = thread_id
        live = self._start(run, deadline, dataset, plan=plan, sql=sql, python_code=python_code)
        assert live.task is not None
        try:
            await asyncio.shield(live.task)
        except asyncio.CancelledError:
            if self._closing:
                live.cancel("service_shutdown", "the service shut down before the run finished; ask again")
            elif deadline is not None and time.monotonic() >= deadline - DEADLINE_SLACK_SECONDS:
                live.cancel("caller_deadline", "the caller's deadline passed before the run finished")
            else:
                live.cancel("caller_cancelled", "the caller cancelled the call or disconnected")
            raise
        if live.refused is not None:
            raise live.refused
        return live.run

    async def stop(self, name: str) -> run_pb2.Run:
        """Cancel a run of this process (see AnalystService.StopRun).

        Raises:
            NotFoundError: When there is no such run.
            RunFinishedError: When the run already finished.
            RunStateError: When another process runs it.
        """
        run_id = _run_id(name)
        live = self._live.get(run_id)
        if live is not None and live.cancel("stop_run", "the run was cancelled by StopRun"):
            return live.run
        if live is not None or await asyncio.to_thread(self._store.get, run_id) is not None:
            raise RunFinishedError(message=f"run {run_id!r} already finished", metadata={"run_id": run_id})
        if await asyncio.to_thread(self._store.in_flight_run, run_id) is not None:
            raise RunStateError(message=f"run {run_id!r} is run by another process sharing the capsule store; "
                                        "stop it through that process", metadata={"run_id": run_id})
        raise NotFoundError(message=f"no run {run_id!r}", metadata={"resource_type": "run", "name": f"runs/{run_id}"})

    def start_shutdown(self) -> None:
        """The service is draining: runs whose callers are cut off from now on were cut off by
        the shutdown, and new runs are cancelled at once."""
        self._closing = True

    async def close(self) -> None:
        """Cancel every run still in flight (each stores a CANCELLED capsule) and wait for them."""
        self._closing = True
        for live in list(self._live.values()):
            live.cancel("service_shutdown", "the service shut down before the run finished; ask again")
        tasks = [live.task for live in self._live.values() if live.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT_SECONDS)

    def recover_interrupted(self) -> int:
        """Store FAILED capsules for in-flight runs whose owning process is gone; return how many.

        Blocking: called once at start-up, before the service answers.
        """
        gone = [record for record in self._store.in_flight() if self._store.owner_is_gone(record.owner)]
        for record in gone:
            self._recover(record)
        return len(gone)

    def _recover(self, record: InFlight) -> None:
        run = record.run
        run.state = run_pb2.RUN_STATE_FAILED
        run.end_time.CopyFrom(now())
        run.error.CopyFrom(run_pb2.RunError(
            code=run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, reason="RUNNER_INTERNAL_ERROR", status_code=13,
            message="the process running it stopped before this run finished; ask again",
            metadata={"run_id": run.run_id}))
        self._store.put(capsule_pb2.Capsule(name=f"capsules/{run.run_id}", run=run, planner=run.planner))
        log.warning("run %s was left unfinished by a process that is gone; recorded as FAILED", run.run_id)

    def _new_run(self, dataset: dataset_pb2.Dataset, question: str = "") -> run_pb2.Run:
        run_id = "r" + uuid.uuid4().hex[:20]
        return run_pb2.Run(name=f"runs/{run_id}", run_id=run_id, dataset_id=dataset.dataset_id, question=question,
                           dataset_version_hash=dataset.version_hash, create_time=now(),
                           state=run_pb2.RUN_STATE_PLANNING if question else run_pb2.RUN_STATE_VALIDATING)

    def _start(self, run: run_pb2.Run, deadline: float | None, dataset: dataset_pb2.Dataset,
               **work: Any) -> LiveRun:
        live = LiveRun(run)
        self._live[run.run_id] = live
        live.task = asyncio.create_task(self._drive(live, deadline, dataset, **work), name=f"run {run.run_id}")
        live.task.add_done_callback(lambda _: self._live.pop(run.run_id, None))
        return live

    # ---- the lifecycle -----------------------------------------------------------------

    async def _drive(self, live: LiveRun, deadline: float | None, dataset: dataset_pb2.Dataset, *,
                     question: str = "", context: PlanningContext | None = None,
                     plan: plan_pb2.Plan | None = None, sql: str = "", python_code: str = "") -> None:
        run = live.run
        RUN_ID.set(run.run_id)  # every log line of this run's task carries its id
        try:
            await asyncio.to_thread(self._store.begin, run, self._owner)
        except CapsuleStoreUnavailableError as error:
            # Not accepted: nothing is recorded, so there is nothing to account for later.
            log.warning("run %s refused: %s", run.run_id, error)
            live.refused = store_unavailable()
            live.finishing = True
            live.publish(live.next_event(run_pb2.STAGE_DONE, live.refused.message))
            return
        try:
            if self._closing:
                live.cancel("service_shutdown", "the service is shutting down; ask again")
            await self._steps(live, deadline, dataset, question, context, plan, sql, python_code)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            cause, message = live.cancel_reason or ("cancelled", "the run was cancelled")
            run.state = run_pb2.RUN_STATE_CANCELLED
            run.error.CopyFrom(_cancelled_error(cause, message, run.run_id))
        except AnalystError as error:
            run.state = {grpc.StatusCode.UNAVAILABLE: run_pb2.RUN_STATE_FAILED,
                         grpc.StatusCode.CANCELLED: run_pb2.RUN_STATE_CANCELLED}.get(error.status_code,
                                                                                    run_pb2.RUN_STATE_REJECTED)
            run.error.CopyFrom(error.to_run_error())
        except Exception as error:  # noqa: BLE001 - a bug must still leave a capsule
            log.exception("run %s failed unexpectedly", run.run_id)
            run.state = run_pb2.RUN_STATE_FAILED
            run.error.CopyFrom(run_pb2.RunError(
                code=run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, reason="RUNNER_INTERNAL_ERROR", status_code=13,
                message=f"internal error ({type(error).__name__}); see the service log for run {run.run_id}"))
        await self._finish(live, question)

    async def _steps(self, live: LiveRun, deadline: float | None, dataset: dataset_pb2.Dataset, question: str,
                     context: PlanningContext | None, plan: plan_pb2.Plan | None, sql: str,
                     python_code: str = "") -> None:
        run = live.run
        host_paths = [self._datasets.host_path(t) for t in dataset.tables]
        if python_code:
            run.state = run_pb2.RUN_STATE_VALIDATING
            started = time.perf_counter()
            live.event(run_pb2.STAGE_VALIDATING, "checking the program against the restricted-Python policy")
            check_python_program(python_code)
            run.stats.validation_duration.CopyFrom(seconds(time.perf_counter() - started))
            await self._execute(live, dataset, host_paths, deadline)
            return
        if question or plan is not None:
            # Plans need column types (ad-hoc CSVs) and planners use the data's values.
            dataset = await self._profiler.profile(dataset, host_paths)
        if question:
            live.event(run_pb2.STAGE_PLANNING, f"planning with the {self._planner.name} planner")
            started = time.perf_counter()
            context = context or PlanningContext()
            try:
                proposed = await self._planner.plan(question, dataset, context)
            except ClarificationNeededError as error:
                # The readings compile against the profiled dataset, like any plan.
                run.clarification.CopyFrom(build_clarification(error, dataset, self._settings.max_plan_limit))
                raise
            finally:
                run.stats.planning_duration.CopyFrom(seconds(time.perf_counter() - started))
                run.planner_attempts.extend(context.attempts)
            if isinstance(proposed, PythonProgram):
                # The user asked for Python: the program goes through the same policy and sandbox.
                run.query_type = run_pb2.QUERY_TYPE_PYTHON
                run.python_code = proposed.code
                await self._steps(live, deadline, dataset, "", None, None, "", proposed.code)
                return
            plan = proposed
        run.state = run_pb2.RUN_STATE_VALIDATING
        started = time.perf_counter()
        if plan is not None:
            run.plan.CopyFrom(plan)
            live.event(run_pb2.STAGE_VALIDATING, "validating the plan", plan=plan)
            sql = compile_plan(plan, dataset, self._settings.max_plan_limit)
        else:
            live.event(run_pb2.STAGE_VALIDATING, "checking the SQL against the read-only policy", sql=sql)
        run.sql = sql  # recorded even when the policy refuses it, so the capsule says what was refused
        check_sql(sql, {t.name: [c.name for c in t.columns] for t in dataset.tables})  # + exfiltration heuristic
        run.stats.validation_duration.CopyFrom(seconds(time.perf_counter() - started))
        await self._execute(live, dataset, host_paths, deadline)

    async def _execute(self, live: LiveRun, dataset: dataset_pb2.Dataset, host_paths: list[str],
                       deadline: float | None) -> None:
        """Answer from the exact result cache when it holds this query over these bytes; else run
        it in a sandbox (and keep a succeeded answer for next time)."""
        run = live.run
        key = None
        if self._results is not None:
            key = await asyncio.to_thread(ResultCache.key_for, dataset, host_paths, run, self._settings.max_rows)
            cached = self._results.get(key) if key else None
            RESULT_CACHE.labels(result="hit" if cached else "miss").inc()
            if cached is not None:
                run.result.CopyFrom(cached.result)
                run.state = run_pb2.RUN_STATE_SUCCEEDED
                run.cache_hit, run.cached_from_run_id = True, cached.run_id
                run.runner_mode = "cache"
                suffix = " (truncated)" if cached.result.truncated else ""
                live.event(run_pb2.STAGE_RESULT, f"{cached.result.row_count} rows{suffix}, repeated from run "
                           f"{cached.run_id} (the same query over the same files)", result=cached.result)
                return
        await execute(live, dataset, host_paths, self._runner, timeout_seconds=self._settings.run_timeout_seconds,
                      memory_bytes=self._settings.run_memory_bytes, max_rows=self._settings.max_rows,
                      deadline=deadline, runner_target=self._settings.runner_target)
        if key and self._results is not None and run.state == run_pb2.RUN_STATE_SUCCEEDED:
            self._results.put(key, run.result, run.run_id)

    async def _finish(self, live: LiveRun, question: str) -> None:
        """Store the capsule, then publish STAGE_DONE. Nothing cancels the run from here on."""
        live.finishing = True
        run = live.run
        run.end_time.CopyFrom(now())
        try:
            await self._threads.remember(run)  # before the capsule is stored: a thread read back has it once
        except Exception:  # noqa: BLE001 - the run's events must still end
            log.exception("run %s: its thread could not be updated", run.run_id)
        state = run_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_").lower()
        message = "done" if run.state == run_pb2.RUN_STATE_SUCCEEDED else f"{state}: {run.error.message}"
        done = live.next_event(run_pb2.STAGE_DONE, message, run=run)
        events = [*live.events, done]
        store = asyncio.ensure_future(self._store_until_stored(run, events))
        try:
            await asyncio.shield(store)
        except asyncio.CancelledError:
            # The loop is going away: the write goes on in its thread; followers still get DONE.
            log.warning("run %s: stopped while its capsule was being stored", run.run_id)
        except Exception:  # noqa: BLE001 - the run's events must still end
            log.exception("run %s: its capsule could not be stored", run.run_id)
        observe_run(run)
        log.info("run finished", extra=run_log_fields(run))
        live.publish(done)

    async def _store_until_stored(self, run: run_pb2.Run, events: list[run_pb2.RunEvent]) -> None:
        """Store the capsule of an accepted run, trying again while the store is away (a
        PostgreSQL server restarting): the run's in-flight record is there, so it must end in a
        capsule. The caller waits for it."""
        delay = 0.2
        while True:
            try:
                await asyncio.to_thread(self._store_capsule, run, events)
                return
            except CapsuleStoreUnavailableError as error:
                log.warning("run %s: %s; storing its capsule again in %.1f s", run.run_id, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, STORE_RETRY_MAX_SECONDS)

    def _store_capsule(self, run: run_pb2.Run, events: list[run_pb2.RunEvent]) -> None:
        self._store.put(build_capsule(run, events, self._store.results))
