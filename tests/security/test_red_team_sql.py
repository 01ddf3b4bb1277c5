"""The data-driven red-team SQL suite (tests/security/cases/*.sql) through the real services.

Cases in policy/must_allow/exfiltration/bombs go through AnalystService.SubmitRun (policy, then a
bubblewrap sandbox); each asserts the run's state and error code and that a capsule holding the
same error exists. Cases in bypass.sql go straight to RunnerService.Execute with no policy in
front, proving the DuckDB lock-down and the sandbox hold on their own. Cases run concurrently
(the runner admits RUNNER_CONCURRENCY sandboxes at a time) to keep the suite fast.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from csv_analyst.v1 import analyst_service_pb2 as api, capsule_pb2, run_pb2
from csv_analyst.runner.v1 import runner_dispatch_service_pb2 as dispatch_pb2, sandbox_pb2
from tests.security.conftest import RUN_MEMORY_BYTES, RUN_TIMEOUT_SECONDS
from tests.security.harness import STATES, Case, leaks, load_cases

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(240)]

ANALYST_FILES = ("policy.sql", "must_allow.sql", "exfiltration.sql", "bombs.sql")
RUNNER_FILES = ("bypass.sql",)
ANALYST_CASES = [case for name in ANALYST_FILES for case in load_cases(name)]
RUNNER_CASES = [case for name in RUNNER_FILES for case in load_cases(name)]
ALL_CASES = ANALYST_CASES + RUNNER_CASES
# A bomb must end within its limit plus sandbox start-up and kill time.
BOMB_GRACE_SECONDS = 4.0
NORMAL_QUESTION = "How many orders are there per status?"


@dataclass
class Outcome:
    """What one case produced."""

    case: Case
    run: run_pb2.Run | None = None
    capsule: capsule_pb2.Capsule | None = None
    finished: dispatch_pb2.ExecuteResponse | None = None
    seconds: float = 0.0


def test_case_files_meet_the_issue_counts() -> None:
    names = [case.id for case in ALL_CASES]
    assert len(names) == len(set(names)), "case names must be unique per file"
    assert len(ALL_CASES) >= 120
    assert sum(case.expect == "allow" for case in ANALYST_CASES) >= 25, "at least 25 must-allow traps"
    layers = Counter(case.layer for case in ALL_CASES)
    assert layers["policy"] and layers["duckdb"] and layers["sandbox"]
    for case in ALL_CASES:
        assert case.sql.strip(), case.id


def _submit(analyst: Any, case: Case) -> Outcome:
    started = time.perf_counter()
    run = analyst.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", sql=case.sql), timeout=60).run
    seconds = time.perf_counter() - started
    capsule = analyst.GetCapsule(api.GetCapsuleRequest(name=f"capsules/{run.run_id}"), timeout=10).capsule
    return Outcome(case, run=run, capsule=capsule, seconds=seconds)


def _execute(runner: Any, orders_path: str, case: Case, index: int) -> Outcome:
    run_id = f"bypass-{index:03d}-{case.name.replace('_', '-')}"[:60]
    started = time.perf_counter()
    events = list(runner.Execute(dispatch_pb2.ExecuteRequest(
        run_id=run_id, sql=case.sql, tables=[sandbox_pb2.TableSource(name="orders", path=orders_path)],
        limits=run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=int(RUN_TIMEOUT_SECONDS)),
                                      memory_bytes=RUN_MEMORY_BYTES, max_rows=100)), timeout=60))
    return Outcome(case, finished=events[-1], seconds=time.perf_counter() - started)


@pytest.fixture(scope="module")
def outcomes(analyst: Any, runner: Any, security_stack: Any) -> dict[str, Outcome]:
    """Run every case once, concurrently, while checking the services stay responsive."""
    orders_path = str(security_stack.datasets_dir / "ecommerce" / "orders.csv")
    results: dict[str, Outcome] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(_submit, analyst, case) for case in ANALYST_CASES]
        futures += [pool.submit(_execute, runner, orders_path, case, i) for i, case in enumerate(RUNNER_CASES)]
        # While bombs occupy the sandboxes, the services keep answering.
        time.sleep(0.5)
        with grpc.insecure_channel(security_stack.analyst_target) as channel:
            started = time.perf_counter()
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            listed = analyst.ListDatasets(api.ListDatasetsRequest(), timeout=5)
            responsive = time.perf_counter() - started
        normal = pool.submit(lambda: [r.event for r in analyst.Ask(
            api.AskRequest(dataset_id="ecommerce", question=NORMAL_QUESTION), timeout=120)])
        for future in futures:
            outcome = future.result()
            results[outcome.case.id] = outcome
        concurrent_answer = normal.result()
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert listed.datasets and responsive < 2.0, f"the analyst service took {responsive:.2f} s to answer during bombs"
    assert concurrent_answer[-1].run.state == run_pb2.RUN_STATE_SUCCEEDED, concurrent_answer[-1].run.error
    return results


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ANALYST_CASES])
def test_case_through_submit_run(case: Case, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.id]
    run, capsule = outcome.run, outcome.capsule
    assert run is not None and capsule is not None
    assert run.state == STATES[case.expect], (
        f"{case.id}: {run_pb2.RunState.Name(run.state)} {run.error.reason} {run.error.message}")
    if case.expect == "allow":
        assert not run.HasField("error") and run.result.columns
    else:
        assert run.error.reason in case.codes, f"{case.id}: {run.error.reason} {run.error.message}"
        assert run_pb2.ErrorCode.Name(run.error.code).removeprefix("ERROR_CODE_") == run.error.reason
        if case.rules:
            assert run.error.metadata.get("rule") in case.rules, (case.id, dict(run.error.metadata))
        if case.layer == "policy":
            assert not run.HasField("start_time"), "a refused statement must never reach a sandbox"
    if case.codes and set(case.codes) & {"RUNNER_TIMEOUT", "RUNNER_RESOURCE_EXCEEDED"}:
        assert run.stats.sandbox_duration.ToMilliseconds() / 1000 <= RUN_TIMEOUT_SECONDS + BOMB_GRACE_SECONDS
    # Every run leaves a capsule with the same outcome and the SQL it refused or ran.
    assert capsule.run.state == run.state
    assert capsule.run.sql in (case.sql.strip(), case.sql)
    assert capsule.run.error == run.error
    assert capsule.events and capsule.events[-1].run.state == run.state
    assert leaks(str(capsule)) == []


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in RUNNER_CASES])
def test_case_straight_to_the_runner(case: Case, outcomes: dict[str, Outcome]) -> None:
    finished = outcomes[case.id].finished
    assert finished is not None and finished.kind == dispatch_pb2.RUNNER_EVENT_KIND_FINISHED
    if case.expect == "allow":
        assert not finished.HasField("error"), f"{case.id}: {finished.error.message}"
    else:
        assert finished.HasField("error"), f"{case.id} succeeded with the policy bypassed"
        assert finished.error.reason in case.codes, f"{case.id}: {finished.error.reason} {finished.error.message}"
    text = str(finished.result) + finished.error.message + finished.stats.stdout + finished.stats.stderr
    assert leaks(text) == []
    for forbidden in case.not_in_result:
        assert forbidden not in text, f"{case.id}: {forbidden!r} is visible inside the sandbox"
    if "RUNNER_TIMEOUT" in case.codes:
        assert outcomes[case.id].seconds <= RUN_TIMEOUT_SECONDS + BOMB_GRACE_SECONDS + 5


def test_exfiltration_rejection_carries_a_suggestion(outcomes: dict[str, Outcome]) -> None:
    run = outcomes["exfiltration.sql:select_star_no_limit"].run
    assert run is not None
    assert run.error.metadata["rule"] == "exfiltration" and run.error.metadata["subject"] == "orders"
    assert run.error.metadata["max_limit"] == "10000"
    assert [v.field for v in run.error.violations] == ["sql"]
    assert "LIMIT" in run.error.message and "aggregate" in run.error.message


def test_normal_question_answers_after_the_bombs_and_no_run_is_still_executing(
        analyst: Any, outcomes: dict[str, Outcome], security_stack: Any) -> None:
    events = [r.event for r in analyst.Ask(api.AskRequest(dataset_id="ecommerce", question=NORMAL_QUESTION), timeout=60)]
    assert events[-1].run.state == run_pb2.RUN_STATE_SUCCEEDED
    # Idle warm sandboxes may wait for work (a fresh one may still be starting), but no sandbox
    # may still be executing a run. (After the stack stops, the security_stack fixture checks that
    # none of its sandbox processes or busy run cgroups remain at all.)
    executor = security_stack.stack.executor
    deadline = time.monotonic() + 10
    while executor.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert executor.running() == []
