"""Turn RunEvents into what the UI shows: titled stage messages, then one answer message holding the
result table, a chart and details (see `gradio_ui.answer`).

Pure functions and one small accumulator (`RunView`); nothing here talks to the network or to Gradio
components, so it is easy to test and to reuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration

from csv_analyst.v1 import plan_pb2, result_pb2, run_pb2, value_pb2
from gradio_ui.answer import details_section, result_sections, share_href
from gradio_ui.format import Cell

ChatMessage = dict[str, Any]

STAGE_TITLES: dict[int, str] = {
    run_pb2.STAGE_PLANNING: "Planning",
    run_pb2.STAGE_VALIDATING: "Validating",
    run_pb2.STAGE_QUEUED: "Queued",
    run_pb2.STAGE_EXECUTING: "Executing",
    run_pb2.STAGE_RESULT: "Result",
    run_pb2.STAGE_DONE: "Done",
}

# What to try next, by RunError.reason, where a refinement fits.
_REFINEMENTS: dict[str, str] = {
    "RUNNER_TIMEOUT": "Try a narrower question: add a filter (a date range, one category) or aggregate "
                      "(totals per group instead of every row).",
    "RUNNER_RESOURCE_EXCEEDED": "Try a narrower question: pick fewer columns, add a filter or aggregate.",
    "PLANNER_ERROR": "Try naming the column and table you mean, such as \"total amount per region in orders\".",
    "VALIDATION_ERROR": "Check the names against the dataset's columns listed above.",
    "QUERY_ERROR": "Check the columns' types: compare numbers with numbers and dates with dates.",
    "PLANNER_UNAVAILABLE": "The planner is busy; ask again in a moment.",
    "RUNNER_UNAVAILABLE": "The sandbox service is unreachable; ask again in a moment.",
}
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


def query_type_name(run: run_pb2.Run) -> str:
    """`plan`, `sql` or `python` (what the run executed); empty when the run does not say."""
    if run.query_type == run_pb2.QUERY_TYPE_UNSPECIFIED:
        return ""
    return run_pb2.QueryType.Name(run.query_type).removeprefix("QUERY_TYPE_").lower()


def _seconds(duration: Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def _ms(duration: Duration) -> str:
    return f"{_seconds(duration) * 1000:.0f} ms"


def plan_json(plan: plan_pb2.Plan | None) -> str:
    """The plan as indented JSON, or empty text for raw SQL runs."""
    if plan is None or plan.ByteSize() == 0:
        return ""
    return json_format.MessageToJson(plan, indent=2, preserving_proto_field_name=True)


def run_stats_markdown(run: run_pb2.Run, result: result_pb2.ResultTable | None) -> str:
    """A Markdown table of the run's id, state, timings, rows, runner mode and truncation."""
    stats = run.stats
    rows: list[tuple[str, str]] = [
        ("Run id", f"`{run.run_id}`"),
        ("State", run_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_")),
        ("Planner", run.planner or "-"),
        ("Runner mode", run.runner_mode or "-"),
        ("Cache", f"repeats run `{run.cached_from_run_id}` (same query, same files)" if run.cache_hit else "-"),
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
    if error.reason in _REFINEMENTS:
        lines += ["", _REFINEMENTS[error.reason]]
    return "\n".join(lines)


@dataclass
class RunView:
    """Accumulates one Ask stream into chat messages, a result, and details for the panel.

    Feed events in order with `apply` (or a finished run with `finish`); read `messages()` after
    each one to stream the chat.
    """

    stages: list[ChatMessage] = field(default_factory=list)
    last_event_time: float | None = None
    first_event_time: float | None = None
    plan: plan_pb2.Plan | None = None
    sql: str = ""
    result: result_pb2.ResultTable | None = None
    run: run_pb2.Run | None = None
    chart: bytes | None = None
    _answer: str | None = None

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
            self.take_run(event.run)
        now = event.event_time.seconds + event.event_time.nanos / 1e9 if event.HasField("event_time") else None
        if self.first_event_time is None:
            self.first_event_time = now
        self._close_stage(now)
        self.last_event_time = now
        title = STAGE_TITLES.get(event.stage, "Progress")
        content = event.message or title
        if payload == "sql":
            content += f"\n```sql\n{event.sql}\n```"
        status = "pending"
        if event.stage == run_pb2.STAGE_DONE:
            status = "done"
            if now is not None and self.first_event_time is not None:
                content += f" ({max(now - self.first_event_time, 0.0):.1f} s in all)"
        self.stages.append({"role": "assistant", "content": content, "metadata": {"title": title, "status": status}})

    def finish(self, run: run_pb2.Run) -> None:
        """Record a run that finished without streaming its events (SubmitRun)."""
        self.take_run(run)
        self._close_stage(None)
        state = run_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_").lower()
        self.stages.append({"role": "assistant", "content": f"The run {state}.",
                            "metadata": {"title": STAGE_TITLES[run_pb2.STAGE_DONE], "status": "done"}})

    def take_run(self, run: run_pb2.Run) -> None:
        """Use this run's state, plan, SQL and result (kept from earlier events where it has none)."""
        self.run = run
        self.plan = run.plan if run.HasField("plan") else self.plan
        self.sql = run.sql or self.sql
        self.result = run.result if run.HasField("result") else self.result
        self._answer = None

    def _close_stage(self, now: float | None) -> None:
        if self.stages and self.stages[-1]["metadata"]["status"] == "pending":
            finished = self.stages[-1]["metadata"]
            finished["status"] = "done"
            if now is not None and self.last_event_time is not None:
                finished["duration"] = round(max(now - self.last_event_time, 0.0), 3)

    @property
    def finished(self) -> bool:
        """True once the final run arrived (STAGE_DONE, or `finish`)."""
        return self.run is not None

    def summary(self) -> str:
        """The answer's first lines: the plan's explanation and the row count, or what went wrong."""
        if self.run is None:
            return ""
        if self.run.state == run_pb2.RUN_STATE_SUCCEEDED:
            count = self.result.row_count if self.result is not None else 0
            text = f"{count:,} row{'s' if count != 1 else ''}"
            if self.result is not None and self.result.truncated:
                text += f" (truncated at {count:,}; the query produced more)"
            explanation = self.plan.explanation if self.plan is not None else ""
            return f"{explanation}\n\n**{text}**" if explanation else f"**{text}**"
        outcome = _OUTCOMES.get(self.run.state, "ended without a result")
        return f"The run {outcome}. " + (run_error_markdown(self.run.error) or "No error details were given.")

    def answer(self) -> str:
        """The whole answer message (empty until finished): summary, table, chart, details, link."""
        if self.run is None:
            return ""
        if self._answer is None:
            parts = [self.summary()]
            if self.run.state == run_pb2.RUN_STATE_SUCCEEDED and self.result is not None and self.result.columns:
                sections, self.chart = result_sections(self.result, self.plan, result_rows(self.result))
                parts.append(sections)
            plan, sql, stats, _ = self.details()
            parts.append(details_section(stats, "", plan, sql, query_type_name(self.run), self.run.python_code))
            if self.run.run_id:
                parts.append(f'<a class="share-link" href="{share_href(self.run.run_id)}">Link to this run</a>')
            self._answer = "\n\n".join(parts)
        return self._answer

    def messages(self) -> list[ChatMessage]:
        """This turn's assistant messages: the titled stages, then the answer once finished.

        Before the first event there is one pending "Asking" message, so the question never sits
        alone while the service starts planning.
        """
        if not self.stages and not self.finished:
            return [{"role": "assistant", "content": "Sending the question to the analyst…",
                     "metadata": {"title": "Asking", "status": "pending"}}]
        out = [dict(message, metadata=dict(message["metadata"])) for message in self.stages]
        if self.finished:
            out.append({"role": "assistant", "content": self.answer()})
        return out

    def details(self) -> tuple[str, str, str, str]:
        """Plan JSON, SQL, run stats Markdown and error Markdown for the details panel."""
        stats = run_stats_markdown(self.run, self.result) if self.run is not None else ""
        error = run_error_markdown(self.run.error) if self.run is not None else ""
        return plan_json(self.plan), self.sql, stats, error
