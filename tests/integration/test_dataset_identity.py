"""No answer comes from another table or from stale content: byte-identical CSV files under two
names, and a file edited between two questions, through the real services and sandboxes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from tests.conftest import RunningStack, start_stack, stop_stack

pytestmark = pytest.mark.bwrap
CONTENT = "region,amount\nnorth,100\nsouth,200\n"
EDITED = "region,amount\nnorth,900\nsouth,200\n"  # the same size: only the content differs


@pytest.fixture(scope="module")
def csv_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("identity-csv")


@pytest.fixture(scope="module")
def local_stack(datasets_dir: Path, csv_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A stack that accepts server-side CSV paths under csv_root."""
    running = start_stack(datasets_dir, tmp_path_factory.mktemp("identity") / "capsules.sqlite3",
                          csv_roots=(csv_root,), upload_dir=tmp_path_factory.mktemp("identity-uploads"))
    yield running
    stop_stack(running)


@pytest.fixture
def tmp_path(csv_root: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh directory under the stack's CSV root."""
    directory = csv_root / request.node.name
    directory.mkdir()
    return directory


@pytest.fixture
def stub(local_stack: RunningStack) -> Any:
    with grpc.insecure_channel(local_stack.analyst_target) as channel:
        yield analyst_service_pb2_grpc.AnalystServiceStub(channel)


def ask_total(stub: Any, path: Path) -> run_pb2.Run:
    events = [r.event for r in stub.Ask(api.AskRequest(csv_paths=[str(path)], question="What is the total amount?"),
                                        timeout=60)]
    run = events[-1].run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error
    return run


def total(run: run_pb2.Run) -> float:
    value = run.result.rows[0].values[0]
    return float(getattr(value, value.WhichOneof("kind")))


def test_identical_files_under_two_names_and_an_edit_between_questions(stub: Any, tmp_path: Path) -> None:
    sales, budget = tmp_path / "sales_a.csv", tmp_path / "budget_b.csv"
    sales.write_text(CONTENT)
    budget.write_text(CONTENT)
    first = ask_total(stub, sales)
    assert '"sales_a"' in first.sql or "sales_a" in first.sql
    assert total(first) == 300
    sales.write_text(EDITED)
    other = ask_total(stub, budget)
    assert "budget_b" in other.sql and "sales_a" not in other.sql
    assert total(other) == 300, "the answer about budget_b came from another file"
    assert other.dataset_id != first.dataset_id
    edited = ask_total(stub, sales)
    assert total(edited) == 1100, "the answer came from the content before the edit"
    assert edited.dataset_version_hash != first.dataset_version_hash


def test_a_warm_sandbox_never_answers_from_content_edited_since(stub: Any, local_stack: RunningStack,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "warm.csv"
    path.write_text(CONTENT)
    sql = "SELECT sum(amount) AS total FROM warm"

    def submit() -> run_pb2.Run:
        run = stub.SubmitRun(api.SubmitRunRequest(csv_paths=[str(path)], sql=sql), timeout=60).run
        assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error
        return run

    assert total(submit()) == 300
    # Wait until a warm sandbox (which loads the table ahead) waits for this table.
    pool = local_stack.stack.executor.pool  # type: ignore[attr-defined]

    def warm_for_this_table() -> int:
        wanted = dict(pool._wanted)  # noqa: SLF001 - which keys mount this file
        return sum(pool.count(key) for key, template in wanted.items()
                   if any(t.host_path == str(path) for t in template.tables))

    deadline = time.monotonic() + 30
    while warm_for_this_table() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert warm_for_this_table() == 1
    # Let it load the table (it loads at start-up, before any query). Correct code passes however
    # long this takes; it only gives broken code the stale sandbox to answer from.
    time.sleep(1.0)
    # An editor's save: a new file renamed over the old one (the warm sandbox mounted the old one).
    replacement = tmp_path / "warm.csv.new"
    replacement.write_text(EDITED)
    os.replace(replacement, path)
    assert total(submit()) == 1100
