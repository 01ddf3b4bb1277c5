"""The chat UI: a Gradio Blocks app that is a pure gRPC client of the analyst service.

Pick a dataset, click a suggested prompt or type a question, and watch the run's stages stream in
(planning, validating, queued, executing, result, done); the result table, a chart and a details
panel (plan JSON, SQL, run stats, error) follow. Follow-up questions continue the same thread. When
the planner asks instead of answering, its readings appear as buttons; clicking one runs it.

Run it against a running analyst service with
`python -m gradio_ui.app [ANALYST_TARGET] [--host HOST] [--port PORT]` (the target defaults to
`$CSV_ANALYST_TARGET` or 127.0.0.1:50051), or let `csv-analyst serve` start it.
"""

from __future__ import annotations

import os

# Gradio reads this when a Blocks is created; set it before anything imports gradio.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import argparse  # noqa: E402
import signal  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from gradio_ui.client import AnalystClient, AnalystClientError  # noqa: E402
from gradio_ui.render import ChatMessage, RunView, chart_spec, result_frame  # noqa: E402
from csv_analyst.v1 import plan_pb2, run_pb2  # noqa: E402

MAX_PROMPT_BUTTONS = 12
MAX_READINGS = 3  # Clarification.options holds at most three readings
DEFAULT_TARGET = "127.0.0.1:50051"
CSS = ".prompt-button { flex-grow: 0 !important; min-width: fit-content !important; }"

# Outputs of an ask, in order: chatbot, question box, thread id, table, bar, line, plan, sql, stats, error,
# the readings offered (state), then one button per reading.
AskOutputs = tuple[Any, ...]
# A clarification's readings kept in the session: (one-line explanation, serialized Plan) each.
Readings = list[tuple[str, bytes]]


def _reading_updates(view: RunView) -> tuple[Any, ...]:
    """The readings state and the reading buttons: one visible button per reading of a clarification."""
    options = view.run.clarification.options if view.run is not None else []
    readings: Readings = [(o.explanation, o.plan.SerializeToString()) for o in options][:MAX_READINGS]
    buttons = [gr.update(value=f"{i + 1}. {readings[i][0]}", visible=True) if i < len(readings)
               else gr.update(visible=False) for i in range(MAX_READINGS)]
    return (readings, *buttons)


def _result_updates(view: RunView) -> tuple[Any, Any, Any]:
    """Updates for the result table, the bar chart and the line chart."""
    if view.result is None:
        return gr.update(value=None, label="Result"), gr.update(visible=False), gr.update(visible=False)
    rows = view.result.row_count
    label = f"Result: {rows} row{'s' if rows != 1 else ''}" + (" (truncated)" if view.result.truncated else "")
    table = gr.update(value=result_frame(view.result), label=label)
    spec = chart_spec(view.result)
    if spec is None:
        return table, gr.update(visible=False), gr.update(visible=False)
    title = f"{spec.y} by {spec.x}"
    if spec.kind == "line":
        line = gr.update(value=spec.frame, x=spec.x, y=spec.y, title=title, visible=True)
        return table, gr.update(visible=False), line
    # Keep the result's own order (often "top N" by value) instead of Vega's alphabetical axis.
    bar = gr.update(value=spec.frame, x=spec.x, y=spec.y, title=title, sort=list(spec.frame[spec.x]), visible=True)
    return table, bar, gr.update(visible=False)


def _details(view: RunView) -> tuple[Any, str, str, str]:
    """Values for the plan (JSON component: None when there is no plan), SQL, stats and error."""
    plan, sql, stats, error = view.details()
    return plan or None, sql, stats, error


def _dataset_summary(description: str, tables: list[tuple[str, list[str]]]) -> str:
    lines = [description, ""] + [f"- **{name}**: {', '.join(columns)}" for name, columns in tables]
    return "\n".join(lines)


def build_demo(client: AnalystClient) -> gr.Blocks:
    """Build the chat app around a client of the analyst service.

    Args:
        client: The gRPC client; shared by every browser session (gRPC channels are thread-safe).

    Returns:
        The Blocks app, not yet launched.
    """

    def load_datasets() -> Any:
        try:
            datasets = client.list_datasets()
        except AnalystClientError as error:
            raise gr.Error(str(error), title="Could not list datasets") from None
        choices = [(f"{dataset.title} ({dataset.dataset_id})", dataset.dataset_id) for dataset in datasets]
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    def select_dataset(dataset_id: str | None) -> list[Any]:
        """Show the dataset's description and prompts; start a new conversation."""
        prompts: list[str] = []
        summary = ""
        if dataset_id:
            try:
                dataset = client.get_dataset(dataset_id)
            except AnalystClientError as error:
                raise gr.Error(str(error), title="Could not load the dataset") from None
            prompts = list(dataset.prompts)[:MAX_PROMPT_BUTTONS]
            summary = _dataset_summary(dataset.description,
                                       [(table.name, [c.name for c in table.columns]) for table in dataset.tables])
        buttons = [gr.update(value=prompts[i], visible=True) if i < len(prompts) else gr.update(visible=False)
                   for i in range(MAX_PROMPT_BUTTONS)]
        return [summary, *buttons, *_cleared([], "")]

    def _cleared(history: list[ChatMessage], thread_id: str) -> AskOutputs:
        return (history, "", thread_id, *_result_updates(RunView()), *_details(RunView()),
                *_reading_updates(RunView()))

    def ask(question: str, dataset_id: str | None, history: list[ChatMessage] | None,
            thread_id: str) -> Iterator[AskOutputs]:
        """Ask the question; once the run is finished, offer a clarification's readings as buttons."""
        view = RunView()
        for outputs in _ask(question, dataset_id, history, thread_id, view):
            yield (*outputs, *_reading_updates(view))

    def choose(index: int, readings: Readings, dataset_id: str | None, history: list[ChatMessage] | None,
               thread_id: str) -> AskOutputs:
        """Run reading `index` of the last clarification (SubmitRun with its plan) and show its answer."""
        if not dataset_id or index >= len(readings or []):
            raise gr.Error("That reading is no longer offered; ask the question again.")
        explanation, plan_bytes = readings[index]
        history = [*(history or []), {"role": "user", "content": f"Reading {index + 1}: {explanation}"}]
        try:
            run = client.submit_plan(dataset_id, plan_pb2.Plan.FromString(plan_bytes))
        except AnalystClientError as error:
            raise gr.Error(str(error), title="The analyst service refused the reading") from None
        view = RunView()
        view.apply(run_pb2.RunEvent(stage=run_pb2.STAGE_DONE, run=run))
        return (history + view.messages(), "", thread_id, *_result_updates(view), *_details(view),
                *_reading_updates(view))

    def reading_handler(index: int) -> Any:
        def handler(readings: Readings, dataset_id: str | None, history: list[ChatMessage] | None,
                    thread_id: str) -> AskOutputs:
            return choose(index, readings, dataset_id, history, thread_id)
        return handler

    def _ask(question: str, dataset_id: str | None, history: list[ChatMessage] | None,
             thread_id: str, view: RunView) -> Iterator[AskOutputs]:
        """Ask the question and stream the chat, then the result, chart and details."""
        question = (question or "").strip()
        if not dataset_id:
            raise gr.Error("Pick a dataset first.")
        if not question:
            raise gr.Error("Type a question or click a suggested prompt.")
        history = [*(history or []), {"role": "user", "content": question}]
        yield _cleared(history, thread_id)[:-(MAX_READINGS + 1)]
        try:
            for event in client.ask(dataset_id, question, thread_id):
                view.apply(event)
                yield (history + view.messages(), "", thread_id, *_result_updates(view), *_details(view))
        except AnalystClientError as error:
            failed = history + view.messages() + [{"role": "assistant", "content": f"**{error.reason}**: {error.message}"}]
            yield (failed, question, thread_id, *_result_updates(view), *_details(view)[:3],
                   f"**{error.reason}**: {error.message}")
            raise gr.Error(str(error), title="The analyst service refused the question") from None
        if view.run is not None and view.run.thread_id:
            thread_id = view.run.thread_id
        yield (history + view.messages(), "", thread_id, *_result_updates(view), *_details(view))

    with gr.Blocks(title="CSV Analyst Chat") as demo:
        gr.Markdown("# CSV Analyst Chat\nAsk questions about a dataset; every answer is computed in a sandbox.")
        thread = gr.State("")
        dataset = gr.Dropdown(label="Dataset", choices=[], value=None, interactive=True, elem_id="dataset-dropdown")
        summary = gr.Markdown(elem_id="dataset-summary")
        gr.Markdown("**Suggested questions** (click to ask)")
        with gr.Row(elem_id="prompts"):
            prompt_buttons = [gr.Button(visible=False, size="sm", elem_classes="prompt-button",
                                        elem_id=f"prompt-{i}") for i in range(MAX_PROMPT_BUTTONS)]
        chatbot = gr.Chatbot(label="Conversation", height=420, elem_id="chat",
                             placeholder="Answers and their stages appear here.")
        readings = gr.State([])
        with gr.Row(elem_id="readings"):  # a clarification's readings; clicking one runs it
            reading_buttons = [gr.Button(visible=False, size="sm", elem_classes="prompt-button",
                                         elem_id=f"reading-{i}") for i in range(MAX_READINGS)]
        with gr.Row():
            question = gr.Textbox(placeholder="Ask a question about the dataset", show_label=False, scale=5,
                                  submit_btn=False, elem_id="question")
            send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask-button")
            new_chat = gr.Button("New conversation", scale=1)
        table = gr.Dataframe(label="Result", interactive=False, wrap=True, elem_id="result-table")
        with gr.Row():
            bar = gr.BarPlot(visible=False, y_lim=[0, None], x_label_angle=-30, elem_id="result-bar")
            line = gr.LinePlot(visible=False, elem_id="result-line")
        with gr.Accordion("Run details", open=False, elem_id="run-details"):
            error = gr.Markdown(elem_id="run-error")
            stats = gr.Markdown(elem_id="run-stats")
            sql = gr.Code(label="SQL", language="sql", interactive=False, elem_id="run-sql")
            plan = gr.JSON(label="Plan", open=True, elem_id="run-plan")

        ask_outputs = [chatbot, question, thread, table, bar, line, plan, sql, stats, error, readings,
                       *reading_buttons]
        ask_inputs = [dataset, chatbot, thread]
        demo.load(load_datasets, outputs=[dataset])
        dataset.change(select_dataset, inputs=[dataset], outputs=[summary, *prompt_buttons, *ask_outputs])
        new_chat.click(lambda: _cleared([], ""), outputs=ask_outputs)
        for source in (question.submit, send.click):
            source(ask, inputs=[question, *ask_inputs], outputs=ask_outputs)
        for button in prompt_buttons:
            button.click(ask, inputs=[button, *ask_inputs], outputs=ask_outputs)
        for index, button in enumerate(reading_buttons):
            button.click(reading_handler(index), inputs=[readings, *ask_inputs], outputs=ask_outputs)
    return demo


@dataclass
class RunningUI:
    """A launched UI and the client it owns; `close()` stops the web server and the channel."""

    demo: gr.Blocks
    client: AnalystClient
    url: str

    def close(self) -> None:
        """Stop the web server, then close the gRPC channel."""
        self.demo.close()
        self.client.close()


def launch(analyst_target: str, host: str, port: int, api_key: str = "",
           login: Callable[[str, str], bool] | None = None) -> RunningUI:
    """Start the UI in background threads and return at once (safe inside a running asyncio loop).

    Args:
        analyst_target: `host:port` of the analyst service.
        host: Interface to listen on, such as 127.0.0.1.
        port: TCP port of the web UI.
        api_key: The UI's own key for the analyst service, when it requires keys.
        login: When given, the UI asks for a user name and password and lets in only the
            visitors for whom login(user, password) is true (`serve` checks the password as an
            API key when keys are configured).

    Returns:
        The running UI; call `close()` to stop it.
    """
    client = AnalystClient(analyst_target, api_key)
    demo = build_demo(client)
    try:
        demo.queue(default_concurrency_limit=8).launch(
            auth=login, auth_message="Sign in with any user name and your CSV Analyst API key as the password."
            if login else None,
            server_name=host, server_port=port, prevent_thread_lock=True, share=False, ssr_mode=False,
            inbrowser=False, quiet=True, show_error=True, css=CSS, theme=gr.themes.Soft())
    except BaseException:
        client.close()
        raise
    return RunningUI(demo, client, f"http://{host}:{port}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Launch the UI against an analyst service and block until interrupted."""
    parser = argparse.ArgumentParser(description="Serve the CSV Analyst chat UI against an analyst service.")
    parser.add_argument("target", nargs="?", default=os.environ.get("CSV_ANALYST_TARGET", DEFAULT_TARGET),
                        help="analyst service host:port (default: $CSV_ANALYST_TARGET or %(default)s)")
    parser.add_argument("--host", default=os.environ.get("CSV_ANALYST_UI_HOST", "127.0.0.1"), help="listen address")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CSV_ANALYST_UI_PORT", "7860")),
                        help="listen port")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly on `kill`, as on Ctrl+C
    ui = launch(options.target, options.host, options.port)
    print(f"web UI {ui.url} (analyst service {options.target}); Ctrl+C to stop", flush=True)
    try:
        ui.demo.block_thread()
    finally:
        ui.close()


if __name__ == "__main__":
    main()
