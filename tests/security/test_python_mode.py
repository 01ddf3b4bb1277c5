"""Red-team suite of restricted Python mode, through the real services and real sandboxes.

Every case in cases/python.txt goes through AnalystService.SubmitRun(python_code) on a stack
with Python enabled and must end as its header says, stopped by the layer it names. The policy
cases are sent again straight to the RunnerService (no analyst in front): the runner checks
the same policy inside the sandbox before running anything. A server without Python mode
refuses Python runs with FAILED_PRECONDITION.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from csv_analyst.runner.v1 import runner_dispatch_service_pb2 as dispatch_pb2, runner_dispatch_service_pb2_grpc, sandbox_pb2
from tests.conftest import RunningStack
from tests.security.harness import PASSWD_MARKERS, leaks

CASES_FILE = Path(__file__).resolve().parent / "cases" / "python.txt"
STATES = {"allow": run_pb2.RUN_STATE_SUCCEEDED, "reject": run_pb2.RUN_STATE_REJECTED, "fail": run_pb2.RUN_STATE_FAILED}
LAYERS = {"policy", "builtins", "sandbox", "none"}


@dataclass(frozen=True)
class PythonCase:
    """One case: a program and how its run must end."""

    name: str
    code: str
    expect: str
    layer: str
    codes: tuple[str, ...]
    rows: int | None


def load_python_cases() -> list[PythonCase]:
    """Parse cases/python.txt (raises ValueError on a malformed case)."""
    text = CASES_FILE.read_text(encoding="utf-8")
    cases = []
    for block in re.split(r"^# case: ", text, flags=re.MULTILINE)[1:]:
        name, _, rest = block.partition("\n")
        headers: dict[str, str] = {}
        lines = rest.splitlines()
        while lines and lines[0].startswith("# "):
            key, _, value = lines.pop(0)[2:].partition(": ")
            headers[key] = value.strip()
        code = "\n".join(lines).strip() + "\n"
        expect, layer = headers.get("expect", ""), headers.get("layer", "")
        if expect not in STATES or layer not in LAYERS or (expect != "allow" and "code" not in headers):
            raise ValueError(f"case {name}: bad headers {headers}")
        cases.append(PythonCase(name.strip(), code, expect, layer, tuple(headers.get("code", "").split("|")),
                                int(headers["rows"]) if "rows" in headers else None))
    return cases


CASES = load_python_cases()


def test_the_suite_has_its_size() -> None:
    assert len(CASES) >= 60
    assert sum(c.expect == "allow" and c.layer == "none" for c in CASES) >= 12
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def python_analyst(python_stack: RunningStack) -> Iterator[Any]:
    channel = grpc.insecure_channel(python_stack.analyst_target)
    yield analyst_service_pb2_grpc.AnalystServiceStub(channel)
    channel.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_python_case(case: PythonCase, python_analyst: Any) -> None:
    run = python_analyst.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", python_code=case.code), timeout=90).run
    assert run.state == STATES[case.expect], (case.name, run.error)
    assert run.query_type == run_pb2.QUERY_TYPE_PYTHON and run.python_code == case.code
    if case.expect == "allow":
        assert run.result.columns, case.name
        if case.rows is not None:
            assert run.result.row_count == case.rows
        if case.layer == "sandbox":  # allowed, but capped by the sandbox's row limit
            assert run.result.truncated
    else:
        assert run.error.reason in case.codes, (case.name, run.error)
        if case.layer == "policy":
            assert "not allowed in restricted Python" in run.error.message
            assert not run.HasField("start_time"), "a refused program reached a sandbox"
    capsule = python_analyst.GetCapsule(api.GetCapsuleRequest(name=run.run_id), timeout=30).capsule
    assert capsule.run.python_code == case.code and capsule.run.query_type == run_pb2.QUERY_TYPE_PYTHON
    text = str(capsule)
    assert not any(marker in text for marker in PASSWD_MARKERS), case.name
    assert leaks(text) == [], case.name


POLICY_CASES = [c for c in CASES if c.layer == "policy"]


@pytest.mark.parametrize("case", POLICY_CASES, ids=[c.name for c in POLICY_CASES])
def test_the_runner_checks_the_policy_again(case: PythonCase, python_stack: RunningStack) -> None:
    """Straight to the runner service (a compromised or buggy analyst): nothing runs either."""
    orders = str(python_stack.datasets_dir / "ecommerce" / "orders.csv")
    with python_stack.runner_channel() as channel:
        runner = runner_dispatch_service_pb2_grpc.RunnerServiceStub(channel)
        events = list(runner.Execute(dispatch_pb2.ExecuteRequest(
            run_id=f"bypass-{case.name.replace('_', '-')}", python_code=case.code,
            tables=[sandbox_pb2.TableSource(name="orders", path=orders)]), timeout=90))
    finished = events[-1]
    assert finished.kind == dispatch_pb2.RUNNER_EVENT_KIND_FINISHED and finished.HasField("error")
    assert finished.error.code == run_pb2.ERROR_CODE_PYTHON_POLICY_VIOLATION, finished.error
    assert not any(marker in str(finished) for marker in PASSWD_MARKERS)


def test_the_service_answers_normally_after_the_suite(python_analyst: Any) -> None:
    run = python_analyst.SubmitRun(api.SubmitRunRequest(
        dataset_id="ecommerce", python_code="result_df = orders.groupby('status', as_index=False).size()"),
        timeout=90).run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED and run.result.row_count == 4
    sql = python_analyst.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", sql="SELECT count(*) FROM orders"),
                                   timeout=60).run
    assert sql.state == run_pb2.RUN_STATE_SUCCEEDED and sql.query_type == run_pb2.QUERY_TYPE_SQL


def test_a_server_without_python_mode_refuses_python_runs(analyst: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        analyst.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", python_code="result = 1"), timeout=30)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--enable-python" in caught.value.details()
