"""The Kubernetes executor's native SQL path: a run on a materialised dataset is a Job whose pod
runs the runner image's DuckDB CLI (no Python), with the same answer as the Python runner's Job.
Needs a Docker engine and `make runner-image` (the fake cluster's kubelet runs pods as containers).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import duration_pb2

from csv_analyst.runner.v1 import sandbox_pb2
from csv_analyst.v1 import run_pb2
from runner.engine import materialize
from runner_service.executors.base import SandboxRequest, TableFile
from runner_service.executors.k8s_manifests import NATIVE_ENTRY
from runner_service.executors.k8s_settings import KubernetesSettings
from runner_service.executors.kubernetes import KubernetesExecutor
from tests.k8s.test_kubernetes_executor import (  # noqa: F401 - the fake cluster's fixtures
    CSV,
    cluster,
    data_root,
    docker_api,
    leftovers,
    requests_to,
    settings,
)
from tests.k8s.fake_apiserver import FakeCluster

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


@pytest.fixture
def database(tmp_path: Path) -> tuple[TableFile, str]:
    csv = tmp_path / "orders.csv"
    csv.write_text(CSV)
    target = tmp_path / "dataset.duckdb"
    built = materialize(sandbox_pb2.SandboxTask(
        tables=[sandbox_pb2.TableSource(name="orders", path=str(csv))], data_dir=str(tmp_path),
        materialize_to=str(target), limits=run_pb2.ResourceLimits(memory_bytes=256 << 20, threads=1)))
    assert not built.HasField("error"), built.error
    target.chmod(0o644)
    tmp_path.chmod(0o755)
    return TableFile("orders", str(csv)), str(target)


def request(sql: str, table: TableFile, database_path: str) -> SandboxRequest:
    return SandboxRequest(run_id=f"test-{uuid.uuid4().hex[:12]}", sql=sql, tables=(table,), database_path=database_path,
                          limits=run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=20),
                                                        memory_bytes=256 << 20, max_rows=100, threads=1,
                                                        max_processes=32, max_output_bytes=64 * 1024))


@pytest.fixture
def executors(settings: KubernetesSettings, cluster: FakeCluster  # noqa: F811
              ) -> Iterator[tuple[KubernetesExecutor, KubernetesExecutor]]:
    python = KubernetesExecutor(settings, max_timeout_seconds=30, native=False)
    native = KubernetesExecutor(settings, max_timeout_seconds=30, native=True)
    yield python, native
    asyncio.run(python.close())
    asyncio.run(native.close())


def test_a_native_job_answers_like_the_python_runner(executors: tuple[KubernetesExecutor, KubernetesExecutor],
                                                     cluster: FakeCluster,  # noqa: F811
                                                     database: tuple[TableFile, str]) -> None:
    table, path = database
    sql = "SELECT status, count(*) AS n, sum(total) AS revenue, version() AS v FROM orders GROUP BY status ORDER BY status"
    python, native = (asyncio.run(executor.execute(request(sql, table, path), lambda: None)).result
                      for executor in executors)
    assert not native.HasField("error"), native.error
    cut = [[value for value in row.values][:3] for row in native.result.rows]
    assert cut == [[value for value in row.values][:3] for row in python.result.rows]
    assert [c for c in native.result.columns][:3] == [c for c in python.result.columns][:3]
    assert native.result.rows[0].values[3].string_value.startswith("v1.5"), "the pod ran the native CLI"
    commands = [r[3]["spec"]["template"]["spec"]["containers"][0]["command"] for r in requests_to(cluster, "POST", "/jobs")]
    assert ["/bin/sh", "-c", NATIVE_ENTRY] in commands
    assert leftovers(cluster) == []


def test_a_native_job_reports_query_errors_as_data(executors: tuple[KubernetesExecutor, KubernetesExecutor],
                                                   database: tuple[TableFile, str]) -> None:
    table, path = database
    result = asyncio.run(executors[1].execute(request("SELECT nosuch FROM orders", table, path), lambda: None)).result
    assert result.error.code == run_pb2.ERROR_CODE_QUERY_ERROR, result
    assert result.error.message.startswith("DuckDB rejected the query: Binder Error")


def test_python_mode_and_raw_csv_stay_on_the_python_runner(executors: tuple[KubernetesExecutor, KubernetesExecutor],
                                                           database: tuple[TableFile, str]) -> None:
    table, _ = database
    outcome = asyncio.run(executors[1].execute(request("SELECT count(*) AS n FROM orders", table, ""), lambda: None))
    assert outcome.result.result.rows[0].values[0].int_value == 3
