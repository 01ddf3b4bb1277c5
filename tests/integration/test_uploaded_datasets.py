"""Uploaded datasets through the real services (bwrap sandbox): the ingestion problems an upload
reports for hostile CSVs, DeleteDataset, and ReadResult paging of a large result."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from tests.conftest import RunningStack, start_stack, stop_stack

pytestmark = pytest.mark.bwrap


@pytest.fixture(scope="module")
def stack(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(datasets_dir, tmp_path_factory.mktemp("uploaded") / "capsules.sqlite3", max_rows=1000)
    yield running
    stop_stack(running)


@pytest.fixture()
def analyst(stack: RunningStack) -> Iterator[Any]:
    with grpc.insecure_channel(stack.analyst_target) as channel:
        yield analyst_service_pb2_grpc.AnalystServiceStub(channel)


def upload(analyst: Any, files: list[tuple[str, bytes]]) -> Any:
    def messages() -> Iterator[api.UploadDatasetRequest]:
        for name, data in files:
            yield api.UploadDatasetRequest(file_name=name, chunk=data)
    return analyst.UploadDataset(messages(), timeout=120).dataset


def reason(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


def problems(dataset: Any) -> list[tuple[str, str]]:
    return [(p.table, p.kind) for p in dataset.ingestion_problems]


# ---- ingestion problems of hostile CSVs ------------------------------------------------------

@pytest.mark.parametrize(("content", "expected", "in_message"), [
    (b"id,id,\n1,2,3\n", [("t", "renamed_column"), ("t", "renamed_column")], "'id_1'"),
    (b"name;amount\nA;1,5\nB;2,75\n", [("t", "delimiter_detected"), ("t", "decimal_comma")], "'amount'"),
    (b"a,b,c\n1,,x\n2,,y\n", [("t", "empty_column")], "'b' is empty in all 2 rows"),
    (b"a,b\n", [("t", "no_rows")], "no data rows"),
    ("city,n\nMálaga,1\nKöln,2\nSão Paulo,3\n".encode("latin-1"), [("t", "encoding_fixed")], "stored as UTF-8"),
    (b"a,b\n1,2\n", [], ""),
], ids=["duplicate-and-empty-header", "decimal-comma", "empty-column", "header-only", "latin-1", "clean"])
def test_an_upload_reports_what_ingestion_found(analyst: Any, content: bytes, expected: list[tuple[str, str]],
                                                in_message: str) -> None:
    dataset = upload(analyst, [("t.csv", content)])
    assert problems(dataset) == expected
    if in_message:
        assert any(in_message in p.message for p in dataset.ingestion_problems), dataset.ingestion_problems
    listed = analyst.GetDataset(api.GetDatasetRequest(name=dataset.dataset_id), timeout=30).dataset
    assert problems(listed) == expected


def test_decimal_commas_answer_as_numbers(analyst: Any) -> None:
    dataset = upload(analyst, [("prices.csv", b"item;price\nA;1,5\nB;2,25\nC;10\n")])
    run = analyst.SubmitRun(api.SubmitRunRequest(dataset_id=dataset.dataset_id,
                                                 sql="SELECT sum(price) AS total FROM prices"), timeout=120).run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error
    assert run.result.rows[0].values[0].double_value == pytest.approx(13.75)


def test_latin1_upload_answers_with_the_right_letters(analyst: Any) -> None:
    dataset = upload(analyst, [("cities.csv", "city,n\nMálaga,1\nKöln,2\n".encode("latin-1"))])
    run = analyst.SubmitRun(api.SubmitRunRequest(dataset_id=dataset.dataset_id,
                                                 sql="SELECT city FROM cities ORDER BY n"), timeout=120).run
    assert [row.values[0].string_value for row in run.result.rows] == ["Málaga", "Köln"], run.error


def test_ragged_rows_are_refused_with_the_line(analyst: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        upload(analyst, [("t.csv", b"a,b,c\n1,2,3\n4,5\n")])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "(line 3)" in caught.value.details() and "has 2 fields but the header has 3" in caught.value.details()
    # A refused upload is not kept: it is not listed, now or after a restart.
    listed = analyst.ListDatasets(api.ListDatasetsRequest(page_size=500), timeout=30).datasets
    assert not [d for d in listed if d.title == "Uploaded: t.csv" and not d.tables[0].columns]


# ---- DeleteDataset -----------------------------------------------------------------------------

def test_delete_an_upload(analyst: Any, stack: RunningStack) -> None:
    dataset = upload(analyst, [("doomed.csv", b"k,v\na,1\nb,2\n")])
    run = analyst.SubmitRun(api.SubmitRunRequest(dataset_id=dataset.dataset_id, sql="SELECT sum(v) AS s FROM doomed"),
                            timeout=120).run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error

    deleted = analyst.DeleteDataset(api.DeleteDatasetRequest(name=dataset.name), timeout=30).dataset
    assert deleted.dataset_id == dataset.dataset_id

    listed = analyst.ListDatasets(api.ListDatasetsRequest(page_size=500), timeout=30).datasets
    assert dataset.dataset_id not in {d.dataset_id for d in listed}
    assert not list((Path(stack.capsule_db).parent / "uploads").glob(f"{dataset.version_hash}*"))
    for call in (lambda: analyst.GetDataset(api.GetDatasetRequest(name=dataset.dataset_id), timeout=30),
                 lambda: analyst.DeleteDataset(api.DeleteDatasetRequest(name=dataset.dataset_id), timeout=30),
                 lambda: analyst.SubmitRun(api.SubmitRunRequest(dataset_id=dataset.dataset_id, sql="SELECT 1"),
                                           timeout=30)):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # The earlier run's record and result stay readable.
    capsule = analyst.GetCapsule(api.GetCapsuleRequest(name=run.run_id), timeout=30).capsule
    assert capsule.run.result.rows[0].values[0].int_value == 3
    exported = b"".join(c.data for c in analyst.ExportResult(
        api.ExportResultRequest(name=run.run_id, format=api.EXPORT_FORMAT_CSV), timeout=30))
    assert exported == b"s\r\n3\r\n"


@pytest.mark.parametrize(("name", "code", "why"), [
    ("ecommerce", grpc.StatusCode.FAILED_PRECONDITION, "DATASET_NOT_DELETABLE"),
    ("datasets/ecommerce", grpc.StatusCode.FAILED_PRECONDITION, "DATASET_NOT_DELETABLE"),
    ("upload-0123456789abcdef", grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    ("../../etc", grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
])
def test_delete_refusals(analyst: Any, name: str, code: grpc.StatusCode, why: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        analyst.DeleteDataset(api.DeleteDatasetRequest(name=name), timeout=30)
    assert caught.value.code() == code
    assert reason(caught.value) == why
    assert analyst.GetDataset(api.GetDatasetRequest(name="ecommerce"), timeout=30).dataset.tables


# ---- ReadResult --------------------------------------------------------------------------------

ROWS = 731


@pytest.fixture(scope="module")
def large_run(stack: RunningStack) -> str:
    with grpc.insecure_channel(stack.analyst_target) as channel:
        stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        body = "".join(f"{i},note {i}\n" for i in range(ROWS)).encode()
        dataset = upload(stub, [("ledger.csv", b"entry,note\n" + body)])
        run = stub.SubmitRun(api.SubmitRunRequest(dataset_id=dataset.dataset_id,
                                                  sql="SELECT entry, note FROM ledger ORDER BY entry LIMIT 1000"),
                             timeout=120).run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED and run.result.row_count == ROWS, run.error
    return str(run.run_id)


def test_pages_cover_every_row_in_order(analyst: Any, large_run: str) -> None:
    second = analyst.ReadResult(api.ReadResultRequest(name=large_run, offset=200, page_size=200), timeout=30)
    assert (second.offset, second.total_row_count, second.result.row_count) == (200, ROWS, 200)
    assert [c.name for c in second.result.columns] == ["entry", "note"]
    assert [r.values[0].int_value for r in second.result.rows] == list(range(200, 400))
    seen: list[int] = []
    offset = 0
    while offset < ROWS:
        page = analyst.ReadResult(api.ReadResultRequest(name=f"runs/{large_run}", offset=offset), timeout=30)
        seen += [r.values[0].int_value for r in page.result.rows]
        offset += page.result.row_count
    assert seen == list(range(ROWS))
    last = analyst.ReadResult(api.ReadResultRequest(name=large_run, offset=ROWS), timeout=30)
    assert last.result.row_count == 0 and last.total_row_count == ROWS
    capped = analyst.ReadResult(api.ReadResultRequest(name=large_run, page_size=100_000), timeout=30)
    assert capped.result.row_count == 731  # under the 1,000-row cap


@pytest.mark.parametrize(("request_", "code"), [
    (api.ReadResultRequest(name="LARGE", offset=-1), grpc.StatusCode.INVALID_ARGUMENT),
    (api.ReadResultRequest(name="LARGE", page_size=-5), grpc.StatusCode.INVALID_ARGUMENT),
    (api.ReadResultRequest(name="LARGE", offset=ROWS + 1), grpc.StatusCode.INVALID_ARGUMENT),
    (api.ReadResultRequest(name="no-such-run"), grpc.StatusCode.NOT_FOUND),
], ids=["negative-offset", "negative-size", "past-the-end", "unknown-run"])
def test_read_result_refusals(analyst: Any, large_run: str, request_: Any, code: grpc.StatusCode) -> None:
    request = api.ReadResultRequest()
    request.CopyFrom(request_)
    if request.name == "LARGE":
        request.name = large_run
    with pytest.raises(grpc.RpcError) as caught:
        analyst.ReadResult(request, timeout=30)
    assert caught.value.code() == code


def test_a_failed_run_has_no_pages(analyst: Any) -> None:
    run = analyst.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", sql="SELECT no_such_column FROM orders"),
                            timeout=120).run
    assert run.state in (run_pb2.RUN_STATE_FAILED, run_pb2.RUN_STATE_REJECTED)
    with pytest.raises(grpc.RpcError) as caught:
        analyst.ReadResult(api.ReadResultRequest(name=run.run_id), timeout=30)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_csv_export_matches_the_pages(analyst: Any, large_run: str) -> None:
    text = b"".join(c.data for c in analyst.ExportResult(
        api.ExportResultRequest(name=large_run, format=api.EXPORT_FORMAT_CSV), timeout=30)).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == ROWS + 1 and rows[201] == ["200", "note 200"]


def test_cli_deletes_an_upload(analyst: Any, stack: RunningStack) -> None:
    dataset = upload(analyst, [("cli_doomed.csv", b"k\n1\n")])
    command = [sys.executable, "-m", "csv_analyst_app.cli", "datasets", "delete", "--server", stack.analyst_target]
    done = subprocess.run([*command, dataset.dataset_id], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"deleted {dataset.dataset_id} (Uploaded: cli_doomed.csv)"
    refused = subprocess.run([*command, "ecommerce"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert refused.stderr.startswith("FAILED_PRECONDITION: dataset 'ecommerce' is not an upload")


def test_after_a_restart_an_upload_has_its_columns_and_problems(analyst: Any, datasets_dir: Path,
                                                                stack: RunningStack) -> None:
    dataset = upload(analyst, [("kept.csv", "item;price;;\nCafé;1,5;x;\n".encode("latin-1"))])
    assert problems(dataset) == [("kept", "encoding_fixed"), ("kept", "renamed_column"), ("kept", "renamed_column"),
                                 ("kept", "delimiter_detected"), ("kept", "decimal_comma"), ("kept", "empty_column")]
    # A second service over the same upload store: what a restart finds.
    restarted = start_stack(datasets_dir, Path(stack.capsule_db).parent / "restarted.sqlite3", max_rows=1000)
    try:
        with grpc.insecure_channel(restarted.analyst_target) as channel:
            stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
            listed = stub.ListDatasets(api.ListDatasetsRequest(page_size=500), timeout=30).datasets
            assert dataset.dataset_id in {d.dataset_id for d in listed}
            again = stub.GetDataset(api.GetDatasetRequest(name=dataset.dataset_id), timeout=120).dataset
    finally:
        stop_stack(restarted)
    assert [(c.name, c.type) for c in again.tables[0].columns] == [(c.name, c.type) for c in dataset.tables[0].columns]
    assert sorted(problems(again)) == sorted(problems(dataset))
