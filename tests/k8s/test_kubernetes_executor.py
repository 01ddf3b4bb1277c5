"""The Kubernetes executor through the real `kubernetes` client, against the local API server of
tests/k8s/fake_apiserver.py, whose kubelet runs each Job's pod as a container of the runner image on
the real Docker engine. So every run here really executes the runner, from the task ConfigMap
and the claim's files, and its answer really travels through the pod log.

What only a live cluster can show (admission, scheduling, RBAC, NetworkPolicy, image pulls, log
rotation) is listed in the README's "Deploy on Kubernetes" section; `make k8s-smoke` runs there.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2

from analyst_service.auth import key_file_line, new_key
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from runner_service.executors.base import SandboxOutcome, SandboxRequest, SandboxStartError, TableFile
from runner_service.executors.docker import IMAGE_PYTHON, default_runner_image
from runner_service.executors.k8s_manifests import ANNOTATION_INSTANCE_POD, LABEL_INSTANCE, owner_labels
from runner_service.executors.k8s_settings import KubernetesSettings
from runner_service.executors.kubernetes import KubernetesExecutor
from tests.conftest import RunningStack, require, start_stack, stop_stack
from tests.k8s.fake_apiserver import Fault, FakeCluster

pytestmark = pytest.mark.docker

CLAIM = "csv-analyst-data"
NAMESPACE = "runs"
CSV = "order_id,status,total\n1,completed,10.5\n2,pending,20\n3,completed,\n"
CLI = str(Path(sys.executable).parent / "csv-analyst")


@pytest.fixture(scope="module")
def docker_api() -> Iterator[Any]:
    import docker

    try:
        client = docker.APIClient(version="auto", timeout=30, **docker.utils.kwargs_from_env())
    except docker.errors.DockerException:
        client = None
    require(client is not None, "no Docker engine answers (apt-get install docker.io; "
                                "dockerd --iptables=false --bridge=none &)")
    try:
        client.inspect_image(default_runner_image())
        has_image = True
    except Exception:  # noqa: BLE001 - ImageNotFound or any engine error: the image is not usable
        has_image = False
    require(has_image, f"the runner image {default_runner_image()} is missing (make runner-image)")
    yield client
    client.close()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the data claim holds: every test's files live below pytest's base temp directory."""
    return tmp_path_factory.getbasetemp().resolve()


@pytest.fixture(scope="module")
def cluster(docker_api: Any, data_root: Path) -> Iterator[FakeCluster]:
    fake = FakeCluster(claims={CLAIM: str(data_root)}, docker=docker_api)
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def settings(cluster: FakeCluster, data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> KubernetesSettings:
    kubeconfig = cluster.kubeconfig(tmp_path_factory.mktemp("kube") / "config", NAMESPACE)
    return KubernetesSettings(kubeconfig=str(kubeconfig), data_claim=CLAIM, data_root=str(data_root),
                              start_seconds=60.0, api_backoff_seconds=0.01, owner="csv-analyst-test")


@pytest.fixture
def executor(settings: KubernetesSettings, cluster: FakeCluster) -> Iterator[KubernetesExecutor]:
    ex = KubernetesExecutor(settings, max_timeout_seconds=30)
    yield ex
    asyncio.run(ex.close())
    cluster.command = None
    cluster.faults.clear()


@pytest.fixture
def table(tmp_path: Path) -> TableFile:
    path = tmp_path / "orders.csv"
    path.write_text(CSV)
    return TableFile("orders", str(path))


def make_request(sql: str, tables: tuple[TableFile, ...], timeout: int = 20) -> SandboxRequest:
    return SandboxRequest(run_id=f"test-{uuid.uuid4().hex[:12]}", sql=sql, tables=tables,
                          limits=run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=timeout),
                                                        memory_bytes=256 << 20, max_rows=100, threads=1,
                                                        max_processes=32, max_output_bytes=64 * 1024))


def execute(executor: KubernetesExecutor, request: SandboxRequest) -> tuple[SandboxOutcome, bool]:
    started = threading.Event()
    outcome = asyncio.run(executor.execute(request, started.set))
    return outcome, started.is_set()


def leftovers(cluster: FakeCluster) -> list[tuple[str, str]]:
    """Jobs, pods and ConfigMaps still in the namespace once their deletion has been collected."""
    def empty() -> bool:
        return not any(k in ("jobs", "pods", "configmaps") for k, _, _ in cluster.objects)
    cluster.wait_for(empty, 30)
    return [(k, n) for k, _, n in cluster.objects if k in ("jobs", "pods", "configmaps")]


def requests_to(cluster: FakeCluster, method: str, fragment: str) -> list[tuple[str, str, Any, Any]]:
    return [r for r in cluster.requests if r[0] == method and fragment in r[1]]


# --- single runs ---------------------------------------------------------------------------------

def test_a_query_runs_as_a_job_and_leaves_nothing(executor: KubernetesExecutor, cluster: FakeCluster,
                                                  table: TableFile) -> None:
    cluster.requests.clear()
    outcome, started = execute(executor, make_request(
        "SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status", (table,)))
    assert not outcome.result.HasField("error"), outcome.result.error
    rows = [[c.string_value or str(c.int_value) for c in row.values] for row in outcome.result.result.rows]
    assert rows == [["completed", "2"], ["pending", "1"]]
    assert started
    created = requests_to(cluster, "POST", "/jobs")[0][3]
    assert created["spec"]["suspend"] is True
    assert requests_to(cluster, "POST", "/configmaps")[0][3]["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert requests_to(cluster, "PATCH", "/jobs/")[0][3] == {"spec": {"suspend": False}}
    watches = [r for r in requests_to(cluster, "GET", "/jobs") if r[2].get("watch", [""])[0].lower() == "true"]
    assert watches and all(r[2]["fieldSelector"] == [f"metadata.name={created['metadata']['name']}"] for r in watches)
    assert requests_to(cluster, "GET", "/log")
    assert leftovers(cluster) == []


def test_the_pod_sees_only_its_own_files_read_only(executor: KubernetesExecutor, cluster: FakeCluster,
                                                   table: TableFile, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a\n1\n")
    outcome, _ = execute(executor, make_request(
        "SELECT count(*) AS n FROM orders", (table,)))
    assert outcome.result.result.rows[0].values[0].int_value == 3
    # A second table maps to its own file.
    outcome, _ = execute(executor, make_request(
        "SELECT (SELECT count(*) FROM orders) + (SELECT sum(a) FROM other) AS n",
        (table, TableFile("other", str(other)))))
    assert not outcome.result.HasField("error"), outcome.result.error
    assert outcome.result.result.rows[0].values[0].int_value == 4


def test_a_query_error_is_data(executor: KubernetesExecutor, table: TableFile) -> None:
    outcome, _ = execute(executor, make_request("SELECT no_such_column FROM orders", (table,)))
    assert outcome.result.error.code == run_pb2.ERROR_CODE_QUERY_ERROR


def test_a_crashing_runner_is_an_internal_error_with_its_stderr(executor: KubernetesExecutor, cluster: FakeCluster,
                                                                table: TableFile) -> None:
    cluster.command = [IMAGE_PYTHON, "-c", "import sys; sys.stderr.write('boom happened\\n'); sys.exit(5)"]
    outcome, _ = execute(executor, make_request("SELECT 1", (table,)))
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR
    assert "boom happened" in outcome.stderr and "boom" not in outcome.result.error.message


def test_a_clean_exit_without_an_answer_is_never_a_result(executor: KubernetesExecutor, cluster: FakeCluster,
                                                          table: TableFile) -> None:
    cluster.command = [IMAGE_PYTHON, "-c", "print('hello')"]
    outcome, _ = execute(executor, make_request("SELECT 1", (table,)))
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR
    assert "answer was lost" in outcome.result.error.message


def test_the_run_limit_deletes_the_job(executor: KubernetesExecutor, cluster: FakeCluster,
                                       table: TableFile) -> None:
    cluster.command = [IMAGE_PYTHON, "-c", "import time; time.sleep(120)"]
    cluster.requests.clear()
    outcome, started = execute(executor, make_request("SELECT 1", (table,), timeout=1))
    assert started
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT
    assert "run_timeout" in outcome.result.error.message
    deletes = requests_to(cluster, "DELETE", "/jobs/")
    assert deletes and deletes[0][2].get("propagationPolicy") == ["Foreground"]
    assert leftovers(cluster) == []


def test_cancel_deletes_the_job_in_the_foreground(executor: KubernetesExecutor, cluster: FakeCluster,
                                                  table: TableFile) -> None:
    cluster.command = [IMAGE_PYTHON, "-c", "import time; time.sleep(120)"]
    cluster.requests.clear()
    request = make_request("SELECT 1", (table,), timeout=60)

    async def run_and_cancel() -> tuple[SandboxOutcome, bool]:
        started = asyncio.Event()
        task = asyncio.create_task(executor.execute(request, started.set))
        await asyncio.wait_for(started.wait(), 60)
        cancelled = await executor.cancel(request.run_id)
        return await task, cancelled

    outcome, cancelled = asyncio.run(run_and_cancel())
    assert cancelled
    assert outcome.result.error.code == run_pb2.ERROR_CODE_CANCELLED
    deletes = requests_to(cluster, "DELETE", "/jobs/")
    assert deletes[0][2].get("propagationPolicy") == ["Foreground"]
    assert leftovers(cluster) == []
    assert asyncio.run(executor.cancel(request.run_id)) is False


def test_a_pod_stuck_pending_is_runner_unavailable_with_the_events_reason(
        settings: KubernetesSettings, cluster: FakeCluster, table: TableFile) -> None:
    executor = KubernetesExecutor(replace(settings, image="csv-analyst-runner:not-there", start_seconds=1.0),
                                  max_timeout_seconds=30)
    try:
        outcome, started = execute(executor, make_request("SELECT 1", (table,)))
    finally:
        asyncio.run(executor.close())
    assert not started
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE
    assert outcome.result.error.status_code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert "ErrImagePull" in outcome.result.error.message
    assert leftovers(cluster) == []


# --- the API's failures --------------------------------------------------------------------------

def test_transient_api_failures_are_retried(executor: KubernetesExecutor, cluster: FakeCluster,
                                            table: TableFile) -> None:
    cluster.requests.clear()
    cluster.faults.extend([
        Fault("POST", r"/jobs$", 429), Fault("POST", r"/jobs$", "reset"),
        Fault("POST", r"/configmaps$", 503), Fault("PATCH", r"/jobs/", 409),
        Fault("GET", r"/pods$", 500), Fault("GET", r"/log$", 502)])
    outcome, _ = execute(executor, make_request("SELECT count(*) AS n FROM orders", (table,)))
    assert not outcome.result.HasField("error"), outcome.result.error
    assert outcome.result.result.rows[0].values[0].int_value == 3
    assert all(f.times == 0 for f in cluster.faults)
    assert len(requests_to(cluster, "POST", "/jobs")) == 3
    assert len(requests_to(cluster, "PATCH", "/jobs/")) == 2
    assert leftovers(cluster) == []


def test_a_lost_create_answer_adopts_the_job_it_made(executor: KubernetesExecutor, cluster: FakeCluster,
                                                     table: TableFile) -> None:
    """The first create succeeded but its answer was lost: the retry gets 409 AlreadyExists."""
    original = cluster.server.RequestHandlerClass._create  # type: ignore[attr-defined]
    calls = []

    def create_then_drop(handler: Any, kind: str, namespace: str, body: dict[str, Any]) -> None:
        if kind == "jobs" and not calls:
            calls.append(1)
            cluster.add("jobs", json.loads(json.dumps({**body, "metadata": {**body["metadata"],
                                                                              "namespace": namespace}})))
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        original(handler, kind, namespace, body)

    cluster.server.RequestHandlerClass._create = create_then_drop  # type: ignore[attr-defined]
    try:
        outcome, _ = execute(executor, make_request("SELECT count(*) AS n FROM orders", (table,)))
    finally:
        cluster.server.RequestHandlerClass._create = original  # type: ignore[attr-defined]
    assert not outcome.result.HasField("error"), outcome.result.error
    assert leftovers(cluster) == []


def test_persistent_api_failures_fail_the_start(executor: KubernetesExecutor, cluster: FakeCluster,
                                                table: TableFile) -> None:
    cluster.requests.clear()
    cluster.faults.append(Fault("POST", r"/jobs$", 503, times=100))
    with pytest.raises(SandboxStartError, match="503"):
        execute(executor, make_request("SELECT 1", (table,)))
    assert len(requests_to(cluster, "POST", "/jobs")) == executor.settings.api_attempts


def test_a_refused_job_fails_the_start_without_retries(executor: KubernetesExecutor, cluster: FakeCluster,
                                                       table: TableFile) -> None:
    cluster.requests.clear()
    cluster.faults.append(Fault("POST", r"/jobs$", 403, reason="Forbidden"))
    with pytest.raises(SandboxStartError, match="403"):
        execute(executor, make_request("SELECT 1", (table,)))
    assert len(requests_to(cluster, "POST", "/jobs")) == 1


def test_an_expired_watch_is_resumed(executor: KubernetesExecutor, cluster: FakeCluster, table: TableFile) -> None:
    cluster.expire_watches = 1
    outcome, _ = execute(executor, make_request("SELECT count(*) AS n FROM orders", (table,)))
    assert cluster.expire_watches == 0
    assert outcome.result.result.rows[0].values[0].int_value == 3


def test_an_unreachable_api_fails_at_start(settings: KubernetesSettings, tmp_path: Path) -> None:
    closed = FakeCluster(claims={})
    kubeconfig = closed.kubeconfig(tmp_path / "config")
    closed.close()
    with pytest.raises(SandboxStartError, match="not usable"):
        KubernetesExecutor(replace(settings, kubeconfig=str(kubeconfig), api_attempts=2))


# --- reaping -------------------------------------------------------------------------------------

def test_orphaned_jobs_are_reaped_at_start(settings: KubernetesSettings, cluster: FakeCluster) -> None:
    labels = owner_labels(settings)
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "runner", "image": "x"}]}}

    def job(name: str, instance: str, owner_pod: str, owner: str = settings.owner) -> None:
        cluster.add("jobs", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
            "name": name, "namespace": NAMESPACE, "labels": {**labels, "csv-analyst.io/owner": owner,
                                                             LABEL_INSTANCE: instance},
            "annotations": {ANNOTATION_INSTANCE_POD: owner_pod}},
            "spec": {"suspend": True, "template": template}})

    cluster.add("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "runner-live", "namespace": "csv"},
                         "spec": template["spec"], "status": {"phase": "Running"}})
    job("run-orphan-aaaaa", "dead-1", "csv/runner-gone")
    job("run-live-bbbbb", "live-1", "csv/runner-live")
    job("run-others-ccccc", "dead-2", "csv/runner-gone", owner="another-release")
    executor = KubernetesExecutor(settings, max_timeout_seconds=30)
    try:
        assert executor.reaped == ["run-orphan-aaaaa"]
    finally:
        asyncio.run(executor.close())
    cluster.wait_for(lambda: ("jobs", NAMESPACE, "run-orphan-aaaaa") not in cluster.objects, 30)
    assert {n for k, _, n in cluster.objects if k == "jobs"} == {"run-live-bbbbb", "run-others-ccccc"}
    for name in ("run-live-bbbbb", "run-others-ccccc"):
        cluster.remove("jobs", NAMESPACE, name)
    cluster.remove("pods", "csv", "runner-live")


# --- end to end: the whole stack with executor=k8s -----------------------------------------------

@pytest.fixture(scope="module")
def k8s_stack(settings: KubernetesSettings, cluster: FakeCluster, datasets_dir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(datasets_dir, tmp_path_factory.mktemp("k8s-capsules") / "capsules.sqlite3",
                          runner_overrides={"executor": "k8s", "kubernetes": settings, "max_queue": 64})
    yield running
    stop_stack(running)
    assert leftovers(cluster) == []


def ask_all(target: str, dataset_id: str, prompts: list[str] | None = None) -> list[tuple[str, str, str, str]]:
    """Ask each prompt (default: the dataset's registry prompts); return the failures."""
    with grpc.insecure_channel(target) as channel:
        analyst = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        if prompts is None:
            prompts = list(analyst.GetDataset(api.GetDatasetRequest(name=dataset_id)).dataset.prompts)
        assert prompts
        failures = []
        for prompt in prompts:
            run = [r.event for r in analyst.Ask(api.AskRequest(dataset_id=dataset_id, question=prompt))][-1].run
            if run.state != run_pb2.RUN_STATE_SUCCEEDED or run.result.row_count == 0 or run.runner_mode != "k8s":
                failures.append((prompt, run_pb2.RunState.Name(run.state), run.runner_mode, run.error.message))
    return failures


@pytest.mark.parametrize("dataset_id", ["ecommerce", "support", "sensors"])
def test_every_registry_prompt_succeeds_with_k8s(k8s_stack: RunningStack, dataset_id: str) -> None:
    assert ask_all(k8s_stack.analyst_target, dataset_id) == []


def test_materialised_datasets_are_built_by_jobs(k8s_stack: RunningStack, cluster: FakeCluster) -> None:
    """The prompts above started materialisations, each a Job writing through the one writable mount."""
    materializer = k8s_stack.stack.runner.materializer
    assert materializer is not None
    k8s_stack.loop.run(materializer.wait_idle())
    built = list((k8s_stack.capsule_db.parent / "materialized").glob("*.duckdb"))
    assert len(built) >= 3, built
    # SQL not run above (a repeated question is answered by the analyst's result cache).
    with grpc.insecure_channel(k8s_stack.analyst_target) as channel:
        analyst = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        run = analyst.SubmitRun(api.SubmitRunRequest(
            dataset_id="ecommerce", sql=f"SELECT status, count(*) AS n, {uuid.uuid4().int % 1000} AS k "
                                        "FROM orders GROUP BY status"), timeout=120).run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED and run.runner_mode == "k8s", run.error
    assert run.result.row_count > 0
    job = requests_to(cluster, "POST", "/jobs")[-1][3]
    mounts = job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert [m["mountPath"] for m in mounts if m["name"] == "data"] == ["/data/dataset.duckdb"]


def test_embedded_cli_ask_with_k8s(settings: KubernetesSettings, datasets_dir: Path, tmp_path: Path,
                                   cluster: FakeCluster) -> None:
    env = {**os.environ, "CSV_ANALYST_K8S_KUBECONFIG": settings.kubeconfig, "CSV_ANALYST_K8S_DATA_CLAIM": CLAIM,
           "CSV_ANALYST_K8S_DATA_ROOT": settings.data_root, "CSV_ANALYST_K8S_OWNER": "csv-analyst-cli"}
    result = subprocess.run(
        [CLI, "ask", "--executor", "k8s", "--datasets-dir", str(datasets_dir),
         "--capsule-db", str(tmp_path / "capsules.sqlite3"), "--cache-dir", str(tmp_path / "materialized"),
         "--dataset", "ecommerce", "--json", "How many orders are there per status?"],
        capture_output=True, text=True, timeout=180, check=False, env=env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "SUCCEEDED" and answer["rows"] and answer["run_id"]
    assert leftovers(cluster) == []


# --- the chart's topology: the services as separate processes, configured by environment -------

def wait_serving(target: str, process: subprocess.Popen[bytes], log: Path) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(600):
            assert process.poll() is None, log.read_text()
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            threading.Event().wait(0.1)
    raise AssertionError(f"{target} never served")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_services_run_as_the_chart_runs_them(settings: KubernetesSettings, datasets_dir: Path, tmp_path: Path,
                                                 cluster: FakeCluster) -> None:
    """`python -m runner_service` (k8s executor) and `python -m analyst_service`, wired by the same
    environment variables as the chart's Deployments, answer a question."""
    runner_port, analyst_port = free_port(), free_port()
    credential = tmp_path / "credential"
    credential.write_text(uuid.uuid4().hex * 2 + "\n")
    key = new_key()
    keys = tmp_path / "keys"
    keys.write_text(key_file_line(key, "ui") + "\n")  # the form of the chart's generated key file
    auth = (("authorization", f"Bearer {key}"),)
    base = {k: v for k, v in os.environ.items() if not k.startswith("CSV_ANALYST_")}
    runner_env = {**base, "CSV_ANALYST_RUNNER_HOST": "127.0.0.1", "CSV_ANALYST_RUNNER_PORT": str(runner_port),
                  "CSV_ANALYST_RUNNER_EXECUTOR": "k8s", "CSV_ANALYST_RUNNER_CACHE_DIR": "",
                  "CSV_ANALYST_K8S_KUBECONFIG": settings.kubeconfig, "CSV_ANALYST_K8S_DATA_CLAIM": CLAIM,
                  "CSV_ANALYST_K8S_DATA_ROOT": settings.data_root, "CSV_ANALYST_K8S_OWNER": "csv-analyst-main",
                  "CSV_ANALYST_K8S_INSTANCE_POD": "csv/runner-0", "CSV_ANALYST_RUNNER_DATA_ROOTS": settings.data_root,
                  "CSV_ANALYST_RUNNER_CREDENTIAL_FILE": str(credential)}
    analyst_env = {**base, "CSV_ANALYST_ANALYST_HOST": "127.0.0.1", "CSV_ANALYST_ANALYST_PORT": str(analyst_port),
                   "CSV_ANALYST_ANALYST_RUNNER_TARGET": f"127.0.0.1:{runner_port}",
                   "CSV_ANALYST_ANALYST_DATASETS_DIR": str(datasets_dir),
                   "CSV_ANALYST_ANALYST_CAPSULE_DB": str(tmp_path / "capsules.sqlite3"),
                   "CSV_ANALYST_ANALYST_UPLOAD_DIR": str(tmp_path / "uploads"),
                   "CSV_ANALYST_ANALYST_API_KEYS_FILE": str(keys),
                   "CSV_ANALYST_RUNNER_CREDENTIAL_FILE": str(credential)}
    logs = [tmp_path / "runner.log", tmp_path / "analyst.log"]
    processes = []
    for (module, env), log in zip((("runner_service", runner_env), ("analyst_service", analyst_env)), logs,
                                  strict=True):
        with log.open("wb") as stderr:
            processes.append(subprocess.Popen([sys.executable, "-m", module], env=env, stderr=stderr, cwd=tmp_path))
    try:
        wait_serving(f"127.0.0.1:{runner_port}", processes[0], logs[0])
        wait_serving(f"127.0.0.1:{analyst_port}", processes[1], logs[1])
        with grpc.insecure_channel(f"127.0.0.1:{analyst_port}") as channel:
            analyst = analyst_service_pb2_grpc.AnalystServiceStub(channel)
            run = [r.event for r in analyst.Ask(api.AskRequest(
                dataset_id="ecommerce", question="How many orders are there per status?"), metadata=auth)][-1].run
            assert run.state == run_pb2.RUN_STATE_SUCCEEDED and run.runner_mode == "k8s", run.error
            with pytest.raises(grpc.RpcError) as refused:
                list(analyst.Ask(api.AskRequest(csv_paths=["/etc/passwd"], question="how many rows?"), metadata=auth))
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(grpc.RpcError) as anonymous:
                list(analyst.Ask(api.AskRequest(dataset_id="ecommerce", question="How many orders are there?")))
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        for process in processes:
            process.terminate()
        for process, log in zip(processes, logs, strict=True):
            assert process.wait(60) == 0, log.read_text()
    assert leftovers(cluster) == []


def test_job_creations_pass_the_rate_limit(executor: KubernetesExecutor, cluster: FakeCluster,
                                           table: TableFile) -> None:
    """With a burst of 1 and a slow rate, the second run's creation waits for its token (the wait is
    recorded, not slept: no timing in the assertion)."""
    import functools

    from runner_service.executors.k8s_api import TokenBucket

    now = [0.0]
    waits: list[float] = []
    bucket = TokenBucket(rate=0.01, burst=1, clock=lambda: now[0])
    executor.limiter.acquire = functools.partial(bucket.acquire, sleep=waits.append)  # type: ignore[method-assign]
    for _ in range(2):
        outcome, _ = execute(executor, make_request("SELECT count(*) AS n FROM orders", (table,)))
        assert outcome.result.result.rows[0].values[0].int_value == 3
    assert waits == [100.0]


def test_restricted_python_runs_as_a_job(executor: KubernetesExecutor, table: TableFile) -> None:
    request = replace(make_request("", (table,)),
                      python_code="result_df = orders.groupby('status', as_index=False).size()")
    outcome, _ = execute(executor, request)
    assert not outcome.result.HasField("error"), (outcome.result.error, outcome.stderr)
    rows = [[getattr(cell, cell.WhichOneof("kind")) for cell in row.values] for row in outcome.result.result.rows]
    assert rows == [["completed", 2], ["pending", 1]]
    refused, _ = execute(executor, replace(make_request("", (table,)), python_code="import os\nresult = 1"))
    assert refused.result.error.code == run_pb2.ERROR_CODE_PYTHON_POLICY_VIOLATION
