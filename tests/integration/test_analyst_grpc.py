"""The public gRPC surface of both services, driven with real stubs against a real stack
(loopback gRPC, bubblewrap sandboxes, the offline planner, SQLite capsules)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, plan_pb2, run_pb2
from csv_analyst.runner.v1 import runner_dispatch_service_pb2 as dispatch_pb2, runner_dispatch_service_pb2_grpc, sandbox_pb2

pytestmark = pytest.mark.bwrap
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def analyst(local_stack: Any) -> Any:
    channel = grpc.insecure_channel(local_stack.analyst_target)
    yield analyst_service_pb2_grpc.AnalystServiceStub(channel)
    channel.close()


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "the error carries no google.rpc.Status"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo in the status details")


def ask(analyst: Any, dataset_id: str, question: str, thread_id: str = "") -> list[run_pb2.RunEvent]:
    return [r.event for r in analyst.Ask(api.AskRequest(dataset_id=dataset_id, question=question, thread_id=thread_id))]


def test_list_datasets_paginates(analyst: Any) -> None:
    first = analyst.ListDatasets(api.ListDatasetsRequest(page_size=2))
    assert [d.dataset_id for d in first.datasets] == ["ecommerce", "support"]
    assert first.next_page_token
    second = analyst.ListDatasets(api.ListDatasetsRequest(page_size=2, page_token=first.next_page_token))
    assert [d.dataset_id for d in second.datasets] == ["sensors"]
    assert second.next_page_token == ""
    with pytest.raises(grpc.RpcError) as caught:
        analyst.ListDatasets(api.ListDatasetsRequest(page_token="garbage"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_get_dataset_and_not_found(analyst: Any) -> None:
    dataset = analyst.GetDataset(api.GetDatasetRequest(name="datasets/ecommerce")).dataset
    assert {t.name for t in dataset.tables} == {"orders", "order_items", "inventory"}
    assert len(dataset.version_hash) == 64 and len(dataset.prompts) >= 6
    with pytest.raises(grpc.RpcError) as caught:
        analyst.GetDataset(api.GetDatasetRequest(name="nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(caught.value).reason == "NOT_FOUND"


def test_ask_streams_every_stage_in_order(analyst: Any, local_stack: Any) -> None:
    events = ask(analyst, "ecommerce", "How many orders are there per status?")
    stages = [e.stage for e in events]
    assert stages == [run_pb2.STAGE_PLANNING, run_pb2.STAGE_VALIDATING, run_pb2.STAGE_QUEUED,
                      run_pb2.STAGE_EXECUTING, run_pb2.STAGE_RESULT, run_pb2.STAGE_DONE]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    times = [e.event_time.ToNanoseconds() for e in events]
    assert times == sorted(times) and times[0] > 0
    done = events[-1].run
    assert done.state == run_pb2.RUN_STATE_SUCCEEDED and done.runner_mode == "bwrap"
    assert done.result.row_count == len(done.result.rows) > 0
    assert done.plan.explanation
    # The capsule was stored before the stream ended and holds the whole record.
    capsule = analyst.GetCapsule(api.GetCapsuleRequest(name=done.run_id)).capsule
    assert capsule.run.sql == done.sql and capsule.run.dataset_version_hash == done.dataset_version_hash
    assert json.loads(capsule.plan_json)["baseTable"] == done.plan.base_table
    assert [e.sequence for e in capsule.events] == [e.sequence for e in events]
    assert capsule.run.limits.timeout.seconds == 10 and capsule.run.limits.memory_bytes == 256 << 20


@pytest.mark.parametrize("dataset_id", ["ecommerce", "support", "sensors"])
def test_every_registry_prompt_succeeds_through_ask(analyst: Any, dataset_id: str) -> None:
    dataset = analyst.GetDataset(api.GetDatasetRequest(name=dataset_id)).dataset
    failures = []
    for prompt in dataset.prompts:
        run = ask(analyst, dataset_id, prompt)[-1].run
        if run.state != run_pb2.RUN_STATE_SUCCEEDED or run.result.row_count == 0:
            failures.append((prompt, run_pb2.RunState.Name(run.state), run.error.message))
    assert failures == []


def test_submit_sql_reading_etc_passwd_is_refused_and_recorded(analyst: Any) -> None:
    run = analyst.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", sql="SELECT * FROM read_csv('/etc/passwd')")).run
    assert run.state == run_pb2.RUN_STATE_REJECTED
    assert run.error.code == run_pb2.ERROR_CODE_SQL_POLICY_VIOLATION
    assert run.error.status_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    capsule = analyst.GetCapsule(api.GetCapsuleRequest(name=f"capsules/{run.run_id}")).capsule
    assert capsule.run.state == run_pb2.RUN_STATE_REJECTED
    assert "read_csv" in capsule.run.sql and "read_csv" in capsule.run.error.message


def test_sandbox_holds_when_the_policy_is_bypassed(local_stack: Any) -> None:
    """Straight to the runner service (no SQL policy): the sandbox and DuckDB must still refuse."""
    channel = local_stack.runner_channel()
    runner = runner_dispatch_service_pb2_grpc.RunnerServiceStub(channel)
    orders = str(local_stack.datasets_dir / "ecommerce" / "orders.csv")
    for run_id, sql in (("passwd", "SELECT * FROM read_csv('/etc/passwd')"),
                        ("network", "SELECT * FROM read_csv('http://127.0.0.1:1/x.csv')"),
                        ("write", "COPY (SELECT 1) TO '/data/t0.csv'")):
        events = list(runner.Execute(dispatch_pb2.ExecuteRequest(
            run_id=run_id, sql=sql, tables=[sandbox_pb2.TableSource(name="orders", path=orders)])))
        finished = events[-1]
        assert finished.kind == dispatch_pb2.RUNNER_EVENT_KIND_FINISHED
        assert finished.HasField("error"), f"{sql} succeeded inside the sandbox"
        assert finished.error.code == run_pb2.ERROR_CODE_QUERY_ERROR
    channel.close()


def test_plan_with_unknown_column_is_rejected_with_field_path(analyst: Any) -> None:
    plan = plan_pb2.Plan(base_table="orders", select=[plan_pb2.SelectItem(column="order_total_usd")])
    run = analyst.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", plan=plan)).run
    assert run.state == run_pb2.RUN_STATE_REJECTED
    assert run.error.code == run_pb2.ERROR_CODE_VALIDATION_ERROR
    assert [v.field for v in run.error.violations] == ["plan.select[0].column"]
    assert analyst.GetCapsule(api.GetCapsuleRequest(name=run.run_id)).capsule.run.error.reason == "VALIDATION_ERROR"


def test_bad_requests_get_typed_errors(analyst: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        list(analyst.Ask(api.AskRequest(dataset_id="ecommerce", question="   ")))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as caught:
        analyst.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for bad_thread in ("t" * 129, "thread\nid"):
        with pytest.raises(grpc.RpcError) as caught:
            analyst.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", sql="SELECT 1", thread_id=bad_thread))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "thread_id" in (caught.value.details() or "")
        with pytest.raises(grpc.RpcError) as caught:
            list(analyst.Ask(api.AskRequest(dataset_id="ecommerce", question="How many orders?", thread_id=bad_thread)))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as caught:
        analyst.GetCapsule(api.GetCapsuleRequest(name="r-does-not-exist"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        list(analyst.Ask(api.AskRequest(csv_paths=["/nonexistent/file.csv"], question="how many rows?")))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED  # no CSV roots by default


def test_query_error_fails_and_is_recorded(analyst: Any) -> None:
    run = analyst.SubmitRun(api.SubmitRunRequest(dataset_id="support", sql="SELECT no_such_column FROM tickets")).run
    assert run.state == run_pb2.RUN_STATE_FAILED and run.error.code == run_pb2.ERROR_CODE_QUERY_ERROR
    assert analyst.GetCapsule(api.GetCapsuleRequest(name=run.run_id)).capsule.run.state == run_pb2.RUN_STATE_FAILED


def test_list_capsules_paginates_newest_first(analyst: Any) -> None:
    for n in range(3):
        analyst.SubmitRun(api.SubmitRunRequest(dataset_id="sensors", sql=f"SELECT {n} AS n"))
    page = analyst.ListCapsules(api.ListCapsulesRequest(page_size=2, dataset_id="sensors"))
    assert [c.run.sql for c in page.capsules] == ["SELECT 2 AS n", "SELECT 1 AS n"]
    rest = analyst.ListCapsules(api.ListCapsulesRequest(page_size=2, dataset_id="sensors", page_token=page.next_page_token))
    assert rest.capsules[0].run.sql == "SELECT 0 AS n"


def test_health_is_serving_on_both_services(local_stack: Any) -> None:
    for target, service in ((local_stack.analyst_target, "csv_analyst.v1.AnalystService"),
                            (local_stack.runner_target, "csv_analyst.runner.v1.RunnerService")):
        with grpc.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in ("", service):
                assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.buf
def test_buf_curl_lists_methods_through_reflection(local_stack: Any) -> None:
    buf = Path(sys.executable).parent / "buf"
    listed = {}
    runner_auth = ["--reflect-header", f"Authorization: Bearer {local_stack.stack.runner_credential}"]
    for target, auth in ((local_stack.analyst_target, []), (local_stack.runner_target, runner_auth)):
        out = subprocess.run([str(buf), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-methods",
                              *auth, f"http://{target}"], capture_output=True, text=True, timeout=60, check=True)
        listed[target] = out.stdout.split()
    # The runner service does not even describe itself to a caller without its credential.
    refused = subprocess.run([str(buf), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-methods",
                              f"http://{local_stack.runner_target}"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "not authenticated" in refused.stderr.lower(), refused.stderr
    assert "csv_analyst.v1.AnalystService/Ask" in listed[local_stack.analyst_target]
    assert "grpc.health.v1.Health/Check" in listed[local_stack.analyst_target]
    assert "csv_analyst.runner.v1.RunnerService/Execute" in listed[local_stack.runner_target]
    # And a streaming call through reflection alone, without the .proto files.
    out = subprocess.run([str(buf), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
                          "-d", json.dumps({"datasetId": "sensors", "question": "What is the average temperature per location?"}),
                          f"http://{local_stack.analyst_target}/csv_analyst.v1.AnalystService/Ask"],
                         capture_output=True, text=True, timeout=60, check=True)
    stages = [json.loads(chunk)["event"]["stage"] for chunk in _json_stream(out.stdout)]
    assert stages[0] == "STAGE_PLANNING" and stages[-1] == "STAGE_DONE"


def _json_stream(text: str) -> list[str]:
    decoder, chunks, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, end = decoder.raw_decode(text, index)
        chunks.append(json.dumps(value))
        index = end
    return chunks


def test_follow_up_over_grpc_ask_refines_the_previous_plan(analyst: Any) -> None:
    first = ask(analyst, "ecommerce", "How many orders are there per status?")[-1].run
    assert first.state == run_pb2.RUN_STATE_SUCCEEDED and first.thread_id
    follow = ask(analyst, "ecommerce", "only completed ones", thread_id=first.thread_id)[-1].run
    assert follow.state == run_pb2.RUN_STATE_SUCCEEDED and follow.thread_id == first.thread_id
    assert [(f.column, f.values[0].string_value) for f in follow.plan.filters] == [("status", "completed")]
    assert [row.values[0].string_value for row in follow.result.rows] == ["completed"]
    assert "completed" in follow.plan.explanation


def test_a_plan_without_a_limit_says_honestly_that_rows_were_left_out(analyst: Any) -> None:
    plan = plan_pb2.Plan(base_table="orders", select=[plan_pb2.SelectItem(column="order_id")])
    run = analyst.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", plan=plan)).run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error
    assert run.result.row_count == 200 and run.result.truncated and len(run.result.rows) == 200
    small = plan_pb2.Plan(base_table="orders", select=[plan_pb2.SelectItem(column="status")],
                          group_by=[plan_pb2.GroupBy(column="status")])
    grouped = analyst.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", plan=small)).run
    assert grouped.result.row_count == 4 and not grouped.result.truncated
