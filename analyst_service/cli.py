"""`csv-analyst`: serve the product, ask questions, run SQL, read capsules, generate datasets.

Without --server, `ask`, `sql` and `capsule` start an embedded stack in this process (the same
runner service, sandbox and analyst service that `serve` runs, over loopback gRPC).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from analyst_service.answers import answer_from_rpc_error, answer_from_run, rejected
from analyst_service.choices import choose
from analyst_service.config import (
    DEFAULT_ANTHROPIC_BASE_URL,
    DEFAULT_CLAUDE_MODEL,
    REPO_ROOT,
    AnalystSettings,
    ClaudeSettings,
    default_home,
)
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from runner_service.config import RunnerSettings

BATCH_CONCURRENCY = 2


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="csv-analyst", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def stack_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--datasets-dir", type=Path, default=REPO_ROOT / "datasets",
                         help="folder with registry.json and the CSVs (default: the repo's datasets/)")
        sub.add_argument("--capsule-db", type=Path, default=default_home() / "capsules.sqlite3",
                         help="SQLite file that stores capsules (default: ~/.csv-analyst/capsules.sqlite3)")
        sub.add_argument("--cache-dir", type=Path, default=default_home() / "materialized",
                         help="where columnar copies of dataset versions are kept (default: ~/.csv-analyst/materialized)")
        sub.add_argument("--pool-size", type=int, default=1,
                         help="warm sandboxes kept per recently used dataset (0: every run starts cold)")
        sub.add_argument("--planner", choices=["offline", "claude", "auto"], default="offline",
                         help="planner to use: offline (no network), claude (needs ANTHROPIC_API_KEY), "
                              "auto (claude when ANTHROPIC_API_KEY is set, else offline)")
        claude = ClaudeSettings()
        sub.add_argument("--claude-model", default=DEFAULT_CLAUDE_MODEL, help="model of the Claude planner")
        sub.add_argument("--claude-base-url", default=None,
                         help=f"Messages API base URL (default: $ANTHROPIC_BASE_URL or {DEFAULT_ANTHROPIC_BASE_URL})")
        sub.add_argument("--claude-max-tokens", type=int, default=claude.max_tokens,
                         help="output token cap per model call")
        sub.add_argument("--claude-timeout", type=float, default=claude.timeout_seconds,
                         help="seconds per Messages API request")
        sub.add_argument("--claude-retries", type=int, default=claude.max_retries,
                         help="SDK retries on 429/5xx/timeouts before UNAVAILABLE")
        sub.add_argument("--claude-max-corrections", type=int, default=claude.max_corrections,
                         help="rejected plans fed back to the model before PLANNER_ERROR")
        sub.add_argument("--claude-stream", action="store_true", help="stream the model's replies (SSE)")
        sub.add_argument("--executor", choices=["bwrap", "docker"], default="bwrap",
                         help="sandbox kind for each run (docker needs a running engine and `make runner-image`)")
        sub.add_argument("--timeout", type=float, default=30.0, help="wall-clock limit per run, seconds")
        sub.add_argument("--memory-mb", type=int, default=512, help="DuckDB memory limit per run, MB")
        sub.add_argument("--max-rows", type=int, default=1000, help="row cap per result")

    serve = commands.add_parser("serve", help="run the runner service, the analyst service and the web UI")
    stack_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="interface for all three servers")
    serve.add_argument("--analyst-port", type=int, default=50051)
    serve.add_argument("--runner-port", type=int, default=50052)
    serve.add_argument("--ui-port", type=int, default=7860)
    serve.add_argument("--no-ui", action="store_true", help="do not start the web UI")
    serve.add_argument("--no-csv-paths", action="store_true",
                       help="refuse ad-hoc datasets named by CSV paths on this host (Ask/SubmitRun csv_paths)")

    for name, field, helptext in (("ask", "question", "a question in plain language"),
                                  ("sql", "sql", "one read-only SELECT statement")):
        sub = commands.add_parser(name, help=f"answer {helptext}")
        stack_options(sub)
        sub.add_argument("--server", help="HOST:PORT of a running analyst service (default: embedded stack)")
        sub.add_argument("--dataset", help="dataset id, such as ecommerce")
        sub.add_argument("--csv", action="append", default=[], metavar="PATH", help="CSV file (repeatable)")
        sub.add_argument("--json", action="store_true", help="print the answer as one JSON object")
        sub.add_argument("--batch", type=Path, help="JSONL file of questions; prints one JSON line per input line")
        if name == "ask":
            sub.add_argument("--thread", default="", help="thread id from an earlier answer, for follow-ups")
            sub.add_argument("--choose", type=int, metavar="N",
                             help="with --thread: run reading N of the thread's last clarification")
        sub.add_argument(field, nargs="?", help=helptext)

    capsule = commands.add_parser("capsule", help="print the capsule of a run")
    stack_options(capsule)
    capsule.add_argument("--server", help="HOST:PORT of a running analyst service (default: the local store)")
    capsule.add_argument("run_id")
    capsule.add_argument("--json", action="store_true", help="print JSON (the default and only format)")

    datasets = commands.add_parser("datasets", help="manage the demo datasets")
    datasets_commands = datasets.add_subparsers(dest="datasets_command", required=True)
    generate = datasets_commands.add_parser("generate", help="write the demo datasets and their registry")
    generate.add_argument("--scale", type=float, default=1.0, help="size factor (1 = about 20k orders)")
    generate.add_argument("--out", type=Path, default=REPO_ROOT / "datasets", help="output folder")
    return parser


def settings_from(options: argparse.Namespace, host: str = "127.0.0.1", analyst_port: int = 0,
                  runner_port: int = 0) -> tuple[AnalystSettings, RunnerSettings]:
    """Build both services' settings from parsed options."""
    analyst = AnalystSettings(host=host, port=analyst_port, datasets_dir=options.datasets_dir.resolve(),
                              capsule_db=options.capsule_db, planner=options.planner,
                              run_timeout_seconds=options.timeout, run_memory_bytes=options.memory_mb << 20,
                              max_rows=options.max_rows, claude=claude_settings_from(options),
                              allow_csv_paths=not getattr(options, "no_csv_paths", False))
    runner = RunnerSettings(host=host, port=runner_port, executor=options.executor,
                            max_timeout_seconds=max(options.timeout, 1.0), cache_dir=options.cache_dir,
                            pool_size=options.pool_size)
    return analyst, runner


def claude_settings_from(options: argparse.Namespace, environ: dict[str, str] | None = None) -> ClaudeSettings:
    """The Claude planner's settings: flags, plus the API key (and default base URL) from the environment."""
    environ = dict(os.environ) if environ is None else environ
    return ClaudeSettings(api_key=environ.get("ANTHROPIC_API_KEY", ""),
                          base_url=options.claude_base_url or environ.get("ANTHROPIC_BASE_URL") or DEFAULT_ANTHROPIC_BASE_URL,
                          model=options.claude_model, max_tokens=options.claude_max_tokens,
                          timeout_seconds=options.claude_timeout, max_retries=options.claude_retries,
                          max_corrections=options.claude_max_corrections, streaming=options.claude_stream)


async def start_stack_for(analyst: AnalystSettings, runner: RunnerSettings, announce: bool = False) -> Any:
    """Start the embedded stack with the planner the settings name (Claude settings included)."""
    from analyst_service.server import make_planner
    from analyst_service.stack import start_local_stack

    if analyst.planner == "claude" and not analyst.claude.api_key:
        print("warning: --planner claude without ANTHROPIC_API_KEY: every question will fail until it is set",
              file=sys.stderr)
    planner = make_planner(analyst.planner, analyst)
    if announce:
        model = f" ({analyst.claude.model} at {analyst.claude.base_url})" if planner.name == "claude" else ""
        print(f"planner          {planner.name}{model}", flush=True)
    return await start_local_stack(analyst, runner, planner=planner)


@contextlib.asynccontextmanager
async def analyst_channel(options: argparse.Namespace) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to --server, or to an embedded stack started for this command."""
    if getattr(options, "server", None):
        async with grpc.aio.insecure_channel(options.server) as channel:
            yield channel
        return
    analyst, runner = settings_from(options)
    stack = await start_stack_for(analyst, runner)
    try:
        async with grpc.aio.insecure_channel(stack.analyst_target) as channel:
            yield channel
    finally:
        await stack.stop(grace=1.0)


async def ask_one(stub: analyst_service_pb2_grpc.AnalystServiceStub, item_id: Any, request: api.AskRequest,
                  on_event: Callable[[run_pb2.RunEvent], None] | None = None) -> dict[str, Any]:
    """Ask one question and return its answer object."""
    try:
        async for response in stub.Ask(request):
            if on_event:
                on_event(response.event)
            if response.event.stage == run_pb2.STAGE_DONE:
                return answer_from_run(item_id, response.event.run)
    except grpc.aio.AioRpcError as error:
        return answer_from_rpc_error(item_id, error)
    return rejected(item_id, "INTERNAL", "the stream ended without a final event")


async def sql_one(stub: analyst_service_pb2_grpc.AnalystServiceStub, item_id: Any,
                  request: api.SubmitRunRequest) -> dict[str, Any]:
    """Run one SQL statement and return its answer object."""
    try:
        response = await stub.SubmitRun(request)
    except grpc.aio.AioRpcError as error:
        return answer_from_rpc_error(item_id, error)
    return answer_from_run(item_id, response.run)


def _request_for(command: str, item: dict[str, Any], thread: str = "") -> api.AskRequest | api.SubmitRunRequest:
    dataset = item.get("dataset") or ""
    csv_paths = [str(Path(p).expanduser().resolve()) for p in item.get("csv") or []]
    if command == "ask":
        return api.AskRequest(dataset_id=dataset, csv_paths=csv_paths, question=item.get("question") or "",
                              thread_id=item.get("thread") or thread)
    return api.SubmitRunRequest(dataset_id=dataset, csv_paths=csv_paths, sql=item.get("sql") or "")


async def run_batch(options: argparse.Namespace, stub: analyst_service_pb2_grpc.AnalystServiceStub) -> int:
    """Answer every line of --batch, printing one JSON line per input line, in order."""
    field = "question" if options.command == "ask" else "sql"
    lines = [line for line in options.batch.read_text(encoding="utf-8").splitlines() if line.strip()]
    slots = asyncio.Semaphore(BATCH_CONCURRENCY)

    async def answer(line: str) -> dict[str, Any]:
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("a batch line must be a JSON object")
        except ValueError as error:
            return rejected(None, "INVALID_INPUT", f"unreadable batch line: {error}")
        item.setdefault("dataset", options.dataset)
        if not item.get("csv") and not item.get("dataset") and options.csv:
            item["csv"] = options.csv
        if not isinstance(item.get(field), str) or not item[field].strip():
            return rejected(item.get("id"), "INVALID_INPUT", f"the batch line has no {field!r} string")
        async with slots:
            request = _request_for(options.command, item)
            if isinstance(request, api.AskRequest):
                return await ask_one(stub, item.get("id"), request)
            return await sql_one(stub, item.get("id"), request)

    tasks = [asyncio.create_task(answer(line)) for line in lines]
    for task in tasks:
        print(json.dumps(await task, default=str), flush=True)
    return 0


def print_answer(answer: dict[str, Any]) -> None:
    """Print an answer as a readable table with its explanation, SQL and run id."""
    if answer["status"] != "SUCCEEDED":
        print(f"{answer['status']}: {answer['error']['code']}: {answer['error']['message']}", file=sys.stderr)
        for number, option in enumerate((answer.get("clarification") or {}).get("options", []), start=1):
            print(f"  {number}. {option['explanation']}  (csv-analyst ask --thread {answer['thread_id']} "
                  f"--choose {number})", file=sys.stderr)
    else:
        if answer["explanation"]:
            print(answer["explanation"])
        rows = [[("NULL" if v is None else str(v)) for v in row] for row in answer["rows"]]
        widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(answer["columns"])]
        print("  ".join(c.ljust(w) for c, w in zip(answer["columns"], widths)))
        print("  ".join("-" * w for w in widths))
        for row in rows:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
        print(f"({answer['row_count']} rows{', truncated' if answer['truncated'] else ''})")
    if answer["sql"]:
        print(f"SQL: {answer['sql']}", file=sys.stderr)
    if answer["run_id"]:
        print(f"run: {answer['run_id']}  (csv-analyst capsule {answer['run_id']})"
              + (f"  thread: {answer['thread_id']}" if answer.get("thread_id") else ""), file=sys.stderr)


async def query_command(options: argparse.Namespace) -> int:
    """`ask` and `sql`: one question/statement or a batch."""
    text = options.question if options.command == "ask" else options.sql
    if getattr(options, "choose", None) is not None:
        return await choose_command(options)
    if options.batch is None and not text:
        print(f"csv-analyst {options.command}: give a {'question' if options.command == 'ask' else 'SQL statement'}"
              " or --batch FILE", file=sys.stderr)
        return 2
    async with analyst_channel(options) as channel:
        stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        if options.batch is not None:
            return await run_batch(options, stub)
        item = {"dataset": options.dataset, "csv": options.csv, "question" if options.command == "ask" else "sql": text}
        if not options.dataset and not options.csv:
            answer = rejected(None, "INVALID_INPUT", "give --dataset ID or --csv PATH")
        elif options.command == "ask":
            def progress(event: run_pb2.RunEvent) -> None:
                if not options.json:
                    print(f"[{run_pb2.Stage.Name(event.stage).removeprefix('STAGE_').lower()}] {event.message}",
                          file=sys.stderr)
            request = _request_for("ask", item, options.thread)
            answer = await ask_one(stub, None, request, progress)  # type: ignore[arg-type]
        else:
            answer = await sql_one(stub, None, _request_for("sql", item))  # type: ignore[arg-type]
    if options.json:
        print(json.dumps(answer, default=str))
    else:
        print_answer(answer)
    return 0 if answer["status"] == "SUCCEEDED" else 1


async def choose_command(options: argparse.Namespace) -> int:
    """`ask --thread ID --choose N`: run reading N of the thread's last clarification."""
    if not options.thread:
        print("csv-analyst ask: --choose needs --thread ID (printed with the clarification)", file=sys.stderr)
        return 2
    async with analyst_channel(options) as channel:
        stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        answer = await choose(stub, options.thread, options.choose,
                              [str(Path(p).expanduser().resolve()) for p in options.csv])
    if options.json:
        print(json.dumps(answer, default=str))
    else:
        print_answer(answer)
    return 0 if answer["status"] == "SUCCEEDED" else 1


async def capsule_command(options: argparse.Namespace) -> int:
    """`capsule RUN_ID`: print the stored capsule as JSON."""
    if options.server:
        async with grpc.aio.insecure_channel(options.server) as channel:
            try:
                response = await analyst_service_pb2_grpc.AnalystServiceStub(channel).GetCapsule(
                    api.GetCapsuleRequest(name=options.run_id))
            except grpc.aio.AioRpcError as error:
                print(f"{error.code().name}: {error.details()}", file=sys.stderr)
                return 1
        capsule = response.capsule
    else:
        from analyst_service.capsules.sqlite import SqliteCapsuleStore

        store = SqliteCapsuleStore(options.capsule_db)
        found = store.get(options.run_id.removeprefix("runs/").removeprefix("capsules/"))
        store.close()
        if found is None:
            print(f"NOT_FOUND: no capsule for run {options.run_id!r} in {options.capsule_db}", file=sys.stderr)
            return 1
        capsule = found
    print(json_format.MessageToJson(capsule, indent=2))
    return 0


async def serve_command(options: argparse.Namespace) -> int:
    """`serve`: runner service, analyst service and the web UI until interrupted."""
    if not (options.datasets_dir / "registry.json").exists():
        print(f"no registry in {options.datasets_dir}; run `csv-analyst datasets generate` first", file=sys.stderr)
        return 2
    analyst, runner = settings_from(options, options.host, options.analyst_port, options.runner_port)
    stack = await start_stack_for(analyst, runner, announce=True)
    print(f"runner service   {options.host}:{stack.runner_port}", flush=True)
    print(f"analyst service  {options.host}:{stack.analyst.port}", flush=True)
    ui = None
    if not options.no_ui:
        from gradio_ui.app import launch

        ui = launch(f"127.0.0.1:{stack.analyst.port}", options.host, options.ui_port)
        print(f"web UI           http://{options.host}:{options.ui_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    print("shutting down: draining runs", flush=True)
    if ui is not None:
        ui.close()
    await stack.stop(grace=10.0)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `csv-analyst` console script."""
    options = build_parser().parse_args(argv)
    if options.command == "datasets":
        from csv_analyst_datasets.generator import generate

        registry = generate(options.out.resolve(), options.scale)
        print(f"wrote {registry}")
        return 0
    handlers: dict[str, Callable[[argparse.Namespace], Awaitable[int]]] = {
        "serve": serve_command, "ask": query_command, "sql": query_command, "capsule": capsule_command}
    return asyncio.run(handlers[options.command](options))


if __name__ == "__main__":
    sys.exit(main())
