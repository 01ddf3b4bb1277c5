"""The pure parts of the Docker executor: the container spec, the stream demuxer, the outcome
interpretation, the reaping decision and the image content tag (no engine needed)."""

from __future__ import annotations

import io
import os
import struct
import time
from pathlib import Path

from google.protobuf import duration_pb2

from csv_analyst.v1 import run_pb2
from csv_analyst.runner.v1 import sandbox_pb2
from runner_service.executors.base import MAX_STDOUT_BYTES, SandboxRequest, TableFile
from runner_service.executors.docker import (
    LABEL_EXECUTOR,
    LABEL_OWNER,
    LABEL_REAP_AFTER,
    LABEL_RUN_ID,
    REAP_GRACE,
    ContainerExit,
    StreamDemuxer,
    build_container_spec,
    interpret_exit,
    owner_is_alive,
    owner_label,
    reap_after,
    runner_image_files,
    runner_image_tag,
    setup_frame,
    should_reap,
)
from runner.messages import read_frame

TABLES = (TableFile("orders", "/srv/datasets/ecommerce/orders.csv"),
          TableFile("order_items", "/srv/data sets/it's: here/order_items.csv"))


def make_request(tables: tuple[TableFile, ...] = TABLES, memory_bytes: int = 256 << 20, timeout_s: int = 10,
                 max_processes: int = 32) -> SandboxRequest:
    return SandboxRequest(
        run_id="run-1", sql="SELECT 1", tables=tables,
        limits=run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=timeout_s), memory_bytes=memory_bytes,
                                      max_rows=10, threads=1, max_processes=max_processes, max_output_bytes=1000),
    )


def test_isolation_settings() -> None:
    spec = build_container_spec("runner:abc", make_request(), {LABEL_OWNER: "h/1/2"}, cpus=1.5)
    create, host = spec.create, spec.host
    assert create["image"] == "runner:abc" and "entrypoint" not in create and "command" not in create
    assert create["user"] == "65534:65534"
    assert create["network_disabled"] is True and host["network_mode"] == "none"
    assert host["read_only"] is True
    assert host["cap_drop"] == ["ALL"] and "cap_add" not in host and "privileged" not in host
    assert host["security_opt"] == ["no-new-privileges"]
    assert host["pids_limit"] == 32
    assert host["nano_cpus"] == 1_500_000_000
    assert host["ipc_mode"] == "private"
    assert host["log_config"]["Type"] == "none"
    # stdin carries the task; no tty, so stdout and stderr arrive multiplexed.
    assert create["stdin_open"] is True and create["tty"] is False


def test_memory_cap_has_no_swap_and_tmp_is_capped() -> None:
    host = build_container_spec("img", make_request(memory_bytes=300 << 20), {}).host
    assert host["mem_limit"] == host["memswap_limit"] == 600 << 20
    assert host["mem_swappiness"] == 0
    options = host["tmpfs"]["/tmp"].split(",")
    assert f"size={300 << 20}" in options and {"noexec", "nosuid", "nodev"} <= set(options)
    assert list(host["tmpfs"]) == ["/tmp"]
    # Tiny requests still get room for Python itself.
    small = build_container_spec("img", make_request(memory_bytes=1 << 20), {}).host
    assert small["mem_limit"] == small["memswap_limit"] == 128 << 20


def test_each_table_is_a_read_only_bind_at_an_index_path() -> None:
    mounts = build_container_spec("img", make_request(), {}).host["mounts"]
    assert mounts == [
        {"Type": "bind", "Source": "/srv/datasets/ecommerce/orders.csv", "Target": "/data/t0.csv", "ReadOnly": True},
        {"Type": "bind", "Source": "/srv/data sets/it's: here/order_items.csv", "Target": "/data/t1.csv",
         "ReadOnly": True},
    ]
    assert build_container_spec("img", make_request(tables=()), {}).host["mounts"] == []


def test_environment_is_complete_and_holds_nothing_from_the_service() -> None:
    os.environ["CSV_ANALYST_SECRET_FOR_TEST"] = "x"
    try:
        env = build_container_spec("img", make_request(), {}).create["environment"]
    finally:
        del os.environ["CSV_ANALYST_SECRET_FOR_TEST"]
    assert env == {"HOME": "/tmp", "LANG": "C.UTF-8", "TZ": "UTC", "PYTHONPATH": "/app", "PYTHONDONTWRITEBYTECODE": "1"}


def test_labels_and_probe_command() -> None:
    spec = build_container_spec("img", make_request(), {LABEL_OWNER: "h/1/2"}, command=["/bin/true"])
    assert spec.create["labels"] == {LABEL_OWNER: "h/1/2", LABEL_EXECUTOR: "docker", LABEL_RUN_ID: "run-1"}
    assert spec.create["entrypoint"] == ["/bin/true"]


def test_default_pids_limit() -> None:
    assert build_container_spec("img", make_request(max_processes=0), {}).host["pids_limit"] == 64


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(payload)) + payload


def test_demuxer_splits_frames_across_reads_and_caps() -> None:
    data = frame(1, b"hello ") + frame(2, b"warn") + frame(1, b"world") + frame(2, b"x" * 10)
    demuxer = StreamDemuxer(stdout_cap=100, stderr_cap=8)
    for i in range(0, len(data), 3):
        demuxer.feed(data[i:i + 3])
    assert bytes(demuxer.stdout) == b"hello world"
    assert bytes(demuxer.stderr) == b"warnxxxx" and demuxer.stderr_dropped == 6
    assert not demuxer.stdout_overflow
    small = StreamDemuxer(stdout_cap=4, stderr_cap=8)
    small.feed(frame(1, b"12345"))
    assert small.stdout_overflow and bytes(small.stdout) == b""
    # Stderr past the same total cap ends the run too (it is kept only up to stderr_cap).
    noisy = StreamDemuxer(stdout_cap=16, stderr_cap=8)
    noisy.feed(frame(2, b"e" * 16))
    assert not noisy.stdout_overflow
    noisy.feed(frame(2, b"e"))
    assert noisy.stdout_overflow and bytes(noisy.stderr) == b"e" * 8


def done(**fields: object) -> ContainerExit:
    values: dict[str, object] = {"stdout": b"", "stderr": b"", "exit_code": 0, "oom_killed": False,
                                 "timed_out": False, "wall_seconds": 0.3}
    values.update(fields)
    return ContainerExit(**values)  # type: ignore[arg-type]


def test_interpret_success_and_failures() -> None:
    request = make_request()
    result = sandbox_pb2.SandboxResult(rows_produced=3)
    ok = interpret_exit(request, done(stdout=result.SerializeToString()), cancelled=False)
    assert not ok.result.HasField("error") and ok.result.rows_produced == 3 and ok.exit_code == 0

    def code(outcome_done: ContainerExit, cancelled: bool = False) -> str:
        return interpret_exit(request, outcome_done, cancelled).result.error.reason

    assert code(done(exit_code=137, timed_out=True), cancelled=True) == "CANCELLED"
    assert code(done(exit_code=137, timed_out=True)) == "RUNNER_TIMEOUT"
    assert code(done(exit_code=137, oom_killed=True)) == "RUNNER_RESOURCE_EXCEEDED"
    assert code(done(exit_code=1, stderr=b"MemoryError")) == "RUNNER_RESOURCE_EXCEEDED"
    assert code(done(stdout=b"\xff\xff not a message")) == "RUNNER_INTERNAL_ERROR"
    assert code(done(stdout_overflow=True)) == "RUNNER_RESOURCE_EXCEEDED"
    crashed = interpret_exit(request, done(exit_code=2, stderr=b"Traceback\nboom: it broke\n"), False)
    assert crashed.result.error.reason == "RUNNER_INTERNAL_ERROR" and "exit code 2" in crashed.result.error.message
    assert "boom" not in crashed.result.error.message and "boom: it broke" in crashed.stderr
    timeout = interpret_exit(request, done(timed_out=True, exit_code=137), False).result.error
    assert timeout.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT and timeout.status_code == 4 and "10 s" in timeout.message
    assert MAX_STDOUT_BYTES >= 16 << 20


def test_stderr_is_capped_at_max_output_bytes() -> None:
    outcome = interpret_exit(make_request(), done(exit_code=1, stderr=b"e" * 5000), False)
    assert outcome.stderr.startswith("e" * 1000) and "[truncated 4000 bytes]" in outcome.stderr


def test_reaping_decision() -> None:
    now = time.time()
    me = owner_label("this-host")
    dead = "this-host/999999999/1"
    elsewhere = "other-host/1/1"

    def container(owner: str, age: float) -> dict[str, object]:
        return {"Id": "x", "Created": int(now - age), "Labels": {LABEL_OWNER: owner, LABEL_EXECUTOR: "docker"}}

    assert owner_is_alive(me) and not owner_is_alive(dead) and not owner_is_alive("garbage")
    assert not should_reap(container(me, 5), "this-host", now, 360, owner_is_alive)
    assert should_reap(container(dead, 5), "this-host", now, 360, owner_is_alive)
    assert not should_reap(container(elsewhere, 5), "this-host", now, 360, owner_is_alive)
    # Older than any run may last: a leak whoever owns it.
    assert should_reap(container(elsewhere, 400), "this-host", now, 360, owner_is_alive)
    assert should_reap(container(me, 400), "this-host", now, 360, owner_is_alive)
    # A reap-after label (the run's own limit + grace) wins over the age rule, both ways.
    long_run = {**container(elsewhere, 400), "Labels": {LABEL_OWNER: elsewhere, LABEL_REAP_AFTER: str(int(now + 60))}}
    assert not should_reap(long_run, "this-host", now, 360, owner_is_alive)
    past = {**container(elsewhere, 5), "Labels": {LABEL_OWNER: elsewhere, LABEL_REAP_AFTER: str(int(now - 1))}}
    assert should_reap(past, "this-host", now, 360, owner_is_alive)


def test_image_tag_covers_code_versions_and_recipe(tmp_path: Path) -> None:
    files = runner_image_files()
    inside = [name for _, name in files]
    assert {"runner/__main__.py", "runner/engine.py", "csv_analyst/runner/v1/sandbox_pb2.py"} <= set(inside)
    assert not any(name.endswith("_grpc.py") for name in inside)
    versions = {"duckdb": "2.0.1", "protobuf": "7.36.2"}
    tag = runner_image_tag(files, versions)
    assert len(tag) == 16 and tag == runner_image_tag(files, dict(reversed(versions.items())))
    assert tag != runner_image_tag(files, {**versions, "duckdb": "2.0.2"})
    assert tag != runner_image_tag(files, versions, recipe="other")
    changed = tmp_path / "engine.py"
    changed.write_bytes(files[0][0].read_bytes() + b"\n# changed\n")
    assert tag != runner_image_tag([(changed, files[0][1]), *files[1:]], versions)


def test_materialised_database_replaces_the_csv_binds() -> None:
    request = make_request()
    attached = SandboxRequest(request.run_id, request.sql, request.tables, request.limits,
                              database_path="/cache/abc.duckdb")
    assert build_container_spec("img", attached, {}).host["mounts"] == [
        {"Type": "bind", "Source": "/cache/abc.duckdb", "Target": "/data/dataset.duckdb", "ReadOnly": True}]


def test_materialisation_gets_one_writable_output_dir() -> None:
    request = make_request()
    build = SandboxRequest(request.run_id, "", request.tables, request.limits, output_dir="/cache/.build-1")
    mounts = build_container_spec("img", build, {}).host["mounts"]
    assert [m["Target"] for m in mounts] == ["/data/t0.csv", "/data/t1.csv", "/data/out"]
    assert [m["ReadOnly"] for m in mounts] == [True, True, False]
    assert build_container_spec("img", build, {}).host["read_only"] is True


def test_reap_after_covers_a_warm_containers_idle_wait() -> None:
    now = 1_000_000.0
    request = make_request(timeout_s=10)
    assert reap_after(now, request) == int(now + 10 + REAP_GRACE)
    warm = reap_after(now, request, idle_seconds=300)
    assert warm == int(now + 300 + 10 + REAP_GRACE)
    # Another host's executor, at start-up, while the warm container may still wait and then run:
    labelled = {"Id": "x", "Created": int(now), "Labels": {LABEL_OWNER: "other-host/1/1", LABEL_REAP_AFTER: str(warm)}}
    assert not should_reap(labelled, "this-host", now + 300 + 10, 60, lambda _: False)
    assert should_reap(labelled, "this-host", warm + 1, 60, lambda _: False)


def test_setup_frame_holds_mounts_and_limits_but_no_run() -> None:
    request = make_request()
    task = read_frame(io.BytesIO(setup_frame(request)))
    assert task.run_id == "" and task.sql == ""
    assert [(t.name, t.path) for t in task.tables] == [("orders", "/data/t0.csv"), ("order_items", "/data/t1.csv")]
    assert task.limits == request.limits and task.data_dir == "/data" and task.database_path == ""
    attached = SandboxRequest(request.run_id, request.sql, request.tables, request.limits,
                              database_path="/cache/abc.duckdb")
    assert read_frame(io.BytesIO(setup_frame(attached))).database_path == "/data/dataset.duckdb"
