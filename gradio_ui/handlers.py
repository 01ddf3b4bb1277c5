"""What each control of the chat UI does, as plain functions over the analyst client.

Every handler answers with plain Markdown in the page (the chat, the upload report, the plan
status) rather than raising `gr.Error`: a raised error turns every output of the event into a red
"Error" badge, which hides the conversation the user was reading.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from google.protobuf import json_format

from csv_analyst.v1 import capsule_pb2, plan_pb2, run_pb2
from gradio_ui.answer import MAX_QUESTION_CHARS, SHOWN_ROWS, table_html
from gradio_ui.client import AnalystClient, AnalystClientError
from gradio_ui.format import column_formats
from gradio_ui.render import ChatMessage, RunView, plan_json, result_rows
from gradio_ui.report import dataset_summary, ingestion_report, suggested_prompts

MAX_PROMPT_BUTTONS = 12
UPLOAD_PREFIX = "upload-"
NO_ANSWER_FOOTER = "Runner mode and dataset version of the current answer appear here."

# Outputs of an ask, in order: chatbot, question box, thread id, then the Turn's (plan editor,
# capsule, CSV and chart downloads, footer, the readings of a clarification and one button each).
AskOutputs = tuple[Any, ...]


@dataclass(frozen=True)
class Turn:
    """What the page shows for the current answer besides the chat."""

    plan: str
    capsule: str | None
    footer: str
    csv: str | None = None
    chart: str | None = None
    # A clarification's readings: (one-line explanation, serialized Plan) each.
    readings: tuple[tuple[str, bytes], ...] = ()
    # The pager of a result longer than one page: its state and its first page (None: no pager).
    pager: Pager | None = None

    def updates(self) -> tuple[Any, ...]:
        """Values for the plan editor, the capsule, CSV and chart download buttons, the footer, the
        readings (state), one button per reading, then the pager's state, page, and buttons."""
        buttons = [gr.update(value=f"Run reading {i + 1}: {self.readings[i][0]}", visible=True)
                   if i < len(self.readings) else gr.update(visible=False) for i in range(MAX_READINGS)]
        return (self.plan, gr.update(value=self.capsule, visible=self.capsule is not None),
                gr.update(value=self.csv, visible=self.csv is not None),
                gr.update(value=self.chart, visible=self.chart is not None), self.footer,
                list(self.readings), *buttons, *pager_updates(self.pager))


@dataclass(frozen=True)
class Pager:
    """Where the pager of a large result stands: the run, the first row shown, the total, the plan
    (for the columns' formats) and the page's HTML."""

    run_id: str
    offset: int
    total: int
    plan: bytes = b""
    html: str = ""

    def state(self) -> dict[str, Any]:
        """The part kept in the page's state between clicks."""
        return {"run_id": self.run_id, "offset": self.offset, "total": self.total, "plan": self.plan}


def pager_updates(pager: Pager | None) -> tuple[Any, ...]:
    """The pager's state, its page (HTML) and its Previous/Next buttons; all hidden without a pager."""
    if pager is None:
        hidden = gr.update(visible=False)
        return (None, gr.update(value="", visible=False), hidden, hidden)
    return (pager.state(), gr.update(value=pager.html, visible=True),
            gr.update(visible=True, interactive=pager.offset > 0),
            gr.update(visible=True, interactive=pager.offset + SHOWN_ROWS < pager.total))


MAX_READINGS = 3  # Clarification.options holds at most three readings
EMPTY_TURN = Turn("", None, NO_ANSWER_FOOTER)
PAGER_OUTPUTS = 4
TURN_OUTPUTS = 6 + MAX_READINGS + PAGER_OUTPUTS
# Outputs of a dataset's view: its summary, the delete button, one button per suggested question.
VIEW_OUTPUTS = 2 + MAX_PROMPT_BUTTONS


def footer_markdown(run: run_pb2.Run) -> str:
    """The footer for an answer: runner mode, dataset version and run id."""
    cached = f" (repeats run `{run.cached_from_run_id}`)" if run.cache_hit else ""
    return (f"Runner mode: **{run.runner_mode or 'not started'}**{cached} · Dataset `{run.dataset_id}` version "
            f"`{run.dataset_version_hash[:12] or '-'}` · Run `{run.run_id}`")


def _plain(text: str) -> ChatMessage:
    return {"role": "assistant", "content": text}


def _error_text(error: AnalystClientError) -> str:
    return f"**{error.reason}**: {error.message}"


class Handlers:
    """The UI's event handlers, sharing one client (gRPC channels are thread-safe).

    Args:
        client: The analyst client.
        downloads: Where capsule JSON files for the download button are written.
    """

    def __init__(self, client: AnalystClient, downloads: Path | None = None) -> None:
        self.client = client
        self.downloads = downloads or Path(tempfile.mkdtemp(prefix="csv-analyst-ui-"))

    # Datasets and uploads

    def dataset_choices(self) -> list[tuple[str, str]]:
        """(label, dataset id) for every dataset, uploads included."""
        return [(f"{dataset.title} ({dataset.dataset_id})", dataset.dataset_id)
                for dataset in self.client.list_datasets()]

    def dataset_view(self, dataset_id: str | None) -> list[Any]:
        """The summary, the delete button (shown for uploads only) and the suggested-question buttons
        of a dataset."""
        prompts: list[str] = []
        summary = ""
        if dataset_id:
            try:
                dataset = self.client.get_dataset(dataset_id)
            except AnalystClientError as error:
                summary = _error_text(error)
            else:
                prompts = suggested_prompts(dataset, MAX_PROMPT_BUTTONS)
                summary = dataset_summary(dataset)
        buttons = [gr.update(value=prompts[i], visible=True) if i < len(prompts) else gr.update(visible=False)
                   for i in range(MAX_PROMPT_BUTTONS)]
        deletable = bool(dataset_id) and str(dataset_id).startswith(UPLOAD_PREFIX)
        return [summary, gr.update(visible=deletable), *buttons]

    def delete(self, dataset_id: str | None) -> list[Any]:
        """Delete the selected uploaded dataset, then select the first remaining one.

        Returns:
            The upload report (what happened), the dataset dropdown, the dataset view and a cleared
            conversation.
        """
        unchanged = [gr.update()] * (VIEW_OUTPUTS + 3 + TURN_OUTPUTS)
        if not dataset_id:
            return ["Pick an uploaded dataset to delete.", gr.update(), *unchanged]
        try:
            deleted = self.client.delete_dataset(dataset_id)
            choices = self.dataset_choices()
        except AnalystClientError as error:
            return [f"**Could not delete** `{dataset_id}`: {_error_text(error)}", gr.update(), *unchanged]
        selected = choices[0][1] if choices else None
        report = (f"**Deleted** `{deleted.dataset_id}` ({deleted.title}). Earlier answers about it keep their "
                  "capsules and links.")
        return [report, gr.update(choices=choices, value=selected), *self.dataset_view(selected), *self.cleared()]

    def cleared(self) -> AskOutputs:
        """A new conversation: no messages, no thread, no current answer."""
        return ([], "", "", *EMPTY_TURN.updates())

    def upload(self, files: list[str] | None) -> list[Any]:
        """Upload the chosen files; report the tables and select the new dataset.

        Returns:
            The report, the dataset dropdown update, the dataset view, a cleared conversation and an
            emptied file control (ready for the next upload).
        """
        unchanged = [gr.update()] * (VIEW_OUTPUTS + 3 + TURN_OUTPUTS)
        if not files:
            return [gr.update(), gr.update(), *unchanged, None]
        paths = [Path(file) for file in files]
        try:
            dataset = self.client.upload(paths, [_original_name(path) for path in paths])
            choices = self.dataset_choices()
        except AnalystClientError as error:
            report = f"**Could not upload** {', '.join(_original_name(p) for p in paths)}: {_error_text(error)}"
            return [report, gr.update(), *unchanged, None]
        dropdown = gr.update(choices=choices, value=dataset.dataset_id)
        return [ingestion_report(dataset), dropdown, *self.dataset_view(dataset.dataset_id), *self.cleared(), None]

    # Asking

    def ask(self, question: str, dataset_id: str | None, history: list[ChatMessage] | None,
            thread_id: str) -> Iterator[AskOutputs]:
        """Ask the question and stream the turn: stages first, then the answer with its table and chart."""
        question = (question or "").strip()
        history = list(history or [])
        keep = (gr.update(),) * TURN_OUTPUTS
        if not question:
            yield (history, "", thread_id, *keep)
            return
        if len(question) > MAX_QUESTION_CHARS:
            history += [{"role": "user", "content": question[:200] + "…"},
                        _plain(f"This question is {len(question):,} characters long; questions are limited to "
                               f"{MAX_QUESTION_CHARS:,}. Shorten it and ask again.")]
            yield (history, question[:MAX_QUESTION_CHARS], thread_id, *keep)
            return
        history.append({"role": "user", "content": question})
        if not dataset_id:
            yield ([*history, _plain("Pick a dataset (or upload CSV files) first.")], question, thread_id, *keep)
            return
        view = RunView()
        yield (history + view.messages(), "", thread_id, *keep)
        try:
            for event in self.client.ask(dataset_id, question, thread_id):
                view.apply(event)
                if not view.finished:
                    yield (history + view.messages(), "", thread_id, *keep)
        except AnalystClientError as error:
            failed = view.messages() if view.stages else []
            yield ([*history, *failed, _plain(f"The analyst service refused the question. {_error_text(error)}")],
                   question, thread_id, *keep)
            return
        if view.run is not None and view.run.thread_id:
            thread_id = view.run.thread_id
        yield (history + view.messages(), "", thread_id, *self.turn(view).updates())

    def turn(self, view: RunView) -> Turn:
        """The plan, capsule download and footer of a finished answer."""
        if view.run is None:
            return EMPTY_TURN
        readings = tuple((o.explanation, o.plan.SerializeToString())
                         for o in view.run.clarification.options[:MAX_READINGS])
        return Turn(plan_json(view.plan), self._capsule_file(view.run.run_id), footer_markdown(view.run),
                    self._csv_file(view.run), self._chart_file(view), readings, self._pager(view))

    def choose(self, index: int, readings: list[tuple[str, bytes]] | None, dataset_id: str | None,
               history: list[ChatMessage] | None, thread_id: str) -> AskOutputs:
        """Run reading `index` of the last clarification (SubmitRun with its plan, in the thread) as the
        next answer; the thread's next question is planned knowing the choice."""
        history = list(history or [])
        keep = (gr.update(),) * TURN_OUTPUTS
        if not dataset_id or not readings or index >= len(readings):
            return ([*history, _plain("That reading is no longer offered; ask the question again.")], "", thread_id,
                    *keep)
        explanation, plan_bytes = readings[index]
        history.append({"role": "user", "content": f"Reading {index + 1}: {explanation}"})
        try:
            run = self.client.submit_plan(dataset_id, plan_pb2.Plan.FromString(plan_bytes), thread_id)
        except AnalystClientError as error:
            return ([*history, _plain(f"The analyst service refused the reading. {_error_text(error)}")], "",
                    thread_id, *keep)
        view = RunView()
        view.finish(run)
        return (history + view.messages(), "", thread_id, *self.turn(view).updates())

    # Paging a large result

    def _pager(self, view: RunView) -> Pager | None:
        """The first page of a result longer than one page, read through ReadResult; None otherwise."""
        if view.run is None or view.run.state != run_pb2.RUN_STATE_SUCCEEDED or view.result is None:
            return None
        # A shared run's stored result may be a preview of fewer rows than the run produced.
        if max(view.result.row_count, view.run.stats.rows_produced) <= SHOWN_ROWS:
            return None
        plan = view.plan.SerializeToString() if view.plan is not None else b""
        return self._read_page(view.run.run_id, 0, plan)

    def _read_page(self, run_id: str, offset: int, plan: bytes) -> Pager | None:
        try:
            response = self.client.read_result(run_id, offset, SHOWN_ROWS)
        except AnalystClientError:
            return None  # the answer stands without its pager; the CSV download has every row
        return Pager(run_id, response.offset, response.total_row_count, plan, page_html(response, plan))

    def page(self, step: int, state: dict[str, Any] | None) -> tuple[Any, ...]:
        """Show the previous (step -1) or next (step 1) page of the current answer's result."""
        if not state:
            return pager_updates(None)
        offset = min(max(0, int(state["offset"]) + step * SHOWN_ROWS), max(0, int(state["total"]) - 1))
        pager = self._read_page(str(state["run_id"]), offset, bytes(state.get("plan") or b""))
        if pager is None:
            return (state, gr.update(value="The page could not be read; download the CSV for every row."),
                    gr.update(), gr.update())
        return pager_updates(pager)

    def _chart_file(self, view: RunView) -> str | None:
        view.answer()  # draws the chart, once
        if view.chart is None or view.run is None:
            return None
        path = self.downloads / f"chart-{view.run.run_id}.png"
        path.write_bytes(view.chart)
        return str(path)

    def _csv_file(self, run: run_pb2.Run) -> str | None:
        if run.state != run_pb2.RUN_STATE_SUCCEEDED:
            return None
        path = self.downloads / f"result-{run.run_id}.csv"
        try:
            self.client.export_csv(run.run_id, path)
        except AnalystClientError:
            return None  # the answer stands without its download
        return str(path)

    def _capsule_file(self, run_id: str) -> str | None:
        try:
            capsule = self.client.get_capsule(run_id)
        except AnalystClientError:
            return None  # the answer stands without its download; the link still opens the run
        return self.write_capsule(capsule)

    def write_capsule(self, capsule: capsule_pb2.Capsule) -> str:
        """Write the capsule as JSON (proto field names) for the download button; returns its path."""
        path = self.downloads / f"capsule-{capsule.run.run_id}.json"
        path.write_text(json_format.MessageToJson(capsule, indent=2, preserving_proto_field_name=True),
                        encoding="utf-8")
        return str(path)

    # Editing the plan

    def run_plan(self, plan_text: str, dataset_id: str | None, history: list[ChatMessage] | None,
                 thread_id: str) -> tuple[Any, ...]:
        """Run the edited plan through SubmitRun and add its answer to the conversation.

        Returns:
            Chatbot, plan status, then the current-answer outputs (plan editor, capsule, footer).
        """
        history = list(history or [])
        keep = (gr.update(),) * TURN_OUTPUTS
        if not dataset_id:
            return (history, "Pick a dataset first.", *keep)
        plan = plan_pb2.Plan()
        try:
            json_format.Parse(plan_text or "{}", plan)
        except (json_format.ParseError, json.JSONDecodeError) as error:
            return (history, f"**The plan is not valid JSON for a Plan**: {error}", *keep)
        if not plan.dataset_id:
            plan.dataset_id = dataset_id
        try:
            run = self.client.submit_plan(dataset_id, plan)
        except AnalystClientError as error:
            return (history, _error_text(error), *keep)
        view = RunView()
        view.finish(run)
        history += [{"role": "user", "content": "Run the edited plan"}, *view.messages()]
        status = "The edited plan ran." if run.state == run_pb2.RUN_STATE_SUCCEEDED else view.summary()
        turn = self.turn(view)
        # Keep the user's text in the editor when the plan was refused, so they can fix it.
        plan_value = turn.plan if run.state == run_pb2.RUN_STATE_SUCCEEDED else plan_text
        return (history, status, plan_value, *turn.updates()[1:])

    # Shared links

    def open_shared(self, run_id: str) -> tuple[str, list[ChatMessage], Turn] | None:
        """The dataset, conversation and answer of a shared run (`?run=RUN_ID`), or None if it is unknown."""
        try:
            capsule = self.client.get_capsule(run_id)
        except AnalystClientError:
            return None
        view = RunView()
        for event in capsule.events:
            view.apply(event)
        if not view.finished:
            view.finish(capsule.run)
        else:
            view.take_run(capsule.run)  # the stored events may leave the result to the capsule's run
        question = capsule.run.question or "Run a plan"
        turn = Turn(plan_json(view.plan), self.write_capsule(capsule), footer_markdown(capsule.run),
                    self._csv_file(capsule.run), self._chart_file(view), pager=self._pager(view))
        return capsule.run.dataset_id, [{"role": "user", "content": question}, *view.messages()], turn


def page_html(response: Any, plan: bytes) -> str:
    """One page of a result: which rows of how many, then the formatted table."""
    rows = result_rows(response.result)
    first, total = response.offset + 1, response.total_row_count
    label = f"Rows {first:,}–{response.offset + len(rows):,} of {total:,}" if rows else f"No rows (of {total:,})"
    formats = column_formats(response.result, plan_pb2.Plan.FromString(plan) if plan else None, rows)
    return f'<p class="page-label">{label}</p>\n{table_html(formats, rows)}'


def _original_name(path: Path) -> str:
    """The name the user's file had: Gradio keeps it as the base name inside a per-upload folder."""
    return path.name
