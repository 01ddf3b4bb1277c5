"""Structured logs: one JSON object a line on stderr (text for a person at a terminal).

Every line has `time`, `level`, `service` (`analyst`, `runner` or `cli`), `logger`, `event` (the
message), and, when known, `request_id` (the caller's `x-request-id`, or one made up and sent
back in the trailing metadata) and `run_id`; lines about runs add `dataset_id`,
`dataset_version`, `state`, `query_type`, `error_code`, `stage` durations in milliseconds and
`executor`. Nothing else is logged from requests: no metadata (so no API keys or credentials),
no result rows, no question text beyond what a message names.

Level and format come from flags or the environment: CSV_ANALYST_LOG_LEVEL (default INFO) and
CSV_ANALYST_LOG_FORMAT (`json` or `text`; default text on a terminal, json otherwise).
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import os
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from pythonjsonlogger.json import JsonFormatter

from analyst_service.rpc_handlers import same_shape

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
RUN_ID: contextvars.ContextVar[str] = contextvars.ContextVar("run_id", default="")
LEVEL_ENV = "CSV_ANALYST_LOG_LEVEL"
FORMAT_ENV = "CSV_ANALYST_LOG_FORMAT"
REQUEST_ID_HEADER = "x-request-id"
_GOOD_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_SERVICES = (("analyst_service", "analyst"), ("runner_service", "runner"), ("gradio_ui", "ui"), ("gradio", "ui"),
             ("csv_analyst_app", "cli"))


class ContextFields(logging.Filter):
    """Adds service, request_id and run_id to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = next((name for prefix, name in _SERVICES if record.name.startswith(prefix)), "cli")
        record.request_id = getattr(record, "request_id", "") or REQUEST_ID.get()
        record.run_id = getattr(record, "run_id", "") or RUN_ID.get()
        return True


def configure_logging(level: str | None = None, fmt: str | None = None, stream: Any = None) -> None:
    """Send every log line of this process to stderr in the chosen format (idempotent).

    Args:
        level: A logging level name; default $CSV_ANALYST_LOG_LEVEL or INFO.
        fmt: `json` or `text`; default $CSV_ANALYST_LOG_FORMAT, else text on a terminal and json otherwise.
        stream: Where to write (default sys.stderr).
    """
    stream = stream or sys.stderr
    level = (level or os.environ.get(LEVEL_ENV) or "INFO").upper()
    fmt = (fmt or os.environ.get(FORMAT_ENV) or ("text" if stream.isatty() else "json")).lower()
    if fmt not in ("json", "text"):
        raise ValueError(f"log format must be json or text, not {fmt!r}")
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFields())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(
            "{asctime}{levelname}{service}{name}{message}{request_id}{run_id}", style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "message": "event"},
            datefmt="%Y-%m-%dT%H:%M:%S%z"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(service)s %(message)s"))
    root = logging.getLogger()
    for existing in [h for h in root.handlers if getattr(h, "csv_analyst", False)]:
        root.removeHandler(existing)
    handler.csv_analyst = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries' own request chatter (the web UI's HTTP client) is not the product's log.
    for chatty in ("httpx", "httpcore", "urllib3", "gradio"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))


def request_id_from(metadata: Any) -> str:
    """The caller's request id when it is a sane token, else a new one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER:
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            if _GOOD_REQUEST_ID.match(text):
                return text
    return uuid.uuid4().hex[:16]


class RequestIdInterceptor(grpc.aio.ServerInterceptor):
    """Gives every call a request id (the caller's `x-request-id` or a new one): it is in every log
    line the call writes and goes back to the caller in the trailing metadata."""

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
                                handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        request_id = request_id_from(handler_call_details.invocation_metadata)
        trailer = ((REQUEST_ID_HEADER, request_id),)

        def wrap_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                REQUEST_ID.set(request_id)
                context.set_trailing_metadata(trailer)
                return await behavior(request, context)
            return call

        def wrap_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                REQUEST_ID.set(request_id)
                context.set_trailing_metadata(trailer)
                async for response in behavior(request, context):
                    yield response
            return call

        attribute = f"{'stream' if handler.request_streaming else 'unary'}_{'stream' if handler.response_streaming else 'unary'}"
        behavior = getattr(handler, attribute)
        if handler.response_streaming and not inspect.isasyncgenfunction(behavior):
            return handler  # not ours (a synchronous stream): leave it as it is
        return same_shape(handler, wrap_stream(behavior) if handler.response_streaming else wrap_unary(behavior))
