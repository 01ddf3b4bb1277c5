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
from gradio_ui.answer import MAX_QUESTION_CHARS
from gradio_ui.client import AnalystClient, AnalystClientError
from gradio_ui.render import ChatMessage, RunView, plan_json
from gradio_ui.report import dataset_summary, ingestion_report, suggested_prompts

MAX_PROMPT_BUTTONS = 12
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

    def updates(self) -> tuple[Any, ...]:
        """Values for the plan editor, the capsule, CSV and chart download buttons, the footer, the
        readings (state) and one button per reading."""
        buttons = [gr.update(value=f"Run reading {i + 1}: {self.readings[i][0]}", visible=True)
                   if i < len(self.readings) else gr.update(visible=False) for i in range(MAX_READINGS)]
        return (self.plan, gr.update(value=self.capsule, visible=self.capsule is not None),
                gr.update(value=self.csv, visible=self.csv is not None),
                gr.update(value=self.chart, visible=self.chart is not None), self.footer,
                list(self.readings), *buttons)


MAX_READINGS = 3  # Clarification.options holds at most three readings
EMPTY_TURN = Turn("", None, NO_ANSWER_FOOTER)
TURN_OUTPUTS = 6 + MAX_READINGS


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
        """The summary and the suggested-question buttons of a dataset."""
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
        return [summary, *buttons]

    def cleared(self) -> AskOutputs:
        """A new conversation: no messages, no thread, no current answer."""
        return ([], "", "", *EMPTY_TURN.updates())

    def upload(self, files: list[str] | None) -> list[Any]:
        """Upload the chosen files; report the tables and select the new dataset.

        Returns:
            The report, the dataset dropdown update, the dataset view, a cleared conversation and an
            emptied file control (ready for the next upload).
        """
        unchanged = [gr.update()] * (MAX_PROMPT_BUTTONS + 1 + 3 + TURN_OUTPUTS)
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
                    self._csv_file(view.run), self._chart_file(view), readings)

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
                    self._csv_file(capsule.run), self._chart_file(view))
        return capsule.run.dataset_id, [{"role": "user", "content": question}, *view.messages()], turn


def _original_name(path: Path) -> str:
    """The name the user's file had: Gradio keeps it as the base name inside a per-upload folder."""
    return path.name
