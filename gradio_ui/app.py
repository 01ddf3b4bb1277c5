"""The chat UI: a Gradio Blocks app that is a pure gRPC client of the analyst service.

Pick a dataset (or upload CSV files), click a suggested question or type one, and watch the run's
stages stream in (planning, validating, queued, executing, result, done). Each answer keeps its own
table, chart and details in the conversation; follow-up questions continue the same thread. The
current answer's plan can be edited and run again, its capsule downloaded, and every answer has a
link (`?run=RUN_ID`) that opens it in a fresh page.

Run it against a running analyst service with
`python -m gradio_ui.app [ANALYST_TARGET] [--host HOST] [--port PORT]` (the target defaults to
`$CSV_ANALYST_TARGET` or 127.0.0.1:50051), or let `csv-analyst serve` start it.
"""

from __future__ import annotations

import os

# Gradio reads this when a Blocks is created; set it before anything imports gradio.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import argparse  # noqa: E402
import functools  # noqa: E402
import signal  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from gradio_ui.answer import MAX_QUESTION_CHARS  # noqa: E402
from gradio_ui.client import AnalystClient, AnalystClientError  # noqa: E402
from gradio_ui.handlers import EMPTY_TURN, MAX_PROMPT_BUTTONS, MAX_READINGS, VIEW_OUTPUTS, Handlers  # noqa: E402

DEFAULT_TARGET = "127.0.0.1:50051"
CSS = """
.prompt-button { flex-grow: 0 !important; min-width: fit-content !important; }
#chat .result-scroll { max-height: 360px; overflow: auto; margin: 4px 0; }
#chat table.result-table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
#chat table.result-table th { position: sticky; top: 0; background: var(--background-fill-secondary); }
#chat table.result-table td.num, #chat table.result-table th.num { text-align: right; }
#chat details > summary { cursor: pointer; font-weight: 600; margin: 6px 0; }
#chat pre, #chat pre code { white-space: pre-wrap !important; word-break: break-word; }
#chat img.result-chart { max-width: 100%; height: auto; }
#footer { opacity: 0.8; font-size: 0.9em; }
#result-page .result-scroll { max-height: 480px; overflow: auto; }
#result-page table.result-table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
#result-page table.result-table th { position: sticky; top: 0; background: var(--background-fill-secondary); }
#result-page table.result-table td.num, #result-page table.result-table th.num { text-align: right; }
"""


def build_demo(client: AnalystClient) -> gr.Blocks:
    """Build the chat app around a client of the analyst service.

    Args:
        client: The gRPC client; shared by every browser session (gRPC channels are thread-safe).

    Returns:
        The Blocks app, not yet launched.
    """
    handlers = Handlers(client)

    with gr.Blocks(title="CSV Analyst Chat") as demo:
        gr.Markdown("# CSV Analyst Chat\nAsk questions about a dataset or your own CSV files; every answer "
                    "is computed in a sandbox and leaves a capsule.")
        thread = gr.State("")
        with gr.Row():
            with gr.Column(scale=3):
                dataset = gr.Dropdown(label="Dataset", choices=[], value=None, interactive=True,
                                      elem_id="dataset-dropdown")
                summary = gr.Markdown(elem_id="dataset-summary")
                delete_dataset = gr.Button("Delete this uploaded dataset", visible=False, size="sm",
                                           variant="stop", elem_id="delete-dataset")
                gr.Markdown("**Suggested questions** (click to ask)")
                with gr.Row(elem_id="prompts"):
                    prompt_buttons = [gr.Button(visible=False, size="sm", elem_classes="prompt-button",
                                                elem_id=f"prompt-{i}") for i in range(MAX_PROMPT_BUTTONS)]
                # No label: a floating "Conversation" label overlapped messages while the chat scrolled.
                chatbot = gr.Chatbot(show_label=False, height=640, elem_id="chat",
                                     placeholder="Answers, with their tables, charts and details, appear here.")
                with gr.Row():
                    question = gr.Textbox(placeholder=f"Ask a question about the dataset "
                                                      f"(up to {MAX_QUESTION_CHARS:,} characters)",
                                          show_label=False, scale=5, max_length=MAX_QUESTION_CHARS, lines=1,
                                          max_lines=6, submit_btn=False, elem_id="question")
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask-button")
                    new_chat = gr.Button("New conversation", scale=1, elem_id="new-conversation")
                # When the planner asks instead of answering, its readings: a click runs one.
                readings = gr.State([])
                with gr.Row(elem_id="readings"):
                    reading_buttons = [gr.Button(visible=False, size="sm", elem_id=f"reading-{i}")
                                       for i in range(MAX_READINGS)]
            with gr.Column(scale=2):
                with gr.Accordion("Upload CSV files", open=True, elem_id="upload-panel"):
                    files = gr.File(label="CSV files (one table each; drop several at once)", file_count="multiple",
                                    file_types=[".csv"], elem_id="upload")
                    upload_report = gr.Markdown(elem_id="upload-report")
                with gr.Accordion("Current answer", open=True, elem_id="answer-panel"):
                    with gr.Row():
                        result_csv = gr.DownloadButton("Download result (CSV)", visible=False, size="sm",
                                                       elem_id="csv-download")
                        capsule = gr.DownloadButton("Download capsule (JSON)", visible=False, size="sm",
                                                    elem_id="capsule-download")
                        chart = gr.DownloadButton("Download chart (PNG)", visible=False, size="sm",
                                                  elem_id="chart-download")
                    plan_editor = gr.Code(label="Plan (edit the JSON, then run it)", language="json",
                                          interactive=True, lines=12, max_lines=30, wrap_lines=True,
                                          elem_id="plan-editor")
                    run_plan = gr.Button("Run edited plan", size="sm", elem_id="run-plan")
                    plan_status = gr.Markdown(elem_id="plan-status")
                    # A result longer than the chat shows: every row, one page at a time (ReadResult).
                    pager = gr.State(None)
                    page_view = gr.HTML(visible=False, elem_id="result-page")
                    with gr.Row():
                        previous_page = gr.Button("Previous rows", visible=False, size="sm", elem_id="page-previous")
                        next_page = gr.Button("Next rows", visible=False, size="sm", elem_id="page-next")
        footer = gr.Markdown(EMPTY_TURN.footer, elem_id="footer")

        pager_outputs = [pager, page_view, previous_page, next_page]
        ask_outputs = [chatbot, question, thread, plan_editor, capsule, result_csv, chart, footer, readings,
                       *reading_buttons, *pager_outputs]
        view_outputs = [summary, delete_dataset, *prompt_buttons]
        assert len(view_outputs) == VIEW_OUTPUTS

        def on_load(request: gr.Request) -> list[Any]:
            """Fill the dataset list; with `?run=RUN_ID`, open that run's question, answer and details."""
            try:
                choices = handlers.dataset_choices()
            except AnalystClientError as error:
                return [gr.update(), f"**Could not list datasets**: {error}", *([gr.update()] * (VIEW_OUTPUTS - 1)),
                        *handlers.cleared()]
            run_id = request.query_params.get("run", "") if request is not None else ""
            shared = handlers.open_shared(run_id) if run_id else None
            if shared is not None:
                dataset_id, history, turn = shared
                return [gr.update(choices=choices, value=dataset_id), *handlers.dataset_view(dataset_id),
                        history, "", "", *turn.updates()]
            selected = choices[0][1] if choices else None
            cleared = list(handlers.cleared())
            if run_id:
                cleared[0] = [{"role": "assistant", "content": f"There is no run `{run_id}` to open."}]
            return [gr.update(choices=choices, value=selected), *handlers.dataset_view(selected), *cleared]

        demo.load(on_load, outputs=[dataset, *view_outputs, *ask_outputs])
        # `input` (not `change`): only a user's choice starts a new conversation, not a page opening a shared
        # run. The clearing runs at once, outside the queue and before any RPC: landing after a question the
        # user asked right away, it would wipe that answer's stream.
        dataset.input(handlers.cleared, outputs=ask_outputs, queue=False).then(
            handlers.dataset_view, inputs=[dataset], outputs=view_outputs)
        files.upload(handlers.upload, inputs=[files],
                     outputs=[upload_report, dataset, *view_outputs, *ask_outputs, files])
        delete_dataset.click(handlers.delete, inputs=[dataset],
                             outputs=[upload_report, dataset, *view_outputs, *ask_outputs])
        previous_page.click(functools.partial(handlers.page, -1), inputs=[pager], outputs=pager_outputs)
        next_page.click(functools.partial(handlers.page, 1), inputs=[pager], outputs=pager_outputs)
        new_chat.click(handlers.cleared, outputs=ask_outputs)
        ask_inputs = [dataset, chatbot, thread]
        for source in (question.submit, send.click):
            source(handlers.ask, inputs=[question, *ask_inputs], outputs=ask_outputs, show_progress="hidden")
        for button in prompt_buttons:
            button.click(handlers.ask, inputs=[button, *ask_inputs], outputs=ask_outputs, show_progress="hidden")
        run_plan.click(handlers.run_plan, inputs=[plan_editor, *ask_inputs],
                       outputs=[chatbot, plan_status, plan_editor, capsule, result_csv, chart, footer, readings,
                                *reading_buttons, *pager_outputs])
        for index, button in enumerate(reading_buttons):
            button.click(functools.partial(handlers.choose, index), inputs=[readings, *ask_inputs],
                         outputs=ask_outputs, show_progress="hidden")
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
