"""The Docker executor's native SQL path: the runner image's DuckDB CLI answers exactly what
its Python runner answers (registry prompts, typed edge cases, errors), locked down the same way,
cold and warm. Needs a Docker engine and `make runner-image`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from analyst_service.compiler import compile_plan
from analyst_service.planning.base import PlanningContext
from analyst_service.planning.offline import OfflinePlanner
from csv_analyst.runner.v1 import sandbox_pb2
from csv_analyst.v1 import run_pb2
from runner_service import metrics
from runner_service.executors.docker import DockerExecutor
from runner_service.executors.pool import PoolSettings
from tests.sandbox.test_docker_executor import api_client  # noqa: F401 - the module's engine fixture
from tests.unit.runner_service.test_native_sql_runner import (  # noqa: F401 - fixtures and cases shared
    EDGE_CASES,
    ERROR_CASES,
    Dataset,
    materialised,
    registry_prompts,
    request,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def docker_executors(api_client: Any) -> Iterator[tuple[DockerExecutor, DockerExecutor]]:  # noqa: F811
    """(Python runner, native runner) Docker executors, cold containers."""
    python = DockerExecutor(pool_settings=PoolSettings(size_per_key=0), native=False)
    native = DockerExecutor(pool_settings=PoolSettings(size_per_key=0), native=True)
    yield python, native
    asyncio.run(python.close())
    asyncio.run(native.close())


def answer(executor: DockerExecutor, sql: str, data: Dataset, max_rows: int = 5) -> sandbox_pb2.SandboxResult:
    outcome = asyncio.run(executor.execute(request(sql, data, max_rows), lambda: None))
    result = outcome.result
    result.ClearField("setup_seconds")
    result.ClearField("query_seconds")
    return result


@pytest.mark.parametrize(("dataset_id", "prompt"), registry_prompts())
def test_every_registry_prompt_answers_the_same_in_docker(docker_executors: tuple[DockerExecutor, DockerExecutor],
                                                          materialised: dict[str, Dataset],  # noqa: F811
                                                          dataset_id: str, prompt: str) -> None:
    data = materialised[dataset_id]
    sql = compile_plan(asyncio.run(OfflinePlanner().plan(prompt, data.dataset, PlanningContext())), data.dataset)
    python, native = (answer(executor, sql, data, 1000) for executor in docker_executors)
    assert not python.HasField("error") and python.result.row_count > 0, python
    assert native == python


@pytest.mark.parametrize("sql", EDGE_CASES)
def test_typed_edge_cases_answer_the_same_in_docker(docker_executors: tuple[DockerExecutor, DockerExecutor],
                                                    materialised: dict[str, Dataset], sql: str) -> None:  # noqa: F811
    python, native = (answer(executor, sql, materialised["ecommerce"]) for executor in docker_executors)
    assert not python.HasField("error"), python.error
    assert native == python


@pytest.mark.parametrize("sql", ERROR_CASES)
def test_errors_have_the_same_codes_in_docker(docker_executors: tuple[DockerExecutor, DockerExecutor],
                                              materialised: dict[str, Dataset], sql: str) -> None:  # noqa: F811
    native = answer(docker_executors[1], sql, materialised["ecommerce"])
    assert native.error.code == run_pb2.ERROR_CODE_QUERY_ERROR, native


def test_the_native_container_is_locked_down(docker_executors: tuple[DockerExecutor, DockerExecutor],
                                             materialised: dict[str, Dataset]) -> None:  # noqa: F811
    sql = ("SELECT current_setting('enable_external_access')::VARCHAR AS e, "
           "current_setting('lock_configuration')::VARCHAR AS l, version() AS v")
    native = answer(docker_executors[1], sql, materialised["ecommerce"])
    values = [v.string_value for v in native.result.rows[0].values]
    assert values[:2] == ["false", "true"]
    assert values[2].startswith("v1.5"), "the container ran the native CLI, not the Python runner's DuckDB"


def test_a_native_run_past_its_time_limit_is_killed_in_docker(docker_executors: tuple[DockerExecutor, DockerExecutor],
                                                              materialised: dict[str, Dataset]) -> None:  # noqa: F811
    slow = request("SELECT COUNT(*) FROM range(100000000000) a, range(10) b", materialised["ecommerce"], timeout=2)
    outcome = asyncio.run(docker_executors[1].execute(slow, lambda: None))
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT, outcome.result


def test_a_warm_native_container_answers_the_same(api_client: Any,  # noqa: F811
                                                  materialised: dict[str, Dataset]) -> None:  # noqa: F811
    data = materialised["support"]
    warm = DockerExecutor(pool_settings=PoolSettings(size_per_key=1), native=True)

    hits = metrics.WARM_POOL.labels(result="hit")

    async def scenario() -> tuple[list[sandbox_pb2.SandboxResult], float]:
        results, served_warm = [], 0.0
        try:
            for _ in range(3):
                before = hits._value.get()
                results.append((await warm.execute(request("SELECT count(*) AS n FROM tickets", data),
                                                   lambda: None)).result)
                served_warm += hits._value.get() - before
                await warm.replenish()
        finally:
            await warm.close()
        return results, served_warm

    results, served_warm = asyncio.run(scenario())
    assert served_warm == 2, "after the first (cold) run, each run must be served by a warm container"
    assert len({r.result.SerializeToString() for r in results}) == 1 and results[0].result.row_count == 1
