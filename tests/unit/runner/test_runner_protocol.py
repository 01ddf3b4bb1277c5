"""runner/__main__.py: one binary SandboxTask on stdin, one SandboxResult on stdout, documented exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from csv_analyst.v1 import run_pb2
from csv_analyst.runner.v1 import sandbox_pb2

REPO = Path(__file__).resolve().parents[3]


def run_runner(stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "runner"], input=stdin, capture_output=True, timeout=60,
                          cwd=REPO, check=False)


def test_task_in_result_out(tmp_path: Path) -> None:
    (tmp_path / "t0.csv").write_text("a,b\n1,x\n2,y\n3,z\n")
    task = sandbox_pb2.SandboxTask(run_id="r1", sql="SELECT a, b FROM t ORDER BY a DESC", data_dir=str(tmp_path),
                                   tables=[sandbox_pb2.TableSource(name="t", path=str(tmp_path / "t0.csv"))],
                                   limits=run_pb2.ResourceLimits(max_rows=2))
    completed = run_runner(task.SerializeToString())
    assert completed.returncode == 0, completed.stderr
    result = sandbox_pb2.SandboxResult.FromString(completed.stdout)
    assert not result.HasField("error")
    assert [[v.WhichOneof("kind") for v in r.values] for r in result.result.rows] == [["int_value", "string_value"]] * 2
    assert [r.values[0].int_value for r in result.result.rows] == [3, 2]
    assert result.result.truncated and result.rows_produced == 3


def test_query_failure_is_still_exit_zero_with_an_error(tmp_path: Path) -> None:
    task = sandbox_pb2.SandboxTask(run_id="r2", sql="SELECT * FROM read_csv('/etc/passwd')", data_dir=str(tmp_path))
    completed = run_runner(task.SerializeToString())
    assert completed.returncode == 0, completed.stderr
    result = sandbox_pb2.SandboxResult.FromString(completed.stdout)
    assert result.error.code == run_pb2.ERROR_CODE_QUERY_ERROR
    assert b"root:" not in completed.stdout


def test_unreadable_task_exits_2_and_writes_nothing_to_stdout() -> None:
    completed = run_runner(b"\xff\xff\xff\xff")
    assert completed.returncode == 2
    assert completed.stdout == b""
    assert b"unreadable task" in completed.stderr


def test_framed_setup_then_query_answers_with_one_frame(tmp_path: Path) -> None:
    from runner.messages import complete_frame, frame, query_frame

    (tmp_path / "t0.csv").write_text("a\n1\n2\n")
    setup = sandbox_pb2.SandboxTask(data_dir=str(tmp_path), limits=run_pb2.ResourceLimits(max_rows=5),
                                    tables=[sandbox_pb2.TableSource(name="t", path=str(tmp_path / "t0.csv"))])
    completed = run_runner(frame(setup) + query_frame("r9", "SELECT sum(a) AS s FROM t"))
    assert completed.returncode == 0, completed.stderr
    payload = complete_frame(completed.stdout)
    assert payload is not None and len(completed.stdout) == 4 + len(payload)  # the frame and nothing else
    result = sandbox_pb2.SandboxResult.FromString(payload)
    assert result.result.rows[0].values[0].int_value == 3
    assert complete_frame(completed.stdout[:-1]) is None  # a frame cut short is not complete


def test_framed_input_cut_short_exits_2(tmp_path: Path) -> None:
    from runner.messages import frame, query_frame

    (tmp_path / "t0.csv").write_text("a\n1\n")
    setup = sandbox_pb2.SandboxTask(data_dir=str(tmp_path),
                                    tables=[sandbox_pb2.TableSource(name="t", path=str(tmp_path / "t0.csv"))])
    completed = run_runner(frame(setup) + query_frame("r9", "SELECT 1")[:5])
    assert completed.returncode == 2 and completed.stdout == b""
