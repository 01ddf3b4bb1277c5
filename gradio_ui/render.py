"""Turn RunEvents into what the UI shows: titled stage messages, the result table, a chart and details.

Pure functions and one small accumulator (`RunView`); nothing here talks to the network or to Gradio
components, so it is easy to test and to reuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration

from csv_analyst.v1 import plan_pb2, result_pb2, run_pb2, value_pb2

ChatMessage = dict[str, Any]
Cell = bool | int | float | str | None

STAGE_TITLES: dict[int, str] = {
    run_pb2.STAGE_PLANNING: "Planning",
    run_pb2.STAGE_VALIDATING: "Validating",
    run_pb2.STAGE_QUEUED: "Queued",
    run_pb2.STAGE_EXECUTING: "Executing",
    run_pb2.STAGE_RESULT: "Result",
    run_pb2.STAGE_DONE: "Done",
}

_NUMERIC_PREFIXES = ("TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                     "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL", "NUMERIC")
_DATE_PREFIXES = ("DATE", "TIMESTAMP")
_LABEL_PREFIXES = ("VARCHAR", "TEXT", "STRING", "BOOLEAN", "ENUM") + _DATE_PREFIXES
_CHART_MAX_ROWS = 200
_OUTCOMES: dict[int, str] = {
    run_pb2.RUN_STATE_FAILED: "failed",
    run_pb2.RUN_STATE_REJECTED: "was rejected",
    run_pb2.RUN_STATE_CANCELLED: "was cancelled",
}


def cell(value: value_pb2.Value) -> Cell:
    """The Python value of one result cell; an unset oneof or `null_value` is None."""
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    result: Cell = getattr(value, kind)
    return result


def result_rows(table: result_pb2.ResultTable) -> list[list[Cell]]:
    """The rows of a result table as lists of Python values, in column order."""
    return [[cell(value) for value in row.values] for row in table.rows]


def result_frame(table: result_pb2.ResultTable) -> pd.DataFrame:
    """A result table as a DataFrame for `gr.Dataframe` (empty, with headers, when there are no rows).

    The frame has object dtype so integers stay integers and NULL stays None (pandas would turn an
    integer column with a NULL into floats with NaN).
    """
    return pd.DataFrame(result_rows(table), columns=[column.name for column in table.columns], dtype=object)


def _is(type_name: str, prefixes: tuple[str, ...]) -> bool:
    return type_name.upper().startswith(prefixes)


@dataclass(frozen=True)
class ChartSpec:
    """A simple chart of a two-column result: one label column, one numeric column.

    Attributes:
        kind: `line` when the label is a date or timestamp, else `bar`.
        x: The label column.
        y: The numeric column.
        frame: The data, with the x column parsed as datetimes for line charts.
    """

    kind: Literal["bar", "line"]
    x: str
    y: str
    frame: pd.DataFrame


def chart_spec(table: result_pb2.ResultTable) -> ChartSpec | None:
    """A chart for the result, or None when it is not exactly one label plus one numeric column."""
    if len(table.columns) != 2 or not 0 < len(table.rows) <= _CHART_MAX_ROWS:
        return None
    label, number = table.columns
    if not _is(number.type, _NUMERIC_PREFIXES) or not _is(label.type, _LABEL_PREFIXES):
        return None
    frame = result_frame(table)
    frame[number.name] = pd.to_numeric(frame[number.name])
    if _is(label.type, _DATE_PREFIXES):
        frame[label.name] = pd.to_datetime(frame[label.name])
        return ChartSpec("line", label.name, number.name, frame)
    frame[label.name] = frame[label.name].astype(str)  # booleans and NULL labels become text
    return ChartSpec("bar", label.name, number.name, frame)


def _seconds(duration: Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def _ms(duration: Duration) -> str:
    return f"{_seconds(duration) * 1000:.0f} ms"


def plan_json(plan: plan_pb2.Plan | None) -> str:
    """The plan as indented JSON, or empty text for raw SQL runs."""
    if plan is None or plan.ByteSize() == 0:
        return ""
    return json_format.MessageToJson(plan, indent=2)


def run_stats_markdown(run: run_pb2.Run, result: result_pb2.ResultTable | None) -> str:
    """A Markdown table of the run's id, state, timings, rows, runner mode and truncation."""
    stats = run.stats
    rows: list[tuple[str, str]] = [
        ("Run id", f"`{run.run_id}`"),
        ("State", run_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_")),
        ("Planner", run.planner or "-"),
        ("Runner mode", run.runner_mode or "-"),
        ("Planning", _ms(stats.planning_duration)),
        ("Validation", _ms(stats.validation_duration)),
        ("Queue", _ms(stats.queue_duration)),
        ("Sandbox", _ms(stats.sandbox_duration)),
        ("Query", _ms(stats.query_duration)),
        ("Rows returned", str(result.row_count if result is not None else 0)),
        ("Rows produced", str(stats.rows_produced)),
        ("Truncated", "yes" if result is not None and result.truncated else "no"),
        ("Thread", f"`{run.thread_id}`" if run.thread_id else "-"),
    ]
    return "| Run | |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)


def run_error_markdown(error: run_pb2.RunError) -> str:
    """The run's error as Markdown (reason, message, field violations), or empty when there is none."""
    if not error.reason and not error.message:
        return ""
    lines = [f"**{error.reason or 'ERROR'}**: {error.message}"]
    lines += [f"- `{violation.field}`: {violation.description}" for violation in error.violations]
    return "\n".join(lines)


@dataclass
class RunView:
    """Accumulates one Ask stream into chat messages, a result, and details for the panel.

    Feed events in order with `apply`; read `messages()` after each one to stream the chat.
    """

    stages: list[ChatMessage] = field(default_factory=list)
    last_event_time: float | None = None
    plan: plan_pb2.Plan | None = None
    sql: str = ""
    result: result_pb2.ResultTable | None = None
    run: run_pb2.Run | None = None

    def apply(self, event: run_pb2.RunEvent) -> None:
        """Record one event: close the previous stage, open a titled message for this one."""
        payload = event.WhichOneof("payload")
        if payload == "plan":
            self.plan = event.plan
        elif payload == "sql":
            self.sql = event.sql
        elif payload == "result":
            self.result = event.result
        elif payload == "run":
            self.run = event.run
            self.plan = event.run.plan if event.run.HasField("plan") else self.plan
            self.sql = event.run.sql or self.sql
            self.result = event.run.result if event.run.HasField("result") else self.result
        now = event.event_time.seconds + event.event_time.nanos / 1e9 if event.HasField("event_time") else None
        if self.stages and self.stages[-1]["metadata"]["status"] == "pending":
            finished = self.stages[-1]["metadata"]
            finished["status"] = "done"
            if now is not None and self.last_event_time is not None:
                finished["duration"] = round(max(now - self.last_event_time, 0.0), 3)
        self.last_event_time = now
        if event.stage == run_pb2.STAGE_DONE:
            return  # the final answer message closes the turn instead of a "Done" thought
        title = STAGE_TITLES.get(event.stage, "Progress")
        content = event.message or title
        if payload == "sql":
            content += f"\n```sql\n{event.sql}\n```"
        self.stages.append({"role": "assistant", "content": content,
                            "metadata": {"title": title, "status": "pending"}})

    @property
    def finished(self) -> bool:
        """True once the STAGE_DONE event arrived."""
        return self.run is not None

    def answer(self) -> str:
        """The plain answer message of the turn (empty until the run is finished)."""
        if self.run is None:
            return ""
        if self.run.state == run_pb2.RUN_STATE_SUCCEEDED:
            count = self.result.row_count if self.result is not None else 0
            text = f"{count} row{'s' if count != 1 else ''}"
            if self.result is not None and self.result.truncated:
                text += f" (truncated at {count}; the query produced more)"
            explanation = self.plan.explanation if self.plan is not None else ""
            return f"{explanation}\n\n{text}: see the table below." if explanation else f"{text}: see the table below."
        outcome = _OUTCOMES.get(self.run.state, "ended without a result")
        return f"The run {outcome}. " + (run_error_markdown(self.run.error) or "No error details were given.")

    def messages(self) -> list[ChatMessage]:
        """This turn's assistant messages: the titled stages, then the answer once finished."""
        out = [dict(message, metadata=dict(message["metadata"])) for message in self.stages]
        if self.finished:
            out.append({"role": "assistant", "content": self.answer()})
        return out

    def details(self) -> tuple[str, str, str, str]:
        """Plan JSON, SQL, run stats Markdown and error Markdown for the details panel."""
        stats = run_stats_markdown(self.run, self.result) if self.run is not None else ""
        error = run_error_markdown(self.run.error) if self.run is not None else ""
        return plan_json(self.plan), self.sql, stats, error
