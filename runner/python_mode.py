"""Restricted Python runs inside the sandbox: a pandas program over the task's tables.

The program is checked against `runner.python_policy` again here, then runs with restricted
builtins and these names: each table as a DataFrame named after it (also in `dfs`), `pd` and
`np`. Its answer is `result_df` (a DataFrame), or `result_rows` (+ `result_columns`), or a
scalar or list `result`. The answer is handed back to DuckDB and read with the same typed,
capped path as a SQL result, so both kinds of run answer alike.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable
from typing import Any

import duckdb

from csv_analyst.v1 import result_pb2
from runner.ingest import identifier
from runner.python_policy import PolicyViolation, check_python

RESULT_VIEW = "__python_result"
PRINT_BUDGET = 64 * 1024  # characters a program may print (to stderr) before print goes quiet
# getattr/hasattr are here for the policy's literal-name calls (it refuses any other use of them).
SAFE_BUILTINS = (
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "frozenset", "int", "isinstance",
    "iter", "len", "list", "map", "max", "min", "next", "pow", "range", "reversed", "round", "set", "slice",
    "sorted", "str", "sum", "tuple", "zip", "True", "False", "None", "getattr", "hasattr",
    "Exception", "ArithmeticError", "AssertionError", "IndexError", "KeyError", "LookupError", "StopIteration",
    "TypeError", "ValueError", "ZeroDivisionError",
)


class PythonProgramError(Exception):
    """The program raised, or did not set a usable result (the message says which)."""


def _print_with_budget() -> Callable[..., None]:
    left = PRINT_BUDGET

    def safe_print(*values: object, sep: str = " ", end: str = "\n") -> None:
        nonlocal left
        text = sep.join(str(v) for v in values) + end
        if left > 0:
            sys.stderr.write(text[:left])
            left -= len(text)
    return safe_print


def run_python(connection: duckdb.DuckDBPyConnection, code: str, table_names: list[str],
               max_rows: int, run_query: Callable[[duckdb.DuckDBPyConnection, str, int], tuple[result_pb2.ResultTable, int]]
               ) -> tuple[result_pb2.ResultTable, int]:
    """Run a program and return its answer as a result table (see module docstring).

    Raises:
        PolicyViolation: When the program is refused (nothing ran).
        PythonProgramError: When it raised or set no usable result.
        MemoryError: When it ran out of memory.
    """
    tree = check_python(code)
    import numpy as np  # imported here: SQL runs never pay for pandas
    import pandas as pd

    frames = {name: connection.execute(f"SELECT * FROM {identifier(name)}").df() for name in table_names}
    allowed = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    allowed["print"] = _print_with_budget()
    namespace: dict[str, Any] = {"__builtins__": allowed, "pd": pd, "np": np, "dfs": dict(frames), **frames}
    try:
        exec(compile(tree, "<analysis>", "exec"), namespace)  # noqa: S102 - the checked program, sandboxed
    except MemoryError:
        raise
    except RecursionError:
        raise PythonProgramError("RecursionError: the program recursed too deeply") from None
    except BaseException as error:  # noqa: BLE001 - any failure of the program is its own
        raise PythonProgramError(f"{type(error).__name__}{_line_of(error)}: {_message(error)}") from None
    answer = _answer(namespace, pd)
    # One program per sandbox: the view lives until the connection closes (unregistering it
    # while its result is still open is refused by DuckDB).
    connection.register(RESULT_VIEW, answer)
    return run_query(connection, f"SELECT * FROM {identifier(RESULT_VIEW)}", max_rows)


def _line_of(error: BaseException) -> str:
    """` (line N)` for the program's own line where the error was raised, if it is known."""
    line = 0
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<analysis>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return f" (line {line})" if line else ""


def _message(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text[:500] or "(no message)"


def _answer(namespace: dict[str, Any], pd: Any) -> Any:
    """The program's answer as a DataFrame."""
    if "result_df" in namespace:
        frame = namespace["result_df"]
        if isinstance(frame, pd.Series):
            frame = frame.reset_index()
        if not isinstance(frame, pd.DataFrame):
            raise PythonProgramError(f"result_df must be a DataFrame, not {type(frame).__name__}")
        return _flat(frame, pd)
    if "result_rows" in namespace:
        rows = namespace["result_rows"]
        columns = namespace.get("result_columns")
        if not isinstance(rows, (list, tuple)):
            raise PythonProgramError(f"result_rows must be a list of rows, not {type(rows).__name__}")
        rows = [list(row) if isinstance(row, (list, tuple)) else [row] for row in rows]
        if columns is not None and (not isinstance(columns, (list, tuple)) or
                                    any(len(row) != len(columns) for row in rows)):
            raise PythonProgramError("result_columns must name every value of each row of result_rows")
        return pd.DataFrame(rows, columns=[str(c) for c in columns] if columns is not None else None)
    if "result" in namespace:
        value = namespace["result"]
        if isinstance(value, pd.DataFrame | pd.Series):
            return _flat(value.reset_index() if isinstance(value, pd.Series) else value, pd)
        if isinstance(value, (list, tuple)):
            return pd.DataFrame({"result": list(value)})
        return pd.DataFrame({"result": [value]})
    raise PythonProgramError("the program set no answer: set result_df (a DataFrame), result_rows "
                             "(with result_columns) or result (a value or a list)")


def _flat(frame: Any, pd: Any) -> Any:
    """A DataFrame with string column names and its index as columns when it carries labels."""
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    frame = frame.copy()
    frame.columns = [" ".join(str(p) for p in c if str(p)) if isinstance(c, tuple) else str(c) for c in frame.columns]
    return frame


__all__ = ["PolicyViolation", "PythonProgramError", "run_python"]
