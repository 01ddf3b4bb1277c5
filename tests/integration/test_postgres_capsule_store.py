"""A real stack on the PostgreSQL capsule store: a question is answered and its capsule read back
through GetCapsule; a second analyst service on the same database (another replica) lists the run
and serves its capsule and its whole large result; `csv-analyst capsule/export --capsule-db URL`
in another process reads them too. Nothing is written beside either replica."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from tests.conftest import start_stack, stop_stack
from tests.postgres_server import postgres_server, postgres_url  # noqa: F401 - fixtures

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(300)]
CLI = str(Path(sys.executable).parent / "csv-analyst")
# 500 rows of ~4.2 KB: past the capsule's preview bound, so the whole result is stored apart.
BIG_SQL = "SELECT order_id, repeat('x', 4200) AS pad FROM orders ORDER BY order_id LIMIT 500"


def stub_for(target: str) -> tuple[grpc.Channel, Any]:
    channel = grpc.insecure_channel(target)
    return channel, analyst_service_pb2_grpc.AnalystServiceStub(channel)


def test_two_analyst_replicas_share_one_postgres_store(datasets_dir: Path, postgres_url: str,  # noqa: F811
                                                        tmp_path: Path) -> None:
    first = start_stack(datasets_dir, postgres_url, work_dir=tmp_path / "replica-1")
    try:
        channel, stub = stub_for(first.analyst_target)
        with channel:
            events = [r.event for r in stub.Ask(api.AskRequest(dataset_id="support",
                                                               question="How many tickets are there per priority?"),
                                                timeout=120)]
            asked = events[-1].run
            assert events[-1].stage == run_pb2.STAGE_DONE and asked.state == run_pb2.RUN_STATE_SUCCEEDED, asked.error
            capsule = stub.GetCapsule(api.GetCapsuleRequest(name=asked.run_id), timeout=30).capsule
            assert capsule.run.run_id == asked.run_id and capsule.run.result == asked.result
            assert capsule.run.question == "How many tickets are there per priority?"
            big = stub.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", sql=BIG_SQL), timeout=120).run
            assert big.state == run_pb2.RUN_STATE_SUCCEEDED, big.error
        second = start_stack(datasets_dir, postgres_url, work_dir=tmp_path / "replica-2")
        try:
            channel, other = stub_for(second.analyst_target)
            with channel:
                listed = other.ListRuns(api.ListRunsRequest(), timeout=30).runs
                assert [r.run_id for r in listed] == [big.run_id, asked.run_id]
                assert other.GetCapsule(api.GetCapsuleRequest(name=asked.run_id), timeout=30).capsule == capsule
                stored = other.GetCapsule(api.GetCapsuleRequest(name=big.run_id), timeout=30).capsule
                assert stored.HasField("full_result") and stored.full_result.row_count == big.result.row_count
                exported = b"".join(c.data for c in other.ExportResult(
                    api.ExportResultRequest(name=big.run_id, format=api.EXPORT_FORMAT_CSV), timeout=60))
                assert exported.count(b"\n") == big.result.row_count + 1  # header and every row
        finally:
            stop_stack(second)
    finally:
        stop_stack(first)
    shown = subprocess.run([CLI, "capsule", asked.run_id, "--json", "--capsule-db", postgres_url],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert asked.run_id in shown.stdout
    out = tmp_path / "big.csv"
    done = subprocess.run([CLI, "export", big.run_id, "--format", "csv", "--output", str(out),
                           "--capsule-db", postgres_url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == exported
    assert not [p for p in tmp_path.rglob("*.pb")]  # whole results live in the database, not in files


def test_an_unreachable_postgres_store_is_a_clear_cli_error() -> None:
    done = subprocess.run([CLI, "capsule", "r1", "--capsule-db", "postgresql://analyst:s3cret@127.0.0.1:1/capsules"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "cannot connect to the capsule store postgresql://analyst@127.0.0.1:1/capsules" in done.stderr
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr
