"""Client API keys of the analyst service, through a real stack that requires them.

Without a valid key every RPC but health and reflection is UNAUTHENTICATED; a user key gets
runs and capsules without the sandbox's internal output; an operator key gets them whole. A
non-loopback bind without keys is refused, and the runner never follows `--host`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from analyst_service.auth import ApiKey, KeyRing, digest_of, key_file_line, load_key_file, new_key
from csv_analyst_app.cli import build_parser, settings_from
from analyst_service.config import AnalystSettings
from analyst_service.server import UnsafeBindError, check_bind
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, capsule_pb2, run_pb2
from tests.conftest import RunningStack, credential_channel, start_stack, stop_stack

USER_KEY = new_key()
OPERATOR_KEY = new_key()
INTERNAL = "Traceback (most recent call last): File /srv/secret/host/path.py"


@pytest.fixture(scope="module")
def keyed_stack(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    keys = KeyRing([ApiKey(digest_of(USER_KEY), "analyst-1"), ApiKey(digest_of(OPERATOR_KEY), "ops", "operator")])
    work = tmp_path_factory.mktemp("keyed")
    running = start_stack(datasets_dir, work / "capsules.sqlite3", api_keys=keys, upload_dir=work / "uploads")
    yield running
    stop_stack(running)


def _stub(stack: RunningStack, key: str | None) -> tuple[grpc.Channel, Any]:
    channel = credential_channel(stack.analyst_target, key) if key else grpc.insecure_channel(stack.analyst_target)
    return channel, analyst_service_pb2_grpc.AnalystServiceStub(channel)


@pytest.mark.parametrize("key", [None, "csva_not-a-key", "wrong"], ids=["none", "unknown", "malformed"])
def test_every_rpc_needs_a_valid_key(keyed_stack: RunningStack, key: str | None) -> None:
    channel, stub = _stub(keyed_stack, key)
    with channel:
        calls = [
            lambda: stub.ListDatasets(api.ListDatasetsRequest(), timeout=30),
            lambda: stub.GetDataset(api.GetDatasetRequest(name="ecommerce"), timeout=30),
            lambda: list(stub.Ask(api.AskRequest(dataset_id="ecommerce", question="how many orders?"), timeout=30)),
            lambda: stub.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", sql="SELECT 1"), timeout=30),
            lambda: stub.GetCapsule(api.GetCapsuleRequest(name="r1"), timeout=30),
            lambda: stub.ListCapsules(api.ListCapsulesRequest(), timeout=30),
            lambda: stub.GetRun(api.GetRunRequest(name="r1"), timeout=30),
            lambda: stub.StopRun(api.StopRunRequest(name="r1"), timeout=30),
            lambda: stub.UploadDataset(iter([api.UploadDatasetRequest(file_name="a.csv", chunk=b"a\n1\n")]), timeout=30),
            lambda: stub.DeleteDataset(api.DeleteDatasetRequest(name="upload-0000000000000000"), timeout=30),
            lambda: stub.ReadResult(api.ReadResultRequest(name="r1"), timeout=30),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as caught:
                call()
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "API key" in caught.value.details()
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=30).status == health_pb2.HealthCheckResponse.SERVING


def test_a_user_key_answers_and_sees_no_internal_detail(keyed_stack: RunningStack) -> None:
    channel, stub = _stub(keyed_stack, USER_KEY)
    with channel:
        run = stub.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", sql="SELECT count(*) AS n FROM orders"),
                             timeout=60).run
        assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error
        stored = _plant_internal_detail(keyed_stack, run.run_id)
        capsule = stub.GetCapsule(api.GetCapsuleRequest(name=stored.run.run_id), timeout=30).capsule
        assert INTERNAL not in str(capsule) and "notes about the data" in capsule.run.stats.stderr
        assert capsule.run.result == stored.run.result  # the answer itself is whole
        listed = stub.ListCapsules(api.ListCapsulesRequest(page_size=5), timeout=30).capsules
        assert INTERNAL not in str(listed)


def test_an_operator_key_sees_the_whole_record(keyed_stack: RunningStack) -> None:
    channel, stub = _stub(keyed_stack, OPERATOR_KEY)
    with channel:
        run = stub.SubmitRun(api.SubmitRunRequest(dataset_id="sensors", sql="SELECT 1 AS one"), timeout=60).run
        stored = _plant_internal_detail(keyed_stack, run.run_id)
        capsule = stub.GetCapsule(api.GetCapsuleRequest(name=stored.run.run_id), timeout=30).capsule
        assert INTERNAL in capsule.run.stats.stderr and INTERNAL in capsule.run.stats.stdout


def _plant_internal_detail(stack: RunningStack, run_id: str) -> capsule_pb2.Capsule:
    """Store a copy of a run's capsule, under a new run id, with the sandbox output an operator
    would want (as a crashed runner leaves); return it."""
    store = stack.stack.analyst.store
    capsule = store.get(run_id)
    assert capsule is not None
    planted_id = run_id[:-4] + "beef"
    capsule.name, capsule.run.run_id, capsule.run.name = f"capsules/{planted_id}", planted_id, f"runs/{planted_id}"
    for run in (capsule.run, *(e.run for e in capsule.events if e.HasField("run"))):
        run.stats.stdout = INTERNAL
        run.stats.stderr = f"runner: table 'orders': notes about the data\n{INTERNAL}\n"
    store.put(capsule)
    return capsule


def test_key_file_round_trip_and_bad_lines(tmp_path: Path) -> None:
    key = new_key()
    path = tmp_path / "keys"
    path.write_text("# comment\n\n" + key_file_line(key, "alice", "operator") + "\n")
    ring = KeyRing(load_key_file(path))
    assert ring.find(key) is not None and ring.find(key).role == "operator"  # type: ignore[union-attr]
    assert ring.find(key + "x") is None and ring.find("") is None
    assert key not in path.read_text()  # only the hash is stored
    path.write_text("sha256:1234 bob\n")
    with pytest.raises(ValueError, match="expected"):
        load_key_file(path)


def test_cli_keys_add_stores_a_hash_and_prints_the_key_once(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    out = subprocess.run([sys.executable, "-m", "csv_analyst_app.cli", "keys", "add", "--file", str(path),
                          "--name", "ci-bot"], capture_output=True, text=True, timeout=60, check=True)
    key = out.stdout.strip()
    assert key.startswith("csva_") and key not in path.read_text()
    assert (path.stat().st_mode & 0o777) == 0o600
    assert KeyRing(load_key_file(path)).find(key) is not None
    again = subprocess.run([sys.executable, "-m", "csv_analyst_app.cli", "keys", "add", "--file", str(path),
                            "--name", "ci-bot"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already has a key named" in again.stderr and again.stdout == ""
    assert len(load_key_file(path)) == 1


def test_a_public_bind_without_keys_is_refused() -> None:
    with pytest.raises(UnsafeBindError, match="--api-keys-file"):
        check_bind(AnalystSettings(host="0.0.0.0"))
    check_bind(AnalystSettings(host="127.0.0.1"))
    check_bind(AnalystSettings(host="::1"))
    check_bind(AnalystSettings(host="0.0.0.0", allow_unauthenticated=True))
    check_bind(AnalystSettings(host="0.0.0.0", api_keys=KeyRing([ApiKey(digest_of("k"), "k")])))


def test_serve_on_a_public_address_without_keys_exits_and_says_why(datasets_dir: Path, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "csv_analyst_app.cli", "serve", "--host", "0.0.0.0", "--no-ui",
                          "--datasets-dir", str(datasets_dir), "--capsule-db", str(tmp_path / "c.sqlite3")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "without client authentication" in out.stderr and "--allow-unauthenticated" in out.stderr


def test_the_runner_stays_on_loopback_whatever_host_says(datasets_dir: Path) -> None:
    options = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--datasets-dir", str(datasets_dir)])
    analyst, runner = settings_from(options, options.host, runner_host=options.runner_host)
    assert analyst.host == "0.0.0.0" and runner.host == "127.0.0.1"
