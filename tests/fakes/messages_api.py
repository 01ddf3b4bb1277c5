"""A fake Anthropic Messages API over real HTTP, for tests of anything that talks to Claude.

`FakeMessagesApi` listens on 127.0.0.1 port 0 in a thread and answers `POST /v1/messages` from a
script: each request consumes the next item, a `Reply` or a function of the recorded request
returning one. Replies are message JSON, or server-sent events when the request says
`"stream": true` (message_start, content_block_start/delta/stop, message_delta, message_stop, the
shape the SDK's `messages.stream(...).get_final_message()` reassembles). Every request is
recorded with its headers and JSON body.

Like the real API, the fake refuses (400 `invalid_request_error`, without consuming the script)
requests that break the conversation protocol: roles that do not alternate, a `tool_use` without
its `tool_result` first in the next user turn, more than four `cache_control` breakpoints, a tool
without an object input schema. `protocol_errors` lists them, so a test can assert there were none.

Scripting malicious model behaviour (prompt-injection tests): any tool name and input can be
scripted, several tool calls in one turn with `tool_calls_reply`, and a function item can look at
the request (say, find an injected instruction in a tool result) before choosing what to send:

    with FakeMessagesApi(
        tool_call_reply("run_sql", {"sql": "SELECT * FROM read_csv('/etc/passwd')"}),
        lambda request: propose_plan_reply({"base_table": "orders"}),
    ) as api:
        planner = ClaudePlanner(ClaudeSettings(api_key="test", base_url=api.url))
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAKE_MODEL = "claude-fake-1"
DEFAULT_USAGE = {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0}
MAX_CACHE_BREAKPOINTS = 4
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_ids = itertools.count(1)


@dataclass
class Reply:
    """One scripted HTTP reply.

    Attributes:
        status: HTTP status.
        body: The message (status 200) or error JSON.
        headers: Extra response headers, such as `retry-after-ms`.
        delay_seconds: Wait this long before answering (to trigger client timeouts).
        stream_error: With a streaming request: send this `error` event after message_start
            instead of the content (like an overloaded_error in the middle of a stream).
        stream_stall_seconds: With a streaming request: after message_start, wait this long and
            then drop the connection without the rest of the stream (0 drops it at once).
    """

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    stream_error: dict[str, Any] | None = None
    stream_stall_seconds: float | None = None


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def stream(self) -> bool:
        """Whether the client asked for server-sent events."""
        return bool(self.body.get("stream"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation sent."""
        return list(self.body.get("messages", []))

    def blocks(self, index: int = -1) -> list[dict[str, Any]]:
        """The content blocks of one message (the last by default), strings as one text block."""
        content = self.messages[index]["content"]
        return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)

    def tool_results(self) -> list[dict[str, Any]]:
        """The tool_result blocks of the last message."""
        return [b for b in self.blocks() if b.get("type") == "tool_result"]

    def system_text(self) -> str:
        """The system prompt as one string."""
        system = self.body.get("system", "")
        return system if isinstance(system, str) else "\n".join(b.get("text", "") for b in system)

    def tool_names(self) -> list[str]:
        """Names of the tools offered."""
        return [t["name"] for t in self.body.get("tools", [])]


def text_block(text: str) -> dict[str, Any]:
    """A text content block."""
    return {"type": "text", "text": text}


def tool_use_block(name: str, tool_input: Mapping[str, Any], tool_id: str | None = None) -> dict[str, Any]:
    """A tool_use content block with a fresh id unless one is given."""
    return {"type": "tool_use", "id": tool_id or f"toolu_fake_{next(_ids):04d}", "name": name, "input": dict(tool_input)}


def message_reply(content: list[dict[str, Any]], *, stop_reason: str = "tool_use",
                  usage: Mapping[str, int] | None = None, model: str = FAKE_MODEL) -> Reply:
    """A 200 reply carrying one assistant message."""
    return Reply(body={"id": f"msg_fake_{next(_ids):04d}", "type": "message", "role": "assistant", "model": model,
                       "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                       "usage": {**DEFAULT_USAGE, **(usage or {})}})


def tool_calls_reply(calls: Iterable[tuple[str, Mapping[str, Any]]], *, text: str | None = None,
                     usage: Mapping[str, int] | None = None) -> Reply:
    """The model calling several tools in one turn (optionally after some text)."""
    content = ([text_block(text)] if text else []) + [tool_use_block(name, args) for name, args in calls]
    return message_reply(content, usage=usage)


def tool_call_reply(name: str, tool_input: Mapping[str, Any], *, text: str | None = None,
                    usage: Mapping[str, int] | None = None) -> Reply:
    """The model calling one tool, any name and input (malicious ones included)."""
    return tool_calls_reply([(name, tool_input)], text=text, usage=usage)


def propose_plan_reply(plan: Mapping[str, Any], **options: Any) -> Reply:
    """The model proposing a plan (a dict in proto JSON form)."""
    return tool_call_reply("propose_plan", plan, **options)


def text_reply(text: str, *, stop_reason: str = "end_turn") -> Reply:
    """The model answering in text without a tool call."""
    return message_reply([text_block(text)], stop_reason=stop_reason)


def error_reply(status: int, error_type: str, message: str = "scripted error",
                headers: Mapping[str, str] | None = None) -> Reply:
    """An API error, such as (429, "rate_limit_error") or (401, "authentication_error")."""
    return Reply(status=status, body={"type": "error", "error": {"type": error_type, "message": message}},
                 headers=dict(headers or {}))


Script = Reply | Callable[[RecordedRequest], Reply]


class FakeMessagesApi:
    """The fake server; use as a context manager or call start() and close()."""

    def __init__(self, *script: Script, api_key: str | None = None, strict: bool = True) -> None:
        """Create the server (not started yet).

        Args:
            script: Replies, consumed one per accepted request.
            api_key: When set, requests without this key (x-api-key or Bearer) get a 401.
            strict: Refuse requests that break the Messages API conversation protocol.
        """
        self.requests: list[RecordedRequest] = []
        self.protocol_errors: list[str] = []
        self._script: list[Script] = list(script)
        self._api_key = api_key
        self._strict = strict
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), name="fake-messages-api",
                                        daemon=True)

    @property
    def url(self) -> str:
        """The base_url to give the SDK."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def remaining(self) -> int:
        """Script items not consumed yet."""
        with self._lock:
            return len(self._script)

    def add(self, *script: Script) -> None:
        """Append items to the script."""
        with self._lock:
            self._script.extend(script)

    def start(self) -> FakeMessagesApi:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, releasing delayed replies, and close the socket."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeMessagesApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _answer(self, request: RecordedRequest) -> Reply:
        if request.method != "POST" or request.path.split("?")[0].rstrip("/") != "/v1/messages":
            return error_reply(404, "not_found_error", f"the fake serves POST /v1/messages, not {request.path}")
        if self._api_key is not None and self._api_key not in (
                request.headers.get("x-api-key"), request.headers.get("authorization", "").removeprefix("Bearer ")):
            return error_reply(401, "authentication_error", "invalid x-api-key")
        problems = protocol_problems(request.body) if self._strict else []
        if problems:
            self.protocol_errors.extend(problems)
            return error_reply(400, "invalid_request_error", "; ".join(problems), {"x-should-retry": "false"})
        with self._lock:
            item = self._script.pop(0) if self._script else None
        if item is None:
            self.protocol_errors.append("the script is exhausted")
            return error_reply(400, "invalid_request_error", "the fake's script is exhausted", {"x-should-retry": "false"})
        return item(request) if callable(item) else item

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self._handle()

            def do_GET(self) -> None:  # noqa: N802
                self._handle()

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_unparsable": raw.decode("utf-8", "replace")}
                request = RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with fake._lock:
                    fake.requests.append(request)
                reply = fake._answer(request)
                if reply.delay_seconds and fake._closing.wait(reply.delay_seconds):
                    return
                try:
                    if reply.status == 200 and request.stream:
                        self._send_events(reply)
                    else:
                        self._send_json(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to answer

            def _send_json(self, reply: Reply) -> None:
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self._headers(reply, "application/json", len(data))
                self.wfile.write(data)

            def _send_events(self, reply: Reply) -> None:
                self.send_response(200)
                self._headers(reply, "text/event-stream", None)
                events = stream_events(reply.body)
                if reply.stream_error is not None:
                    events = [events[0], ("error", {"type": "error", "error": reply.stream_error})]
                elif reply.stream_stall_seconds is not None:
                    events = events[:1]
                for name, data in events:
                    self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
                if reply.stream_stall_seconds:
                    fake._closing.wait(reply.stream_stall_seconds)

            def _headers(self, reply: Reply, content_type: str, length: int | None) -> None:
                self.send_header("content-type", content_type)
                self.send_header("request-id", f"req_fake_{next(_ids):04d}")
                self.send_header("connection", "close")
                if length is not None:
                    self.send_header("content-length", str(length))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
                pass

        return Handler


def stream_events(message: dict[str, Any], chunk: int = 24) -> list[tuple[str, dict[str, Any]]]:
    """The server-sent events that stream `message`; tool inputs arrive as JSON split in chunks."""
    usage = message.get("usage", DEFAULT_USAGE)
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start}),
                                                 ("ping", {"type": "ping"})]
    for index, block in enumerate(message.get("content", [])):
        if block["type"] == "tool_use":
            opening = {**block, "input": {}}
            text = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": text[i:i + chunk]} for i in range(0, len(text), chunk)]
        else:
            opening = {**block, "text": ""}
            text = block.get("text", "")
            deltas = [{"type": "text_delta", "text": text[i:i + chunk]} for i in range(0, len(text), chunk)]
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening}))
        events.extend(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas)
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": message.get("stop_reason"), "stop_sequence": None},
                                     "usage": {"output_tokens": usage.get("output_tokens", 0)}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def protocol_problems(body: dict[str, Any]) -> list[str]:
    """What the real Messages API would refuse in this request body (the subset the fake checks)."""
    problems = []
    if not isinstance(body.get("model"), str) or not body["model"]:
        problems.append("model: a model name is required")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        problems.append("max_tokens: a positive integer is required")
    tools = body.get("tools", [])
    for index, tool in enumerate(tools):
        if not _TOOL_NAME.match(str(tool.get("name", ""))):
            problems.append(f"tools.{index}.name: invalid tool name")
        if (tool.get("input_schema") or {}).get("type") != "object":
            problems.append(f"tools.{index}.input_schema: type must be object")
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool" and choice.get("name") not in {t.get("name") for t in tools}:
        problems.append("tool_choice.name: names no offered tool")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages: at least one message is required"]
    if messages[0].get("role") != "user":
        problems.append("messages.0.role: the first message must be from the user")
    for index, (previous, current) in enumerate(zip(messages, messages[1:]), start=1):
        if previous.get("role") == current.get("role"):
            problems.append(f"messages.{index}.role: roles must alternate between user and assistant")
        if previous.get("role") != "assistant" or isinstance(previous.get("content"), str):
            continue
        wanted = [b["id"] for b in previous["content"] if b.get("type") == "tool_use"]
        content = current.get("content")
        blocks = [] if isinstance(content, str) else list(content or [])
        leading = [b.get("tool_use_id") for b in itertools.takewhile(lambda b: b.get("type") == "tool_result", blocks)]
        if wanted and sorted(leading) != sorted(wanted):
            problems.append(f"messages.{index}.content: tool_use ids {wanted} need tool_result blocks first, "
                            f"found {leading}")
    ids = [b.get("id") for m in messages if isinstance(m.get("content"), list) for b in m["content"]
           if b.get("type") == "tool_use"]
    if len(ids) != len(set(ids)):
        problems.append("messages: tool_use ids must be unique")
    breakpoints = sum(1 for block in _all_blocks(body) if isinstance(block, dict) and block.get("cache_control"))
    if breakpoints > MAX_CACHE_BREAKPOINTS:
        problems.append(f"a maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided, "
                        f"found {breakpoints}")
    return problems


def _all_blocks(body: dict[str, Any]) -> Iterable[Any]:
    yield from body.get("tools", [])
    if isinstance(body.get("system"), list):
        yield from body["system"]
    for message in body.get("messages", []):
        if isinstance(message.get("content"), list):
            yield from message["content"]
