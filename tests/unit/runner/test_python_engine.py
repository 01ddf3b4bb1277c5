"""Restricted Python in the runner's engine (in-process; the sandboxed path is in tests/security)."""

from __future__ import annotations

from pathlib import Path

import pytest

from csv_analyst.v1 import run_pb2
from csv_analyst.runner.v1 import sandbox_pb2
from runner.engine import execute_task
from runner.python_policy import MAX_CODE_CHARS, PolicyViolation, check_python
from tests.unit.runner.test_runner_engine import cells, data_dir, make_task  # noqa: F401 - fixture

__all__ = ["data_dir"]


def run_python(data_dir: Path, code: str, max_rows: int = 100) -> sandbox_pb2.SandboxResult:  # noqa: F811
    task = make_task(data_dir, "", max_rows=max_rows)
    task.python_code = code
    return execute_task(task)


def test_tables_are_dataframes_and_the_answer_is_typed(data_dir: Path) -> None:  # noqa: F811
    result = run_python(data_dir, "result_df = orders.groupby('status', as_index=False)['total'].sum()"
                                  ".sort_values('status')")
    assert not result.HasField("error"), result.error
    assert [c.name for c in result.result.columns] == ["status", "total"]
    assert [c.type for c in result.result.columns][1] == "DOUBLE"
    assert cells(result)[0][0] < cells(result)[-1][0]


@pytest.mark.parametrize("code,expected", [
    ("result = len(kv)", [[2]]),
    ("result = [1, 2]", [[1], [2]]),
    ("result_rows = [['a', 1]]\nresult_columns = ['k', 'n']", [["a", 1]]),
    ("result_df = kv.set_index('k')['v']", [[1, "x"], [2, "y"]]),  # a Series keeps its labels
    ("result_df = dfs['kv'][['v']]", [["x"], ["y"]]),
])
def test_every_answer_form(data_dir: Path, code: str, expected: list[list[object]]) -> None:  # noqa: F811
    result = run_python(data_dir, code)
    assert not result.HasField("error"), result.error
    assert cells(result) == expected


@pytest.mark.parametrize("code,words", [
    ("x = 1", "set result_df"),
    ("result_df = 3", "must be a DataFrame"),
    ("result_rows = [[1, 2]]\nresult_columns = ['one']", "name every value"),
    ("y = 1\nresult = kv['nope']", "KeyError (line 2)"),
])
def test_program_errors_are_typed_and_name_the_line(data_dir: Path, code: str, words: str) -> None:  # noqa: F811
    result = run_python(data_dir, code)
    assert result.error.code == run_pb2.ERROR_CODE_PYTHON_EXECUTION_ERROR, result.error
    assert words in result.error.message
    assert "/" not in result.error.message.replace("set result_df", "")  # no host paths


def test_row_cap_is_honest(data_dir: Path) -> None:  # noqa: F811
    result = run_python(data_dir, "result_df = pd.DataFrame({'x': range(50)})", max_rows=10)
    assert result.result.row_count == 10 and result.result.truncated


def test_the_runner_refuses_before_running(data_dir: Path) -> None:  # noqa: F811
    result = run_python(data_dir, "a = 1\nimport os\nresult = 1")
    assert result.error.code == run_pb2.ERROR_CODE_PYTHON_POLICY_VIOLATION
    assert result.error.message.startswith("line 2: an import")


def test_policy_bounds() -> None:
    with pytest.raises(PolicyViolation, match="characters"):
        check_python("x = 1\n" * (MAX_CODE_CHARS // 6 + 1))
    with pytest.raises(PolicyViolation, match="nesting"):
        check_python("result = " + "[" * 80 + "1" + "]" * 80)
    with pytest.raises(PolicyViolation, match="empty"):
        check_python("   \n")
    check_python("result = orders.groupby('to_city').size()")  # column names are not method names
