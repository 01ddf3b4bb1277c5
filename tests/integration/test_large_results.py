"""A result as large as the limits allow (the runner's 2 MB result cap): the capsule holds it
once (a bounded preview, every row in a content-addressed file), GetCapsule/ListCapsules stay
under the 4 MB message limit, and ExportResult / `csv-analyst export` / `csv-analyst capsule`
give it back whole."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import grpc
import pytest

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from tests.conftest import RunningStack

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(240)]
CLI = str(Path(sys.executable).parent / "csv-analyst")
MESSAGE_LIMIT = 4 << 20
# 500 rows (the stack's max_rows) of ~4.2 KB: the runner cuts it at its 2 MB result cap.
BIG_SQL = "SELECT order_id, repeat('x', 4200) AS pad FROM orders ORDER BY order_id LIMIT 500"


@pytest.fixture(scope="module")
def stub(local_stack: RunningStack) -> Any:
    with grpc.insecure_channel(local_stack.analyst_target) as channel:
        yield analyst_service_pb2_grpc.AnalystServiceStub(channel)


@pytest.fixture(scope="module")
def big_runs(stub: Any) -> list[run_pb2.Run]:
    runs = []
    for _ in range(3):
        run = stub.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", sql=BIG_SQL), timeout=60).run
        assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error
        runs.append(run)
    return runs


def export(stub: Any, run_id: str, export_format: int) -> tuple[bytes, list[api.ExportResultResponse]]:
    chunks = list(stub.ExportResult(api.ExportResultRequest(name=run_id, format=export_format), timeout=60))
    return b"".join(c.data for c in chunks), chunks


def test_the_capsule_holds_the_result_once_and_fits_a_message(stub: Any, big_runs: list[run_pb2.Run]) -> None:
    run = big_runs[0]
    assert run.result.ByteSize() > 1_900_000 and run.result.truncated  # as large as the cap allows
    capsule = stub.GetCapsule(api.GetCapsuleRequest(name=run.run_id), timeout=30).capsule
    assert capsule.ByteSize() < 1 << 20
    assert capsule.HasField("full_result")
    assert capsule.full_result.row_count == run.result.row_count
    assert 0 < capsule.full_result.preview_row_count == capsule.run.result.row_count < run.result.row_count
    assert capsule.run.result.truncated and capsule.run.result.columns == run.result.columns
    assert list(capsule.run.result.rows) == list(run.result.rows[:capsule.run.result.row_count])
    # Rows appear once: in the preview, and in no event.
    assert all(not e.HasField("result") and not e.run.result.rows for e in capsule.events)
    assert capsule.events[-1].run.state == run_pb2.RUN_STATE_SUCCEEDED
    pads = capsule.SerializeToString().count(b"x" * 4200)
    assert pads == capsule.run.result.row_count


def test_list_capsules_pages_stay_under_the_message_limit(stub: Any, big_runs: list[run_pb2.Run]) -> None:
    for size in (2, 500):
        page = stub.ListCapsules(api.ListCapsulesRequest(page_size=size), timeout=30)
        assert page.capsules and page.ByteSize() < MESSAGE_LIMIT
    runs = stub.ListRuns(api.ListRunsRequest(page_size=500), timeout=30)
    assert runs.ByteSize() < MESSAGE_LIMIT
    assert all(not r.result.rows for r in runs.runs)


def test_export_result_gives_every_row_as_csv_and_parquet(stub: Any, big_runs: list[run_pb2.Run],
                                                          tmp_path: Path) -> None:
    run = big_runs[1]
    data, chunks = export(stub, run.run_id, api.EXPORT_FORMAT_CSV)
    assert all(len(c.data) <= 64 << 10 for c in chunks) and len(chunks) > 1
    assert chunks[0].content_type == "text/csv" and chunks[0].row_count == run.result.row_count
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert rows[0] == ["order_id", "pad"] and len(rows) - 1 == run.result.row_count
    assert [int(r[0]) for r in rows[1:]] == [r.values[0].int_value for r in run.result.rows]
    parquet, chunks = export(stub, run.run_id, api.EXPORT_FORMAT_PARQUET)
    assert chunks[0].content_type == "application/vnd.apache.parquet"
    path = tmp_path / "result.parquet"
    path.write_bytes(parquet)
    count = duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchall()[0][0]
    assert count == run.result.row_count
    assert [t for _, t, *_ in duckdb.sql(f"DESCRIBE SELECT * FROM '{path}'").fetchall()] == ["BIGINT", "VARCHAR"]


def test_export_refuses_runs_without_a_result_and_unknown_formats(stub: Any) -> None:
    rejected = stub.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", sql="DROP TABLE orders"), timeout=60).run
    assert rejected.state == run_pb2.RUN_STATE_REJECTED
    for request, code in ((api.ExportResultRequest(name=rejected.run_id, format=api.EXPORT_FORMAT_CSV),
                           grpc.StatusCode.FAILED_PRECONDITION),
                          (api.ExportResultRequest(name="rnope", format=api.EXPORT_FORMAT_CSV), grpc.StatusCode.NOT_FOUND),
                          (api.ExportResultRequest(name=rejected.run_id), grpc.StatusCode.INVALID_ARGUMENT)):
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.ExportResult(request, timeout=30))
        assert refused.value.code() == code


def test_the_cli_prints_the_capsule_and_exports_the_result(local_stack: RunningStack, big_runs: list[run_pb2.Run],
                                                           tmp_path: Path) -> None:
    run = big_runs[2]
    shown = subprocess.run([CLI, "capsule", run.run_id, "--json", "--capsule-db", str(local_stack.capsule_db)],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["run"]["runId"] == run.run_id and int(record["fullResult"]["rowCount"]) == run.result.row_count
    for export_format in ("csv", "parquet"):
        out = tmp_path / f"result.{export_format}"
        for where in (["--capsule-db", str(local_stack.capsule_db)], ["--server", local_stack.analyst_target]):
            done = subprocess.run([CLI, "export", run.run_id, "--format", export_format, "--output", str(out), *where],
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            reader = "read_csv" if export_format == "csv" else "read_parquet"
            count = duckdb.sql(f"SELECT count(*) FROM {reader}('{out}')").fetchall()[0][0]
            assert count == run.result.row_count
    missing = subprocess.run([CLI, "export", "rnope", "--capsule-db", str(local_stack.capsule_db)],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr
