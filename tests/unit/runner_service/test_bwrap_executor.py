"""The real BwrapExecutor and real bubblewrap sandboxes, checked from inside.

Isolation probes run arbitrary Python inside a sandbox built by build_bwrap_argv (its trailing
`-m runner` replaced by `-c <probe>`); the DuckDB checks go through BwrapExecutor.execute.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import duration_pb2

from csv_analyst.v1 import run_pb2
from runner_service.executors import bwrap as bwrap_module
from runner_service.executors.base import SandboxOutcome, SandboxRequest, TableFile
from runner_service.executors.bwrap import SANDBOX_UID, BwrapExecutor, BwrapRuntime, build_bwrap_argv
from runner_service.executors.cgroups import RunCgroup
from runner_service.executors.sandbox_user import default_sandbox_user, ensure_sandbox_user
from tests.conftest import require_bwrap

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(120)]

CSV = "order_id,status,total\n1,completed,10.5\n2,pending,20\n3,completed,\n"


@pytest.fixture(autouse=True)
def _bwrap_present() -> None:
    require_bwrap()


@pytest.fixture
def table(tmp_path: Path) -> TableFile:
    path = tmp_path / "orders.csv"
    path.write_text(CSV)
    return TableFile("orders", str(path))


# Every run cgroup created by this module's executors (they are named `s{uuid}`, not after the
# run id, so they are recorded where they are made).
CREATED_CGROUPS: list[RunCgroup] = []


class _RecordedCgroup(RunCgroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        CREATED_CGROUPS.append(self)


@pytest.fixture(autouse=True)
def _record_cgroups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bwrap_module, "RunCgroup", _RecordedCgroup)


def existing_cgroups() -> list[Path]:
    """Directories of this module's run cgroups that still exist."""
    return [group for cgroup in CREATED_CGROUPS for group in (cgroup.memory, cgroup.pids) if group.exists()]


def make_request(sql: str, tables: tuple[TableFile, ...], timeout: float = 20.0, memory_bytes: int = 256 << 20,
                 max_rows: int = 100) -> SandboxRequest:
    seconds = int(timeout)
    run_id = f"test-{uuid.uuid4().hex[:12]}"
    return SandboxRequest(
        run_id=run_id, sql=sql, tables=tables,
        limits=run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=seconds, nanos=int((timeout - seconds) * 1e9)),
                                      memory_bytes=memory_bytes, max_rows=max_rows, threads=1, max_processes=32,
                                      max_output_bytes=64 * 1024),
    )


@pytest.fixture
def executor() -> Iterator[BwrapExecutor]:
    ex = BwrapExecutor()
    yield ex
    asyncio.run(ex.close())
    # Never leave this module's cgroups behind, even when a test failed (or removal is broken).
    leftovers = existing_cgroups()
    CREATED_CGROUPS.clear()
    deadline = time.monotonic() + 5
    while leftovers and time.monotonic() < deadline:
        for path in list(leftovers):
            try:
                path.rmdir()
            except FileNotFoundError:
                leftovers.remove(path)
            except OSError:
                continue  # EBUSY: a sandbox process is still exiting
            else:
                leftovers.remove(path)
        if leftovers:
            time.sleep(0.1)


def execute(executor: BwrapExecutor, request: SandboxRequest) -> SandboxOutcome:
    started: list[bool] = []
    outcome = asyncio.run(executor.execute(request, lambda: started.append(True)))
    assert started == [True], "on_started must be called exactly once"
    return outcome


def probe_argv(request: SandboxRequest, code: str) -> list[str]:
    """The sandbox of `request`, running `python -c code` instead of the runner."""
    argv = build_bwrap_argv(BwrapRuntime.discover(), request, user=default_sandbox_user())
    assert argv[-2:] == ["-m", "runner"]
    return [*argv[:-2], "-c", code]


def probe(request: SandboxRequest, code: str) -> dict[str, object]:
    completed = subprocess.run(probe_argv(request, code), capture_output=True, timeout=60, check=False,
                               env={"PATH": "/usr/bin:/bin", "HOST_SECRET": "leaked-if-visible"})
    assert completed.returncode == 0, completed.stderr.decode()
    result: dict[str, object] = json.loads(completed.stdout)
    return result


# --- isolation, observed from inside -------------------------------------------------------------

ISOLATION_PROBE = r"""
import json, os, socket
out = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "env": dict(os.environ),
       "hostname": socket.gethostname(), "cwd": os.getcwd()}
out["interfaces"] = sorted(name for _, name in socket.if_nameindex())
def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return type(e).__name__
def connect_host():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=3); s.close()
def connect_world():
    s = socket.create_connection(("1.1.1.1", 53), timeout=3); s.close()
out["connect_host_loopback"] = attempt(connect_host)
out["connect_internet"] = attempt(connect_world)
out["dns"] = attempt(lambda: socket.getaddrinfo("example.com", 80))
out["etc_passwd"] = attempt(lambda: open("/etc/passwd").read())
out["host_tmp_file"] = os.path.exists(HOST_FILE)
out["write_data"] = attempt(lambda: open("/data/t0.csv", "a").write("x"))
out["write_usr"] = attempt(lambda: open("/usr/evil", "w").write("x"))
out["write_root"] = attempt(lambda: open("/evil", "w").write("x"))
out["write_tmp"] = attempt(lambda: open("/tmp/scratch", "w").write("x"))
out["read_data"] = open("/data/t0.csv").read()
out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps(out))
"""


def expected_ids() -> tuple[int, int]:
    """The sandbox's uid and gid as it sees them: the host's sandbox user when the tests run as root
    (no user namespace then), else 65534 inside an unprivileged user namespace."""
    if os.geteuid() == 0:
        user = ensure_sandbox_user()
        return user.uid, user.gid
    return SANDBOX_UID, SANDBOX_UID


def test_isolation_from_inside(table: TableFile, tmp_path: Path) -> None:
    host_file = tmp_path / "host-only.txt"
    host_file.write_text("host")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = ISOLATION_PROBE.replace("PORT", str(port)).replace("HOST_FILE", repr(str(host_file)))
        out = probe(make_request("SELECT 1", (table,)), code)
    uid, gid = expected_ids()
    assert (out["uid"], out["euid"], out["gid"]) == (uid, uid, gid)
    assert out["uid"] != 0
    # No network: only a loopback device of its own, nothing reachable on the host or outside.
    assert out["interfaces"] == ["lo"]
    assert out["connect_host_loopback"] != "ok"
    assert out["connect_internet"] != "ok"
    assert out["dns"] != "ok"
    # Filesystem: no /etc, no host /tmp, read-only everywhere but a private /tmp.
    assert out["etc_passwd"] == "FileNotFoundError"
    assert out["host_tmp_file"] is False
    assert out["read_data"] == CSV
    assert out["write_data"] in {"OSError", "PermissionError"}
    assert out["write_usr"] in {"OSError", "PermissionError"}
    assert out["write_root"] in {"OSError", "PermissionError"}
    assert out["write_tmp"] == "ok"
    # Cleared environment: only what build_bwrap_argv sets.
    env = out["env"]
    assert isinstance(env, dict)
    assert "HOST_SECRET" not in env and "PATH" not in env
    assert set(env) <= {"PYTHONPATH", "HOME", "LANG", "TZ", "PWD", "LC_CTYPE"}
    assert out["hostname"] == "sandbox"
    assert out["cwd"] == "/tmp"
    # Own pid namespace: the host's processes are invisible.
    pids = out["pids"]
    assert isinstance(pids, list) and 1 <= len(pids) <= 3 and max(pids) <= 10, pids


EXECUTOR_PROBE = r"""
import json, os, socket, sys
def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        import errno
        return errno.errorcode.get(e.errno or 0, type(e).__name__)
def inet():
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
def inet6():
    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
def unshare():
    import ctypes, errno
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
        raise OSError(ctypes.get_errno(), errno.errorcode[ctypes.get_errno()])
out = {"uid": os.getuid(), "inet": attempt(inet), "inet6": attempt(inet6), "unshare": attempt(unshare),
       "etc_passwd": attempt(lambda: open("/etc/passwd").read()), "unix": attempt(lambda: socket.socket(socket.AF_UNIX).close()), "env": sorted(os.environ)}
import resource
out["rlimit_as"] = resource.getrlimit(resource.RLIMIT_AS)[0]
out["rlimit_cpu"] = resource.getrlimit(resource.RLIMIT_CPU)[0]
sys.stderr.write("PROBE" + json.dumps(out) + "\n"); sys.stderr.flush()
os._exit(3)
"""


def run_code(executor: BwrapExecutor, monkeypatch: pytest.MonkeyPatch, request: SandboxRequest, code: str
             ) -> SandboxOutcome:
    """Run `python -c code` through BwrapExecutor.execute (limit prologue, cgroups and seccomp included)."""
    original = bwrap_module.build_bwrap_argv
    monkeypatch.setattr(bwrap_module, "build_bwrap_argv", lambda *args: [*original(*args)[:-2], "-c", code])
    return execute(executor, request)


def test_isolation_through_the_executor(executor: BwrapExecutor, table: TableFile,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = run_code(executor, monkeypatch, make_request("SELECT 1", (table,), timeout=7.0), EXECUTOR_PROBE)
    assert outcome.exit_code == 3 and "PROBE" in outcome.stderr, outcome.stderr
    out = json.loads(outcome.stderr.split("PROBE", 1)[1].splitlines()[0])
    assert out["uid"] == expected_ids()[0]
    assert out["etc_passwd"] == "ENOENT"
    assert out["unshare"] != "ok"
    assert out["unix"] == "ok"
    assert out["rlimit_cpu"] == 9  # timeout + 2 s
    assert out["rlimit_as"] == max(1 << 30, (256 << 20) * 4) * (2 if executor.use_cgroups else 1)
    assert set(out["env"]) <= {"PYTHONPATH", "HOME", "LANG", "TZ", "PWD", "LC_CTYPE"}
    if executor.use_seccomp:
        # Non-unix sockets are refused by the filter itself (not merely unroutable).
        assert (out["inet"], out["inet6"], out["unshare"]) == ("EAFNOSUPPORT", "EAFNOSUPPORT", "EPERM"), out
    # A failed run that is not a limit is reported as a runner fault, with the stderr tail.
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR


# --- DuckDB inside the sandbox ------------------------------------------------------------------

def test_query_runs_in_the_sandbox(executor: BwrapExecutor, table: TableFile) -> None:
    outcome = execute(executor, make_request("SELECT status, COUNT(*) AS n FROM orders GROUP BY 1 ORDER BY 1", (table,)))
    assert outcome.exit_code == 0, outcome.stderr
    assert not outcome.result.HasField("error"), outcome.result.error
    rows = [[v.string_value or v.int_value for v in r.values] for r in outcome.result.result.rows]
    assert rows == [["completed", 2], ["pending", 1]]
    assert outcome.wall_seconds > 0
    assert executor.name == "bwrap"


def test_several_tables_map_to_their_own_files(executor: BwrapExecutor, table: TableFile, tmp_path: Path) -> None:
    other = tmp_path / "kv.csv"
    other.write_text("k,v\n1,a\n")
    outcome = execute(executor, make_request(
        "SELECT o.status, kv.v FROM orders o JOIN kv ON kv.k = o.order_id", (table, TableFile("kv", str(other)))))
    assert [[v.string_value for v in r.values] for r in outcome.result.result.rows] == [["completed", "a"]]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/proc/self/environ')",
    "SELECT * FROM read_csv('/app/runner/engine.py')",
    "SELECT * FROM read_csv('https://example.com/x.csv')",
    "SET enable_external_access = true",
    "COPY (SELECT 1) TO '/tmp/x.csv'",
    "INSTALL httpfs",
])
def test_duckdb_in_the_sandbox_cannot_escape(executor: BwrapExecutor, table: TableFile, sql: str) -> None:
    outcome = execute(executor, make_request(sql, (table,)))
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.result.error.code == run_pb2.ERROR_CODE_QUERY_ERROR, outcome.result
    assert "root:" not in str(outcome.result) and "import" not in outcome.result.error.message


def test_timeout_kills_the_sandbox(executor: BwrapExecutor, table: TableFile) -> None:
    outcome = execute(executor, make_request("SELECT COUNT(*) FROM range(100000000000) a, range(10) b", (table,),
                                             timeout=1.0))
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT
    assert outcome.result.error.reason == "RUNNER_TIMEOUT"
    assert outcome.result.error.status_code == 4
    assert outcome.wall_seconds < 15


def _sandboxes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_timeout_kills_a_runner_that_ignores_duckdb_limits(
        executor: BwrapExecutor, table: TableFile, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wall-clock kill does not rely on DuckDB: a sandbox that just sleeps is killed too."""
    marker = f"marker-{uuid.uuid4().hex}"
    code = f"import time; time.sleep(120)  # {marker}"
    outcome = run_code(executor, monkeypatch, make_request("SELECT 1", (table,), timeout=1.0), code)
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT
    assert "killed" in outcome.result.error.message
    assert outcome.exit_code is not None and outcome.exit_code < 0
    assert _sandboxes_with(marker) == []


def test_duckdb_memory_bomb(executor: BwrapExecutor, table: TableFile) -> None:
    outcome = execute(executor, make_request("SELECT repeat('x', 2000000000)", (table,), memory_bytes=128 << 20))
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, outcome.result
    assert outcome.result.error.status_code == 8


def test_python_memory_bomb_hits_the_os_cap(
        executor: BwrapExecutor, table: TableFile, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond DuckDB's own limit, the OS caps (RLIMIT_AS / cgroup) stop a process that allocates."""
    code = "b = bytearray(8 * 1024 ** 3); print('allocated')"
    outcome = run_code(executor, monkeypatch, make_request("SELECT 1", (table,), memory_bytes=128 << 20), code)
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, (outcome.result, outcome.stderr)
    assert "allocated" not in outcome.stdout


def test_process_limit(executor: BwrapExecutor, table: TableFile, monkeypatch: pytest.MonkeyPatch) -> None:
    if not executor.use_cgroups:
        pytest.skip("the process cap comes from the pids cgroup, which is not writable here")
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
        "sys.stderr.write(f'forks={n}\\n'); sys.stderr.flush(); os._exit(3)\n"
    )
    outcome = run_code(executor, monkeypatch, make_request("SELECT 1", (table,), timeout=20.0), code)
    forks = int(outcome.stderr.split("forks=")[1].split()[0])
    assert forks < 32  # max_processes=32, and the shell, bwrap and python count too


def test_cancel(executor: BwrapExecutor, table: TableFile) -> None:
    request = make_request("SELECT COUNT(*) FROM range(100000000000) a, range(10) b", (table,), timeout=30.0)

    async def scenario() -> tuple[SandboxOutcome, bool, bool]:
        started = asyncio.Event()
        task = asyncio.create_task(executor.execute(request, started.set))
        await asyncio.wait_for(started.wait(), 30)
        await asyncio.sleep(0.3)  # let the runner get into the query
        cancelled = await executor.cancel(request.run_id)
        outcome = await asyncio.wait_for(task, 30)
        again = await executor.cancel(request.run_id)
        return outcome, cancelled, again

    outcome, cancelled, again = asyncio.run(scenario())
    assert cancelled is True
    assert again is False  # the run is over
    assert outcome.result.error.code == run_pb2.ERROR_CODE_CANCELLED
    assert outcome.wall_seconds < 20


def test_cancel_unknown_run(executor: BwrapExecutor) -> None:
    assert asyncio.run(executor.cancel("no-such-run")) is False


def test_failed_runner_is_an_internal_error(
        executor: BwrapExecutor, table: TableFile, monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = run_code(executor, monkeypatch, make_request("SELECT 1", (table,)),
                       "import sys; sys.stderr.write('boom happened\\n'); sys.exit(5)")
    assert outcome.exit_code == 5
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR
    # The sandbox's words stay out of the client-facing message; operators read them in stderr.
    assert "boom happened" not in outcome.result.error.message
    assert "exit code 5" in outcome.result.error.message
    assert "boom happened" in outcome.stderr


def test_cgroups_are_removed_after_each_run(executor: BwrapExecutor, table: TableFile) -> None:
    if not executor.use_cgroups:
        pytest.skip("cgroups are not writable here")
    for _ in range(8):
        # asyncio.run returns once the run's clean-up threads have finished.
        outcome = execute(executor, make_request("SELECT 1", (table,)))
        assert not outcome.result.HasField("error"), outcome.result.error
    assert len(CREATED_CGROUPS) >= 8, "every run must get its own cgroup"
    assert existing_cgroups() == []


def test_a_sandbox_writing_past_the_stdout_cap_is_killed_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bwrap_module, "MAX_STDOUT_BYTES", 1 << 20)
    # A stand-in for a runner gone wrong: it writes without end and never exits by itself.
    process = subprocess.Popen(["python3", "-c", "import sys\nwhile True: sys.stdout.buffer.write(b'x' * 65536)"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    exchange = asyncio.run(bwrap_module._exchange(process, None, b"", 20.0))
    assert exchange.overflow and exchange.answer is None and not exchange.timed_out
    assert len(exchange.stdout) <= 1 << 20
    assert process.wait(5) == -9
    for stream in (process.stdout, process.stderr):
        assert stream is not None
        stream.close()


def test_a_sandbox_writing_past_the_cap_on_stderr_is_killed_and_reported(
        executor: BwrapExecutor, table: TableFile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bwrap_module, "MAX_STDOUT_BYTES", 1 << 20)
    outcome = run_code(executor, monkeypatch, make_request("SELECT 1", (table,), timeout=20.0),
                       "import sys\nwhile True: sys.stderr.buffer.write(b'e' * 65536)")
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, outcome.result.error
    assert "output" in outcome.result.error.message
    assert len(outcome.stderr) < 200 << 10  # what reaches the service stays capped


def test_a_run_cancelled_while_its_sandbox_starts_leaves_no_sandbox(executor: BwrapExecutor, table: TableFile) -> None:
    async def scenario() -> None:
        run = asyncio.ensure_future(executor.execute(make_request("SELECT 1", (table,)), lambda: None))
        await asyncio.sleep(0)  # the cold start is under way
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (executor.live_sandboxes() or not executor._spawned):  # noqa: SLF001
            await asyncio.sleep(0.05)
        assert executor._spawned, "the sandbox had started"  # noqa: SLF001
        assert executor.live_sandboxes() == []
        await executor.close()

    asyncio.run(scenario())
