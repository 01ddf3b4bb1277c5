"""A fake Anthropic Messages API over real HTTP, for tests of anything that talks to Claude.

`FakeMessagesApi` listens on 127.0.0.1 port 0 in a thread and answers `POST /v1/messages` from a
script: each request consumes the next item, a `Reply` or a function of the recorded request
returning one. Replies are message JSON, or server-sent events when the request says
`"stream": true` (message_start, content_block_start/delta/stop, message_delta, message_stop, the
shape the SDK's `messages.stream(...).get_final_message()` reassembles). Every request is
recorded with its headers and JSON body.

Like the real API (see `messages_rules`), the fake refuses (400 `invalid_request_error`, without
consuming the script) requests that break the protocol: no `anthropic-version` header, roles that
do not alternate, a `tool_use` without its `tool_result` first in the next user turn, more than
four `cache_control` breakpoints, a tool name outside 1-64 characters, a strict schema outside
the strict subset, a prompt longer than the context window (400 "prompt is too long"), a body
over the size limit (413). It refuses to send a scripted reply the API could not produce for the
request (no tool call under `tool_choice` any, parallel calls when disabled, a strict tool's input
that does not validate); a test of a hijacked model passes `check_replies=False`. `usage` is
computed (cache reads and writes from identical prefixes), not scripted, unless a reply sets it;
`POST /v1/messages/count_tokens` answers with the same count. `protocol_errors` lists every
refusal, so a test can assert there were none.

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

import dataclasses
import itertools
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.messages_rules import Accounting, protocol_problems, reply_problems

FAKE_MODEL = "claude-fake-1"
CONTEXT_WINDOW = 200_000
MAX_REQUEST_BYTES = 32 << 20  # the Messages API's request size limit
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
    peer: tuple[str, int] = ("", 0)  # the client's address: the same port means a reused connection

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
    """A 200 reply carrying one assistant message; `usage` is computed by the fake unless given."""
    body: dict[str, Any] = {"id": f"msg_fake_{next(_ids):04d}", "type": "message", "role": "assistant",
                            "model": model, "content": content, "stop_reason": stop_reason, "stop_sequence": None}
    if usage is not None:
        body["usage"] = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                         "cache_read_input_tokens": 0, **usage}
    return Reply(body=body)


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

    def __init__(self, *script: Script, api_key: str | None = None, strict: bool = True, check_replies: bool = True,
                 context_window: int = CONTEXT_WINDOW, max_request_bytes: int = MAX_REQUEST_BYTES,
                 min_cacheable_tokens: int = 1024) -> None:
        """Create the server (not started yet).

        Args:
            script: Replies, consumed one per accepted request.
            api_key: When set, requests without this key (x-api-key or Bearer) get a 401.
            strict: Refuse requests that break the Messages API protocol.
            check_replies: Refuse to send scripted replies the API could not produce (off for a
                hijacked or broken model).
            context_window: Input tokens beyond this get 400 "prompt is too long".
            max_request_bytes: Bodies beyond this get 413 `request_too_large`.
            min_cacheable_tokens: The model's minimum cacheable prompt length.
        """
        self.requests: list[RecordedRequest] = []
        self.protocol_errors: list[str] = []
        self.accounting = Accounting(min_cacheable_tokens=min_cacheable_tokens)
        self._script: list[Script] = list(script)
        self._api_key = api_key
        self._strict = strict
        self._check_replies = check_replies
        self._context_window = context_window
        self._max_request_bytes = max_request_bytes
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

    def _answer(self, request: RecordedRequest, size: int) -> Reply:
        path = request.path.split("?")[0].rstrip("/")
        if request.method != "POST" or path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return error_reply(404, "not_found_error", f"the fake serves POST /v1/messages, not {request.path}")
        if self._api_key is not None and self._api_key not in (
                request.headers.get("x-api-key"), request.headers.get("authorization", "").removeprefix("Bearer ")):
            return error_reply(401, "authentication_error", "invalid x-api-key")
        if size > self._max_request_bytes:
            return error_reply(413, "request_too_large", f"Request exceeds the maximum size of "
                                                         f"{self._max_request_bytes} bytes")
        body = request.body
        counting = path.endswith("count_tokens")
        problems = protocol_problems(body, request.headers, counting=counting) if self._strict else []
        if problems:
            self.protocol_errors.extend(problems)
            return error_reply(400, "invalid_request_error", "; ".join(problems), {"x-should-retry": "false"})
        tokens = self.accounting.count(body)
        if counting:
            return Reply(body={"input_tokens": tokens})
        if tokens > self._context_window:
            return error_reply(400, "invalid_request_error",
                               f"prompt is too long: {tokens} tokens > {self._context_window} maximum")
        with self._lock:
            item = self._script.pop(0) if self._script else None
        if item is None:
            self.protocol_errors.append("the script is exhausted")
            return error_reply(400, "invalid_request_error", "the fake's script is exhausted", {"x-should-retry": "false"})
        reply = item(request) if callable(item) else item
        if reply.status != 200:
            return reply
        # A stream that fails midway never delivers its message: nothing to hold to the request.
        impossible = reply_problems(body, reply.body) if self._check_replies and reply.stream_error is None else []
        if impossible:
            self.protocol_errors.extend(f"scripted reply: {p}" for p in impossible)
            return error_reply(400, "invalid_request_error", "FAKE SCRIPT ERROR (the API cannot send this reply): "
                               + "; ".join(impossible), {"x-should-retry": "false"})
        if "usage" not in reply.body:
            reply = dataclasses.replace(reply, body={**reply.body, "usage": self.accounting.usage(
                body, reply.body.get("content", []))})
        return reply

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
                request = RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                          (str(self.client_address[0]), int(self.client_address[1])))
                with fake._lock:
                    fake.requests.append(request)
                reply = fake._answer(request, len(raw))
                if reply.delay_seconds and fake._closing.wait(reply.delay_seconds):
                    return
                try:
                    if reply.status == 200 and request.stream and reply.body.get("type") == "message":
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
                if length is not None:  # keep-alive, like the API; an event stream ends with the connection
                    self.send_header("content-length", str(length))
                else:
                    self.send_header("connection", "close")
                    self.close_connection = True
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
                pass

        return Handler


def stream_events(message: dict[str, Any], chunk: int = 24) -> list[tuple[str, dict[str, Any]]]:
    """The server-sent events that stream `message`; tool inputs arrive as JSON split in chunks."""
    usage = message.get("usage", {"input_tokens": 0, "output_tokens": 0})
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
