"""Trust boundaries, tried as an attacker with network access to both ports would.

- The runner service serves only callers holding the service credential (health excepted).
- The runner mounts only files under its data roots; refusals do not say whether a path exists.
- Sandboxes run as a real unprivileged host user: a root-only file stays unreadable even when
  it is bound into the sandbox on purpose.
- The analyst takes server-side CSV paths only under its CSV roots; clients upload files instead.
- Duplicate run ids are refused; client-facing errors carry no internals.

Everything goes through the real gRPC services and real bubblewrap sandboxes.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from csv_analyst.v1 import analyst_service_pb2 as api, run_pb2
from csv_analyst.runner.v1 import runner_dispatch_service_pb2 as dispatch_pb2
from csv_analyst.runner.v1 import runner_dispatch_service_pb2_grpc, sandbox_pb2
from runner_service.executors.sandbox_user import DEFAULT_SANDBOX_USER
from tests.conftest import RunningStack, credential_channel, require
from tests.security.harness import _processes

SECRET_MARK = "TOPSECRET-3f9a1c"


def require_root() -> None:
    """The unprivileged-user layer exists only when the service runs as root (CI does)."""
    require(os.geteuid() == 0, "the sandbox-user tests need root (the service drops to a host user only as root)")


def _execute(stub: Any, run_id: str, sql: str, tables: list[tuple[str, str]]) -> list[dispatch_pb2.ExecuteResponse]:
    request = dispatch_pb2.ExecuteRequest(run_id=run_id, sql=sql,
                                          tables=[sandbox_pb2.TableSource(name=n, path=p) for n, p in tables])
    return list(stub.Execute(request, timeout=60))


# --- the service credential ---------------------------------------------------------------------

@pytest.mark.parametrize("presented", [None, "wrong-credential-wrong-credential-00",
                                       "Basic-scheme", "almost"], ids=["none", "wrong", "basic", "almost"])
def test_runner_refuses_every_rpc_without_the_credential(security_stack: RunningStack, presented: str | None) -> None:
    real = security_stack.stack.runner_credential
    if presented == "almost":  # the real one with its last character changed
        presented = real[:-1] + ("a" if real[-1] != "a" else "b")
    target = security_stack.runner_target
    if presented == "Basic-scheme":
        channel = grpc.insecure_channel(target)
        metadata = [("authorization", f"Basic {real}")]
    else:
        channel = credential_channel(target, presented) if presented else grpc.insecure_channel(target)
        metadata = []
    with channel:
        stub = runner_dispatch_service_pb2_grpc.RunnerServiceStub(channel)
        shadow = dispatch_pb2.ExecuteRequest(run_id="attacker-1", sql="SELECT * FROM t",
                                             tables=[sandbox_pb2.TableSource(name="t", path="/etc/shadow")])
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.Execute(shadow, metadata=metadata, timeout=30))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "shadow" not in (caught.value.details() or "")
        with pytest.raises(grpc.RpcError) as caught:
            stub.CancelRun(dispatch_pb2.CancelRunRequest(run_id="anything"), metadata=metadata, timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            list(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                 metadata=metadata, timeout=30))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Health stays open: probes and load balancers carry no credential.
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), metadata=metadata, timeout=30).status == \
            health_pb2.HealthCheckResponse.SERVING


def test_the_analyst_holding_the_credential_still_answers(analyst: Any) -> None:
    run = analyst.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", sql="SELECT count(*) AS n FROM orders"),
                            timeout=60).run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error


# --- data roots -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def escape_paths(security_stack: RunningStack) -> dict[str, str]:
    """Paths an attacker would try, some made inside a data root to point out of it."""
    root = security_stack.datasets_dir
    # Inside a data root (the red-team stack's `attacks` CSV root) but pointing out of it.
    link = root.parent / "attacks" / "innocent_looking.csv"
    link.parent.mkdir(exist_ok=True)
    if not link.exists():
        link.symlink_to("/etc/passwd")
    return {
        "shadow": "/etc/shadow",
        "passwd": "/etc/passwd",
        "proc_environ": "/proc/self/environ",
        "symlink_out_of_root": str(link),
        "dot_dot_out_of_root": str(root / "ecommerce" / ".." / ".." / ".." / ".." / ".." / "etc" / "passwd"),
        "missing_outside": "/etc/no-such-file.csv",
        "missing_inside": str(root / "ecommerce" / "no-such-file.csv"),
        "relative": "etc/passwd",
        "directory_in_root": str(root / "ecommerce"),
    }


def test_execute_refuses_every_path_outside_the_data_roots_alike(runner: Any, escape_paths: dict[str, str]) -> None:
    details = {}
    for name, path in escape_paths.items():
        with pytest.raises(grpc.RpcError) as caught:
            _execute(runner, f"escape-{name.replace('_', '-')}", "SELECT * FROM t", [("t", path)])
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, (name, caught.value.details())
        details[name] = caught.value.details()
        assert path not in details[name] and "passwd" not in details[name]
    # The same words whether the file exists or not: the refusal tells nothing about the host.
    assert len(set(details.values())) == 1, details


def test_a_file_in_a_data_root_is_served(runner: Any, security_stack: RunningStack) -> None:
    orders = str(security_stack.datasets_dir / "ecommerce" / "orders.csv")
    finished = _execute(runner, "inside-root", "SELECT count(*) AS n FROM t", [("t", orders)])[-1]
    assert finished.HasField("result"), finished.error


def test_csv_paths_outside_the_csv_roots_are_refused_alike(analyst: Any, security_root: Path) -> None:
    details = []
    for path in ("/etc/passwd", "/etc/no-such-file.csv", str(security_root / "datasets" / "ecommerce" / "orders.csv")):
        with pytest.raises(grpc.RpcError) as caught:
            analyst.SubmitRun(api.SubmitRunRequest(csv_paths=[path], sql="SELECT 1"), timeout=30)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert path not in caught.value.details()
        details.append(caught.value.details())
    assert len(set(details)) == 1


def test_csv_paths_inside_a_csv_root_work(analyst: Any, security_root: Path) -> None:
    (security_root / "attacks").mkdir(exist_ok=True)
    path = security_root / "attacks" / "allowed_here.csv"
    path.write_text("a,b\n1,x\n2,y\n3,z\n")
    run = analyst.SubmitRun(api.SubmitRunRequest(csv_paths=[str(path)], sql="SELECT count(*) AS n FROM allowed_here"),
                            timeout=60).run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error
    assert run.result.rows[0].values[0].int_value == 3


# --- the unprivileged sandbox user ----------------------------------------------------------------

def test_sandboxes_run_as_the_unprivileged_host_user(analyst: Any, security_root: Path) -> None:
    require_root()
    user = pwd.getpwnam(DEFAULT_SANDBOX_USER)
    assert user.pw_uid != 0 and user.pw_gid != 0
    analyst.SubmitRun(api.SubmitRunRequest(dataset_id="support", sql="SELECT count(*) FROM tickets"), timeout=60)
    # After a run the warm pool holds a sandbox waiting for its query: look at it from the host.
    deadline = time.monotonic() + 30
    statuses: list[str] = []
    while not statuses and time.monotonic() < deadline:
        table = _processes()
        for pid, (_, _, cmd) in table.items():
            program = Path(cmd.split(b"\0")[0].decode(errors="replace")).name
            if "python" in program and b"\0-m\0runner" in cmd and _inside_red_team_sandbox(pid, table, str(security_root)):
                try:
                    statuses.append(Path(f"/proc/{pid}/status").read_text())
                except OSError:
                    continue  # it exited (taken by a run) between the listing and the read
        time.sleep(0.1)
    assert statuses, "no waiting sandbox of the red-team stack was found"
    for status in statuses:
        ids = {line.split(":")[0]: line.split()[1:] for line in status.splitlines()
               if line.startswith(("Uid:", "Gid:", "Groups:"))}
        assert ids["Uid"] == [str(user.pw_uid)] * 4, status
        assert ids["Gid"] == [str(user.pw_gid)] * 4, status
        assert ids["Groups"] == [], status  # no supplementary groups
        assert "CapEff:\t0000000000000000" in status and "CapPrm:\t0000000000000000" in status


def _inside_red_team_sandbox(pid: int, table: dict[int, tuple[int, str, bytes]], marker: str) -> bool:
    for _ in range(16):
        pid = table.get(pid, (0, "", b""))[0]
        if pid in (0, 1):
            return False
        cmd = table.get(pid, (0, "", b""))[2]
        if cmd.split(b"\0")[0].endswith(b"bwrap") and marker.encode() in cmd:
            return True
    return False


def test_a_root_only_file_bound_on_purpose_stays_unreadable(runner: Any, security_stack: RunningStack) -> None:
    require_root()
    secret = security_stack.datasets_dir.parent / "attacks" / "root_only.csv"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text(f"secret\n{SECRET_MARK}\n")
    os.chown(secret, 0, 0)
    os.chmod(secret, 0o600)
    events = _execute(runner, "root-only-file", "SELECT * FROM t", [("t", str(secret))])
    finished = events[-1]
    assert finished.kind == dispatch_pb2.RUNNER_EVENT_KIND_FINISHED
    assert finished.HasField("error"), "a root-only file was read inside the sandbox"
    assert all(SECRET_MARK not in str(event) for event in events)
    # The same file made world-readable is served: the refusal above came from the host uid.
    os.chmod(secret, 0o644)
    readable = _execute(runner, "root-only-file-opened", "SELECT * FROM t", [("t", str(secret))])[-1]
    assert readable.HasField("result") and SECRET_MARK in str(readable.result), readable.error


# --- uploads ------------------------------------------------------------------------------------

def _upload(analyst: Any, files: list[tuple[str, bytes]], chunk: int = 5) -> api.UploadDatasetResponse:
    def messages() -> Any:
        for name, data in files:
            yield api.UploadDatasetRequest(file_name=name)
            for start in range(0, len(data), chunk):
                yield api.UploadDatasetRequest(chunk=data[start:start + chunk])
    return analyst.UploadDataset(messages(), timeout=60)


def test_an_upload_becomes_a_dataset_kept_privately(analyst: Any, security_root: Path) -> None:
    content = b"region,amount\nnorth,10\nsouth,5\nnorth,7\n"
    dataset = _upload(analyst, [("Sales 2024.csv", content)]).dataset
    assert dataset.dataset_id.startswith("upload-") and [t.name for t in dataset.tables] == ["sales_2024"]
    assert [c.name for c in dataset.tables[0].columns] == ["region", "amount"]
    assert dataset.tables[0].file == "Sales 2024.csv"  # no host path
    run = analyst.SubmitRun(api.SubmitRunRequest(
        dataset_id=dataset.dataset_id, sql="SELECT sum(amount) AS total FROM sales_2024 WHERE region = 'north'"),
        timeout=60).run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED and run.result.rows[0].values[0].int_value == 17, run.error
    # The same files again are the same dataset; it is listed with the others.
    assert _upload(analyst, [("Sales 2024.csv", content)], chunk=1000).dataset.dataset_id == dataset.dataset_id
    listed = analyst.ListDatasets(api.ListDatasetsRequest(page_size=500), timeout=30).datasets
    assert dataset.dataset_id in [d.dataset_id for d in listed]
    stored = list((security_root / "uploads-tight").glob("*/Sales 2024.csv"))
    assert len(stored) == 1 and stored[0].read_bytes() == content
    mode = stored[0].stat().st_mode & 0o777
    if os.geteuid() == 0:
        assert mode == 0o640 and stored[0].stat().st_gid == pwd.getpwnam(DEFAULT_SANDBOX_USER).pw_gid
    else:
        assert mode == 0o600
    assert (security_root / "uploads-tight").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("files,code", [
    ([("../escape.csv", b"a\n1\n")], grpc.StatusCode.INVALID_ARGUMENT),
    ([("/etc/cron.d/x.csv", b"a\n1\n")], grpc.StatusCode.INVALID_ARGUMENT),
    ([("empty.csv", b"")], grpc.StatusCode.INVALID_ARGUMENT),
    ([("a.csv", b"x\n1\n"), ("A.csv", b"y\n2\n")], grpc.StatusCode.INVALID_ARGUMENT),
    ([], grpc.StatusCode.INVALID_ARGUMENT),
], ids=["dot-dot", "absolute", "empty", "same-table", "no-file"])
def test_bad_uploads_get_typed_errors(analyst: Any, security_root: Path, files: list[tuple[str, bytes]],
                                      code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _upload(analyst, files)
    assert caught.value.code() == code, caught.value.details()
    assert not (security_root.parent / "escape.csv").exists()
    assert not list((security_root / "uploads-tight").glob(".incoming-*")), "a failed upload left files behind"


def test_bytes_before_a_file_name_are_refused(analyst: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        analyst.UploadDataset(iter([api.UploadDatasetRequest(chunk=b"a,b\n")]), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_cli_with_a_server_uploads_local_files(security_stack: RunningStack, tmp_path: Path) -> None:
    local = tmp_path / "local_only.csv"  # under no CSV root of the server
    local.write_text("k,v\na,1\nb,2\nc,3\nd,4\n")
    out = subprocess.run([sys.executable, "-m", "csv_analyst_app.cli", "sql", "--server", security_stack.analyst_target,
                          "--csv", str(local), "--json", "SELECT count(*) AS n FROM local_only"],
                         capture_output=True, text=True, timeout=120)
    answer = json.loads(out.stdout)
    assert answer["status"] == "SUCCEEDED", answer
    assert answer["rows"] == [[4]]


# --- small holes --------------------------------------------------------------------------------

def test_a_duplicate_run_id_is_refused_and_the_first_stays_cancellable(runner: Any, security_stack: RunningStack) -> None:
    orders = str(security_stack.datasets_dir / "ecommerce" / "orders.csv")
    slow_sql = "SELECT count(*) FROM range(100000000000) a"  # runs until its limit unless cancelled
    first: list[dispatch_pb2.ExecuteResponse] = []
    request = dispatch_pb2.ExecuteRequest(run_id="dup-run", sql=slow_sql,
                                          tables=[sandbox_pb2.TableSource(name="t", path=orders)])
    stream = runner.Execute(request, timeout=60)
    first.append(next(stream))  # QUEUED: the id is now held
    collector = threading.Thread(target=lambda: first.extend(stream), daemon=True)
    collector.start()
    with pytest.raises(grpc.RpcError) as caught:
        list(runner.Execute(request, timeout=30))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if runner.CancelRun(dispatch_pb2.CancelRunRequest(run_id="dup-run"), timeout=10).cancelled:
                break
        except grpc.RpcError as error:  # between queue and sandbox for a moment
            assert error.code() == grpc.StatusCode.NOT_FOUND
        time.sleep(0.05)
    collector.join(60)
    assert first[-1].kind == dispatch_pb2.RUNNER_EVENT_KIND_FINISHED
    assert first[-1].error.code == run_pb2.ERROR_CODE_CANCELLED, first[-1].error


def test_runner_failures_reach_clients_without_internals(datasets_dir: Path, tmp_path: Path) -> None:
    """An analyst whose runner is gone: the client hears that, not the runner's address or words."""
    from analyst_service.config import AnalystSettings
    from analyst_service.server import start_analyst_server
    from csv_analyst.v1 import analyst_service_pb2_grpc
    from tests.conftest import LoopThread

    loop = LoopThread()
    settings = AnalystSettings(port=0, datasets_dir=datasets_dir, capsule_db=tmp_path / "c.sqlite3",
                               upload_dir=tmp_path / "uploads", runner_target="127.0.0.1:9",
                               runner_credential="x" * 32, run_timeout_seconds=5.0)
    server = loop.run(start_analyst_server(settings))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
            run = stub.SubmitRun(api.SubmitRunRequest(dataset_id="sensors", sql="SELECT 1"), timeout=30).run
        assert run.state == run_pb2.RUN_STATE_FAILED and run.error.code == run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE
        assert "127.0.0.1" not in str(run) and ":9" not in run.error.message and not run.error.metadata
    finally:
        loop.run(server.stop(0.5))
        loop.close()
