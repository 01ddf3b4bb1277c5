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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from csv_analyst_app import cli_k8s
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
from analyst_service.auth import (
    ApiKey,
    KeyFileError,
    KeyRing,
    bearer_interceptors,
    digest_of,
    key_file_line,
    load_key_file,
    new_key,
)
from analyst_service.capsules.stores import CapsuleStoreError, capsule_location
from analyst_service.logs import configure_logging
from analyst_service.server import UnsafeBindError, check_bind
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from runner_service.auth import CREDENTIAL_ENV, CredentialError, generate_credential, load_credential
from runner_service.config import RunnerSettings
from runner_service.executors.k8s_settings import kubernetes_settings_from_env
from csv_analyst_settings.options import SettingError, VariableOf, apply_environment, parsers_of, prefixed

API_KEY_ENV = "CSV_ANALYST_API_KEY"
PYTHON_ENV = "CSV_ANALYST_ENABLE_PYTHON"
QUERY_FIELDS = ("question", "sql", "python")


def python_enabled(options: argparse.Namespace) -> bool:
    """Python mode: `serve --enable-python` or $CSV_ANALYST_ENABLE_PYTHON=1; the embedded stack of
    the `python` command (the command itself is the explicit request), of `ask --python`, or of a
    batch whose lines hold Python programs (the file is the explicit request)."""
    return (options.command == "python" or getattr(options, "enable_python", False)
            or (options.command == "ask" and getattr(options, "allow_python", False))
            or os.environ.get(PYTHON_ENV, "") in ("1", "true", "yes") or _batch_has_python(options))


def _batch_has_python(options: argparse.Namespace) -> bool:
    batch = getattr(options, "batch", None)
    if batch is None or getattr(options, "server", None) or not batch.exists():
        return False
    for line in batch.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            if isinstance(item, dict) and isinstance(item.get("python"), str):
                return True
    return False


BATCH_CONCURRENCY = 2


ENV_PREFIX = "CSV_ANALYST_"
# Commands whose settings also come from environment variables (flag > variable > default).
SETTINGS_COMMANDS = ("", "serve", "ask", "sql", "python", "capsule", "export")


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """Build the argument parser of every subcommand, each setting's default taken from its
    environment variable when set (see setting_variables).

    Raises:
        SettingError: For a variable whose value its setting cannot take.
    """
    parser = _build_parser()
    variable_of = setting_variables(parser)
    for name, sub in parsers_of(parser).items():
        if name in SETTINGS_COMMANDS:
            apply_environment(sub, variable_of, os.environ if environ is None else environ)
    return parser


def setting_variables(parser: argparse.ArgumentParser) -> VariableOf:
    """The variable of each setting: CSV_ANALYST_<DEST> for every option of `serve` (which shares
    the stack options with ask, sql, python, capsule and export), the logging options and
    --api-key. Per-call options (--dataset, --csv, --json, --batch, --server, ...) have none."""
    serve = parsers_of(parser)["serve"]
    dests = {a.dest for a in serve._actions if a.option_strings and a.dest != "help"}
    return prefixed(ENV_PREFIX, only=dests | {"log_level", "log_format", "api_key"})


def _build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every subcommand (defaults only)."""
    parser = argparse.ArgumentParser(prog="csv-analyst", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default=None,
                        help="DEBUG, INFO, WARNING or ERROR (unset: INFO for serve, WARNING otherwise); before the command")
    parser.add_argument("--log-format", choices=["json", "text"], default=None,
                        help="log lines on stderr (unset: text on a terminal, json otherwise); before the command")
    commands = parser.add_subparsers(dest="command", required=True)

    def stack_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--datasets-dir", type=Path, default=REPO_ROOT / "datasets",
                         help="folder with registry.json and the CSVs")
        sub.add_argument("--capsule-db", type=capsule_location, default=default_home() / "capsules.sqlite3",
                         help="the capsule store: a SQLite file, or postgresql://user@host:port/db for one "
                              "shared by several analyst replicas (capsule and export without --server read it too)")
        sub.add_argument("--cache-dir", type=Path, default=default_home() / "materialized",
                         help="where columnar (DuckDB) copies of dataset versions are kept, built once per version in a sandbox")
        sub.add_argument("--cache-max-gb", type=float, default=10.0,
                         help="size cap of --cache-dir; least recently used copies are deleted past it (one used in the last minute stays)")
        sub.add_argument("--upload-dir", type=Path, default=default_home() / "uploads",
                         help="where uploaded CSV files are kept (by content, listed at start)")
        sub.add_argument("--pool-size", type=int, default=1,
                         help="warm sandboxes kept per recently used dataset and limits (0: every run starts cold); an idle "
                              "one holds about 70 MB plus the columns it read ahead (95 MB for the 1e6-row demo) "
                              "and is killed after 5 minutes")
        sub.add_argument("--sql-runner", choices=["auto", "native", "python"], default="auto",
                         help="what runs SQL on a materialised dataset in the sandbox: the native DuckDB CLI "
                              "(PyPI duckdb-cli), the Python runner, or auto (native when the CLI is installed)")
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
        sub.add_argument("--executor", choices=["bwrap", "docker", "k8s"], default="bwrap",
                         help="sandbox kind for each run (docker needs a running engine and `make runner-image`; "
                              "k8s a cluster, configured by CSV_ANALYST_K8S_* variables: see README)")
        sub.add_argument("--timeout", type=float, default=30.0, help="wall-clock limit per run, seconds (the sandbox is killed after it)")
        sub.add_argument("--memory-mb", type=int, default=512, help="DuckDB memory limit per run, MB (the sandbox's cgroup cap is twice that)")
        sub.add_argument("--max-rows", type=int, default=1000, help="rows returned per result (truncated says when there were more)")
        sub.add_argument("--no-cache", action="store_true",
                         help="always run in a sandbox (no exact result cache: same query, same files, same limits)")

    serve = commands.add_parser("serve", help="run the runner service, the analyst service and the web UI")
    stack_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="interface for all three servers")
    serve.add_argument("--analyst-port", type=int, default=50051, help="port of the analyst service (on --host)")
    serve.add_argument("--runner-port", type=int, default=50052, help="port of the runner service (on --runner-host)")
    serve.add_argument("--ui-port", type=int, default=7860, help="port of the web UI (on --host)")
    serve.add_argument("--no-ui", action="store_true", help="do not start the web UI")
    serve.add_argument("--runner-host", default="127.0.0.1",
                       help="interface of the runner service (default 127.0.0.1 whatever --host says: only the "
                            "analyst service calls it)")
    serve.add_argument("--runner-credential-file", type=Path,
                       help=f"file holding the runner service's credential (unset: ${CREDENTIAL_ENV}, else a "
                            "fresh random one per start)")
    serve.add_argument("--api-keys-file", type=Path,
                       help="client API keys (hashed; create with `csv-analyst keys add`): every call but health "
                            "and reflection must carry one, and the web UI asks for one")
    serve.add_argument("--allow-unauthenticated", action="store_true",
                       help="listen on a non-loopback --host without API keys (only behind something that "
                            "authenticates callers)")
    serve.add_argument("--csv-root", type=Path, action="append", default=[], metavar="DIR",
                       help="directory whose CSV files clients may name by server-side path (csv_paths); "
                            "repeatable; none by default")
    serve.add_argument("--max-upload-mb", type=int, default=1024, help="largest upload (all its files), MB")
    serve.add_argument("--metrics-port", type=int, default=None,
                       help="serve Prometheus metrics at http://METRICS_HOST:PORT/metrics (off unless given)")
    serve.add_argument("--metrics-host", default="127.0.0.1", help="interface of the metrics endpoint")
    serve.add_argument("--enable-python", action="store_true",
                       help="accept restricted Python runs (SubmitRun python_code); the python command's embedded stack always does")

    for name, field, helptext in (("ask", "question", "a question in plain language"),
                                  ("sql", "sql", "one read-only SELECT statement"),
                                  ("python", "python", "a restricted pandas program (tables as DataFrames; "
                                                       "set result_df, result_rows or result)")):
        sub = commands.add_parser(name, help=f"answer {helptext}")
        stack_options(sub)
        sub.add_argument("--server", help="HOST:PORT of a running analyst service (default: embedded stack)")
        api_key_option(sub)
        sub.add_argument("--dataset", help="dataset id, such as ecommerce")
        sub.add_argument("--csv", action="append", default=[], metavar="PATH", help="CSV file (repeatable)")
        sub.add_argument("--json", action="store_true", help="print the answer as one JSON object")
        sub.add_argument("--batch", type=Path, help="JSONL file of questions; prints one JSON line per input line")
        if name == "ask":
            sub.add_argument("--thread", default="", help="thread id from an earlier answer, for follow-ups")
            sub.add_argument("--choose", type=int, metavar="N",
                             help="with --thread: run reading N of the thread's last clarification")
            sub.add_argument("--python", action="store_true", dest="allow_python",
                             help="ask for the answer as a restricted pandas program (Claude planner; the server "
                                  "must run Python: serve --enable-python)")
        sub.add_argument(field, nargs="?", help=helptext)

    capsule = commands.add_parser("capsule", help="print the capsule of a run")
    stack_options(capsule)
    capsule.add_argument("--server", help="HOST:PORT of a running analyst service (default: the local store)")
    api_key_option(capsule)
    capsule.add_argument("run_id")
    capsule.add_argument("--json", action="store_true", help="print JSON (the default and only format)")

    export = commands.add_parser("export", help="write every row of a run's result as CSV or Parquet")
    stack_options(export)
    export.add_argument("--server", help="HOST:PORT of a running analyst service (default: the local store)")
    api_key_option(export)
    export.add_argument("run_id")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv", help="file format (default: csv)")
    export.add_argument("--output", type=Path, help="file to write (default: standard output)")

    keys = commands.add_parser("keys", help="manage client API keys of the analyst service")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    add = keys_commands.add_parser("add", help="create a key, store its hash in FILE and print the key once")
    add.add_argument("--file", type=Path, required=True, help="the API key file (created 0600 when missing)")
    add.add_argument("--name", required=True, help="who the key is for (letters, digits, . _ @ -)")
    add.add_argument("--operator", action="store_true",
                     help="the key may read operator detail (sandbox output) in runs and capsules")

    datasets = commands.add_parser("datasets", help="manage the demo datasets")
    datasets_commands = datasets.add_subparsers(dest="datasets_command", required=True)
    generate = datasets_commands.add_parser("generate", help="write the demo datasets and their registry")
    generate.add_argument("--scale", type=float, default=1.0, help="size factor (1 = about 20k orders)")
    generate.add_argument("--out", type=Path, default=REPO_ROOT / "datasets", help="output folder")
    delete = datasets_commands.add_parser("delete", help="delete an uploaded dataset from a running service")
    delete.add_argument("dataset_id", help="the uploaded dataset (`upload-...`)")
    delete.add_argument("--server", required=True, help="HOST:PORT of a running analyst service")
    api_key_option(delete)
    cli_k8s.add_parser(commands, REPO_ROOT)
    return parser


def api_key_option(sub: argparse.ArgumentParser) -> None:
    """--api-key for commands that can call a --server."""
    sub.add_argument("--api-key", default=None,
                     help="ask, sql, python, capsule, export with --server: the client's API key")


def settings_from(options: argparse.Namespace, host: str = "127.0.0.1", analyst_port: int = 0,
                  runner_port: int = 0, csv_roots: tuple[Path, ...] = (), runner_host: str = "127.0.0.1",
                  keys: KeyRing | None = None, runner_credential: str = "") -> tuple[AnalystSettings, RunnerSettings]:
    """Build both services' settings from parsed options."""
    analyst = AnalystSettings(host=host, port=analyst_port, datasets_dir=options.datasets_dir.resolve(),
                              capsule_db=options.capsule_db, planner=options.planner,
                              run_timeout_seconds=options.timeout, run_memory_bytes=options.memory_mb << 20,
                              max_rows=options.max_rows, claude=claude_settings_from(options),
                              csv_roots=csv_roots, upload_dir=options.upload_dir,
                              max_upload_bytes=getattr(options, "max_upload_mb", 1024) << 20,
                              api_keys=keys or KeyRing(),
                              allow_unauthenticated=getattr(options, "allow_unauthenticated", False),
                              enable_python=python_enabled(options),
                              result_cache_bytes=0 if getattr(options, "no_cache", False) else 64 << 20)
    runner = RunnerSettings(host=runner_host, port=runner_port, executor=options.executor,
                            max_timeout_seconds=max(options.timeout, 1.0), cache_dir=options.cache_dir,
                            cache_max_bytes=int(options.cache_max_gb * (1 << 30)),
                            pool_size=options.pool_size, sql_runner=getattr(options, "sql_runner", "auto"),
                            credential=runner_credential,
                            kubernetes=kubernetes_settings_from_env(dict(os.environ)))
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
    from csv_analyst_app.stack import start_local_stack

    if analyst.planner == "claude" and not analyst.claude.api_key:
        print("warning: --planner claude without ANTHROPIC_API_KEY: every question will fail until it is set",
              file=sys.stderr)
    planner = make_planner(analyst.planner, analyst)
    if announce:
        model = f" ({analyst.claude.model} at {analyst.claude.base_url})" if planner.name == "claude" else ""
        print(f"planner          {planner.name}{model}", flush=True)
    return await start_local_stack(analyst, runner, planner=planner)


def client_interceptors(options: argparse.Namespace) -> list[grpc.aio.ClientInterceptor]:
    """The API key (from --api-key or the environment) for calls to --server."""
    key = getattr(options, "api_key", None) or os.environ.get(API_KEY_ENV, "")
    return bearer_interceptors(key) if key else []


def local_csv_files(options: argparse.Namespace) -> tuple[Path, ...]:
    """Every CSV file this command names (flags and batch lines), resolved: the embedded stack's
    CSV roots, so it reads exactly these local files and no others."""
    paths = [*options.csv]
    if getattr(options, "batch", None) is not None and options.batch.exists():
        for line in options.batch.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict) and isinstance(item.get("csv"), list):
                    paths += [p for p in item["csv"] if isinstance(p, str)]
    return tuple(dict.fromkeys(Path(p).expanduser().resolve() for p in paths))


@contextlib.asynccontextmanager
async def analyst_channel(options: argparse.Namespace) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to --server, or to an embedded stack started for this command."""
    if getattr(options, "server", None):
        async with grpc.aio.insecure_channel(options.server, interceptors=client_interceptors(options)) as channel:
            yield channel
        return
    analyst, runner = settings_from(options, csv_roots=local_csv_files(options) if hasattr(options, "csv") else ())
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


def _request_for(command: str, item: dict[str, Any], thread: str = "",
                 allow_python: bool = False) -> api.AskRequest | api.SubmitRunRequest:
    dataset = item.get("dataset") or ""
    csv_paths = [str(Path(p).expanduser().resolve()) for p in item.get("csv") or []]
    if command == "ask":
        return api.AskRequest(dataset_id=dataset, csv_paths=csv_paths, question=item.get("question") or "",
                              thread_id=item.get("thread") or thread, allow_python=allow_python)
    if command == "python":
        return api.SubmitRunRequest(dataset_id=dataset, csv_paths=csv_paths, python_code=item.get("python") or "")
    return api.SubmitRunRequest(dataset_id=dataset, csv_paths=csv_paths, sql=item.get("sql") or "")


UPLOAD_CHUNK_BYTES = 1 << 20


async def upload_csv_files(stub: analyst_service_pb2_grpc.AnalystServiceStub, paths: list[str]) -> str:
    """Stream local CSV files to the server (UploadDataset) and return the new dataset's id.

    Raises:
        grpc.aio.AioRpcError: When the server refuses the upload.
        OSError: When a local file cannot be read.
    """
    files = [Path(p).expanduser() for p in paths]
    for file in files:  # fail before anything is sent
        if not file.is_file():
            raise FileNotFoundError(f"CSV file {file} does not exist or is not a file")

    async def messages() -> AsyncIterator[api.UploadDatasetRequest]:
        for file in files:
            yield api.UploadDatasetRequest(file_name=file.name)
            with file.open("rb") as handle:
                while chunk := await asyncio.to_thread(handle.read, UPLOAD_CHUNK_BYTES):
                    yield api.UploadDatasetRequest(chunk=chunk)

    response = await stub.UploadDataset(messages())
    return response.dataset.dataset_id


class Uploads:
    """Uploads each distinct set of local CSV files to --server once per command."""

    def __init__(self, stub: analyst_service_pb2_grpc.AnalystServiceStub) -> None:
        self._stub = stub
        self._done: dict[tuple[str, ...], asyncio.Task[str]] = {}

    async def dataset_for(self, paths: list[str]) -> str:
        """The uploaded dataset id of these files (uploading them the first time)."""
        key = tuple(str(Path(p).expanduser().resolve()) for p in paths)
        if key not in self._done:
            self._done[key] = asyncio.ensure_future(upload_csv_files(self._stub, list(key)))
        return await asyncio.shield(self._done[key])


async def answer_item(options: argparse.Namespace, stub: analyst_service_pb2_grpc.AnalystServiceStub,
                      uploads: Uploads | None, item: dict[str, Any], thread: str = "",
                      on_event: Callable[[run_pb2.RunEvent], None] | None = None) -> dict[str, Any]:
    """Answer one question or statement; with --server, local CSV files are uploaded first."""
    kind = next((f for f in QUERY_FIELDS if isinstance(item.get(f), str) and item[f].strip()), "sql")
    if uploads is not None and item.get("csv") and not item.get("dataset"):
        try:
            item = {**item, "dataset": await uploads.dataset_for(item["csv"]), "csv": []}
        except grpc.aio.AioRpcError as error:
            return answer_from_rpc_error(item.get("id"), error)
        except OSError as error:
            return rejected(item.get("id"), "INVALID_INPUT", str(error))
    request = _request_for({"question": "ask", "sql": "sql", "python": "python"}[kind], item, thread,
                           getattr(options, "allow_python", False))
    if isinstance(request, api.AskRequest):
        return await ask_one(stub, item.get("id"), request, on_event)
    return await sql_one(stub, item.get("id"), request)


async def run_batch(options: argparse.Namespace, stub: analyst_service_pb2_grpc.AnalystServiceStub) -> int:
    """Answer every line of --batch, printing one JSON line per input line, in order.

    A line holds a "question", a "sql" statement or a "python" program (any command takes any kind).
    """
    lines = [line for line in options.batch.read_text(encoding="utf-8").splitlines() if line.strip()]
    slots = asyncio.Semaphore(BATCH_CONCURRENCY)
    uploads = Uploads(stub) if options.server else None

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
        if not any(isinstance(item.get(f), str) and item[f].strip() for f in QUERY_FIELDS):
            return rejected(item.get("id"), "INVALID_INPUT", "the batch line has no 'question', 'sql' or 'python' string")
        async with slots:
            return await answer_item(options, stub, uploads, item)

    tasks = [asyncio.create_task(answer(line)) for line in lines]
    for task in tasks:
        print(json.dumps(await task, default=str), flush=True)
    return 0


def print_answer(answer: dict[str, Any], server: str | None = None) -> None:
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
        where = f" --server {server}" if server else ""
        print(f"run: {answer['run_id']}  (csv-analyst capsule{where} {answer['run_id']})"
              + (f"  thread: {answer['thread_id']}" if answer.get("thread_id") else ""), file=sys.stderr)


async def query_command(options: argparse.Namespace) -> int:
    """`ask` and `sql`: one question/statement or a batch."""
    field = {"ask": "question", "sql": "sql", "python": "python"}[options.command]
    text = getattr(options, field)
    if getattr(options, "choose", None) is not None:
        return await choose_command(options)
    if options.batch is None and not text:
        what = {"ask": "question", "sql": "SQL statement", "python": "Python program"}[options.command]
        print(f"csv-analyst {options.command}: give a {what} or --batch FILE", file=sys.stderr)
        return 2
    async with analyst_channel(options) as channel:
        stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        if options.batch is not None:
            return await run_batch(options, stub)
        item = {"dataset": options.dataset, "csv": options.csv, field: text}
        if not options.dataset and not options.csv:
            answer = rejected(None, "INVALID_INPUT", "give --dataset ID or --csv PATH")
        else:
            def progress(event: run_pb2.RunEvent) -> None:
                if not options.json:
                    print(f"[{run_pb2.Stage.Name(event.stage).removeprefix('STAGE_').lower()}] {event.message}",
                          file=sys.stderr)
            uploads = Uploads(stub) if options.server else None
            answer = await answer_item(options, stub, uploads, item, getattr(options, "thread", ""), progress)
    if options.json:
        print(json.dumps(answer, default=str))
    else:
        print_answer(answer, options.server)
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
        response = await call_server(options, lambda stub: stub.GetCapsule(api.GetCapsuleRequest(name=options.run_id)))
        if response is None:
            return 1
        capsule = response.capsule
    else:
        from analyst_service.capsules.stores import describe, open_capsule_store

        store = open_capsule_store(options.capsule_db)
        found = store.get(options.run_id.removeprefix("runs/").removeprefix("capsules/"))
        store.close()
        if found is None:
            print(f"NOT_FOUND: no capsule for run {options.run_id!r} in {describe(options.capsule_db)}",
                  file=sys.stderr)
            return 1
        capsule = found
    print(json_format.MessageToJson(capsule, indent=2))
    return 0


async def call_server(options: argparse.Namespace, call: Callable[[Any], Awaitable[Any]]) -> Any:
    """One unary call to the `--server` analyst; on failure prints `CODE: details` and returns None."""
    async with grpc.aio.insecure_channel(options.server, interceptors=client_interceptors(options)) as channel:
        try:
            return await call(analyst_service_pb2_grpc.AnalystServiceStub(channel))
        except grpc.aio.AioRpcError as error:
            print(f"{error.code().name}: {error.details()}", file=sys.stderr)
            return None


async def delete_dataset_command(options: argparse.Namespace) -> int:
    """`datasets delete ID --server HOST:PORT`: delete an uploaded dataset (DeleteDataset)."""
    response = await call_server(options, lambda stub: stub.DeleteDataset(api.DeleteDatasetRequest(name=options.dataset_id)))
    if response is None:
        return 1
    print(f"deleted {response.dataset.dataset_id} ({response.dataset.title})")
    return 0


async def export_command(options: argparse.Namespace) -> int:
    """`export RUN_ID --format csv|parquet`: write every row of a run's result."""
    output = options.output.open("wb") if options.output else sys.stdout.buffer
    try:
        if options.server:
            request = api.ExportResultRequest(name=options.run_id, format=(
                api.EXPORT_FORMAT_PARQUET if options.format == "parquet" else api.EXPORT_FORMAT_CSV))
            async with grpc.aio.insecure_channel(options.server, interceptors=client_interceptors(options)) as channel:
                try:
                    async for chunk in analyst_service_pb2_grpc.AnalystServiceStub(channel).ExportResult(request):
                        output.write(chunk.data)
                except grpc.aio.AioRpcError as error:
                    print(f"{error.code().name}: {error.details()}", file=sys.stderr)
                    return 1
            return 0
        from analyst_service.capsules.local import read_full_result
        from analyst_service.result_files import to_csv_bytes, to_parquet_bytes

        try:
            result = await asyncio.to_thread(read_full_result, options.capsule_db, options.run_id)
        except LookupError as error:
            print(str(error), file=sys.stderr)
            return 1
        output.write((to_parquet_bytes if options.format == "parquet" else to_csv_bytes)(result))
        return 0
    finally:
        if options.output:
            output.close()
        else:
            output.flush()


async def serve_command(options: argparse.Namespace) -> int:
    """`serve`: runner service, analyst service and the web UI until interrupted."""
    if not (options.datasets_dir / "registry.json").exists():
        print(f"no registry in {options.datasets_dir}; run `csv-analyst datasets generate` first", file=sys.stderr)
        return 2
    try:
        keys = KeyRing(load_key_file(options.api_keys_file)) if options.api_keys_file else KeyRing()
        credential = load_credential(options.runner_credential_file) or generate_credential()
    except (KeyFileError, CredentialError) as error:
        print(f"csv-analyst serve: {error}", file=sys.stderr)
        return 2
    ui_key = ""
    if keys.enabled and not options.no_ui:
        # The web UI is a client like any other: it gets a key of its own for this process only.
        ui_key = new_key()
        keys = keys.with_key(ApiKey(digest_of(ui_key), "web-ui"))
    analyst, runner = settings_from(options, options.host, options.analyst_port, options.runner_port,
                                    csv_roots=tuple(p.resolve() for p in options.csv_root),
                                    runner_host=options.runner_host, keys=keys, runner_credential=credential)
    try:
        check_bind(analyst)
    except UnsafeBindError as error:
        print(f"csv-analyst serve: {error}", file=sys.stderr)
        return 2
    stack = await start_stack_for(analyst, runner, announce=True)
    if options.metrics_port is not None:
        import prometheus_client

        metrics_server, _ = prometheus_client.start_http_server(options.metrics_port, addr=options.metrics_host)
        print(f"metrics          http://{options.metrics_host}:{metrics_server.server_port}/metrics", flush=True)
    print(f"runner service   {options.runner_host}:{stack.runner_port}", flush=True)
    print(f"analyst service  {options.host}:{stack.analyst.port}"
          + ("  (API keys required)" if keys.enabled else "  (no API keys: open to anyone who can connect)"),
          flush=True)
    ui = None
    if not options.no_ui:
        from gradio_ui.app import launch

        login = (lambda _user, password: keys.find(password) is not None) if keys.enabled else None
        ui = launch(f"127.0.0.1:{stack.analyst.port}", options.host, options.ui_port, api_key=ui_key, login=login)
        print(f"web UI           http://{options.host}:{options.ui_port}"
              + ("  (sign in with an API key)" if login else ""), flush=True)
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


def keys_command(options: argparse.Namespace) -> int:
    """`keys add`: create a key, append its hash to the key file, print the key once."""
    key = new_key()
    path: Path = options.file
    try:
        line = key_file_line(key, options.name, "operator" if options.operator else "user")
        if path.exists() and any(k.name == options.name for k in load_key_file(path)):
            raise ValueError(f"{path} already has a key named {options.name!r}; pick another name")
    except (ValueError, KeyFileError) as error:
        print(f"csv-analyst keys add: {error}", file=sys.stderr)
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    print(key)
    print(f"added key {options.name!r} to {path}; the key above is shown only now", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `csv-analyst` console script."""
    try:
        parser = build_parser()
    except SettingError as error:
        print(f"csv-analyst: {error}", file=sys.stderr)
        return 2
    options = parser.parse_args(argv)
    configure_logging(options.log_level or ("INFO" if options.command == "serve" else "WARNING"), options.log_format)
    if options.command == "datasets" and options.datasets_command == "delete":
        return asyncio.run(delete_dataset_command(options))
    if options.command == "datasets":
        from csv_analyst_datasets.generator import generate

        registry = generate(options.out.resolve(), options.scale)
        print(f"wrote {registry}")
        return 0
    if options.command == "keys":
        return keys_command(options)
    if options.command == "k8s":
        return cli_k8s.render_job(options)
    handlers: dict[str, Callable[[argparse.Namespace], Awaitable[int]]] = {
        "serve": serve_command, "ask": query_command, "sql": query_command, "python": query_command,
        "capsule": capsule_command,
        "export": export_command}
    try:
        return asyncio.run(handlers[options.command](options))
    except CapsuleStoreError as error:  # a PostgreSQL store that cannot be reached or is too new
        print(f"csv-analyst {options.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
