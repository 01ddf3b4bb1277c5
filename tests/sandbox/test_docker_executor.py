"""The real DockerExecutor against a real Docker engine and the real runner image.

Isolation is checked from inside: probes run arbitrary Python in a container built from the very
spec a run gets (build_container_spec, with only the entrypoint replaced); DuckDB checks, the
timeout kill, cancellation and the memory cap go through DockerExecutor.execute (cold: the module's
executor keeps no warm pool). Warm containers get their own executors: one container per run, refill
to size, never across datasets or limits, timeout and cancel, nothing left after close(). The module
ends by checking that no container of this process is left behind, and an end-to-end stack with
executor=docker (warm pool on, as configured by default) answers every registry prompt.

Needs: `apt-get install docker.io`, `dockerd --iptables=false --bridge=none &`, `make runner-image`.
"""

from __future__ import annotations

import dataclasses

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from runner_service.executors.base import SandboxOutcome, SandboxRequest, SandboxStartError, TableFile
from runner_service.executors.docker import (
    IMAGE_PYTHON,
    LABEL_EXECUTOR,
    LABEL_INSTANCE,
    LABEL_OWNER,
    LABEL_REAP_AFTER,
    LABEL_RUN_ID,
    ContainerExit,
    DockerExecutor,
    default_runner_image,
    interpret_exit,
    owner_label,
)
from runner_service.executors.pool import PoolSettings, pool_key
from tests.conftest import RunningStack, require, start_stack, stop_stack

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]

CSV = "order_id,status,total\n1,completed,10.5\n2,pending,20\n3,completed,\n"
CLI = str(Path(sys.executable).parent / "csv-analyst")


def engine() -> Any:
    """A low-level client, or None when no engine answers."""
    import docker

    try:
        return docker.APIClient(version="auto", timeout=30, **docker.utils.kwargs_from_env())
    except docker.errors.DockerException:
        return None


@pytest.fixture(scope="module")
def api_client() -> Iterator[Any]:
    client = engine()
    require(client is not None, "no Docker engine answers (apt-get install docker.io; "
                                "dockerd --iptables=false --bridge=none &)")
    image = default_runner_image()
    try:
        client.inspect_image(image)
        has_image = True
    except Exception:  # noqa: BLE001 - ImageNotFound or any engine error: the image is not usable
        has_image = False
    require(has_image, f"the runner image {image} is missing (make runner-image)")
    yield client
    client.close()


@pytest.fixture(scope="module")
def executor(api_client: Any) -> Iterator[DockerExecutor]:
    ex = DockerExecutor(pool_settings=PoolSettings(size_per_key=0))
    yield ex
    asyncio.run(ex.close())


@pytest.fixture
def table(tmp_path: Path) -> TableFile:
    path = tmp_path / "orders.csv"
    path.write_text(CSV)
    return TableFile("orders", str(path))


def make_request(sql: str, tables: tuple[TableFile, ...], timeout: float = 20.0, memory_bytes: int = 256 << 20,
                 max_rows: int = 100, max_processes: int = 32) -> SandboxRequest:
    seconds = int(timeout)
    return SandboxRequest(
        run_id=f"test-{uuid.uuid4().hex[:12]}", sql=sql, tables=tables,
        limits=run_pb2.ResourceLimits(
            timeout=duration_pb2.Duration(seconds=seconds, nanos=int((timeout - seconds) * 1e9)),
            memory_bytes=memory_bytes, max_rows=max_rows, threads=1, max_processes=max_processes,
            max_output_bytes=64 * 1024),
    )


def execute(executor: DockerExecutor, request: SandboxRequest) -> SandboxOutcome:
    started: list[bool] = []

    async def run() -> SandboxOutcome:
        return await executor.execute(request, lambda: started.append(True))

    outcome = asyncio.run(run())
    assert started == [True]
    return outcome


def probe(executor: DockerExecutor, request: SandboxRequest, code: str) -> ContainerExit:
    """Run Python code in a container with the run's exact spec (entrypoint replaced)."""
    return executor.run_container(request, b"", command=[IMAGE_PYTHON, "-c", code])


ISOLATION_PROBE = r"""
import json, os, socket, subprocess, sys
out = {"uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(), "groups": os.getgroups(),
       "hostname": socket.gethostname(), "env": sorted(os.environ), "cwd": os.getcwd()}
out["interfaces"] = sorted(os.listdir("/sys/class/net"))
def attempt(fn):
    try:
        fn(); return "ok"
    except OSError as error:
        return type(error).__name__ + ":" + str(error.errno)
def connect(host, port):
    s = socket.create_connection((host, port), timeout=2); s.close()
out["connect_public"] = attempt(lambda: connect("1.1.1.1", 53))
out["connect_host"] = attempt(lambda: connect("172.17.0.1", 2375))
out["resolve"] = attempt(lambda: socket.getaddrinfo("deb.debian.org", 80))
out["write_root"] = attempt(lambda: open("/etc/sandbox-probe", "w"))
out["write_app"] = attempt(lambda: open("/app/runner/evil.py", "w"))
out["write_data"] = attempt(lambda: open("/data/t0.csv", "a"))
out["read_data"] = open("/data/t0.csv").read()
out["data_dir"] = sorted(os.listdir("/data"))
with open("/tmp/ok.sh", "w") as f:
    f.write("#!/bin/sh\necho hi\n")
os.chmod("/tmp/ok.sh", 0o755)
out["exec_tmp"] = attempt(lambda: subprocess.run(["/tmp/ok.sh"], check=True))
st = os.statvfs("/tmp")
out["tmp_bytes"] = st.f_blocks * st.f_frsize
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
out["caps"] = {k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
out["no_new_privs"] = status["NoNewPrivs"].strip()
def read(path):
    try:
        return open(path).read().strip()
    except OSError:
        return None
out["pids_max"] = read("/sys/fs/cgroup/pids/pids.max") or read("/sys/fs/cgroup/pids.max")
out["memory_max"] = read("/sys/fs/cgroup/memory/memory.limit_in_bytes") or read("/sys/fs/cgroup/memory.max")
out["docker_sock"] = os.path.exists("/var/run/docker.sock") or os.path.exists("/run/docker.sock")
out["mounts"] = [line.split()[1:4] for line in open("/proc/self/mounts") if line.split()[1] in ("/", "/tmp", "/data/t0.csv")]
print(json.dumps(out))
"""


def test_isolation_from_inside(executor: DockerExecutor, table: TableFile) -> None:
    # World-writable on the host, so only the read-only bind can refuse the write below.
    Path(table.host_path).chmod(0o666)
    request = make_request("SELECT 1", (table,), memory_bytes=200 << 20, max_processes=24)
    done = probe(executor, request, ISOLATION_PROBE)
    assert done.exit_code == 0, done.stderr.decode()
    out = json.loads(done.stdout)
    # Non-root, everywhere.
    assert (out["uid"], out["gid"], out["euid"]) == (65534, 65534, 65534) and out["groups"] in ([], [65534])
    # No network: only loopback exists and nothing outside is reachable or resolvable.
    assert out["interfaces"] == ["lo"]
    assert out["connect_public"] != "ok" and out["connect_host"] != "ok" and out["resolve"] != "ok"
    # Read-only root, code and data; a writable /tmp that cannot hold executables.
    assert out["write_root"].startswith("OSError:30"), out["write_root"]  # EROFS
    assert out["write_app"].startswith("OSError:30"), out["write_app"]
    assert out["write_data"].startswith("OSError:30"), out["write_data"]
    assert out["read_data"] == CSV and out["data_dir"] == ["t0.csv"]
    assert out["exec_tmp"] == "PermissionError:13"
    assert out["tmp_bytes"] == 200 << 20
    mounts = {m[0]: m for m in out["mounts"]}
    assert "ro" in mounts["/"][2].split(",") and "ro" in mounts["/data/t0.csv"][2].split(",")
    assert mounts["/tmp"][1] == "tmpfs"
    # Every capability dropped, and no way to gain privileges.
    assert set(out["caps"].values()) == {"0000000000000000"}, out["caps"]
    assert out["no_new_privs"] == "1"
    # Limits as configured (memory: 2x DuckDB's limit, see MEMORY_FACTOR).
    assert out["pids_max"] == "24"
    assert int(out["memory_max"]) == 400 << 20
    # A cleared environment and no way to reach the engine.
    assert set(out["env"]) <= {"HOME", "LANG", "TZ", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PATH", "HOSTNAME",
                               "LC_CTYPE"}
    assert out["hostname"] == "sandbox" and out["cwd"] == "/tmp" and out["docker_sock"] is False
    assert not done.timed_out and not done.oom_killed


def test_the_container_inspects_as_specified(executor: DockerExecutor, table: TableFile, api_client: Any) -> None:
    """The engine's own view of a run container (read while it runs)."""
    request = make_request("SELECT 1", (table,), memory_bytes=128 << 20)
    seen: dict[str, Any] = {}

    def started() -> None:
        found = api_client.containers(filters={"label": f"csv-analyst.run-id={request.run_id}"})
        seen.update(api_client.inspect_container(found[0]["Id"]))

    executor.run_container(request, b"", on_started=started, command=[IMAGE_PYTHON, "-c", "import time; time.sleep(1)"])
    host = seen["HostConfig"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"] and host["Privileged"] is False
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Memory"] == host["MemorySwap"] == 256 << 20
    assert host["PidsLimit"] == 32 and host["NanoCpus"] == 1_000_000_000
    assert seen["Config"]["User"] == "65534:65534"
    assert seen["Config"]["Labels"][LABEL_EXECUTOR] == "docker"
    assert seen["Config"]["Labels"][LABEL_INSTANCE] == executor.instance
    assert int(seen["Config"]["Labels"][LABEL_REAP_AFTER]) >= int(time.time()) + 20  # 20 s limit + grace


def test_query_runs_in_a_container(executor: DockerExecutor, table: TableFile) -> None:
    outcome = execute(executor, make_request(
        "SELECT status, COUNT(*) AS n FROM orders GROUP BY status ORDER BY status", (table,)))
    assert outcome.exit_code == 0, outcome.stderr
    assert not outcome.result.HasField("error"), outcome.result.error
    rows = [[cell.WhichOneof("kind") and getattr(cell, cell.WhichOneof("kind")) for cell in row.values]
            for row in outcome.result.result.rows]
    assert rows == [["completed", 2], ["pending", 1]]
    assert 0 < outcome.wall_seconds < 30


def test_restricted_python_runs_in_a_container(executor: DockerExecutor, table: TableFile) -> None:
    request = dataclasses.replace(make_request("", (table,)),
                                  python_code="result_df = orders.groupby('status', as_index=False).size()")
    outcome = execute(executor, request)
    assert not outcome.result.HasField("error"), (outcome.result.error, outcome.stderr)
    rows = [[getattr(cell, cell.WhichOneof("kind")) for cell in row.values] for row in outcome.result.result.rows]
    assert rows == [["completed", 2], ["pending", 1]]
    refused = execute(executor, dataclasses.replace(make_request("", (table,)), python_code="import os\nresult = 1"))
    assert refused.result.error.code == run_pb2.ERROR_CODE_PYTHON_POLICY_VIOLATION


def test_several_tables_map_to_their_own_files(executor: DockerExecutor, table: TableFile, tmp_path: Path) -> None:
    other = tmp_path / "customers with spaces.csv"
    other.write_text("customer_id,name\n1,Ada\n2,Lin\n")
    outcome = execute(executor, make_request(
        "SELECT (SELECT COUNT(*) FROM orders) AS o, (SELECT COUNT(*) FROM customers) AS c",
        (table, TableFile("customers", str(other)))))
    assert not outcome.result.HasField("error"), outcome.result.error
    assert [v.int_value for v in outcome.result.result.rows[0].values] == [3, 2]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv('http://127.0.0.1:1/x.csv')",
    "COPY (SELECT 1) TO '/data/t0.csv'",
])
def test_duckdb_in_the_container_cannot_escape(executor: DockerExecutor, table: TableFile, sql: str) -> None:
    outcome = execute(executor, make_request(sql, (table,)))
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.result.error.code == run_pb2.ERROR_CODE_QUERY_ERROR, outcome.result
    assert Path(table.host_path).read_text() == CSV


def test_timeout_kills_the_container(executor: DockerExecutor, table: TableFile) -> None:
    """sleep_ms is not stopped by DuckDB's max_execution_time: only the executor's kill ends it."""
    outcome = execute(executor, make_request("SELECT sleep_ms(120000)", (table,), timeout=1.0))
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT, outcome.result
    assert outcome.result.error.reason == "RUNNER_TIMEOUT" and outcome.result.error.status_code == 4
    assert outcome.exit_code == 137  # SIGKILL
    assert outcome.wall_seconds < 15


def test_timeout_kills_a_runner_that_ignores_duckdb_limits(executor: DockerExecutor, table: TableFile) -> None:
    request = make_request("SELECT 1", (table,), timeout=1.0)
    done = probe(executor, request, "import time; time.sleep(120)")
    assert done.timed_out and done.exit_code == 137 and done.wall_seconds < 15
    assert interpret_exit(request, done, cancelled=False).result.error.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT


def test_memory_cap_kills_a_python_bomb(executor: DockerExecutor, table: TableFile) -> None:
    request = make_request("SELECT 1", (table,), memory_bytes=64 << 20)
    done = probe(executor, request, "b = bytearray(1024 ** 3); b[::4096] = b'x' * len(b[::4096]); print('allocated')")
    assert done.oom_killed and done.exit_code == 137, (done.exit_code, done.stderr)
    assert b"allocated" not in done.stdout
    error = interpret_exit(request, done, cancelled=False).result.error
    assert error.code == run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED and error.status_code == 8


def test_duckdb_memory_bomb(executor: DockerExecutor, table: TableFile) -> None:
    outcome = execute(executor, make_request("SELECT repeat('x', 2000000000)", (table,), memory_bytes=128 << 20))
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, outcome.result


def test_process_limit_holds(executor: DockerExecutor, table: TableFile) -> None:
    code = (
        "import os, sys, time\n"
        "n = 0\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30); os._exit(0)\n"
        "        n += 1\n"
        "except OSError:\n"
        "    pass\n"
        "print(n); sys.stdout.flush(); os._exit(0)\n"
    )
    done = probe(executor, make_request("SELECT 1", (table,), max_processes=16), code)
    assert done.exit_code == 0, done.stderr
    assert int(done.stdout) < 16


def test_cancel(executor: DockerExecutor, table: TableFile) -> None:
    request = make_request("SELECT sleep_ms(120000)", (table,), timeout=60.0)

    async def scenario() -> tuple[SandboxOutcome, bool, bool]:
        started = asyncio.Event()
        task = asyncio.create_task(executor.execute(request, started.set))
        await asyncio.wait_for(started.wait(), 30)
        cancelled = await executor.cancel(request.run_id)
        outcome = await asyncio.wait_for(task, 30)
        return outcome, cancelled, await executor.cancel(request.run_id)

    outcome, cancelled, again = asyncio.run(scenario())
    assert cancelled is True and again is False
    assert outcome.result.error.code == run_pb2.ERROR_CODE_CANCELLED
    assert outcome.wall_seconds < 20


def test_cancel_unknown_run(executor: DockerExecutor) -> None:
    assert asyncio.run(executor.cancel("no-such-run")) is False


def test_failed_runner_is_an_internal_error(executor: DockerExecutor, table: TableFile) -> None:
    request = make_request("SELECT 1", (table,))
    done = probe(executor, request, "import sys; sys.stderr.write('boom happened\\n'); sys.exit(5)")
    error = interpret_exit(request, done, cancelled=False).result.error
    assert done.exit_code == 5 and error.code == run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR
    # The container's words stay out of the client-facing message (operators read stderr).
    assert "boom happened" not in error.message and "exit code 5" in error.message
    assert "boom happened" in interpret_exit(request, done, cancelled=False).stderr


def test_missing_table_file_fails_to_start(executor: DockerExecutor, tmp_path: Path) -> None:
    request = make_request("SELECT 1", (TableFile("ghost", str(tmp_path / "missing.csv")),))
    with pytest.raises(SandboxStartError):
        execute(executor, request)


def test_missing_image_is_refused_at_start(api_client: Any) -> None:
    with pytest.raises(SandboxStartError, match="make runner-image"):
        DockerExecutor(image="csv-analyst-runner:does-not-exist")


def test_leftovers_of_a_dead_owner_are_reaped_at_start_up(api_client: Any) -> None:
    dead_owner = owner_label(pid=999_999_999).rsplit("/", 1)[0] + "/1"
    leaked = api_client.create_container(default_runner_image(), labels={
        LABEL_EXECUTOR: "docker", LABEL_OWNER: dead_owner, "csv-analyst.run-id": "leaked"})["Id"]
    ours = api_client.create_container(default_runner_image(), labels={
        LABEL_EXECUTOR: "docker", LABEL_OWNER: owner_label(), "csv-analyst.run-id": "alive-owner"})["Id"]
    try:
        fresh = DockerExecutor()
        ids = {c["Id"] for c in api_client.containers(all=True, filters={"label": f"{LABEL_EXECUTOR}=docker"})}
        assert leaked not in ids and ours in ids
        asyncio.run(fresh.close())
    finally:
        api_client.remove_container(ours, force=True)


def test_no_container_is_left_behind(executor: DockerExecutor, api_client: Any, table: TableFile) -> None:
    """After runs that succeed, time out, are cancelled and crash (above), nothing of this process remains."""

    async def scenario() -> None:
        own = DockerExecutor()
        request = make_request("SELECT sleep_ms(120000)", (table,), timeout=60.0)
        started = asyncio.Event()
        task = asyncio.create_task(own.execute(request, started.set))
        await asyncio.wait_for(started.wait(), 30)
        await own.close()  # kills the running container
        outcome = await asyncio.wait_for(task, 30)
        assert outcome.result.error.code == run_pb2.ERROR_CODE_CANCELLED

    asyncio.run(scenario())
    mine = api_client.containers(all=True, filters={"label": f"{LABEL_OWNER}={owner_label()}"})
    assert mine == []


# --- warm containers ---------------------------------------------------------------------------

def containers_of(api_client: Any, executor: DockerExecutor) -> set[str]:
    """Ids of every container (running or not) of one executor instance."""
    listed = api_client.containers(all=True, filters={"label": f"{LABEL_INSTANCE}={executor.instance}"})
    return {c["Id"] for c in listed}


async def warm_up(executor: DockerExecutor, request: SandboxRequest) -> str:
    """Make request's key wanted and refilled; return the pool key."""
    key = pool_key(request)
    assert key is not None
    executor.pool.want(key, request)
    await executor.replenish()
    assert executor.pool.count(key) == executor.pool_settings.size_per_key
    return key


async def execute_seeing(executor: DockerExecutor, api_client: Any, request: SandboxRequest
                         ) -> tuple[SandboxOutcome, set[str]]:
    """Execute; also return the executor's containers at the moment the run started."""
    seen: set[str] = set()
    outcome = await executor.execute(request, lambda: seen.update(containers_of(api_client, executor)))
    return outcome, seen


def first_value(outcome: SandboxOutcome) -> Any:
    assert not outcome.result.HasField("error"), outcome.result.error
    cell = outcome.result.result.rows[0].values[0]
    return getattr(cell, cell.WhichOneof("kind"))


def test_a_warm_container_serves_exactly_one_run(api_client: Any, table: TableFile) -> None:
    async def scenario() -> None:
        executor = DockerExecutor(pool_settings=PoolSettings(size_per_key=1))
        try:
            first = make_request("SELECT COUNT(*) FROM orders", (table,))
            assert first_value(await executor.execute(first, lambda: None)) == 3  # cold: makes the key wanted
            key = pool_key(first)
            assert key is not None and executor.pool.count(key) == 0
            await executor.replenish()
            assert executor.pool.count(key) == 1
            (warm,) = containers_of(api_client, executor)
            labels = api_client.inspect_container(warm)["Config"]["Labels"]
            assert labels[LABEL_RUN_ID] == ""  # a warm container belongs to no run until one takes it
            second = make_request("SELECT MAX(total) FROM orders", (table,))
            outcome, seen = await execute_seeing(executor, api_client, second)
            assert first_value(outcome) == 20.0
            # The run took the warm container (no other container was started) and nothing is warm now.
            assert seen == {warm} and executor.pool.count(key) == 0
            await executor.replenish()  # the used container is removed, a fresh one is started
            now = containers_of(api_client, executor)
            assert warm not in now and len(now) == 1 and executor.pool.count(key) == 1
        finally:
            await executor.close()

    asyncio.run(scenario())


def test_replenish_brings_the_pool_back_to_size(api_client: Any, table: TableFile) -> None:
    async def scenario() -> None:
        executor = DockerExecutor(pool_settings=PoolSettings(size_per_key=2))
        try:
            request = make_request("SELECT COUNT(*) FROM orders", (table,))
            key = await warm_up(executor, request)
            warm = containers_of(api_client, executor)
            assert len(warm) == 2
            outcome, seen = await execute_seeing(executor, api_client, request)
            assert first_value(outcome) == 3 and seen == warm and executor.pool.count(key) == 1
            await executor.replenish()
            after = containers_of(api_client, executor)
            assert executor.pool.count(key) == 2 and len(after) == 2 and len(after & warm) == 1
        finally:
            await executor.close()

    asyncio.run(scenario())


def test_other_datasets_and_limits_get_no_warm_container_of_another_key(api_client: Any, table: TableFile,
                                                                        tmp_path: Path) -> None:
    other_file = tmp_path / "other.csv"
    other_file.write_text("order_id,status,total\n7,lost,1\n")

    async def scenario() -> None:
        executor = DockerExecutor(pool_settings=PoolSettings(size_per_key=1))
        try:
            key = await warm_up(executor, make_request("SELECT 1", (table,)))
            (warm,) = containers_of(api_client, executor)
            for request in (make_request("SELECT COUNT(*) FROM orders", (TableFile("orders", str(other_file)),)),
                            make_request("SELECT COUNT(*) FROM orders", (table,), timeout=7.0),
                            make_request("SELECT COUNT(*) FROM orders", (table,), memory_bytes=200 << 20)):
                assert pool_key(request) != key
                outcome, seen = await execute_seeing(executor, api_client, request)
                # A cold container of its own; the warm one stays untouched for its own key.
                assert warm in seen and len(seen) == 2 and executor.pool.count(key) == 1
                expected = 1 if request.tables[0].host_path == str(other_file) else 3
                assert first_value(outcome) == expected
            assert warm in containers_of(api_client, executor)
        finally:
            await executor.close()

    asyncio.run(scenario())


def test_a_warm_container_is_labelled_for_its_idle_wait(api_client: Any, table: TableFile) -> None:
    """Another executor's start-up reaping must not remove a live warm container."""

    async def scenario() -> None:
        executor = DockerExecutor(pool_settings=PoolSettings(size_per_key=1, idle_seconds=900))
        try:
            before = time.time()
            await warm_up(executor, make_request("SELECT 1", (table,), timeout=20.0))
            (warm,) = containers_of(api_client, executor)
            reap_after = int(api_client.inspect_container(warm)["Config"]["Labels"][LABEL_REAP_AFTER])
            assert reap_after >= int(before) + 900 + 20
            other = DockerExecutor()  # its start-up reaping removes what is past its reap-after label
            await other.close()
            assert warm in containers_of(api_client, executor)
        finally:
            await executor.close()

    asyncio.run(scenario())


def test_timeout_kills_a_warm_container(api_client: Any, table: TableFile) -> None:
    async def scenario() -> None:
        executor = DockerExecutor(pool_settings=PoolSettings(size_per_key=1))
        try:
            request = make_request("SELECT sleep_ms(120000)", (table,), timeout=1.0)
            await warm_up(executor, request)
            warm = containers_of(api_client, executor)
            outcome, seen = await execute_seeing(executor, api_client, request)
            assert seen == warm
            assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT, outcome.result
            assert outcome.exit_code == 137 and outcome.wall_seconds < 15
            await executor.replenish()
            assert not warm & containers_of(api_client, executor)
        finally:
            await executor.close()

    asyncio.run(scenario())


def test_cancel_a_warm_started_run(api_client: Any, table: TableFile) -> None:
    async def scenario() -> None:
        executor = DockerExecutor(pool_settings=PoolSettings(size_per_key=1))
        try:
            request = make_request("SELECT sleep_ms(120000)", (table,), timeout=60.0)
            key = await warm_up(executor, request)
            warm = containers_of(api_client, executor)
            started = asyncio.Event()
            task = asyncio.create_task(executor.execute(request, started.set))
            await asyncio.wait_for(started.wait(), 30)
            assert executor.pool.count(key) == 0
            assert await executor.cancel(request.run_id) is True
            outcome = await asyncio.wait_for(task, 30)
            assert outcome.result.error.code == run_pb2.ERROR_CODE_CANCELLED and outcome.wall_seconds < 20
            await executor.replenish()
            assert not warm & containers_of(api_client, executor)
        finally:
            await executor.close()

    asyncio.run(scenario())


def test_close_kills_warm_containers(api_client: Any, table: TableFile, tmp_path: Path) -> None:
    other_file = tmp_path / "other.csv"
    other_file.write_text(CSV)

    async def scenario() -> DockerExecutor:
        executor = DockerExecutor(pool_settings=PoolSettings(size_per_key=2))
        await warm_up(executor, make_request("SELECT 1", (table,)))
        await warm_up(executor, make_request("SELECT 1", (TableFile("orders", str(other_file)),)))
        assert executor.pool.count() == 4 and len(containers_of(api_client, executor)) == 4
        await executor.close()
        return executor

    executor = asyncio.run(scenario())
    assert containers_of(api_client, executor) == set()


# --- end to end: the whole stack with executor=docker --------------------------------------------

@pytest.fixture(scope="module")
def docker_stack(api_client: Any, datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[RunningStack]:
    running = start_stack(datasets_dir, tmp_path_factory.mktemp("docker-capsules") / "capsules.sqlite3",
                          runner_overrides={"executor": "docker", "max_queue": 64})
    yield running
    stop_stack(running)
    assert api_client.containers(all=True, filters={"label": f"{LABEL_OWNER}={owner_label()}"}) == []


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
            if run.state != run_pb2.RUN_STATE_SUCCEEDED or run.result.row_count == 0 or run.runner_mode != "docker":
                failures.append((prompt, run_pb2.RunState.Name(run.state), run.runner_mode, run.error.message))
    return failures


@pytest.mark.parametrize("dataset_id", ["ecommerce", "support", "sensors"])
def test_every_registry_prompt_succeeds_with_docker(docker_stack: RunningStack, dataset_id: str) -> None:
    assert ask_all(docker_stack.analyst_target, dataset_id) == []


def test_materialised_datasets_are_built_and_read_in_containers(docker_stack: RunningStack) -> None:
    """The prompts above started materialisations (in containers, writing to the one writable
    bind); once built, runs attach the DuckDB file read-only instead of the CSVs."""
    materializer = docker_stack.stack.runner.materializer
    assert materializer is not None
    docker_stack.loop.run(materializer.wait_idle())
    built = list((docker_stack.capsule_db.parent / "materialized").glob("*.duckdb"))
    assert len(built) >= 3, built
    assert ask_all(docker_stack.analyst_target, "ecommerce", ["How many orders are there per status?"]) == []


def test_embedded_cli_ask_with_docker(api_client: Any, datasets_dir: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [CLI, "ask", "--executor", "docker", "--datasets-dir", str(datasets_dir),
         "--capsule-db", str(tmp_path / "capsules.sqlite3"), "--cache-dir", str(tmp_path / "materialized"),
         "--dataset", "ecommerce", "--json", "How many orders are there per status?"],
        capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "SUCCEEDED" and answer["rows"] and answer["run_id"]
    capsule = subprocess.run([CLI, "capsule", answer["run_id"], "--capsule-db", str(tmp_path / "capsules.sqlite3")],
                             capture_output=True, text=True, timeout=60, check=False)
    assert json.loads(capsule.stdout)["run"]["runnerMode"] == "docker"
